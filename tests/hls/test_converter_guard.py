"""A two-bank converter whose destination needs more beats per slab than its source delivers:
its reader would run ahead of its writer, so the bank guard (slab s fills once slab s - 2 is
drained) is what keeps it right. Csim, sequential and threaded under schedule seeds, against
the simulator."""

from __future__ import annotations

import numpy as np
import pytest
from dsl import programs as P

import streamdsl as sd
from hls_backend import build_csim, emit_project, run_csim

from .cases import WARNINGS, assert_close, planned


def narrowing_regrid(r: int, d: int) -> P.Case:
    """(1, 32) tiles re-cut into (2, 8) tiles: a destination token holds half a source token."""
    src = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(1, 32))
    dst = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(2, 8))

    @sd.kernel
    def pre(x: src) -> src:
        for i in range(src.num_tokens):
            yield x.read() * 3.0

    @sd.kernel
    def post(y: dst) -> dst:
        for i in range(dst.num_tokens):
            yield y.read() + 1.0

    @sd.dataflow
    def narrowing(x: sd.Tensor[sd.f32, (r, d)]):
        return post(pre(x))

    return planned(P.Case(narrowing, P.inputs(P.rand(r, d)), lambda x: x * 3.0 + 1.0))


@pytest.mark.parametrize(("r", "d"), [(8, 64), (6, 96)])
def test_a_converter_slower_out_than_in_keeps_its_banks_apart(r: int, d: int, tmp_path) -> None:  # noqa: ANN001
    case = narrowing_regrid(r, d)
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
