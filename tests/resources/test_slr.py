"""SLR placement (lowering/slr.py) against hand-computed optima: crossing bits, the HBM below SLR0,
the SLL capacity per boundary, and the timing of FIFOs that cross."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

import streamdsl as sd
from lowering.fifo_sizing import size_fifos
from lowering.hbm_channels import allocate_kernel
from lowering.resources import U55C_DEVICE, KernelUsage, Usage, kernel_usage
from lowering.slr import SMALL, SlrError, Wire, _coarsen, extra_depth, kernel_wires, place, with_crossings
from lowering.timing import U55C
from streamdsl.graph import Graph, Task
from streamdsl.sim.timed import simulate_timed, simulate_unbounded

BIG = Usage(DSP=2500)  # of an SLR's 3,008: two never share one


def test_three_big_nodes_put_the_one_with_the_heaviest_wires_in_the_middle() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG, "c": BIG})
    wires = [Wire("a", "b", 100), Wire("b", "c", 10), Wire("a", "c", 1000)]
    placement = place(usage, wires)
    # a in the middle: 100 + 1000 + 2 x 10 = 1,120 bits (b in the middle 2,110, c 1,210); of the two
    # mirror images the tie-break puts c (the third node) lower
    assert placement.slr == {"a": 1, "b": 2, "c": 0}
    assert placement.crossing_bits == 1120 and placement.boundary_bits == [1000 + 10, 100 + 10]


def test_a_small_node_joins_its_heaviest_neighbour_before_the_solve() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG, "c": BIG, "d": Usage(LUT=100)})
    wires = [Wire("a", "b", 100), Wire("b", "c", 10), Wire("a", "c", 1000), Wire("d", "a", 50), Wire("d", "c", 5)]
    # d (0.02% of an SLR) joins a (50 bits > 5): a in the middle as before, d's 5 bits to c cross once
    coarse, exact = place(usage, wires), place(usage, wires, small=0)
    assert coarse.slr == exact.slr == {"a": 1, "b": 2, "c": 0, "d": 1}
    assert coarse.crossing_bits == exact.crossing_bits == 1125


def test_a_small_node_held_in_slr0_does_not_bind_its_large_neighbour_there() -> None:
    """s (1.9% of an SLR's LUTs) joins its only neighbour a (45%) when grouped, but s's HBM wire
    (24,000 bits, over a boundary's 23,040 SLLs) holds s in SLR0, which c1 and c2 (49% each, held
    there too) leave no room for a: grouped, there is no placement; node by node, a sits in SLR1
    and its 5,000 bits to s cross one boundary. The exploration's quick check (`first`) keeps to
    the groups."""
    lut = U55C_DEVICE.per_slr.LUT
    usage = KernelUsage({"c1": Usage(LUT=0.49 * lut), "c2": Usage(LUT=0.49 * lut), "s": Usage(LUT=0.019 * lut),
                         "a": Usage(LUT=0.45 * lut)})
    wires = [Wire("c1", "HBM", 24000), Wire("c2", "HBM", 24000), Wire("s", "HBM", 24000), Wire("a", "s", 5000)]
    placement = place(usage, wires)
    assert placement.slr == {"c1": 0, "c2": 0, "s": 0, "a": 1} and placement.boundary_bits == [5000, 0]
    with pytest.raises(SlrError, match="no assignment"):
        place(usage, wires, first=True)
    assert _coarsen(usage, wires, U55C_DEVICE, SMALL) == {"c1": "c1", "c2": "c2", "s": "a", "a": "a"}  # the group that binds


def test_dmas_stay_near_the_hbm() -> None:
    usage = KernelUsage({"dma": Usage(LUT=1600), "t": BIG, "u": BIG})
    wires = [Wire("dma", "HBM", 512), Wire("dma", "t", 64), Wire("t", "u", 32)]
    placement = place(usage, wires)
    # the DMA in SLR0 (else 512 bits cross), t beside it, u one SLR up: 32 bits (u beside the DMA: 96)
    assert placement.slr == {"dma": 0, "t": 0, "u": 1} and placement.crossing_bits == 32


def test_sll_capacity_bounds_the_bits_across_a_boundary() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG})
    assert place(usage, [Wire("a", "b", 20000, "a->b")]).crossings == {"a->b": 1}
    narrow = replace(U55C_DEVICE, sll=19999)
    with pytest.raises(SlrError, match=r"19999 SLLs per boundary; largest nodes: a \(83% of an SLR\).*widest wire: a -> b, 20000 bits"):
        place(usage, [Wire("a", "b", 20000)], narrow)


def test_a_hint_is_the_placement_when_it_fits_and_ignored_when_it_does_not() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG, "c": BIG})
    wires = [Wire("a", "b", 100), Wire("b", "c", 10), Wire("a", "c", 1000)]
    hint = {"a": 0, "b": 1, "c": 2}  # not the fewest crossing bits, but it fits: a-b and a-c cross
    # boundary 0 (1,100 bits), a-c and b-c boundary 1 (1,010)
    placed = place(usage, wires, first=True, hint=hint)
    assert placed.slr == hint and placed.boundary_bits == [1100, 1010]
    # over 1,050 SLLs a boundary the hint does not fit: a goes in the middle (1,010 and 110 bits)
    placed = place(usage, wires, replace(U55C_DEVICE, sll=1050), first=True, hint=hint)
    assert placed.slr["a"] == 1 and max(placed.boundary_bits) <= 1050
    for bad in ({"a": 0, "b": 0, "c": 1}, {"a": 0, "b": 1}):  # two in an SLR; a node it does not name
        assert sorted(place(usage, wires, first=True, hint=bad).slr.values()) == [0, 1, 2]


def test_a_node_larger_than_an_slr_cannot_be_placed() -> None:
    with pytest.raises(SlrError, match=r"no assignment of the 1 nodes to the 3 SLRs fits"):
        place(KernelUsage({"huge": Usage(DSP=3009)}), [])


def _pair(tokens: int = 10) -> Graph:
    g = Graph()
    g.add_task(Task.pipelined("src", ii=1, depth=1, writes={"o": tokens}))
    g.add_task(Task.pipelined("dst", ii=1, depth=1, reads={"i": tokens}))
    g.connect("src", "o", "dst", "i", 32, name="e")
    return g


def test_a_crossing_fifo_is_charged_its_pipeline_registers() -> None:
    g = _pair()
    # src writes token k at k + 1, dst reads it a cycle later: dst (11 cycles long) starts at 2, done at 13
    assert simulate_unbounded(g).makespan == 13
    crossed = with_crossings(g, {"e": 2})  # two boundaries: 2 x 4 register stages
    assert U55C.sll_latency == 4 and simulate_unbounded(crossed).makespan == 13 + 8
    assert crossed.edge("sll(e)").fixed and crossed.edge("sll(e)").depth == extra_depth(8, 1) == 10
    sizing = size_fifos(crossed)  # the FIFO keeps its name; the relay's registers are its extra depth
    assert set(sizing.depths) == {"e"} and simulate_timed(crossed, sizing.depths).makespan == 21


def test_a_small_design_sits_in_slr0_without_crossings() -> None:
    X = sd.itensor.tiled(sd.f32, shape=(4, 16), tile=(1, 16))

    @sd.kernel
    def add(a: X, b: X) -> X:
        for i in range(4):
            yield a.read() + b.read()

    @sd.dataflow
    def prog(a: sd.Tensor[sd.f32, (4, 16)], b: sd.Tensor[sd.f32, (4, 16)]):
        return add(a, b)

    design = sd.compile(prog)
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    wires = kernel_wires(design.kernel, design.graph)
    assert sorted((w.a, w.b, w.bits) for w in wires) == sorted([
        ("dma_load(a)", "add", 512), ("dma_load(b)", "add", 512), ("add", "dma_store(add)", 512),
        ("dma_load(a)", "HBM", 512), ("dma_load(b)", "HBM", 512), ("dma_store(add)", "HBM", 512)])
    placement = place(usage, wires)
    assert set(placement.slr.values()) == {0} and placement.crossing_bits == 0 and placement.crossings == {}


def test_a_striped_dma_wires_a_word_per_stripe_to_the_hbm() -> None:
    """Tokens of 32 floats (two 512-bit HBM words) are loaded over two pseudo-channels: two AXI
    ports, 1,024 wires to the HBM. Stores keep one port (lowering/hbm_channels.py `max_stripes`):
    512 wires. The FIFOs keep their beat (1,024 bits)."""
    X = sd.itensor.tiled(sd.f32, shape=(4, 32), tile=(1, 32))

    @sd.kernel
    def double(a: X) -> X:
        for i in range(4):
            yield a.read() * 2.0

    @sd.dataflow
    def prog(a: sd.Tensor[sd.f32, (4, 32)]):
        return double(a)

    design = sd.compile(prog)
    allocate_kernel(design.kernel)
    wires = kernel_wires(design.kernel, design.graph)
    assert sorted((w.a, w.b, w.bits) for w in wires) == sorted([
        ("dma_load(a)", "double", 1024), ("double", "dma_store(double)", 1024),
        ("dma_load(a)", "HBM", 1024), ("dma_store(double)", "HBM", 512)])


def _brute_force(usage: KernelUsage, wires: list[Wire]) -> dict[str, int] | None:
    """The placement of the module doc's objective (crossing bits, then the tie weights) by trying
    all; None if none fits."""
    nodes, cap = sorted(usage.nodes), U55C_DEVICE.per_slr
    best = None
    for slrs in itertools.product(range(3), repeat=len(nodes)):
        at = dict(zip(nodes, slrs))
        if any(Usage.total(usage.nodes[v] for v in nodes if at[v] == s).over(cap) for s in range(3)):
            continue
        level = {**at, "HBM": -1}
        bits = sum(w.bits * abs(level[w.a] - level[w.b]) for w in wires)
        tie = sum((i + 1) * at[v] for i, v in enumerate(nodes))
        best = min(best or (bits, tie, at), (bits, tie, at), key=lambda c: c[:2])
    return best and best[2]


@pytest.mark.parametrize("seed", range(8))
def test_the_placement_is_the_least_crossing_one_found_by_trying_all(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(5)]
    # seeds 0-2: the whole design fits in SLR0; 3-7: some nodes need an SLR of their own (5: none fits)
    dsp = [rng.randrange(1, 400) if seed < 3 else rng.choice([100, 1800, 2500]) for _ in names]
    usage = KernelUsage({n: Usage(DSP=d) for n, d in zip(names, dsp)})
    wires = [Wire(a, b, rng.randrange(1, 600)) for a, b in itertools.combinations(names, 2) if rng.random() < 0.6]
    wires += [Wire(n, "HBM", 512) for n in names if rng.random() < 0.4]
    best = _brute_force(usage, wires)
    if best is None:
        with pytest.raises(SlrError, match="no assignment of the 5 nodes"):
            place(usage, wires, small=0)
    else:
        assert place(usage, wires, small=0).slr == best


@pytest.mark.parametrize("seed", range(3, 8))
def test_the_first_placement_found_fits_and_exists_exactly_when_one_does(seed: int) -> None:
    """`first=True` (the exploration's check) stops at the first feasible placement: it fits every
    SLR and crosses no fewer bits than the least-crossing one; it fails exactly when trying all
    finds none."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(5)]
    usage = KernelUsage({n: Usage(DSP=rng.choice([100, 1800, 2500])) for n in names})
    wires = [Wire(a, b, rng.randrange(1, 600)) for a, b in itertools.combinations(names, 2) if rng.random() < 0.6]
    best = _brute_force(usage, wires)
    if best is None:
        with pytest.raises(SlrError):
            place(usage, wires, small=0, first=True)
        return
    found = place(usage, wires, small=0, first=True)
    for s in range(3):
        assert not Usage.total(usage.nodes[v] for v in names if found.slr[v] == s).over(U55C_DEVICE.per_slr)
    assert found.crossing_bits >= place(usage, wires, small=0).crossing_bits


@pytest.mark.parametrize("seed", range(3, 8))
def test_where_the_search_finds_none_an_exact_check_asks_cbc_for_any_placement(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`first=True, exact=True` (size-fifos' check): where the local search finds nothing (here it
    never does), CBC's first feasible placement answers, without the crossing objective; it
    exists exactly when trying all finds one. `first=True` alone says no."""
    from lowering import slr

    monkeypatch.setattr(slr, "search", lambda *args, **kwargs: None)
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(5)]
    usage = KernelUsage({n: Usage(DSP=rng.choice([100, 1800, 2500])) for n in names})
    wires = [Wire(a, b, rng.randrange(1, 600)) for a, b in itertools.combinations(names, 2) if rng.random() < 0.6]
    assert usage.total.share(U55C_DEVICE.per_slr) > 1  # not all in SLR0: the search (none here) is asked
    with pytest.raises(SlrError, match="none found by the local search in 3 tries"):
        place(usage, wires, small=0, first=True)
    if _brute_force(usage, wires) is None:
        with pytest.raises(SlrError, match="none found by the local search nor by CBC"):
            place(usage, wires, small=0, first=True, exact=True)
        return
    found = place(usage, wires, small=0, first=True, exact=True)
    for s in range(3):
        assert not Usage.total(usage.nodes[v] for v in names if found.slr[v] == s).over(U55C_DEVICE.per_slr)


def test_a_plan_leaves_its_placement_on_the_kernel_for_its_build() -> None:
    """`set_slr_hint` writes node -> SLR on the kernel as an attribute that prints and parses,
    `slr_hint` reads it back, and an empty placement drops it."""
    from types import SimpleNamespace

    from xdsl.context import Context
    from xdsl.parser import Parser

    from lowering.slr import SLR_HINT_ATTR, set_slr_hint, slr_hint

    kernel = SimpleNamespace(attributes={})
    assert slr_hint(kernel) is None  # type: ignore[arg-type]
    set_slr_hint(kernel, {"k1_matmul": 2, "dma_load(x)": 0})  # type: ignore[arg-type]
    printed = str(kernel.attributes[SLR_HINT_ATTR])
    again = SimpleNamespace(attributes={SLR_HINT_ATTR: Parser(Context(), printed).parse_attribute()})
    assert slr_hint(again) == slr_hint(kernel) == {"dma_load(x)": 0, "k1_matmul": 2}  # type: ignore[arg-type]
    set_slr_hint(kernel, {})  # type: ignore[arg-type]
    assert slr_hint(kernel) is None and not kernel.attributes  # type: ignore[arg-type]
