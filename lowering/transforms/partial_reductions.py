"""`partial-reductions`: a reduction carried across a task's loop keeps element-wise partials.

A layer norm's mean over 1,024 elements tiled at 64 imports as a loop over 16 tiles whose body
reduces the tile into the carried sum:

    acc = 0;  for k: acc = reduce_j(x[k][j]) + acc        (a linalg.generic, acc its outs)

Every iteration then waits for the last one through the whole 64-wide adder tree (about 28
cycles at 250 MHz, docs/timing.md): GPT-2 medium's seven such loops over 1,024 or 4,096 elements
took about 4,900 cycles of the block's chain. This pass keeps the carried value as a tile of the
reduction's whole iteration space instead, folds each element into its own partial (an
element-wise op: the form `lowering.timing.accumulator` pipelines at II=1 with interleaved
partials, the emitter likewise), and reduces that tile into the initial value once, after the loop:

    p = identity;  for k: p = p + x[k];   acc = reduce_j(p[j]) + acc0

Only the loop's order of folds changes: exact for max and min; a float32 sum is reassociated
within the bound docs/hls.md states. A generic qualifies when its outs is a loop-carried value
used by nothing else, its result is only yielded back, it folds more than one element into each
output element (a group sum's loop over one group at a time folds one: the model already times
that chain at the adder's latency, as the emitter builds it), its body ends in a fold of ACCUMULATORS
(`arith.addf` of f32 or f64, `arith.maximumf`, `arith.minimumf`) of the output element and a value
computed from the inputs alone, and its iteration space has at most `max_elements` elements (each
is a register; a matvec's 64 x 64 weight tile would be 4,096 of them, and matvecs already keep
their weight stream's rate, docs/lowering.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf, tensor
from xdsl.dialects.builtin import AffineMapAttr, ArrayAttr, Float32Type, Float64Type, FloatAttr, IntegerAttr, ModuleOp, TensorType, i64
from xdsl.dialects.linalg.ops import FillOp, GenericOp, IteratorTypeAttr, YieldOp
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from lowering.timing import ACCUMULATORS, reduced_size
from streamdsl.dialects.dataflow import enclosing_task

__all__ = ["PartialReductionsPass", "carried_reduction"]

MAX_ELEMENTS = 256  # partials per loop: a norm's 64-wide tile, up to four such tiles at once
# lanes given to a task the pass rewrites when it has no `unroll` (0: leave it at the default
# 64). The fast loop costs cores: at 64 lanes a norm's loop runs at its reads' II of 2 with 32
# adders where the tree's II of 31 shared 2; at 16 it folds a tile in 4 cycles (the f32 adder's
# latency) with a quarter of them. Measured on GPT-2 medium W4A8: the exploration kept its 4-part
# splits at share 0.8 (28,118 cycles against 31,807 at 64 lanes), and at 0.9 its fit step sized
# the 16-lane design in minutes where at 64 lanes it had not ended after 15. The cost: the `make
# run` block's two softmax reductions over 5 key tiles take it from 2,078 cycles (64 lanes) to
# 2,206 (2,132 without the pass); `--dse` raises lanes where a task bounds the block.
LANES = 16


def carried_reduction(arg: BlockArgument, max_elements: int = MAX_ELEMENTS) -> tuple[GenericOp, Operation] | None:
    """The reduction generic that folds its inputs into `arg` (an iter_arg of an `scf.for` in a
    task) and its final fold op, when `partial-reductions` rewrites it (module doc), else None."""
    loop = arg.block.parent_op()
    if not isinstance(loop, scf.ForOp) or arg.index == 0 or not arg.has_one_use() or enclosing_task(loop) is None:
        return None
    use = next(iter(arg.uses))
    op = use.operation
    if not isinstance(op, GenericOp) or op.parent_block() is not arg.block or len(op.outputs) != 1 or use.index != len(op.inputs):
        return None
    if any(not isinstance(v.type, TensorType) for v in op.inputs):
        return None
    ranges = op.get_static_loop_ranges()
    if any(r <= 0 for r in ranges) or math.prod(ranges) > max_elements or reduced_size(op) <= 1:
        return None  # too many partials, or each output folded once an iteration (a group sum's one group)
    result = op.results[0]
    yielded = arg.block.last_op
    if not result.has_one_use() or (out := next(iter(result.uses))).operation is not yielded or out.index != arg.index - 1:
        return None
    body = op.body.block
    element = body.args[-1]
    fold = body.last_op.operands[0].owner if body.last_op is not None and len(body.last_op.operands) == 1 else None
    if not isinstance(fold, Operation) or fold.name not in ACCUMULATORS or not element.has_one_use() or element not in fold.operands:
        return None
    if fold.name == "arith.addf" and not isinstance(element.type, Float32Type | Float64Type):
        return None  # a 16-bit sum stays in order (lowering.timing.accumulator)
    return op, fold


def _fold_region(fold: Operation, element: SSAValue, arity: int, element_at: int, value_at: int) -> Region:
    """A linalg body of `arity` arguments that yields `fold` (the reduction's last op, folding the
    output `element` and a value) with the output element taken from argument `element_at` and
    the value from `value_at`, in the fold's own operand order."""
    block = Block(arg_types=[element.type] * arity)
    new = fold.clone()
    new.operands = [block.args[element_at] if v is element else block.args[value_at] for v in fold.operands]
    block.add_ops([new, YieldOp(new.results[0])])
    return Region(block)


def _folded_values(op: GenericOp, fold: Operation, domain: TensorType, parallel: ArrayAttr,
                   identity: AffineMapAttr) -> tuple[list[Operation], SSAValue]:
    """The values the reduction folds in, over its whole iteration space, and the ops that compute
    them: an input read whole (a row sum's tile) as it is, else the reduction's body without its
    fold as an element-wise op."""
    element = op.body.block.args[-1]
    value = next(v for v in fold.operands if v is not element)
    if isinstance(value, BlockArgument) and value.index < len(op.inputs):
        source = op.inputs[value.index]
        if source.type == domain and op.indexing_maps.data[value.index] == identity:
            return [], source
    region = op.body.clone()
    block = region.block
    folded = block.last_op.operands[0].owner  # type: ignore[union-attr]
    kept = next(v for v in folded.operands if v is not block.args[-1])  # type: ignore[union-attr]
    Rewriter.replace_op(block.last_op, YieldOp(kept))  # type: ignore[arg-type]
    Rewriter.erase_op(folded)  # type: ignore[arg-type]
    out = tensor.EmptyOp([], domain)
    values = GenericOp(op.inputs, [out.tensor], region, [*op.indexing_maps.data[:-1], identity], parallel, [domain])
    return [out, values], values.results[0]


def _rewrite(loop: scf.ForOp, arg: BlockArgument, op: GenericOp, fold: Operation) -> None:
    element = op.body.block.args[-1]
    ranges = op.get_static_loop_ranges()
    domain = TensorType(element.type, ranges)
    identity = AffineMapAttr(AffineMap.identity(len(ranges)))
    parallel = ArrayAttr([IteratorTypeAttr.parallel()] * len(ranges))
    position = arg.index - 1
    initial = loop.iter_args[position]

    # before the loop: the partials start at the fold's identity
    zero = arith.ConstantOp(FloatAttr(ACCUMULATORS[fold.name], element.type))
    empty = tensor.EmptyOp([], domain)
    start = FillOp([zero.result], [empty.tensor], [domain])
    Rewriter.insert_op([zero, empty, start], InsertPoint.before(loop))
    loop.operands[3 + position] = start.results[0]

    # in the loop: the values folded in, then one element-wise fold into the partials
    partial = Rewriter.replace_value_with_new_type(arg, domain)
    values, folded_in = _folded_values(op, fold, domain, parallel, identity)
    out = tensor.EmptyOp([], domain)
    update = GenericOp([partial, folded_in], [out.tensor], _fold_region(fold, element, 3, 0, 1), [identity] * 3, parallel, [domain])
    Rewriter.insert_op([*values, out, update], InsertPoint.before(op))
    loop.body.block.last_op.operands[position] = update.results[0]  # type: ignore[union-attr]

    # after the loop: the partials reduced into the initial value, as each iteration did before
    result = Rewriter.replace_value_with_new_type(loop.results[position], domain)
    users = list(result.uses)
    reduced = GenericOp([result], [initial], _fold_region(fold, element, 2, 1, 0), [identity, op.indexing_maps.data[-1]],
                        op.iterator_types, [initial.type])
    for use in users:
        use.operation.operands[use.index] = reduced.results[0]
    Rewriter.insert_op(reduced, InsertPoint.after(loop))
    Rewriter.erase_op(op)


@dataclass(frozen=True)
class PartialReductionsPass(ModulePass):
    """Keep every task loop's carried reduction of at most `max_elements` elements as partials."""

    name = "partial-reductions"

    max_elements: int = MAX_ELEMENTS
    lanes: int = LANES

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.max_elements < 1 or self.lanes < 0:
            raise PassFailedException(f"partial-reductions: max_elements={self.max_elements}, lanes={self.lanes}; "
                                      "give max_elements of 1 or more and lanes of 0 (the default lanes) or more")
        found = [(loop, arg, *hit) for loop in op.walk() if isinstance(loop, scf.ForOp)
                 for arg in loop.body.block.args[1:] if (hit := carried_reduction(arg, self.max_elements)) is not None]
        for loop, arg, generic, fold in found:  # each rewrite touches its own loop only
            _rewrite(loop, arg, generic, fold)
            task = enclosing_task(loop)
            if self.lanes and "unroll" not in task.attributes:
                task.attributes["unroll"] = IntegerAttr(self.lanes, i64)
