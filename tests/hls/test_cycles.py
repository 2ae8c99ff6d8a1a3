"""Cycle accounting in sequential csim (the counters of sd_support.h): every process reports its
own cycles and its finish, streams the words written, and the counters vanish for Vitis."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_project
from streamdsl.sim.functional import simulate_with_stats

from .cases import CASES


@pytest.mark.parametrize("name", ["tutorial01_elementwise", "ffn_block"])
def test_csim_counts_cycles_per_process(name: str, tmp_path) -> None:  # noqa: ANN001
    case = CASES[name]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(0))
    counted = csim_cycles(emit_project(design, tmp_path / name), *xs)
    assert set(counted["processes"]) == {t.removesuffix(".drain") for t in design.graph.tasks}
    for node, clock in counted["processes"].items():
        assert 0 < clock["busy"] <= clock["finish"] <= counted["makespan"], (node, clock)
    _, stats = simulate_with_stats(design.module, *xs, depths=design.depths)
    words = {s.name: s.tokens for s in stats.streams}
    assert {k: v for k, v in counted["beats"].items() if k in words} == words


def test_counters_are_compiled_out_for_vitis(tmp_path) -> None:  # noqa: ANN001
    """Under __SYNTHESIS__ every counter macro is `(void)0`; every pipelined loop counts its II."""
    project = emit_project(sd.compile(CASES["tutorial01_elementwise"]().program), tmp_path / "p")
    support = (project / "sd_support.h").read_text()
    guard = "#if defined(SD_HLS_STREAM_H) && !defined(SD_CSIM_THREADED) && !defined(__SYNTHESIS__)\n#define SD_II"
    counters = support[support.index(guard) :]
    off = counters[counters.index("#else") : counters.index("#endif")]
    for macro in ("SD_II(n)", "SD_DEPTH(d)", "SD_LOOP_ENTRY()", "SD_LAG(d)"):
        assert f"#define {macro} (void)0" in off
    code = (project / "kernel.cpp").read_text()
    assert code.count("SD_II(") == code.count("#pragma HLS pipeline II=")
