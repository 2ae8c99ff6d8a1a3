"""flatten-loop-nests: the program computes the same, its stream accesses keep their order, the
flattened nest is pipelined as one loop (the timing model's figures, computed by hand), and the
nests it must keep (imperfect, an induction variable used, a weight matvec `split-matvecs` cuts)
stay as they were."""

from __future__ import annotations

import numpy as np
from lowering_helpers import filecheck_module, tasks_by_name
from xdsl.context import Context
from xdsl.dialects import builtin, scf

from lowering.timing import U55C, task_timing
from lowering.transforms.flatten_loop_nests import FlattenLoopNestsPass, perfect_inner_loop
from streamdsl.dialects.dataflow import TaskOp
from streamdsl.program import Program


def _module() -> builtin.ModuleOp:
    return filecheck_module("flatten_loop_nests")


_tasks = tasks_by_name


def _loops(task: TaskOp) -> list[scf.ForOp]:
    return [op for op in task.walk() if isinstance(op, scf.ForOp)]


def test_the_flattened_program_computes_the_same() -> None:
    before, after = _module(), _module()
    FlattenLoopNestsPass().apply(Context(), after)
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    want = Program(before, "heads").simulate(x)
    got = Program(after, "heads").simulate(x)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(got[0], 2 * x)  # "scores" doubles every tile, in stream order
    np.testing.assert_allclose(got[1], x.reshape(2, 3, 2).sum(1), rtol=1e-6)


def test_only_the_perfect_nest_without_indices_is_flattened() -> None:
    module = _module()
    FlattenLoopNestsPass().apply(Context(), module)
    tasks = _tasks(module)
    (flat,) = _loops(tasks["scores"])
    assert flat.ub.owner.value.value.data == 6 and flat.lb.owner.value.value.data == 0
    assert len(_loops(tasks["sum"])) == 2  # an accumulator set before the inner loop
    assert len(_loops(tasks["indexed"])) == 2  # its inner induction variable is read
    assert perfect_inner_loop(_loops(_tasks(_module())["scores"])[0], keep={"scores"}) is None


def test_the_flattened_nest_runs_as_one_pipeline() -> None:
    """By hand: an iteration of "scores" reads a 64-bit tile (one beat), adds it to itself (a
    pipelined float adder: `op_latency`) and writes it (one beat): II 1. Before, each of the 2
    heads entered a 3-iteration pipeline, paying its depth each time and the loop entry between
    them; flattened, the 6 iterations issue one a cycle behind one fill."""
    before, after = _module(), _module()
    FlattenLoopNestsPass().apply(Context(), after)
    old, new = _tasks(before)["scores"], _tasks(after)["scores"]
    (loop,) = task_timing(new, U55C).loops.values()
    (inner,) = task_timing(old, U55C).loops.values()
    assert loop.ii == inner.ii == 1 and loop.depth == inner.depth == 6  # read 1, addf 4, write 1
    assert U55C.schedule(new).latency == (6 - 1) * 1 + 6 == 11
    assert U55C.schedule(old).latency == 2 * ((3 - 1) * 1 + 6 + U55C.loop_entry) == 18


def test_the_weight_matvecs_keep_their_outer_loop() -> None:
    """GPT-2 small's lowered block at cache 64 and tile 32 (six of attention's tasks walk heads x
    key tiles in perfect nests), flattened: the tasks `split-matvecs` splits keep the loop it
    cuts, and no other perfect nest is left."""
    from lowering.transforms.split_matvecs import outer_trips, weight_chains
    from streamdsl.dialects.dataflow import kernel_of
    from toolchain.models import model_block

    module = model_block("gpt2", "small", 64, 32).lowered.program.module
    kernel = kernel_of(module)
    keep = {name for chain in weight_chains(kernel).values() for name in chain}
    assert sum(perfect_inner_loop(loop, keep) is not None for loop in kernel.walk() if isinstance(loop, scf.ForOp)) == 6
    FlattenLoopNestsPass().apply(Context(), module)
    chains = weight_chains(kernel)
    assert chains and all(outer_trips(t) for t in kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data in chains)
    for task in (t for t in kernel.body.block.ops if isinstance(t, TaskOp)):
        assert not any(perfect_inner_loop(loop, keep) for loop in _loops(task)), task.sym_name.data


def test_the_flattened_nest_emits_one_pipelined_loop_that_csim_counts_as_the_model(tmp_path) -> None:  # noqa: ANN001
    """The emitted project of the flattened module passes the HLS lint; g++ csim equals the
    functional simulation, and every process's cycles and the makespan are within 1.2x of the
    timing model."""
    import streamdsl as sd
    from hls_backend import csim_cycles, emit_project, model_cycles
    from hls_backend.lint import lint_cpp
    from tests.hls.cases import csim_modes

    module = _module()
    FlattenLoopNestsPass().apply(Context(), module)
    design = sd.compile(Program(module, "heads"))
    project = emit_project(design, tmp_path / "hls")
    assert lint_cpp((project / "kernel.cpp").read_text()) == []
    x = np.random.default_rng(1).standard_normal((2, 6)).astype(np.float32)
    want = design.simulate(x)
    for mode, got in csim_modes(project, x, timeout=300):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w, err_msg=f"{mode} csim")
    counted, model = csim_cycles(project, x, timeout=300), model_cycles(design)
    off = {n: (c["busy"], model[n]) for n, c in counted["processes"].items() if not 1 / 1.2 <= c["busy"] / max(1, model[n]) <= 1.2}
    assert not off, off
    assert 1 / 1.2 <= counted["makespan"] / design.timed_simulation().makespan <= 1.2


def test_a_nest_whose_step_does_not_divide_its_bounds_is_kept() -> None:
    """xDSL's rewrite takes only bounds its steps divide: such a nest is left as it was (and the
    pass ends: no rewrite that undoes itself)."""
    module = _module()
    task = _tasks(module)["scores"]
    inner = _loops(task)[1]
    inner.ub.owner.value = builtin.IntegerAttr(5, builtin.IndexType())  # 0..5 step 2
    assert perfect_inner_loop(_loops(task)[0]) is None
    FlattenLoopNestsPass().apply(Context(), module)
    assert len(_loops(task)) == 2


def test_after_the_splits_the_weight_chains_flatten_too_from_any_lower_bound(tmp_path) -> None:  # noqa: ANN001
    """GPT-2 tiny W4A8 (groups of 16) at cache 16 and tile 16: c_fc's chain (8 outer trips) split
    in 2 parts (`split-matvecs`: part 1's outer loop runs over trips 4 to 8), then flattened with
    `chains` (what a plan's `flat_chains` asks once its splits are made): every part's perfect nest
    is one loop counted from 0, each part is faster by the timing model (no pipeline fill and
    drain per outer trip), the design computes exactly what the unsplit one does, and its emitted
    project passes the HLS lint and runs in csim at the model's cycles."""
    import streamdsl as sd
    from hls_backend import csim_cycles, emit_project, model_cycles
    from hls_backend.lint import lint_cpp
    from lowering.hbm_channels import allocate_kernel
    from lowering.transforms.flatten_loop_nests import flatten_loop_nests
    from lowering.transforms.split_matvecs import split_tasks, weight_chains
    from streamdsl import quant
    from streamdsl.dialects.dataflow import kernel_of
    from tests.hls.cases import INT4_WARNINGS, csim_modes
    from toolchain.models import model_block

    block = model_block("gpt2", "tiny", 16, 16, quant=quant.scheme("w4a8", 16))
    args = block.example.make_inputs(0)
    unsplit = sd.compile(block.example.program).simulate(*args)
    kernel = kernel_of(block.example.program.module)
    chain = weight_chains(kernel)["k36_reduce"]
    split_tasks(kernel, dict.fromkeys(chain, 2))
    allocate_kernel(kernel)
    nested = {n: U55C.schedule(t).latency for n, t in _tasks(block.example.program.module).items() if n.startswith("k36_reduce_p")}
    assert not flatten_loop_nests(kernel) and flatten_loop_nests(kernel, chains=True)  # without `chains` the parts keep theirs
    tasks = _tasks(block.example.program.module)
    for name, before in nested.items():
        loops = _loops(tasks[name])  # the outermost first
        assert loops[0].lb.owner.value.value.data == 0 and not any(perfect_inner_loop(loop, ()) for loop in loops)
        assert U55C.schedule(tasks[name]).latency < before, name
    design = sd.compile(block.example.program)
    for g, u in zip(design.simulate(*args), unsplit, strict=True):
        np.testing.assert_array_equal(g, u)
    project = emit_project(design, tmp_path / "hls")
    assert lint_cpp((project / "kernel.cpp").read_text()) == []
    for mode, got in csim_modes(project, *args, flags=INT4_WARNINGS, timeout=600):
        for g, u in zip(got, unsplit, strict=True):
            np.testing.assert_allclose(g, u, rtol=1e-5, atol=1e-5 * float(np.abs(u).max()), err_msg=f"{mode} csim")
    counted, model = csim_cycles(project, *args, timeout=600), model_cycles(design)
    off = {n: (c["busy"], model[n]) for n, c in counted["processes"].items() if not 1 / 1.2 <= c["busy"] / max(1, model[n]) <= 1.2}
    assert not off, off
    assert 1 / 1.2 <= counted["makespan"] / design.timed_simulation().makespan <= 1.2
