"""Layout algebra of stream pairs: loop nests, the loops two streams share, and slabs.

A converter with `shared_loops = s` (`dataflow.itensor_converter`, docs/converters.md) sits inside
the `s` outermost loops that source and destination share (after splitting loops where one step
divides the other, see `shared_loop_prefix`). One iteration of those loops is a *slab*:
`num_tokens / N` consecutive tokens of each side, where `N` is the product of the shared trip
counts. `slab_layout` places every token of slab 0 in its bank and says which source token each
destination token waits for.

One meaning, three users: the converter planner (`lowering.converters`), the functional
simulator's `ConverterBuffer` (`streamdsl.sim.converter`) and the HLS emitter's converter process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamdsl.errors import StreamError
from streamdsl.itensor import itensor

__all__ = [
    "Loop", "SlabLayout", "converter_steps", "converter_token_steps", "loops_of", "shared_loop_prefix", "slab_count",
    "slab_layout", "tile_window",
]  # fmt: skip


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


def bank_partitions(src: itensor, dst: itensor, box: int) -> int:
    """The cyclic partition factor of a converter's banks of `box` elements (the emitted
    `array_partition` on the box dimension): one memory per lane of the wider beat, so a beat
    moves in one cycle (at most one per element)."""
    return min(max(src.beat_lanes, dst.beat_lanes), box)


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


def converter_steps(layout: SlabLayout, src: itensor, dst: itensor) -> tuple[np.ndarray, np.ndarray]:
    """The emitted converter's static schedule (hls_backend/emit.py): one loop, each iteration
    first reads the next source beat while its slab's bank is free (slab s reuses the bank of slab
    s - 2: with two banks it reads slab s + 1 while draining slab s), then writes the next
    destination beat once the source tokens it covers are in. Reads and writes block, so a read
    ahead waits for its beat even when a write could go. Returns the iteration of every source
    beat's read and of every destination beat's write; raises StreamError if the schedule stalls."""
    ns, nd = src.num_tokens // layout.slabs, dst.num_tokens // layout.slabs
    bs, bd = src.beats, dst.beats
    total_r, total_w = src.num_tokens * bs, dst.num_tokens * bd
    reads, writes = np.empty(total_r, dtype=np.int64), np.empty(total_w, dtype=np.int64)
    ready = layout.ready.tolist()
    read = written = step = 0
    while read < total_r or written < total_w:
        moved = False
        if read < total_r and (layout.banks == 1 or (read // bs) // ns <= (written // bd) // nd + 1):
            reads[read], read, moved = step, read + 1, True
        k = written // bd
        if written < total_w and read // bs > (k // nd) * ns + ready[k % nd]:
            writes[written], written, moved = step, written + 1, True
        if not moved:
            raise StreamError(f"converter {src} -> {dst}: the static schedule stalls after {read} / {written} beats; re-plan it")
        step += 1
    return reads, writes


def converter_token_steps(layout: SlabLayout, src: itensor, dst: itensor) -> tuple[np.ndarray, np.ndarray, int]:
    """`converter_steps` by token, as the simulators move whole tokens: the step of each source
    token's first beat read and of each destination token's last beat written, and the schedule's
    length in steps (the emitted loop's trip count)."""
    reads, writes = converter_steps(layout, src, dst)
    steps = int(max(reads.max(initial=-1), writes.max(initial=-1))) + 1
    return reads[:: src.beats], writes[dst.beats - 1 :: dst.beats], steps


def _first_writer(box: tuple[int, ...], rel: np.ndarray, tile: tuple[int, ...]) -> np.ndarray:
    """Index of the first token whose tile covers each element (len(rel) where none does).
    Loops over tokens or over tile elements, whichever is fewer; the other is vectorised."""
    first = np.full(box, len(rel), dtype=np.int64)
    if len(rel) <= math.prod(tile):
        for i, r in enumerate(rel):
            region = first[tile_window(r, tile)]
            np.minimum(region, i, out=region)
    else:
        order = np.arange(len(rel), dtype=np.int64)
        for delta in np.ndindex(*tile):
            np.minimum.at(first, tuple((rel + delta).T), order)
    return first


def _window_max(values: np.ndarray, rel: np.ndarray, tile: tuple[int, ...]) -> np.ndarray:
    """The maximum of `values` under each tile placed at `rel`."""
    if len(rel) <= math.prod(tile):
        return np.array([values[tile_window(r, tile)].max() for r in rel], dtype=values.dtype)
    out = np.full(len(rel), np.iinfo(values.dtype).min, dtype=values.dtype)
    for delta in np.ndindex(*tile):
        np.maximum(out, values[tuple((rel + delta).T)], out=out)
    return out


def tile_window(rel: np.ndarray, tile: tuple[int, ...]) -> tuple[slice, ...]:
    """The slices of a tile of shape `tile` placed at offset `rel`."""
    return tuple(slice(int(o), int(o) + t) for o, t in zip(rel, tile))
