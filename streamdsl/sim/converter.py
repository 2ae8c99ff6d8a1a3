"""Runtime model of `dataflow.itensor_converter`: a ping-pong buffer between two stream orders.

A converter with `shared_loops = s` sits inside the `s` outermost loops that source and destination
share (after splitting loops where one step divides the other, see `shared_loop_prefix`). One
iteration of those loops is a *slab*: `num_tokens / N` consecutive tokens of each side, where `N`
is the product of the shared trip counts. The writer fills slab `k` into bank `k % 2` while the
reader drains slab `k - 1` from the other bank; the reader may also emit a token of the slab being
written as soon as every element it covers has arrived. Replays and tile-shape changes are served
from the bank. A slab that does not fit the planned bank is an error, never a silent growth.

The planner (`lowering.converters`) uses the same slab analysis to choose `shared_loops`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamdsl.errors import StreamError
from streamdsl.itensor import itensor

__all__ = ["ConverterBuffer", "Loop", "SlabLayout", "loops_of", "shared_loop_prefix", "slab_count", "slab_layout"]


@dataclass(frozen=True)
class Loop:
    """One loop of a stream: `trip` iterations, each moving the tile offset by `stride` (per dim)."""

    trip: int
    stride: tuple[int, ...]


def loops_of(it: itensor) -> list[Loop] | None:
    """The canonical loops of `it` outermost first (the nest its equality key is built on: trip-1
    loops dropped, split loops merged), or None if the stream has no loop structure."""
    layout = it.key[-1]
    if not isinstance(layout, tuple) or layout[0] == "sequence":
        return None
    return [Loop(int(trip), tuple(int(v) for v in stride)) for trip, stride in layout[0]]


def _single_dim(stride: tuple[int, ...]) -> int | None:
    """The dim a loop moves along, if it moves along exactly one dim, forwards."""
    moving = [d for d, v in enumerate(stride) if v]
    return moving[0] if len(moving) == 1 and stride[moving[0]] > 0 else None


def _split(a: Loop, b: Loop) -> tuple[Loop, Loop | None, Loop | None] | None:
    """Split `a` and `b` into a common outer loop plus inner remainders, if they have one.

    Reuse loops (zero stride) share the gcd of their trips. Two loops along the same dim covering
    the same extent share an outer loop whose step is the lcm of theirs: a 4 x 32 loop and an
    8 x 16 loop become 4 x 32 (shared) with an inner 2 x 16 left on the second side.
    """
    if not any(a.stride) and not any(b.stride):
        outer = math.gcd(a.trip, b.trip)
        unit = a.stride
    else:
        dim = _single_dim(a.stride)
        if dim is None or dim != _single_dim(b.stride):
            return None
        sa, sb = a.stride[dim], b.stride[dim]
        extent, step = a.trip * sa, math.lcm(sa, sb)
        if extent != b.trip * sb or extent % step:
            return None
        outer = extent // step
        unit = tuple(step if d == dim else 0 for d in range(len(a.stride)))
    if outer < 2:
        return None

    def rest(loop: Loop) -> Loop | None:
        return Loop(loop.trip // outer, loop.stride) if loop.trip > outer else None

    return Loop(outer, unit), rest(a), rest(b)


def shared_loop_prefix(src: itensor, dst: itensor) -> list[Loop]:
    """The longest common prefix of the two loop nests, splitting loops to expose one.

    Sharing is decided by nesting order: loop by loop from the outermost, not by tensor dim.
    """
    a_loops, b_loops = loops_of(src), loops_of(dst)
    if a_loops is None or b_loops is None:
        return []
    shared: list[Loop] = []
    while a_loops and b_loops:
        a, b = a_loops[0], b_loops[0]
        if a == b:
            shared.append(a)
            a_loops, b_loops = a_loops[1:], b_loops[1:]
            continue
        split = _split(a, b)
        if split is None:
            break
        outer, a_rest, b_rest = split
        shared.append(outer)
        a_loops = ([a_rest] if a_rest else []) + a_loops[1:]
        b_loops = ([b_rest] if b_rest else []) + b_loops[1:]
    return shared


@dataclass(frozen=True)
class SlabLayout:
    """Where every token of a converter lives in its bank (see `slab_layout`)."""

    slabs: int  # N, the number of slabs (product of the shared trip counts)
    box: tuple[int, ...]  # extent of one slab: the smallest bank that holds it
    src_rel: np.ndarray  # (src tokens per slab, rank): offset of each source tile in the bank
    dst_rel: np.ndarray  # (dst tokens per slab, rank)
    origins: np.ndarray  # (N, rank): tensor offset of each slab's bank origin
    ready: np.ndarray  # (dst tokens per slab,): source token (within the slab) each dst token waits for
    fresh: np.ndarray  # (src tokens per slab,): elements each source token adds to the bank
    missing: int | None  # a dst token (within the slab) needing data the slab's source never writes

    @property
    def banks(self) -> int:
        """Banks the converter allocates: two (ping-pong) when there is more than one slab."""
        return 2 if self.slabs > 1 else 1

    def buffer_bytes(self, elem_bits: int) -> int:
        """On-chip bytes of the converter: `banks` banks of one slab's box each."""
        return self.banks * math.prod(self.box) * elem_bits // 8


def slab_count(src: itensor, dst: itensor, shared_loops: int) -> int:
    """How many slabs a converter with `shared_loops` goes through (the product of the shared
    trip counts, after splitting); each side streams `num_tokens / slab_count` tokens per slab."""
    prefix = shared_loop_prefix(src, dst)
    if not 0 <= shared_loops <= len(prefix):
        raise StreamError(
            f"shared_loops={shared_loops} but {src} and {dst} share {len(prefix)} outer loop(s); "
            f"re-plan the converter (lowering.converters.plan)"
        )
    return math.prod(loop.trip for loop in prefix[:shared_loops])


def slab_layout(src: itensor, dst: itensor, shared_loops: int) -> SlabLayout:
    """Analyse slab 0; for linear maps every slab is a translate of it (same shared strides)."""
    n = slab_count(src, dst, shared_loops)
    ns, nd = src.num_tokens // n, dst.num_tokens // n
    rank = src.rank
    src_off = src.offsets().reshape(n, ns, rank)
    dst_off = dst.offsets().reshape(n, nd, rank)
    origins = np.minimum(src_off.min(axis=1), dst_off.min(axis=1))
    ends = np.maximum((src_off + src.tile).max(axis=1), (dst_off + dst.tile).max(axis=1))
    box = tuple(int(v) for v in (ends - origins).max(axis=0))
    src_rel, dst_rel = src_off[0] - origins[0], dst_off[0] - origins[0]

    first = _first_writer(box, src_rel, src.tile)  # first source token writing each element; ns = never
    fresh = np.bincount(first.ravel(), minlength=ns + 1)[:ns]
    ready = _window_max(first, dst_rel, dst.tile)
    missing = np.flatnonzero(ready == ns)
    return SlabLayout(n, box, src_rel, dst_rel, origins, ready, fresh, int(missing[0]) if missing.size else None)


def _first_writer(box: tuple[int, ...], rel: np.ndarray, tile: tuple[int, ...]) -> np.ndarray:
    """Index of the first token whose tile covers each element (len(rel) where none does).
    Loops over tokens or over tile elements, whichever is fewer; the other is vectorised."""
    first = np.full(box, len(rel), dtype=np.int64)
    if len(rel) <= math.prod(tile):
        for i, r in enumerate(rel):
            region = first[_window(r, tile)]
            np.minimum(region, i, out=region)
    else:
        order = np.arange(len(rel), dtype=np.int64)
        for delta in np.ndindex(*tile):
            np.minimum.at(first, tuple((rel + delta).T), order)
    return first


def _window_max(values: np.ndarray, rel: np.ndarray, tile: tuple[int, ...]) -> np.ndarray:
    """The maximum of `values` under each tile placed at `rel`."""
    if len(rel) <= math.prod(tile):
        return np.array([values[_window(r, tile)].max() for r in rel], dtype=values.dtype)
    out = np.full(len(rel), np.iinfo(values.dtype).min, dtype=values.dtype)
    for delta in np.ndindex(*tile):
        np.maximum(out, values[tuple((rel + delta).T)], out=out)
    return out


def _window(rel: np.ndarray, tile: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(int(o), int(o) + t) for o, t in zip(rel, tile))


class ConverterBuffer:
    """Executes one converter token by token with exactly its planned capacity.

    `push` accepts source tiles in source order, `pop` returns destination tiles in destination
    order. `occupancy` counts the distinct elements held by banks whose slab is still in use.
    """

    def __init__(
        self,
        src: itensor,
        dst: itensor,
        buffer_shape: tuple[int, ...] | None,
        shared_loops: int,
        name: str = "itensor_converter",
    ) -> None:
        self.src, self.dst, self.name = src, dst, name
        if src.shape != dst.shape or src.dtype != dst.dtype:
            raise StreamError(
                f"converter {name}: source {src} and destination {dst} are different tensors "
                f"(shapes {list(src.shape)} vs {list(dst.shape)})"
            )
        self.buffer_shape = tuple(src.shape if buffer_shape is None else buffer_shape)
        self.layout = layout = slab_layout(src, dst, shared_loops)
        self._check_fits(layout, shared_loops)
        self._ns, self._nd = src.num_tokens // layout.slabs, dst.num_tokens // layout.slabs
        self._pushed = self._popped = 0
        self._banks: list[np.ndarray | None] = [None, None]
        self._fill = [0, 0]
        self._held = [-1, -1]  # slab in each bank
        self.peak = 0

    def _check_fits(self, layout: SlabLayout, shared_loops: int) -> None:
        where = f"converter {self.name} ({self.src} -> {self.dst}, shared_loops={shared_loops})"
        if len(self.buffer_shape) != self.src.rank or any(b > s for b, s in zip(layout.box, self.buffer_shape)):
            raise StreamError(
                f"{where}: one slab spans {list(layout.box)} elements but the planned bank is "
                f"{list(self.buffer_shape)}; re-plan it with lowering.converters.plan"
            )
        if layout.missing is not None:
            raise StreamError(
                f"{where}: destination token {layout.missing} of each slab reads elements the source "
                f"does not write in that slab; use fewer shared loops"
            )

    # -- state -------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Elements the banks hold: one bank for a single slab, two (ping-pong) otherwise."""
        return self.layout.banks * math.prod(self.buffer_shape)

    def _released(self, slab: int) -> bool:
        return self._popped >= (slab + 1) * self._nd and self._pushed >= (slab + 1) * self._ns

    @property
    def occupancy(self) -> int:
        return sum(f for f, s in zip(self._fill, self._held) if s >= 0 and not self._released(s))

    @property
    def done(self) -> bool:
        return self._pushed == self.src.num_tokens and self._popped == self.dst.num_tokens

    def can_push(self) -> bool:
        # slab k reuses the bank of slab k-2, free once the reader has moved past slab k-2
        return self._pushed < self.src.num_tokens and self._pushed // self._ns <= self._popped // self._nd + 1

    def can_pop(self) -> bool:
        if self._popped >= self.dst.num_tokens:
            return False
        slab, j = divmod(self._popped, self._nd)
        return self._pushed > slab * self._ns + int(self.layout.ready[j])

    # -- data --------------------------------------------------------------------------------

    def push(self, tile: np.ndarray) -> None:
        if not self.can_push():
            raise StreamError(
                f"converter {self.name}: push of source token {self._pushed} of {self.src.num_tokens} while "
                f"{'the stream is complete' if self._pushed >= self.src.num_tokens else 'both banks are in use'}"
            )
        tile = np.asarray(tile)
        if tile.shape != self.src.tile:
            raise StreamError(f"converter {self.name}: source tile has shape {tile.shape}, expected {self.src.tile}")
        slab, i = divmod(self._pushed, self._ns)
        bank = slab % 2
        if i == 0:
            if self._banks[bank] is None:
                self._banks[bank] = np.zeros(self.buffer_shape, dtype=tile.dtype)
            self._held[bank], self._fill[bank] = slab, 0
        self._banks[bank][_window(self.layout.src_rel[i], self.src.tile)] = tile  # type: ignore[index]
        self._fill[bank] += int(self.layout.fresh[i])
        self._pushed += 1
        self.peak = max(self.peak, self.occupancy)

    def pop(self) -> np.ndarray:
        if not self.can_pop():
            state = "the stream is complete" if self._popped >= self.dst.num_tokens else "its data has not arrived"
            raise StreamError(f"converter {self.name}: pop of destination token {self._popped} while {state}")
        slab, j = divmod(self._popped, self._nd)
        bank = self._banks[slab % 2]
        assert bank is not None
        self._popped += 1
        return bank[_window(self.layout.dst_rel[j], self.dst.tile)].copy()

    def __repr__(self) -> str:
        return (
            f"ConverterBuffer({self.name}: {self._pushed}/{self.src.num_tokens} in, {self._popped}/"
            f"{self.dst.num_tokens} out, occupancy {self.occupancy}/{self.capacity})"
        )
