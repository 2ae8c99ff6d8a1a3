"""`tile-quant-groups`: a quantized linear layer streams its weight groups one at a time.

A quantized linear layer (`frontends.quant.QuantLinear`, docs/quantization.md) imports, after
element-wise fusion, as an integer matmul and a float sum over its groups:

    acc[m, n, g] = sum_j int32(xq[m, g, j]) * int32(Wq[n, g, j])        loops (m, n, g | j)
    y[m, n]      = sum_g float32(acc[m, n, g]) * s_w[n, g]              loops (m, n | g)

The group loop has K/G trips (16 for 2,048 input channels at w4a8, 44 for 5,632), and
tile-linalg's default (each loop's largest divisor not above `default-tile`) takes it whole: every
weight tile would hold all the groups of 64 output channels (16 x 64 x 64 int4, twice the float32
layer's 64 x 64 tile) and every accumulator, activation and scale tile K/G rows, each an on-chip
memory. This pass gives both generics a `tile_sizes` plan: the group loop at 1, every other loop at
tile-linalg's default. The integer matmul then walks output channels, then groups (one at a
time), then the group's channels, the order in which the group sum consumes its tokens.

The integer matmul is recognised by its body (an `arith.muli` of sign-extended i4/i8 operands into
an i32 result, with a reduction loop); its group loops are the parallel loops that every operand
indexes. A generic that already has `tile_sizes` (a given plan) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import DenseArrayBase, IntegerType, ModuleOp, TensorType, i64
from xdsl.dialects.linalg.ops import GenericOp
from xdsl.ir import BlockArgument, SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from lowering.transforms.tile_linalg import TILE_ATTR, default_tiles, loop_ranges, top_level_generics

__all__ = ["TileQuantGroupsPass", "group_loops", "is_integer_matmul"]

NARROW_BITS = 8  # i4 and i8 operands


def _dims(op: GenericOp, operand: int) -> list[int | None]:
    """The loop each result of the operand's indexing map reads (None for a constant)."""
    return [e.position if isinstance(e, AffineDimExpr) else None for e in op.indexing_maps.data[operand].data.results]


def _narrow_extension(value: SSAValue) -> bool:
    owner = value.owner
    return (isinstance(owner, arith.ExtSIOp) and isinstance(owner.input, BlockArgument)
            and isinstance(owner.input.type, IntegerType) and owner.input.type.width.data <= NARROW_BITS)


def is_integer_matmul(op: GenericOp) -> bool:
    """An i32 reduction of products of sign-extended i4/i8 operands."""
    out = op.outputs[0].type if len(op.outputs) == 1 else None
    if not (isinstance(out, TensorType) and out.element_type == IntegerType(32)):
        return False
    if all(str(it.data) == "parallel" for it in op.iterator_types):
        return False
    return any(isinstance(o, arith.MuliOp) and _narrow_extension(o.lhs) and _narrow_extension(o.rhs)
               for o in op.body.block.ops)


def group_loops(op: GenericOp) -> list[int]:
    """The integer matmul's parallel loops that every operand indexes (its weight groups)."""
    kinds = [str(it.data) for it in op.iterator_types]
    dims = [set(_dims(op, i)) for i in range(len(op.operands))]
    return [d for d, k in enumerate(kinds) if k == "parallel" and all(d in s for s in dims)]


def _plan(op: GenericOp, ones: set[int], default: int) -> None:
    if TILE_ATTR in op.attributes:
        return
    tiles = [1 if d in ones else t for d, t in enumerate(default_tiles(loop_ranges(op), default))]
    op.attributes[TILE_ATTR] = DenseArrayBase.from_list(i64, tiles)


def plan_groups(matmul: GenericOp, default: int) -> None:
    """Tile `matmul`'s group loops and, in each generic that reads its result, the loops that walk
    those groups, at 1."""
    groups = group_loops(matmul)
    if not groups:
        return
    out_dims = _dims(matmul, len(matmul.operands) - 1)
    positions = [out_dims.index(d) for d in groups]
    _plan(matmul, set(groups), default)
    for use in list(matmul.results[0].uses):
        user = use.operation
        if isinstance(user, GenericOp) and use.index < len(user.inputs):
            read = _dims(user, use.index)
            _plan(user, {read[p] for p in positions if read[p] is not None}, default)


@dataclass(frozen=True)
class TileQuantGroupsPass(ModulePass):
    """Plan tile sizes for quantized linear layers: weight groups one at a time."""

    name = "tile-quant-groups"

    default_tile: int = 64

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.default_tile < 1:
            raise PassFailedException(f"tile-quant-groups: default-tile must be positive, got {self.default_tile}")
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            for generic in top_level_generics(fn):
                if is_integer_matmul(generic):
                    plan_groups(generic, self.default_tile)
