"""Stream beats: a token crosses a FIFO as `itensor.beats` words of at most 1,024 bits, and the
functional simulator, the timing model, the emitted C++ and the memory count agree on them
(tests/test_beats.py: the beats of an itensor)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from dsl import programs as P

import streamdsl as sd
from hls_backend import emit_kernel, emit_project, run_csim
from lowering.memory import design_memory
from streamdsl.itensor import BEAT_BITS
from streamdsl.sim.functional import simulate_with_stats

from .cases import CASES


def _struct_bits(code: str) -> dict[str, int]:
    sizes = {"float": 32, "double": 64, "int8_t": 8, "int16_t": 16, "int32_t": 32, "int64_t": 64, "bool": 1, "int": 32}
    return {m[1]: sizes[m[2]] * int(m[3]) for m in re.finditer(r"struct (\w+) \{\s*(\w+) v\[(\d+)\];", code)}


@pytest.mark.parametrize("name", ["ffn_block", "tutorial02_converted", "matvec", "transpose_planned"])
def test_simulator_timing_model_and_emitter_agree_on_beats(name: str) -> None:
    """Every FIFO word of the emitted kernel is a beat of <= 1,024 bits; per stream, the beats the
    functional simulator counts equal the timing graph's tokens x beats, and the emitted FIFO
    holds depth x beats words."""
    case = CASES[name]()
    design = sd.compile(case.program)
    kernel = emit_kernel(design)
    bits = _struct_bits(kernel.code)
    graph_beats = {e.name: design.graph.tokens(e) * e.beats for e in design.graph.fifos}
    _, stats = simulate_with_stats(design.module, *case.inputs(np.random.default_rng(0)), depths=design.depths)
    sim_beats = {s.name: s.beats for s in stats.streams}
    assert any(e.beats > 1 for e in design.graph.fifos), "the case should have multi-beat tokens"
    for stream in kernel.streams:
        assert bits[stream.token] <= BEAT_BITS, stream
        assert sim_beats[stream.name] == graph_beats[stream.name], stream.name
        assert f"hls::stream<{stream.token}, {design.depths[stream.name] * stream.beats}> {stream.var}(" in kernel.code
    record = {s.name: s for s in design.streams}
    assert all(record[s.name].depth_beats == s.depth_beats for s in kernel.streams)


def test_a_padded_last_beat_round_trips_in_csim(tmp_path) -> None:  # noqa: ANN001
    """Tiles of 48 f32 (two beats, the second half empty) through a task and a fork."""
    case = P.fork_join(2, 96, 48)
    design = sd.compile(case.program)
    assert {e.beats for e in design.graph.fifos} == {2}

    # the on-chip count sees the FIFO words the emitter declares: whole 1,024-bit beats, two a token
    fifos = {m["name"]: m for m in design_memory(design)["memories"] if m["kind"] == "fifo"}
    assert {(m["width"], m["depth"]) for m in fifos.values()} == {(BEAT_BITS, 2 * design.depths[n]) for n in fifos}

    x = case.inputs(np.random.default_rng(1))
    project = emit_project(design, tmp_path / "hls")
    np.testing.assert_allclose(run_csim(project, *x, threaded=True), design.simulate(*x), rtol=1e-6)
