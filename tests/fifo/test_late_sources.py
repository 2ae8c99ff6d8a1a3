"""Sources (DMAs reading HBM) wait on their FIFOs for free: `latest_sources` and min-bits within
an on-chip budget (`size_fifos(..., fits=...)`), judged by the timed simulator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowering.fifo_sizing import size_fifos
from streamdsl.graph import Graph, Task
from streamdsl.sim.timed import latest_sources, simulate_timed, simulate_unbounded, sources

from .fifo_dags import KINDS, random_dag


def weight_after_attention(tokens: int = 64, dma_ii: int = 3, work: int = 400) -> Graph:
    """A matvec whose weight DMA (a source, `dma_ii` cycles per tile) could stream from cycle 0
    while its vector input is still `work` cycles of computation away: the unbounded run parks the
    weight in the FIFO. The matvec reads a tile per cycle once the vector is in."""
    g = Graph()
    g.add_task(Task.pipelined("x", ii=1, depth=1, writes={"o": 1}))
    g.add_task(Task("attention", reads={"i": [0]}, writes={"o": [work]}))
    g.add_task(Task("weight", writes={"o": [64 + k * dma_ii for k in range(tokens)]}))
    g.add_task(Task("matvec", reads={"x": [0], "w": list(range(tokens))}, writes={"o": [tokens + 3]}))
    g.add_task(Task.pipelined("store", ii=1, depth=1, reads={"i": 1}))
    g.connect("x", "o", "attention", "i", 32)
    g.connect("attention", "o", "matvec", "x", 2048)
    g.connect("weight", "o", "matvec", "w", 4096, name="w")
    g.connect("matvec", "o", "store", "i", 32)
    return g


def test_a_dma_waits_for_its_reader_instead_of_filling_its_fifo() -> None:
    g = weight_after_attention()
    free = simulate_unbounded(g)
    assert free.peak_occupancy["w"] > 60  # streaming from cycle 0, the weight waits in the FIFO
    late = latest_sources(g, free)
    assert late.makespan == free.makespan and sources(g) == {"x", "weight"}
    assert late.write_times["w"][-1] + g.read_latency <= late.read_times["w"][-1]
    for mode in ("min-bits", "lp"):
        sizing = size_fifos(g, mode)
        run = simulate_timed(g, sizing.depths)
        assert run.deadlock is None and run.makespan == free.makespan
        assert sizing.depths["w"] <= late.peak_occupancy["w"] < free.peak_occupancy["w"]
        assert run.stall_cycles["weight"] > 0  # the hardware's back-pressure is what delays it


@given(st.sampled_from(KINDS), st.integers(2, 80), st.integers(0, 2**32))
def test_late_sources_never_need_more_slots_and_the_timed_simulator_agrees(kind: str, n: int, seed: int) -> None:
    g = random_dag(kind, n, seed)
    free = simulate_unbounded(g)
    late = latest_sources(g, free)
    assert late.makespan == free.makespan
    assert all(late.peak_occupancy[e.name] <= free.peak_occupancy[e.name] for e in g.edges)
    run = simulate_timed(g, {e.name: max(1, late.peak_occupancy[e.name]) for e in g.edges})
    assert run.deadlock is None and run.makespan == free.makespan
    assert all(late.finish[t] <= free.makespan for t in g.tasks)


def test_min_bits_limits_prefetch_only_when_the_fifos_do_not_fit() -> None:
    g = weight_after_attention(tokens=64, dma_ii=8, work=600)  # the DMA is slower than the matvec
    free = simulate_unbounded(g)
    assert size_fifos(g, "min-bits", fits=lambda depths: True).prefetch is None
    budget = 20 * 4096

    def fits(depths) -> bool:
        return sum(depths[e.name] * e.token_bits for e in g.fifos) <= budget

    sizing = size_fifos(g, "min-bits", fits=fits)
    assert sizing.prefetch is not None and sizing.unbounded_makespan == free.makespan
    assert fits(sizing.depths) and not fits(size_fifos(g, "min-bits").depths)
    # the target: the timed run with the sources' FIFOs at the prefetch limit, the rest unbounded
    target = simulate_timed(g, {**dict.fromkeys((e.name for e in g.fifos), None), **sizing.prefetch_depths})
    run = simulate_timed(g, sizing.depths)
    assert run.deadlock is None and run.makespan == target.makespan == sizing.makespan > free.makespan
    late = latest_sources(g, target)  # the schedule reported delays that run's tasks, never starts one earlier
    assert all(sizing.starts[t] >= late.start[t] for t in g.tasks)
    step = max(sizing.prefetch + 1, round(sizing.prefetch * 2**0.5))  # the next limit it tries
    more = simulate_timed(g, {**dict.fromkeys((e.name for e in g.fifos), None), "w": step})
    assert not fits({**sizing.depths, "w": max(1, latest_sources(g, more).peak_occupancy["w"])})
    assert sizing.report()["prefetch_tokens"] == sizing.prefetch and sizing.report()["unbounded_makespan"] == free.makespan
    assert "prefetch_tokens" not in size_fifos(g, "min-bits").report()


@pytest.mark.parametrize("budget_bits", [0, 1])
def test_min_bits_gives_its_smallest_when_nothing_fits(budget_bits: int) -> None:
    g = weight_after_attention(dma_ii=8, work=600)
    sizing = size_fifos(g, "min-bits", fits=lambda depths: sum(depths.values()) <= budget_bits)
    assert sizing.prefetch == 2  # the caller's on-chip check reports what does not fit
    assert simulate_timed(g, sizing.depths).makespan == sizing.makespan


# the prefetch limits min-bits tries within a budget: 2, then a factor sqrt(2) apart
LIMITS = (2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91)


def limited_peaks(g: Graph, prefetch: int) -> dict[str, int]:
    """The proven depths of the run whose FIFOs out of the sources hold `prefetch` tokens."""
    limits = {e.name: (prefetch if e.src in sources(g) else None) for e in g.fifos}
    run = latest_sources(g, simulate_timed(g, limits))
    return {e.name: max(1, run.peak_occupancy[e.name]) for e in g.fifos}


@pytest.mark.parametrize("fitting", [3, 5, 7, 12])
def test_the_prefetch_limit_is_the_largest_of_the_limits_whose_run_fits(fitting: int) -> None:
    g = weight_after_attention(tokens=64, dma_ii=8, work=600)
    budget = g.bits(limited_peaks(g, fitting))  # a prefetch of `fitting` tokens just fits

    def fits(depths) -> bool:
        return g.bits(depths) <= budget

    most = simulate_unbounded(g).peak_occupancy["w"]
    tried = LIMITS[:next(i for i, p in enumerate(LIMITS) if p >= most) + 1]
    expected = max((p for p in tried if fits(limited_peaks(g, p))), default=2)  # by brute force
    sizing = size_fifos(g, "min-bits", fits=fits)
    assert sizing.prefetch == expected <= fitting and fits(sizing.depths)

