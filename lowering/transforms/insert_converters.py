"""`insert-converters`: put a planned layout converter on every edge whose stream orders differ.

Where the IR marks a layout change (docs/ir.md, docs/converters.md):
- `itensor_cast` between two types that stream differently becomes an `itensor_converter`;
- an `itensor_converter` without `buffer_shape` / `shared_loops` is planned; one between types
  that stream alike becomes a cast (or disappears if the types are identical).
Then duplicates (same source, or sibling outputs of one fork; same result type and plan) are
merged into one converter whose result is forked to all former consumers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from lowering.converters import ConverterError, plan
from streamdsl.dialects.dataflow import ITensorCastOp, ITensorConverterOp, ITensorForkOp, ITensorType

__all__ = ["InsertConvertersPass", "merge_duplicates", "planned_converter"]


def planned_converter(source: SSAValue, result_type: ITensorType, where: Operation) -> ITensorConverterOp:
    """A converter from `source` to `result_type` carrying its plan (`where` names the culprit)."""
    assert isinstance(source.type, ITensorType)
    try:
        p = plan(source.type.itensor, result_type.itensor)
    except ConverterError as err:
        raise PassFailedException(f"insert-converters: {where.name} {source.type} -> {result_type}: {err}") from None
    return ITensorConverterOp(source, result_type, p.buffer_shape, p.shared_loops)


def _differ(source: SSAValue, result_type: ITensorType) -> bool:
    assert isinstance(source.type, ITensorType)
    return source.type.itensor != result_type.itensor


class CastToConverter(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ITensorCastOp, rewriter: PatternRewriter) -> None:
        assert isinstance(op.result.type, ITensorType)
        if _differ(op.source, op.result.type):
            rewriter.replace(op, planned_converter(op.source, op.result.type, op))


class PlanConverter(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ITensorConverterOp, rewriter: PatternRewriter) -> None:
        if op.buffer_shape is not None and op.shared_loops is not None:
            return
        assert isinstance(op.result.type, ITensorType)
        if op.result.type == op.source.type:
            rewriter.replace(op, [], [op.source])
        elif not _differ(op.source, op.result.type):
            rewriter.replace(op, ITensorCastOp(op.source, op.result.type))
        else:
            rewriter.replace(op, planned_converter(op.source, op.result.type, op))


def _merge_key(op: ITensorConverterOp) -> tuple[object, ...]:
    owner = op.source.owner
    origin = owner if isinstance(owner, ITensorForkOp) else op.source
    return origin, op.result.type, op.buffer_shape, op.shared_loops


def _drop_fork_output(fork: ITensorForkOp, dead: SSAValue) -> None:
    """Remove an unused output from a fork (a fork of one output becomes its source)."""
    keep = [o for o in fork.outputs if o is not dead]
    if len(keep) == 1 and keep[0].type == fork.source.type:
        keep[0].replace_all_uses_with(fork.source)
        Rewriter.erase_op(fork)
        return
    if len(keep) == 1:
        new: Operation = ITensorCastOp(fork.source, keep[0].type)
    else:
        new = ITensorForkOp(fork.source, [o.type for o in keep])
    Rewriter.insert_op(new, InsertPoint.before(fork))
    for old, repl in zip(keep, new.results):
        old.replace_all_uses_with(repl)
    Rewriter.erase_op(fork)


def _fork_uses(value: SSAValue) -> None:
    """Give each consumer of `value` its own fork output (one consumer per stream)."""
    if value.uses.get_length() < 2:
        return
    assert isinstance(value.owner, Operation)
    block = value.owner.parent_block()
    assert block is not None
    tops = {op: i for i, op in enumerate(block.ops)}  # program order: the block's ops, then within one (nested uses)
    ancestors = {use.operation: block.find_ancestor_op_in_block(use.operation) for use in value.uses}
    nesting = {top for op, top in ancestors.items() if top is not op}  # block ops with readers inside them
    inner = {op: i for top in nesting for i, op in enumerate(top.walk())}  # type: ignore[union-attr]
    uses = sorted(value.uses, key=lambda use: (tops[ancestors[use.operation]], inner.get(use.operation, 0), use.index))
    fork = ITensorForkOp(value, len(uses))
    Rewriter.insert_op(fork, InsertPoint.after(value.owner))
    for use, out in zip(uses, fork.outputs):
        use.operation.operands[use.index] = out


def merge_duplicates(block: Block) -> None:
    groups: dict[tuple[object, ...], list[ITensorConverterOp]] = defaultdict(list)
    for op in block.ops:
        if isinstance(op, ITensorConverterOp):
            groups[_merge_key(op)].append(op)
    for keep, *dups in groups.values():
        for dup in dups:
            source = dup.source
            dup.result.replace_all_uses_with(keep.result)
            Rewriter.erase_op(dup)
            if source is not keep.source and isinstance(source.owner, ITensorForkOp):
                _drop_fork_output(source.owner, source)
        if dups:
            _fork_uses(keep.result)


@dataclass(frozen=True)
class InsertConvertersPass(ModulePass):
    name = "insert-converters"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier([CastToConverter(), PlanConverter()])).rewrite_module(op)
        blocks = {o.parent_block() for o in op.walk() if isinstance(o, ITensorConverterOp)}
        for block in blocks:
            if block is not None:
                merge_duplicates(block)


def plan_converters(module: ModuleOp) -> None:
    """`insert-converters` on `module`, in place, then verify it (the first stage of `sd.compile`)."""
    InsertConvertersPass().apply(Context(), module)
    module.verify()
