"""Feedback streams (`sd.feedback`, `dataflow.itensor_feedback`): a kernel whose stream graph has a
cycle runs in the functional simulator, the timed simulators and FIFO sizing, checked against
numpy and an independent cycle-by-cycle simulator; its mistakes are reported at the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from streamdsl.dialects.dataflow import ITensorFeedbackConnectOp, ITensorFeedbackOp, kernel_of
from streamdsl.sim.timed import critical_path, simulate_timed, simulate_unbounded
from tests.fifo.fifo_dags import reference_simulate

from . import programs as P

SHAPES = [(64, 16), (96, 32), (32, 8)]


def _args(case: P.Case, seed: int) -> list[np.ndarray]:
    return case.inputs(np.random.default_rng(seed))


@pytest.mark.parametrize(("k", "t"), SHAPES)
def test_one_engine_computes_both_layers_as_numpy_does(k: int, t: int) -> None:
    case = P.shared_engine(k, t)
    args = _args(case, k)
    np.testing.assert_allclose(case.program.simulate(*args), case.reference(*args), rtol=1e-5, atol=1e-5)


def test_the_ir_reads_the_feedback_above_the_task_that_writes_it() -> None:
    kernel = kernel_of(P.shared_engine(64, 16).program.module)
    ops = list(kernel.body.block.ops)
    (feedback,) = [op for op in ops if isinstance(op, ITensorFeedbackOp)]
    (connect,) = [op for op in ops if isinstance(op, ITensorFeedbackConnectOp)]
    assert feedback.result.name_hint == "hidden"
    assert connect.feedback == feedback.result and connect.source == feedback.source
    writer = connect.source.owner
    (reader,) = [use.operation for use in feedback.result.uses if use.operation is not connect]
    assert ops.index(reader) < ops.index(writer) < ops.index(connect)  # a backward edge


@pytest.mark.parametrize(("k", "t"), SHAPES)
def test_sized_fifos_reach_the_makespan_of_infinite_ones(k: int, t: int) -> None:
    case = P.shared_engine(k, t)
    design = sd.compile(case.program)
    graph = design.graph
    assert graph.topological_order() is None  # the cycle is there
    unbounded = simulate_unbounded(graph)
    reference = reference_simulate(graph, dict.fromkeys((e.name for e in graph.fifos), None))
    assert unbounded.makespan == reference.makespan  # the least solution, as a cycle-by-cycle run finds it
    sized = simulate_timed(graph, design.depths)
    assert sized.deadlock is None and sized.makespan == unbounded.makespan == design.sizing.makespan
    assert reference_simulate(graph, design.depths).makespan == unbounded.makespan
    assert design.sizing.total_bits <= sd.compile(case.program, "lp").sizing.total_bits
    args = _args(case, t)
    np.testing.assert_allclose(design.simulate(*args), case.reference(*args), rtol=1e-5, atol=1e-5)
    assert critical_path(graph, sized)[-1].end == sized.makespan


def test_a_cycle_without_a_first_token_is_a_deadlock_that_names_its_streams() -> None:
    case = P.shared_engine(32, 8, reads_back_first=True)
    args = _args(case, 0)
    with pytest.raises(sd.DeadlockError, match=r"(?s)stuck_engine.*empty.*act.*every stream on the cycle is empty"):
        case.program.simulate(*args)
    with pytest.raises(sd.DeadlockError, match=r"(?s)wait-for cycle: .*Every stream waited on is empty: the cycle has no token"):
        sd.compile(case.program)


X = sd.itensor.tiled(sd.f32, shape=(1, 32), tile=(1, 8))


@sd.kernel
def add(a: X, b: X) -> X:
    for i in range(4):
        yield a.read() + b.read()


@sd.kernel
def twice(a: X) -> X:
    for i in range(4):
        yield a.read() * 2.0


def test_mistakes_are_reported_at_the_users_line() -> None:
    def never_connected(x: sd.Tensor[sd.f32, (1, 32)]):
        back = sd.feedback(X)  # line A
        return add(x, back)

    with pytest.raises(sd.DSLError, match=r"test_feedback.py:\d+.*feedback is never connected: call feedback.connect\(y\)"):
        sd.dataflow(never_connected)

    def twice_connected(x: sd.Tensor[sd.f32, (1, 32)]):
        back = sd.feedback(X, "b")
        y = add(x, back)
        z, w = sd.chunk(twice(y), 2, dim=1)
        back.connect(z)
        back.connect(w)
        return y

    with pytest.raises(sd.DSLError, match=r"b streams a \[1, 32\] f32 tensor but twice.out\[0:16\] is a \[1, 16\] f32 one"):
        sd.dataflow(twice_connected)

    def connected_twice(x: sd.Tensor[sd.f32, (1, 32)]):
        back = sd.feedback(X, "b")
        y = add(x, back)
        back.connect(twice(y))
        back.connect(twice(x))
        return y

    with pytest.raises(sd.DSLError, match=r"b is already connected \(line \d+\): a stream has one producer"):
        sd.dataflow(connected_twice)

    def not_a_feedback(x: sd.Tensor[sd.f32, (1, 32)]):
        y = twice(x)
        y.connect(twice(x))
        return y

    with pytest.raises(sd.DSLError, match=r"twice.out is not a feedback stream: only a stream made by sd.feedback"):
        sd.dataflow(not_a_feedback)

    def unused(x: sd.Tensor[sd.f32, (1, 32)]):
        back = sd.feedback(X, "b")
        y = twice(x)
        back.connect(twice(y))
        return y

    with pytest.raises(sd.DSLError, match=r"b is never used: pass it to a kernel"):
        sd.dataflow(unused)

    def not_a_type(x: sd.Tensor[sd.f32, (1, 32)]):
        sd.feedback((1, 32))
        return twice(x)

    with pytest.raises(sd.DSLError, match=r"sd.feedback\(T\): T must be the stream's sd.itensor, got \(1, 32\)"):
        sd.dataflow(not_a_type)


def test_a_program_with_feedback_has_no_eager_run() -> None:
    @sd.dataflow
    def loop(x: sd.Tensor[sd.f32, (1, 32)]):
        back = sd.feedback(X)
        y = add(x, back)
        back.connect(twice(y))
        return y

    with pytest.raises(sd.DSLError, match="a program with feedback has no eager run"):
        loop(np.zeros((1, 32), np.float32))
    with pytest.raises(sd.DeadlockError):  # add reads the fed-back stream before it writes: no first token
        loop.simulate(np.zeros((1, 32), np.float32))
