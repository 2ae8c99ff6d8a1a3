"""A dataflow graph for timing analysis: tasks with static per-port token schedules, FIFO edges.

The model is IR-free; FIFO sizing (`lowering/fifo_sizing.py`) and the timed simulator
(`streamdsl/sim/timed.py`) work on it, and `streamdsl.wiring.graph_from_kernel` builds one from a
`dataflow.kernel` with a pluggable timing model (the U55C one is `lowering/timing.py`).

A task's schedule is the cycle, counted from the task's start, at which it reads or writes each
token of each port when no FIFO ever blocks it. Under blocking every later event of the task
shifts by the stall (an HLS pipeline stalls as a whole). FIFO rules, with `read_latency` and
`free_latency` from the timing model: token k can be read `read_latency` cycles after it was
written; with depth d, token k can be written `free_latency` cycles after token k - d was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from streamdsl.errors import StreamdslError
from streamdsl.itensor import BEAT_BITS

__all__ = ["MAX_TIMED_TOKENS", "CompiledGraph", "Edge", "Graph", "GraphError", "Task", "slots_needed"]


class GraphError(StreamdslError, ValueError):
    """The graph is malformed (a dangling port, token counts that disagree, a cycle)."""


def _schedule(name: str, times: Iterable[int]) -> np.ndarray:
    arr = np.asarray(times, dtype=np.int64).reshape(-1)
    if arr.size and (arr[0] < 0 or np.any(np.diff(arr) < 0)):
        raise GraphError(f"{name}: token times must be >= 0 and non-decreasing, got {arr[:8].tolist()}...")
    return arr


@dataclass
class Task:
    """A hardware process. `reads` / `writes` map a port name to the nominal cycle of each token."""

    name: str
    reads: dict[str, np.ndarray] = field(default_factory=dict)
    writes: dict[str, np.ndarray] = field(default_factory=dict)
    latency: int | None = None  # cycles from start to done; default: one after the last event
    # per port, the position of each access in the order the task performs them (program order);
    # None: time order, writes before reads at the same cycle
    order: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.reads = {p: _schedule(f"task {self.name} read port {p}", t) for p, t in self.reads.items()}
        self.writes = {p: _schedule(f"task {self.name} write port {p}", t) for p, t in self.writes.items()}
        if set(self.reads) & set(self.writes):
            raise GraphError(f"task {self.name}: ports {sorted(set(self.reads) & set(self.writes))} both read and written")
        if self.order is not None:
            self.order = {p: np.asarray(self.order[p], np.int64) for p in (*self.reads, *self.writes)}
            ranks = np.concatenate([*self.order.values(), np.zeros(0, np.int64)])
            if any(len(r) != len(t) for r, t in zip(self.order.values(), (*self.reads.values(), *self.writes.values()))) or (
                np.unique(ranks).size != ranks.size
            ):
                raise GraphError(f"task {self.name}: `order` must give every access of every port a distinct position")
        last = self.last_event
        if self.latency is None:
            self.latency = last + 1
        elif self.latency < last:
            raise GraphError(f"task {self.name}: latency {self.latency} ends before its last token event at {last}")

    @property
    def last_event(self) -> int:
        return max((int(t[-1]) for t in (*self.reads.values(), *self.writes.values()) if t.size), default=0)

    @property
    def delay(self) -> int:
        """D: cycles to the first output token (the latency for a sink)."""
        firsts = [int(t[0]) for t in self.writes.values() if t.size]
        return min(firsts) if firsts else int(self.latency or 0)

    @property
    def ii(self) -> float:
        """II: mean cycles between consecutive tokens of the busiest port."""
        ports = [t for t in (*self.writes.values(), *self.reads.values()) if t.size > 1]
        if not ports:
            return 1.0
        busiest = max(ports, key=len)
        return max(1.0, float(busiest[-1] - busiest[0]) / (len(busiest) - 1))

    @classmethod
    def pipelined(
        cls,
        name: str,
        *,
        ii: int,
        depth: int,
        reads: Mapping[str, int] | None = None,
        writes: Mapping[str, int] | None = None,
    ) -> Task:
        """A pipelined loop of N = max tokens iterations at `ii`; a port with T tokens is read at
        the start of each of its T groups of iterations and written `depth` cycles after the end of
        each group (a reduction writes after its row, a broadcast reads once per group)."""
        reads, writes = dict(reads or {}), dict(writes or {})
        n = max([*reads.values(), *writes.values(), 1])
        out: dict[str, dict[str, np.ndarray]] = {"r": {}, "w": {}}
        for port, tokens in reads.items():
            out["r"][port] = (np.arange(tokens, dtype=np.int64) * n // tokens) * ii
        for port, tokens in writes.items():
            last_iter = -(-(np.arange(1, tokens + 1, dtype=np.int64) * n) // tokens) - 1
            out["w"][port] = last_iter * ii + depth
        return cls(name, out["r"], out["w"], latency=(n - 1) * ii + depth + 1)


@dataclass
class Edge:
    """A FIFO from `src.src_port` to `dst.dst_port`; `depth` None means unsized."""

    name: str
    src: str
    src_port: str
    dst: str
    dst_port: str
    token_bits: int
    depth: int | None = None
    fixed: bool = False  # an internal link (an SLR crossing's register pipeline, lowering/slr.py): not a FIFO to size
    tensor_tokens: int | None = None  # distinct tiles of the tensor it carries (tokens less replays)
    beats: int = 1  # stream beats per token (`itensor.beats`): the emitted FIFO holds depth x beats words
    word_bits: int = 0  # a beat's bits (`itensor.beat_bits`); 0: the token's, up to BEAT_BITS

    @property
    def word(self) -> int:
        """The bits of one FIFO word: a beat."""
        return self.word_bits or min(self.token_bits, BEAT_BITS)


class Graph:
    """Tasks and FIFO edges. `read_latency` / `free_latency` are the FIFO rules (module doc)."""

    def __init__(self, read_latency: int = 1, free_latency: int = 1) -> None:
        if read_latency < 0 or free_latency < 1:
            raise GraphError(f"FIFO latencies must be read >= 0 and free >= 1, got {read_latency}, {free_latency}")
        self.read_latency, self.free_latency = read_latency, free_latency
        self.tasks: dict[str, Task] = {}
        self.edges: list[Edge] = []
        # bits of every intermediate tensor (written by one node, read by another, not through a
        # DMA), once per tensor however often it is forked: the tensor-deep baseline
        self.intermediate_bits: dict[str, int] = {}

    # -- building ------------------------------------------------------------------------------

    def add_task(self, task: Task) -> Task:
        if task.name in self.tasks:
            raise GraphError(f"duplicate task name {task.name!r}")
        self.tasks[task.name] = task
        self.__dict__.pop("compiled", None)
        return task

    def connect(
        self, src: str, src_port: str, dst: str, dst_port: str, token_bits: int, name: str | None = None, *, fixed_depth: int | None = None
    ) -> Edge:
        """A FIFO; `fixed_depth` makes it an internal link of that depth (0 = unbounded) that sizing leaves alone."""
        name = name or f"{src}.{src_port}->{dst}.{dst_port}"
        if fixed_depth is None:
            edge = Edge(name, src, src_port, dst, dst_port, token_bits)
        else:
            edge = Edge(name, src, src_port, dst, dst_port, token_bits, fixed_depth or None, fixed=True)
        self.edges.append(edge)
        self.__dict__.pop("compiled", None)
        return edge

    # -- queries -------------------------------------------------------------------------------

    def edge(self, name: str) -> Edge:
        for e in self.edges:
            if e.name == name:
                return e
        raise KeyError(f"no edge named {name!r}; edges: {[e.name for e in self.edges][:10]}")

    def tokens(self, edge: Edge) -> int:
        return len(self.tasks[edge.src].writes[edge.src_port])

    def produced(self, edge: Edge) -> np.ndarray:
        return self.tasks[edge.src].writes[edge.src_port]

    def consumed(self, edge: Edge) -> np.ndarray:
        return self.tasks[edge.dst].reads[edge.dst_port]

    @property
    def fifos(self) -> list[Edge]:
        """The edges FIFO sizing decides (every edge but the internal links)."""
        return [e for e in self.edges if not e.fixed]

    def depths(self) -> dict[str, int | None]:
        return {e.name: e.depth for e in self.fifos}

    def set_depths(self, depths: Mapping[str, int]) -> None:
        for e in self.edges:
            if e.name in depths:
                e.depth = int(depths[e.name])

    def bits(self, depths: Mapping[str, int | None] | None = None) -> int:
        """Total FIFO memory in bits for `depths` (default: the edges' own)."""
        depths = self.depths() if depths is None else depths
        return sum(int(depths[e.name] or 0) * e.token_bits for e in self.fifos)

    def naive_depths(self) -> dict[str, int]:
        """As deep as the tensor: every tile of the tensor fits (replays are not stored twice; an
        edge built without a tensor counts its tokens)."""
        return {e.name: max(1, e.tensor_tokens or self.tokens(e)) for e in self.fifos}

    def validate(self) -> Graph:
        names = [e.name for e in self.edges]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise GraphError(f"duplicate edge names {dup}")
        used: set[tuple[str, str]] = set()
        for e in self.edges:
            for task, port, side in ((e.src, e.src_port, "writes"), (e.dst, e.dst_port, "reads")):
                if task not in self.tasks:
                    raise GraphError(f"edge {e.name}: no task named {task!r}")
                if port not in getattr(self.tasks[task], side):
                    raise GraphError(f"edge {e.name}: task {task} has no port {port!r} that {side} tokens")
                if (task, port) in used:
                    raise GraphError(f"edge {e.name}: port {task}.{port} is already connected (one FIFO per port)")
                used.add((task, port))
            # an edge may carry no tokens: a stream whose run-time length is 0 in this invocation
            if len(self.produced(e)) != len(self.consumed(e)):
                raise GraphError(
                    f"edge {e.name}: {e.src} writes {len(self.produced(e))} tokens but {e.dst} reads "
                    f"{len(self.consumed(e))}; the port schedules must agree"
                )
        for task in self.tasks.values():
            for side in ("reads", "writes"):
                for port in getattr(task, side):
                    if (task.name, port) not in used:
                        raise GraphError(f"task {task.name}: port {port!r} ({side}) is not connected to any edge")
        return self

    def topological_order(self) -> list[str] | None:
        """Task names, producers first; None when a feedback stream closes a cycle."""
        succ: dict[str, list[str]] = {t: [] for t in self.tasks}
        indeg = dict.fromkeys(self.tasks, 0)
        for e in self.edges:
            succ[e.src].append(e.dst)
            indeg[e.dst] += 1
        order = [t for t, d in indeg.items() if d == 0]
        for t in order:  # the list grows while we walk it
            for s in succ[t]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    order.append(s)
        return order if len(order) == len(self.tasks) else None

    @cached_property
    def compiled(self) -> CompiledGraph:
        return CompiledGraph(self)

    def __repr__(self) -> str:
        return f"Graph({len(self.tasks)} tasks, {len(self.edges)} edges)"


class CompiledGraph:
    """Index form for the simulators: per task, its events merged in time order (writes before
    reads at the same cycle, ports in token order), each naming its edge by index."""

    def __init__(self, graph: Graph) -> None:
        graph.validate()
        self.graph = graph
        self.task_names = list(graph.tasks)
        self.task_index = {n: i for i, n in enumerate(self.task_names)}
        self.edge_index = {e.name: i for i, e in enumerate(graph.edges)}
        self.src = [self.task_index[e.src] for e in graph.edges]
        self.dst = [self.task_index[e.dst] for e in graph.edges]
        self.tokens = [graph.tokens(e) for e in graph.edges]
        port_edge = {(e.src, e.src_port): i for i, e in enumerate(graph.edges)}
        port_edge |= {(e.dst, e.dst_port): i for i, e in enumerate(graph.edges)}
        self.times: list[np.ndarray] = []
        self.ev_edge: list[np.ndarray] = []
        self.ev_write: list[np.ndarray] = []
        self.read_idx: list[dict[int, np.ndarray]] = []
        self.write_idx: list[dict[int, np.ndarray]] = []
        self.latency = [int(graph.tasks[n].latency or 0) for n in self.task_names]
        for name in self.task_names:
            self._merge(graph.tasks[name], port_edge)
        order = graph.topological_order()
        self.order = None if order is None else [self.task_index[n] for n in order]  # None: the graph has a cycle

    @cached_property
    def event_lists(self) -> list[list[tuple[int, int, bool]]]:
        """Per task, its events as (cycles after the previous event, edge index, is a write)."""
        return [list(zip(np.diff(t, prepend=0).tolist(), e.tolist(), w.tolist()))
                for t, e, w in zip(self.times, self.ev_edge, self.ev_write)]

    @property
    def num_events(self) -> int:
        return sum(len(t) for t in self.times)

    def _merge(self, task: Task, port_edge: Mapping[tuple[str, str], int]) -> None:
        ports = [(True, p, t) for p, t in task.writes.items()] + [(False, p, t) for p, t in task.reads.items()]
        times = np.concatenate([t for _, _, t in ports]) if ports else np.zeros(0, np.int64)
        edges = np.concatenate([np.full(len(t), port_edge[task.name, p], np.int64) for _, p, t in ports]) if ports else times
        writes = np.concatenate([np.full(len(t), w) for w, _, t in ports]) if ports else times.astype(bool)
        if task.order is not None and ports:
            order = np.argsort(np.concatenate([task.order[p] for _, p, _ in ports]), kind="stable")
        else:
            order = np.lexsort((~writes, times)) if times.size else times
        self.times.append(times[order])
        self.ev_edge.append(edges[order])
        self.ev_write.append(writes[order])
        self.read_idx.append({})
        self.write_idx.append({})
        for is_w, port, _ in ports:
            e = port_edge[task.name, port]
            (self.write_idx if is_w else self.read_idx)[-1][e] = np.flatnonzero(self.ev_edge[-1] == e)


# The timing model lists the cycle of every token of every stream (8 bytes each, several arrays):
# a kernel may have at most this many stream tokens in all (docs/ir.md, "Checks and limits").
MAX_TIMED_TOKENS = 2**24


def slots_needed(wt: np.ndarray, rt: np.ndarray, mu: int) -> int:
    """Peak slots in use (max over writes of tokens written minus slots freed, a slot being free
    `mu` = `free_latency` cycles after its read): the smallest depth that lets writes at `wt` and
    reads at `rt` happen unchanged."""
    if not wt.size:
        return 0
    freed = np.searchsorted(rt + mu, wt, side="right")
    return int(np.max(np.arange(1, wt.size + 1) - freed))
