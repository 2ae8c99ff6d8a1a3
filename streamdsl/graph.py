"""A dataflow graph for timing analysis: tasks with static per-port token schedules, FIFO edges.

The model is IR-independent; FIFO sizing (`lowering/fifo_sizing.py`) and the timed simulator
(`streamdsl/sim/timed.py`) work on it, and `graph_from_kernel` builds one from a `dataflow.kernel`
with a pluggable timing model (the U55C one is `lowering/timing.py`).

A task's schedule is the cycle, counted from the task's start, at which it reads or writes each
token of each port when no FIFO ever blocks it. Under blocking every later event of the task
shifts by the stall (an HLS pipeline stalls as a whole). FIFO rules, with `read_latency` and
`free_latency` from the timing model: token k can be read `read_latency` cycles after it was
written; with depth d, token k can be written `free_latency` cycles after token k - d was read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
from xdsl.dialects.builtin import ShapedType

from streamdsl.dtypes import dtype_from_ir
from streamdsl.errors import LimitError, StreamdslError

if TYPE_CHECKING:
    from xdsl.ir import Operation, SSAValue

    from streamdsl.dialects.dataflow import KernelOp

__all__ = [
    "Edge", "Graph", "GraphError", "MAX_TIMED_TOKENS", "NodeSchedule", "Task", "TimingModel", "Wire",
    "check_pass_through", "drain_name", "graph_from_kernel", "node_of",
    "kernel_nodes", "node_name", "stream_root", "value_label", "value_name", "wire_kernel",
]  # fmt: skip


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
    fixed: bool = False  # an internal link of a node (a converter's bank): not a FIFO to size
    tensor_tokens: int | None = None  # distinct tiles of the tensor it carries (tokens less replays)


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
        """The edges FIFO sizing decides (every edge but the nodes' internal links)."""
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
            if not len(self.produced(e)):
                raise GraphError(f"edge {e.name}: carries no tokens; drop it")
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
        self.topological_order()
        return self

    def topological_order(self) -> list[str]:
        """Task names, producers first; raises GraphError naming a cycle."""
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
        if len(order) != len(self.tasks):
            stuck = [t for t, d in indeg.items() if d > 0]
            raise GraphError(f"the graph has a cycle through tasks {stuck[:8]}; FIFO sizing needs a DAG")
        return order

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
        self.order = [self.task_index[n] for n in graph.topological_order()]

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


# ---------------------------------------------------------------------------------------------
# From the IR
# ---------------------------------------------------------------------------------------------


@dataclass
class NodeSchedule:
    """What a timing model says about one node of a kernel: the nominal cycle of each token it
    reads from / writes to each SSA stream value, and its latency."""

    reads: dict[SSAValue, np.ndarray]
    writes: dict[SSAValue, np.ndarray]
    latency: int | None = None
    order: dict[SSAValue, np.ndarray] | None = None  # program order of the accesses (see Task.order)
    # a node of two processes (a converter's filling and draining sides): this schedule is the
    # first, `drain` the second, `links` the internal FIFOs from the first to the second (named
    # ports on both sides) with their fixed depth (0 = unbounded)
    drain: NodeSchedule | None = None
    links: dict[str, int] = field(default_factory=dict)

    def streams(self, side: str) -> list[SSAValue]:
        """The stream values the node reads (`side="reads"`) or writes, both processes."""
        parts = [self, self.drain] if self.drain is not None else [self]
        return [v for part in parts for v in getattr(part, side) if not isinstance(v, str)]


class TimingModel(Protocol):
    read_latency: int
    free_latency: int

    def schedule(self, op: Operation) -> NodeSchedule: ...


_PASS_THROUGH = ("dataflow.itensor_cast",)
_NOT_NODES = ("dataflow.itensor_empty", "dataflow.yield", "dataflow.stream")


def value_label(value: SSAValue) -> str:
    """A stream's short name inside node names: its SSA name, its task's name, or its index."""
    if value.name_hint:
        return value.name_hint
    owner = value.owner
    sym = owner.properties.get("sym_name") if hasattr(owner, "properties") else None
    return sym.data if sym is not None else str(getattr(value, "index", "?"))  # type: ignore[attr-defined]


def node_name(op: Operation) -> str:
    """Names as the functional simulator gives them: a task's `sym_name`, else `kind(sources)`
    such as `dma_load(x)` or `fork(matvec)` (made unique with `#2`, `#3`, ...)."""
    if (sym := op.properties.get("sym_name")) is not None:
        return sym.data  # type: ignore[attr-defined]
    kind = op.name.removeprefix("dataflow.").removeprefix("itensor_")
    sources = op.operands if op.name in ("dataflow.itensor_join", "dataflow.itensor_concat") else op.operands[:1]
    return f"{kind}({', '.join(value_label(v) for v in sources)})"


def stream_root(value: SSAValue) -> SSAValue:
    """The SSA value a FIFO is attached to: casts pass streams through unchanged."""
    while (owner := getattr(value, "owner", None)) is not None and getattr(owner, "name", "") in _PASS_THROUGH:
        value = owner.operands[0]
    return value


@dataclass(frozen=True)
class Wire:
    """One FIFO of a kernel: its name, the value written, and the node and op at each end."""

    name: str
    value: SSAValue  # as written by the producer
    producer: str
    producer_op: Operation
    consumer: str
    consumer_op: Operation
    read: SSAValue  # as the consumer reads it (maybe through casts)


def check_pass_through(op: Operation) -> None:
    """A cast is no process: its consumer reads the source FIFO as it is, which is right only if
    both types stream the same tiles in the same order. Every backend calls this."""
    source, result = op.operands[0].type, op.results[0].type
    if source.itensor != result.itensor:  # type: ignore[attr-defined]
        raise GraphError(
            f"{op.name} from {source} to {result} reorders the stream, and backends pass tokens through a cast "
            "unchanged; insert a converter (the insert-converters pass, `streamdsl-opt -p insert-converters`) "
            "or cast only between equal itensor types"
        )


def kernel_nodes(kernel: KernelOp) -> list[tuple[Operation, str]]:
    """The ops that become processes (not casts, empties, yields), with unique names, in IR order."""
    seen: dict[str, int] = {}
    nodes = []
    for op in kernel.body.block.ops:
        if op.name in _PASS_THROUGH:
            check_pass_through(op)
        if op.name in _NOT_NODES or op.name in _PASS_THROUGH:
            continue
        name = node_name(op)
        seen[name] = seen.get(name, 0) + 1
        nodes.append((op, name if seen[name] == 1 else f"{name}#{seen[name]}"))
    return nodes


def wire_kernel(
    nodes: Sequence[tuple[Operation, str]],
    reads: Callable[[Operation], Iterable[SSAValue]],
    writes: Callable[[Operation], Iterable[SSAValue]],
) -> list[Wire]:
    """Connect every stream a node writes to the one node that reads it, in IR order; names are
    the SSA name or `producer->consumer`, made unique with `#2`, `#3`, ..."""
    producers: dict[SSAValue, tuple[str, Operation]] = {}
    consumers: dict[SSAValue, tuple[str, Operation, SSAValue]] = {}
    for op, name in nodes:
        for value in writes(op):
            producers[value] = (name, op)
        for value in reads(op):
            root = stream_root(value)
            if root in consumers:
                raise GraphError(f"stream {value_name(root)} is read by {consumers[root][0]} and {name}; fork it first")
            consumers[root] = (name, op, value)
    wires: dict[str, Wire] = {}
    for value, (src, src_op) in producers.items():
        if value not in consumers:
            raise GraphError(f"stream {value_name(value)} written by {src} is never read")
        dst, dst_op, read = consumers[value]
        name = _unique(value.name_hint or f"{src}->{dst}", wires)
        wires[name] = Wire(name, value, src, src_op, dst, dst_op, read)
    for value, (dst, _, _) in consumers.items():
        if value not in producers:
            raise GraphError(f"stream {value_name(value)} read by {dst} has no producer in the kernel")
    return list(wires.values())


def graph_from_kernel(kernel: KernelOp, timing: TimingModel) -> tuple[Graph, dict[str, SSAValue]]:
    """The graph of a `dataflow.kernel` (itensor or stream level, docs/ir.md): one task per node
    (task, DMA, fork, join, chunk, concat, reassociate, converter), one edge per stream value;
    casts are not nodes. Returns the graph and, per edge name, the SSA value of its FIFO."""
    graph = Graph(timing.read_latency, timing.free_latency)
    nodes = kernel_nodes(kernel)
    _check_event_budget(kernel)
    schedules = {op: timing.schedule(op) for op, _ in nodes}
    wires = wire_kernel(nodes, lambda op: schedules[op].streams("reads"), lambda op: schedules[op].streams("writes"))
    for op, name in nodes:
        sched = schedules[op]
        graph.add_task(_task(name, op, sched))
        if sched.drain is not None:
            graph.add_task(_task(drain_name(name), op, sched.drain))
            for link, depth in sched.links.items():
                graph.connect(name, link, drain_name(name), link, 0, name=f"{name}.{link}", fixed_depth=depth)
    for wire in wires:
        src_port, dst_port = _port(wire.producer_op, wire.value), _port(wire.consumer_op, wire.read)
        drain = schedules[wire.producer_op].drain
        src = drain_name(wire.producer) if drain is not None and wire.value in drain.writes else wire.producer
        edge = graph.connect(src, src_port, wire.consumer, dst_port, _token_bits(wire.value), name=wire.name)
        edge.tensor_tokens = _tensor_tiles(wire.value)
        if wire.producer_op.name != "dataflow.dma_load" and wire.consumer_op.name != "dataflow.dma_store":
            root = _unforked(wire.value)
            graph.intermediate_bits[value_name(root) + f"@{id(root)}"] = _tensor_bits(root)
    return graph.validate(), {wire.name: wire.value for wire in wires}


def _unforked(value: SSAValue) -> SSAValue:
    """The value a fork output copies (through forks and casts)."""
    value = stream_root(value)
    while getattr(value.owner, "name", None) == "dataflow.itensor_fork":
        value = stream_root(value.owner.operands[0])  # type: ignore[union-attr]
    return value


def _itensor_of(value: SSAValue):  # noqa: ANN202 - an itensor or None
    from streamdsl.dialects.dataflow import ITensorType, StreamOp

    if isinstance(value.type, ITensorType):
        return value.type.itensor
    owner = value.owner
    return owner.layout.itensor if isinstance(owner, StreamOp) and owner.layout is not None else None


def _tensor_tiles(value: SSAValue) -> int | None:
    it = _itensor_of(value)
    return None if it is None else math.prod(-(-s // t) for s, t in zip(it.shape, it.tile))


def _tensor_bits(value: SSAValue) -> int:
    it = _itensor_of(value)
    return 0 if it is None else it.num_elements * it.dtype.bits


def drain_name(node: str) -> str:
    """The task of a two-process node (a converter) that writes its output."""
    return f"{node}.drain"


def node_of(task: str) -> str:
    """The kernel node a task belongs to (a converter's draining task belongs to the converter)."""
    return task.removesuffix(".drain")


def _task(name: str, op: Operation, sched: NodeSchedule) -> Task:
    reads = {_port(op, v): t for v, t in sched.reads.items()}
    writes = {_port(op, v): t for v, t in sched.writes.items()}
    order = None if sched.order is None else {_port(op, v): r for v, r in sched.order.items()}
    return Task(name, reads, writes, sched.latency, order)


# The timing model lists the cycle of every token of every stream (8 bytes each, several arrays):
# a kernel may have at most this many stream tokens in all (docs/ir.md, "Checks and limits").
MAX_TIMED_TOKENS = 2**24


def _check_event_budget(kernel: KernelOp) -> None:
    streams = [(v, v.type.itensor.num_tokens) for op in kernel.body.block.ops for v in op.results
               if hasattr(v.type, "itensor")]
    if streams and sum(n for _, n in streams) > MAX_TIMED_TOKENS:
        value, tokens = max(streams, key=lambda vn: vn[1])
        raise LimitError(
            f"kernel @{kernel.sym_name.data}: its streams carry {sum(n for _, n in streams)} tokens in all, past the "
            f"timing model's limit of {MAX_TIMED_TOKENS} (2^24); the largest is {value_label(value)} with {tokens} "
            f"tokens of {value.type}. Use larger tiles or fewer reuse loops"
        )


def _port(op: Operation, value: SSAValue | str) -> str:
    """`out<i>` for the i-th result, `arg<i>` for the i-th operand (stream-level writes too); a
    node's internal link keeps its name."""
    if isinstance(value, str):
        return value
    if value in op.results:
        return f"out{op.results.index(value)}"
    return f"arg{list(op.operands).index(value)}"


def value_name(value: SSAValue) -> str:
    """A stream as error messages name it: `%x`, or its type when it has no SSA name."""
    return f"%{value.name_hint}" if value.name_hint else f"<{value.type}>"


def _unique(name: str, taken: Mapping[str, object]) -> str:
    return name if name not in taken else next(f"{name}#{i}" for i in range(2, len(taken) + 3) if f"{name}#{i}" not in taken)


def _token_bits(value: SSAValue) -> int:
    from streamdsl.dialects.dataflow import ITensorType, StreamOp, StreamType

    type_ = value.type
    if isinstance(type_, ITensorType):
        return type_.itensor.token_bits
    if isinstance(type_, StreamType):
        if isinstance(value.owner, StreamOp) and value.owner.layout is not None:
            return value.owner.layout.itensor.token_bits
        elem = type_.element_type
        shape = elem.get_shape() if isinstance(elem, ShapedType) else ()
        scalar = elem.get_element_type() if isinstance(elem, ShapedType) else elem
        return math.prod(shape) * dtype_from_ir(scalar).bits
    raise GraphError(f"value of type {type_} is not a stream")
