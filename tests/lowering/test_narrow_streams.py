"""narrow-streams: FIFOs between tasks whose tokens come slowly carry them in narrower beats.

Checked against independent references: the un-narrowed design in the functional simulator (bit
for bit) and in the timed simulator (the same makespan), the memory count (fewer LUTs, every
FIFO word the narrowed beat), and a plan that records the beats and rebuilds them. The emitted
C++ of a narrowed design runs in csim in tests/hls/test_dse_design.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

import streamdsl as sd
from lowering.dse import Plan, PlanError
from lowering.memory import design_memory
from lowering.timing import table_of
from lowering.transforms.narrow_streams import MAX_BEATS, beat_for, candidates, narrow_streams, narrowed_streams, widen_streams
from streamdsl import quant
from streamdsl.dialects.dataflow import ITensorType, kernel_of
from streamdsl.graph import Graph
from streamdsl.itensor import ITensorError, itensor
from streamdsl.sim.timed import simulate_unbounded
from streamdsl.wiring import graph_from_kernel, restream
from tests.lowering.lowering_helpers import assert_no_deadlock_no_stall, filecheck_module
from toolchain.models import planned_block

SPLITS = {**dict.fromkeys(("k8_reduce", "k9_matmul", "k10_map"), 3), **dict.fromkeys(("k36_reduce", "k37_matmul", "k38_map"), 2)}


def _split_block():  # noqa: ANN202 - a ModelBlock
    """GPT-2 tiny at W4A8 (groups of 32), cache length 16, c_attn in 3 parts and c_fc in 2."""
    block, _ = planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=Plan(64, 250.0, True, {}, 0, SPLITS))
    return block


def test_a_narrowed_itensor_keeps_its_tokens_in_more_beats() -> None:
    it = itensor.tiled(sd.f32, [8, 64], [1, 64])
    narrow = it.narrowed(128)
    assert (it.beats, it.beat_lanes, it.beat_bits) == (2, 32, 1024)
    assert (narrow.beats, narrow.beat_lanes, narrow.beat_bits) == (16, 4, 128)
    assert narrow.offsets().tolist() == it.offsets().tolist() and narrow != it and narrow.narrowed(None) == it
    assert it.narrowed(1024) == it and it.narrowed(2048 // 2).beat is None  # the default beat is no narrowing
    assert str(narrow).endswith(", beat 128>") and ITensorType.from_itensor(narrow).itensor == narrow
    for bad in (16, 48, 2048):
        with pytest.raises(ITensorError, match=rf"beat: {bad} bits must be a multiple of the 32-bit element between 32 and 1024"):
            it.narrowed(bad)


def test_beat_for_takes_the_narrowest_power_of_two_lanes_within_the_cycles() -> None:
    it = itensor.tiled(sd.f32, [8, 64], [1, 64])  # 64 floats: 2 beats of 32
    assert beat_for(it, 64) == 32 * 64 // MAX_BEATS  # at most MAX_BEATS beats: a 2-deep FIFO stays an SRL
    assert beat_for(it, 8) == 8 * 32  # 8 beats of 8 floats
    assert beat_for(it, 5) == 16 * 32  # 4 beats: the next power of two of lanes within 5
    assert beat_for(it, 2) is None and beat_for(it, 0) is None  # no narrower than it is


def test_narrowed_streams_compute_time_and_count_what_they_should() -> None:
    """Each narrowed stream's tokens cross in at most half the fewest cycles between two of them;
    the design computes bit for bit what it did, in the same unbounded makespan, its sized FIFOs
    never stall, each narrowed FIFO's word is its beat, and the FIFOs take fewer LUTs."""
    block = _split_block()
    program = block.example.program
    kernel = kernel_of(program.module)
    before = sd.compile(program)
    args = block.example.make_inputs(3)
    want, memory = before.simulate(*args), design_memory(before)
    run = simulate_unbounded(before.graph)
    gaps = {name: min([*np.diff(run.write_times[name]), *np.diff(run.read_times[name])], default=run.makespan)
            for name in candidates(kernel)}
    types = {name: value.type.itensor for name, value in candidates(kernel).items()}  # type: ignore[attr-defined]
    narrowed = narrow_streams(kernel)
    program.module.verify()
    assert narrowed and set(narrowed) <= set(gaps)
    for name, bits in narrowed.items():
        assert types[name].narrowed(bits).beats <= min(MAX_BEATS, gaps[name] // 2), (name, bits, gaps[name])
    after = sd.compile(program)
    assert after.timed_simulation().makespan <= before.timed_simulation().makespan
    assert_no_deadlock_no_stall(after)
    for got, ref in zip(after.simulate(*args), want, strict=True):
        assert np.array_equal(got, ref)
    words = {st.name: st.beat_bits for st in after.streams}
    assert all(words[name] == bits for name, bits in narrowed.items())
    assert design_memory(after)["LUTRAM"] < memory["LUTRAM"]
    assert widen_streams(kernel).keys() == narrowed.keys() and narrowed_streams(kernel) == {}


def _same_graph(got: Graph, want: Graph) -> None:
    """Two graphs of one kernel with the same FIFOs (beats, words) and tasks (every schedule)."""
    def fifos(graph: Graph) -> list[tuple[object, ...]]:
        return [(e.name, e.src, e.dst, e.beats, e.word_bits) for e in graph.edges]

    assert fifos(got) == fifos(want)
    assert got.tasks.keys() == want.tasks.keys()
    for name, task in want.tasks.items():
        mine = got.tasks[name]
        assert mine.latency == task.latency, name
        for ours, theirs in ((mine.reads, task.reads), (mine.writes, task.writes)):
            assert ours.keys() == theirs.keys() and all(np.array_equal(ours[p], theirs[p]) for p in theirs), name


def test_the_graph_it_is_given_is_left_the_narrowed_kernels() -> None:
    """`narrow_streams` re-times only the ends of the streams it retypes (`restream`), narrowing
    and widening again the critical path's; `widen_streams` gives the streams back for the same:
    each time the graph is the one a rebuild gives."""
    block = _split_block()
    kernel = kernel_of(block.example.program.module)
    timing = table_of(kernel)
    graph, _ = graph_from_kernel(kernel, timing)
    assert narrow_streams(kernel, timing=timing, graph=graph)
    _same_graph(graph, graph_from_kernel(kernel, timing)[0])
    restream(graph, timing, widen_streams(kernel))
    _same_graph(graph, graph_from_kernel(kernel, timing)[0])
    module = filecheck_module("narrow_streams")  # `slow` narrowed, then widened again on the critical path
    (kernel,) = [k for k in module.walk() if k.name == "dataflow.kernel"]
    graph, _ = graph_from_kernel(kernel, timing := table_of(kernel))
    assert narrow_streams(kernel, timing=timing, graph=graph) == {"s": 256}
    _same_graph(graph, graph_from_kernel(kernel, timing)[0])


def test_a_plan_records_its_beats_and_rebuilds_them() -> None:
    block = _split_block()
    kernel = kernel_of(block.example.program.module)
    beats = narrow_streams(kernel)
    plan = Plan(64, 250.0, True, {}, 0, SPLITS, beats=beats)
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan and again.beats == beats
    rebuilt, _ = planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=again)
    assert narrowed_streams(kernel_of(rebuilt.example.program.module)) == beats
    bad = Plan.from_json({**plan.to_json(), "beats": {"k8_reduce_p0->k99_matmul_p0": 64}})
    with pytest.raises(PlanError, match=r"narrows streams the design cannot narrow so: k8_reduce_p0->k99_matmul_p0"):
        planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=bad)
    odd = Plan.from_json({**plan.to_json(), "beats": {next(iter(beats)): 48}})
    with pytest.raises(PlanError, match=r"beat: 48 bits must be a multiple"):
        planned_block("gpt2", "tiny", 16, quant.scheme("w4a8", 32), plan=odd)


def test_the_filecheck_kernel_narrows_off_the_critical_path_only() -> None:
    """@two: `sum`'s two tokens to `copy_sum`, 23 cycles apart, go in 8 beats of 8 floats;
    `slow`'s (100 cycles apart) were narrowed too, but that delayed the critical path, so they
    were widened again."""
    module = filecheck_module("narrow_streams")
    (kernel,) = [k for k in module.walk() if k.name == "dataflow.kernel"]
    assert narrow_streams(kernel) == {"s": 256}
