"""FIFO sizing of graphs with a cycle (a feedback stream, docs/ir.md): random DAGs closed by a
back edge from a later task to the first one, which reads it after the rest of its work. The
unbounded run is the independent clock-stepped simulator's, and the depths the LP and min-bits
give reach its makespan in both simulators."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lowering.fifo_sizing import size_fifos
from streamdsl.graph import Graph, Task
from streamdsl.sim.timed import simulate_timed, simulate_unbounded

from .fifo_dags import KINDS, random_dag, reference_simulate


def with_feedback(dag: Graph, src: int, dst: int, tokens: int, gap: int) -> Graph:
    """`dag` with an edge from task `src` back to task `dst` (src later in the order): `src`
    writes `tokens` tokens after its last event, `dst` reads them `gap` cycles after its own."""
    names = list(dag.tasks)
    graph = Graph(dag.read_latency, dag.free_latency)
    for k, name in enumerate(names):
        task = dag.tasks[name]
        reads, writes = dict(task.reads), dict(task.writes)
        if k == src:
            writes["fb"] = task.last_event + 1 + np.arange(tokens)
        if k == dst:
            reads["fb"] = task.last_event + gap + np.arange(tokens)
        graph.add_task(Task(name, reads, writes))
    for e in dag.edges:
        graph.connect(e.src, e.src_port, e.dst, e.dst_port, e.token_bits, name=e.name)
    graph.connect(names[src], "fb", names[dst], "fb", 32, name="feedback")
    return graph


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(KINDS), st.integers(3, 24), st.integers(0, 2**16), st.data())
def test_sized_fifos_of_a_cycle_reach_the_makespan_of_infinite_ones(kind: str, n: int, seed: int, data) -> None:  # noqa: ANN001
    dag = random_dag(kind, n, seed)
    size = len(dag.tasks)
    src = data.draw(st.integers(1, size - 1))  # every task is reached from t0: the back edge to it closes a cycle
    graph = with_feedback(dag, src, 0, data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40)))
    assert graph.topological_order() is None
    free = simulate_unbounded(graph)
    reference = reference_simulate(graph, dict.fromkeys((e.name for e in graph.edges), None))
    assert free.makespan == reference.makespan
    for mode in ("lp", "min-bits"):
        depths = size_fifos(graph, mode).depths
        run = simulate_timed(graph, depths)
        assert run.deadlock is None and run.makespan == free.makespan, mode
        assert reference_simulate(graph, depths).makespan == free.makespan, mode
