"""Cycle accounting in sequential csim (the counters of sd_support.h) against the timing model:
the emitted code builds the machine the model describes (benchmarks/hls_cycles.py prints the
ratios for the large designs)."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_project, model_cycles
from streamdsl.sim.functional import simulate_with_stats

from .cases import CASES

TARGET = 1.2


@pytest.mark.parametrize(
    "name", ["tutorial01_elementwise", "ffn_block", "tutorial02_converted", "tutorial03_attention", "matvec", "layernorm"])
def test_csim_cycles_match_the_timing_model(name: str, tmp_path) -> None:  # noqa: ANN001
    case = CASES[name]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(0))
    counted = csim_cycles(emit_project(design, tmp_path / name), *xs)
    model = model_cycles(design)
    assert set(counted["processes"]) == set(model)
    for node, clock in counted["processes"].items():
        assert 1 / TARGET <= clock["busy"] / model[node] <= TARGET, (node, clock, model[node])
        assert clock["busy"] <= clock["finish"] <= counted["makespan"]
    makespan = design.timed_simulation().makespan
    assert 1 / TARGET <= counted["makespan"] / makespan <= TARGET, (counted["makespan"], makespan)
    # every beat the functional simulator moves, csim writes
    _, stats = simulate_with_stats(design.module, *xs, depths=design.depths)
    assert counted["beats"] == {s.name: s.beats for s in stats.streams}


def test_counters_are_compiled_out_for_vitis(tmp_path) -> None:  # noqa: ANN001
    """Under __SYNTHESIS__ every counter macro is `(void)0` and the processes are plain calls."""
    project = emit_project(sd.compile(CASES["tutorial01_elementwise"]().program), tmp_path / "p")
    support = (project / "sd_support.h").read_text()
    synthesis = support[support.index("#if defined(SD_HLS_STREAM_H) && !defined(SD_CSIM_THREADED) && !defined(__SYNTHESIS__)"):]
    off = synthesis[synthesis.index("#else") : synthesis.index("#endif")]
    for macro in ("SD_II(n)", "SD_DEPTH(d)", "SD_LOOP_ENTRY()", "SD_LAG(d)"):
        assert f"#define {macro} (void)0" in off
    code = (project / "kernel.cpp").read_text()
    assert code.count("SD_II(") == code.count("#pragma HLS pipeline II=")
