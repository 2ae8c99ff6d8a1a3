"""FIFOs, the built-in processes (DMAs, fork, join, chunk, concat, reassociate, converter) and the
compiler of task bodies to generators.

Protocol: a process is a generator; when a FIFO blocks it, it yields `(fifo, EMPTY)` or
`(fifo, FULL)`. The scheduler resumes it once the condition no longer holds. Every access
blocks, as in the emitted C++ (a converter too: it follows its emitted static schedule).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from xdsl.ir import Operation, SSAValue

from streamdsl.dialects.dataflow import DEFAULT_DEPTH, ITensorType, StreamType, TaskOp
from streamdsl.layout import converter_token_steps
from streamdsl.sim._codegen import CompileError, Emitter

__all__ = ["EMPTY", "FULL", "Fifo", "Process", "compile_task"]

EMPTY, FULL = 0, 1

Wait = tuple[Any, int]


class Fifo:
    """A bounded FIFO of tile tokens."""

    __slots__ = ("beats_per_token", "consumer", "depth", "expected", "name", "peak", "producer", "pushed", "q", "token_bits", "value")

    def __init__(self, value: SSAValue | None, expected: int | None, token_bits: int | None, beats_per_token: int | None = None):
        self.q: deque[Any] = deque()
        self.name = ""
        self.depth = DEFAULT_DEPTH
        self.peak = 0
        self.pushed = 0
        self.expected = expected
        self.token_bits = token_bits
        self.beats_per_token = beats_per_token
        self.value = value
        self.producer: Process | None = None
        self.consumer: Process | None = None

    def describe(self) -> str:
        return f"{len(self.q)}/{self.depth} tokens"


class Process:
    """A running task or built-in process."""

    __slots__ = ("done", "gen", "name", "op", "wait")

    def __init__(self, name: str, op: Operation | None):
        self.name = name
        self.op = op
        self.gen: Iterator[Wait] | None = None
        self.wait: Wait | None = None
        self.done = False


# ---------------------------------------------------------------------------------------------
# Built-in processes
# ---------------------------------------------------------------------------------------------


def push(out: Fifo, token: Any) -> Iterator[Wait]:
    q = out.q
    while len(q) >= out.depth:
        yield (out, FULL)
    q.append(token)
    out.pushed += 1
    if len(q) > out.peak:
        out.peak = len(q)


def pop(src: Fifo) -> Iterator[Wait]:
    q = src.q
    while not q:
        yield (src, EMPTY)
    return q.popleft()


def dma_load(tiles: Sequence[np.ndarray], out: Fifo) -> Iterator[Wait]:
    for tile in tiles:
        yield from push(out, tile)


def dma_sequence(loads: Sequence[tuple[Sequence[np.ndarray], Fifo]]) -> Iterator[Wait]:
    for tiles, out in loads:
        yield from dma_load(tiles, out)


def dma_store(src: Fifo, count: int, sink: list[np.ndarray]) -> Iterator[Wait]:
    for _ in range(count):
        sink.append((yield from pop(src)))


def fork(src: Fifo, outs: Sequence[Fifo], count: int) -> Iterator[Wait]:
    for _ in range(count):
        token = yield from pop(src)
        for out in outs:
            yield from push(out, token)


def route_merge(srcs: Sequence[Fifo], out: Fifo, route: Sequence[int]) -> Iterator[Wait]:
    """Token k of `out` is the next token of `srcs[route[k]]` (join, concat)."""
    for k in route:
        token = yield from pop(srcs[k])
        yield from push(out, token)


def route_split(src: Fifo, outs: Sequence[Fifo], route: Sequence[int]) -> Iterator[Wait]:
    """Token k of `src` goes to `outs[route[k]]` (chunk)."""
    for k in route:
        token = yield from pop(src)
        yield from push(outs[k], token)


def reassociate(src: Fifo, out: Fifo, count: int, shape: tuple[int, ...]) -> Iterator[Wait]:
    for _ in range(count):
        token = yield from pop(src)
        yield from push(out, np.reshape(token, shape))


def converter(src: Fifo, out: Fifo, buffer: Any, n_in: int, n_out: int, name: str) -> Iterator[Wait]:
    """Move tokens through a ConverterBuffer in the order of the emitted static schedule
    (`converter_token_steps`): a source token is taken at its first beat's step, a destination token
    given at its last beat's step, both blocking (a read of the next slab waits for its token even
    when the current slab could emit, as the emitted loop does)."""
    reads, writes, _ = converter_token_steps(buffer.layout, buffer.src, buffer.dst)
    steps = [(2 * int(s), 0) for s in reads] + [(2 * int(s) + 1, 1) for s in writes]  # in a step, the read first
    assert len(steps) == n_in + n_out, name
    for _, is_write in sorted(steps):
        if is_write:
            yield from push(out, buffer.pop())
        else:
            buffer.push((yield from pop(src)))


# ---------------------------------------------------------------------------------------------
# Task bodies
# ---------------------------------------------------------------------------------------------


class TaskEmitter(Emitter):
    """A task body as a generator over its ports (one FIFO per `ins` / `outs` operand)."""

    def __init__(self, task: TaskOp):
        super().__init__(f"task @{task.sym_name.data}")
        self.task = task

    def op(self, op: Operation, indent: int) -> None:
        name = op.name
        if name in ("dataflow.itensor_read", "dataflow.stream_read"):
            p = self._port(op.operands[0], op)
            self.emit(indent, f"while not q{p}: yield w{p}e", op)
            self.emit(indent, f"{self.define(op.results[0])} = q{p}.popleft()", op)
        elif name in ("dataflow.itensor_write", "dataflow.stream_write"):
            value, dest = op.operands
            p = self._port(dest, op)
            if op.results:
                self.ports[op.results[0]] = p
            self.emit(indent, f"while len(q{p}) >= d{p}: yield w{p}f", op)
            self.emit(indent, f"q{p}.append({self.use(value)}); f{p}.pushed += 1", op)
            self.emit(indent, f"if len(q{p}) > f{p}.peak: f{p}.peak = len(q{p})", op)
        elif name == "dataflow.yield":
            self._final_yield(op)
            self.emit(indent, "return", op)
        elif name.startswith("dataflow."):
            raise CompileError(f"{self.label}: `{name}` cannot appear inside a task (move it to the kernel body)")
        else:
            super().op(op, indent)

    def _port(self, value: SSAValue, op: Operation) -> int:
        if value not in self.ports:
            raise CompileError(f"{self.label}: {op.name} on a value that is not one of the task's streams")
        return self.ports[value]

    def _final_yield(self, op: Operation) -> None:
        outs = self.task.body.block.args[len(self.task.inputs) :]
        for i, (value, out) in enumerate(zip(op.operands, outs)):
            if self.ports.get(value) != self.ports[out]:
                raise CompileError(f"{self.label}: dataflow.yield #{i} does not yield the stream written through out #{i}")


def compile_task(task: TaskOp) -> Callable[[Sequence[Fifo]], Iterator[Wait]]:
    """The task body as a generator function of its port FIFOs (which ports it reads and which it
    writes is the wiring's `task_ports`)."""
    emitter = TaskEmitter(task)
    args = task.body.block.args
    for p, arg in enumerate(args):
        if not isinstance(arg.type, ITensorType | StreamType):
            raise CompileError(f"{emitter.label}: operand #{p} has type {arg.type}; task operands must be streams")
        emitter.ports[arg] = p
    emitter.block(task.body.block, 1)
    prologue = [
        f"    f{p} = P[{p}]; q{p} = f{p}.q; d{p} = f{p}.depth; w{p}e = (f{p}, {EMPTY}); w{p}f = (f{p}, {FULL})"
        for p in range(len(args))
    ]
    emitter.lines[:0] = [*prologue, "    if False: yield"]
    emitter.line_ops = {k + len(prologue) + 1: v for k, v in emitter.line_ops.items()}
    fn = emitter.compile("def task(P):", "task")
    return fn


def op_at(fn: Any, lineno: int) -> Operation | None:
    """The op a line of generated code came from (line 1 is the `def`)."""
    return getattr(fn, "__streamdsl_lines__", {}).get(lineno - 1)

