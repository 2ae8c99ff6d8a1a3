"""Property-based fuzzing of layout converters (planner + runtime) against brute force.

Random tensors (rank 1-4) are streamed in two random layouts: independent tilings, loop orders,
loops split into blocked orders, and reuse (replay) loops on the destination. The references are
numpy slicing (`itensor.reference_stream`) and brute-force searches over token sequences that
share no code with `streamdsl.layout`, `streamdsl.sim.converter` or `lowering.converters`.

Run deeper: `HYPOTHESIS_PROFILE=deep python -m pytest tests/converters -p no:xdist -s`.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from xdsl.ir.affine import AffineExpr, AffineMap

import streamdsl as sd
from lowering.converters import plan
from streamdsl.itensor import itensor
from streamdsl.sim.converter import ConverterBuffer

MAX_ELEMENTS = 384
# At least 500 examples per property in CI; the deep profile's own (larger) count wins.
FUZZ = settings(max_examples=max(500, settings().max_examples))
REPORT = Path(os.environ.get("CONVERTER_REPORT_DIR", Path(__file__).parents[2] / "out" / "converters"))

# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def shapes(draw: st.DrawFn) -> tuple[int, ...]:
    rank = draw(st.integers(1, 4))
    shape: list[int] = []
    for _ in range(rank):
        room = MAX_ELEMENTS // max(1, math.prod(shape)) // 2 ** (rank - len(shape) - 1)
        shape.append(draw(st.integers(1, max(1, min(12, room)))))
    return tuple(shape)


Nest = list[tuple[int, int, int | None]]  # loops outermost first: (trip, step, dim or None for reuse)


@st.composite
def nests(draw: st.DrawFn, shape: tuple[int, ...], reuse: bool) -> tuple[list[int], Nest]:
    """A stream of `shape`: a tile per dim, each dim's loop optionally split in two (blocked
    orders), all loops in a random order, and optionally reuse loops anywhere in the nest."""
    tile = [draw(st.sampled_from(_divisors(n))) for n in shape]
    loops: Nest = []
    for dim, (n, t) in enumerate(zip(shape, tile)):
        trips = n // t
        outer = draw(st.sampled_from(_divisors(trips)))
        loops.append((outer, t * (trips // outer), dim))
        if trips // outer > 1:
            loops.append((trips // outer, t, dim))
    loops = draw(st.permutations(loops))
    if reuse:
        for _ in range(draw(st.integers(0, 2))):
            loops.insert(draw(st.integers(0, len(loops))), (draw(st.integers(2, 3)), 1, None))
    return tile, loops


def layouts(shape: tuple[int, ...], reuse: bool) -> st.SearchStrategy[itensor]:
    return nests(shape, reuse).map(lambda nest: _itensor(*nest))


def _itensor(tile: list[int], loops: Nest) -> itensor:
    results = []
    for dim in range(len(tile)):
        expr: AffineExpr = AffineExpr.constant(0)
        for pos, (_, _, d) in enumerate(loops):
            if d == dim:
                expr = expr + AffineExpr.dimension(pos)
        results.append(expr)
    return itensor(
        sd.f32,
        tile=tile,
        trips=[t for t, _, _ in loops],
        steps=[s for _, s, _ in loops],
        map=AffineMap(len(loops), 0, tuple(results)),
    )


@st.composite
def pairs(draw: st.DrawFn, dst_reuse: bool = True) -> tuple[itensor, itensor]:
    """Two streams of one tensor. Half of them are correlated: both walk the same blocks in the
    same outer loop order and tile each block independently (so converters can shrink)."""
    shape = draw(shapes())
    prefix: Nest = []
    block = list(shape)
    if draw(st.booleans()):
        for dim in draw(st.permutations(range(len(shape))))[: draw(st.integers(1, len(shape)))]:
            count = draw(st.sampled_from(_divisors(shape[dim])))
            block[dim] = shape[dim] // count
            prefix.append((count, block[dim], dim))
    src_tile, src_loops = draw(nests(tuple(block), reuse=False))
    dst_tile, dst_loops = draw(nests(tuple(block), reuse=dst_reuse))
    return _itensor(src_tile, prefix + src_loops), _itensor(dst_tile, prefix + dst_loops)


# ---------------------------------------------------------------------------------------------
# Drivers and brute-force references
# ---------------------------------------------------------------------------------------------


def drive(src: itensor, dst: itensor, array: np.ndarray, rng: random.Random) -> tuple[list[np.ndarray], ConverterBuffer]:
    """Push source tiles and pop destination tiles whenever possible (random choice when both
    are), checking the occupancy against the capacity after every step."""
    p = plan(src, dst)
    conv = ConverterBuffer(src, dst, p.buffer_shape if p.needed else None, p.shared_loops)
    tiles = iter(src.reference_stream(array))
    out: list[np.ndarray] = []
    while not conv.done:
        moves = [m for m, ok in (("push", conv.can_push()), ("pop", conv.can_pop())) if ok]
        assert moves, f"converter stalled: {conv}"
        if rng.choice(moves) == "push":
            conv.push(next(tiles))
        else:
            out.append(conv.pop())
        assert conv.occupancy <= conv.capacity
    return out, conv


def brute_slab_bank(src: itensor, dst: itensor) -> int:
    """Smallest bank over every way to cut both token sequences into N equal consecutive slabs
    such that each destination slab only reads elements its source slab writes."""
    shape = src.shape

    def masks(it: itensor, n: int) -> np.ndarray:
        out = np.zeros((n, *shape), dtype=bool)
        per = it.num_tokens // n
        for k, offset in enumerate(it.tokens()):
            out[(k // per, *(slice(o, o + t) for o, t in zip(offset, it.tile)))] = True
        return out

    best = math.prod(shape)
    for n in _divisors(math.gcd(src.num_tokens, dst.num_tokens))[1:]:
        written, read = masks(src, n), masks(dst, n)
        if (read & ~written).any():
            continue
        boxes = [math.prod(int(np.ptp(ix)) + 1 for ix in np.nonzero(written[k] | read[k])) for k in range(n)]
        best = min(best, max(boxes))
    return best


def brute_live_lower_bound(src: itensor, dst: itensor) -> int:
    """Most elements any in-order converter must hold at once. When source token i arrives (as a
    whole tile), the destination can have emitted at most the tokens whose data all arrived
    before it; every element written so far that a later destination token reads is live.
    (Source without replays, so each element is written once.)"""
    shape = src.shape
    first = np.full(shape, -1, dtype=np.int64)
    for i, s in enumerate(src.slices()):
        first[s] = np.where(first[s] < 0, i, first[s])
    last_read = np.full(shape, -1, dtype=np.int64)
    needs = []
    for j, s in enumerate(dst.slices()):
        last_read[s] = j
        needs.append(int(first[s].max()))
    emitted, bound = 0, 0
    for i in range(src.num_tokens):
        bound = max(bound, int(((first >= 0) & (first <= i) & (last_read >= emitted)).sum()))
        while emitted < len(needs) and needs[emitted] <= i:
            emitted += 1
    return bound


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


# Found by Hypothesis: a one-element tensor with equal types (no converter needed) must still run.
ONE = itensor.tiled(sd.f32, (1,), (1,))


@FUZZ
@given(pairs(), st.randoms(use_true_random=False))
@example((ONE, ONE), random.Random(0))
def test_converter_output_equals_reference(pair: tuple[itensor, itensor], rng: random.Random) -> None:
    src, dst = pair
    array = np.arange(math.prod(src.shape), dtype=np.float32).reshape(src.shape)
    out, _ = drive(src, dst, array, rng)
    expected = dst.reference_stream(array)
    assert len(out) == len(expected)
    for k, (got, want) in enumerate(zip(out, expected)):
        assert np.array_equal(got, want), f"token {k}"


@FUZZ
@given(pairs(), st.randoms(use_true_random=False))
@example((ONE, ONE), random.Random(0))
def test_occupancy_within_plan(pair: tuple[itensor, itensor], rng: random.Random) -> None:
    src, dst = pair
    p = plan(src, dst)
    _, conv = drive(src, dst, np.zeros(src.shape, dtype=np.float32), rng)
    assert conv.peak <= conv.capacity == (p.elements if p.needed else math.prod(src.shape))
    assert p.elements <= 2 * math.prod(src.shape) and p.banks == conv.layout.banks
    assert p.bytes == p.elements * 4


@FUZZ
@given(st.data())
def test_equal_types_need_no_converter(data: st.DataObject) -> None:
    tile, loops = data.draw(nests(data.draw(shapes()), reuse=True))
    it = _itensor(tile, loops)
    assert not plan(it, it).needed
    # the same stream spelled differently: loops split in two adjacent ones, plus a trip-1 loop
    respelled: Nest = [(1, 1, None)]
    for trip, step, dim in loops:
        inner = data.draw(st.sampled_from(_divisors(trip)))
        respelled += [(trip // inner, step * inner, dim), (inner, step, dim)]
    other = _itensor(tile, respelled)
    assert other.tokens() == it.tokens()
    p = plan(it, other)
    assert not p.needed and p.bytes == 0


@FUZZ
@given(pairs())
@example((itensor.tiled(sd.f32, (8, 8), (2, 2)), itensor.tiled(sd.f32, (8, 8), (2, 2), order=(1, 0))))
def test_plan_equals_brute_force_slab(pair: tuple[itensor, itensor]) -> None:
    src, dst = pair
    p = plan(src, dst)
    if not p.needed:
        return
    assert p.bank_elements == brute_slab_bank(src, dst)
    # the split types stream exactly as the originals, with the shared loops outermost
    assert p.src_split.tokens() == src.tokens() and p.dst_split.tokens() == dst.tokens()


@pytest.fixture(scope="module")
def ratios() -> list[float]:
    collected: list[float] = []
    yield collected
    if collected:
        values = np.array(collected)
        edges = [1.0, 1.0001, 1.5, 2, 4, 8, np.inf]
        hist, _ = np.histogram(values, bins=edges)
        lines = [f"plan bank / live-element lower bound over {len(values)} converters:"]
        lines += [f"  [{lo:g}, {hi:g}): {n}" for lo, hi, n in zip(edges, edges[1:], hist)]
        lines.append(f"  min {values.min():.3g}  median {np.median(values):.3g}  mean {values.mean():.3g}  max {values.max():.3g}")
        text = "\n".join(lines)
        print("\n" + text)
        REPORT.mkdir(parents=True, exist_ok=True)
        (REPORT / "plan_vs_lower_bound.txt").write_text(text + "\n")


@FUZZ
@given(pair=pairs())
def test_lower_bound_never_above_plan(pair: tuple[itensor, itensor], ratios: list[float]) -> None:
    src, dst = pair
    p = plan(src, dst)
    if not p.needed:
        return
    bound = brute_live_lower_bound(src, dst)
    assert bound <= p.bank_elements
    if bound:
        ratios.append(p.bank_elements / bound)
