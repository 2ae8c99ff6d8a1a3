"""FIFO sizing by LP, judged by the timed simulator on the paper's examples and random DAGs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowering import fifo_sizing
from lowering.fifo_sizing import size_fifos
from streamdsl.errors import DeadlockError
from streamdsl.graph import Graph, GraphError, Task, slots_needed
from streamdsl.sim.timed import latest_sources, simulate_timed, simulate_unbounded

from .fifo_dags import KINDS, random_dag

D0, D1, T = 5, 12, 32


def paper_reconvergent(d0: int = D0, d1: int = D1, tokens: int = T) -> Graph:
    """Fig. 8f: Kernel0 feeds Kernel1 and Kernel2, Kernel1 feeds Kernel2 (all II = 1)."""
    g = Graph()
    g.add_task(Task.pipelined("kernel0", ii=1, depth=d0, writes={"to1": tokens, "to2": tokens}))
    g.add_task(Task.pipelined("kernel1", ii=1, depth=d1, reads={"in": tokens}, writes={"out": tokens}))
    g.add_task(Task.pipelined("kernel2", ii=1, depth=3, reads={"from0": tokens, "from1": tokens}))
    g.connect("kernel0", "to1", "kernel1", "in", 32, name="d01")
    g.connect("kernel1", "out", "kernel2", "from1", 32, name="d12")
    g.connect("kernel0", "to2", "kernel2", "from0", 32, name="d02")
    return g


def layernorm_like(row: int = 24) -> Graph:
    """Reconvergence through a reduction: the mean of a row is needed before the row's first element."""
    g = Graph()
    g.add_task(Task.pipelined("load", ii=1, depth=4, writes={"a": row, "b": row}))
    g.add_task(Task.pipelined("mean", ii=1, depth=6, reads={"a": row}, writes={"m": 1}))
    g.add_task(Task.pipelined("center", ii=1, depth=2, reads={"m": 1, "x": row}, writes={"y": row}))
    g.add_task(Task.pipelined("store", ii=1, depth=1, reads={"y": row}))
    g.connect("load", "a", "mean", "a", 512, name="to_mean")
    g.connect("load", "b", "center", "x", 512, name="bypass")
    g.connect("mean", "m", "center", "m", 32, name="mu")
    g.connect("center", "y", "store", "y", 512, name="out")
    return g


def _worse(graph: Graph, depths: dict[str, int]) -> bool:
    """Deadlocks, or finishes later, or stalls some task more than with infinite FIFOs."""
    free, res = simulate_unbounded(graph), simulate_timed(graph, depths)
    return res.deadlock is not None or res.makespan > free.makespan or res.total_stall_cycles > free.total_stall_cycles


def test_paper_reconvergent_example() -> None:
    g = paper_reconvergent()
    sizing = size_fifos(g, "lp")
    assert sizing.delays["d02"] >= D0 + D1
    assert sizing.delays["d01"] >= D0 and sizing.delays["d12"] >= D1
    assert sizing.depths["d02"] >= D1  # it absorbs what kernel0 emits while kernel1 fills its pipeline
    res = simulate_timed(g, sizing.depths)
    assert res.deadlock is None and res.makespan == simulate_unbounded(g).makespan
    assert _worse(g, {**sizing.depths, "d02": sizing.depths["d02"] - 1})
    assert _worse(g, dict.fromkeys(sizing.depths, 2))


def test_reduction_reconvergence_deadlocks_at_depth_two() -> None:
    g = layernorm_like(row=24)
    sizing = size_fifos(g, "lp")
    assert sizing.depths["bypass"] >= 24 - 2  # a whole row waits for its mean
    assert simulate_timed(g, sizing.depths).makespan == simulate_unbounded(g).makespan
    assert _worse(g, {**sizing.depths, "bypass": sizing.depths["bypass"] - 1})
    stuck = simulate_timed(g, dict.fromkeys(sizing.depths, 2)).deadlock
    assert isinstance(stuck, DeadlockError) and stuck.blocked["load"][:2] == ("bypass", "full")


def test_lp_matches_brute_force_on_three_tasks() -> None:
    """The LP optimum equals an exhaustive search over integer start shifts."""
    for d0, d1, tokens in [(5, 12, 32), (2, 30, 16), (9, 3, 8)]:
        g = paper_reconvergent(d0, d1, tokens)
        run = simulate_unbounded(g)
        lags, weights = fifo_sizing._lags(g, run), fifo_sizing._weights(g, run)
        names = list(g.tasks)
        ub = [run.makespan - run.finish[n] for n in names]
        grids = np.meshgrid(*[np.arange(u + 1) for u in ub], indexing="ij")
        xs = {n: grid.ravel() for n, grid in zip(names, grids)}
        ok = np.ones(grids[0].size, bool)
        cost = np.zeros(grids[0].size)
        for e, lag, w in zip(g.edges, lags, weights):
            delta = xs[e.dst] - xs[e.src]
            ok &= delta >= lag
            cost += w * delta
        best = cost[ok].min()
        sizing = size_fifos(g, "lp")
        shift = {n: sizing.starts[n] - run.start[n] for n in names}
        got = sum(w * (shift[e.dst] - shift[e.src]) for e, w in zip(g.edges, weights))
        assert got == pytest.approx(best)


@given(st.sampled_from(KINDS), st.integers(2, 200), st.integers(0, 2**32))
def test_lp_depths_never_deadlock_nor_slow_down(kind: str, n: int, seed: int) -> None:
    graph = random_dag(kind, n, seed)
    free = simulate_unbounded(graph)
    sizing = size_fifos(graph, "lp")
    res = simulate_timed(graph, sizing.depths)
    assert res.deadlock is None  # (a)
    assert res.makespan == free.makespan == sizing.makespan_bound  # (b)
    # (c) the bits reported are those of the depths chosen, never more than the infinite-FIFO
    # run's peak occupancy nor than naive sizing
    assert sizing.total_bits == sum(sizing.depths[e.name] * e.token_bits for e in graph.edges)
    assert sizing.total_bits <= min(sizing.naive_bits, sizing.sim_peak_bits)
    naive = simulate_timed(graph, graph.naive_depths())
    assert naive.makespan == free.makespan
    conservative = size_fifos(graph, "conservative")
    slow = simulate_timed(graph, conservative.depths)
    assert slow.deadlock is None and slow.makespan <= conservative.makespan_bound
    assert conservative.total_bits <= sizing.total_bits


def test_depth_two_deadlocks_or_stalls_reconvergent_graphs_and_lp_fixes_them() -> None:
    worse = {"diamond": 0, "nested": 0}
    for kind, seed in itertools.product(worse, range(12)):
        g = random_dag(kind, 30, seed)
        worse[kind] += _worse(g, dict.fromkeys((e.name for e in g.edges), 2))
        fixed = simulate_timed(g, size_fifos(g, "lp").depths)
        assert fixed.deadlock is None and fixed.makespan == simulate_unbounded(g).makespan
    print(f"depth 2 everywhere deadlocks or stalls: {worse} of 12 each")
    assert worse["diamond"] >= 8 and worse["nested"] >= 8


def test_each_lp_depth_is_exact_for_its_delay() -> None:
    g = layernorm_like()
    run, sizing = latest_sources(g, simulate_unbounded(g)), size_fifos(g, "lp")  # the schedule the LP shifts
    for e in g.edges:
        shifted = run.read_times[e.name] + (sizing.starts[e.dst] - run.start[e.dst]) - (sizing.starts[e.src] - run.start[e.src])
        assert sizing.depths[e.name] == max(1, slots_needed(run.write_times[e.name], shifted, g.free_latency))


def test_naive_and_default_modes_and_report() -> None:
    g = paper_reconvergent()
    naive, default = size_fifos(g, "naive"), size_fifos(g, "default")
    assert naive.depths == {"d01": T, "d12": T, "d02": T} and naive.total_bits == 3 * T * 32
    assert set(default.depths.values()) == {2}
    assert size_fifos(g, "normal").depths == size_fifos(g, "lp").depths
    assert set(size_fifos(g, "lp").report()) == {"mode", "seconds", "total_bits", "naive_bits", "tensor_deep_bits", "sim_peak_bits"}


def test_conservative_mode_stretches_to_the_slowest_task() -> None:
    g = Graph()  # "fast" reads an input, so it is not a source that the LP already runs late
    g.add_task(Task.pipelined("head", ii=1, depth=1, writes={"o": 64}))
    g.add_task(Task.pipelined("fast", ii=1, depth=2, reads={"i": 64}, writes={"o": 64}))
    g.add_task(Task.pipelined("slow", ii=4, depth=2, reads={"i": 64}))
    g.connect("head", "o", "fast", "i", 32, name="h")
    g.connect("fast", "o", "slow", "i", 32, name="f")
    normal, conservative = size_fifos(g, "lp"), size_fifos(g, "conservative")
    assert conservative.depths["f"] < normal.depths["f"]
    assert normal.depths["h"] <= 2  # the source waits for "fast" instead of filling its FIFO
    res = simulate_timed(g, conservative.depths)
    assert res.deadlock is None and res.stall_cycles["fast"] > 0


def test_errors() -> None:
    g = paper_reconvergent()
    with pytest.raises(ValueError, match="mode 'fast' is unknown; choose one of min-bits, lp, normal"):
        size_fifos(g, "fast")
    cyc = Graph()
    cyc.add_task(Task("a", reads={"i": [0]}, writes={"o": [1]}))
    cyc.add_task(Task("b", reads={"i": [0]}, writes={"o": [1]}))
    cyc.connect("a", "o", "b", "i", 8)
    cyc.connect("b", "o", "a", "i", 8)
    with pytest.raises(GraphError, match="cycle through tasks"):
        size_fifos(cyc, "lp")


@given(st.integers(1, 40), st.integers(1, 30), st.integers(1, 6), st.integers(1, 6), st.integers(0, 40))
def test_depth_is_the_papers_max_tokens_for_constant_rate_tasks(tokens: int, d: int, ii_src: int, ii_dst: int, slack: int) -> None:
    """Eq. 1 (source faster: the FIFO peaks when the source finishes) and Eq. 2 (source slower: it
    peaks before the target starts), written with this model's FIFO latencies (free_latency = 1,
    and the paper's latency L is the cycle of the last write here)."""
    k = np.arange(tokens)
    written = d + k * ii_src
    delay = int(np.max(written + 1 - k * ii_dst)) + slack  # at least the exact lag
    depth = slots_needed(written, delay + k * ii_dst, 1)
    last = int(written[-1])
    if ii_src <= ii_dst:
        assert depth == min(tokens, tokens - 1 - (last - delay - 1) // ii_dst)
    else:
        assert depth == min(tokens, -(-(delay + 1 - d) // ii_src))
