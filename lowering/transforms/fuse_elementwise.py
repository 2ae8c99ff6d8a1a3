"""`fuse-elementwise`: fuse element-wise `linalg.generic` producers into their consumers.

First every named structured op except `linalg.fill` (matmul, transpose, broadcast, ...) becomes
a `linalg.generic` (fills stay: kernel formation recognises a filled accumulator). Then a generic
whose iterators are all parallel, whose output map is a permutation and whose body ignores its
output, and whose one result has exactly one use, as an *input* of another generic, is inlined
into that consumer: the producer's inputs become the consumer's, read through
`producer_in_map o inverse(producer_out_map) o consumer_map`, and the producer's body computes the
scalar the consumer read (MLIR's `linalg-fuse-elementwise-ops` with its one-use default). A
transpose or broadcast of a weight thereby disappears into the matmul that reads it. A producer
whose elements no stream carries (an i1 or i64 mask computed from an iota) is inlined into every
consumer, recomputed there, whatever its number of uses. An input that
is a `linalg.fill` of a constant becomes that constant in the consumer's body (the paper's
`fuse_linalg_fill`): no stream carries a constant tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, linalg, tensor
from xdsl.dialects.builtin import AffineMapAttr, ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import Rewriter

from streamdsl.dtypes import DTYPES, dtype_from_ir
from streamdsl.irbuild import PARALLEL

__all__ = ["FuseElementwisePass", "erase_unused", "is_elementwise"]

GenericOp = linalg.ops.GenericOp


class GeneralizeNamedOp(RewritePattern):
    """xDSL's `linalg-generalize-named-ops` for every structured op but `linalg.fill`; also
    `linalg.broadcast`, which xDSL does not generalize."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, linalg.abstract_ops.LinalgStructuredOperation) and not isinstance(op, GenericOp | linalg.ops.FillOp):
            rewriter.replace(op, GenericOp(op.inputs, op.outputs, op.body.clone(), op.get_indexing_maps(),
                                           op.get_iterator_types(), op.results.types))
        elif isinstance(op, linalg.ops.BroadcastOp):
            rank = len(op.init.type.get_shape())
            added = set(op.dimensions.get_values())
            maps = [AffineMap(rank, 0, tuple(AffineExpr.dimension(d) for d in range(rank) if d not in added)),
                    AffineMap.identity(rank)]
            rewriter.replace(op, GenericOp([op.input], [op.init], op.hidden_region.clone(),
                                           [AffineMapAttr(m) for m in maps], [PARALLEL] * rank, op.result.types))


def is_elementwise(op: GenericOp) -> bool:
    """All-parallel, one output written through a permutation, its initial value unused."""
    maps = [m.data for m in op.indexing_maps]
    return (
        len(op.outputs) == 1
        and all(str(it.data) == "parallel" for it in op.iterator_types)
        and maps[-1].inverse_permutation() is not None
        and len(maps[-1].results) == maps[-1].num_dims
        and not op.body.block.args[-1].uses
    )


class FuseIntoConsumer(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, consumer: GenericOp, rewriter: PatternRewriter) -> None:
        for index, operand in enumerate(consumer.inputs):
            fill = operand.owner
            if isinstance(fill, linalg.ops.FillOp) and isinstance(fill.inputs[0].owner, arith.ConstantOp):
                rewriter.replace(consumer, _without_input(consumer, index, fill.inputs[0].owner))
                return
            producer = operand.owner
            if isinstance(producer, GenericOp) and (operand.uses.get_length() == 1 or not _streamable(operand)) \
                    and is_elementwise(producer):
                rewriter.replace(consumer, _fused(producer, consumer, index))
                if not producer.results[0].uses:
                    rewriter.erase(producer)
                return


def _streamable(value: SSAValue) -> bool:
    """Whether a stream can carry `value`'s elements (i1 and i64 masks, say, cannot)."""
    element = value.type.element_type  # type: ignore[attr-defined]
    try:
        return dtype_from_ir(element, DTYPES) is not None
    except ValueError:
        return False


def _fused(producer: GenericOp, consumer: GenericOp, index: int) -> GenericOp:
    p_maps = [m.data for m in producer.indexing_maps]
    c_maps = [m.data for m in consumer.indexing_maps]
    inverse = p_maps[-1].inverse_permutation()
    assert inverse is not None
    to_producer = inverse.compose(c_maps[index])  # consumer loops -> producer loops
    inputs = [*consumer.inputs[:index], *producer.inputs, *consumer.inputs[index + 1:]]
    maps = [*c_maps[:index], *(m.compose(to_producer) for m in p_maps[:-1]), *c_maps[index + 1:]]
    c_block = consumer.body.block
    block = Block(arg_types=[*(a.type for a in c_block.args[:index]), *(a.type for a in producer.body.block.args[:-1]),
                             *(a.type for a in c_block.args[index + 1:])])
    n_p = len(producer.inputs)
    produced = _inline(producer.body.block, block, [*block.args[index:index + n_p], None])
    c_args = [*block.args[:index], produced, *block.args[index + n_p:]]
    block.add_op(linalg.ops.YieldOp(*_inline(c_block, block, c_args, keep_yield=True)))
    return GenericOp(inputs, consumer.outputs, Region(block), [AffineMapAttr(m) for m in maps],
                     consumer.iterator_types, consumer.result_types)


def _without_input(consumer: GenericOp, index: int, constant: arith.ConstantOp) -> GenericOp:
    """`consumer` reading the filled constant from its body instead of input `index`."""
    c_block = consumer.body.block
    block = Block(arg_types=[a.type for i, a in enumerate(c_block.args) if i != index])
    value = constant.clone()
    block.add_op(value)
    args = [*block.args[:index], value.result, *block.args[index:]]
    block.add_op(linalg.ops.YieldOp(*_inline(c_block, block, args, keep_yield=True)))
    inputs = [v for i, v in enumerate(consumer.inputs) if i != index]
    maps = [m for i, m in enumerate(consumer.indexing_maps) if i != index]
    return GenericOp(inputs, consumer.outputs, Region(block), maps, consumer.iterator_types, consumer.result_types)


def _inline(source: Block, target: Block, args: list[SSAValue | None], keep_yield: bool = False):
    """Clone `source`'s ops into `target` with its block args bound to `args`; returns the
    yielded value (or all yielded values with `keep_yield`)."""
    env: dict[SSAValue, SSAValue] = {old: new for old, new in zip(source.args, args) if new is not None}
    for op in source.ops:
        if isinstance(op, linalg.ops.YieldOp):
            values = [env.get(v, v) for v in op.operands]
            return values if keep_yield else values[0]
        clone = op.clone(value_mapper=env)
        target.add_op(clone)
    raise AssertionError("a linalg body ends in linalg.yield")


@dataclass(frozen=True)
class FuseElementwisePass(ModulePass):
    """Generalize named linalg ops (except fill) and fuse one-use element-wise producers."""

    name = "fuse-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(GeneralizeNamedOp(), apply_recursively=False).rewrite_module(op)
        PatternRewriteWalker(GreedyRewritePatternApplier([FuseIntoConsumer()])).rewrite_module(op)
        for fn in op.ops:
            for child in reversed(list(fn.walk())):
                for result in child.results:
                    erase_unused(result)


def erase_unused(value: SSAValue) -> None:
    """Erase an unused tensor initialiser (fill, empty, constant) and what only it used."""
    owner = value.owner
    if value.uses or not isinstance(owner, tensor.EmptyOp | linalg.ops.FillOp | arith.ConstantOp) or owner.parent is None:
        return
    operands = list(owner.operands)
    Rewriter.erase_op(owner)
    for operand in operands:
        erase_unused(operand)
