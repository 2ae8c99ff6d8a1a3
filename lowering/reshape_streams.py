"""Streams through reshapes: the itensor of the same tokens seen in a row-major reshaped tensor.

`tensor.expand_shape` / `collapse_shape` relabel a tensor's elements in row-major order. A stream
of tiles of the source is a stream of the result (an `itensor_reassociate`, tokens one to one)
when every tile is a box in the result too. Adding or removing unit dims always keeps boxes and
keeps the loop nest (map results of the unit dims are dropped or become 0); other reshapes (one
dim split into heads, say) are checked tile by tile and the result's loop nest is recovered from
its offsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir.affine import AffineExpr, AffineMap

from streamdsl.itensor import ITensorError, itensor

__all__ = ["MAX_CHECKED_ELEMENTS", "Placed", "reshape_itensor"]

MAX_CHECKED_ELEMENTS = 1 << 22  # tile elements x tokens checked one by one for a general reshape


def reshape_itensor(it: itensor, shape: Sequence[int]) -> itensor | None:
    """`it`'s tokens as tiles of the row-major reshape of its tensor to `shape`, or None when a
    tile is not a box there."""
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) != math.prod(it.shape):
        return None
    if shape == it.shape:
        return it
    if [s for s in shape if s != 1] == [s for s in it.shape if s != 1]:
        return _unit_dims(it, shape)
    return _by_offsets(it, shape)


def _unit_dims(it: itensor, shape: tuple[int, ...]) -> itensor:
    old = [d for d, s in enumerate(it.shape) if s != 1]
    new = [d for d, s in enumerate(shape) if s != 1]
    source = dict(zip(new, old))
    results = [it.map.results[source[d]] if d in source else AffineExpr.constant(0) for d in range(len(shape))]
    tile = [it.tile[source[d]] if d in source else 1 for d in range(len(shape))]
    return itensor(it.dtype, tile=tile, trips=it.trips, steps=it.steps, map=AffineMap(it.map.num_dims, 0, tuple(results)))


def _by_offsets(it: itensor, shape: tuple[int, ...]) -> itensor | None:
    """Row-major flattening is linear, so every tile's elements sit at its first element's flat
    index plus the same relative indices. Tile 0 is checked element by element to be a box B of
    the result; any other tile is then the box B at the unravelled index of its first element
    exactly when that box stays inside the result (no index carries into the next row)."""
    boxes = _boxes(it, shape)
    if boxes is None:
        return None
    try:
        return itensor.from_offsets(it.dtype, *boxes)
    except ITensorError:
        return None


def _boxes(it: itensor, shape: tuple[int, ...], low: Sequence[int] = (), within: Sequence[int] = ()
           ) -> tuple[tuple[int, ...], np.ndarray] | None:
    """The tile box and each token's low corner in the reshape to `shape` (`_by_offsets`) of the
    tensor of shape `within` (default: `it.shape`) whose box at `low` `it` streams."""
    if it.num_tokens * it.token_elements > MAX_CHECKED_ELEMENTS:
        return None
    within = tuple(within) or it.shape
    offsets = np.asarray(it.offsets(), dtype=np.int64).reshape(-1, it.rank) + np.array(tuple(low) or (0,) * it.rank)
    grid = np.stack(np.meshgrid(*[np.arange(t) for t in it.tile], indexing="ij"), axis=-1).reshape(-1, it.rank)
    coords = np.stack(np.unravel_index(np.ravel_multi_index(tuple((grid + offsets[0]).T), within), shape), axis=-1)
    box = coords.max(axis=0) - coords.min(axis=0) + 1
    if math.prod(int(v) for v in box) != len(grid):  # distinct elements filling their bounding box
        return None
    lows = np.stack(np.unravel_index(np.ravel_multi_index(tuple(offsets.T), within), shape), axis=-1)
    if np.any(lows + box > np.array(shape)):
        return None
    return tuple(int(v) for v in box), lows


@dataclass(frozen=True)
class Placed:
    """A stream `it` of the box at `low` of a tensor of `shape`: what a DMA at offsets `low` reads.
    `reshaped` and `sliced` follow a consumer's stream back through the views of a tensor in HBM
    to the tensor itself, keeping the consumer's loop nest (its trips, steps and run-time bounds),
    so the DMA reads in the consumer's order: no converter, and a stream of run-time length stays
    one."""

    it: itensor
    low: tuple[int, ...]
    shape: tuple[int, ...]

    @staticmethod
    def whole(it: itensor) -> Placed:
        return Placed(it, (0,) * it.rank, it.shape)

    def reshaped(self, shape: Sequence[int]) -> Placed | None:
        """This stream in the tensor this one's tensor is a row-major reshape of (of `shape`),
        or None when a tile is no box there or the tiles' corners are not affine in the loops."""
        shape = tuple(int(s) for s in shape)
        if math.prod(shape) != math.prod(self.shape):
            return None
        full = self.it.unbounded()
        boxes = _boxes(full, shape, self.low, self.shape)
        if boxes is None:
            return None
        tile, lows = boxes
        firsts = np.cumprod((1, *full.trips[:0:-1]))[::-1]  # the token where only loop k has moved, one step
        counted = set().union(*(b.map.used_dims() for b in self.it.bounds))  # loops the run-time bounds read
        steps, coef = list(full.steps), np.zeros((len(full.trips), len(shape)), np.int64)
        for k, trip in enumerate(full.trips):
            delta = lows[firsts[k]] - lows[0] if trip > 1 else np.zeros(len(shape), np.int64)
            if steps[k] and not np.any(delta % steps[k]):
                coef[k] = delta // steps[k]
            elif k not in counted:  # count this loop in unit steps (a bound reads no loop value that changes)
                steps[k], coef[k] = 1, delta
            else:
                return None
        values = np.stack(np.meshgrid(*[np.arange(t) * s for t, s in zip(full.trips, steps)], indexing="ij"),
                          axis=-1).reshape(-1, len(full.trips))  # each token's loop values, in stream order
        if not np.array_equal(lows, lows[0] + values @ coef):
            return None
        low = lows.min(axis=0)
        results = []
        for dim in range(len(shape)):
            expr: AffineExpr = AffineExpr.constant(int(lows[0][dim] - low[dim]))
            for k in range(len(full.trips)):
                if coef[k, dim]:
                    expr = expr + AffineExpr.dimension(k) * int(coef[k, dim])
            results.append(expr)
        it = itensor(self.it.dtype, tile=tile, trips=self.it.trips, steps=steps,
                     map=AffineMap(len(self.it.trips), 0, tuple(results)), bounds=self.it.bounds)
        return Placed(it, tuple(int(v) for v in low), shape)

    def sliced(self, offsets: Sequence[int], shape: Sequence[int]) -> Placed:
        """This stream of a slice (at `offsets`) of a tensor of `shape`, in that tensor."""
        return Placed(self.it, tuple(a + int(b) for a, b in zip(self.low, offsets)), tuple(int(s) for s in shape))
