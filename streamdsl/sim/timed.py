"""Timed simulator of a dataflow `Graph`: the judge of FIFO sizing.

Each task follows its static token schedule (`streamdsl.graph`); it blocks on an empty input or a
full output FIFO, and every later event of the task shifts by the stall. Event times obey

    t(n)         = max(t(n-1) + (nominal(n) - nominal(n-1)), dependency(n)),  t(-1) = 0
    read  tok k  : dependency = written(k) + read_latency
    write tok k  : dependency = read(k - depth) + free_latency       (k >= depth)

These max-plus equations have one least solution, so tasks may be advanced in any order: the
simulator runs each ready task as far as its FIFOs allow (no global clock, O(events)), wakes the
task at the other end of every FIFO it touches, and reports a deadlock when nothing can move.
`simulate_unbounded` solves the same equations with infinite FIFOs in topological order, one
numpy running-max per task; a graph with a feedback stream (a cycle) has no such order, and its
least solution is the event simulator's with every FIFO unbounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from streamdsl.errors import DeadlockError, LimitError
from streamdsl.graph import MAX_TIMED_TOKENS, CompiledGraph, Graph, GraphError, slots_needed

__all__ = ["Activity", "Segment", "TimedResult", "activity", "critical_path", "latest_sources", "simulate_timed", "simulate_unbounded",
           "sources"]

UNBOUNDED = 1 << 62


@dataclass
class TimedResult:
    """`makespan` is None on deadlock. Times are cycles; occupancy counts FIFO slots in use
    (a slot is busy from its write until `free_latency` after its read)."""

    makespan: int | None
    stall_cycles: dict[str, int]
    peak_occupancy: dict[str, int]
    deadlock: DeadlockError | None
    finish: dict[str, int] = field(default_factory=dict)
    start: dict[str, int] = field(default_factory=dict)  # when each task began: first event - its nominal cycle
    write_times: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    read_times: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def total_stall_cycles(self) -> int:
        return sum(self.stall_cycles.values())

    def peak_bits(self, graph: Graph) -> int:
        return sum(self.peak_occupancy[e.name] * e.token_bits for e in graph.edges)

    def check(self) -> TimedResult:
        """Raise the DeadlockError if the simulation deadlocked."""
        if self.deadlock is not None:
            raise self.deadlock
        return self


def _depth_list(graph: Graph, depths: Mapping[str, int | None] | None) -> list[int]:
    out = []
    for e in graph.edges:
        d = depths.get(e.name, e.depth) if depths is not None and not e.fixed else e.depth
        if d is not None and d < 1:
            raise GraphError(f"edge {e.name}: depth must be >= 1, got {d}")
        out.append(UNBOUNDED if d is None else int(d))
    return out


def simulate_timed(
    graph: Graph,
    depths: Mapping[str, int | None] | None = None,
    *,
    raise_on_deadlock: bool = False,
    max_events: int = MAX_TIMED_TOKENS * 2,
) -> TimedResult:
    """Simulate with bounded FIFOs: `depths[name]`, else the edge's own depth, else unbounded.

    `max_events` bounds the work (one event per token read or written): past it, a LimitError."""
    cg = graph.compiled
    events = sum(len(t) for t in cg.times)
    if events > max_events:
        raise LimitError(
            f"timed simulation of {len(cg.task_names)} tasks needs {events} events, past its budget of "
            f"{max_events}; raise max_events or use larger tiles"
        )
    depth = _depth_list(graph, depths)
    state = _run(cg, depth, graph.read_latency, graph.free_latency)
    result = _result(cg, state, depth)
    if raise_on_deadlock:
        result.check()
    return result


@dataclass
class _State:
    pos: list[int]
    now: list[int]
    stall: list[int]
    wt: list[list[int]]
    rt: list[list[int]]
    blocked_on: list[int]  # edge index a blocked task waits on, -1 if not blocked


def _run(cg: CompiledGraph, depth: list[int], lam: int, mu: int) -> _State:
    ntasks = len(cg.task_names)
    st = _State([0] * ntasks, [0] * ntasks, [0] * ntasks, [[] for _ in depth], [[] for _ in depth], [-1] * ntasks)
    events = cg.event_lists
    src, dst = cg.src, cg.dst
    ready = list(range(ntasks))
    while ready:
        v = ready.pop()
        st.blocked_on[v] = -1
        evs, n, t, stall = events[v], st.pos[v], st.now[v], st.stall[v]
        end = len(evs)
        while n < end:
            delta, e, is_write = evs[n]
            tt = t + delta
            if is_write:
                wt = st.wt[e]
                k = len(wt)
                if k >= depth[e]:
                    rt = st.rt[e]
                    if k - depth[e] >= len(rt):
                        st.blocked_on[v] = e
                        break
                    free = rt[k - depth[e]] + mu
                    if free > tt:
                        stall += free - tt
                        tt = free
                wt.append(tt)
                other = dst[e]
            else:
                rt = st.rt[e]
                k = len(rt)
                wt = st.wt[e]
                if k >= len(wt):
                    st.blocked_on[v] = e
                    break
                avail = wt[k] + lam
                if avail > tt:
                    stall += avail - tt
                    tt = avail
                rt.append(tt)
                other = src[e]
            if st.blocked_on[other] == e:
                st.blocked_on[other] = -2  # queued
                ready.append(other)
            t = tt
            n += 1
        st.pos[v], st.now[v], st.stall[v] = n, t, stall
    return st


def _result(cg: CompiledGraph, st: _State, depth: list[int]) -> TimedResult:
    names = [e.name for e in cg.graph.edges]
    mu = cg.graph.free_latency
    wts = {n: np.asarray(w, dtype=np.int64) for n, w in zip(names, st.wt)}
    rts = {n: np.asarray(r, dtype=np.int64) for n, r in zip(names, st.rt)}
    peak = {n: slots_needed(wts[n], rts[n], mu) for n in names}
    stall = {name: st.stall[i] for i, name in enumerate(cg.task_names)}
    unfinished = [i for i in range(len(cg.task_names)) if st.pos[i] < len(cg.times[i])]
    if unfinished:
        err = _deadlock(cg, st, depth, unfinished)
        return TimedResult(None, stall, peak, err, {}, {}, wts, rts)
    finish = {}
    for i, name in enumerate(cg.task_names):
        last = int(cg.times[i][-1]) if len(cg.times[i]) else 0
        finish[name] = st.now[i] + cg.latency[i] - last
    start = _starts(cg, st.wt, st.rt)
    return TimedResult(max(finish.values(), default=0), stall, peak, None, finish, start, wts, rts)


def _starts(cg: CompiledGraph, wt: list, rt: list) -> dict[str, int]:
    """When each task began: its shift once every event of its first nominal cycle has happened
    (a task starts when all the tokens of its first iteration are there, as in the paper)."""
    out = {}
    for v, name in enumerate(cg.task_names):
        times = cg.times[v]
        if not times.size:
            out[name] = 0
            continue
        later = np.flatnonzero(times != times[0])  # events run in program order, not time order
        n0 = int(later[0]) - 1 if later.size else times.size - 1
        e = int(cg.ev_edge[v][n0])
        idx = (cg.write_idx if cg.ev_write[v][n0] else cg.read_idx)[v][e]
        k = int(np.searchsorted(idx, n0))
        first = (wt if cg.ev_write[v][n0] else rt)[e][k]
        out[name] = int(first) - int(times[n0])
    return out


def _deadlock(cg: CompiledGraph, st: _State, depth: list[int], unfinished: list[int]) -> DeadlockError:
    edges = cg.graph.edges
    blocked: dict[str, tuple[str, str, int, int]] = {}
    waits_for: dict[int, int] = {}
    for v in unfinished:
        e = st.blocked_on[v]
        occupancy = len(st.wt[e]) - len(st.rt[e])
        reading = cg.dst[e] == v
        shown_depth = depth[e] if depth[e] != UNBOUNDED else -1
        blocked[cg.task_names[v]] = (edges[e].name, "empty" if reading else "full", occupancy, shown_depth)
        waits_for[v] = cg.src[e] if reading else cg.dst[e]
    cycle = _find_cycle(waits_for, unfinished)
    lines = [f"deadlock: {len(blocked)} task(s) blocked"]
    if cycle:
        lines[0] += "; wait-for cycle: " + " -> ".join(cg.task_names[v] for v in [*cycle, cycle[0]])
    for task, (stream, state, occ, d) in blocked.items():
        verb = "read from" if state == "empty" else "write to"
        lines.append(f"  task {task} waits to {verb} stream {stream} ({state}, {occ}/{d if d >= 0 else 'inf'})")
    if any(state == "full" for _, state, _, _ in blocked.values()):
        lines.append("Deepen the full streams on the cycle (size them with fifo_sizing='lp').")
    else:  # no FIFO is full: no depth helps
        lines.append("Every stream waited on is empty: the cycle has no token to start it; a task on it must write "
                     "before it reads its feedback stream.")
    return DeadlockError("\n".join(lines), blocked, [cg.task_names[v] for v in cycle])


def _find_cycle(waits_for: Mapping[int, int], start: list[int]) -> list[int]:
    for v in start:
        seen: dict[int, int] = {}
        path: list[int] = []
        while v in waits_for and v not in seen:
            seen[v] = len(path)
            path.append(v)
            v = waits_for[v]
        if v in seen:
            return path[seen[v] :]
    return []


@dataclass
class Activity:
    """What one task did in a timed run, from cycle 0 to `end`: the intervals [from, to) it was
    stalled on an empty input or a full output (shape (n, 2)); busy the rest of the time."""

    end: int
    stalled_input: np.ndarray
    stalled_output: np.ndarray

    @property
    def stall_cycles(self) -> int:
        return int(np.sum(np.diff(self.stalled_input)) + np.sum(np.diff(self.stalled_output)))

    @property
    def busy_cycles(self) -> int:
        return self.end - self.stall_cycles


def _stalls(cg: CompiledGraph, result: TimedResult, v: int, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Task v's events that happened in `result` (in program order): their times, and how long each
    waited on its FIFO (the time past `t(n-1) + nominal(n) - nominal(n-1)`); `names`: the edges'."""
    nominal = cg.times[v]
    actual = np.zeros(nominal.size, np.int64)
    done = 0
    for times, index in ((result.write_times, cg.write_idx[v]), (result.read_times, cg.read_idx[v])):
        for e, idx in index.items():
            happened = times.get(names[e], np.zeros(0, np.int64))
            actual[idx[: happened.size]] = happened
            done += happened.size
    nominal, actual = nominal[:done], actual[:done]
    return actual, actual - (np.diff(nominal, prepend=0) + np.concatenate(([0], actual[:-1])))


def activity(graph: Graph, result: TimedResult) -> dict[str, Activity]:
    """Per task, when it stalled and on what, recovered from the event times `result` recorded:
    an event n that happened later than `t(n-1) + nominal(n) - nominal(n-1)` waited on its FIFO
    for the difference. A deadlocked run yields its events up to the deadlock."""
    cg = graph.compiled
    names = [e.name for e in graph.edges]
    out = {}
    for v, task in enumerate(cg.task_names):
        actual, stall = _stalls(cg, result, v, names)
        writes = cg.ev_write[v][: actual.size]
        done = actual.size
        waited = stall > 0
        spans = np.stack([actual - stall, actual], axis=1)
        end = result.finish.get(task, int(actual[-1]) if done else 0)
        out[task] = Activity(end, spans[waited & ~writes], spans[waited & writes])
    return out


@dataclass(frozen=True)
class Segment:
    """A stretch of a critical path: `task` ran from `start` to `end` without waiting (from its
    start, or from when `waited_on`, the stream it had waited on, delivered a token or a slot)."""

    task: str
    start: int
    end: int
    waited_on: str | None


def critical_path(graph: Graph, result: TimedResult) -> list[Segment]:
    """The chain of tasks that set `result`'s makespan, first to last: from the task that finishes
    last, back through the last wait of each: on an empty input, to the task that wrote that
    token, at its write; on a full output (bounded FIFOs), to the reader whose read freed the
    slot, at that read; down to a task that never waited. Each segment is what one task did on
    the chain: shorten any of them and the makespan can drop; work off the chain cannot lower it."""
    if result.makespan is None or not result.finish:
        return []
    cg = graph.compiled
    names = [e.name for e in graph.edges]
    v = cg.task_index[max(result.finish, key=lambda t: (result.finish[t], t))]
    until = result.finish[cg.task_names[v]]
    path: list[Segment] = []
    for _ in range(sum(t.size for t in cg.times) + 1):  # time only falls along the path; with read_latency 0, a guard
        actual, stall = _stalls(cg, result, v, names)
        waits = np.flatnonzero((stall > 0) & (actual <= until))
        if not waits.size:
            path.append(Segment(cg.task_names[v], result.start.get(cg.task_names[v], 0), until, None))
            return path[::-1]
        n = int(waits[-1])
        edge = cg.graph.edges[e := int(cg.ev_edge[v][n])]
        path.append(Segment(cg.task_names[v], int(actual[n]), until, edge.name))
        if cg.ev_write[v][n]:  # the slot its write waited for: freed free_latency after a read
            reads = result.read_times[edge.name]
            v, until = cg.dst[e], int(reads[np.searchsorted(reads, actual[n] - graph.free_latency, side="right") - 1])
        else:
            v, until = cg.src[e], int(result.write_times[edge.name][np.searchsorted(cg.read_idx[v][e], n)])
    return path[::-1]


# ---------------------------------------------------------------------------------------------
# Infinite FIFOs: a closed form per task in topological order
# ---------------------------------------------------------------------------------------------


def simulate_unbounded(graph: Graph) -> TimedResult:
    """The same equations with infinite FIFOs, vectorised: event n of a task happens at
    `nominal(n) + max(0, max_{m <= n} (dependency(m) - nominal(m)))`. Internal links keep their
    fixed depth (an SLR crossing's register pipeline), and a cycle has no topological order: such
    graphs run in the event simulator. A cycle whose tasks all wait for each other's tokens
    deadlocks even so: a DeadlockError."""
    cg = graph.compiled
    if cg.order is None or any(e.fixed and e.depth is not None for e in graph.edges):
        return simulate_timed(graph, dict.fromkeys((e.name for e in graph.fifos), None), raise_on_deadlock=cg.order is None)
    lam, mu = graph.read_latency, graph.free_latency
    wt: list[np.ndarray] = [np.zeros(0, np.int64)] * len(cg.tokens)
    rt: list[np.ndarray] = [np.zeros(0, np.int64)] * len(cg.tokens)
    actual: list[np.ndarray] = [np.zeros(0, np.int64)] * len(cg.task_names)
    for v in cg.order:
        times = cg.times[v]
        slack = np.zeros(times.size, np.int64)
        for e, idx in cg.read_idx[v].items():
            slack[idx] = wt[e] + lam - times[idx]
        t = times + np.maximum.accumulate(np.maximum(slack, 0)) if times.size else times
        actual[v] = t
        for e, idx in cg.read_idx[v].items():
            rt[e] = t[idx]
        for e, idx in cg.write_idx[v].items():
            wt[e] = t[idx]
    names = [e.name for e in graph.edges]
    finish, stall = {}, {}
    for v, name in enumerate(cg.task_names):
        last = int(cg.times[v][-1]) if cg.times[v].size else 0
        shift = int(actual[v][-1]) - last if actual[v].size else 0
        stall[name] = shift
        finish[name] = cg.latency[v] + shift
    peak = {n: slots_needed(w, r, mu) for n, w, r in zip(names, wt, rt)}
    start = _starts(cg, wt, rt)
    return TimedResult(
        max(finish.values(), default=0), stall, peak, None, finish, start, dict(zip(names, wt)), dict(zip(names, rt))
    )



# ---------------------------------------------------------------------------------------------
# Sources as late as they may run: what back-pressure makes of a DMA far ahead of its reader
# ---------------------------------------------------------------------------------------------


def sources(graph: Graph) -> set[str]:
    """Tasks without inputs (DMAs reading HBM)."""
    return set(graph.tasks) - {e.dst for e in graph.edges}


def latest_sources(graph: Graph, run: TimedResult) -> TimedResult:
    """`run` (of infinite FIFOs) with the `sources` as late as they can be without delaying any
    other task or the makespan: event n at `a(n) + min_{m >= n} (deadline(m) - a(m))`, `a` being
    its time in `run`, the deadline of a write its reader's time less `read_latency` and the last
    event's leaving the task's tail before the makespan.

    A source has nothing to wait for, so in hardware it blocks on its full FIFO: these are the
    times back-pressure gives it when its FIFO holds `slots_needed` of them (every equation of the
    module doc holds, so the bounded run is no later). Readers keep their times, so no FIFO needs
    more slots than in `run`."""
    late = sources(graph)
    if not late or run.makespan is None:
        return run
    cg = graph.compiled
    names = [e.name for e in graph.edges]
    wt = [run.write_times[n] for n in names]
    rt = [run.read_times[n] for n in names]
    finish = dict(run.finish)
    for name in late:
        v = cg.task_index[name]
        achieved = np.zeros(cg.times[v].size, np.int64)  # the run's times, in program order
        deadline = np.zeros(achieved.size, np.int64)
        for e, idx in cg.write_idx[v].items():  # a source only writes
            achieved[idx] = wt[e]
            deadline[idx] = rt[e] - graph.read_latency
        if not achieved.size:
            continue
        deadline[-1] = min(int(deadline[-1]), run.makespan - (run.finish[name] - int(achieved[-1])))
        t = achieved + np.minimum.accumulate((deadline - achieved)[::-1])[::-1]
        for e, idx in cg.write_idx[v].items():
            wt[e] = t[idx]
        finish[name] += int(t[-1] - achieved[-1])
    mu = graph.free_latency
    peak = {n: slots_needed(w, r, mu) for n, w, r in zip(names, wt, rt)}
    return TimedResult(run.makespan, run.stall_cycles, peak, None, finish, _starts(cg, wt, rt),
                       dict(zip(names, wt)), dict(zip(names, rt)))
