"""min-bits sizing (the default): the fewest FIFO bits at which the timed makespan equals that of
infinite FIFOs, on the PolyBench ports, the DSL test programs and random DAGs; the makespan/memory
trade-off curve; the emitted design runs in the functional simulator with those depths."""

from __future__ import annotations

import time

import numpy as np
import pytest
from dsl import polybench as PB
from dsl import programs as P

import streamdsl as sd
from lowering import fifo_sizing
from lowering.fifo_sizing import size_fifos, tradeoff
from streamdsl.graph import Graph, Task
from streamdsl.sim.timed import simulate_timed, simulate_unbounded

from .fifo_dags import random_dag

PROGRAMS = {
    **{f"polybench/{name}": (lambda name=name: PB.cases(32, 8)[name]) for name in PB.cases(32, 8)},
    "diamond": lambda: P.diamond(2, 64, 16),
    "layernorm": lambda: P.layernorm(4, 64, 16),
    "transpose": lambda: P.transpose(32, 64, 16),
    "fork_join": lambda: P.fork_join(2, 64, 16),
    "gelu_mlp": lambda: P.gelu_mlp(32, 64, 16),
}


def _reaches(graph, depths: dict[str, int], makespan: int) -> bool:  # noqa: ANN001
    run = simulate_timed(graph, depths)
    return run.deadlock is None and run.makespan == makespan


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_min_bits_reaches_the_unbounded_makespan_with_the_fewest_bits(name: str) -> None:
    case = PROGRAMS[name]()
    design = sd.compile(case.program)  # min-bits is the default
    graph, sizing = design.graph, design.sizing
    makespan = simulate_unbounded(graph).makespan
    assert sizing.mode == "min-bits" and sizing.makespan == makespan and _reaches(graph, sizing.depths, makespan)
    assert sizing.total_bits <= size_fifos(graph, "lp").total_bits
    for mode in ("conservative", "default"):
        other = size_fifos(graph, mode)
        if _reaches(graph, other.depths, makespan):
            assert sizing.total_bits <= 1.1 * other.total_bits, mode
    xs = case.inputs(np.random.default_rng(3))  # the functional simulator agrees: no deadlock, right numbers
    got, want = design.simulate(*xs), case.reference(*xs)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))


def test_every_fifo_is_as_small_as_the_makespan_allows_one_at_a_time() -> None:
    """min-bits is a local minimum: shrinking any single FIFO by one slot stalls or deadlocks."""
    graph = sd.compile(PB.gemver(32, 8).program).graph
    sizing = size_fifos(graph)
    makespan = simulate_unbounded(graph).makespan
    for name, depth in sizing.depths.items():
        if depth > 1:
            assert not _reaches(graph, {**sizing.depths, name: depth - 1}, makespan), name


def test_min_bits_on_random_dags_is_never_worse_than_the_lp() -> None:
    for kind in ("diamond", "nested", "random"):
        graph = random_dag(kind, 40, seed=7)
        lp, best = size_fifos(graph, "lp"), size_fifos(graph)
        makespan = simulate_unbounded(graph).makespan
        assert best.total_bits <= lp.total_bits and _reaches(graph, best.depths, makespan)
        assert best.simulations > 0


def test_a_graph_whose_run_costs_a_third_of_the_search_budget_is_still_shrunk() -> None:
    """min-bits refines by simulation whenever three runs fit in its event budget: the LP makes
    the fast `b` park its whole output ahead of the slower `c`, min-bits lets it stall."""
    tokens, graph = 7000, Graph()
    graph.add_task(Task.pipelined("a", ii=1, depth=1, writes={"o": tokens}))
    graph.add_task(Task.pipelined("b", ii=1, depth=3, reads={"i": tokens}, writes={"o": tokens}))
    graph.add_task(Task.pipelined("c", ii=2, depth=1, reads={"i": tokens}, writes={"o": tokens}))
    graph.add_task(Task.pipelined("d", ii=1, depth=1, reads={"i": tokens}))
    for src, dst in ("ab", "bc", "cd"):
        graph.connect(src, "o", dst, "i", 32, name=src + dst)
    assert fifo_sizing.SEARCH_EVENTS // 4 < graph.compiled.num_events <= fifo_sizing.SEARCH_EVENTS // 3
    sizing, makespan = size_fifos(graph), simulate_unbounded(graph).makespan
    assert size_fifos(graph, "lp").depths["bc"] > tokens // 3 and _reaches(graph, sizing.depths, makespan)
    for name, depth in sizing.depths.items():  # each FIFO as small as the makespan allows
        assert depth == 1 or not _reaches(graph, {**sizing.depths, name: depth - 1}, makespan), name


def test_a_search_budget_of_exactly_three_runs_is_spent() -> None:
    """The simulator searches when its event budget holds three runs of the graph (one or two
    find nothing), and never spends more than the budget."""
    graph = random_dag("diamond", 6, seed=3)
    runs = graph.compiled.num_events
    assert fifo_sizing._Judge(graph, 0, budget=3 * runs).affordable()
    assert not fifo_sizing._Judge(graph, 0, budget=3 * runs - 1).affordable()


def test_min_bits_reports_the_timed_simulations_it_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append(args)
        return simulate_timed(*args, **kwargs)

    monkeypatch.setattr(fifo_sizing, "simulate_timed", counted)
    sizing = size_fifos(random_dag("nested", 12, seed=5))
    assert sizing.simulations == len(runs) > 1


def test_tradeoff_curve_trades_makespan_for_bits() -> None:
    graph = sd.compile(PB.matmul_chain(32, 8).program).graph
    makespan = simulate_unbounded(graph).makespan
    curve = tradeoff(graph, slacks=(0.0, 0.1, 0.5))
    assert [p.slack for p in curve] == [0.0, 0.1, 0.5] and curve[0].makespan == makespan
    for point in curve:
        assert point.makespan <= makespan * (1 + point.slack)
    assert curve[-1].total_bits <= curve[0].total_bits
    within = tradeoff(graph, slacks=(0.0, 0.5), bit_budget=curve[-1].total_bits)
    assert within and all(p.total_bits <= curve[-1].total_bits for p in within)


def test_a_sizing_with_slack_reports_the_makespan_its_depths_reach() -> None:
    """With 50% slack min-bits may give up speed for bits; the makespan it reports is its depths'
    timed run, not the unbounded one."""
    graph = random_dag("diamond", 6, seed=3)
    sizing = size_fifos(graph, "min-bits", slack=0.5)
    run = simulate_timed(graph, sizing.depths)
    assert run.deadlock is None and sizing.makespan == run.makespan > simulate_unbounded(graph).makespan


def test_each_tradeoff_point_reports_the_seconds_its_sizing_took() -> None:
    graph = random_dag("diamond", 6, seed=3)
    start = time.perf_counter()
    curve = tradeoff(graph, slacks=(0.0, 0.5))
    elapsed = time.perf_counter() - start
    assert all(isinstance(p.seconds, float) and p.seconds > 0 for p in curve)
    assert sum(p.seconds for p in curve) <= elapsed


@pytest.mark.slow
def test_2mm_at_1024_cubed_with_64_tiles_fits_on_chip() -> None:
    design = sd.compile(PB.two_mm(1024, 64).program)
    u55c_bits = int(42.6 * 2**20 * 8)
    lp = size_fifos(design.graph, "lp")  # 3.9 MiB: its DMAs wait for their readers (it parked 187 MiB of them before)
    assert design.sizing.total_bits < lp.total_bits < u55c_bits
    assert max(d for name, d in lp.depths.items() if name.startswith("dma_load")) <= 2
    assert design.sizing.makespan == simulate_unbounded(design.graph).makespan
