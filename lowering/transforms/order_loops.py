"""`order-loops`: order the loops of an element-wise generic as its consumer reads its result.

`tile-linalg` runs parallel loops in loop order, so an all-parallel generic streams its result in
the order of its iteration domain. When its one consumer (another generic, possibly behind
`tensor.expand_shape` / `collapse_shape`) reads that result in another order, fusion needs a layout
converter that can buffer the whole tensor: a transpose of the KV cache read by the scores'
contraction key row by key row, or the GQA repeat of the cache (`expand` of the KV heads to the
query heads) read by the values' contraction head-dim tile by head-dim tile. A loop order is free
for an all-parallel generic, so this pass permutes its iteration domain (indexing maps; the body
is unchanged) to visit its result in the consumer's order: the tiles then leave in the order the
consumer takes them and the converter disappears, or moves upstream to an edge that costs less
(the cache loaded from HBM in any order). Generics are visited consumers first, so an order
propagates up a chain of element-wise ops. A generic with several readers, or whose body reads
`linalg.index`, keeps its order.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, linalg, tensor
from xdsl.dialects.builtin import AffineMapAttr, ModuleOp
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from lowering.transforms.fuse_elementwise import is_elementwise
from streamdsl.irbuild import reassociation

__all__ = ["OrderLoopsPass", "order_loops", "read_order"]

GenericOp = linalg.ops.GenericOp


def loop_order(op: GenericOp) -> list[int]:
    """The loops of `op` as `tile-linalg` nests them: parallel in loop order, then reductions."""
    kinds = [str(it.data) for it in op.iterator_types]
    return [d for d, k in enumerate(kinds) if k == "parallel"] + [d for d, k in enumerate(kinds) if k != "parallel"]


def read_order(value: SSAValue) -> list[int] | None:
    """The dims of the tensor `value` in the order its one reader first visits them (outermost
    first), through reshapes; None if it has several readers or one that is not a generic input."""
    if value.uses.get_length() != 1:
        return None
    use = next(iter(value.uses))
    user = use.operation
    if isinstance(user, tensor.CollapseShapeOp):  # result dim d gathers source dims groups[d]
        outer = read_order(user.result)
        return None if outer is None else [s for d in outer for s in reassociation(user)[d]]
    if isinstance(user, tensor.ExpandShapeOp):  # source dim s spreads over result dims groups[s]
        outer = read_order(user.result)
        if outer is None:
            return None
        groups = reassociation(user)
        return sorted(range(len(groups)), key=lambda s: min(outer.index(d) for d in groups[s]))
    if not isinstance(user, GenericOp) or use.index >= len(user.inputs):
        return None
    results = user.indexing_maps.data[use.index].data.results
    order: list[int] = []
    for loop in loop_order(user):
        order += [d for d, e in enumerate(results) if isinstance(e, AffineDimExpr) and e.position == loop and d not in order]
    return order + [d for d in range(len(results)) if d not in order]


def _permuted(op: GenericOp, loops: list[int]) -> GenericOp:
    """`op` with loop `loops[i]` as its loop i (same computation: all its loops are parallel)."""
    to_old = AffineMap(len(loops), 0, tuple(AffineExpr.dimension(loops.index(p)) for p in range(len(loops))))
    maps = [AffineMapAttr(m.data.compose(to_old)) for m in op.indexing_maps]
    return GenericOp(op.inputs, op.outputs, op.body.clone(), maps, op.iterator_types, op.result_types)


def order_loops(fn: func.FuncOp) -> int:
    """Reorder the element-wise generics of `fn` (consumers first); returns how many changed."""
    changed = 0
    for op in reversed([o for o in fn.body.block.ops if isinstance(o, GenericOp)]):
        if not is_elementwise(op) or any(isinstance(o, linalg.ops.IndexOp) for o in op.body.walk()):
            continue
        dims = read_order(op.results[0])
        if dims is None:
            continue
        out = op.indexing_maps.data[-1].data.results
        loops = [e.position for d in dims for e in [out[d]] if isinstance(e, AffineDimExpr)]
        if loops == sorted(loops):
            continue
        Rewriter.replace_op(op, _permuted(op, loops))
        changed += 1
    return changed


@dataclass(frozen=True)
class OrderLoopsPass(ModulePass):
    """Permute each element-wise generic's loops to the order its one consumer reads its result."""

    name = "order-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            order_loops(fn)
