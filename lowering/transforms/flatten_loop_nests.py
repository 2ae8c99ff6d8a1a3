"""`flatten-loop-nests`: a task's perfect nest of two loops becomes one loop, so that the whole
nest is pipelined instead of its inner loop alone.

The timing model and the emitter pipeline the innermost loop of a task and run the loops around
it one iteration after the other (docs/timing.md): each outer iteration pays the pipeline's fill
and drain. Attention planned one head a tile (`tile-batch-loops`) walks heads x key tiles, and a
task such as the scores' contraction reads, multiplies and writes one key tile an iteration with
nothing between the two loops: GPT-2 medium's took 334 cycles a head for its three key tiles of
86 beats (258 cycles of reads) and fell behind the query-key-value matvec that feeds it. Flattened,
its 48 iterations issue one key tile every 86 cycles.

A nest is flattened when the outer loop's body holds only constants, the inner loop and a yield
of the inner loop's results, the inner loop carries the outer loop's iteration arguments, both
have constant bounds that their steps divide and neither induction variable is used (xDSL's
`scf-for-loop-flatten` rewrite, after the constants are hoisted out of the outer body). Deeper
perfect nests flatten pair by pair. The body is moved, not copied, so the stream accesses keep
their order and the functional simulator, the timing model and the emitted C++ (one pipelined
loop) see the same program. An outer loop from another bound (a split
part's: `split-matvecs` gives part p the trips p x T .. (p + 1) x T) counts from 0 first: its
induction variable is unused, so only its trips matter. An imperfect nest (an accumulator set
before the inner loop, a write after it) is left to `unroll-short-loops`, and so, unless asked
(`chains`, the pass option `chains=true`), are the weight matvecs and the tasks that walk their
output (`weight_chains`): `split-matvecs` cuts their outer loop into parts, so it stays theirs
until the splits are made. After them a part's nest flattens like any other: a Gemma 3 1B
W4A8 part of 4 x 9 weight tiles took 1,428 cycles nested (each of its 4 outer iterations
filling and draining the pipeline of 9) and 1,220 flattened.

Not in `lowering.pipeline.lower`: the design-space exploration decides. Its level 6 flattens the
design it explored and keeps it when it is faster once FIFO-sized and still placed (GPT-2 medium
W4A8: 13,398 to 12,931 cycles), and `explore`'s `flat_loops` (`streamdsl compile --dse
--flatten-loops`) flattens the block before it explores; a plan's `flat_loops` flattens first.
Exploring the flattened block can end slower: TinyLlama's fit then kept fewer lanes steps (46,325
cycles against 38,384; docs/lowering.md, "Flattening as a choice of the exploration").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint
from xdsl.transforms.canonicalization_patterns.utils import const_evaluate_operand
from xdsl.transforms.scf_for_loop_flatten import FlattenNestedLoopsPattern

from lowering.transforms.split_matvecs import weight_chains
from streamdsl.dialects.dataflow import KernelOp, enclosing_task

__all__ = ["FlattenLoopNestsPass", "flatten_loop_nests", "perfect_inner_loop"]


def _span(loop: scf.ForOp) -> tuple[int, int] | None:
    """(lower bound, trips) of a loop with constant bounds that its step divides, else None."""
    lb, ub, step = (const_evaluate_operand(v) for v in (loop.lb, loop.ub, loop.step))
    if lb is None or ub is None or step is None or step <= 0 or ub < lb or (ub - lb) % step:
        return None
    return lb, (ub - lb) // step


def perfect_inner_loop(loop: scf.ForOp, keep: Collection[str] = ()) -> scf.ForOp | None:
    """The inner loop of `loop` when the two flatten (module doc): a perfect nest inside a task
    not named in `keep`, induction variables unused, the inner loop carrying the outer's iteration
    arguments and yielding them back, constant bounds their steps divide."""
    body = loop.body.block
    inner = [op for op in body.ops if isinstance(op, scf.ForOp)]
    others = [op for op in body.ops if not isinstance(op, scf.ForOp | arith.ConstantOp | scf.YieldOp)]
    if len(inner) != 1 or others or (task := enclosing_task(loop)) is None or task.sym_name.data in keep:
        return None
    (nested,) = inner
    if body.args[0].uses or nested.body.block.args[0].uses:
        return None
    if tuple(nested.iter_args) != tuple(body.args[1:]) or tuple(body.last_op.operands) != tuple(nested.results):
        return None
    return nested if _span(loop) is not None and _span(nested) is not None else None


@dataclass
class _Flatten(RewritePattern):
    keep: Collection[str]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: scf.ForOp, rewriter: PatternRewriter) -> None:
        if perfect_inner_loop(op, self.keep) is None:
            return
        lb, trips = _span(op)  # type: ignore[misc]
        if lb:  # its induction variable unused: the same trips from 0 (xDSL's pattern needs 0)
            step = const_evaluate_operand(op.step)
            bounds = [arith.ConstantOp.from_int_and_width(v, IndexType()) for v in (0, trips * step)]
            for bound in bounds:
                rewriter.insert(bound, InsertPoint.before(op))
            old = [op.lb.owner, op.ub.owner]
            op.operands[0], op.operands[1] = bounds[0].result, bounds[1].result
            for dead in [o for o in dict.fromkeys(old) if isinstance(o, arith.ConstantOp) and not o.result.uses]:
                rewriter.erase(dead)
        constants = [c for c in op.body.block.ops if isinstance(c, arith.ConstantOp)]
        for constant in constants:  # the inner bounds: the same values before the nest
            constant.detach()
            rewriter.insert(constant, InsertPoint.before(op))
        after = op.next_op
        FlattenNestedLoopsPattern().match_and_rewrite(op, rewriter)
        flat = after.prev_op
        assert isinstance(flat, scf.ForOp) and flat is not op, "a nest perfect_inner_loop accepts flattens"
        bound = flat.ub.owner  # outer bound x inner trips
        if isinstance(bound, arith.MuliOp) and all(isinstance(v.owner, arith.ConstantOp) for v in bound.operands):
            factors = [v.owner for v in bound.operands]  # a constant bound, as the timing model reads bounds
            product = factors[0].value.value.data * factors[1].value.value.data
            rewriter.replace(bound, arith.ConstantOp.from_int_and_width(product, IndexType()))
            constants += factors
        for constant in constants:  # the inner loop's bounds and the factors nothing reads now
            if constant.parent is not None and not constant.result.uses:
                rewriter.erase(constant)


@dataclass(frozen=True)
class FlattenLoopNestsPass(ModulePass):
    """Flatten every task's perfect loop nests (module doc) into one loop each; the weight
    chains' too with `chains` (once the splits are made)."""

    name = "flatten-loop-nests"
    chains: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            flatten_loop_nests(kernel, self.chains)


def flatten_loop_nests(kernel: KernelOp, chains: bool = False) -> bool:
    """Flatten the perfect nests of `kernel`'s tasks, its weight chains' left as they are unless
    `chains`; whether any was flattened."""
    keep = set() if chains else {name for chain in weight_chains(kernel).values() for name in chain}
    return PatternRewriteWalker(_Flatten(keep)).rewrite_region(kernel.body)
