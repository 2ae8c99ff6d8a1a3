"""`unroll-short-loops`: unroll a task's innermost loop of a few iterations into its parent loop,
so that the parent becomes the pipelined loop.

The timing model and the emitter pipeline the innermost loop of a task (docs/timing.md) and run
the loops around it one iteration after the other. A quantized matvec tiled at 64 over groups of
128 has an innermost loop of 2 iterations (the group's two K tiles) inside the loop over groups:
each group then pays the pipeline's fill and drain (its stream reads' beats, the multiply, the
adder tree) for 2 iterations of work, and the task runs at about half the rate its weight stream
allows. Unrolled, the loop over groups is the innermost one and is pipelined: a group's tiles
issue back to back and the next group starts an II later (GPT-2 medium's `mlp.c_proj` part went
from 17,928 to about 8,300 cycles; docs/lowering.md).

An `scf.for` is unrolled when its bounds are constants, it runs at most `max_trips` iterations,
it holds no loop, and its parent is an `scf.for` whose body holds no other loop (so the parent
becomes innermost; a loop beside it would keep the parent sequential and buy nothing) and that
runs more than once. A parent of one iteration has nothing to pipeline, and unrolled, the copies'
reads have no operands to wait for and are scheduled at the start, ahead of the work that needs
them: the task then stalls as a whole on the second tile before working on the first (GPT-2
tiny's `k30_matmul` read both activation tiles at cycles 0 and 2 instead of 2 and 130, and the
`make run` block took 2,258 cycles instead of 2,132). The body
is copied once per iteration (xDSL's `scf-for-loop-unroll` rewrite), its induction variable a
constant and its loop-carried values chained, so the stream accesses keep their order: the
functional simulator, the timing model and the emitted C++ see the same program.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.transforms.scf_for_loop_unroll import UnrollLoopPattern
from xdsl.utils.exceptions import PassFailedException

from streamdsl.dialects.dataflow import enclosing_task

__all__ = ["UnrollShortLoopsPass", "short_loop_trips"]

MAX_TRIPS = 2  # each copy holds its own tiles: at 4 (Gemma 3's head-dim loops) the copies took 103% of the BRAM36


def _constant(value) -> int | None:  # noqa: ANN001
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def _trips(loop: scf.ForOp) -> int | None:
    """The iterations of a loop with constant bounds, else None."""
    lb, ub, step = (_constant(v) for v in (loop.lb, loop.ub, loop.step))
    if lb is None or ub is None or step is None or step <= 0:
        return None
    return max(0, -(-(ub - lb) // step))


def short_loop_trips(loop: scf.ForOp, max_trips: int = MAX_TRIPS) -> int | None:
    """The trip count of `loop` when `unroll-short-loops` unrolls it (module doc), else None."""
    trips = _trips(loop)
    parent = loop.parent_op()
    if trips is None or not 1 < trips <= max_trips or not isinstance(parent, scf.ForOp):
        return None
    if _trips(parent) == 1:  # one parent iteration: nothing to pipeline, and its reads would be hoisted
        return None
    if any(isinstance(op, scf.ForOp) for op in loop.body.block.ops):
        return None
    if sum(isinstance(op, scf.ForOp) for op in parent.body.block.ops) != 1:
        return None
    return trips if enclosing_task(loop) is not None else None


@dataclass
class _UnrollShort(RewritePattern):
    max_trips: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: scf.ForOp, rewriter: PatternRewriter) -> None:
        if short_loop_trips(op, self.max_trips) is None:
            return
        before, after = op.prev_op, op.next_op
        UnrollLoopPattern().match_and_rewrite(op, rewriter)
        copy = before.next_op if before is not None else after.parent_block().first_op if after is not None else None
        while copy is not None and copy is not after:  # the induction variable's constants no copy reads
            nxt = copy.next_op
            if isinstance(copy, arith.ConstantOp) and not copy.result.uses:
                rewriter.erase(copy)
            copy = nxt


@dataclass(frozen=True)
class UnrollShortLoopsPass(ModulePass):
    """Unroll every task's innermost loop of at most `max_trips` iterations into its parent loop."""

    name = "unroll-short-loops"

    max_trips: int = MAX_TRIPS

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.max_trips < 2:
            raise PassFailedException(f"unroll-short-loops: max_trips={self.max_trips}; a loop of one iteration is "
                                      "not a loop to unroll: give 2 or more")
        PatternRewriteWalker(_UnrollShort(self.max_trips), apply_recursively=False).rewrite_module(op)
