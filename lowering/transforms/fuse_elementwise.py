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

A broadcast behind a `tensor.collapse_shape` does not reach its consumer that way. Grouped-query
attention repeats each KV head for its query heads (Hugging Face's `repeat_kv`, torch's
`enable_gqa`): a broadcast `kv x S x E -> kv x rep x S x E`, then a collapse to `heads x S x E`
read by the scores' and values' contractions. Left so, the repeat is a task of its own and its
stream carries each KV head's cache `rep` times (Qwen2.5-0.5B's scores contraction read 7 copies of
every key tile: 602 beats a tile where the keys are 86). So the collapse is first folded into its
consumer by expanding the consumer's loops (MLIR's fusion of reshapes by expansion): the loop over
`heads` becomes `kv` and `rep`, the consumer reads the collapse's source, its other operands and its
result are expanded to match (an `expand_shape`, a new empty or filled initialiser, a
`collapse_shape` of the result back to what its users read). The broadcast is then an element-wise
producer of the contraction and is inlined into it: the cache streams once per KV head, read through
a map that ignores `rep`. The same fold brings a widening conversion behind a collapse into its
reader: a KV cache held in f16 and widened to f32 (`--kv-cache f16`) is then read by the attention's
contractions as f16, half the bits a stream of the widened cache would carry. The fold runs only
where a broadcast or a widening conversion is behind the collapse (through one-use transposes and
collapses), so other reshapes keep their graphs, and only when the expanded loops are plain dims in
every map of a body that reads no `linalg.index`. A collapse that undoes an expand (`repeat_kv`
expands and collapses a KV head's rows before its broadcast) is first replaced by the expand's
source, so that a conversion before the pair reaches the broadcast's reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, linalg, tensor
from xdsl.dialects.builtin import AffineMapAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
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
from streamdsl.irbuild import PARALLEL, reassociation, reassociation_attr

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


# how far up a chain of transposes and collapses a broadcast or a widening conversion is looked for
SEARCH_DEPTH = 6


class FoldCollapseIntoConsumer(RewritePattern):
    """An input of a generic that is a one-use `collapse_shape` with a broadcast or a widening
    conversion behind it becomes the collapse's source, the generic's loops expanded to match
    (module doc)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, consumer: GenericOp, rewriter: PatternRewriter) -> None:
        if any(isinstance(op, linalg.ops.IndexOp) for op in consumer.body.walk()):
            return
        for index, operand in enumerate(consumer.inputs):
            collapse = operand.owner
            if isinstance(collapse, tensor.CollapseShapeOp) and operand.uses.get_length() == 1 \
                    and _worth_folding(collapse.src) and (folded := _folded(consumer, index, collapse)):
                new_ops, results = folded
                rewriter.replace(consumer, new_ops, results)
                _cancel_expands(results, rewriter)
                return


def _worth_folding(value: SSAValue, depth: int = SEARCH_DEPTH) -> bool:
    """Whether `value`, used once, is a broadcast's or a widening conversion's result, through
    one-use transposes and collapses (copies: a norm's or a product's broadcast read of a
    statistic does not count). Folded, the consumer reads the narrower source: a KV cache held in
    f16 streams half the bits it would as the f32 its contraction computes in."""
    owner = value.owner
    if depth == 0 or value.uses.get_length() != 1:
        return False
    if isinstance(owner, tensor.CollapseShapeOp):
        return _worth_folding(owner.src, depth - 1)
    if _is_widening(owner):
        return True
    if not _is_copy(owner):
        return False
    source = owner.indexing_maps.data[0].data  # type: ignore[union-attr]
    return len(source.used_dims()) < source.num_dims or _worth_folding(owner.inputs[0], depth - 1)


def _is_widening(op: Operation | None) -> bool:
    """A one-input element-wise generic whose result elements are wider than its input's."""
    if not isinstance(op, GenericOp) or len(op.inputs) != 1 or not is_elementwise(op):
        return False
    source, result = (getattr(v.type.element_type, "bitwidth", None) for v in (op.inputs[0], op.results[0]))  # type: ignore[attr-defined]
    return source is not None and result is not None and source < result


def _is_copy(op: Operation | None) -> bool:
    """An element-wise generic that yields its one input (a transpose or a broadcast)."""
    if not isinstance(op, GenericOp) or len(op.inputs) != 1 or not is_elementwise(op):
        return False
    yielded = op.body.block.last_op
    return isinstance(yielded, linalg.ops.YieldOp) and list(yielded.operands) == [op.body.block.args[0]]


def _folded(consumer: GenericOp, index: int, collapse: tensor.CollapseShapeOp) -> tuple[list[Operation], list[SSAValue]] | None:
    """The ops that replace `consumer` reading `collapse`'s source as its input `index`, and the
    values that replace its results; None when a loop to expand is not a plain dim in every map."""
    maps = [m.data for m in consumer.indexing_maps]
    source_shape = list(collapse.src.type.get_shape())  # type: ignore[attr-defined]
    sizes: dict[int, list[int]] = {}  # loop -> the sizes it expands into
    for expr, group in zip(maps[index].results, reassociation(collapse), strict=True):
        if len(group) > 1:
            if not isinstance(expr, AffineDimExpr) or expr.position in sizes:
                return None
            sizes[expr.position] = [source_shape[s] for s in group]
    if not sizes or any(not isinstance(e, AffineDimExpr) and e.used_dims() & sizes.keys() for m in maps for e in m.results):
        return None
    loops: list[list[int]] = []  # old loop -> its new loops
    for loop in range(maps[0].num_dims):
        start = sum(map(len, loops))
        loops.append(list(range(start, start + len(sizes.get(loop, [0])))))
    rename = [AffineExpr.dimension(new[0]) for new in loops]
    new_ops: list[Operation] = []
    values: list[SSAValue] = []
    new_maps: list[AffineMapAttr] = []
    result_groups: list[list[list[int]] | None] = []
    for i, (value, m) in enumerate(zip([*consumer.inputs, *consumer.outputs], maps, strict=True)):
        results: list[AffineExpr] = []
        groups: list[list[int]] = []
        shape: list[int] = []
        for expr, size in zip(m.results, value.type.get_shape() if isinstance(value.type, TensorType) else (), strict=True):
            expanded = isinstance(expr, AffineDimExpr) and expr.position in sizes
            dims = [AffineExpr.dimension(d) for d in loops[expr.position]] if expanded else [expr.replace_dims_and_symbols(rename, [])]
            groups.append(list(range(len(results), len(results) + len(dims))))
            results += dims
            shape += sizes[expr.position] if expanded else [size]  # type: ignore[union-attr]
        new_maps.append(AffineMapAttr(AffineMap(sum(map(len, loops)), 0, tuple(results))))
        same = len(shape) == len(m.results)
        values.append(collapse.src if i == index else value if same else _expanded(value, groups, shape, new_ops))
        if i >= len(consumer.inputs):
            result_groups.append(None if same else groups)
    iterators = [it for loop, it in enumerate(consumer.iterator_types) for _ in loops[loop]]
    outputs = values[len(consumer.inputs):]
    folded = GenericOp(values[:len(consumer.inputs)], outputs, consumer.body.clone(), new_maps, iterators, [v.type for v in outputs])
    new_ops.append(folded)
    replacements: list[SSAValue] = []
    for result, old, groups in zip(folded.results, consumer.results, result_groups, strict=True):
        if groups is not None:
            back = tensor.CollapseShapeOp.build(operands=[result], result_types=[old.type],
                                                properties={"reassociation": reassociation_attr(groups)})
            new_ops.append(back)
            result = back.results[0]
        replacements.append(result)
    return new_ops, replacements


def _expanded(value: SSAValue, groups: list[list[int]], shape: list[int], new_ops: list[Operation]) -> SSAValue:
    """`value` expanded to `shape` (`groups`: the result dims of each of its dims): a new initialiser
    for an empty or constant-filled one, else an `expand_shape` (appended to `new_ops`). An
    `expand_shape` even of a collapse it undoes: the collapse's source, read directly, would fuse
    into the consumer (a rotary embedding into the scores' contraction, whose cos and sin, read
    by no head loop, would then keep `tile-batch-loops` from streaming the heads one at a time)."""
    kind = TensorType(value.type.element_type, shape)  # type: ignore[attr-defined]
    owner = value.owner
    if isinstance(owner, tensor.EmptyOp):
        new_ops.append(tensor.EmptyOp([], kind))
    elif isinstance(owner, linalg.ops.FillOp) and isinstance(owner.outputs[0].owner, tensor.EmptyOp):
        empty = tensor.EmptyOp([], kind)
        new_ops += [empty, linalg.ops.FillOp([owner.inputs[0]], [empty.tensor], [kind])]
    else:
        new_ops.append(tensor.ExpandShapeOp(value, [], reassociation_attr(groups), shape, kind))
    return new_ops[-1].results[0]


def _cancel_expands(results: Sequence[SSAValue], rewriter: PatternRewriter) -> None:
    """Drop each `expand_shape` that undoes a `collapse_shape` of a folded generic's result."""
    for value in results:
        back = value.owner
        if not isinstance(back, tensor.CollapseShapeOp):
            continue
        for use in list(value.uses):
            user = use.operation
            if isinstance(user, tensor.ExpandShapeOp) and user.result.type == back.src.type and reassociation(user) == reassociation(back):
                rewriter.replace(user, [], [back.src])


class CancelReshapePair(RewritePattern):
    """A `collapse_shape` that undoes an `expand_shape` of a widening conversion's result is that
    result (Hugging Face's `repeat_kv` expands a KV head's rows and collapses them back before its
    broadcast: left so, a conversion of an f16 cache would not reach the contraction that reads the
    broadcast). Other pairs stay: cancelled, they change how a grouped-query block is tiled and
    fused (TinyLlama's f32 block lost 4 of its stream ops, and its uniform 4-part split no longer
    had an SLR placement in the exploration: 41,002 cycles against 38,384)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, collapse: tensor.CollapseShapeOp, rewriter: PatternRewriter) -> None:
        expand = collapse.src.owner
        if isinstance(expand, tensor.ExpandShapeOp) and expand.src.type == collapse.result.type \
                and reassociation(expand) == reassociation(collapse) and _worth_folding(expand.src):
            rewriter.replace(collapse, [], [expand.src])


@dataclass(frozen=True)
class FuseElementwisePass(ModulePass):
    """Generalize named linalg ops (except fill) and fuse one-use element-wise producers."""

    name = "fuse-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(GeneralizeNamedOp(), apply_recursively=False).rewrite_module(op)
        patterns = [CancelReshapePair(), FuseIntoConsumer(), FoldCollapseIntoConsumer()]
        PatternRewriteWalker(GreedyRewritePatternApplier(patterns)).rewrite_module(op)
        for fn in op.ops:
            for child in reversed(list(fn.walk())):
                for result in child.results:
                    erase_unused(result)


def erase_unused(value: SSAValue) -> None:
    """Erase an unused tensor initialiser (fill, empty, constant) or reshape, and what only it used."""
    owner = value.owner
    kinds = tensor.EmptyOp | linalg.ops.FillOp | arith.ConstantOp | tensor.CollapseShapeOp | tensor.ExpandShapeOp
    if value.uses or not isinstance(owner, kinds) or owner.parent is None:
        return
    operands = list(owner.operands)
    Rewriter.erase_op(owner)
    for operand in operands:
        erase_unused(operand)
