"""share-hbm-ports and `dataflow.dma_sequence`: split matvec parts that run one after the other
stream their weights through shared ports, and the design computes, times and emits what the
unshared one does.

Checked against independent references: the unshared design in the functional simulator (bit for
bit), the timed simulator with sized FIFOs (no deadlock, no stall), hand-computed DMA timings,
and the emitted C++ compiled with g++ against the functional simulator and the timing model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.parser import Parser

import streamdsl as sd
from lowering.dse import Plan, PlanError
from lowering.timing import U55C, kernel_graph
from lowering.transforms.share_hbm_ports import chains, share_ports, shared_chains
from lowering.transforms.split_matvecs import SplitMatvecsPass, outer_trips, weight_chains
from streamdsl import quant
from streamdsl.dialects.dataflow import DmaLoadOp, DmaSequenceOp, KernelOp, TaskOp, kernel_of
from streamdsl.sim.timed import simulate_unbounded
from tests.lowering.lowering_helpers import assert_csim_as_modeled, assert_no_deadlock_no_stall
from toolchain.models import model_block, planned_block
from toolchain.opt import StreamdslOptMain

FILECHECK = Path(__file__).parents[1] / "filecheck" / "lowering" / "share_hbm_ports.mlir"


def _sequences(kernel: KernelOp) -> list[DmaSequenceOp]:
    return [op for op in kernel.body.block.ops if isinstance(op, DmaSequenceOp)]


@pytest.mark.parametrize(("family", "parts"), [("gpt2", 2), ("llama", 4), ("qwen2", 2)])
def test_shared_ports_compute_what_the_split_block_computes(family: str, parts: int) -> None:
    """Each sequence streams one part index's weight slices of matvecs that run one after the
    other, in that order; the design equals the unshared one bit for bit, its sized FIFOs neither
    deadlock nor stall, and its unbounded makespan is within a DMA latency a member of the
    unshared one's."""
    mb = model_block(family, "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    program = mb.lowered.program
    SplitMatvecsPass(parts=parts).apply(Context(), program.module)
    args = mb.example.make_inputs(1)
    want = sd.compile(program).simulate(*args)
    kernel = kernel_of(program.module)
    before = simulate_unbounded(kernel_graph(kernel)[0]).makespan
    sequences = share_ports(kernel, min_bytes=0)  # a tiny block's loads: smaller than an m_axi buffer
    program.module.verify()
    assert sequences and not any(isinstance(v.owner, DmaLoadOp) for s in sequences for v in s.outputs)
    for sequence in sequences:
        readers = [next(iter(out.uses)).operation.sym_name.data for out in sequence.outputs]
        assert len({r.rsplit("_p", 1)[1] for r in readers}) == 1, readers  # one part index
        assert len(set(readers)) == len(readers)
        assert all(s.name_hint.endswith("_weight") for s in sequence.sources)
    after = simulate_unbounded(kernel_graph(kernel)[0]).makespan
    assert after <= before + U55C.dma_latency * max(len(s.outputs) for s in sequences)
    design = sd.compile(program)
    for got, ref in zip(design.simulate(*args), want, strict=True):
        assert np.array_equal(got, ref)
    assert_no_deadlock_no_stall(design)


def test_a_sequence_times_its_members_one_loop_after_the_other() -> None:
    """The filecheck kernel @two: W1 (two 4,096-float tokens) then W2 (one) through one port at
    300 MHz (354 bits a cycle from the pseudo-channel). A token is 256 words, 371 cycles of the
    channel (131,072 / 354, rounded up); the first 2 tokens end at 371 and 741, so W1's writes
    leave at 64 + done - 128 (a token's beats) = 307 and 677, and its loop ends at 64 + 741 = 805;
    W2's token leaves at 805 + 64 + 371 - 128 = 1,112, the sequence done at 805 + 64 + 371 = 1,240."""
    module = Parser(StreamdslOptMain(args=[]).ctx, FILECHECK.read_text()).parse_module()  # streamdsl-opt's dialects
    kernel = next(k for k in module.walk() if isinstance(k, KernelOp) and k.sym_name.data == "two")
    assert [[load.source.name_hint for load in chain] for chain in chains(kernel, min_bytes=0)] == [["a", "b"]]
    assert [[load.source.name_hint for load in chain] for chain in chains(kernel)] == [["a"]]  # W2 (16 KiB) is no candidate
    timed = []  # the exploration times the chains with its own model, at the clock it explores
    spy = SimpleNamespace(read_latency=U55C.read_latency, free_latency=U55C.free_latency,
                          schedule=lambda op: timed.append(op) or U55C.at_clock(250).schedule(op))
    assert [[load.source.name_hint for load in chain] for chain in chains(kernel, spy, 0)] == [["a", "b"]]
    assert any(isinstance(op, DmaLoadOp) for op in timed)
    (sequence,) = share_ports(kernel, min_bytes=0)
    schedule = U55C.schedule(sequence)
    w1, w2 = sequence.outputs
    assert schedule.writes[w1].tolist() == [307, 677] and schedule.writes[w2].tolist() == [1112]
    assert schedule.latency == 1240
    from toolchain.driver import _dmas

    loads = [row for row in _dmas(kernel) if row["direction"] == "load"]  # report.json's, the roofline's bytes
    assert [(row["tensor"], row["bytes"], row.get("shared_ports")) for row in loads] == [("a", 32768, True), ("b", 16384, True)]


def _all_split(family: str, parts: int) -> dict[str, int]:
    """Every weight chain whose outer loop `parts` divides, split `parts` ways."""
    block, _ = planned_block(family, "tiny", 16, quant.scheme("w4a8", 32), plan=Plan(64, 250.0))
    kernel = kernel_of(block.example.program.module)
    tasks = {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    return {t: parts for head, chain in weight_chains(kernel).items() if (outer_trips(tasks[head]) or 1) % parts == 0 for t in chain}


def _shared_plan(parts: int) -> Plan:
    """GPT-2 tiny's plan with every weight chain `parts` divides split that many ways, and the
    loads of its parts shared as `share_ports` chains them (its slices are smaller than an m_axi
    buffer: shared all the same)."""
    splits = _all_split("gpt2", parts)
    block, _ = planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=Plan(64, 250.0, True, {}, 0, splits))
    kernel = kernel_of(block.example.program.module)
    assert share_ports(kernel, min_bytes=0)
    return Plan(64, 250.0, True, {}, 0, splits, {}, shared_chains(kernel))


def test_a_plan_names_its_shared_loads_and_rebuilds_the_same_sequences() -> None:
    plan = _shared_plan(2)
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan and all(len(chain) > 1 for chain in again.shared_ports)
    assert any("@" in name for chain in again.shared_ports for name in chain)  # a part's box: its offsets
    assert Plan.from_json({**plan.to_json(), "shared_ports": False}).shared_ports == ()  # plans before the names
    block, _ = planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=again)
    assert shared_chains(kernel_of(block.example.program.module)) == plan.shared_ports
    bad = Plan.from_json({**plan.to_json(), "shared_ports": [["p_layer_mlp_c_fc_weight@999,0,0", "x"]]})
    with pytest.raises(PlanError, match=r"shares ports among loads the design does not have: no single dma_load of "
                                        r"p_layer_mlp_c_fc_weight@999,0,0"):
        planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=bad)


@pytest.mark.slow
@pytest.mark.parametrize("parts", [2, 3])
def test_shared_ports_emit_pass_lint_and_csim_at_the_model_s_cycles(parts: int, tmp_path) -> None:  # noqa: ANN001
    """GPT-2 tiny at W4A8 with its matvecs split where `parts` divides them (c_fc in 2, c_attn in
    3), each part's weight and bias on shared ports (the bias is read after the weight): the emitted
    project passes the HLS lint; g++ csim, sequential and threaded, equals the functional
    simulation; every process's cycles and the makespan are within 1.2x of the timing model; each
    sequence is one process on its own ports (link.cfg)."""
    from hls_backend import emit_project
    from hls_backend.lint import lint_cpp

    block, _ = planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=_shared_plan(parts))
    kernel = kernel_of(block.example.program.module)
    sequences = _sequences(kernel)
    assert sequences
    design = sd.compile(block.example.program)
    project = emit_project(design, tmp_path / "hls")
    code = (project / "kernel.cpp").read_text()
    assert lint_cpp(code) == []
    manifest = json.loads((project / "manifest.json").read_text())
    shared = [port for port in manifest["ports"] if "members" in port]
    assert shared and all(len(port["members"]) > 1 and port["tensor"] == port["members"][0] for port in shared)
    link = (project / "link.cfg").read_text()
    assert sum("_seq" in line for line in link.splitlines()) == sum(len(s.attributes["hbm_channels"].get_values()) for s in sequences)
    xs = block.example.make_inputs(0)
    assert_csim_as_modeled(design, project, xs)
