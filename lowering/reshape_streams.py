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

import numpy as np
from xdsl.ir.affine import AffineExpr, AffineMap

from streamdsl.itensor import ITensorError, itensor

__all__ = ["MAX_CHECKED_ELEMENTS", "reshape_itensor"]

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
    if it.num_tokens * it.token_elements > MAX_CHECKED_ELEMENTS:
        return None
    offsets = np.asarray(it.offsets(), dtype=np.int64).reshape(-1, it.rank)
    grid = np.stack(np.meshgrid(*[np.arange(t) for t in it.tile], indexing="ij"), axis=-1).reshape(-1, it.rank)
    coords = np.stack(np.unravel_index(np.ravel_multi_index(tuple((grid + offsets[0]).T), it.shape), shape), axis=-1)
    box = coords.max(axis=0) - coords.min(axis=0) + 1
    if math.prod(int(v) for v in box) != len(grid):  # distinct elements filling their bounding box
        return None
    lows = np.stack(np.unravel_index(np.ravel_multi_index(tuple(offsets.T), it.shape), shape), axis=-1)
    if np.any(lows + box > np.array(shape)):
        return None
    try:
        return itensor.from_offsets(it.dtype, tuple(int(v) for v in box), lows)
    except ITensorError:
        return None
