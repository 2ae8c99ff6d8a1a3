"""FIFO sizing by linear programming (python-mip / CBC), the paper's formulation with potentials.

The paper (docs/timing.md, "The LP") minimises the sum of edge delays subject to: along every path
the delays add up to at least the largest sum of first-output delays D. Written with one start
time `s_v` per task instead of paths, delay(i, j) = s_j - s_i and the path constraints become one
difference constraint per edge (any path then telescopes to s_last - s_first):

    minimise    sum_e  w_e * (s_dst(e) - s_src(e))
    subject to  s_dst(e) - s_src(e) >= lag_e          for every edge e
                0 <= s_v,  s_v + end_v <= makespan   for every task v

Two refinements make the no-stall guarantee exact rather than approximate:

- `lag_e` is the exact per-token lag, max over the tokens k of (written_k + read_latency -
  read_k), so bursty schedules (a reduction that reads a row before it writes, a reuse replay)
  are handled; for the paper's constant-rate tasks it is D_src (+ the slower-source term).
- the schedules are the *achieved* ones of a run with infinite FIFOs (`simulate_unbounded`),
  which also accounts for a task slowed down by a slow input; `makespan` is that run's.

Any feasible `s` is a schedule the bounded system can follow when each FIFO holds
`slots_needed(written, read + delay)` tokens; the timed simulator's solution is the least one, so
it finishes no later: no deadlock, and the makespan of infinite FIFOs. The LP chooses among those
schedules the one using least memory: `w_e` is token bits times tokens per cycle (the slope of
FIFO occupancy in the delay), so the objective counts bits, not cycles. Depths follow exactly from
the optimal delays. The constraint matrix is a network matrix, so the optimum is integral.

Modes: `lp` (alias `normal`), `conservative` (first stretch every task's schedule to the slowest
task's latency, as the paper does; fast tasks stall; the normal LP's depths are kept where they
need fewer bits, so it is never bigger), `naive` (as deep as the tensor) and `default` (depth 2
everywhere, Vitis' default; may stall or deadlock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import mip
import numpy as np

from streamdsl.dialects.dataflow import DEFAULT_DEPTH
from streamdsl.errors import StreamdslError
from streamdsl.graph import Graph, Task, slots_needed
from streamdsl.sim.timed import TimedResult, latest_sources, simulate_timed, simulate_unbounded, sources

__all__ = ["MODES", "FifoSizingError", "Sizing", "TradeoffPoint", "size_fifos", "stretched", "tradeoff"]

MODES = ("min-bits", "lp", "normal", "conservative", "naive", "default")
# min-bits refines by simulation within this many simulated events (a few full runs of a large
# graph, hundreds of a small one); `conservative` joins its candidates below this many tasks
SEARCH_EVENTS = 150_000
CONSERVATIVE_TASKS = 400


class FifoSizingError(StreamdslError, RuntimeError):
    """The LP could not be solved (names the mode and solver status)."""


@dataclass
class Sizing:
    """Depths per edge name, with what the LP decided and how long it took."""

    mode: str
    depths: dict[str, int]
    seconds: float
    total_bits: int
    naive_bits: int  # every FIFO as deep as its tensor
    sim_peak_bits: int  # peak occupancy bits of a run with infinite FIFOs
    tensor_deep_bits: int = 0  # every intermediate tensor buffered whole, once (Stream-HLS's choice)
    makespan_bound: int | None = None  # the LP schedule's makespan (None for naive/default); min-bits: the target
    simulations: int = 0  # timed simulations min-bits ran to check and shrink depths
    makespan: int | None = None  # min-bits: the timed makespan with these depths (checked)
    starts: dict[str, int] = field(default_factory=dict)  # task start cycles of the LP schedule
    delays: dict[str, int] = field(default_factory=dict)  # start(dst) - start(src) per edge
    lags: dict[str, int] = field(default_factory=dict)  # per edge, the least delay that never starves its reader
    lp_seconds: float = 0.0  # CBC alone
    # min-bits within an on-chip budget: the FIFOs out of the sources (DMAs) limited to this many
    # tokens of prefetch in the run that set the target (None: unlimited)
    prefetch: int | None = None
    prefetch_depths: dict[str, int] = field(default_factory=dict)  # those FIFOs, capped at `prefetch`
    unbounded_makespan: int | None = None

    def report(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "seconds": self.seconds,
            "total_bits": self.total_bits,
            "naive_bits": self.naive_bits,
            "tensor_deep_bits": self.tensor_deep_bits,
            "sim_peak_bits": self.sim_peak_bits,
            **({"makespan": self.makespan, "simulations": self.simulations} if self.mode == "min-bits" else {}),
            **({"prefetch_tokens": self.prefetch, "unbounded_makespan": self.unbounded_makespan}
               if self.prefetch is not None else {}),
        }


def size_fifos(graph: Graph, mode: str = "min-bits", slack: float = 0.0,
               fits: Callable[[Mapping[str, int]], bool] | None = None) -> Sizing:
    """Choose a depth for every edge of `graph` (the graph's own depths are left unchanged).
    `slack` (min-bits only): accept a makespan up to (1 + slack) x that of infinite FIFOs.
    `fits(depths)` (min-bits only): the on-chip budget; when the depths of that makespan do not
    fit, the prefetch of the DMAs is limited until they do (`_within_budget`)."""
    if mode not in MODES:
        raise ValueError(f"fifo sizing mode {mode!r} is unknown; choose one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    unbounded = simulate_unbounded(graph)
    achieved = latest_sources(graph, unbounded)  # a DMA far ahead of its reader waits on its FIFO for free
    naive = graph.naive_depths()
    common = {
        "naive_bits": graph.bits(naive),
        "sim_peak_bits": unbounded.peak_bits(graph),
        "lags": dict(zip((e.name for e in graph.edges), _lags(graph, achieved).tolist())),
        "tensor_deep_bits": sum(graph.intermediate_bits.values()),
    }
    if mode in ("naive", "default"):
        depths = naive if mode == "naive" else dict.fromkeys(naive, DEFAULT_DEPTH)
        return Sizing(mode, depths, time.perf_counter() - t0, graph.bits(depths), **common)
    if mode == "min-bits":
        lp = _plan(graph, achieved, "lp")
        proven = _proven(graph, achieved, lp)
        if fits is not None and not fits(min(proven, key=graph.bits)):  # the simulator's search rarely halves it
            within = _within_budget(graph, unbounded, fits, slack, t0, common)
            if within is not None:
                return within
        return _min_bits(graph, achieved, slack, t0, common, lp)
    plans = [_plan(graph, achieved, mode)]
    if mode == "conservative":  # never worse than the normal LP: both are deadlock-free
        plans.insert(0, _plan(stretched(graph), None, mode))
    depths, starts, delays, bound, lp_seconds = min(plans, key=lambda plan: graph.bits(plan[0]))
    return Sizing(
        "lp" if mode == "normal" else mode,
        depths,
        time.perf_counter() - t0,
        graph.bits(depths),
        makespan_bound=bound,
        starts=starts,
        delays=delays,
        lp_seconds=sum(plan[4] for plan in plans),
        **common,
    )


def _plan(graph: Graph, run: TimedResult | None, mode: str) -> tuple[dict[str, int], dict[str, int], dict[str, int], int, float]:
    """Depths, starts and delays of the LP schedule of `graph`, its makespan and CBC's time."""
    run = latest_sources(graph, simulate_unbounded(graph)) if run is None else run
    shift, lp_seconds = _solve(graph, run, mode)
    depths, starts, delays = _depths(graph, run, shift)
    asap = _depths(graph, run, dict.fromkeys(shift, 0))
    if graph.bits(asap[0]) < graph.bits(depths):  # the bits objective is a linear surrogate
        depths, starts, delays = asap
    assert run.makespan is not None
    return depths, starts, delays, run.makespan, lp_seconds


def _lags(graph: Graph, run: TimedResult) -> np.ndarray:
    lam = graph.read_latency
    return np.array([int(np.max(run.write_times[e.name] + lam - run.read_times[e.name]))
                     if len(run.write_times[e.name]) else 0 for e in graph.edges])  # 0: no tokens (`_solve` leaves it out)


def _weights(graph: Graph, run: TimedResult) -> np.ndarray:
    """Bits per cycle of delay: token bits times the edge's rate (tokens per cycle of the slower side)."""
    out = []
    for e in graph.edges:
        w, r = run.write_times[e.name], run.read_times[e.name]
        if not len(w):  # a stream of run-time length 0
            out.append(0.0)
            continue
        span = max(int(w[-1] - w[0]), int(r[-1] - r[0]), len(w))
        out.append(e.token_bits * len(w) / span)
    return np.array(out)


def _solve(graph: Graph, run: TimedResult, mode: str) -> tuple[dict[str, int], float]:
    """The LP over shifts x_v >= 0 of the achieved schedule; returns x per task."""
    names = list(graph.tasks)
    index = {n: i for i, n in enumerate(names)}
    src = np.array([index[e.src] for e in graph.edges], dtype=np.int64)
    dst = np.array([index[e.dst] for e in graph.edges], dtype=np.int64)
    lags, weights = _lags(graph, run), _weights(graph, run)
    cost = np.zeros(len(names))
    np.add.at(cost, dst, weights)
    np.add.at(cost, src, -weights)
    # a stream without tokens in this run holds no reader back: no lag constrains its ends
    live = [k for k, e in enumerate(graph.edges) if e.fixed or len(run.write_times[e.name])]
    edges, src, dst, lags = [graph.edges[k] for k in live], src[live], dst[live], lags[live]
    assert run.makespan is not None
    model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
    model.verbose = 0
    x = [model.add_var(lb=0.0, ub=float(run.makespan - run.finish[n])) for n in names]
    for e, i, j, lag in zip(edges, src.tolist(), dst.tolist(), lags.tolist()):
        # an internal link (an SLR crossing's register pipeline) has a fixed depth: its ends keep the run's relative timing
        sense, lag = (mip.EQUAL, 0) if e.fixed else (mip.GREATER_OR_EQUAL, lag)
        model.add_constr(mip.LinExpr([x[j], x[i]], [1.0, -1.0], -float(lag), sense))
    model.objective = mip.LinExpr([x[v] for v in np.flatnonzero(cost)], cost[cost != 0].tolist())
    t0 = time.perf_counter()
    status = model.optimize()
    seconds = time.perf_counter() - t0
    if status != mip.OptimizationStatus.OPTIMAL:
        raise FifoSizingError(f"fifo sizing ({mode}): CBC returned {status.name} for {len(names)} tasks")
    shift = np.rint([v.x for v in x]).astype(np.int64)
    return _repair(names, src, dst, lags, shift), seconds


def _repair(names: list[str], src: np.ndarray, dst: np.ndarray, lags: np.ndarray, shift: np.ndarray) -> dict[str, int]:
    """Rounding cannot break an integral vertex, but be safe: push late any start a lag violates,
    edge by edge until none is (Bellman-Ford: a feedback cycle's lags add up to at most 0)."""
    for _ in range(len(names) + 1):
        late = shift[src] + lags
        if np.all(shift[dst] >= late):
            break
        np.maximum.at(shift, dst, late)
    return dict(zip(names, shift.tolist()))


def _depths(graph: Graph, run: TimedResult, shift: dict[str, int]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    mu = graph.free_latency
    starts = {n: run.start[n] + shift[n] for n in graph.tasks}
    depths, delays = {}, {}
    for e in graph.fifos:
        delta = shift[e.dst] - shift[e.src]
        depths[e.name] = max(1, slots_needed(run.write_times[e.name], run.read_times[e.name] + delta, mu))
        delays[e.name] = starts[e.dst] - starts[e.src]
    return depths, starts, delays


def stretched(graph: Graph) -> Graph:
    """Conservative mode's model: every task's schedule slowed to the slowest task's latency."""
    slowest = max((int(t.latency or 1) for t in graph.tasks.values()), default=1)
    out = Graph(graph.read_latency, graph.free_latency)
    for t in graph.tasks.values():
        lat = max(1, int(t.latency or 1))

        def scale(times: np.ndarray, lat: int = lat) -> np.ndarray:
            return -(-times * slowest // lat)  # ceil keeps every gap at least as long as before

        reads = {p: scale(s) for p, s in t.reads.items()}
        writes = {p: scale(s) for p, s in t.writes.items()}
        out.add_task(Task(t.name, reads, writes, latency=int(scale(np.array([lat]))[0])))
    for e in graph.edges:
        out.connect(e.src, e.src_port, e.dst, e.dst_port, e.token_bits, name=e.name, fixed_depth=(e.depth or 0) if e.fixed else None)
    return out


# ---------------------------------------------------------------------------------------------
# min-bits: the fewest FIFO bits at which the timed makespan stays that of infinite FIFOs
# ---------------------------------------------------------------------------------------------


class _Judge:
    """Runs the timed simulator on depth vectors within an event budget: `ok(depths)` is True
    when the run finishes by `target` (no deadlock)."""

    def __init__(self, graph: Graph, target: int, budget: int = SEARCH_EVENTS) -> None:
        self.graph, self.target = graph, target
        self.cost = max(1, graph.compiled.num_events)
        self.left = budget if budget >= 3 * self.cost else 0  # a search of one or two runs finds nothing
        self.runs = 0
        self.makespan: int | None = None  # of the last run that reached the target

    def affordable(self) -> bool:
        return self.left >= self.cost

    def ok(self, depths: dict[str, int]) -> bool:
        self.left -= self.cost
        self.runs += 1
        run = simulate_timed(self.graph, depths)
        if run.deadlock is None and run.makespan is not None and run.makespan <= self.target:
            self.makespan = run.makespan
            return True
        return False


def _proven(graph: Graph, achieved: TimedResult, lp: tuple) -> list[dict[str, int]]:
    """Depths that reach the makespan of `achieved` by construction: the LP's and its peaks."""
    return [lp[0], {e.name: max(1, achieved.peak_occupancy[e.name]) for e in graph.fifos}]


def _min_bits(graph: Graph, achieved: TimedResult, slack: float, t0: float, common: dict[str, int],
              lp: tuple | None = None) -> Sizing:
    """Start from the cheapest depth vector known to reach the target makespan (the LP's and the
    achieved run's peak occupancy, sources as late as they may run, by construction; conservative
    and depth 2 when the simulator confirms them, their per-edge minimum when it does), then shrink
    FIFOs one by one, most bits first, by bisection on the simulator's verdict (makespan is
    monotone in every depth)."""
    assert achieved.makespan is not None
    target = int(achieved.makespan * (1 + slack))
    judge = _Judge(graph, target)
    lp = _plan(graph, achieved, "lp") if lp is None else lp
    proven = _proven(graph, achieved, lp)
    trial = [dict.fromkeys(lp[0], DEFAULT_DEPTH)] if judge.affordable() else []  # only the simulator may confirm these
    if trial and len(graph.tasks) <= CONSERVATIVE_TASKS:
        trial.insert(0, _plan(stretched(graph), None, "conservative")[0])
    if trial:
        trial.append({name: min(c[name] for c in proven + trial) for name in lp[0]})
    best = min(proven, key=graph.bits)
    in_program_order = any(t.order is not None for t in graph.tasks.values())
    if in_program_order and judge.affordable() and not judge.ok(best):  # the LP's proof assumes time order
        best = proven[1]  # the achieved run itself
    for depths in trial:
        if graph.bits(depths) < graph.bits(best) and judge.affordable() and judge.ok(depths):
            best = depths
    best = dict(best)
    for e in sorted(graph.fifos, key=lambda e: (-best[e.name] * e.token_bits, e.name)):
        lo, hi = 1, best[e.name]  # hi reaches the target
        while lo < hi and judge.affordable():
            mid = lo if hi - lo <= 2 else (lo + hi) // 2  # try the floor first: most FIFOs end at 1 or 2
            if judge.ok({**best, e.name: mid}):
                hi = mid
            else:
                lo = mid + 1
        best[e.name] = hi
    return Sizing(
        "min-bits",
        best,
        time.perf_counter() - t0,
        graph.bits(best),
        makespan_bound=target,
        starts=lp[1],
        lp_seconds=lp[4],
        simulations=judge.runs,
        makespan=judge.makespan if judge.makespan is not None else achieved.makespan,
        **common,
    )


def _within_budget(graph: Graph, unbounded: TimedResult, fits: Callable[[Mapping[str, int]], bool], slack: float,
                   t0: float, common: dict[str, int]) -> Sizing | None:
    """min-bits when the unbounded makespan needs more on-chip memory than there is.

    Infinite FIFOs let every DMA stream from cycle 0: a weight read while earlier tasks still run
    is parked whole in its FIFO. Hardware keeps only what the FIFO holds and then blocks the DMA.
    So the FIFOs out of the sources (`streamdsl.sim.timed.sources`) are limited to `P` tokens,
    the rest unbounded, and that run (the timed simulator's, with its own makespan) is the target; `P` is
    the largest of 2, 3, 4, 6, 8, 11, ... (a factor sqrt(2) apart) whose run's peak occupancies
    fit, by bisection (more prefetch: a shorter run, more memory), else 2. None when the graph has
    no such FIFO."""
    late = sources(graph)
    frontier = [e.name for e in graph.fifos if e.src in late]
    if not frontier:
        return None
    runs: dict[int, TimedResult] = {}

    def run(p: int) -> TimedResult:
        if p not in runs:
            unlimited = dict.fromkeys((e.name for e in graph.fifos), None)
            runs[p] = latest_sources(graph, simulate_timed(graph, {**unlimited, **dict.fromkeys(frontier, p)}))
        return runs[p]

    def fit(p: int) -> bool:  # the run's peaks are proven depths: a cheap test
        return fits({e.name: max(1, run(p).peak_occupancy[e.name]) for e in graph.fifos})

    most = max(unbounded.peak_occupancy[n] for n in frontier)
    steps = [DEFAULT_DEPTH]  # prefetch limits a factor sqrt(2) apart: a few runs of a large graph
    while steps[-1] < most:
        steps.append(max(steps[-1] + 1, round(steps[-1] * 2**0.5)))
    lo, hi = 0, len(steps) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fit(steps[mid]) else (lo, mid - 1)
    sizing = _min_bits(graph, run(steps[lo]), slack, t0, common)
    sizing.prefetch, sizing.unbounded_makespan = steps[lo], unbounded.makespan
    sizing.prefetch_depths = dict.fromkeys(frontier, steps[lo])
    return sizing


@dataclass(frozen=True)
class TradeoffPoint:
    slack: float
    makespan: int
    total_bits: int
    seconds: float


def tradeoff(graph: Graph, slacks: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0),
             bit_budget: int | None = None) -> list[TradeoffPoint]:
    """The makespan/memory curve: min-bits at each makespan slack (fewer bits for a longer run).
    With `bit_budget`, the points that fit it (the first is the fastest design within budget)."""
    points = []
    for slack in slacks:
        sizing = size_fifos(graph, "min-bits", slack=slack)
        run = simulate_timed(graph, sizing.depths)
        assert run.makespan is not None, "min-bits only accepts depth vectors that finish"
        points.append(TradeoffPoint(slack, run.makespan, sizing.total_bits, sizing.seconds))
    return [p for p in points if bit_budget is None or p.total_bits <= bit_budget]
