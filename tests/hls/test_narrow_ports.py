"""Narrowed HBM ports (lowering/hbm_channels.py `narrow_ports`): a load that keeps pace with its
reader through a 128- or 256-bit word gets it, the timed schedule does not move, its m_axi buffer
costs two BRAM36 at 128 bits, and the emitted project packs, reads and times the narrow port as
the model does (csim in both modes against the functional simulator)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerAttr, i64

import streamdsl as sd
from hls_backend import csim_cycles, emit_project
from hls_backend.csim import model_cycles
from hls_backend.hbm import pack
from hls_backend.lint import lint_project
from lowering.hbm_channels import NARROW_WORDS, allocate_kernel, narrow_ports
from lowering.memory import BRAM36, kernel_buffers
from lowering.memory import count as count_memory
from lowering.timing import HBM_WORD_ATTR, U55C
from streamdsl.dialects.dataflow import DmaLoadOp, kernel_of
from streamdsl.sim.timed import simulate_unbounded
from streamdsl.wiring import graph_from_kernel, kernel_nodes

from .cases import CASES, assert_csim_as_simulated, dumped_hbm, loaded_input


def _narrowed(name: str):  # noqa: ANN202
    """The case, its module allocated and narrowed, the wide run and the narrowed ports."""
    case = CASES[name]()
    module = case.program.module.clone()
    kernel = kernel_of(module)
    allocate_kernel(kernel)
    graph, _ = graph_from_kernel(kernel, U55C)
    wide = simulate_unbounded(graph)
    return case, module, wide, narrow_ports(kernel, graph, wide, U55C)


@pytest.mark.parametrize("name", ["ffn_block", "gelu_mlp", "matvec", "tutorial03_attention", "softmax"])
def test_narrowing_moves_no_read(name: str) -> None:
    """Every stream is read at the same cycles with the narrowed ports, and each narrowed port is
    the narrowest that keeps pace: half its word would deliver some token after its reader took it."""
    _, module, wide, ports = _narrowed(name)
    kernel = kernel_of(module)
    graph, _ = graph_from_kernel(kernel, U55C)
    narrow = simulate_unbounded(graph)
    assert narrow.makespan == wide.makespan
    for edge, times in wide.read_times.items():
        np.testing.assert_array_equal(narrow.read_times[edge], times, err_msg=edge)
    loads = {name: op for op, name in kernel_nodes(kernel) if isinstance(op, DmaLoadOp)}
    for node, bits in ports.items():
        assert loads[node].attributes[HBM_WORD_ATTR] == IntegerAttr(bits, i64)
        if bits == NARROW_WORDS[0]:
            continue
        loads[node].attributes[HBM_WORD_ATTR] = IntegerAttr(bits // 2, i64)
        (edge,) = [e for e in graph.fifos if e.src == node]
        writes = U55C.schedule(loads[node]).writes[loads[node].result]
        assert np.any(writes + graph.read_latency > wide.read_times[edge.name]), node
        loads[node].attributes[HBM_WORD_ATTR] = IntegerAttr(bits, i64)


def test_the_layernorm_parameters_narrow_to_128_bits() -> None:
    """The FFN block's LayerNorm weight and bias (64 floats each) are read one tile per row pass,
    long after the DMA could bring them at 128 bits a cycle; the activations and the weights are
    read as fast as they arrive and keep 512 bits."""
    _, _, _, ports = _narrowed("ffn_block")
    assert ports == {"dma_load(ln_g)": 128, "dma_load(ln_b)": 128}


def test_a_narrow_port_buffers_in_one_bram36() -> None:
    """The m_axi adapter buffers 512 words of its port: 8 BRAM36 at 512 bits, two at 128."""
    _, module, _, ports = _narrowed("ffn_block")
    memories = count_memory([], kernel_buffers(kernel_of(module)))["memories"]
    maxi = {m["name"].split(": ")[0]: m for m in memories if m["kind"] == "maxi"}
    assert {n: (m["width"], m["depth"], m["resource"], m["count"]) for n, m in maxi.items() if n in ports} == {
        "dma_load(ln_g)": (128, 512, BRAM36, 2), "dma_load(ln_b)": (128, 512, BRAM36, 2)}
    assert (maxi["dma_load(x)"]["width"], maxi["dma_load(x)"]["count"]) == (512, 8)


@pytest.fixture(scope="module")
def narrowed_project(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    case, module, _, ports = _narrowed("ffn_block")
    design = sd.compile(dataclasses.replace(case.program, module=module))
    return case, design, emit_project(design, tmp_path_factory.mktemp("narrow") / "ffn"), ports


def test_the_top_takes_the_narrow_port(narrowed_project) -> None:  # noqa: ANN001
    _, _, project, _ = narrowed_project
    kernel = (project / "kernel.cpp").read_text()
    assert "const ap_uint<128>* ln_g" in kernel and "const ap_uint<512>* x" in kernel
    ports = {p["name"]: p for p in json.loads((project / "manifest.json").read_text())["ports"]}
    assert (ports["ln_g"]["word_bits"], ports["ln_g"]["lanes"], ports["ln_g"]["words"]) == (128, 4, 16)
    assert ports["x"]["word_bits"] == 512
    assert lint_project(project) == []


def test_csim_reads_the_narrow_port_as_the_simulator(narrowed_project) -> None:  # noqa: ANN001
    case, design, project, _ = narrowed_project
    assert_csim_as_simulated(case, design, project, 4, "narrowed")


def test_testbench_packs_the_narrow_port_as_numpy(narrowed_project) -> None:  # noqa: ANN001
    case, design, project, _ = narrowed_project
    data = dumped_hbm(project, design, case.inputs(np.random.default_rng(6)))
    it, ln_g = loaded_input(design, data, "ln_g")
    np.testing.assert_array_equal(np.fromfile(data / "ln_g.hbm", dtype=np.uint8), pack(ln_g, it, 128))


def test_narrow_dma_cycles_match_the_model(narrowed_project) -> None:  # noqa: ANN001
    """The narrow port moves a 128-bit word a cycle in csim as in the model: 16 words for 64 floats."""
    case, design, project, ports = narrowed_project
    counted = csim_cycles(project, *case.inputs(np.random.default_rng(2)))["processes"]
    model = model_cycles(design)
    for node in ports:
        assert 1 / 1.2 <= counted[node]["busy"] / model[node] <= 1.2, (node, counted[node], model[node])
