"""`tile-linalg`: tile every `linalg.generic` of a function into an `scf.for` nest over tiles.

Tile sizes come from a plan, the op's `tile_sizes = array<i64: ...>` attribute (one per loop),
else from `default-tile`: each loop's largest divisor not above it (tiles must cover a tensor
exactly). The nest runs the parallel loops outermost, in loop order, carrying the whole result
tensor; the reduction loops run inside them, carrying one output tile, so that each output tile
is finished before the next starts (a streaming order: it leaves the kernel as one token). Loops
with one trip are left out (their offset is 0) unless every loop has one trip. Inside, each
operand tile is a `tensor.extract_slice` at offsets read off the operand's indexing map, the tile
computation is the original generic on tiles, and the result tile is a `tensor.insert_slice`.
A rank-0 integer operand (a run-time scalar: a cache length, a position) is read whole by every
tile and is not sliced.
Kernel formation (`form-kernels`) reads the itensor types off these loops and slices.

The tiled function computes exactly what the untiled one does (the numpy interpreter of
`streamdsl/sim/tensors.py` runs both; tests/lowering compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, linalg, scf, tensor
from xdsl.dialects.builtin import DenseArrayBase, IndexType, IntegerType, ModuleOp, TensorType, i64
from xdsl.ir import Block, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from streamdsl.irbuild import _slice

__all__ = ["LoopNest", "TileLinalgPass", "default_tiles", "is_scalar_tensor", "loop_ranges", "tile_generic"]

GenericOp = linalg.ops.GenericOp
TILE_ATTR = "tile_sizes"


def loop_ranges(op: GenericOp) -> tuple[int, ...]:
    """The trip count of each loop of `op`, read off an operand dim that the loop indexes."""
    ranges: dict[int, int] = {}
    for operand, m in zip(op.operands, op.indexing_maps):
        shape = operand.type.get_shape() if isinstance(operand.type, TensorType) else ()
        for size, expr in zip(shape, m.data.results):
            if isinstance(expr, AffineDimExpr):
                ranges.setdefault(expr.position, size)
    n = len(op.iterator_types)
    if len(ranges) != n:
        raise PassFailedException(f"tile-linalg: {op.name} has loops that index no operand dim: {sorted(set(range(n)) - set(ranges))}")
    return tuple(ranges[d] for d in range(n))


def default_tiles(ranges: Sequence[int], default: int) -> tuple[int, ...]:
    """Each loop's largest divisor not above `default`."""
    return tuple(max(t for t in range(1, min(r, default) + 1) if r % t == 0) for r in ranges)


@dataclass(frozen=True)
class LoopNest:
    """How one generic is tiled: loop ranges, tile sizes and the order of the emitted loops."""

    ranges: tuple[int, ...]
    tiles: tuple[int, ...]
    parallel: tuple[int, ...]  # loop dims of the emitted parallel loops, outermost first
    reduction: tuple[int, ...]


def plan_nest(op: GenericOp, default: int) -> LoopNest:
    ranges = loop_ranges(op)
    attr = op.attributes.get(TILE_ATTR)
    tiles = tuple(attr.get_values()) if isinstance(attr, DenseArrayBase) else default_tiles(ranges, default)
    if len(tiles) != len(ranges) or any(t < 1 or r % t for r, t in zip(ranges, tiles)):
        raise PassFailedException(f"tile-linalg: tile sizes {list(tiles)} do not divide the loop ranges {list(ranges)} of {op.name}; "
                                  "give one divisor per loop")
    kinds = [str(it.data) for it in op.iterator_types]
    par = tuple(d for d, k in enumerate(kinds) if k == "parallel" and ranges[d] > tiles[d])
    red = tuple(d for d, k in enumerate(kinds) if k != "parallel" and ranges[d] > tiles[d])
    if not par:  # a one-trip loop: kernel formation recognises a nest by its outer parallel loop
        first = next((d for d, k in enumerate(kinds) if k == "parallel"), None)
        if first is None:
            raise PassFailedException(f"tile-linalg: {op.name} has no parallel loop (a reduction to a scalar); "
                                      "keep a unit dim in its result")
        par = (first,)
    return LoopNest(ranges, tiles, par, red)


class _Nest:
    def __init__(self, op: GenericOp, nest: LoopNest):
        self.op, self.nest = op, nest
        self.maps: list[AffineMap] = [m.data for m in op.indexing_maps]

    def const(self, block: Block, value: int) -> SSAValue:
        c = arith.ConstantOp.from_int_and_width(value, IndexType())
        block.add_op(c)
        return c.result

    def slice_args(self, m: AffineMap, ivs: dict[int, SSAValue]) -> tuple[list[SSAValue | int], list[int]]:
        offsets: list[SSAValue | int] = []
        sizes: list[int] = []
        for expr in m.results:
            if isinstance(expr, AffineDimExpr):
                offsets.append(ivs.get(expr.position, 0))
                sizes.append(self.nest.tiles[expr.position])
            elif isinstance(expr, AffineConstantExpr):
                offsets.append(expr.value)
                sizes.append(1)
            else:
                raise PassFailedException(f"tile-linalg: {self.op.name} reads through {m}; tiling needs projected permutations "
                                          "(each result a loop dim or a constant)")
        return offsets, sizes

    def extract(self, block: Block, source: SSAValue, m: AffineMap, ivs: dict[int, SSAValue]) -> SSAValue:
        offsets, sizes = self.slice_args(m, ivs)
        assert isinstance(source.type, TensorType)
        op = tensor.ExtractSliceOp.build(operands=[source, [o for o in offsets if isinstance(o, SSAValue)], [], []],
                                         result_types=[TensorType(source.type.element_type, sizes)],
                                         properties=_slice(offsets, sizes, [1] * len(sizes)))
        block.add_op(op)
        return op.result

    def insert(self, block: Block, dest: SSAValue, value: SSAValue, m: AffineMap, ivs: dict[int, SSAValue]) -> SSAValue:
        offsets, sizes = self.slice_args(m, ivs)
        op = tensor.InsertSliceOp.build(operands=[value, dest, [o for o in offsets if isinstance(o, SSAValue)], [], []],
                                        result_types=[dest.type], properties=_slice(offsets, sizes, [1] * len(sizes)))
        block.add_op(op)
        return op.result

    def loop(self, block: Block, dim: int, carried: SSAValue, inner, ivs: dict[int, SSAValue]) -> SSAValue:
        """`scf.for` over loop `dim` in steps of its tile, carrying `carried`; `inner(body, value,
        ivs)` fills the body and returns the value to yield."""
        lb, ub, step = (self.const(block, v) for v in (0, self.nest.ranges[dim], self.nest.tiles[dim]))
        body = Block(arg_types=[IndexType(), carried.type])
        result = inner(body, body.args[1], {**ivs, dim: body.args[0]})
        body.add_op(scf.YieldOp(result))
        for_op = scf.ForOp(lb, ub, step, [carried], body)
        block.add_op(for_op)
        return for_op.results[0]

    def parallel(self, block: Block, level: int, out: SSAValue, ivs: dict[int, SSAValue]) -> SSAValue:
        if level < len(self.nest.parallel):
            return self.loop(block, self.nest.parallel[level], out,
                             lambda b, v, i: self.parallel(b, level + 1, v, i), ivs)
        acc = self.extract(block, out, self.maps[-1], ivs)
        acc = self.reduction(block, 0, acc, ivs)
        return self.insert(block, out, acc, self.maps[-1], ivs)

    def reduction(self, block: Block, level: int, acc: SSAValue, ivs: dict[int, SSAValue]) -> SSAValue:
        if level < len(self.nest.reduction):
            return self.loop(block, self.nest.reduction[level], acc,
                             lambda b, v, i: self.reduction(b, level + 1, v, i), ivs)
        ins = [v if is_scalar_tensor(v) else self.extract(block, v, m, ivs) for v, m in zip(self.op.inputs, self.maps)]
        tile = GenericOp(ins, [acc], self.op.body.clone(), self.op.indexing_maps, self.op.iterator_types, [acc.type])
        block.add_op(tile)
        return tile.results[0]


def is_scalar_tensor(value: SSAValue) -> bool:
    """A rank-0 integer tensor (a run-time scalar such as a cache length): every tile reads all
    of it, so it is not sliced; kernel formation makes it a kernel scalar."""
    return isinstance(value.type, TensorType) and not value.type.get_shape() and isinstance(value.type.element_type, IntegerType)


def tile_generic(op: GenericOp, default: int) -> scf.ForOp:
    """Replace `op` by its tiled loop nest; returns the outermost loop."""
    if len(op.outputs) != 1 or not all(isinstance(v.type, TensorType) for v in op.operands):
        raise PassFailedException(f"tile-linalg: {op.name} needs tensor operands and one output")
    nest = plan_nest(op, default)
    block = Block()
    result = _Nest(op, nest).parallel(block, 0, op.outputs[0], {})
    ops = list(block.ops)
    for new in ops:
        new.detach()
    Rewriter.insert_op(ops, InsertPoint.before(op))
    op.results[0].replace_all_uses_with(result)
    Rewriter.erase_op(op)
    outer = result.owner
    assert isinstance(outer, scf.ForOp)
    outer.attributes[TILE_ATTR] = DenseArrayBase.from_list(i64, list(nest.tiles))
    return outer


def top_level_generics(fn: func.FuncOp) -> list[GenericOp]:
    return [op for op in fn.body.block.ops if isinstance(op, GenericOp)]


@dataclass(frozen=True)
class TileLinalgPass(ModulePass):
    """Tile each top-level linalg.generic (its `tile_sizes` attribute, else `default-tile`)."""

    name = "tile-linalg"

    default_tile: int = 64

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.default_tile < 1:
            raise PassFailedException(f"tile-linalg: default-tile must be positive, got {self.default_tile}")
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            for generic in top_level_generics(fn):
                tile_generic(generic, self.default_tile)

