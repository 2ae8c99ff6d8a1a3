"""Emitted HLS C++ compiled with g++ computes what the functional simulator computes, in both
C simulation modes, compiles warning-free, and passes the HLS lint."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import CsimDeadlock, emit_project, run_csim
from hls_backend.csim import CXX_FLAGS
from hls_backend.lint import lint_project
from streamdsl.errors import DeadlockError

from .cases import CASES, assert_close

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas"]  # `#pragma HLS` is for Vitis, not g++


def _syntax_check(project, threaded: bool) -> None:
    flags = [*CXX_FLAGS, *WARNINGS, *(["-DSD_CSIM_THREADED"] if threaded else []), "-fsyntax-only"]
    proc = subprocess.run(["g++", *flags, "kernel.cpp", "tb.cpp"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, f"g++ {' '.join(WARNINGS)} ({'threaded' if threaded else 'sequential'}):\n{proc.stderr}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_csim_matches_simulator(name: str, tmp_path) -> None:  # noqa: ANN001
    case = CASES[name]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(7))
    want = design.simulate(*xs)
    project = emit_project(design, tmp_path / name)
    for threaded in (False, True):
        got = run_csim(project, *xs, threaded=threaded)
        mode = "threaded" if threaded else "sequential"
        assert_close(got, want, 1e-5, f"{name} {mode} csim vs functional simulator")
        assert_close(got, case.reference(*xs), 1e-4, f"{name} {mode} csim vs numpy/torch reference")
    for threaded in (False, True):
        _syntax_check(project, threaded)
    assert lint_project(project) == []


def test_undersized_fifo_deadlocks_only_in_threaded_csim(tmp_path) -> None:  # noqa: ANN001
    """The diamond's direct branch must hold a row while softmax reads it; at depth 2 the
    hardware deadlocks. Sequential csim (like Vitis csim) cannot see it; threaded csim does, and
    so does the functional simulator."""
    case = CASES["diamond"]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(1))
    small = {"fork(copy)->mul": 2}
    assert design.depths["fork(copy)->mul"] > 2  # the sized design is deeper
    project = emit_project(design, tmp_path / "small", depths=small)
    assert "depth=2" in next(line for line in (project / "kernel.cpp").read_text().splitlines() if "variable=s_fork_copy_mul" in line)
    assert_close(run_csim(project, *xs, threaded=False), design.simulate(*xs), 1e-5, "sequential csim")
    with pytest.raises(CsimDeadlock) as err:
        run_csim(project, *xs, threaded=True)
    report = err.value.report
    assert "DEADLOCK" in report
    assert "stream 'fork(copy)->mul' (full, 2/2 tokens)" in report
    assert "task_mul waits on stream 'softmax->mul' (empty" in report
    with pytest.raises(DeadlockError):
        design.simulate(*xs, depths=small)
