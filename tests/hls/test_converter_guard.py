"""A two-bank converter whose destination needs more beats per slab than its source delivers:
its reader would run ahead of its writer, so the bank guard (slab s fills once slab s - 2 is
drained) is what keeps it right. Csim, sequential and threaded under schedule seeds, against
the simulator."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import build_csim, emit_project, run_csim

from .cases import WARNINGS, assert_close, regrid


@pytest.mark.parametrize(("r", "d"), [(8, 64), (6, 96)])
def test_a_converter_slower_out_than_in_keeps_its_banks_apart(r: int, d: int, tmp_path) -> None:  # noqa: ANN001
    case = regrid(r, d, src_tile=(1, 32))  # a destination token holds half a source token
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(3))
    want = design.simulate(*xs)
    assert_close(want, case.reference(*xs), 1e-5, "simulator")
    project = emit_project(design, tmp_path / "p")
    assert "bank[2]" in (project / "kernel.cpp").read_text(), "a two-bank converter"
    build_csim(project, False, extra_flags=WARNINGS)
    assert_close(run_csim(project, *xs), want, 1e-5, "sequential csim")
    build_csim(project, True, extra_flags=WARNINGS)
    for seed in (None, 1, 2, 3):
        assert_close(run_csim(project, *xs, threaded=True, seed=seed), want, 1e-5, f"threaded csim, seed {seed}")
