"""Runtime model of `dataflow.itensor_converter`: a ping-pong buffer between two stream orders.

The writer fills slab `k` (`streamdsl.layout`) into bank `k % 2` while the reader drains slab
`k - 1` from the other bank; the reader may also emit a token of the slab being written as soon as
every element it covers has arrived. Replays and tile-shape changes are served from the bank. A
slab that does not fit the planned bank is an error, never a silent growth.
"""

from __future__ import annotations

import math

import numpy as np

from streamdsl.errors import StreamError
from streamdsl.itensor import itensor
from streamdsl.layout import SlabLayout, slab_layout, tile_window

__all__ = ["ConverterBuffer"]


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
        self._banks[bank][tile_window(self.layout.src_rel[i], self.src.tile)] = tile  # type: ignore[index]
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
        return bank[tile_window(self.layout.dst_rel[j], self.dst.tile)].copy()

    def __repr__(self) -> str:
        return (
            f"ConverterBuffer({self.name}: {self._pushed}/{self.src.num_tokens} in, {self._popped}/"
            f"{self.dst.num_tokens} out, occupancy {self.occupancy}/{self.capacity})"
        )
