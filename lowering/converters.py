"""Planning of layout converters: how big a ping-pong buffer an edge needs, and where it sits.

Rule (docs/converters.md): the converter lives inside the outermost loops that source and
destination share, decided in loop nesting order (`streamdsl.layout.shared_loop_prefix`,
which splits loops where one step divides the other). One bank holds one *slab*, the part of the
tensor touched during one iteration of the shared loops; ping-pong doubles it. Dims driven only by
shared loops (or by the same constant) shrink to the slab extent, every other dim keeps its full
size. If sharing the innermost candidate loops would let the destination read an element the
source has not written in the same slab, those loops are not shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.ir.affine import AffineExpr, AffineMap

from streamdsl.errors import StreamdslError
from streamdsl.itensor import itensor
from streamdsl.layout import Loop, loops_of, shared_loop_prefix, slab_layout

__all__ = ["ConverterError", "ConverterPlan", "plan", "split_type"]


class ConverterError(StreamdslError, ValueError):
    """The two sides of an edge cannot be converted (different tensors, or data never written)."""


@dataclass(frozen=True)
class ConverterPlan:
    src: itensor
    dst: itensor
    needed: bool
    buffer_shape: tuple[int, ...]  # one bank; () when no converter is needed
    shared_loops: int
    shared: tuple[Loop, ...]  # the shared loops, outermost first (after splitting)
    src_split: itensor  # src with its loops split so that the shared loops are its outermost
    dst_split: itensor

    @property
    def bank_elements(self) -> int:
        return math.prod(self.buffer_shape) if self.needed else 0

    @property
    def banks(self) -> int:
        """Two ping-pong banks when the buffer is refilled, else one (as the emitted C++ allocates)."""
        return 2 if self.reuses > 1 else 1

    @property
    def elements(self) -> int:
        """Elements in all banks."""
        return self.banks * self.bank_elements

    @property
    def bytes(self) -> int:
        return math.ceil(self.elements * self.src.dtype.bits / 8)

    @property
    def reuses(self) -> int:
        """How many times each bank is refilled (the product of the shared trip counts)."""
        return math.prod(loop.trip for loop in self.shared)

    def __str__(self) -> str:
        if not self.needed:
            return "no converter (equal types)"
        return (
            f"converter bank {list(self.buffer_shape)} x {self.banks} = {self.bytes} bytes, inside "
            f"{self.shared_loops} shared loop(s), refilled {self.reuses} times"
        )


def plan(src: itensor, dst: itensor) -> ConverterPlan:
    """The smallest slab-aligned converter from stream `src` to stream `dst`."""
    if src.dtype != dst.dtype or src.shape != dst.shape:
        raise ConverterError(
            f"cannot convert {src} (shape {list(src.shape)}, {src.dtype.name}) to {dst} "
            f"(shape {list(dst.shape)}, {dst.dtype.name}): a converter only reorders one tensor"
        )
    if src == dst:
        return ConverterPlan(src, dst, False, (), 0, (), src, dst)
    prefix = shared_loop_prefix(src, dst)
    for count in range(len(prefix), -1, -1):
        layout = slab_layout(src, dst, count)
        if layout.missing is None:
            shared = tuple(prefix[:count])
            return ConverterPlan(
                src, dst, True, layout.box, count, shared, split_type(src, shared), split_type(dst, shared)
            )
    raise ConverterError(
        f"cannot convert {src} to {dst}: destination token {layout.missing} reads elements the "
        "source never writes; the producer must cover the whole tensor"
    )


def split_type(it: itensor, shared: tuple[Loop, ...]) -> itensor:
    """`it` with its outer loops split so that `shared` are its outermost loops (same stream)."""
    loops = loops_of(it)
    if not shared or loops is None:
        return it
    out: list[Loop] = []
    for outer in shared:
        first = loops.pop(0)
        out.append(outer)
        if first.trip > outer.trip:
            loops.insert(0, Loop(first.trip // outer.trip, first.stride))
    return _from_loops(it, out + loops)


def _from_loops(it: itensor, loops: list[Loop]) -> itensor:
    """An itensor with unit steps whose map multiplies each loop index by its stride."""
    const = it.key[-1][1]  # the constant offset of the canonical nest (loops_of gave its loops)
    results = []
    for dim in range(it.rank):
        expr: AffineExpr = AffineExpr.constant(int(const[dim]))
        for pos, loop in enumerate(loops):
            if loop.stride[dim]:
                expr = expr + AffineExpr.dimension(pos) * loop.stride[dim]
        results.append(expr)
    return itensor(
        it.dtype,
        tile=it.tile,
        trips=[loop.trip for loop in loops],
        steps=[1] * len(loops),
        map=AffineMap(len(loops), 0, tuple(results)),
    )
