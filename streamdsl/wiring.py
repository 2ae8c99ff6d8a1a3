"""From a `dataflow.kernel` to its processes and FIFOs: the one wiring of the IR.

`kernel_nodes` names the ops that become processes, `stream_reads` / `stream_writes` say which
streams each of them reads and writes, `wire_kernel` connects every stream to its one producer and
one consumer (and names it), `stream_depth` reads the depth of its FIFO, and `graph_from_kernel`
builds the IR-free timing `Graph` (`streamdsl.graph`) from them with a pluggable timing model. The
functional simulator, the timing model and the HLS emitter all use these, so processes and
streams have the same names, ends and depths everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from xdsl.dialects.builtin import IntegerType, ShapedType
from xdsl.ir import BlockArgument, Operation, SSAValue

from streamdsl.dialects.dataflow import (
    DEFAULT_DEPTH,
    DmaLoadOp,
    DmaSequenceOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorEmptyOp,
    ITensorFeedbackConnectOp,
    ITensorFeedbackOp,
    ITensorForkOp,
    ITensorType,
    KernelOp,
    MergeOperation,
    OneToOneOperation,
    SplitOperation,
    StreamOp,
    StreamType,
    StreamWriteOp,
    TaskOp,
    YieldOp,
    fifo_depth,
    value_name,
)
from streamdsl.dtypes import dtype_from_ir
from streamdsl.errors import LimitError
from streamdsl.graph import MAX_TIMED_TOKENS, Graph, GraphError, Task
from streamdsl.itensor import itensor

__all__ = [
    "NodeSchedule", "TimingModel", "Wire", "check_depth_names", "graph_from_kernel",
    "kernel_nodes", "node_name", "node_task", "restream", "retime", "stream_depth", "stream_itensor", "stream_reads", "stream_root",
    "stream_writes", "task_ports", "value_label", "value_name", "wire_kernel",
]  # fmt: skip


@dataclass
class NodeSchedule:
    """What a timing model says about one node of a kernel: the nominal cycle of each token it
    reads from / writes to each SSA stream value, and its latency."""

    reads: dict[SSAValue, np.ndarray]
    writes: dict[SSAValue, np.ndarray]
    latency: int | None = None
    order: dict[SSAValue, np.ndarray] | None = None  # program order of the accesses (see Task.order)


class TimingModel(Protocol):
    read_latency: int
    free_latency: int

    def schedule(self, op: Operation) -> NodeSchedule: ...


# a cast passes its source's FIFO through; a feedback stream is the FIFO of the value connected to it
_NOT_NODES = (ITensorEmptyOp, YieldOp, StreamOp, ITensorCastOp, ITensorFeedbackOp, ITensorFeedbackConnectOp)


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
    sources = op.operands if isinstance(op, MergeOperation | DmaSequenceOp) else op.operands[:1]
    return f"{kind}({', '.join(value_label(v) for v in sources)})"


def stream_root(value: SSAValue) -> SSAValue:
    """The SSA value a FIFO is attached to: casts pass streams through unchanged, and a feedback
    stream is the one connected to it (itself while unconnected)."""
    while True:
        owner = value.owner
        if isinstance(owner, ITensorCastOp):
            value = owner.source
        elif isinstance(owner, ITensorFeedbackOp) and owner.source is not None:
            value = owner.source
        else:
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


def _check_pass_through(op: ITensorCastOp) -> None:
    """A cast is no process: its consumer reads the source FIFO as it is, which is right only if
    both types stream the same tiles in the same order (every backend wires with `kernel_nodes`)."""
    source, result = op.source.type, op.result.type
    if source.itensor != result.itensor:
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
        if isinstance(op, ITensorCastOp):
            _check_pass_through(op)
        if isinstance(op, _NOT_NODES):
            continue
        name = node_name(op)
        seen[name] = seen.get(name, 0) + 1
        nodes.append((op, name if seen[name] == 1 else f"{name}#{seen[name]}"))
    return nodes


def task_ports(task: TaskOp) -> list[tuple[BlockArgument, SSAValue, bool]]:
    """(block argument, the value it stands for, whether the task writes it) per port of a task.
    An `outs` port is written; at the stream level an input stream is written when the body
    `stream_write`s into it."""
    n_in = len(task.inputs)
    return [
        (arg, task.inputs[arg.index], any(isinstance(use.operation, StreamWriteOp) for use in arg.uses))
        if arg.index < n_in
        else (arg, task.outputs[arg.index - n_in], True)
        for arg in task.body.block.args
        if not isinstance(arg.type, IntegerType)  # a run-time scalar (docs/ir.md) is no port
    ]


def stream_reads(op: Operation) -> list[SSAValue]:
    """The streams a node reads, in operand order (`wire_kernel`'s `reads`)."""
    if isinstance(op, TaskOp):
        return [value for _, value, written in task_ports(op) if not written]
    if isinstance(op, DmaLoadOp | DmaSequenceOp):
        return []
    if isinstance(op, MergeOperation):
        return list(op.operands)
    if isinstance(op, DmaStoreOp | SplitOperation | OneToOneOperation):
        return [op.operands[0]]
    raise GraphError(f"`{op.name}` is not a process of a dataflow.kernel (docs/ir.md lists the ops a kernel holds)")


def stream_writes(op: Operation) -> list[SSAValue]:
    """The streams a node writes (`wire_kernel`'s `writes`): its itensor results, and the input
    streams a stream-level task writes into."""
    if isinstance(op, TaskOp):
        return [value for _, value, written in task_ports(op) if written]
    return [r for r in op.results if isinstance(r.type, ITensorType)]


def stream_depth(
    name: str, value: SSAValue, overrides: Mapping[str, int | None], default: int | None = DEFAULT_DEPTH
) -> int | None:
    """The depth of the FIFO `name` of stream `value`: `overrides[name]`, else the depth the IR
    stores for it (`fifo_depth`), else `default`; None is unbounded."""
    if name in overrides:
        depth = overrides[name]
    elif (depth := fifo_depth(value)) is None:
        depth = default
    if depth is not None and depth < 1:
        raise GraphError(f"stream {name}: depth must be >= 1, got {depth}")
    return depth


def check_depth_names(overrides: Mapping[str, object], names: Iterable[str]) -> None:
    """Every overridden depth names a stream (listed in wiring order otherwise)."""
    names = list(names)
    if unknown := sorted(set(overrides) - set(names)):
        raise GraphError(f"depths: there is no stream named {unknown[0]!r}; the streams are {', '.join(names)}")


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
                raise GraphError(
                    f"stream {value_name(root)} is read by {consumers[root][0]} and {name}; fork it first "
                    "(dataflow.itensor_fork gives each reader its own copy)"
                )
            consumers[root] = (name, op, value)
    wires: dict[str, Wire] = {}
    for value, (src, src_op) in producers.items():
        if value not in consumers:
            raise GraphError(
                f"stream {value_name(value)} written by {src} is never read; every stream needs one consumer "
                "(dma_store it, or remove it)"
            )
        dst, dst_op, read = consumers[value]
        name = _unique(value.name_hint or f"{src}->{dst}", wires)
        wires[name] = Wire(name, value, src, src_op, dst, dst_op, read)
    for value, (dst, _, _) in consumers.items():
        if value not in producers:
            hint = "; connect it (dataflow.itensor_feedback_connect)" if isinstance(value.owner, ITensorFeedbackOp) else ""
            raise GraphError(f"stream {value_name(value)} read by {dst} has no producer in the kernel{hint}")
    return list(wires.values())


def graph_from_kernel(kernel: KernelOp, timing: TimingModel) -> tuple[Graph, dict[str, SSAValue]]:
    """The graph of a `dataflow.kernel` (itensor or stream level, docs/ir.md): one task per node
    (task, DMA, fork, join, chunk, concat, reassociate, converter), one edge per stream value;
    casts are not nodes. Returns the graph and, per edge name, the SSA value of its FIFO."""
    graph = Graph(timing.read_latency, timing.free_latency)
    nodes = kernel_nodes(kernel)
    _check_event_budget(kernel)
    schedules = {op: timing.schedule(op) for op, _ in nodes}
    wires = wire_kernel(nodes, lambda op: list(schedules[op].reads), lambda op: list(schedules[op].writes))
    for op, name in nodes:
        graph.add_task(node_task(name, op, schedules[op]))
    for wire in wires:
        src_port, dst_port = _port(wire.producer_op, wire.value), _port(wire.consumer_op, wire.read)
        edge = graph.connect(wire.producer, src_port, wire.consumer, dst_port, _token_bits(wire.value), name=wire.name)
        edge.tensor_tokens = _tensor_tiles(wire.value)
        edge.beats = _beats(wire.value)
        edge.word_bits = _word_bits(wire.value)
        if not isinstance(wire.producer_op, DmaLoadOp | DmaSequenceOp) and not isinstance(wire.consumer_op, DmaStoreOp):
            root = _unforked(wire.value)
            graph.intermediate_bits[value_name(root) + f"@{id(root)}"] = _tensor_bits(root)
    return graph.validate(), {wire.name: wire.value for wire in wires}


def restream(graph: Graph, timing: TimingModel, streams: Mapping[str, SSAValue]) -> None:
    """`graph`, a kernel's `graph_from_kernel`, again after the streams `streams` (FIFO name -> its
    value now) were retyped to other beats: their FIFOs' beats and words, and the schedules of the
    nodes at both ends; the same graph a rebuild gives, re-timing only those nodes."""
    edges = {e.name: e for e in graph.edges}
    ends: dict[str, Operation] = {}
    for name, value in streams.items():
        edge = edges[name]
        edge.beats, edge.word_bits = _beats(value), _word_bits(value)
        ends[edge.src], ends[edge.dst] = value.owner, next(iter(value.uses)).operation  # type: ignore[assignment]
    retime(graph, timing, ends)


def retime(graph: Graph, timing: TimingModel, nodes: Mapping[str, Operation]) -> None:
    """The `nodes` of `graph` (node name -> its op, whose attributes or streams changed) re-timed
    from their ops' schedules now."""
    for node, op in nodes.items():
        graph.tasks[node] = node_task(node, op, timing.schedule(op))
    graph.__dict__.pop("compiled", None)  # the simulator's arrays of the old tasks


def _unforked(value: SSAValue) -> SSAValue:
    """The value a fork output copies (through forks and casts)."""
    value = stream_root(value)
    while isinstance(value.owner, ITensorForkOp):
        value = stream_root(value.owner.source)
    return value


def stream_itensor(value: SSAValue) -> itensor | None:
    """The itensor a stream carries: its type's, or a `dataflow.stream`'s layout (None without one)."""
    if isinstance(value.type, ITensorType):
        return value.type.itensor
    owner = value.owner
    return owner.layout.itensor if isinstance(owner, StreamOp) and owner.layout is not None else None


def _tensor_tiles(value: SSAValue) -> int | None:
    it = stream_itensor(value)
    return None if it is None else math.prod(-(-s // t) for s, t in zip(it.shape, it.tile))


def _tensor_bits(value: SSAValue) -> int:
    it = stream_itensor(value)
    return 0 if it is None else it.num_elements * it.dtype.bits


def node_task(name: str, op: Operation, sched: NodeSchedule) -> Task:
    """The graph task of node `op` (named `name`) under its schedule (to re-time one node of a graph)."""
    reads = {_port(op, v): t for v, t in sched.reads.items()}
    writes = {_port(op, v): t for v, t in sched.writes.items()}
    order = None if sched.order is None else {_port(op, v): r for v, r in sched.order.items()}
    return Task(name, reads, writes, sched.latency, order)


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


def _unique(name: str, taken: Mapping[str, object]) -> str:
    return name if name not in taken else next(f"{name}#{i}" for i in range(2, len(taken) + 3) if f"{name}#{i}" not in taken)


def _beats(value: SSAValue) -> int:
    return value.type.itensor.beats if isinstance(value.type, ITensorType) else 1


def _word_bits(value: SSAValue) -> int:
    return value.type.itensor.beat_bits if isinstance(value.type, ITensorType) else 0


def _token_bits(value: SSAValue) -> int:
    if (it := stream_itensor(value)) is not None:
        return it.token_bits
    type_ = value.type
    if isinstance(type_, StreamType):
        elem = type_.element_type
        shape = elem.get_shape() if isinstance(elem, ShapedType) else ()
        scalar = elem.get_element_type() if isinstance(elem, ShapedType) else elem
        return math.prod(shape) * dtype_from_ir(scalar).bits
    raise GraphError(f"value of type {type_} is not a stream")
