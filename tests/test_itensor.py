"""The itensor type against an independent brute-force reference.

The reference walks the loop nest with `itertools.product` (last loop fastest) and evaluates the
map with xDSL's `AffineMap.eval`; it shares no code with `streamdsl.itensor`'s closed forms.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from io import StringIO

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineExpr, AffineMap
from xdsl.parser import Parser
from xdsl.printer import Printer

import streamdsl as sd
from streamdsl.dialects.dataflow import DATAFLOW, ITensorType
from streamdsl.dtypes import DTYPES
from streamdsl.errors import LimitError
from streamdsl.itensor import Bound, ITensorError, parse_affine_map

# ---------------------------------------------------------------------------------------------
# Brute-force reference
# ---------------------------------------------------------------------------------------------


def brute_tokens(it: sd.itensor) -> list[tuple[int, ...]]:
    """Offsets in stream order: every iteration vector, scaled by the steps, through the map."""
    return [
        tuple(it.map.eval([i * s for i, s in zip(iv, it.steps)], []))
        for iv in itertools.product(*(range(t) for t in it.trips))
    ]


def brute_shape(it: sd.itensor) -> tuple[int, ...]:
    offsets = np.array(brute_tokens(it))
    return tuple(int(v) for v in offsets.max(axis=0) + it.tile)


def coverage(it: sd.itensor) -> np.ndarray:
    """How many tokens cover each element."""
    counts = np.zeros(brute_shape(it), dtype=np.int64)
    for offset in brute_tokens(it):
        counts[tuple(slice(o, o + t) for o, t in zip(offset, it.tile))] += 1
    return counts


def brute_replays(it: sd.itensor) -> int:
    """Product of the trip counts of loops whose index never changes an offset."""
    grid = np.array(brute_tokens(it)).reshape(*it.trips, it.rank)
    return math.prod(t for i, t in enumerate(it.trips) if not np.diff(grid, axis=i).any())


def brute_regular(it: sd.itensor) -> bool:
    return bool((coverage(it) == brute_replays(it)).all())


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

dtypes = st.sampled_from(list(DTYPES.values()))


def _map(num_loops: int, results: list[list[tuple[int, int]]], consts: list[int]) -> AffineMap:
    """`results[j]` lists the (loop, coefficient) pairs of tensor dim j, plus `consts[j]`."""
    exprs = []
    for terms, const in zip(results, consts):
        parts = [AffineExpr.dimension(loop) * coeff if coeff != 1 else AffineExpr.dimension(loop) for loop, coeff in terms]
        if const or not parts:
            parts.append(AffineExpr.constant(const))
        exprs.append(functools.reduce(operator.add, parts))
    return AffineMap(num_loops, 0, tuple(exprs))


@st.composite
def tiled_types(draw: st.DrawFn, reuse: bool = True) -> sd.itensor:
    """The shorthand: a tile grid in any loop order, maybe replayed."""
    rank = draw(st.integers(1, 4))
    tile = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    grid = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    order = draw(st.permutations(range(rank)))
    it = sd.itensor.tiled(draw(dtypes), shape=[t * g for t, g in zip(tile, grid)], tile=tile, order=order)
    return it.repeat(draw(st.integers(1, 3))) if reuse and draw(st.booleans()) else it


@st.composite
def regular_types(draw: st.DrawFn, reuse: bool = True) -> sd.itensor:
    """Directly constructed regular types: every tile-grid dim walked by one loop or split into two
    (outer + inner), loops in any order, reuse loops and trip-count-1 loops at any position, and
    strides put in the steps or in the map's coefficients."""
    if draw(st.booleans()):
        return draw(tiled_types(reuse))
    rank = draw(st.integers(1, 4))
    tile = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    loops: list[tuple[int, int, int | None]] = []  # (trip, stride, dim); dim None = reuse
    for dim in range(rank):
        grid = draw(st.sampled_from([1, 2, 3, 4, 6]))
        outer = draw(st.sampled_from([d for d in (1, 2, 3) if grid % d == 0]))
        if outer > 1 and outer < grid:  # split loop: outer iv * (inner trips * tile) + inner iv * tile
            loops += [(outer, tile[dim] * (grid // outer), dim), (grid // outer, tile[dim], dim)]
        else:
            loops.append((grid, tile[dim], dim))
    loops = list(draw(st.permutations(loops)))
    extra = [(draw(st.integers(1, 3)), draw(st.integers(0, 3)), None) for _ in range(draw(st.integers(0, 2 if reuse else 0)))]
    extra += [(1, draw(st.integers(0, 3)), draw(st.integers(0, rank - 1))) for _ in range(draw(st.integers(0, 1)))]
    for loop in extra:
        loops.insert(draw(st.integers(0, len(loops))), loop)
    steps, results = [], [[] for _ in range(rank)]
    for i, (_, stride, dim) in enumerate(loops):
        in_map = draw(st.booleans()) and stride > 0  # stride as map coefficient, step 1
        steps.append(1 if in_map else stride)
        if dim is not None:
            results[dim].append((i, stride if in_map else 1))
    map_ = _map(len(loops), results, [0] * rank)
    return sd.itensor(draw(dtypes), tile=tile, trips=[t for t, _, _ in loops], steps=steps, map=map_)


@st.composite
def linear_types(draw: st.DrawFn, max_rank: int = 3, max_loops: int = 3, max_trip: int = 3) -> sd.itensor:
    """Arbitrary linear types, mostly irregular: overlaps, gaps, negative coefficients, constants."""
    rank = draw(st.integers(1, max_rank))
    n = draw(st.integers(0, max_loops))
    trips = draw(st.lists(st.integers(1, max_trip), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    coeffs = [[draw(st.sampled_from([0, 0, 1, 1, 2, -1])) for _ in range(n)] for _ in range(rank)]
    lows = [sum(min(0, c * s * (t - 1)) for c, s, t in zip(row, steps, trips)) for row in coeffs]
    consts = [-low + draw(st.integers(0, 1)) for low in lows]
    results = [[(i, c) for i, c in enumerate(row) if c] for row in coeffs]
    tile = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    return sd.itensor(draw(dtypes), tile=tile, trips=trips, steps=steps, map=_map(n, results, consts))


@st.composite
def small_types(draw: st.DrawFn) -> sd.itensor:
    """A small space, so random pairs often stream the same tiles; some maps are non-linear."""
    n = draw(st.integers(0, 3))
    trips = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    expr = AffineExpr.constant(0)
    for i in range(n):
        expr = expr + AffineExpr.dimension(i) * draw(st.sampled_from([0, 1, 2, 4]))
    if n and draw(st.integers(0, 3)) == 0:
        loop = AffineExpr.dimension(draw(st.integers(0, n - 1)))
        expr = expr + draw(st.sampled_from([loop % 2, loop % 3, loop // 2, (loop // 2) * 2, (loop // 3) * 2]))
    return sd.itensor(sd.f32, tile=[draw(st.sampled_from([1, 2]))], trips=trips, steps=steps, map=AffineMap(n, 0, (expr,)))


any_types = st.one_of(regular_types(), linear_types())


@st.composite
def rewrites(draw: st.DrawFn, it: sd.itensor) -> sd.itensor:
    """The same stream written differently: a loop split in two, or a trip-count-1 loop added."""
    n = len(it.trips)
    splittable = [i for i, t in enumerate(it.trips) if t in (4, 6, 8, 9)]
    if splittable and draw(st.booleans()):
        i = draw(st.sampled_from(splittable))
        inner = draw(st.sampled_from([d for d in (2, 3) if it.trips[i] % d == 0]))
        dims = [AffineExpr.dimension(j + (j > i)) for j in range(n)]
        dims[i] = AffineExpr.dimension(i) * inner + AffineExpr.dimension(i + 1)
        trips = [*it.trips[:i], it.trips[i] // inner, inner, *it.trips[i + 1 :]]
        steps = [*it.steps[:i], it.steps[i], it.steps[i], *it.steps[i + 1 :]]
    else:
        i = draw(st.integers(0, n))
        dims = [AffineExpr.dimension(j + (j >= i)) for j in range(n)]
        trips, steps = [*it.trips[:i], 1, *it.trips[i:]], [*it.steps[:i], draw(st.integers(0, 5)), *it.steps[i:]]
    map_ = it.map.replace_dims_and_symbols(dims, [], n + 1, 0)
    if trips[i] == 1 and draw(st.booleans()):  # the map may use the new loop: its index is always 0
        used = map_.results[0] + AffineExpr.dimension(i) * draw(st.integers(1, 3))
        map_ = AffineMap(n + 1, 0, (used, *map_.results[1:]))
    return sd.itensor(it.dtype, tile=it.tile, trips=trips, steps=steps, map=map_)


@st.composite
def rewritten_pairs(draw: st.DrawFn) -> tuple[sd.itensor, sd.itensor]:
    it = draw(st.one_of(regular_types(), linear_types(max_trip=9), small_types()))
    other = it
    for _ in range(draw(st.integers(1, 3))):
        other = draw(rewrites(other))
    return it, other

# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@given(any_types)
def test_tokens_match_brute_force(it: sd.itensor) -> None:
    tokens = brute_tokens(it)
    assert it.num_tokens == math.prod(it.trips) == len(tokens)
    assert it.tokens() == tokens
    assert it.shape == brute_shape(it)
    assert it.num_elements == math.prod(it.shape)


@given(regular_types())
def test_regular_types_cover_each_element_once_per_replay(it: sd.itensor) -> None:
    counts = coverage(it)
    replays = brute_replays(it)
    assert (counts == replays).all(), f"{it}: coverage {np.unique(counts)} with {replays} replays"
    assert replays == math.prod(it.trips[i] for i in it.reuse_loops)
    assert it.is_regular
    assert counts.sum() == it.num_tokens * it.token_elements


@given(any_types)
def test_is_regular_agrees_with_brute_force(it: sd.itensor) -> None:
    assert it.is_regular == brute_regular(it), str(it)


@given(regular_types(reuse=False), st.data())
def test_from_stream_inverts_reference_stream(it: sd.itensor, data: st.DataObject) -> None:
    assert not it.has_reuse
    array = np.arange(it.num_elements, dtype=np.int64).reshape(it.shape) * 7 - 3
    tiles = it.reference_stream(array)
    for tile, offset in zip(tiles, brute_tokens(it), strict=True):
        assert tile.shape == it.tile
        assert (tile == array[tuple(slice(o, o + t) for o, t in zip(offset, it.tile))]).all()
    assert (it.from_stream(tiles) == array).all()
    assert (it.from_stream([t.astype(np.float32) for t in tiles]) == array).all()


@given(linear_types())
def test_from_stream_on_irregular_types(it: sd.itensor) -> None:
    """Overlapping tiles reassemble too; gaps are reported."""
    if it.has_reuse:
        return
    array = np.arange(it.num_elements).reshape(it.shape)
    if (coverage(it) > 0).all():
        assert (it.from_stream(it.reference_stream(array)) == array).all()
    else:
        with pytest.raises(ITensorError, match="uncovered"):
            it.from_stream(it.reference_stream(array))


@given(any_types)
def test_normalisation_keeps_the_stream(it: sd.itensor) -> None:
    norm = it.normalized()
    assert 1 not in norm.trips
    assert len(norm.trips) == sum(t != 1 for t in it.trips)
    assert norm.tokens() == it.tokens()
    assert norm == it and hash(norm) == hash(it)
    assert norm.shape == it.shape and norm.is_regular == it.is_regular


@given(small_types(), small_types())
def test_equality_is_same_token_sequence(a: sd.itensor, b: sd.itensor) -> None:
    same = a.tile == b.tile and brute_tokens(a) == brute_tokens(b)
    assert (a == b) == same, f"{a} vs {b}"
    if same:
        assert hash(a) == hash(b)
        assert a.is_regular == b.is_regular


@given(rewritten_pairs())
def test_rewrites_keep_equality(pair: tuple[sd.itensor, sd.itensor]) -> None:
    a, b = pair
    assert brute_tokens(a) == brute_tokens(b)
    assert a == b and hash(a) == hash(b), f"{a} vs {b}"
    assert a.is_regular == b.is_regular and a.shape == b.shape


@given(regular_types(), dtypes)
def test_equality_needs_same_dtype(it: sd.itensor, dtype: sd.DType) -> None:
    assert (it.with_dtype(dtype) == it) == (dtype == it.dtype)
    assert it.with_dtype(dtype).tokens() == it.tokens()


@given(st.one_of(regular_types(), linear_types()), st.integers(1, 3))
def test_repeat_replays_the_stream(it: sd.itensor, n: int) -> None:
    rep = it.repeat(n)
    assert rep.tokens() == it.tokens() * n
    assert rep.shape == it.shape and rep.tile == it.tile and rep.dtype == it.dtype
    assert (0 in rep.reuse_loops) == (n > 1)
    assert (rep == it) == (n == 1)


@given(any_types)
def test_ir_attribute_round_trips(it: sd.itensor) -> None:
    attr = it.to_ir()
    assert isinstance(attr, ITensorType)
    text = StringIO()
    Printer(stream=text).print_attribute(attr)
    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(DATAFLOW)
    parsed = Parser(ctx, text.getvalue()).parse_attribute()
    assert parsed == attr, text.getvalue()
    back = parsed.itensor
    assert back == it and sd.itensor.from_ir(parsed) == it
    assert (back.tile, back.trips, back.steps, back.map, back.dtype) == (it.tile, it.trips, it.steps, it.map, it.dtype)


# ---------------------------------------------------------------------------------------------
# Hand-picked cases
# ---------------------------------------------------------------------------------------------


def test_split_loop_equals_single_loop() -> None:
    single = sd.itensor(sd.f32, tile=[2], trips=[8], steps=[2], map="(d0) -> (d0)")
    split = sd.itensor(sd.f32, tile=[2], trips=[2, 4], steps=[8, 2], map="(d0, d1) -> (d0 + d1)")
    assert split == single and hash(split) == hash(single) and split.is_regular
    swapped = sd.itensor(sd.f32, tile=[2], trips=[4, 2], steps=[2, 8], map="(d0, d1) -> (d0 + d1)")
    assert swapped != single and swapped.is_regular  # same tiles, another order


def test_non_linear_map_equals_linear_map_with_same_stream() -> None:
    pairs = sd.itensor(sd.f32, tile=[2], trips=[4], steps=[1], map="(d0) -> ((d0 floordiv 2) * 2)")
    reuse = sd.itensor(sd.f32, tile=[2], trips=[2, 2], steps=[2, 0], map="(d0, d1) -> (d0 + d1)")
    assert pairs.tokens() == reuse.tokens() == [(0,), (0,), (2,), (2,)]
    assert pairs == reuse and hash(pairs) == hash(reuse)
    assert pairs.is_regular and reuse.is_regular and reuse.reuse_loops == (1,)


def test_unstructured_streams_compare_by_their_tokens() -> None:
    """Sequences that no loop nest produces (0, 1, 2, 0) still compare token by token."""
    mod3 = sd.itensor(sd.f32, tile=[1], trips=[4], steps=[1], map="(d0) -> (d0 mod 3)")
    same = sd.itensor(sd.f32, tile=[1], trips=[4], steps=[1], map="(d0) -> (d0 - (d0 floordiv 3) * 3)")
    shifted = sd.itensor(sd.f32, tile=[1], trips=[4], steps=[1], map="(d0) -> ((d0 + 1) mod 3)")
    longer = sd.itensor(sd.f32, tile=[1], trips=[5], steps=[1], map="(d0) -> (d0 mod 3)")
    assert mod3.tokens() == same.tokens() == [(0,), (1,), (2,), (0,)]
    assert mod3 == same and hash(mod3) == hash(same)
    assert mod3 != shifted and mod3 != longer and mod3 != mod3.with_dtype(sd.f16)
    assert not mod3.is_regular  # element 0 streamed twice, no loop replays it


def test_reversed_walk_is_regular() -> None:
    rev = sd.itensor(sd.f32, tile=[2], trips=[4], steps=[2], map="(d0) -> (6 - d0)")
    assert rev.tokens() == [(6,), (4,), (2,), (0,)] and rev.is_regular
    assert rev != sd.itensor.tiled(sd.f32, shape=[8], tile=[2])


def test_zero_loop_itensor_is_one_whole_tile() -> None:
    whole = sd.itensor(sd.i8, tile=[3, 5], trips=[], steps=[], map="() -> (0, 0)")
    assert whole.tokens() == [(0, 0)] and whole.shape == (3, 5) and whole.is_regular
    ones = sd.itensor(sd.i8, tile=[3, 5], trips=[1, 1], steps=[7, 9], map="(d0, d1) -> (d1, d0)")
    assert ones == whole and ones.normalized().trips == ()
    array = np.arange(15, dtype=np.int8).reshape(3, 5)
    assert (whole.from_stream(whole.reference_stream(array)) == array).all()


def test_large_type_needs_no_materialised_stream() -> None:
    """Shape, validity, regularity and equality of linear types are closed-form."""
    big = sd.itensor.tiled(sd.f32, shape=(4096, 4096), tile=(1, 1), order=(1, 0)).repeat(64)
    assert big.shape == (4096, 4096) and big.num_tokens == 64 * 4096 * 4096
    assert big.is_regular and big.reuse_loops == (0,)
    assert big == sd.itensor.tiled(sd.f32, shape=(4096, 4096), tile=(1, 1), order=(1, 0)).repeat(64)
    assert big._offsets is None


# The paper's Fig. 5: one 8x8 f32 tensor, three stream layouts.
FIG5_A = [(r, c) for r in range(0, 8, 2) for c in range(0, 8, 2)]
FIG5_B = [(0, 0), (4, 0), (0, 2), (4, 2), (0, 4), (4, 4), (0, 6), (4, 6)]
FIG5_C = [
    (0, 0), (4, 0), (0, 0), (4, 0),
    (0, 2), (4, 2), (0, 2), (4, 2),
    (0, 4), (4, 4), (0, 4), (4, 4),
    (0, 6), (4, 6), (0, 6), (4, 6),
]  # fmt: skip


def test_fig5_a_row_major_2x2_tiles() -> None:
    a = sd.itensor(sd.f32, tile=[2, 2], trips=[4, 4], steps=[2, 2], map="(d0, d1) -> (d0, d1)")
    assert a.tokens() == FIG5_A == brute_tokens(a)
    assert a.tokens()[:5] == [(0, 0), (0, 2), (0, 4), (0, 6), (2, 0)]
    assert a.shape == (8, 8) and a.is_regular and not a.has_reuse
    assert a == sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(2, 2))


def test_fig5_b_column_of_tiles_at_a_time() -> None:
    b = sd.itensor(sd.f32, tile=[4, 2], trips=[4, 2], steps=[2, 4], map="(d0, d1) -> (d1, d0)")
    assert b.tokens() == FIG5_B == brute_tokens(b)
    assert b.shape == (8, 8) and b.is_regular and not b.has_reuse
    assert b == sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2), order=(1, 0))
    assert b != sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2))
    array = np.arange(64, dtype=np.float32).reshape(8, 8)
    tiles = b.reference_stream(array)
    assert (tiles[1] == array[4:8, 0:2]).all() and (tiles[2] == array[0:4, 2:4]).all()


def test_fig5_c_each_column_of_tiles_twice() -> None:
    c = sd.itensor(sd.f32, tile=[4, 2], trips=[4, 2, 2], steps=[2, 1, 4], map="(d0, d1, d2) -> (d2, d0)")
    assert c.tokens() == FIG5_C == brute_tokens(c)
    assert c.shape == (8, 8) and c.is_regular
    assert c.reuse_loops == (1,) and c.num_tokens == 16
    b = sd.itensor(sd.f32, tile=[4, 2], trips=[4, 2], steps=[2, 4], map="(d0, d1) -> (d1, d0)")
    column_pairs = [b.tokens()[2 * i : 2 * i + 2] for i in range(4)]
    assert c.tokens() == [tok for pair in column_pairs for tok in pair * 2]
    assert c != b.repeat(2) and sorted(c.tokens()) == sorted(b.repeat(2).tokens())
    assert (coverage(c) == 2).all()


# ---------------------------------------------------------------------------------------------
# Errors name the field and the value
# ---------------------------------------------------------------------------------------------

OK = {"tile": [2, 2], "trips": [2, 2], "steps": [2, 2], "map": "(d0, d1) -> (d0, d1)"}
T44 = sd.itensor.tiled(sd.f32, shape=(4, 4), tile=(2, 2))


def _make(**changes: object) -> sd.itensor:
    kwargs = {**OK, **changes}
    dtype = kwargs.pop("dtype", sd.f32)
    return sd.itensor(dtype, **kwargs)  # type: ignore[arg-type]


INVALID = {
    "dtype": (lambda: _make(dtype="f32"), r"^dtype: .*'f32'"),
    "dtype-numpy": (lambda: _make(dtype=np.float32), r"^dtype: .*float32"),
    "tile-zero": (lambda: _make(tile=[0, 2]), r"^tile: .*\[0, 2\]"),
    "tile-empty": (lambda: _make(tile=[], map="(d0, d1) -> ()"), r"^tile: .*\[\]"),
    "tile-float": (lambda: _make(tile=[2.5, 2]), r"^tile: .*\[2\.5, 2\]"),
    "tile-bool": (lambda: _make(tile=[True, 2]), r"^tile: .*\[True, 2\]"),
    "trips-zero": (lambda: _make(trips=[0, 2]), r"^trips: .*\[0, 2\]"),
    "trips-negative": (lambda: _make(trips=[2, -1]), r"^trips: .*\[2, -1\]"),
    "steps-negative": (lambda: _make(steps=[-2, 2]), r"^steps: .*>= 0.*\[-2, 2\]"),
    "steps-count": (lambda: _make(steps=[2]), r"^steps: has 1 entries \[2\] but trips has 2 \[2, 2\]"),
    "map-arity": (lambda: _make(map="(d0) -> (d0, 0)"), r"^map: \(d0\) -> \(d0, 0\) has 1 inputs .* 2 loops"),
    "map-results": (lambda: _make(map="(d0, d1) -> (d0)"), r"^map: \(d0, d1\) -> \(d0\) has 1 results .*rank 2"),
    "map-symbols": (lambda: _make(map="(d0, d1)[s0] -> (d0, s0)"), r"^map: must have no symbols, got \(d0, d1\)\[s0\]"),
    "map-negative": (lambda: _make(map="(d0, d1) -> (d0, d1 - 4)"), r"^map: .* offset -4 in dim 1; offsets must be >= 0"),
    "map-parse": (lambda: _make(map="(d0, d1) -> (d0, d2)"), r"^map: cannot parse '\(d0, d1\) -> \(d0, d2\)'"),
    "map-type": (lambda: _make(map=42), r"^map: expected an affine map.*42"),
    "tiled-shape": (lambda: sd.itensor.tiled(sd.f32, shape=(0, 4), tile=(1, 1)), r"^shape: .*\[0, 4\]"),
    "tiled-rank": (lambda: sd.itensor.tiled(sd.f32, shape=(4, 4), tile=(2,)), r"^tile: \[2\] has rank 1 but shape \[4, 4\]"),
    "tiled-divide": (lambda: sd.itensor.tiled(sd.f32, shape=(4, 6), tile=(2, 4)), r"^tile: size 4 does not divide shape \[4, 6\] in dim 1"),
    "tiled-order": (lambda: sd.itensor.tiled(sd.f32, shape=(4, 4), tile=(2, 2), order=(0, 0)), r"^order: \[0, 0\] is not a permutation"),
    "tiled-order-range": (lambda: sd.itensor.tiled(sd.f32, shape=(4, 4), tile=(2, 2), order=(1, 2)), r"^order: \[1, 2\]"),
    "repeat-zero": (lambda: T44.repeat(0), r"^repeat: .*\[0\]"),
    "repeat-float": (lambda: T44.repeat(1.5), r"^repeat: .*\[1\.5\]"),
    "reference-shape": (lambda: T44.reference_stream(np.zeros((4, 5))), r"^reference_stream: array has shape \(4, 5\).*\(4, 4\)"),
    "from-reuse": (lambda: T44.repeat(2).from_stream([np.zeros((2, 2))] * 8), r"^from_stream: .*reuse loops \[0\]"),
    "from-count": (lambda: T44.from_stream([np.zeros((2, 2))] * 3), r"^from_stream: got 3 tiles, .* has 4 tokens"),
    "from-tile-shape": (lambda: T44.from_stream([np.zeros((2, 3))] * 4), r"^from_stream: tile of shape \(2, 3\) .*\(2, 2\)"),
    "from-uncovered": (
        lambda: sd.itensor(sd.f32, tile=[2], trips=[2], steps=[4], map="(d0) -> (d0)").from_stream([np.zeros(2)] * 2),
        r"^from_stream: .* leaves 2 elements uncovered",
    ),
}


INT64_MAX = 2**63 - 1


def _divide(kind: AffineBinaryOpKind, by: AffineExpr) -> AffineMap:
    return AffineMap(1, 0, (AffineBinaryOpExpr(kind, AffineExpr.dimension(0), by),))


# guards at their edges: divisors, int64, the non-linear limit, offsets below 0, bounds
INVALID |= {
    "divide-by-zero": (lambda: _make(tile=[1], trips=[4], steps=[1], map=_divide(AffineBinaryOpKind.Mod, AffineExpr.constant(0))),
                       r"^map: \(d0 mod 0\) in .* divides by 0; mod, floordiv and ceildiv need a positive constant"),
    "divide-by-negative": (lambda: _make(tile=[1], trips=[4], steps=[1],
                                         map=_divide(AffineBinaryOpKind.FloorDiv, AffineExpr.constant(-2))),
                           r"^map: .* divides by -2"),
    "constant-past-int64": (lambda: _make(tile=[1], trips=[4], steps=[1],
                                          map=AffineMap(1, 0, (AffineExpr.dimension(0) + AffineExpr.constant(2**63),))),
                            r"^map: constant 9223372036854775808 in .* does not fit in int64"),
    "offsets-past-int64": (lambda: _make(map=f"(d0, d1) -> (d0 * {2**62}, d1)"),
                           r"^map: .* reaches offsets past 2\^63 in dim 0 \(trips \[2, 2\], steps \[2, 2\]\); "),
    "floordiv-past-int64": (lambda: _make(tile=[INT64_MAX], trips=[2], steps=[1], map="(d0) -> (d0 floordiv 1)"),
                            r"^map: .* reaches offsets past 2\^63 in dim 0 \(trips \[2\], steps \[1\]\)"),
    "non-linear-too-long": (lambda: _make(tile=[1], trips=[2**20 + 1], steps=[1], map="(d0) -> (d0 mod 7)"),
                            r"^map: .* has 1048577 tokens and a map with mod/floordiv/ceildiv, whose offsets are "
                            r"enumerated; the limit is 1048576 \(2\^20\) tokens. Use larger tiles or a linear map$"),
    "reversed-below-zero": (lambda: _make(map="(d0, d1) -> (d0, 1 - d1)"), r"^map: .* gives offset -1 in dim 1; offsets must be >= 0"),
    "bound-on-inner-loop": (lambda: _make(bounds=[Bound(0, parse_affine_map("(d0, d1) -> (d1)"))]),
                            r"^bounds: the trip count of loop 0 \(0: \(d0, d1\) -> \(d1\) \[\]\) may only depend on the loops outside it$"),
    "order-names-the-dims": (lambda: sd.itensor.tiled(sd.f32, shape=(4, 4, 4), tile=(2, 2, 2), order=(0, 1, 1)),
                             r"^order: \[0, 1, 1\] is not a permutation of the dims 0\.\.2$"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_parameters_name_field_and_value(case: str) -> None:
    make, message = INVALID[case]
    with pytest.raises(ITensorError, match=message):
        make()


def test_itensor_error_is_a_value_error() -> None:
    assert issubclass(ITensorError, ValueError)


# ---------------------------------------------------------------------------------------------
# Run-time trip counts (`Bound`), parts (`region`) and streams given by their offsets, against
# Python's own loops and numpy
# ---------------------------------------------------------------------------------------------


@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 3), st.integers(-3, 2), st.integers(0, 7), st.integers(1, 3))
def test_a_stream_with_run_time_trip_counts_carries_the_tokens_of_pythons_loops(
        rows: int, cols: int, slope: int, offset: int, n: int, replays: int) -> None:
    """Loop 0 runs `n` times (a scalar, at most `rows`), loop 1 `slope * i + offset` times (a
    triangular nest, at most `cols`; a negative count runs no times, as range())."""
    bounds = [Bound(0, parse_affine_map("(d0, d1)[s0] -> (s0)"), ("n",)),
              Bound(1, parse_affine_map(f"(d0, d1) -> (d0 * {slope} + {offset})"))]
    it = sd.itensor(sd.f32, tile=(2, 3), trips=(rows, cols), steps=(2, 3), map="(d0, d1) -> (d0, d1)", bounds=bounds)
    assert it.scalars == {"n"} and it.rename_scalars({"n": "len"}).scalars == {"len"}
    assert it.unbounded().tokens() == [(2 * i, 3 * j) for i in range(rows) for j in range(cols)]
    if n > rows:
        with pytest.raises(ITensorError, match="loop 0 would run"):
            it.bind({"n": n})
        return
    bound = it.bind({"n": n})
    want = [(2 * i, 3 * j) for i in range(n) for j in range(min(cols, slope * i + offset))]
    assert bound.scalars == frozenset() and bound.tokens() == want and bound.num_tokens == len(want)
    assert it.bind({"m": n}) is it  # a scalar the stream does not depend on changes nothing
    assert bound.repeat(replays).tokens() == want * replays
    rows_only = sd.itensor(sd.f32, tile=(2, 3), trips=(rows, cols), steps=(2, 3), map="(d0, d1) -> (d0, d1)",
                           bounds=bounds[:1]).bind({"n": n})
    assert rows_only.tokens() == [(2 * i, 3 * j) for i in range(n) for j in range(cols)]


@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.data())
def test_a_region_is_the_tiles_inside_it_in_stream_order(rows: int, cols: int, col_major: bool, data: st.DataObject) -> None:
    it = sd.itensor.tiled(sd.f32, shape=(2 * rows, 3 * cols), tile=(2, 3), order=(1, 0) if col_major else None)
    dim = data.draw(st.integers(0, 1))
    tile, trips = it.tile[dim], (rows, cols)[dim]
    start = tile * data.draw(st.integers(0, trips - 1))
    size = tile * data.draw(st.integers(1, trips - start // tile))
    part = it.region(dim, start, size)
    want = [tuple(o - start * (d == dim) for d, o in enumerate(t)) for t in it.tokens() if start <= t[dim] < start + size]
    assert part.tokens() == want and part.shape == tuple(size if d == dim else s for d, s in enumerate(it.shape))
    assert sd.itensor.from_offsets(sd.f32, it.tile, it.offsets()).tokens() == it.tokens()
    if tile > 1:
        with pytest.raises(ITensorError, match="straddle"):
            it.region(dim, start + 1, size)


def test_offsets_that_are_no_loop_nest_and_regions_of_run_time_streams_are_refused() -> None:
    with pytest.raises(ITensorError, match="3 tile offsets are not a loop nest"):
        sd.itensor.from_offsets(sd.f32, (1,), np.array([[0], [1], [3]]))
    bounded = sd.itensor(sd.f32, tile=(1,), trips=(4,), steps=(1,), map="(d0) -> (d0)",
                         bounds=[Bound(0, parse_affine_map("(d0)[s0] -> (s0)"), ("n",))])
    with pytest.raises(ITensorError, match="run-time trip counts"):
        bounded.region(0, 0, 2)


# ---------------------------------------------------------------------------------------------
# Guards and closed forms at their edges (each against Python's integers or its own loops)
# ---------------------------------------------------------------------------------------------

def test_a_mod_offset_may_reach_int64_max_exactly() -> None:
    """`d0 mod 3` is at most 3 (the divisor), so a tile of 2^63 - 4 elements still fits."""
    it = _make(tile=[INT64_MAX - 3], trips=[3], steps=[1], map="(d0) -> (d0 mod 3)")
    assert it.tokens() == [(0,), (1,), (2,)] and it.shape == (INT64_MAX - 1,)


@pytest.mark.parametrize("op", ["floordiv", "ceildiv", "mod"])
def test_division_by_one_is_pythons(op: str) -> None:
    it = sd.itensor(sd.f32, tile=[1], trips=[5], steps=[2], map=f"(d0) -> (d0 {op} 1)")
    python = {"floordiv": lambda i: i // 1, "ceildiv": lambda i: -(-i // 1), "mod": lambda i: i % 1}[op]
    assert it.tokens() == [(python(2 * i),) for i in range(5)]


def test_linear_maps_with_constants_and_coefficients_need_no_materialised_stream() -> None:
    """More tokens than a non-linear map may have: constants and products of a constant are linear."""
    big = sd.itensor(sd.f32, tile=[1, 1], trips=[2048, 1024], steps=[1, 1], map="(d0, d1) -> (d0 * 2 + 1, d1 * 3)")
    assert big.shape == (2 * 2047 + 2, 3 * 1023 + 1) and big.num_tokens == 2**21 and big._offsets is None
    assert not big.is_regular  # gaps between the rows and the columns


@pytest.mark.parametrize("map_", ["() -> (0, 3)", "(d0) -> (d0 mod 3, 0)", "(d0) -> ((d0 * 2) mod 3, d0 floordiv 2)"])
def test_offsets_are_int64(map_: str) -> None:
    loops = 0 if map_.startswith("()") else 1
    it = sd.itensor(sd.f32, tile=[2, 2], trips=[5] * loops, steps=[1] * loops, map=map_)
    assert it.offsets().dtype == np.int64 and it.tokens() == brute_tokens(it)


def test_a_permutation_that_is_no_loop_nest_is_regular() -> None:
    """0, 2, 1: each element once, in an order no loop nest walks."""
    it = sd.itensor(sd.f32, tile=[1], trips=[3], steps=[1], map="(d0) -> ((d0 * 2) mod 3)")
    assert it.tokens() == [(0,), (2,), (1,)] and it.is_regular and brute_regular(it)


def test_coverage_of_a_huge_unstructured_stream_is_refused() -> None:
    it = sd.itensor(sd.f32, tile=[4096, 4096], trips=[3], steps=[1], map="(d0) -> (((d0 * 2) mod 3) * 4096, 0)")
    with pytest.raises(LimitError, match=r"counts every element, limited to 16777216 \(2\^24\) elements for this kind "
                                         r"of map; it has 50331648$"):
        it.is_regular


def test_printed_types_name_their_bounds() -> None:
    bounds = [Bound(1, parse_affine_map("(d0, d1)[s0, s1] -> (s0 + s1)"), ("n", "m")),
              Bound(0, parse_affine_map("(d0, d1)[s0] -> (s0)"), ("k",))]
    it = sd.itensor(sd.f32, tile=(2, 3), trips=(4, 6), steps=(2, 3), map="(d0, d1) -> (d0, d1)", bounds=bounds)
    assert str(it) == ('itensor<2x3xf32, [4, 6] * [2, 3], (d0, d1) -> (d0, d1), bounds [0: (d0, d1)[s0] -> (s0) ["k"], '
                       '1: (d0, d1)[s0, s1] -> ((s0 + s1)) ["n", "m"]]>')
    assert str(it.unbounded()) == "itensor<2x3xf32, [4, 6] * [2, 3], (d0, d1) -> (d0, d1)>"


@given(st.integers(0, 3), st.integers(0, 3), st.integers(1, 4))
def test_scalars_bound_one_at_a_time_carry_pythons_loops(n: int, m: int, rows: int) -> None:
    """Loop 1 runs `n + m` times (at most 6); binding `n` first keeps `m` a scalar."""
    bound = Bound(1, parse_affine_map("(d0, d1)[s0, s1] -> (s0 + s1)"), ("n", "m"))
    it = sd.itensor(sd.f32, tile=(1, 1), trips=(rows, 6), steps=(1, 1), map="(d0, d1) -> (d0, d1)", bounds=[bound])
    half = it.bind({"n": n})
    assert half.scalars == {"m"} and half.bounds[0].map.num_dims == 2
    assert half.tokens() == it.unbounded().tokens()  # the worst case while `m` has no value
    assert half.bind({"m": m}).tokens() == [(i, j) for i in range(rows) for j in range(n + m)]
    assert half.bind({"m": m}) == it.bind({"m": m, "n": n})


@pytest.mark.parametrize("loops", [0, 1])
def test_shapes_past_2_to_the_53_are_exact(loops: int) -> None:
    """Offsets beyond float64's integers (2^53) keep every unit: the bounds are int64 throughout."""
    far = 2**60 + 1
    it = sd.itensor(sd.i8, tile=[3], trips=[2] * loops, steps=[1] * loops, map=f"({'d0' * loops}) -> ({far})")
    assert it.tokens() == [(far,)] * 2**loops and it.shape == (far + 3,)
