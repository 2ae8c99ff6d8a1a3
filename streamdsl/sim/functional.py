"""Functional simulator of the `dataflow` IR: numpy tiles through bounded FIFOs.

`simulate(prog, *arrays)` interprets the IR (not the DSL's Python source). Each `dataflow.task`
body is compiled once to a Python generator (`_runtime.compile_task`); DMAs, forks, joins,
chunk/concat, reassociate and converters are built-in generators. A deterministic round-robin
scheduler resumes every process whose blocking condition has cleared; a round in which none can
move is a deadlock (or a stream used past its end, which is reported as such).

FIFO depth of an edge: `depths={name: d}` if given, else the producing op's `depth` attribute
(an integer, or one entry per result), else the `!dataflow.stream` depth, else `default_depth`.
A depth of None means unbounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import SSAValue
from xdsl.utils.exceptions import VerifyException

from streamdsl.dialects.dataflow import (
    DEFAULT_DEPTH,
    DmaLoadOp,
    DmaMember,
    DmaSequenceOp,
    DmaStoreOp,
    ITensorConverterOp,
    ITensorForkOp,
    ITensorReassociateOp,
    KernelOp,
    RoutingOperation,
    TaskOp,
    YieldOp,
)
from streamdsl.dtypes import i4, numpy_dtype
from streamdsl.errors import DeadlockError, LimitError, StreamdslError, StreamError
from streamdsl.graph import GraphError
from streamdsl.itensor import ITensorError, itensor
from streamdsl.scalars import has_scalars, specialise, split_arguments
from streamdsl.sim import _runtime as rt
from streamdsl.sim._codegen import CompileError, constant_value
from streamdsl.sim._runtime import EMPTY, FULL, Fifo, Process
from streamdsl.sim.converter import ConverterBuffer
from streamdsl.wiring import (
    check_depth_names,
    kernel_nodes,
    stream_depth,
    stream_itensor,
    stream_reads,
    stream_root,
    stream_writes,
    task_ports,
    wire_kernel,
)

__all__ = ["SimStats", "StreamStats", "TaskFailure", "simulate", "simulate_with_stats"]


class TaskFailure(StreamdslError, RuntimeError):
    """A task body raised while running (e.g. a shape error); names the task and the op."""


@dataclass(frozen=True)
class StreamStats:
    name: str
    producer: str
    consumer: str
    tokens: int
    depth: int | float  # math.inf when unbounded
    peak: int
    token_bits: int | None
    beats: int | None = None  # stream beats moved: tokens x `itensor.beats` (what the emitted C++ writes)


@dataclass
class SimStats:
    """What one simulation observed. `peak_occupancy` is in tokens per stream."""

    streams: list[StreamStats] = field(default_factory=list)
    converter_peak: dict[str, int] = field(default_factory=dict)  # elements held, per converter
    seconds: float = 0.0  # building (compiling the task bodies) and running
    compile_seconds: float = 0.0
    resumes: int = 0
    deadline: float | None = field(default=None, repr=False)  # perf_counter() past which the run stops

    @property
    def peak_occupancy(self) -> dict[str, int]:
        return {s.name: s.peak for s in self.streams}

    @property
    def total_tokens(self) -> int:
        return sum(s.tokens for s in self.streams)

    @property
    def tokens_per_second(self) -> float:
        return self.total_tokens / self.seconds if self.seconds > 0 else float("inf")

    def as_record(self) -> dict[str, Any]:
        return {
            "peak_occupancy": self.peak_occupancy,
            "depth": {s.name: s.depth for s in self.streams},
            "tokens": {s.name: s.tokens for s in self.streams},
            "streams": [vars(s) | {} for s in self.streams],
            "converter_peak": dict(self.converter_peak),
            "total_tokens": self.total_tokens,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
        }


def simulate(
    prog: Any,
    *arrays: np.ndarray,
    depths: dict[str, int | None] | None = None,
    default_depth: int | None = DEFAULT_DEPTH,
    record: dict[str, Any] | None = None,
    time_budget: float | None = None,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Run the program's IR on numpy; returns its output array (a tuple if several).

    `record`, if given, is filled with `SimStats.as_record()` (peak occupancy per stream, ...).
    `time_budget` (seconds): past it, the run stops with a LimitError naming the kernel.
    """
    outputs, stats = simulate_with_stats(
        prog, *arrays, depths=depths, default_depth=default_depth, time_budget=time_budget
    )
    if record is not None:
        record.update(stats.as_record())
    return outputs


def simulate_with_stats(
    prog: Any,
    *arrays: np.ndarray,
    depths: dict[str, int | None] | None = None,
    default_depth: int | None = DEFAULT_DEPTH,
    time_budget: float | None = None,
) -> tuple[np.ndarray | tuple[np.ndarray, ...], SimStats]:
    func, params = _entry(prog)
    func, arrays = _static(func, arrays)
    args = _bind_arguments(func, arrays, params)
    start = time.perf_counter()
    stats = SimStats(deadline=None if time_budget is None else start + time_budget)
    outputs = _run_func(func, args, dict(depths or {}), default_depth, stats)
    stats.seconds = time.perf_counter() - start
    return (outputs[0] if len(outputs) == 1 else tuple(outputs)), stats


# ---------------------------------------------------------------------------------------------
# Entry point and arguments
# ---------------------------------------------------------------------------------------------


def _entry(prog: Any) -> tuple[FuncOp, list[np.ndarray]]:
    if isinstance(prog, FuncOp):
        return prog, []
    if isinstance(prog, ModuleOp):
        funcs = [op for op in prog.walk() if isinstance(op, FuncOp) and any(isinstance(o, KernelOp) for o in op.walk())]
        if len(funcs) != 1:
            raise ValueError(f"simulate: the module must hold exactly one func.func with a dataflow.kernel, found {len(funcs)}")
        return funcs[0], []
    if hasattr(prog, "entry") and hasattr(prog, "params"):
        return prog.entry, list(prog.params.values())
    raise TypeError(f"simulate: expected a Program, a ModuleOp or a func.func, got {type(prog).__name__}")


def _static(func: FuncOp, arrays: Sequence[Any]) -> tuple[FuncOp, list[Any]]:
    """With run-time scalars among the arguments: the program specialised to their values, and the
    arrays (docs/ir.md, "Run-time scalars")."""
    module = func.parent_op()
    if not isinstance(module, ModuleOp) or not has_scalars(module):
        return func, list(arrays)
    arrays, values = split_arguments(func, arrays)
    static = specialise(module, values)
    return next(op for op in static.ops if isinstance(op, FuncOp) and op.sym_name == func.sym_name), arrays


def _bind_arguments(func: FuncOp, arrays: Sequence[np.ndarray], params: list[np.ndarray]) -> list[np.ndarray]:
    formals = func.body.block.args
    given = list(arrays)
    if len(given) + len(params) == len(formals):
        given += params
    if len(given) != len(formals):
        raise ValueError(
            f"simulate @{func.sym_name.data}: takes {len(formals)} arrays ({len(formals) - len(params)} inputs and "
            f"{len(params)} bound parameters), got {len(arrays)}"
        )
    bound = []
    for i, (formal, array) in enumerate(zip(formals, given)):
        assert isinstance(formal.type, TensorType)
        shape = tuple(formal.type.get_shape())
        value = np.asarray(array, dtype=numpy_dtype(formal.type.get_element_type())).view()  # no copy
        if value.shape != shape:
            name = formal.name_hint or f"#{i}"
            raise ValueError(f"simulate @{func.sym_name.data}: argument {name} has shape {value.shape}, expected {shape}")
        if formal.type.get_element_type() == i4.ir() and value.size and (value.min() < -8 or value.max() > 7):
            name = formal.name_hint or f"#{i}"
            raise ValueError(f"simulate @{func.sym_name.data}: argument {name} is i4 but holds values in "
                             f"[{int(value.min())}, {int(value.max())}]; i4 values lie in [-8, 7] (one int8 each, unpacked)")
        value.setflags(write=False)  # tiles are views: nothing may write into the caller's array
        bound.append(value)
    return bound


def _run_func(
    func: FuncOp, args: list[np.ndarray], depths: dict[str, int | None], default_depth: int | None, stats: SimStats
) -> list[np.ndarray]:
    """Kernels run one after the other (their tensors pass through HBM). With several kernels,
    stream names are qualified as `kernel/stream`."""
    env: dict[SSAValue, Any] = dict(zip(func.body.block.args, args))
    qualify = sum(isinstance(op, KernelOp) for op in func.body.block.ops) > 1
    names: list[str] = []
    for op in func.body.block.ops:
        if isinstance(op, KernelOp):
            start = time.perf_counter()
            kernel = _Kernel(op, [env[v] for v in op.inputs], qualify)
            names += [f.name for f in kernel.all_fifos]
            if not qualify:
                check_depth_names(depths, names)
            kernel.set_depths(depths, default_depth)
            stats.compile_seconds += time.perf_counter() - start
            env.update(zip(op.outputs, kernel.run(stats)))
        elif op.name == "arith.constant":
            env[op.results[0]] = constant_value(op.value, op.results[0].type)  # type: ignore[attr-defined]
        elif op.name == "func.return":
            check_depth_names(depths, names)
            return [env[v] for v in op.operands]
        else:
            raise CompileError(f"@{func.sym_name.data}: `{op.name}` outside the dataflow.kernel is not simulated")
    raise CompileError(f"@{func.sym_name.data}: no func.return")


# ---------------------------------------------------------------------------------------------
# One kernel: the process graph
# ---------------------------------------------------------------------------------------------


class _Kernel:
    """The processes and FIFOs of one `dataflow.kernel`, wired by `streamdsl.wiring`: the same
    nodes, streams, names and depths as the timing graph and the HLS emitter."""

    def __init__(self, op: KernelOp, inputs: list[np.ndarray], qualify: bool):
        self.op, self.name = op, op.sym_name.data
        self.tensors: dict[SSAValue, Any] = dict(zip(op.body.block.args, inputs))
        self.sinks: list[tuple[SSAValue, itensor, list[np.ndarray], Fifo]] = []
        self.converters: list[tuple[str, Any]] = []
        terminator = op.body.block.last_op
        self.results: list[SSAValue] = list(terminator.values) if isinstance(terminator, YieldOp) else []
        try:
            nodes = kernel_nodes(op)
            self.wires = wire_kernel(nodes, stream_reads, stream_writes)
        except GraphError as err:
            raise GraphError(f"kernel @{self.name}: {err}") from None
        self.procs = [Process(name, node) for node, name in nodes]
        by_name = {proc.name: proc for proc in self.procs}
        prefix = f"{self.name}/" if qualify else ""
        self.fifos: dict[SSAValue, Fifo] = {}
        for wire in self.wires:
            fifo = _new_fifo(wire.value)
            fifo.name, fifo.producer, fifo.consumer = prefix + wire.name, by_name[wire.producer], by_name[wire.consumer]
            self.fifos[wire.value] = fifo
        self.all_fifos = list(self.fifos.values())
        for proc in self.procs:
            self._start(proc)

    # -- building -----------------------------------------------------------------------------

    def _fifo(self, value: SSAValue) -> Fifo:
        """The FIFO a value reads or writes (a cast reads its source's FIFO)."""
        return self.fifos[stream_root(value)]

    def _tiles(self, proc: Process, load: DmaLoadOp | DmaMember) -> list[np.ndarray]:
        """The tiles a load streams: its box of the tensor in its itensor's order."""
        try:
            return load.result.type.itensor.reference_stream(self.tensors[load.source][load.box])
        except ITensorError as err:
            raise StreamError(f"kernel @{self.name}: {proc.name}: {err}") from None

    def _start(self, proc: Process) -> None:
        match op := proc.op:
            case DmaLoadOp():
                proc.gen = rt.dma_load(self._tiles(proc, op), self._fifo(op.result))
            case DmaSequenceOp():  # the members one after the other
                proc.gen = rt.dma_sequence([(self._tiles(proc, m), self._fifo(m.result)) for m in op.members])
            case DmaStoreOp():
                src = self._fifo(op.source)
                sink: list[np.ndarray] = []
                self.sinks.append((op.result, op.source.type.itensor, sink, src))
                proc.gen = rt.dma_store(src, src.expected or 0, sink)
            case TaskOp():
                self._task(proc, op)
            case ITensorForkOp():
                src = self._fifo(op.source)
                proc.gen = rt.fork(src, [self._fifo(r) for r in op.outputs], src.expected or 0)
            case RoutingOperation():
                self._route(proc, op)
            case ITensorReassociateOp():
                out = self._fifo(op.result)
                proc.gen = rt.reassociate(self._fifo(op.source), out, out.expected or 0, op.result.type.itensor.tile)
            case ITensorConverterOp():
                self._converter(proc, op)
            case _:  # kernel_nodes names only the ops stream_reads knows
                raise CompileError(f"kernel @{self.name}: `{op.name}` is not simulated (docs/ir.md lists the ops of a kernel)")

    def _task(self, proc: Process, op: TaskOp) -> None:
        try:
            fn = rt.compile_task(op)
        except CompileError as err:
            raise CompileError(f"kernel @{self.name}: {err}") from None
        proc.gen = _guarded(proc, fn, [self._fifo(value) for _, value, _ in task_ports(op)])

    def _route(self, proc: Process, op: RoutingOperation) -> None:
        """Join, chunk, concat: each token of the whole stream moves to or from `op.route()`'s part."""
        try:
            route = op.route().tolist()
        except VerifyException as err:
            raise StreamError(f"kernel @{self.name}: {proc.name}: {err}") from None
        parts = [self._fifo(p) for p in op.parts]
        if op.splits:
            proc.gen = rt.route_split(self._fifo(op.whole), parts, route)
        else:
            proc.gen = rt.route_merge(parts, self._fifo(op.whole), route)

    def _converter(self, proc: Process, op: ITensorConverterOp) -> None:
        src_it, dst_it = op.source.type.itensor, op.result.type.itensor
        shape = tuple(op.buffer_shape.get_values()) if op.buffer_shape is not None else None
        shared = op.shared_loops.value.data if op.shared_loops is not None else 0
        buffer = ConverterBuffer(src_it, dst_it, shape, shared, name=proc.name)
        self.converters.append((proc.name, buffer))
        src, out = self._fifo(op.source), self._fifo(op.result)
        proc.gen = rt.converter(src, out, buffer, src_it.num_tokens, dst_it.num_tokens, proc.name)

    # -- depths ----------------------------------------------------------------------------------

    def set_depths(self, depths: dict[str, int | None], default: int | None) -> None:
        """None means unbounded (the peak occupancy then shows what the schedule needs)."""
        for wire in self.wires:
            fifo = self.fifos[wire.value]
            depth = stream_depth(fifo.name, wire.value, depths, default)
            fifo.depth = math.inf if depth is None else depth

    # -- running ------------------------------------------------------------------------------------

    def run(self, stats: SimStats) -> list[np.ndarray]:
        try:
            stats.resumes += _schedule(self.procs, stats.deadline)
        except (DeadlockError, LimitError) as err:
            err.args = (f"kernel @{self.name}: {err.args[0]}",)
            raise
        self._check_drained()
        outputs = {value: self._assemble(it, sink, fifo) for value, it, sink, fifo in self.sinks}
        stats.streams += [
            StreamStats(
                f.name,
                f.producer.name if f.producer else "",
                f.consumer.name if f.consumer else "",
                f.pushed,
                f.depth,
                f.peak,
                f.token_bits,
                None if f.beats_per_token is None else f.pushed * f.beats_per_token,
            )
            for f in self.all_fifos
        ]
        stats.converter_peak.update({name: buf.peak for name, buf in self.converters})
        return [outputs[v] if v in outputs else self.tensors[v] for v in self.results]

    def _check_drained(self) -> None:
        for fifo in self.all_fifos:
            consumer, producer = fifo.consumer.name, fifo.producer.name
            if fifo.q:
                raise StreamError(
                    f"stream {fifo.name}: {len(fifo.q)} tokens left unread: {consumer} read {fifo.pushed - len(fifo.q)} "
                    f"of the {fifo.pushed} tokens {producer} wrote (the stream's type has {fifo.expected}); "
                    f"make {consumer} read every token"
                )
            if fifo.expected is not None and fifo.pushed != fifo.expected:
                raise StreamError(
                    f"stream {fifo.name}: {producer} wrote {fifo.pushed} tokens but the stream's type has "
                    f"{fifo.expected} (and {consumer} read them all); make both write and read {fifo.expected}"
                )

    def _assemble(self, it: itensor, sink: list[np.ndarray], fifo: Fifo) -> np.ndarray:
        try:
            return it.from_stream(sink)
        except ITensorError as err:
            raise StreamError(f"stream {fifo.name}: dma_store cannot rebuild the tensor: {err}") from None


def _new_fifo(value: SSAValue) -> Fifo:
    """A FIFO with the token count and width its type (or a stream's layout) gives, if known."""
    it = stream_itensor(value)
    return Fifo(value, it.num_tokens, it.token_bits, it.beats) if it is not None else Fifo(value, None, None)


# ---------------------------------------------------------------------------------------------
# Scheduling and diagnosis
# ---------------------------------------------------------------------------------------------


def _guarded(proc: Process, fn: Any, ports: list[Fifo]) -> Iterator[Any]:
    """Run a compiled task, turning a crash into a TaskFailure that names the task and the op."""
    try:
        return (yield from fn(ports))
    except (StreamError, DeadlockError):
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with the task and op
        tb = err.__traceback__
        op = None
        while tb is not None:
            if tb.tb_frame.f_code is fn.__code__:
                op = rt.op_at(fn, tb.tb_lineno)
            tb = tb.tb_next
        where = f" at `{op.name}`" if op is not None else ""
        raise TaskFailure(f"task {proc.name} failed{where}: {type(err).__name__}: {err}") from err


def _schedule(procs: list[Process], deadline: float | None = None) -> int:
    """Round-robin until every process finishes (or past `deadline`); returns the number of
    resumptions."""
    live = list(procs)
    resumes = rounds = 0
    while live:
        rounds += 1
        if deadline is not None and rounds % 256 == 0 and time.perf_counter() > deadline:
            raise LimitError(
                f"simulation stopped at its time budget after {resumes} task resumptions; "
                f"{len(live)} of {len(procs)} tasks unfinished ({', '.join(p.name for p in live[:4])}). "
                "Give a larger time_budget, or simulate a smaller program"
            )
        moved = finished = False
        for proc in live:
            wait = proc.wait
            if wait is not None:
                fifo, kind = wait
                if kind == EMPTY and not fifo.q or kind == FULL and len(fifo.q) >= fifo.depth:
                    continue
            moved = True
            resumes += 1
            try:
                proc.wait = next(proc.gen)  # type: ignore[arg-type]
            except StopIteration:
                proc.done = finished = True
        if finished:
            live = [p for p in live if not p.done]
        elif not moved:
            raise _stall(live, procs)
    return resumes


def _stall(live: list[Process], procs: list[Process]) -> Exception:
    """Why no process can move: a stream used past its end, or a deadlock."""
    for proc in live:
        fifo, kind = proc.wait
        if kind == EMPTY and fifo.producer.done:
            return StreamError(
                f"task {proc.name} reads past the end of stream {fifo.name}: {fifo.producer.name} finished after writing "
                f"{fifo.pushed} tokens (the stream's type has {fifo.expected}) and {proc.name} has read them all; "
                f"make {proc.name} read only {fifo.pushed} tokens or the producer write more"
            )
        if kind == FULL and fifo.consumer.done:
            consumer = fifo.consumer.name
            return StreamError(
                f"task {proc.name} writes more tokens into stream {fifo.name} than {consumer} reads: {consumer} "
                f"finished after reading {fifo.pushed - len(fifo.q)} and {len(fifo.q)} are left unread "
                f"(the stream's type has {fifo.expected}); make both sides agree on {fifo.expected} tokens"
            )
    return _deadlock(live, procs)


def _deadlock(live: list[Process], procs: list[Process]) -> DeadlockError:
    blocked: dict[str, tuple[str, str, int, int]] = {}
    lines = []
    waits_for: dict[Process, Process | None] = {}
    for proc in live:
        fifo, kind = proc.wait
        state = "empty" if kind == EMPTY else "full"
        blocked[proc.name] = (fifo.name, state, len(fifo.q), fifo.depth)
        other = fifo.producer if kind == EMPTY else fifo.consumer
        waits_for[proc] = other
        role = "written by" if kind == EMPTY else "read by"
        lines.append(
            f"  {proc.name} waits on stream {fifo.name} ({state}, {len(fifo.q)}/{fifo.depth} tokens), "
            f"{role} {other.name if other else 'nobody'}"
        )
    cycle = _find_cycle(live, waits_for, {p: i for i, p in enumerate(procs)})
    full = [blocked[p.name] for p in cycle if blocked[p.name][1] == "full"]  # (stream, state, occupancy, depth)
    message = [f"deadlock: all {len(live)} unfinished tasks are blocked", *lines]
    if cycle:
        message.append("wait-for cycle: " + " -> ".join(p.name for p in [*cycle, cycle[0]]))
    if full:
        example = {full[0][0]: 2 * full[0][3] + 2}
        message.append(
            f"fix: raise the depth of a full stream on the cycle ({', '.join(f[0] for f in full)}), e.g. simulate(..., depths={example}), "
            "or size the FIFOs with the FIFO-sizing pass"
        )
    elif cycle:  # no depth helps
        message.append("fix: every stream on the cycle is empty, so no token ever starts it: a task on it must write "
                       "before it reads the stream fed back to it (sd.feedback)")
    return DeadlockError("\n".join(message), blocked=blocked, cycle=[p.name for p in cycle])


def _find_cycle(live: list[Process], waits_for: dict[Process, Process | None], order: dict[Process, int]) -> list[Process]:
    for start in live:
        path: list[Process] = []
        node: Process | None = start
        while node is not None and node in waits_for and node not in path:
            path.append(node)
            node = waits_for[node]
        if node is not None and node in path:
            cycle = path[path.index(node) :]
            first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
            return cycle[first:] + cycle[:first]
    return []
