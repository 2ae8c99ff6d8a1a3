"""The LP minimises bits: checked against an exhaustive search over task start shifts that uses
only the definitions (a read never waits for its write; depth = peak occupancy), and the repair
of a solver answer that breaks a lag."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lowering import fifo_sizing
from lowering.fifo_sizing import size_fifos
from streamdsl.graph import Graph, Task, slots_needed
from streamdsl.sim.timed import simulate_timed, simulate_unbounded

from .fifo_dags import KINDS, random_dag


def pack_late(tokens: int = 32, group: int = 4, late: int = 80, narrow: int = 32, wide: int = 512) -> Graph:
    """`load` feeds `pack` (narrow tokens, `group` of them packed into one wide token) and `sink`,
    which reads every narrow token first and the packed ones from cycle `late`. Delaying `pack`
    moves buffering from the wide FIFO to the narrow one: fewer bits, more tokens."""
    k, j = np.arange(tokens), np.arange(tokens // group)
    g = Graph()
    g.add_task(Task("load", writes={"a": k, "b": k}))
    g.add_task(Task("pack", reads={"a": k}, writes={"w": group * j + group + 1}))
    g.add_task(Task("sink", reads={"b": k, "w": late + j}))
    g.connect("load", "a", "pack", "a", narrow, name="a")
    g.connect("load", "b", "sink", "b", narrow, name="b")
    g.connect("pack", "w", "sink", "w", wide, name="w")
    return g


def gather(tokens: int = 32, group: int = 4, every: int = 3, late: int = 120, narrow: int = 128, wide: int = 512) -> Graph:
    """As `pack_late`, but `pack` reads a narrow token every `every` cycles and writes its packed
    tokens in one burst at the end: the narrow FIFO fills slowly, the wide one fast, so the
    bits per cycle of delay (bits x tokens / span) decide which one should buffer."""
    k, j = np.arange(tokens), np.arange(tokens // group)
    g = Graph()
    g.add_task(Task("load", writes={"a": k, "b": k}))
    g.add_task(Task("pack", reads={"a": every * k}, writes={"w": every * tokens + j}))
    g.add_task(Task("sink", reads={"b": k, "w": late + j}))
    g.connect("load", "a", "pack", "a", narrow, name="a")
    g.connect("load", "b", "sink", "b", narrow, name="b")
    g.connect("pack", "w", "sink", "w", wide, name="w")
    return g


def fewest_bits_by_search(g: Graph) -> int:
    """Every integer start shift within the unbounded run's makespan such that no read waits for
    its write; each FIFO as deep as its peak occupancy under that schedule."""
    free = simulate_unbounded(g)
    names = list(g.tasks)
    best = None
    for xs in itertools.product(*[range(free.makespan - free.finish[n] + 1) for n in names]):
        x = dict(zip(names, xs))
        reads = {e.name: free.read_times[e.name] + x[e.dst] - x[e.src] for e in g.edges}
        if all(np.all(reads[e.name] >= free.write_times[e.name] + g.read_latency) for e in g.edges):
            bits = sum(max(1, slots_needed(free.write_times[e.name], reads[e.name], g.free_latency)) * e.token_bits for e in g.edges)
            best = bits if best is None else min(best, bits)
    assert best is not None
    return best


@pytest.mark.parametrize(("build", "params"), [
    (pack_late, {}), (pack_late, {"narrow": 16, "wide": 1024}), (pack_late, {"tokens": 16, "late": 30}),
    (pack_late, {"group": 2, "late": 50}), (pack_late, {"group": 8}),
    (gather, {}), (gather, {"every": 2, "narrow": 256, "wide": 1024, "late": 80}), (gather, {"narrow": 64, "wide": 256}),
    (gather, {"every": 6, "narrow": 128, "wide": 64, "late": 200}),  # the narrow FIFO's slow reader sets its rate
])
def test_lp_needs_no_more_bits_than_any_schedule_without_waits(build, params: dict[str, int]) -> None:
    g = build(**params)
    sizing = size_fifos(g, "lp")
    assert sizing.total_bits == sum(sizing.depths[e.name] * e.token_bits for e in g.edges)
    assert sizing.total_bits <= fewest_bits_by_search(g)
    assert 0 <= sizing.lp_seconds <= sizing.seconds  # CBC's time is part of the whole sizing's
    res = simulate_timed(g, sizing.depths)
    assert res.deadlock is None and res.makespan == simulate_unbounded(g).makespan


@given(st.sampled_from(KINDS), st.integers(2, 12), st.integers(0, 2**16), st.data())
def test_a_start_that_breaks_a_lag_is_pushed_to_the_least_schedule_that_keeps_them_all(kind: str, n: int, seed: int, data) -> None:
    """CBC's vertex is integral, so `_repair` only matters if a solver answer is off: then every
    start is pushed no later than needed for every edge's lag, and never earlier than it was."""
    g = random_dag(kind, n, seed)
    names = list(g.tasks)
    index = {name: i for i, name in enumerate(names)}
    src = np.array([index[e.src] for e in g.edges], dtype=np.int64)
    dst = np.array([index[e.dst] for e in g.edges], dtype=np.int64)
    lags = np.array(data.draw(st.lists(st.integers(-6, 6), min_size=len(g.edges), max_size=len(g.edges))), dtype=np.int64)
    shift = np.array(data.draw(st.lists(st.integers(0, 10), min_size=len(names), max_size=len(names))), dtype=np.int64)
    got = fifo_sizing._repair(names, src, dst, lags, shift.copy())
    s = np.array([got[name] for name in names])
    assert np.all(s >= shift)
    assert np.all(s[dst] - s[src] >= lags)
    for v in range(len(names)):  # least: a pushed start is held by some edge's lag exactly
        held = [s[i] + lag for i, j, lag in zip(src, dst, lags) if j == v]
        assert s[v] == max([shift[v], *held])


@given(st.integers(2, 9), st.data())
def test_repair_ends_on_a_cycle_whose_lags_add_up_to_at_most_zero(n: int, data) -> None:  # noqa: ANN001
    """A feedback stream closes a cycle; in the achieved run every lag is at most 0, so the
    cycle's sum is: the edge-by-edge repair ends, every lag kept, no start moved earlier."""
    lags = np.array(data.draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n)), dtype=np.int64)
    lags[-1] = min(int(lags[-1]), -int(lags[:-1].sum()))  # the cycle's lags add up to at most 0
    src, dst = np.arange(n), (np.arange(n) + 1) % n  # 0 -> 1 -> ... -> n-1 -> 0
    shift = np.array(data.draw(st.lists(st.integers(0, 10), min_size=n, max_size=n)), dtype=np.int64)
    got = fifo_sizing._repair([f"t{i}" for i in range(n)], src, dst, lags, shift.copy())
    s = np.array([got[f"t{i}"] for i in range(n)])
    assert np.all(s >= shift) and np.all(s[dst] - s[src] >= lags)


@given(st.sampled_from(KINDS), st.integers(2, 40), st.integers(0, 2**16), st.sampled_from(["lp", "conservative"]))
@example("diamond", 8, 7, "lp").via("the LP's bits are a linear surrogate: here the unshifted schedule needs fewer")
@example("nested", 5, 41, "lp").via("as above")
def test_the_schedule_reported_fits_the_makespan_and_gives_the_delays(kind: str, n: int, seed: int, mode: str) -> None:
    """Starts are cycles of a schedule the design can follow: none before 0, every task done by
    the makespan bound, and each edge's delay the difference of its tasks' starts."""
    g = random_dag(kind, n, seed)
    sizing = size_fifos(g, mode)
    free = simulate_unbounded(g)
    for name, start in sizing.starts.items():
        assert type(start) is int and 0 <= start and start + free.finish[name] - free.start[name] <= sizing.makespan_bound
    assert sizing.delays == {e.name: sizing.starts[e.dst] - sizing.starts[e.src] for e in g.edges}


def side_by_side(*graphs: Graph) -> Graph:
    """One graph holding independent copies of `graphs` (names suffixed with their index)."""
    out = Graph()
    for i, g in enumerate(graphs):
        for t in g.tasks.values():
            out.add_task(Task(f"{t.name}{i}", dict(t.reads), dict(t.writes), latency=t.latency))
        for e in g.edges:
            out.connect(f"{e.src}{i}", e.src_port, f"{e.dst}{i}", e.dst_port, e.token_bits, name=f"{e.name}{i}")
    return out


@pytest.mark.parametrize("second", [{"narrow": 128, "wide": 128}, {"narrow": 256, "wide": 256}, {"narrow": 128, "wide": 256}])
def test_independent_parts_need_the_bits_they_need_alone(second: dict[str, int]) -> None:
    """One part gains from delaying its packer, the other does not: neither 'no delay' nor
    'delay everything' is optimal for both, the LP must decide each on its own."""
    parts = [pack_late(), pack_late(**second)]
    whole = size_fifos(side_by_side(*parts), "lp")
    assert whole.total_bits == sum(size_fifos(part, "lp").total_bits for part in parts)
