"""unroll-short-loops: the program computes the same, its stream accesses keep their order, and
the parent loop becomes the pipelined one (the timing model's II and latency, computed by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_helpers import filecheck_module, tasks_by_name
from xdsl.context import Context
from xdsl.dialects import arith, builtin, scf

from lowering.timing import U55C, task_timing
from lowering.transforms.unroll_short_loops import UnrollShortLoopsPass, short_loop_trips
from streamdsl.program import Program


def _module() -> builtin.ModuleOp:
    return filecheck_module("unroll_short_loops")


_tasks = tasks_by_name


def test_the_unrolled_program_computes_the_same_and_reads_in_the_same_order() -> None:
    before, after = _module(), _module()
    UnrollShortLoopsPass().apply(Context(), after)
    rng = np.random.default_rng(0)
    x, x8 = rng.standard_normal((1, 4)).astype(np.float32), rng.standard_normal((1, 16)).astype(np.float32)
    want = Program(before, "sums").simulate(x, x8)
    got = Program(after, "sums").simulate(x, x8)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_allclose(got[0], np.tile(x.reshape(2, 2).sum(0), 2)[None], rtol=1e-6)  # each output tile: x's two tiles summed


def test_the_parent_loop_is_pipelined_at_the_reads_ii() -> None:
    """By hand: each iteration of the output loop reads two 64-bit tiles of `in` (one beat each,
    one beat a cycle) and carries nothing but its output stream, so its II is 2; before, each
    output tile entered a 2-iteration pipeline whose II is the carried addf's 4 cycles."""
    before, after = _module(), _module()
    UnrollShortLoopsPass().apply(Context(), after)
    old, new = task_timing(_tasks(before)["sum"], U55C), task_timing(_tasks(after)["sum"], U55C)
    (loop,) = new.loops.values()
    assert loop.ii == 2
    (inner,) = old.loops.values()
    assert inner.ii == 4  # before: per output tile a 2-iteration pipeline carrying the sum through an addf (4 cycles)
    assert 2 * (1 * inner.ii + inner.depth) > (2 - 1) * loop.ii + loop.depth
    assert list(task_timing(_tasks(after)["long"], U55C).loops.values())[0].ii == 4  # 8 iterations: kept as it was


@pytest.mark.parametrize("bounds, parent, trips", [((0, 2, 1), True, 2), ((0, 8, 4), True, 2), ((0, 3, 1), True, None),
                                                  ((0, 1, 1), True, None), ((0, 2, 1), False, None)])
def test_which_loops_are_short(bounds: tuple[int, int, int], parent: bool, trips: int | None) -> None:
    """At most 2 iterations (and more than one), constant bounds, the only loop in a parent loop."""
    module = _module()
    inner = next(op for op in _tasks(module)["sum"].walk() if isinstance(op, scf.ForOp) and isinstance(op.parent_op(), scf.ForOp))
    for value, v in zip((inner.lb, inner.ub, inner.step), bounds):
        value.owner.value = builtin.IntegerAttr(v, builtin.IndexType())
    if not parent:  # the parent also holds another loop: it stays sequential, nothing to gain
        inner.parent_block().insert_op_before(inner.clone(), inner)
    assert short_loop_trips(inner) == trips


def test_a_loop_in_a_parent_of_one_iteration_is_kept() -> None:
    """A parent that runs once has no iterations to pipeline: unrolled, its copies' reads would
    all be scheduled at its start, ahead of the work on the first tile (the task stalls as a
    whole on the second), so the inner loop stays a loop."""
    module = _module()
    task = _tasks(module)["sum"]
    inner = next(op for op in task.walk() if isinstance(op, scf.ForOp) and isinstance(op.parent_op(), scf.ForOp))
    parent = inner.parent_op()
    one = arith.ConstantOp(builtin.IntegerAttr(1, builtin.IndexType()))
    parent.parent_block().insert_op_before(one, parent)
    parent.operands[1] = one.result  # the parent runs 0..1: once
    assert short_loop_trips(inner) is None
    UnrollShortLoopsPass().apply(Context(), module)
    assert sum(isinstance(op, scf.ForOp) for op in task.walk()) == 2
