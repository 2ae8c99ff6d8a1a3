"""FIFO sizing by LP, judged by the timed simulator on the paper's examples and random DAGs."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lowering import fifo_sizing
from lowering.fifo_sizing import size_fifos
from streamdsl.errors import DeadlockError
from streamdsl.graph import Graph, Task, slots_needed
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


@pytest.mark.parametrize("mode", fifo_sizing.MODES)
def test_a_sizing_reports_its_mode_its_time_and_for_min_bits_its_checked_makespan(mode: str) -> None:
    g = layernorm_like()
    t0 = time.perf_counter()
    sizing = size_fifos(g, mode)
    elapsed = time.perf_counter() - t0
    name = "lp" if mode == "normal" else mode
    assert sizing.mode == name and sizing.report()["mode"] == name
    assert 0 <= sizing.lp_seconds <= sizing.seconds <= elapsed and sizing.report()["seconds"] == sizing.seconds
    assert (sizing.lp_seconds > 0) == (mode not in ("naive", "default"))  # CBC ran, and its time is counted
    report = sizing.report()
    if mode == "min-bits":
        assert report["makespan"] == sizing.makespan == simulate_timed(g, sizing.depths).makespan == simulate_unbounded(g).makespan
        assert report["simulations"] == sizing.simulations > 0
    else:
        assert "makespan" not in report and "simulations" not in report


def test_errors() -> None:
    g = paper_reconvergent()
    with pytest.raises(ValueError, match="mode 'fast' is unknown; choose one of min-bits, lp, normal"):
        size_fifos(g, "fast")
    cyc = Graph()
    cyc.add_task(Task("a", reads={"i": [0]}, writes={"o": [1]}))
    cyc.add_task(Task("b", reads={"i": [0]}, writes={"o": [1]}))
    cyc.connect("a", "o", "b", "i", 8)
    cyc.connect("b", "o", "a", "i", 8)
    with pytest.raises(DeadlockError, match=r"wait-for cycle: (a -> b -> a|b -> a -> b)(.|\n)*no token to start it"):
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


@st.composite
def graphs_of_any_speeds(draw) -> Graph:  # noqa: ANN001
    """A chain of tasks with random token times and latencies (some of 1 cycle, some ending on
    their last event), random FIFO latencies and some internal links of fixed depth (0: unbounded)."""
    g = Graph(draw(st.integers(0, 3)), draw(st.integers(1, 3)))
    n = draw(st.integers(0, 5))
    tokens = [draw(st.integers(1, 4)) for _ in range(n - 1)]
    for v in range(n):
        times = {p: sorted(draw(st.lists(st.integers(0, 9), min_size=k, max_size=k)))
                 for p, k in (("i", tokens[v - 1] if v else 0), ("o", tokens[v] if v < n - 1 else 0)) if k}
        last = max((t[-1] for t in times.values()), default=0)
        latency = draw(st.sampled_from([1, last, last + draw(st.integers(1, 9))])) if last <= 1 else draw(st.sampled_from([last, last + 3]))
        g.add_task(Task(f"t{v}", reads={p: t for p, t in times.items() if p == "i"}, writes={p: t for p, t in times.items() if p == "o"},
                        latency=max(latency, last)))
    for v in range(n - 1):
        g.connect(f"t{v}", "o", f"t{v + 1}", "i", draw(st.sampled_from([8, 32])), name=f"e{v}",
                  fixed_depth=draw(st.sampled_from([None, None, 0, 1, 3])))
    return g


def _one_cycle_task_beside_a_slow_one() -> Graph:
    g = Graph(2, 3)
    g.add_task(Task("quick", writes={"o": [0, 1]}, latency=1))  # its last event ends its one cycle
    g.add_task(Task("slow", reads={"i": [3, 7]}, latency=9))
    g.connect("quick", "o", "slow", "i", 8, name="e0")
    return g


@given(graphs_of_any_speeds())
@example(_one_cycle_task_beside_a_slow_one())
def test_stretching_slows_every_task_to_the_slowest_and_keeps_the_fifos(g: Graph) -> None:
    """Conservative mode's model changes how fast tasks run, never the FIFOs: each event of a task
    of latency L moves to the first cycle at or after t x slowest / L (every task then takes the
    slowest's latency; one of latency 0 counts as 1), and the FIFO rules and the edges (bits,
    fixed links and their depths) stay."""
    slow = fifo_sizing.stretched(g)
    cycles = {name: max(1, t.latency) for name, t in g.tasks.items()}  # a task of latency 0 takes a cycle
    slowest = max(cycles.values(), default=1)
    assert (slow.read_latency, slow.free_latency) == (g.read_latency, g.free_latency)
    assert [(e.name, e.src, e.src_port, e.dst, e.dst_port, e.token_bits, e.fixed, e.depth) for e in slow.edges] == [
        (e.name, e.src, e.src_port, e.dst, e.dst_port, e.token_bits, e.fixed, e.depth) for e in g.edges]
    assert list(slow.tasks) == list(g.tasks)
    for name, task in g.tasks.items():
        assert slow.tasks[name].latency == slowest
        for before, after in ((task.reads, slow.tasks[name].reads), (task.writes, slow.tasks[name].writes)):
            assert set(after) == set(before)
            for port, times in before.items():
                exact = [int(t) * slowest / cycles[name] for t in times]
                assert [int(t) for t in after[port]] == [math.ceil(x) for x in exact], (name, port)


def with_empty_stream(g: Graph, src: str, dst: str) -> Graph:
    """`g` with one more stream, carrying no tokens in this invocation, from `src` to `dst` (first in the edge list)."""
    out = Graph(g.read_latency, g.free_latency)
    for t in g.tasks.values():
        reads = {**t.reads, **({"nil": np.zeros(0, np.int64)} if t.name == dst else {})}
        writes = {**t.writes, **({"nil": np.zeros(0, np.int64)} if t.name == src else {})}
        out.add_task(Task(t.name, reads, writes, latency=t.latency))
    out.connect(src, "nil", dst, "nil", 64, name="nil")
    for e in g.edges:
        out.connect(e.src, e.src_port, e.dst, e.dst_port, e.token_bits, name=e.name)
    return out


@pytest.mark.parametrize("mode", ["lp", "conservative", "min-bits"])
@pytest.mark.parametrize(("src", "dst"), [("load", "pack"), ("load", "sink"), ("pack", "sink")])
@pytest.mark.parametrize("params", [{"narrow": 1, "wide": 6}, {"narrow": 8, "wide": 64}, {}])
def test_a_stream_without_tokens_changes_no_depth(mode: str, src: str, dst: str, params: dict[str, int]) -> None:
    """A stream of run-time length 0 costs nothing: the other FIFOs get the depths they get
    without it. It holds no reader back, so it constrains no start: from `pack`, which the LP
    delays to buffer narrow tokens instead of wide ones, it once tied `sink` to that delay (a lag
    of 0) and cost bits elsewhere (depth 2 for `a` and 8 for `w` where 32 and 6 take fewer)."""
    from .test_lp_bits import pack_late

    _same_depths_with_an_empty_stream(pack_late(**params), src, dst, mode)


@pytest.mark.parametrize("mode", ["lp", "min-bits"])
def test_a_stream_without_tokens_costs_nothing_where_a_bit_a_cycle_matters(mode: str) -> None:
    """A diamond of 1-3 bit streams, where a bit per cycle of delay would change the LP's choice."""
    g = random_dag("diamond", 4, 5)
    rng = np.random.default_rng(5)
    narrow = Graph(g.read_latency, g.free_latency)
    for t in g.tasks.values():
        narrow.add_task(t)
    for e in g.edges:
        narrow.connect(e.src, e.src_port, e.dst, e.dst_port, int(rng.integers(1, 4)), name=e.name)
    _same_depths_with_an_empty_stream(narrow, "t0", "t2", mode)


def _same_depths_with_an_empty_stream(g: Graph, src: str, dst: str, mode: str) -> None:
    base, sizing = size_fifos(g, mode), size_fifos(with_empty_stream(g, src, dst), mode)
    assert sizing.depths == {"nil": 1, **base.depths}
    assert sizing.total_bits == base.total_bits + 64


def linked_pack(tokens: int = 32, group: int = 4, late: int = 80, link: int | None = 2) -> Graph:
    """`pack_late` with its packer a node of two processes (`gather` reads the narrow tokens,
    `emit` writes the packed ones) joined by an internal link of fixed depth `link`: delaying
    `emit` alone would save the wide FIFO's bits, but a node's processes keep their relative timing."""
    k, j = np.arange(tokens), np.arange(tokens // group)
    g = Graph()
    g.add_task(Task("load", writes={"a": k, "b": k}))
    g.add_task(Task("gather", reads={"a": k}, writes={"l": group * j + group - 1}))
    g.add_task(Task("emit", reads={"l": group * j + group}, writes={"w": group * j + group + 1}))
    g.add_task(Task("sink", reads={"b": k, "w": late + j}))
    g.connect("load", "a", "gather", "a", 32, name="a")
    g.connect("load", "b", "sink", "b", 32, name="b")
    g.connect("gather", "l", "emit", "l", 32, name="l", fixed_depth=link or 0)
    g.connect("emit", "w", "sink", "w", 512, name="w")
    return g


@pytest.mark.parametrize("link", [1, 2, None])
@pytest.mark.parametrize("late", [40, 80])
def test_a_nodes_processes_keep_their_relative_timing(link: int | None, late: int) -> None:
    g = linked_pack(late=late, link=link)
    run = latest_sources(g, simulate_unbounded(g))
    sizing = size_fifos(g, "lp")
    assert sizing.starts["emit"] - sizing.starts["gather"] == run.start["emit"] - run.start["gather"]
    res = simulate_timed(g, sizing.depths)
    assert res.deadlock is None and res.makespan == run.makespan
