"""The timed simulator executes what the program executes: stream accesses in program order, a
converter's two polling sides. Its deadlock verdict, and where every task stops, equal the
functional simulator's (and threaded csim's) on every program and every depth.

Run the deep campaign with `HYPOTHESIS_PROFILE=deep DAG_EXAMPLES=5000 python -m pytest
tests/fifo/test_program_order.py -k property` (nice it: it takes a while).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.dialects.dataflow import ITensorConverterOp
from streamdsl.errors import DeadlockError

from .random_programs import Spec, build, specs

N, T = 16, 64
X = sd.itensor.tiled(sd.f32, shape=(N, T), tile=(1, T))
S = sd.itensor.tiled(sd.f32, shape=(1, T), tile=(1, T))


def _diamond(p_first: bool):  # noqa: ANN202 - an sd.DataflowProgram
    """The issue's reproducer: combine reads the replayed total (p) and the forked rows (q)."""

    @sd.kernel
    def load(x: X) -> X:
        for i in range(N):
            yield x.read() * 2.0

    @sd.kernel
    def total(x: X) -> S:
        acc = sd.zeros((1, T))
        for i in range(N):
            acc += x.read()
        yield acc

    if p_first:

        @sd.kernel
        def combine(q: X, p: S.repeat(N)) -> X:
            for i in range(N):
                yield p.read() + q.read()  # p is read first

    else:

        @sd.kernel
        def combine(q: X, p: S.repeat(N)) -> X:
            for i in range(N):
                u = q.read()
                yield p.read() + u

    @sd.dataflow
    def diamond(x: sd.Tensor[sd.f32, (N, T)]):
        y = load(x)
        return combine(y, total(y))

    return diamond


def _functional_blocked(design, depths: dict[str, int], n: int = N) -> dict[str, str] | None:
    """Where each blocked process of the functional simulator waits (None: it finished)."""  # noqa: ANN001
    try:
        design.simulate(np.ones((n, T if n == N else 4), np.float32), depths=depths)
    except DeadlockError as err:
        return {task: stream for task, (stream, *_rest) in err.blocked.items()}
    return None


def _timed_blocked(design, depths: dict[str, int]) -> dict[str, str] | None:
    err = design.timed_simulation(depths).deadlock
    return None if err is None else {task: stream for task, (stream, *_rest) in err.blocked.items()}


def _same_stops(timed: dict[str, str] | None, functional: dict[str, str] | None) -> bool:
    """Both finished, or both stopped with every task (a converter aside: it polls both sides,
    the timed model splits it in two) waiting on the same stream."""
    if timed is None or functional is None:
        return timed is functional
    plain = lambda blocked: {t: s for t, s in blocked.items() if not t.startswith("converter(")}  # noqa: E731
    return plain(timed) == plain(functional)


@pytest.mark.parametrize("p_first", [True, False])
def test_reconvergent_diamond_deadlocks_in_both_simulators_whatever_the_read_order(p_first: bool) -> None:
    design = sd.compile(_diamond(p_first))
    unbounded = design.timed_simulation(dict.fromkeys(design.depths))
    verdicts = []
    for depth in range(1, N + 2):
        depths = {"fork(load)->combine": depth}
        timed, functional = _timed_blocked(design, depths), _functional_blocked(design, depths)
        assert _same_stops(timed, functional), (depth, timed, functional)
        verdicts.append(timed is not None)
    # p first: at depth 14 (the case) combine waits for the total of all N rows while the
    # FIFO of q holds them; q first frees a slot before it waits
    assert verdicts[13] == p_first and not verdicts[-1] and verdicts == sorted(verdicts, reverse=True)
    assert design.timed_simulation({"fork(load)->combine": N + 1}).makespan == unbounded.makespan


def test_reads_follow_program_order_not_port_order() -> None:
    graph = sd.compile(_diamond(True)).graph
    combine = graph.tasks["combine"]
    assert combine.order is not None
    first = min(combine.order, key=lambda port: combine.order[port][0])
    assert first == "arg1"  # p, declared second, is read first


@settings(max_examples=int(os.environ.get("DAG_EXAMPLES", 200)))
@given(specs(), st.data())
def test_property_timed_deadlock_verdict_equals_the_functional_simulators(spec: Spec, data: st.DataObject) -> None:
    design = sd.compile(build(spec))
    names = sorted(design.depths)
    depths = dict(zip(names, data.draw(st.lists(st.integers(1, spec.n + 2), min_size=len(names), max_size=len(names)))))
    timed, functional = _timed_blocked(design, depths), _functional_blocked(design, depths, spec.n)
    assert _same_stops(timed, functional), (spec.source(), depths, timed, functional)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("DAG_CSIM_EXAMPLES", 8)))
@given(spec=specs(max_nodes=4), data=st.data())
def test_property_threaded_csim_stops_where_the_timed_simulator_does(spec: Spec, data: st.DataObject, tmp_path_factory) -> None:  # noqa: ANN001
    from hls_backend import CsimDeadlock, emit_project, run_csim

    design = sd.compile(build(spec))
    names = sorted(design.depths)
    depths = dict(zip(names, data.draw(st.lists(st.integers(1, spec.n + 2), min_size=len(names), max_size=len(names)))))
    project = emit_project(design, tmp_path_factory.mktemp("dag") / "p", depths=depths)
    try:
        run_csim(project, np.ones((spec.n, 4), np.float32), threaded=True, timeout=60)
        csim_deadlocked = False
    except CsimDeadlock:
        csim_deadlocked = True
    assert (design.timed_simulation(depths).deadlock is not None) == csim_deadlocked, (spec.source(), depths)


def test_reconvergence_behind_two_bank_converters_with_three_slabs() -> None:
    """Both branches of a fork are re-cut into row pairs (planned converters: three slabs cycling
    through two banks, so the room link binds), one after a broadcast of the rows' total, and
    zipped: every depth gives both simulators the same stops."""
    from .random_programs import Node

    spec = Spec(6, (Node("map", (0,), False), Node("regrid", (1,), False), Node("reduce", (1,), False),
                    Node("bcast", (3, 1), True), Node("regrid", (4,), False), Node("zip", (2, 5), True)))  # fmt: skip
    design = sd.compile(build(spec))
    assert any(isinstance(op, ITensorConverterOp) and op.shared_loops is not None for op in design.module.walk())
    rng = np.random.default_rng(0)
    names = sorted(design.depths)
    stops = set()
    for _ in range(60):
        depths = dict(zip(names, rng.integers(1, 8, len(names)).tolist()))
        timed, functional = _timed_blocked(design, depths), _functional_blocked(design, depths, spec.n)
        assert _same_stops(timed, functional), (depths, timed, functional)
        stops.add(timed is None)
    assert stops == {True, False}  # some depths deadlock, some do not
