"""The timed simulator against a clock-stepped reference, hand-computed timings and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamdsl.errors import DeadlockError, LimitError
from streamdsl.graph import Graph, GraphError, Task, slots_needed
from streamdsl.sim.timed import activity, latest_sources, simulate_timed, simulate_unbounded

from .fifo_dags import KINDS, random_dag, reference_simulate


def _chain(n: int, tokens: int, ii: int = 1, depth: int = 3) -> Graph:
    g = Graph()
    for i in range(n):
        reads = {"in": tokens} if i else {}
        writes = {"out": tokens} if i < n - 1 else {}
        g.add_task(Task.pipelined(f"k{i}", ii=ii, depth=depth, reads=reads, writes=writes))
    for i in range(n - 1):
        g.connect(f"k{i}", "out", f"k{i + 1}", "in", 32, name=f"s{i}")
    return g


@given(st.sampled_from(KINDS), st.integers(2, 10), st.integers(0, 2**32), st.sampled_from([None, 1, 2, 3, "mixed"]))
def test_matches_clocked_reference(kind: str, n: int, seed: int, depth: object) -> None:
    graph = random_dag(kind, n, seed)
    rng = np.random.default_rng(seed)
    depths = {e.name: (int(rng.integers(1, 6)) if depth == "mixed" else depth) for e in graph.edges}
    got = simulate_timed(graph, depths)
    ref = reference_simulate(graph, depths)
    assert got.makespan == ref.makespan
    if ref.makespan is not None:
        assert got.stall_cycles == ref.stall
        assert got.peak_occupancy == ref.peak
        for task, act in activity(graph, got).items():
            assert int(np.diff(act.stalled_input).sum()) == ref.stall_on[task][False]
            assert int(np.diff(act.stalled_output).sum()) == ref.stall_on[task][True]
            assert act.stall_cycles == got.stall_cycles[task] and act.end == got.finish[task]
    else:
        assert isinstance(got.deadlock, DeadlockError)


@given(st.sampled_from(KINDS), st.integers(2, 200), st.integers(0, 2**32))
def test_closed_form_unbounded_equals_event_simulation(kind: str, n: int, seed: int) -> None:
    graph = random_dag(kind, n, seed)
    fast, events = simulate_unbounded(graph), simulate_timed(graph)
    assert fast.makespan == events.makespan
    assert fast.finish == events.finish and fast.start == events.start
    assert fast.peak_occupancy == events.peak_occupancy
    assert fast.stall_cycles == events.stall_cycles


def test_lockstep_chain_needs_depth_two() -> None:
    # k0 writes token j at 3 + j; it is readable one cycle later and its slot frees one cycle after the read.
    g = _chain(3, tokens=50)
    free = simulate_timed(g)
    assert free.makespan == 2 * (1 + 3) + 49 + 3 + 1  # two hops of (read latency + depth), then the stream
    assert simulate_timed(g, {"s0": 2, "s1": 2}).makespan == free.makespan
    assert free.peak_occupancy == {"s0": 2, "s1": 2}
    halved = simulate_timed(g, {"s0": 1, "s1": 1})
    assert halved.makespan is not None and halved.makespan > free.makespan + 40  # a depth-1 FIFO halves throughput
    assert halved.stall_cycles["k0"] > 0
    acts = activity(g, halved)
    assert acts["k0"].stalled_input.size == 0 and acts["k0"].stalled_output.size > 0  # waits for k1 to free a slot
    assert np.all(np.diff(acts["k0"].stalled_output, axis=1) > 0)
    first_read = acts["k1"].stalled_input[0].tolist()
    assert first_read == [0, halved.read_times["s0"][0]]  # k1 waits from cycle 0 for k0's first token


def test_paper_fig8a_peak_is_three() -> None:
    """Fig. 8a: 5 tokens, the source has D=3 and II=1, the target II=2: the FIFO peaks at 3."""
    g = Graph()
    g.add_task(Task("source", writes={"o": 3 + np.arange(5)}))
    g.add_task(Task("target", reads={"i": 2 * np.arange(5)}))
    g.connect("source", "o", "target", "i", 32, name="f")
    free = simulate_timed(g)
    assert free.peak_occupancy["f"] == 3
    assert free.read_times["f"].tolist() == [4, 6, 8, 10, 12]
    assert simulate_timed(g, {"f": 3}).makespan == free.makespan
    tight = simulate_timed(g, {"f": 2})
    assert tight.stall_cycles["source"] > 0 and tight.makespan == free.makespan  # the slow target hides it
    acts = activity(g, tight)
    assert acts["source"].stall_cycles == tight.stall_cycles["source"] and acts["source"].stalled_input.size == 0
    assert acts["target"].stalled_input.tolist() == [[0, 4]]  # the first token is written at 3, readable at 4
    assert acts["target"].busy_cycles == acts["target"].end - 4


def test_activity_of_a_deadlock_stops_where_the_tasks_block() -> None:
    g = Graph()
    g.add_task(Task("src", writes={"a": np.arange(4), "b": np.arange(4)}))
    g.add_task(Task("dst", reads={"b": np.arange(4), "a": 4 + np.arange(4)}))
    g.connect("src", "a", "dst", "a", 32, name="a")
    g.connect("src", "b", "dst", "b", 32, name="b")
    run = simulate_timed(g, {"a": 1, "b": 1})
    assert run.deadlock is not None
    acts = activity(g, run)
    assert set(acts) == {"src", "dst"} and acts["dst"].stalled_input.shape[1] == 2


def test_slots_needed_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = np.sort(rng.integers(0, 40, size=12))
        r = np.maximum(w + 1, np.sort(rng.integers(0, 60, size=12)))
        r = np.maximum.accumulate(r)
        brute = max(sum(x <= c for x in w) - sum(x + 1 <= c for x in r) for c in w)
        assert slots_needed(w, r, 1) == brute


def _rowsum_beside_its_input() -> Graph:
    """k0 feeds a row sum and, beside it, k2, which needs the sum first: FIFOs of 2 deadlock."""
    g = Graph()
    g.add_task(Task.pipelined("k0", ii=1, depth=2, writes={"a": 16, "b": 16}))
    g.add_task(Task.pipelined("rowsum", ii=1, depth=4, reads={"a": 16}, writes={"c": 1}))
    g.add_task(Task.pipelined("k2", ii=1, depth=2, reads={"b": 16, "c": 1}))
    g.connect("k0", "a", "rowsum", "a", 32, name="x0")
    g.connect("k0", "b", "k2", "b", 32, name="x1")
    g.connect("rowsum", "c", "k2", "c", 32, name="sum")
    return g


def test_deadlock_diagnosis_names_tasks_streams_and_cycle() -> None:
    g = _rowsum_beside_its_input()
    res = simulate_timed(g, dict.fromkeys(["x0", "x1", "sum"], 2))
    err = res.deadlock
    assert res.makespan is None and isinstance(err, DeadlockError)
    assert err.blocked["k0"] == ("x1", "full", 2, 2)
    assert err.blocked["rowsum"] == ("x0", "empty", 0, 2)
    assert err.blocked["k2"] == ("sum", "empty", 0, 2)
    assert err.cycle in (["k0", "k2", "rowsum"], ["k2", "rowsum", "k0"], ["rowsum", "k0", "k2"])
    assert "wait-for cycle" in str(err) and "stream x1 (full, 2/2)" in str(err)
    with pytest.raises(DeadlockError, match="task k0 waits to write to stream x1"):
        simulate_timed(g, dict.fromkeys(["x0", "x1", "sum"], 2), raise_on_deadlock=True)
    assert simulate_timed(g, {"x1": 16}).deadlock is None


def test_errors_name_the_culprit() -> None:
    g = _chain(2, tokens=4)
    with pytest.raises(ValueError, match="edge s0: depth must be >= 1"):
        simulate_timed(g, {"s0": 0})
    bad = Graph()
    bad.add_task(Task.pipelined("a", ii=1, depth=1, writes={"o": 4}))
    bad.add_task(Task.pipelined("b", ii=1, depth=1, reads={"i": 5}))
    bad.connect("a", "o", "b", "i", 8, name="e")
    with pytest.raises(GraphError, match="edge e: a writes 4 tokens but b reads 5"):
        bad.validate()
    with pytest.raises(GraphError, match="non-decreasing"):
        Task("t", reads={"p": [3, 1]})
    with pytest.raises(GraphError, match="duplicate task name 'a'"):
        bad.add_task(Task("a"))
    loose = Graph()
    loose.add_task(Task.pipelined("a", ii=1, depth=1, writes={"o": 4}))
    with pytest.raises(GraphError, match="task a: port 'o' .* not connected"):
        loose.validate()
    cyc = Graph()
    cyc.add_task(Task("a", reads={"i": [0]}, writes={"o": [1]}))
    cyc.add_task(Task("b", reads={"i": [0]}, writes={"o": [1]}))
    cyc.connect("a", "o", "b", "i", 8)
    cyc.connect("b", "o", "a", "i", 8)
    assert cyc.validate().topological_order() is None  # a cycle is a graph (a feedback stream), not an error
    with pytest.raises(DeadlockError, match="wait-for cycle(.|\n)*Every stream waited on is empty"):
        simulate_unbounded(cyc)  # but each task reads before it writes: no token ever starts it


def test_a_run_past_its_event_budget_is_refused_naming_both() -> None:
    g = _chain(3, tokens=10)  # two streams of 10 tokens, each written and read: 40 events
    with pytest.raises(LimitError, match="3 tasks needs 40 events, past its budget of 39"):
        simulate_timed(g, max_events=39)
    run = simulate_timed(g, max_events=40)
    assert run.check() is run and run.makespan == simulate_unbounded(g).makespan


def test_stall_cycles_are_the_cycles_lost_by_a_sink_behind_depth_one_fifos() -> None:
    """Each token through a depth-1 FIFO costs a cycle more (the slot frees a cycle after its
    read); the sink's stalls plus its own latency are its finish."""
    g = _chain(2, tokens=20)
    halved = simulate_timed(g, {"s0": 1})
    assert halved.total_stall_cycles == halved.stall_cycles["k0"] + halved.stall_cycles["k1"] > 0
    assert halved.finish["k1"] == g.tasks["k1"].latency + halved.stall_cycles["k1"]


def test_a_deadlocked_run_keeps_its_sources_where_they_stopped() -> None:
    g = _rowsum_beside_its_input()
    stuck = simulate_timed(g, dict.fromkeys(["x0", "x1", "sum"], 2))
    assert stuck.makespan is None and latest_sources(g, stuck) is stuck
    with pytest.raises(DeadlockError):
        stuck.check()


def test_a_deadlock_on_an_unbounded_fifo_reports_what_each_task_did() -> None:
    """src writes a and b in turns, dst reads all of b first: with `a` one deep, src blocks on
    a1 (a0 unread) and dst, having read b0 a cycle after its write, waits for b1 on the unbounded
    `b`; sink never gets c. Each task's activity ends at its last event (0 with none)."""
    g = Graph()
    g.add_task(Task("src", writes={"a": np.arange(4), "b": np.arange(4)}))
    g.add_task(Task("dst", reads={"b": np.arange(4), "a": 4 + np.arange(4)}, writes={"c": [8]}))
    g.add_task(Task("sink", reads={"c": [0]}))
    g.connect("src", "a", "dst", "a", 32, name="a")
    g.connect("src", "b", "dst", "b", 32, name="b")
    g.connect("dst", "c", "sink", "c", 32, name="c")
    run = simulate_timed(g, {"a": 1, "b": None, "c": None})
    assert run.makespan is None and run.deadlock is not None
    assert "task src waits to write to stream a (full, 1/1)" in str(run.deadlock)
    assert "task dst waits to read from stream b (empty, 0/inf)" in str(run.deadlock)
    assert "task sink waits to read from stream c (empty, 0/inf)" in str(run.deadlock)
    assert run.write_times["b"].tolist() == [0] and run.read_times["b"].tolist() == [1]
    acts = activity(g, run)
    assert {task: act.end for task, act in acts.items()} == {"src": 0, "dst": 1, "sink": 0}
    assert acts["dst"].stalled_input.tolist() == [[0, 1]] and acts["sink"].stall_cycles == 0


def test_a_task_without_tokens_starts_at_0_and_takes_its_latency() -> None:
    g = _chain(2, tokens=4)
    g.add_task(Task("idle", latency=500))
    for run in (simulate_timed(g), simulate_unbounded(g)):
        assert (run.start["idle"], run.stall_cycles["idle"], run.finish["idle"], run.makespan) == (0, 0, 500, 500)
    empty = Graph()
    assert simulate_timed(empty).makespan == simulate_unbounded(empty).makespan == 0


def test_a_late_source_writes_each_token_just_before_its_read() -> None:
    """Fig. 8a: the target reads token k at 4 + 2k, one cycle after it may (read latency 1): the
    source, free to run late, writes it at 3 + 2k, so one slot suffices (the slot frees as the
    next token arrives) and the source ends 4 cycles later, as its last write."""
    g = Graph()
    g.add_task(Task("source", writes={"o": 3 + np.arange(5)}))
    g.add_task(Task("target", reads={"i": 2 * np.arange(5)}))
    g.connect("source", "o", "target", "i", 32, name="f")
    run = simulate_unbounded(g)
    late = latest_sources(g, run)
    assert run.write_times["f"].tolist() == [3, 4, 5, 6, 7] and late.write_times["f"].tolist() == [3, 5, 7, 9, 11]
    assert late.read_times["f"].tolist() == run.read_times["f"].tolist() == [4, 6, 8, 10, 12]
    assert (late.peak_occupancy["f"], late.finish["source"] - run.finish["source"], late.makespan) == (1, 4, run.makespan)


def test_the_critical_path_follows_the_inputs_each_task_waited_for() -> None:
    # by hand: b writes token j at 10 j + 1, a at j + 1; c reads both (token j at nominal j) and
    # waits for b's: it reads b's last token at 31 + 1 = 32 and writes its last at 33; d reads it
    # at 34 and finishes 6 cycles later (its depth 5 + 1). a never holds anyone up.
    from streamdsl.sim.timed import Segment, critical_path

    g = Graph()
    g.add_task(Task.pipelined("a", ii=1, depth=1, writes={"out": 4}))
    g.add_task(Task.pipelined("b", ii=10, depth=1, writes={"out": 4}))
    g.add_task(Task.pipelined("c", ii=1, depth=1, reads={"x": 4, "y": 4}, writes={"out": 4}))
    g.add_task(Task.pipelined("d", ii=1, depth=5, reads={"in": 4}))
    g.connect("a", "out", "c", "x", 32, name="a->c")
    g.connect("b", "out", "c", "y", 32, name="b->c")
    g.connect("c", "out", "d", "in", 32, name="c->d")
    for run in (simulate_unbounded(g), simulate_timed(g, {"a->c": 1, "b->c": 1, "c->d": 4})):
        assert run.makespan == 40
        assert critical_path(g, run) == [Segment("b", 0, 31, None), Segment("c", 32, 33, "b->c"), Segment("d", 34, 40, "c->d")]


def test_the_critical_path_follows_a_full_output_to_the_reader_that_freed_it() -> None:
    # p writes each token to q (II 10, a FIFO of 1) and to r; blocked on q's full FIFO, p hands r
    # its tokens at q's pace, so r, which ends last, waited on p, and p on q's reads.
    from streamdsl.sim.timed import critical_path

    g = Graph()
    g.add_task(Task.pipelined("p", ii=1, depth=1, writes={"q": 6, "r": 6}))
    g.add_task(Task.pipelined("q", ii=10, depth=1, reads={"in": 6}))
    g.add_task(Task.pipelined("r", ii=1, depth=30, reads={"in": 6}))  # a long pipeline: r ends last
    g.connect("p", "q", "q", "in", 32, name="p->q")
    g.connect("p", "r", "r", "in", 32, name="p->r")
    run = simulate_timed(g, {"p->q": 1, "p->r": 8})
    path = critical_path(g, run)
    assert [(s.task, s.waited_on) for s in path][-3:] == [("q", "p->q"), ("p", "p->q"), ("r", "p->r")]
    assert path[-1].end == run.makespan and all(a.end <= b.start for a, b in zip(path, path[1:]))
    q_reads = run.read_times["p->q"]
    assert path[-2].start - g.free_latency in q_reads  # p's last wait ended when q's read freed the slot
