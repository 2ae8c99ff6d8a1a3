"""partial-reductions: a reduction carried across a task's loop keeps element-wise partials; the
program computes the same (a sum within float32 reassociation, a max exactly), the loop is
pipelined at its reads' II instead of the adder tree's, and the emitted C++ agrees in csim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lowering_helpers import filecheck_module, tasks_by_name
from xdsl.context import Context
from xdsl.dialects import builtin, scf

import streamdsl as sd
from hls_backend import emit_project
from lowering.timing import U55C, task_timing
from lowering.transforms.partial_reductions import PartialReductionsPass, carried_reduction
from streamdsl.program import Program
from tests.hls.cases import csim_modes

SOURCE = Path(__file__).parent.parent / "filecheck" / "lowering" / "partial_reductions.mlir"


def _module(text: str | None = None) -> builtin.ModuleOp:
    return filecheck_module("partial_reductions", text)


_tasks = tasks_by_name


def _rewritten() -> builtin.ModuleOp:
    module = _module()
    PartialReductionsPass().apply(Context(), module)
    return module


def test_the_partials_compute_the_sum_of_squares_and_the_absolute_maximum() -> None:
    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    before = Program(_module(), "norms").simulate(x)
    after = Program(_rewritten(), "norms").simulate(x)
    np.testing.assert_allclose(after[0], [[np.sum(x.astype(np.float64) ** 2)]], rtol=1e-6)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)  # another summation order
    np.testing.assert_array_equal(after[1], [[np.abs(x).max()]])  # a max reassociates exactly
    np.testing.assert_array_equal(after[1], before[1])


def test_the_loop_runs_at_its_lanes_ii_not_the_adder_trees() -> None:
    """By hand, 250 MHz table (addf 4, mulf 3, maximumf 2 cycles): before, each of the 4
    iterations of `sumsq` waits for the last through mulf and a 6-level adder tree over the 64
    lanes (3 + 6 x 4 = 27, plus the read and the carried add: II 31); after, nothing crosses
    iterations but the element-wise add. At the pass's 16 lanes a 64-element op issues in 4 cycles
    (II 4), and the add's chain (4 cycles of issue, then its latency: 7) spans 2 iterations: 2
    interleaved partials, combined by one level of adds over the tile (7 cycles). Left at 64 lanes
    (`lanes=0`), a 64-float tile is two 1,024-bit beats: II 2, the add's 4 cycles again spanning 2
    iterations, one add level (4) to combine them."""
    old = task_timing(_tasks(_module())["sumsq"], U55C)
    (before,) = old.loops.values()
    assert before.ii == 31 and not before.partials
    rewritten = _tasks(_rewritten())["sumsq"]
    assert rewritten.attributes["unroll"].value.data == 16
    (after,) = task_timing(rewritten, U55C).loops.values()
    assert after.ii == 4 and list(after.partials.values()) == [2] and after.combine == 7
    assert (4 - 1) * after.ii + after.depth + after.combine < (4 - 1) * before.ii + before.depth
    wide = _module()
    PartialReductionsPass(lanes=0).apply(Context(), wide)
    assert "unroll" not in _tasks(wide)["sumsq"].attributes
    (at64,) = task_timing(_tasks(wide)["sumsq"], U55C).loops.values()
    assert at64.ii == 2 and list(at64.partials.values()) == [2] and at64.combine == 4


def test_a_task_keeps_the_lanes_it_has() -> None:
    module = _module()
    _tasks(module)["sumsq"].attributes["unroll"] = builtin.IntegerAttr(64, builtin.i64)
    PartialReductionsPass(lanes=8).apply(Context(), module)
    assert _tasks(module)["sumsq"].attributes["unroll"].value.data == 64
    assert _tasks(module)["absmax"].attributes["unroll"].value.data == 8


def test_the_design_is_faster_and_its_csim_agrees(tmp_path) -> None:  # noqa: ANN001
    x = np.random.default_rng(1).standard_normal((1, 256)).astype(np.float32)
    old, new = sd.compile(Program(_module(), "norms")), sd.compile(Program(_rewritten(), "norms"))
    assert new.graph.tasks["sumsq"].latency < old.graph.tasks["sumsq"].latency
    assert new.graph.tasks["absmax"].latency < old.graph.tasks["absmax"].latency
    assert new.timed_simulation().makespan < old.timed_simulation().makespan
    project = emit_project(new, tmp_path / "norms")
    want = new.simulate(x)
    for mode, got in csim_modes(project, x):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6, err_msg=f"{mode} csim")
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"{mode} csim")


def _arg(module: builtin.ModuleOp, task: str):  # noqa: ANN202
    loop = next(op for op in _tasks(module)[task].walk() if isinstance(op, scf.ForOp))
    return loop.body.block.args[1]


@pytest.mark.parametrize("edit, kept", [
    (lambda s: s, False),
    # a 16-bit sum stays in order: the simulators round it after every add
    (lambda s: s.replace("f32", "f16"), True),
    # the carried value read by something else than the reduction
    (lambda s: s.replace("scf.yield %n : tensor<1x1xf32>\n      }\n      %w = dataflow.itensor_write %sum",
                         "%keep = linalg.copy ins(%acc : tensor<1x1xf32>) outs(%acc : tensor<1x1xf32>) -> tensor<1x1xf32>\n"
                         "        scf.yield %n : tensor<1x1xf32>\n      }\n      %w = dataflow.itensor_write %sum", 1), True),
])
def test_which_reductions_keep_partials(edit, kept: bool) -> None:  # noqa: ANN001
    module = _module(edit(SOURCE.read_text()))
    assert (carried_reduction(_arg(module, "sumsq")) is None) is kept


def test_a_reduction_over_more_elements_than_allowed_is_kept() -> None:
    module = _module()
    assert carried_reduction(_arg(module, "sumsq"), max_elements=64) is not None
    assert carried_reduction(_arg(module, "sumsq"), max_elements=63) is None
