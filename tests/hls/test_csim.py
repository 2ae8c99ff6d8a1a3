"""Emitted HLS C++ compiled with g++ computes what the functional simulator computes, in both
C simulation modes, compiles warning-free, and passes the HLS lint."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import CsimDeadlock, build_csim, csim_cycles, csim_verification, emit_project, model_cycles, run_csim
from hls_backend.lint import lint_project
from lowering.memory import design_memory
from streamdsl.errors import DeadlockError
from tests.fifo.test_program_order import N, T, _diamond

from .cases import CASES, assert_close, csim_modes


@pytest.mark.parametrize("name", sorted(CASES))
def test_csim_matches_simulator(name: str, tmp_path) -> None:  # noqa: ANN001
    case = CASES[name]()
    design = sd.compile(case.program)
    assert design_memory(design)["fits"]  # the U55C holds it, counted by memory shape
    xs = case.inputs(np.random.default_rng(7))
    want = design.simulate(*xs)
    project = emit_project(design, tmp_path / name)
    for mode, got in csim_modes(project, *xs):
        assert_close(got, want, 1e-5, f"{name} {mode} csim vs functional simulator")
        assert_close(got, case.reference(*xs), 1e-4, f"{name} {mode} csim vs numpy/torch reference")
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
    record = csim_verification(design, project, *xs)  # what report.json's verification gets
    assert record["deadlock_free"] is False and "fork(copy)->mul" in record["deadlock_report"]
    assert record["csim_vs_sim_max_abs"] <= 1e-5 and set(record["csim_seconds"]) == {"sequential", "threaded"}  # stops at the deadlock


def test_deadlock_through_a_converter(tmp_path) -> None:  # noqa: ANN001
    """The converter blocks like every other process (a static schedule, no polling): the
    watchdog sees that the whole design is stuck and names the converter too."""
    case = CASES["held_regrid_planned"]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(2))
    small = {"fork(0)->mul": 2}
    project = emit_project(design, tmp_path / "small", depths=small)
    assert_close(run_csim(project, *xs, threaded=False), design.simulate(*xs), 1e-5, "sequential csim")
    with pytest.raises(CsimDeadlock) as err:
        run_csim(project, *xs, threaded=True)
    assert "fork_0 waits on stream 'fork(0)->mul' (full, 2/2 tokens)" in err.value.report
    assert "converter_pre waits on stream 'converter(pre)->fork(0)' (full, 2/2 tokens)" in err.value.report
    with pytest.raises(DeadlockError):
        design.simulate(*xs, depths=small)


@pytest.mark.parametrize("name", ["ffn_block", "diamond", "held_regrid_planned"])
def test_conservative_depths_run_in_threaded_csim(name: str, tmp_path) -> None:  # noqa: ANN001
    """The smaller FIFOs of conservative sizing: with blocking reads and writes a deadlock does
    not depend on the schedule, so threaded csim must finish exactly when the simulator does."""
    case = CASES[name]()
    design = sd.compile(case.program, fifo_sizing="conservative")
    xs = case.inputs(np.random.default_rng(4))
    got = run_csim(emit_project(design, tmp_path / name), *xs, threaded=True)
    assert_close(got, design.simulate(*xs), 1e-5, f"{name} conservative threaded csim")


def test_fork_of_multi_beat_tokens_runs_at_sized_depths(tmp_path) -> None:  # noqa: ANN001
    """The fork must hand each output a whole token before the next output, as the timing
    model's fork does: written beat by beat to every output, `total` got half of the last row
    while `combine`'s input was full, and the sized design deadlocked in threaded csim (the GPT-2
    block's softmax did)."""
    design = sd.compile(_diamond(p_first=False))  # rows of 64 f32: 2,048 bits, two beats
    x = np.random.default_rng(5).standard_normal((N, T)).astype(np.float32)
    project = emit_project(design, tmp_path / "wide")
    assert "hls::stream<beat_32_f32, " in (project / "kernel.cpp").read_text()  # a row is two beats
    assert_close(run_csim(project, x, threaded=True), design.simulate(x), 1e-5, "wide diamond threaded csim")
    # the fork takes outputs x beats cycles a token, and the timing model charges that (it charged
    # the beats alone, a third of what the emitted fork took)
    counted, model = csim_cycles(project, x)["processes"], model_cycles(design)
    (fork,) = [node for node in model if node.startswith("fork")]
    assert model[fork] == N * 2 * 2 + 1, model[fork]
    assert counted[fork]["busy"] == model[fork], (counted[fork], model[fork])


def test_the_compile_cache_reuses_a_binary_only_for_the_same_sources(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """$STREAMDSL_CSIM_CACHE (mutation testing's): a second project with the same C++ gets the
    first one's binary without g++; one byte of kernel.cpp changed compiles again."""
    import hls_backend.csim as csim

    monkeypatch.setenv("STREAMDSL_CSIM_CACHE", str(tmp_path / "cache"))
    design = sd.compile(CASES["diamond"]().program)
    xs = CASES["diamond"]().inputs(np.random.default_rng(3))
    first, second = (emit_project(design, tmp_path / name) for name in ("a", "b"))
    build_csim(first, False, extra_flags=["-O0"])
    compiles = []
    real_run = csim.subprocess.run
    monkeypatch.setattr(csim.subprocess, "run", lambda cmd, **kw: ("tb.cpp" in cmd and compiles.append(cmd)) or real_run(cmd, **kw))
    build_csim(second, False, extra_flags=["-O0"])
    assert compiles == []
    assert_close(run_csim(second, *xs), design.simulate(*xs), 1e-5, "csim of the cached binary")
    kernel = second / "kernel.cpp"
    kernel.write_text(kernel.read_text() + "\n// changed\n")
    build_csim(second, False, extra_flags=["-O0"])
    assert len(compiles) == 1


def test_a_binary_is_rebuilt_only_when_its_flags_or_sources_change(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """csim/<binary>.cmd records the g++ command: the same flags again reuse the binary, other
    flags or a newer source compile it again, and no flags take whatever binary is there."""
    import hls_backend.csim as csim

    project = emit_project(sd.compile(CASES["diamond"]().program), tmp_path / "p")
    compiles = []
    real_run = csim.subprocess.run
    monkeypatch.setattr(csim.subprocess, "run", lambda cmd, **kw: ("tb.cpp" in cmd and compiles.append(cmd)) or real_run(cmd, **kw))
    build_csim(project, False, extra_flags=["-O0"])
    build_csim(project, False, extra_flags=["-O0"])
    build_csim(project, False)
    assert len(compiles) == 1
    build_csim(project, False, extra_flags=["-O1"])
    assert len(compiles) == 2 and compiles[-1][-4:-2] == ["-O1", "tb.cpp"]
    (project / "kernel.cpp").touch()
    os.utime(project / "kernel.cpp", (time.time() + 5, time.time() + 5))
    build_csim(project, False, extra_flags=["-O1"])
    assert len(compiles) == 3
