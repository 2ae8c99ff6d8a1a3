"""A design with a feedback stream (one engine task computing two layers, its second input fed back
from its own first output) emitted as HLS C++: both csim modes compute what the functional
simulator computes, sequential csim's cycle estimate is the timing model's, and a cycle without a
first token is reported as a deadlock naming its streams."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import CsimDeadlock, CsimError, csim_cycles, csim_verification, emit_project, run_csim
from hls_backend.lint import lint_project
from tests.dsl import programs as P

from .cases import assert_close, csim_modes


@pytest.mark.parametrize(("k", "t"), [(64, 16), (96, 32)])
def test_both_csim_modes_compute_the_engine_and_count_the_models_cycles(k: int, t: int, tmp_path) -> None:  # noqa: ANN001
    case = P.shared_engine(k, t)
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(k + t))
    want = design.simulate(*xs)
    project = emit_project(design, tmp_path / "engine")
    kernel = (project / "kernel.cpp").read_text()
    assert "#define SD_CSIM_FEEDBACK" in kernel and "task_act -> task_engine" in kernel and ", feedback" in kernel
    for mode, got in csim_modes(project, *xs):
        assert_close(got, want, 1e-5, f"{mode} csim vs functional simulator")
        assert_close(got, case.reference(*xs), 1e-4, f"{mode} csim vs numpy")
    assert lint_project(project) == []
    record = csim_verification(design, project, *xs, expected=want, seeds=(1, 2))
    assert record["deadlock_free"] and record["csim_vs_sim_max_abs"] <= 1e-5
    cycles = csim_cycles(project, *xs)["makespan"]
    assert abs(cycles - design.sizing.makespan) <= 0.01 * design.sizing.makespan, (cycles, design.sizing.makespan)


def test_a_cycle_without_a_first_token_deadlocks_in_both_modes(tmp_path) -> None:  # noqa: ANN001
    case = P.shared_engine(32, 8, reads_back_first=True)
    xs = case.inputs(np.random.default_rng(0))
    project = emit_project(case.program, tmp_path / "stuck")
    with pytest.raises(CsimError, match=r"(?s)DEADLOCK: no process can run.*task_stuck_engine waits on stream 'act->stuck_engine'"):
        run_csim(project, *xs)
    with pytest.raises(CsimDeadlock, match="act->stuck_engine"):
        run_csim(project, *xs, threaded=True)
