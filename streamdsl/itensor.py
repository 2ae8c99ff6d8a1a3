"""The itensor type: a tensor as an ordered stream of tiles.

Normative semantics (docs/architecture.md): token `k` has iteration vector `iv = unravel(k, trips)` (row-major,
last loop fastest) and is the slice `tensor[o_j : o_j + tile_j]` of every dim `j`, where
`o = map(iv * steps)`. The full shape is derived: `shape_j = max(o_j) + tile_j`. Loops the map does
not use are reuse loops: the loops inside them replay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from xdsl.context import Context
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from streamdsl.dtypes import DType
from streamdsl.errors import LimitError, StreamdslError

if TYPE_CHECKING:
    from streamdsl.dialects.dataflow import ITensorType

__all__ = [
    "BEAT_BITS", "INT64_MAX", "Bound", "ITensorError", "MAX_ENUMERATED_TOKENS", "MAX_NONLINEAR_TOKENS", "eval_affine", "itensor",
    "linear_form",
]  # fmt: skip


# The widest word a stream carries (one FIFO word, one handshake per cycle): ap_uint's default
# maximum width (AP_INT_MAX_W), two 512-bit AXI words, 32 f32 lanes. A token (tile) crosses a
# stream as `itensor.beats` such words.
BEAT_BITS = 1024


class ITensorError(StreamdslError, ValueError):
    """Invalid itensor parameters; the message names the offending field and value."""


def parse_affine_map(text: str) -> AffineMap:
    try:
        return Parser(Context(), text).parse_affine_map()
    except ParseError as err:
        raise ITensorError(f"map: cannot parse {text!r} as an affine map ({err.msg})") from None
    except (NotImplementedError, ZeroDivisionError) as err:  # xDSL on `d0 mod d1`, or folding `4 mod 0`
        raise ITensorError(f"map: {text!r}: {err}; mod, floordiv and ceildiv need a positive constant") from None


def linear_form(map_: AffineMap) -> tuple[np.ndarray, np.ndarray] | None:
    """`(A, c)` with `map(x) == A @ x + c`, or None if the map uses mod/floordiv/ceildiv of dims."""
    rows, consts = [], []
    for expr in map_.results:
        form = _linear_expr(expr, map_.num_dims)
        if form is None:
            return None
        rows.append(form[0])
        consts.append(form[1])
    matrix = np.array(rows, dtype=np.int64).reshape(len(rows), map_.num_dims)
    return matrix, np.array(consts, dtype=np.int64)


def _linear_expr(expr: AffineExpr, ndims: int) -> tuple[list[int], int] | None:
    match expr:
        case AffineConstantExpr(value=value):
            return [0] * ndims, value
        case AffineDimExpr(position=pos):
            coeffs = [0] * ndims
            coeffs[pos] = 1
            return coeffs, 0
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add, lhs=lhs, rhs=rhs):
            left, right = _linear_expr(lhs, ndims), _linear_expr(rhs, ndims)
            if left is None or right is None:
                return None
            return [a + b for a, b in zip(left[0], right[0])], left[1] + right[1]
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul, lhs=lhs, rhs=rhs):
            left, right = _linear_expr(lhs, ndims), _linear_expr(rhs, ndims)
            if left is None or right is None:
                return None
            if any(right[0]):  # affine maps keep the constant on the right
                left, right = right, left
            if any(right[0]):
                return None
            return [a * right[1] for a in left[0]], left[1] * right[1]
        case _:
            return None


def _mixed_radix(coeffs: Sequence[int], trips: Sequence[int], tile: int) -> bool:
    """Whether offsets `sum(coeffs[i] * iv_i)` (iv_i < trips[i]) are exactly 0, tile, 2*tile, ..."""
    unit = tile
    for coeff, trip in sorted(zip(coeffs, trips)):
        if coeff != unit:
            return False
        unit *= int(trip)
    return True


Loop = tuple[int, tuple[int, ...]]  # (trip count, offset change per iteration)


def _merge_loops(trips: Sequence[int], columns: Sequence[tuple[int, ...]]) -> tuple[Loop, ...]:
    """Drop trip-count-1 loops and merge an outer loop into the next inner one where it continues
    it (outer column == inner trips * inner column); the result is unique for a token sequence."""
    nest: list[Loop] = []
    for trip, col in reversed([(t, c) for t, c in zip(trips, columns) if t != 1]):  # innermost first
        if nest and col == tuple(nest[-1][0] * v for v in nest[-1][1]):
            nest[-1] = (nest[-1][0] * trip, nest[-1][1])
        else:
            nest.append((trip, col))
    return tuple(reversed(nest))


def _loops_of_sequence(offsets: np.ndarray) -> tuple[object, ...]:
    """The canonical loop nest (as `_merge_loops` gives) of a sequence of offsets, found by peeling
    the innermost arithmetic run; the raw sequence if it is no such nest (non-linear maps)."""
    nest: list[Loop] = []
    seq = offsets
    while len(seq) > 1:
        step = seq[1] - seq[0]
        breaks = np.flatnonzero((np.diff(seq, axis=0) != step).any(axis=1))
        trip = int(breaks[0]) + 1 if len(breaks) else len(seq)
        blocks = seq[: len(seq) // trip * trip].reshape(-1, trip, seq.shape[1])
        expected = blocks[:, :1] + np.arange(trip)[None, :, None] * step
        if len(seq) % trip or not (blocks == expected).all():
            return ("sequence", offsets.tobytes())
        nest.append((trip, tuple(int(v) for v in step)))
        seq = blocks[:, 0]
    return (tuple(reversed(nest)), tuple(int(v) for v in seq[0]))


def eval_affine(expr: AffineExpr, grids: Sequence[np.ndarray]) -> np.ndarray | int:
    """`expr` evaluated at every point of `grids` at once (one int array per dim, broadcastable)."""
    match expr:
        case AffineDimExpr(position=pos):
            return grids[pos]
        case AffineConstantExpr(value=value):
            return value
        case AffineBinaryOpExpr(kind=kind, lhs=lhs, rhs=rhs):
            a, b = eval_affine(lhs, grids), eval_affine(rhs, grids)
            match kind:
                case AffineBinaryOpKind.Add:
                    return a + b
                case AffineBinaryOpKind.Mul:
                    return a * b
                case AffineBinaryOpKind.Mod:
                    return a % b
                case AffineBinaryOpKind.FloorDiv:
                    return a // b
                case AffineBinaryOpKind.CeilDiv:
                    return -(-a // b)
    raise ValueError(f"affine expression {expr} is not supported (symbols are not allowed)")


INT64_MAX = 2**63 - 1
# Offsets of maps with mod/floordiv/ceildiv have no closed form here: they are enumerated, so such
# an itensor may have at most MAX_NONLINEAR_TOKENS tokens (about a second on a busy 2-core
# machine); any stream whose offsets are listed (`offsets()`, `tokens()`, the simulators) at most
# MAX_ENUMERATED_TOKENS. Documented in docs/ir.md.
MAX_NONLINEAR_TOKENS = 2**20
MAX_ENUMERATED_TOKENS = 2**22


def _positive_ints(field: str, values: Sequence[int], minimum: int = 1) -> tuple[int, ...]:
    values = tuple(values)
    for v in values:
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or not minimum <= v <= INT64_MAX:
            raise ITensorError(f"{field}: every entry must be an integer >= {minimum} and < 2^63, got {list(values)}")
    return tuple(int(v) for v in values)


def _dims_used(expr: AffineExpr) -> set[int]:
    if isinstance(expr, AffineDimExpr):
        return {expr.position}
    if isinstance(expr, AffineBinaryOpExpr):
        return _dims_used(expr.lhs) | _dims_used(expr.rhs)
    return set()


def _check_divisors(map_: AffineMap) -> None:
    """mod/floordiv/ceildiv only by a positive constant (as MLIR requires), never by zero."""

    def walk(expr: AffineExpr) -> None:
        if isinstance(expr, AffineConstantExpr) and abs(expr.value) > INT64_MAX:
            raise ITensorError(f"map: constant {expr.value} in {map_} does not fit in int64")
        if not isinstance(expr, AffineBinaryOpExpr):
            return
        walk(expr.lhs)
        walk(expr.rhs)
        if expr.kind in (AffineBinaryOpKind.Mod, AffineBinaryOpKind.FloorDiv, AffineBinaryOpKind.CeilDiv):
            if not isinstance(expr.rhs, AffineConstantExpr) or expr.rhs.value <= 0:
                raise ITensorError(
                    f"map: {expr} in {map_} divides by {expr.rhs}; mod, floordiv and ceildiv need a positive constant"
                )

    for result in map_.results:
        walk(result)


def _magnitude(expr: AffineExpr, dims: Sequence[int]) -> int:
    """An upper bound of |expr| and of every subexpression's |value| when |d_i| <= dims[i]."""
    match expr:
        case AffineDimExpr(position=pos):
            return dims[pos]
        case AffineConstantExpr(value=value):
            return abs(value)
        case AffineBinaryOpExpr(kind=kind, lhs=lhs, rhs=rhs):
            a, b = _magnitude(lhs, dims), _magnitude(rhs, dims)
            match kind:
                case AffineBinaryOpKind.Add:
                    return max(a, b, a + b)
                case AffineBinaryOpKind.Mul:
                    return max(a, b, a * b)
                case AffineBinaryOpKind.Mod:
                    return max(a, b)
                case _:
                    return max(a, b) + 1
    raise ITensorError(f"map: affine expression {expr} is not supported (symbols are not allowed)")


@dataclass(frozen=True)
class Bound:
    """A run-time trip count: loop `loop` runs `map(iv)[scalars]` times (at most its trip count).

    `map` has one input per loop of the itensor (only the loops outside `loop` may appear: a
    triangular nest) and one symbol per name in `scalars` (run-time scalar arguments of the
    kernel). The itensor's trip count of that loop is the maximum; a bound whose scalars are all
    given values (`itensor.bind`) is a constant or depends on outer loop indices only."""

    loop: int
    map: AffineMap
    scalars: tuple[str, ...] = ()

    def __str__(self) -> str:
        names = ", ".join(f'"{n}"' for n in self.scalars)
        return f"{self.loop}: {self.map} [{names}]"

    @property
    def constant(self) -> int | None:
        """The trip count when it depends on nothing, else None."""
        (expr,) = self.map.results
        if self.scalars or not isinstance(expr, AffineConstantExpr):
            return None
        return expr.value

    def bind(self, values: Mapping[str, int]) -> Bound:
        """Substitute the scalars that `values` names by their values."""
        if not any(n in values for n in self.scalars):
            return self
        keep = [n for n in self.scalars if n not in values]
        symbols = [AffineExpr.constant(int(values[n])) if n in values else AffineExpr.symbol(keep.index(n))
                   for n in self.scalars]
        dims = [AffineExpr.dimension(i) for i in range(self.map.num_dims)]
        return Bound(self.loop, self.map.replace_dims_and_symbols(dims, symbols, self.map.num_dims, len(keep)), tuple(keep))

    def rename(self, names: Mapping[str, str]) -> Bound:
        return Bound(self.loop, self.map, tuple(names.get(n, n) for n in self.scalars))


class itensor:  # noqa: N801 - reads as a type name in user code: sd.itensor(...)
    """An immutable itensor type. Equality is stream compatibility (see `key`).

    `bounds` (optional) gives some loops a run-time trip count (`Bound`); the trip count in
    `trips` is then that loop's maximum. The shape is that of the maximum stream; a bounded stream
    carries the tokens whose loop indices lie within every bound (all of them while a bound still
    names a scalar without a value: the worst case)."""

    __slots__ = ("_key", "_offsets", "beat", "bounds", "dtype", "map", "steps", "tile", "trips")

    def __init__(
        self,
        dtype: DType,
        *,
        tile: Sequence[int],
        trips: Sequence[int],
        steps: Sequence[int],
        map: str | AffineMap | Callable[..., tuple[object, ...]],  # noqa: A002 - the paper's name
        bounds: Sequence[Bound] = (),
        beat: int | None = None,
    ) -> None:
        if not isinstance(dtype, DType):
            raise ITensorError(f"dtype: expected an sd dtype such as sd.f32, got {dtype!r}")
        self.dtype = dtype
        self.tile = _positive_ints("tile", tile)
        if not self.tile:
            raise ITensorError("tile: must have at least one dim, got []")
        self.trips = _positive_ints("trips", trips)
        self.steps = _positive_ints("steps", steps, minimum=0)
        if len(self.steps) != len(self.trips):
            raise ITensorError(
                f"steps: has {len(self.steps)} entries {list(self.steps)} but trips has "
                f"{len(self.trips)} {list(self.trips)}; give one step per loop"
            )
        self.map = self._coerce_map(map)
        self.bounds = self._check_bounds(bounds)
        self.beat = self._check_beat(beat)
        self._offsets: np.ndarray | None = None
        self._key: tuple[object, ...] | None = None
        self._check_range()
        self._check_offsets()

    def _coerce_map(self, map_: object) -> AffineMap:
        if isinstance(map_, str):
            map_ = parse_affine_map(map_)
        elif callable(map_) and not isinstance(map_, AffineMap):
            map_ = AffineMap.from_callable(map_)
        if not isinstance(map_, AffineMap):
            raise ITensorError(f"map: expected an affine map, its text or a lambda, got {map_!r}")
        if map_.num_symbols:
            raise ITensorError(f"map: must have no symbols, got {map_}")
        _check_divisors(map_)
        if map_.num_dims != len(self.trips):
            raise ITensorError(
                f"map: {map_} has {map_.num_dims} inputs but there are {len(self.trips)} loops "
                f"(trips {list(self.trips)}); the map needs one input per loop"
            )
        if len(map_.results) != len(self.tile):
            raise ITensorError(
                f"map: {map_} has {len(map_.results)} results but the tile {list(self.tile)} has rank "
                f"{len(self.tile)}; the map needs one result per tensor dim"
            )
        return map_

    def _check_beat(self, beat: int | None) -> int | None:
        """A narrowed stream's beat in bits (None: the default, up to `BEAT_BITS`): whole elements,
        at most `BEAT_BITS`; a beat as wide as the default is the default."""
        if beat is None:
            return None
        if not isinstance(beat, int) or not self.dtype.bits <= beat <= BEAT_BITS or beat % self.dtype.bits:
            raise ITensorError(f"beat: {beat!r} bits must be a multiple of the {self.dtype.bits}-bit element between "
                               f"{self.dtype.bits} and {BEAT_BITS}")
        return None if beat // self.dtype.bits >= self._beat_lanes(None) else beat

    def _check_bounds(self, bounds: Sequence[Bound]) -> tuple[Bound, ...]:
        checked = tuple(sorted(bounds, key=lambda b: b.loop))
        loops = [b.loop for b in checked]
        for b in checked:
            if not isinstance(b, Bound) or not 0 <= b.loop < len(self.trips):
                raise ITensorError(f"bounds: {b} must be a Bound of one of the {len(self.trips)} loops")
            if b.map.num_dims != len(self.trips) or b.map.num_symbols != len(b.scalars) or len(b.map.results) != 1:
                raise ITensorError(f"bounds: {b}: the map needs {len(self.trips)} inputs (one per loop), one symbol "
                                   "per scalar and one result")
            used = _dims_used(b.map.results[0])
            if used and max(used) >= b.loop:
                raise ITensorError(f"bounds: the trip count of loop {b.loop} ({b}) may only depend on the loops outside it")
            if (c := b.constant) is not None and c > self.trips[b.loop]:
                raise ITensorError(f"bounds: loop {b.loop} would run {c} times, more than its maximum {self.trips[b.loop]}")
        if len(set(loops)) != len(loops):
            raise ITensorError(f"bounds: two bounds for one loop in {[str(b) for b in checked]}")
        return checked

    # -- run-time trip counts ------------------------------------------------------------------

    @property
    def scalars(self) -> frozenset[str]:
        """The run-time scalars this stream's length depends on."""
        return frozenset(n for b in self.bounds for n in b.scalars)

    def bind(self, values: Mapping[str, int]) -> itensor:
        """This stream with the scalars in `values` fixed (the stream one run carries). Raises
        ITensorError when a loop would run more often than its maximum, or never."""
        if not any(n in values for n in self.scalars):
            return self
        return self._with(bounds=[b.bind(values) for b in self.bounds])

    def rename_scalars(self, names: Mapping[str, str]) -> itensor:
        return self._with(bounds=[b.rename(names) for b in self.bounds]) if self.bounds else self

    def unbounded(self) -> itensor:
        """The maximum stream (every loop at its trip count)."""
        return self._with(bounds=()) if self.bounds else self

    def _with(self, **fields: object) -> itensor:
        args: dict[str, object] = {"tile": self.tile, "trips": self.trips, "steps": self.steps, "map": self.map,
                                   "bounds": self.bounds, "beat": self.beat}
        dtype = fields.pop("dtype", self.dtype)
        args.update(fields)
        return itensor(dtype, **args)  # type: ignore[arg-type]

    def _live(self) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
        """`(trips, None)` when the stream is a rectangular nest (the bounds that are known are
        constants), else `(None, mask)`: which tokens of the maximum stream it carries."""
        known = [b for b in self.bounds if not b.scalars]
        if all(b.constant is not None for b in known):
            trips = list(self.trips)
            for b in known:
                trips[b.loop] = max(0, b.constant)  # type: ignore[type-var] - a count below 0 runs no times, as range()
            return tuple(trips), None
        total = math.prod(self.trips)
        if total > MAX_ENUMERATED_TOKENS:
            raise LimitError(f"{self}: a bound that depends on loop indices is enumerated, limited to "
                             f"{MAX_ENUMERATED_TOKENS} (2^22) tokens; it has up to {total}")
        grid = np.indices(self.trips, dtype=np.int64).reshape(len(self.trips), total)
        mask = np.ones(total, dtype=bool)
        for b in known:
            count = np.broadcast_to(eval_affine(b.map.results[0], list(grid)), total)
            mask &= grid[b.loop] < count
        return None, mask

    def _check_range(self) -> None:
        """Every offset, shape and intermediate value fits in int64 (numpy would wrap around), and
        maps without a closed form stay small enough to enumerate."""
        spans = [s * (t - 1) for s, t in zip(self.steps, self.trips)]
        for dim, expr in enumerate(self.map.results):
            if _magnitude(expr, spans) + self.tile[dim] > INT64_MAX:
                raise ITensorError(
                    f"map: {self} reaches offsets past 2^63 in dim {dim} (trips {list(self.trips)}, steps "
                    f"{list(self.steps)}); offsets and shapes must fit in int64"
                )
        if linear_form(self.map) is None and self.num_tokens > MAX_NONLINEAR_TOKENS:
            raise ITensorError(
                f"map: {self} has {self.num_tokens} tokens and a map with mod/floordiv/ceildiv, whose offsets "
                f"are enumerated; the limit is {MAX_NONLINEAR_TOKENS} (2^20) tokens. Use larger tiles or a "
                "linear map"
            )

    def _check_offsets(self) -> None:
        for dim, low in enumerate(self._bounds()[0]):
            if low < 0:
                raise ITensorError(
                    f"map: {self.map} gives offset {int(low)} in dim {dim}; offsets must be >= 0 "
                    f"(with trips {list(self.trips)} and steps {list(self.steps)})"
                )

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def tiled(
        cls,
        dtype: DType,
        shape: Sequence[int],
        tile: Sequence[int],
        order: Sequence[int] | None = None,
    ) -> itensor:
        """A tensor cut into tiles; `order` lists the tensor dims from outermost loop to innermost."""
        shape = _positive_ints("shape", shape)
        tile = _positive_ints("tile", tile)
        if len(shape) != len(tile):
            raise ITensorError(f"tile: {list(tile)} has rank {len(tile)} but shape {list(shape)} has rank {len(shape)}")
        for dim, (size, t) in enumerate(zip(shape, tile)):
            if size % t:
                raise ITensorError(f"tile: size {t} does not divide shape {list(shape)} in dim {dim}")
        order = tuple(range(len(shape))) if order is None else tuple(order)
        if sorted(order) != list(range(len(shape))):
            raise ITensorError(f"order: {list(order)} is not a permutation of the dims 0..{len(shape) - 1}")
        trips = [shape[d] // tile[d] for d in order]
        steps = [tile[d] for d in order]
        results = [AffineExpr.dimension(order.index(d)) for d in range(len(shape))]
        return cls(dtype, tile=tile, trips=trips, steps=steps, map=AffineMap(len(order), 0, tuple(results)))

    @classmethod
    def from_offsets(cls, dtype: DType, tile: Sequence[int], offsets: np.ndarray) -> itensor:
        """The itensor streaming tiles at `offsets` (num_tokens x rank), in that order; the
        sequence must be a loop nest (each loop a constant step), else ITensorError."""
        nest = _loops_of_sequence(np.asarray(offsets, dtype=np.int64))
        if nest[0] == "sequence":
            raise ITensorError(f"from_offsets: the {len(offsets)} tile offsets are not a loop nest with constant steps")
        loops, base = nest
        loops = loops or ((1, (0,) * len(tile)),)
        results = []
        for d in range(len(tile)):
            terms = [AffineExpr.dimension(i) * col[d] for i, (_, col) in enumerate(loops) if col[d]]
            terms = terms + [AffineExpr.constant(base[d])] if base[d] or not terms else terms
            results.append(sum(terms[1:], terms[0]))
        results = tuple(results)
        return cls(dtype, tile=tile, trips=[t for t, _ in loops], steps=[1] * len(loops), map=AffineMap(len(loops), 0, results))

    def region(self, dim: int, start: int, size: int) -> itensor:
        """The tiles of this stream inside `[start, start + size)` of `dim`, in this stream's order,
        with offsets relative to the region (a part of `itensor_chunk` / `itensor_concat`)."""
        if self.bounds:
            raise ITensorError(f"region: {self} has run-time trip counts; cutting it into parts is not supported")
        offs = self.offsets()
        low, high = offs[:, dim], offs[:, dim] + self.tile[dim]
        inside = (low >= start) & (high <= start + size)
        if ((low < start + size) & (high > start) & ~inside).any():
            raise ITensorError(f"region: tiles of {list(self.tile)} straddle [{start}, {start + size}) of dim {dim}; "
                               f"part boundaries must be multiples of the tile size {self.tile[dim]}")
        part = offs[inside].copy()
        part[:, dim] -= start
        return itensor.from_offsets(self.dtype, self.tile, part)

    def repeat(self, n: int) -> itensor:
        """The same stream replayed `n` times (a new outermost reuse loop)."""
        (n,) = _positive_ints("repeat", [n])
        shifted = self.map.replace_dims_and_symbols(
            [AffineExpr.dimension(i + 1) for i in range(len(self.trips))], [], len(self.trips) + 1, 0
        )
        dims = [AffineExpr.dimension(i + 1) for i in range(len(self.trips))]
        bounds = [Bound(b.loop + 1, b.map.replace_dims_and_symbols(dims, [AffineExpr.symbol(i) for i in range(b.map.num_symbols)],
                                                                   len(self.trips) + 1, b.map.num_symbols), b.scalars)
                  for b in self.bounds]
        return itensor(self.dtype, tile=self.tile, trips=(n, *self.trips), steps=(1, *self.steps), map=shifted, bounds=bounds)

    # -- derived facts ----------------------------------------------------------------------

    @property
    def rank(self) -> int:
        return len(self.tile)

    @property
    def num_tokens(self) -> int:
        if not self.bounds:
            return math.prod(self.trips)
        trips, mask = self._live()
        return math.prod(trips) if trips is not None else int(mask.sum())  # type: ignore[union-attr]

    @property
    def token_elements(self) -> int:
        return math.prod(self.tile)

    @property
    def token_bits(self) -> int:
        return self.token_elements * self.dtype.bits

    @property
    def beat_lanes(self) -> int:
        """Elements per stream beat: as many as fit `BEAT_BITS` (or the narrowed `beat`), at most
        the whole tile."""
        return self._beat_lanes(self.beat)

    def _beat_lanes(self, beat: int | None) -> int:
        return max(1, min(self.token_elements, (beat or BEAT_BITS) // self.dtype.bits))

    @property
    def beat_bits(self) -> int:
        """The bits of a beat: a FIFO word of this stream."""
        return self.beat_lanes * self.dtype.bits

    def narrowed(self, beat: int | None) -> itensor:
        """The same tokens crossing their stream in beats of `beat` bits (None: the default)."""
        return self._with(beat=beat)

    @property
    def beats(self) -> int:
        """Beats a token crosses a stream as: beat b holds tile elements [b * lanes, (b + 1) *
        lanes) in row-major order, the last beat padded. The one definition for the simulators,
        the timing model and the HLS emitter."""
        return -(-self.token_elements // self.beat_lanes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._bounds()[1] + np.array(self.tile))

    def _scaled_form(self) -> tuple[np.ndarray, np.ndarray] | None:
        """`(M, c)` with token offset `M @ iv + c` (steps folded in), or None for non-linear maps."""
        form = linear_form(self.map)
        if form is None:
            return None
        return form[0] * np.array(self.steps, dtype=np.int64), form[1]

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest offset of each dim; closed form for linear maps, so no stream is built."""
        form = self._scaled_form()
        if form is None:
            offsets = self.offsets()
            return offsets.min(axis=0), offsets.max(axis=0)
        span = form[0] * (np.array(self.trips, dtype=np.int64) - 1)
        return form[1] + np.minimum(span, 0).sum(axis=1), form[1] + np.maximum(span, 0).sum(axis=1)

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def reuse_loops(self) -> tuple[int, ...]:
        """Loops (trip count > 1) whose index moves no offset: the inner loops replay."""
        form = self._scaled_form()
        if form is not None:
            moving = form[0].any(axis=0)
        else:  # evaluate the map: a loop is reuse iff no step of it changes an offset
            grid = self.offsets().reshape(*self.trips, self.rank)
            moving = [bool(np.diff(grid, axis=i).any()) for i in range(len(self.trips))]
        return tuple(i for i, t in enumerate(self.trips) if t > 1 and not moving[i])

    @property
    def has_reuse(self) -> bool:
        return bool(self.reuse_loops)

    @property
    def is_regular(self) -> bool:
        """Tiles neither overlap nor leave gaps: each replay (one iteration of the reuse loops)
        covers every element of the tensor exactly once. Decided on the canonical loop nest, so
        equal types agree."""
        layout = self.key[2]
        if layout[0] == "sequence":  # no loop structure, hence no replays
            return self._coverage_is(1)
        nest, base = layout
        if any(np.count_nonzero(col) > 1 for _, col in nest):  # a loop moving two dims at once
            return self._coverage_is(math.prod(t for t, col in nest if not any(col)))
        for dim in range(self.rank):
            loops = [(t, col[dim]) for t, col in nest if col[dim]]
            low = base[dim] + sum(min(0, c * (t - 1)) for t, c in loops)
            if low != 0 or not _mixed_radix([abs(c) for _, c in loops], [t for t, _ in loops], self.tile[dim]):
                return False
        return True

    def _coverage_is(self, times: int) -> bool:
        if self.num_tokens * self.token_elements != self.num_elements * times:  # too few or too many elements
            return False
        if self.num_elements > MAX_ENUMERATED_TOKENS * 4:
            raise LimitError(
                f"{self}: deciding whether its tiles cover the tensor exactly counts every element, limited to "
                f"{MAX_ENUMERATED_TOKENS * 4} (2^24) elements for this kind of map; it has {self.num_elements}"
            )
        counts = np.zeros(self.shape, dtype=np.int32)
        for s in self.slices():
            counts[s] += 1
        return bool((counts == times).all())

    def offsets(self) -> np.ndarray:
        """Tile offsets in stream order, an int array of shape (num_tokens, rank)."""
        if self.num_tokens > MAX_ENUMERATED_TOKENS:
            raise LimitError(
                f"{self} has {self.num_tokens} tokens; listing its token offsets is limited to "
                f"{MAX_ENUMERATED_TOKENS} (2^22) tokens. Use larger tiles or fewer reuse loops"
            )
        if self._offsets is None:
            self._offsets = self._compute_offsets()
            self._offsets.setflags(write=False)
        return self._offsets

    def _compute_offsets(self) -> np.ndarray:
        if self.bounds:
            trips, mask = self._live()
            if trips is None:
                return self.unbounded().offsets()[mask]
            if 0 in trips:
                return np.zeros((0, self.rank), dtype=np.int64)
            return itensor(self.dtype, tile=self.tile, trips=trips, steps=self.steps, map=self.map).offsets()
        grid = np.indices(self.trips, dtype=np.int64).reshape(len(self.trips), self.num_tokens).T
        points = grid * np.array(self.steps, dtype=np.int64)
        form = linear_form(self.map)
        if form is not None:
            matrix, const = form
            return (points @ matrix.T + const).reshape(self.num_tokens, self.rank)
        columns = [np.broadcast_to(eval_affine(e, points.T), self.num_tokens) for e in self.map.results]
        return np.stack(columns, axis=1).astype(np.int64)

    def tokens(self) -> list[tuple[int, ...]]:
        """Tile offsets in stream order."""
        return [tuple(int(v) for v in row) for row in self.offsets()]

    def slices(self) -> Iterator[tuple[slice, ...]]:
        for row in self.offsets():
            yield tuple(slice(int(o), int(o) + t) for o, t in zip(row, self.tile))

    def reference_stream(self, array: np.ndarray) -> list[np.ndarray]:
        """The tiles of `array` in stream order (the executable reference of the semantics)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ITensorError(f"reference_stream: array has shape {array.shape}, the itensor {self} has shape {self.shape}")
        return [array[s] for s in self.slices()]

    def from_stream(self, tiles: Sequence[np.ndarray]) -> np.ndarray:
        """Reassemble the tensor from its stream (the inverse of `reference_stream`)."""
        if self.has_reuse:
            raise ITensorError(f"from_stream: {self} replays tiles (reuse loops {list(self.reuse_loops)}); drop them first")
        if len(tiles) != self.num_tokens:
            raise ITensorError(f"from_stream: got {len(tiles)} tiles, {self} has {self.num_tokens} tokens")
        out = np.zeros(self.shape, dtype=np.asarray(tiles[0]).dtype if tiles else self.dtype.storage)
        covered = np.zeros(self.shape, dtype=bool)
        for s, tile in zip(self.slices(), tiles):
            if np.shape(tile) != self.tile:
                raise ITensorError(f"from_stream: tile of shape {np.shape(tile)} where {self} has tiles {self.tile}")
            out[s] = tile
            covered[s] = True
        if not covered.all() and not self.bounds:  # a bounded stream carries part of the tensor
            raise ITensorError(f"from_stream: {self} leaves {int((~covered).sum())} elements uncovered")
        return out

    # -- normal form and compatibility -----------------------------------------------------

    def normalized(self) -> itensor:
        """The same stream with trip-count-1 loops dropped."""
        keep = [i for i, t in enumerate(self.trips) if t != 1]
        if len(keep) == len(self.trips) or self.bounds:
            return self
        new_pos = {old: new for new, old in enumerate(keep)}
        replacements = [
            AffineExpr.dimension(new_pos[i]) if i in new_pos else AffineExpr.constant(0) for i in range(len(self.trips))
        ]
        map_ = self.map.replace_dims_and_symbols(replacements, [], len(keep), 0)
        return itensor(
            self.dtype,
            tile=self.tile,
            trips=[self.trips[i] for i in keep],
            steps=[self.steps[i] for i in keep],
            map=map_,
        )

    @property
    def key(self) -> tuple[object, ...]:
        """Two itensors stream the same tiles in the same order iff their keys are equal.

        The key is the canonical loop nest of the token sequence: trip-count-1 loops dropped and
        adjacent loops merged where the outer one continues the inner one (a split loop), so
        e.g. trips [2, 4] * [4, 1] and trips [8] * [1] over one dim are equal. A narrowed beat
        is part of it: the same tokens in other beats are another stream."""
        if self._key is None:
            form = self._scaled_form()
            if form is not None:
                nest = _merge_loops(self.trips, [tuple(col) for col in form[0].T.tolist()])
                layout: object = (nest, tuple(form[1].tolist()))
            else:
                layout = _loops_of_sequence(self.offsets())
            self._key = ((self.dtype, self.beat) if self.beat else self.dtype, self.tile, layout)
            if self.bounds:  # run-time trip counts: the same loops, bounded alike
                self._key += (self.trips, self.steps, tuple(self.bounds))
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, itensor) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def with_dtype(self, dtype: DType) -> itensor:
        return self._with(dtype=dtype, beat=None)

    # -- IR ------------------------------------------------------------------------------------

    def to_ir(self) -> ITensorType:
        from streamdsl.dialects.dataflow import ITensorType

        return ITensorType.from_itensor(self)

    @staticmethod
    def from_ir(attr: ITensorType) -> itensor:
        return attr.itensor

    def __str__(self) -> str:
        tile = "x".join(map(str, self.tile))
        bounds = f", bounds [{', '.join(map(str, self.bounds))}]" if self.bounds else ""
        beat = f", beat {self.beat}" if self.beat else ""
        return f"itensor<{tile}x{self.dtype.name}, {list(self.trips)} * {list(self.steps)}, {self.map}{bounds}{beat}>"

    def __repr__(self) -> str:
        return f"sd.{self}"
