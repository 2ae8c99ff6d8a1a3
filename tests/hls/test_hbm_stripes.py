"""A design whose DMAs are striped over HBM pseudo-channels (lowering/hbm_channels.py): link.cfg
maps each stripe's port to its channel, the testbench and host pack the stripes as hbm.stripe
does, and csim (both modes) computes what the functional simulator computes, at the DMA cycles
the timing model charges."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_project
from hls_backend.csim import model_cycles
from hls_backend.hbm import pack, stripe
from hls_backend.lint import lint_project
from lowering.hbm_channels import allocate_kernel
from streamdsl.dialects.dataflow import kernel_of

from .cases import CASES, assert_csim_as_simulated, dumped_hbm, loaded_input


@pytest.fixture(scope="module")
def striped(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The FFN block (LayerNorm, two 64x256 matvecs) with its DMAs allocated on 32 channels."""
    case = CASES["ffn_block"]()
    module = case.program.module.clone()
    kernel = kernel_of(module)
    allocations = allocate_kernel(kernel)
    design = sd.compile(dataclasses.replace(case.program, module=module))
    project = emit_project(design, tmp_path_factory.mktemp("striped") / "ffn")
    return case, design, project, allocations


def test_link_config_maps_each_stripe_to_its_channel(striped) -> None:  # noqa: ANN001
    """The two weights (64 KiB each of 130 KiB: 15.5 of 32 channels, capped at the 2 words of a
    beat) get two stripes; the 256-byte activations and LayerNorm parameters one. Largest stripe
    first: w_up on 0 and 1, w_down on 2 and 3, the rest on 4, 5, ... in order of bytes."""
    _, design, project, allocations = striped
    assert [a.stripes for a in allocations] == [1, 1, 1, 1, 2, 2, 1]
    lines = (project / "link.cfg").read_text().splitlines()
    assert lines[:2] == ["[connectivity]", "nk=ffn:1:ffn_1"]
    sp = dict(line.removeprefix("sp=ffn_1.").split(":") for line in lines[2:])
    assert sp["w_up_s0"] == "HBM[0]" and sp["w_up_s1"] == "HBM[1]"
    assert sp["w_down_s0"] == "HBM[2]" and sp["w_down_s1"] == "HBM[3]"
    assert len(sp) == 9 and len(set(sp.values())) == 9  # 7 DMAs, 9 ports, each on a channel of its own
    manifest = json.loads((project / "manifest.json").read_text())
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["w_up_s1"]["stripe"] == 1 and ports["w_up_s1"]["stripes"] == 2 and ports["w_up_s1"]["channel"] == 1
    assert ports["w_up_s0"]["bytes"] == 64 * 256 * 4 // 2
    kernel = (project / "kernel.cpp").read_text()
    assert "#pragma HLS interface m_axi port=w_up_s1 bundle=" in kernel
    assert "sd_stripe(hbm_w_up.data(), 1024, 2, 1, hbm_w_up_s1.data());" in (project / "host.cpp").read_text()
    assert lint_project(project) == []


def test_csim_reads_the_stripes_as_the_simulator(striped) -> None:  # noqa: ANN001
    case, design, project, _ = striped
    assert_csim_as_simulated(case, design, project, 3, "striped")


def test_testbench_stripes_as_hbm_stripe(striped) -> None:  # noqa: ANN001
    """The C++ packing (sd_pack + sd_stripe) writes each stripe port's bytes as numpy's pack + stripe."""
    case, design, project, _ = striped
    data = dumped_hbm(project, design, case.inputs(np.random.default_rng(5)))
    it, w_up = loaded_input(design, data, "w_up")
    for s, want in enumerate(stripe(pack(w_up, it), 2)):
        np.testing.assert_array_equal(np.fromfile(data / f"w_up_s{s}.hbm", dtype=np.uint8), want)


def test_striped_dma_cycles_match_the_model(striped) -> None:  # noqa: ANN001
    """A weight on two stripes takes half the cycles it takes on one channel, in csim as in the model."""
    case, design, project, _ = striped
    cycles = csim_cycles(project, *case.inputs(np.random.default_rng(1)))["processes"]
    model = model_cycles(design)
    for node in ("dma_load(w_up)", "dma_load(w_down)"):
        assert 1 / 1.2 <= cycles[node]["busy"] / model[node] <= 1.2, (node, cycles[node], model[node])
