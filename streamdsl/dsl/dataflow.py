"""`@sd.dataflow`: compose kernels into one `dataflow.kernel` (a Program).

The decorated function runs once on symbolic `GraphValue`s: its arguments are HBM tensors
(`sd.Tensor[dtype, shape]`), and each kernel call records a task whose outputs are streams. The
recorded graph then becomes IR (docs/ir.md): a `dma_load` per use of an HBM argument, in the order of
the port that consumes it; an `itensor_empty` destination and a `task` per call; an `itensor_fork`
for a stream with several consumers; an `itensor_converter` (no buffer properties: the whole-tensor
fallback, refined by converter planning) where a stream's type differs from the consuming port's;
and a `dma_store` per result, in the producing port's order.
"""

from __future__ import annotations

import inspect
import itertools
import os
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, i32
from xdsl.ir import Block, Region, SSAValue

from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorChunkOp,
    ITensorConcatOp,
    ITensorConverterOp,
    ITensorEmptyOp,
    ITensorFeedbackConnectOp,
    ITensorFeedbackOp,
    ITensorForkOp,
    ITensorJoinOp,
    KernelOp,
    YieldOp,
)
from streamdsl.dsl.kernel import Kernel, Port, ScalarParam, annotation_scope, parse_function, variadic_port
from streamdsl.dsl.types import ScalarSpec, TensorSpec
from streamdsl.errors import DSLError
from streamdsl.itensor import ITensorError, itensor
from streamdsl.program import Program

__all__ = ["DataflowProgram", "GraphValue", "VariadicDataflow", "dataflow", "is_dsl_callable", "kernel_program", "located",
           "record_feedback", "record_join"]

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Location:
    filename: str | None
    lineno: int | None
    col: int | None

    def error(self, message: str) -> DSLError:
        return DSLError(message, self.filename, self.lineno, self.col)


@dataclass(eq=False)
class GraphValue:
    """A tensor in HBM (a dataflow argument) or a stream produced by a kernel call, a chunk or a
    concat."""

    type: itensor | TensorSpec | ScalarSpec
    name: str
    producer: Call | Split | Concat | Join | Feedback | None = None
    uses: int = 0
    split: Split | None = None  # the one chunk its slices come from
    box: tuple[GraphValue, tuple[int, ...]] | None = None  # a slice of an HBM argument: (argument, offsets)

    def __getitem__(self, index: Any) -> GraphValue:
        """`x[:, 0:128]`: a box of an HBM argument (its own DMA), or one part of a chunk of a
        stream (see `Split`)."""
        loc = _caller()
        if isinstance(self.type, ScalarSpec):
            raise loc.error(f"{self.name} is a run-time scalar ({self.type}); it cannot be sliced")
        index = index if isinstance(index, tuple) else (index,)
        if len(index) > len(self.shape):
            raise loc.error(f"{self.name} has {len(self.shape)} dims, sliced with {len(index)}")
        if isinstance(self.type, TensorSpec):
            return self._box(index, loc)
        sliced = [(d, i) for d, i in enumerate(index) if i != slice(None)]
        if len(sliced) != 1 or not isinstance(sliced[0][1], slice):
            raise loc.error(f"slice {self.name} along one dim with a static slice, e.g. {self.name}[:, 0:128] "
                            "(ints drop dims, which streams cannot do)")
        dim, sl = sliced[0]
        start, stop, step = sl.indices(self.shape[dim])
        if step != 1 or not all(isinstance(v, int | None) for v in (sl.start, sl.stop)) or not 0 <= start < stop:
            raise loc.error(f"slice {sl.start}:{sl.stop}:{sl.step} of {self.name} (dim {dim} of size "
                            f"{self.shape[dim]}) is out of range or empty; use static ints, step 1, inside the dim")
        if sl.stop is not None and sl.stop > self.shape[dim]:
            raise loc.error(f"slice {start}:{sl.stop} of {self.name} is out of range: dim {dim} has size {self.shape[dim]}")
        return split_part(self, dim, start, stop - start, loc)

    def _box(self, index: tuple[Any, ...], loc: Location) -> GraphValue:
        """A box of an HBM argument: static slices (step 1) of its dims, read by its own DMA."""
        starts, shape = [], []
        for dim, size in enumerate(self.shape):
            sl = index[dim] if dim < len(index) else slice(None)
            if not isinstance(sl, slice) or not all(isinstance(v, int | None) for v in (sl.start, sl.stop, sl.step)):
                raise loc.error(f"slice {self.name} with static slices, e.g. {self.name}[:, 0:128]; got {sl!r} for dim "
                                f"{dim} (ints would drop dims: keep them with i:i+1)")
            start, stop, step = sl.indices(size)
            inside = all(v is None or -size <= v <= size for v in (sl.start, sl.stop))
            if step != 1 or not inside or not 0 <= start < stop:
                raise loc.error(f"slice {_show(sl)} of the HBM argument {self.name} is out of range or empty: dim {dim} "
                                f"has size {size}; use static ints, step 1, inside the dim")
            starts.append(start)
            shape.append(stop - start)
        root, base = self.box if self.box is not None else (self, (0,) * len(shape))
        offsets = tuple(b + s for b, s in zip(base, starts))
        spec = TensorSpec(self.dtype, tuple(shape))
        box = ", ".join(f"{o}:{o + n}" for o, n in zip(offsets, shape))
        return GraphValue(spec, f"{root.name}[{box}]", box=(root, offsets))

    def connect(self, value: Any) -> None:
        """`back.connect(y)`: the stream `back` (made by `sd.feedback`) carries the tokens of `y`,
        a stream computed from what `back` fed (a cycle: `dataflow.itensor_feedback_connect`)."""
        loc = _caller()
        fb = self.producer
        if not isinstance(fb, Feedback):
            raise loc.error(f"{self.name} is not a feedback stream: only a stream made by sd.feedback(T) is connected "
                            "to the stream that feeds it")
        if fb.source is not None:
            raise loc.error(f"{self.name} is already connected (line {fb.connected_at.lineno}): a stream has one producer")
        if not _TRACES:
            raise loc.error(f"{self.name}.connect(...) belongs in the @sd.dataflow function that made it")
        source = _stream_source(value, "connecting a feedback stream", loc)
        if (source.shape, source.dtype) != (self.shape, self.dtype):
            raise loc.error(f"{self.name} streams a {list(self.shape)} {self.dtype.name} tensor but {source.name} is a "
                            f"{list(source.shape)} {source.dtype.name} one; connect a stream of the same tensor")
        source.uses += 1
        fb.source, fb.connected_at = source, loc
        _TRACES[-1].calls.append(Connect(fb, loc))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> Any:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"<sd graph value {self.name}: {self.type}>"


@dataclass(eq=False)
class Call:
    kernel: Kernel
    args: list[GraphValue]
    location: Location
    outputs: list[GraphValue] = field(default_factory=list)


@dataclass(eq=False)
class Split:
    """One `itensor_chunk` of `source` along `dim`: its slices (`x[:, a:b]`, `sd.chunk`) are the
    parts. Every token of a stream goes to exactly one consumer, so the parts must cover the
    dim without overlap; they are checked when the graph becomes IR."""

    source: GraphValue
    dim: int
    location: Location
    parts: list[tuple[int, int, GraphValue]] = field(default_factory=list)  # (start, size, value)


@dataclass(eq=False)
class Concat:
    """One `itensor_concat` of streams along a tensor dim."""

    sources: list[GraphValue]
    dim: int
    location: Location
    outputs: list[GraphValue] = field(default_factory=list)


@dataclass(eq=False)
class Join:
    """One `itensor_join`: the result's token k is the next token of source k mod m."""

    sources: list[GraphValue]
    location: Location
    outputs: list[GraphValue] = field(default_factory=list)


@dataclass(eq=False)
class Feedback:
    """One `itensor_feedback` (`sd.feedback(T)`): a stream read before the kernel that writes it
    is called; `connect` names its source later in the function."""

    type: itensor
    location: Location
    outputs: list[GraphValue] = field(default_factory=list)
    source: GraphValue | None = None
    connected_at: Location | None = None


@dataclass(eq=False)
class Connect:
    """The `itensor_feedback_connect` of `feedback` to its source."""

    feedback: Feedback
    location: Location


Step = Call | Split | Concat | Join | Feedback | Connect


@dataclass
class _Trace:
    calls: list[Step] = field(default_factory=list)


_TRACES: list[_Trace] = []


def is_dsl_callable(obj: object) -> bool:
    return isinstance(obj, Kernel | DataflowProgram | VariadicDataflow)


def _show(sl: slice) -> str:
    return f"{'' if sl.start is None else sl.start}:{'' if sl.stop is None else sl.stop}" + ("" if sl.step is None else f":{sl.step}")


def _forwards(frame: types.FrameType) -> bool:
    """A frame of this package, or of a wrapper that only forwards the user's call to it (mutmut's
    trampolines: under mutation testing every function of the mutated module is called through one)."""
    return os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE or frame.f_globals.get("__name__", "").startswith("mutmut.")


def _caller() -> Location:
    frame = inspect.currentframe()
    while frame is not None and _forwards(frame):
        frame = frame.f_back
    if frame is None:
        return Location(None, None, None)
    positions = inspect.getframeinfo(frame).positions
    col = positions.col_offset + 1 if positions is not None and positions.col_offset is not None else 1
    return Location(frame.f_code.co_filename, frame.f_lineno, col)


def located(message: str) -> DSLError:
    """An error at the user's line that is running (outside this package)."""
    return _caller().error(message)


def record_call(kernel: Kernel, args: Sequence[Any]) -> GraphValue | tuple[GraphValue, ...]:
    loc = _caller()
    if not _TRACES:
        raise loc.error(f"kernel {kernel.name!r} was called with a dataflow value outside an @sd.dataflow function")
    wanted = kernel.signature.arguments
    if len(args) != len(wanted):
        raise loc.error(f"kernel {kernel.name!r} takes {len(wanted)} argument(s) "
                        f"({', '.join(p.name for p in wanted)}), got {len(args)}")
    kernel = _bind_scalars(kernel, args, loc)
    for port, arg in zip(kernel.signature.arguments, args):
        if not isinstance(arg, GraphValue):
            raise loc.error(f"argument {port.name!r} of kernel {kernel.name!r} must be a dataflow argument or a "
                            f"kernel output, got {type(arg).__name__}; constants belong inside kernels")
        if isinstance(port, ScalarParam):
            continue
        if isinstance(arg.type, ScalarSpec):
            raise loc.error(f"argument {port.name!r} of kernel {kernel.name!r} is a stream port ({port.type}) but "
                            f"{arg.name} is a run-time scalar ({arg.type}); pass scalars to sd.Scalar parameters")
        if (arg.shape, arg.dtype) != (port.type.shape, port.type.dtype):
            raise loc.error(f"argument {port.name!r} of kernel {kernel.name!r}: {arg.name} is a "
                            f"{list(arg.shape)} {arg.dtype.name} tensor but the port {port.type} streams a "
                            f"{list(port.type.shape)} {port.type.dtype.name} tensor; pass a tensor of that shape")
        arg.uses += 1
    call = Call(kernel, list(args), loc)
    call.outputs = [GraphValue(p.type, f"{kernel.name}.{p.name}", call) for p in kernel.outputs]
    _TRACES[-1].calls.append(call)
    return call.outputs[0] if len(call.outputs) == 1 else tuple(call.outputs)


def _bind_scalars(kernel: Kernel, args: Sequence[Any], loc: Location) -> Kernel:
    """The kernel with its scalar parameters named after the dataflow scalars passed to them."""
    binding = {}
    for param, arg in zip(kernel.signature.arguments, args):
        if not isinstance(param, ScalarParam):
            continue
        if not (isinstance(arg, GraphValue) and isinstance(arg.type, ScalarSpec)):
            raise loc.error(f"argument {param.name!r} of kernel {kernel.name!r} is a run-time scalar ({param.spec}); "
                            f"pass an sd.Scalar argument of the dataflow function, got {getattr(arg, 'name', arg)!r}")
        most = param.spec.max
        if most is not None and arg.type.max is not None and arg.type.max > most:
            raise loc.error(f"{arg.name} may reach {arg.type.max} but scalar {param.name!r} of kernel {kernel.name!r} "
                            f"is at most {most}; declare the same maximum on both")
        arg.uses += 1
        binding[param.name] = (arg.name, arg.type.max if most is None else most)
    return kernel.bind_scalars(binding) if binding else kernel


def _stream_source(value: Any, what: str, loc: Location) -> GraphValue:
    if not _TRACES:
        raise loc.error(f"{what} of dataflow values is only defined inside an @sd.dataflow function")
    if not isinstance(value, GraphValue):
        raise loc.error(f"{what} takes dataflow values (kernel outputs), got {type(value).__name__}")
    if isinstance(value.type, ScalarSpec):
        raise loc.error(f"{what} takes streams; {value.name} is a run-time scalar ({value.type})")
    if not isinstance(value.type, itensor):
        raise loc.error(f"{what} of the HBM argument {value.name!r} is not defined: it has no stream order until a kernel "
                        "reads it; pass the tensor (or slices of it, x[:, a:b]) to kernels and combine their outputs")
    return value


def split_part(value: GraphValue, dim: int, start: int, size: int, loc: Location) -> GraphValue:
    source = _stream_source(value, "slicing", loc)
    split = source.split
    if split is None:
        split = source.split = Split(source, dim, loc)
        source.uses += 1
        _TRACES[-1].calls.append(split)
    elif split.dim != dim:
        raise loc.error(f"{source.name} is already sliced along dim {split.dim} (at line {split.location.lineno}); "
                        "all slices of one stream must cut the same dim")
    spec = source.type
    try:
        part_type = spec.region(dim, start, size)
    except ITensorError as err:
        raise loc.error(f"{source.name}[{start}:{start + size}] along dim {dim}: {err}") from None
    part = GraphValue(part_type, f"{source.name}[{start}:{start + size}]", split)
    split.parts.append((start, size, part))
    return part


def record_chunk(value: Any, parts: int, dim: int = 0) -> tuple[GraphValue, ...]:
    loc = _caller()
    if isinstance(value, GraphValue) and isinstance(value.type, TensorSpec):  # an HBM argument: boxes
        source = value
    else:
        source = _stream_source(value, "sd.chunk", loc)
    rank = len(source.shape)
    if not isinstance(dim, int) or not -rank <= dim < rank:
        raise loc.error(f"sd.chunk: dim must be an int in [-{rank}, {rank}), got {dim!r}")
    dim %= rank
    size = source.shape[dim]
    if not isinstance(parts, int) or parts < 2 or size % parts:
        raise loc.error(f"sd.chunk: cannot cut dim {dim} of size {size} of {source.name} into {parts!r} equal parts")
    step = size // parts
    if isinstance(source.type, TensorSpec):
        whole = (slice(None),) * dim
        return tuple(source._box((*whole, slice(i * step, (i + 1) * step)), loc) for i in range(parts))
    return tuple(split_part(source, dim, i * step, step, loc) for i in range(parts))


def record_join(parts: list[Any], result: Any) -> GraphValue:
    """`sd.join([a, b], T)`: the stream of type `T` whose token k is the next token of part k mod m."""
    loc = _caller()
    if not isinstance(result, itensor):
        raise loc.error(f"sd.join(parts, T): T must be the joined stream's sd.itensor, got {result!r}")
    sources = [_stream_source(p, "sd.join", loc) for p in parts]
    m = len(sources)
    if m < 2:
        raise loc.error(f"sd.join takes at least two streams, got {m}")
    for p in sources:
        it = p.type
        if it.bounds or result.bounds:
            raise loc.error(f"sd.join: {p.name} streams {it}; streams of run-time length cannot be joined")
        if (it.dtype, it.tile) != (result.dtype, result.tile) or it.num_tokens * m != result.num_tokens:
            raise loc.error(f"sd.join: {p.name} streams {it.num_tokens} tiles {list(it.tile)} {it.dtype.name}; joined "
                            f"round robin into {result} ({result.num_tokens} tiles {list(result.tile)} "
                            f"{result.dtype.name}), each of the {m} parts must stream {result.num_tokens / m:g} tiles "
                            "of that tile shape and dtype")
    for p in sources:
        p.uses += 1
    op = Join(sources, loc)
    op.outputs = [GraphValue(result, f"join({', '.join(p.name for p in sources)})", op)]
    _TRACES[-1].calls.append(op)
    return op.outputs[0]


def record_concat(parts: list[Any], axis: int) -> GraphValue:
    loc = _caller()
    sources = [_stream_source(p, "sd.concat", loc) for p in parts]
    first = sources[0].type
    rank = len(first.shape)
    if not isinstance(axis, int) or not -rank <= axis < rank or len(sources) < 2:
        raise loc.error(f"sd.concat takes at least two streams and an axis in [-{rank}, {rank}), got {axis!r}")
    axis %= rank
    shape = list(first.shape)
    shape[axis] = sum(p.shape[axis] for p in sources)
    whole = _concat_type(sources, axis, tuple(shape))
    if whole is None:
        raise loc.error(f"sd.concat: cannot stream {', '.join(f'{p.name}: {p.type}' for p in sources)} as one "
                        f"tensor along axis {axis}; the parts need the same dtype and tile, the same sizes "
                        "outside the axis, and one tile order (itensor.tiled with the same order)")
    for p in sources:
        p.uses += 1
    op = Concat(sources, axis, loc)
    op.outputs = [GraphValue(whole, f"concat({', '.join(p.name for p in sources)})", op)]
    _TRACES[-1].calls.append(op)
    return op.outputs[0]


def record_feedback(type_: Any, name: str = "feedback") -> GraphValue:
    """`sd.feedback(T, name)`: a stream of type `T` whose producer is named later with
    `.connect(y)`; the kernels on the cycle must let its first tokens out before they need it back."""
    loc = _caller()
    if not _TRACES:
        raise loc.error("sd.feedback makes a stream of an @sd.dataflow function being traced; a program with feedback "
                        "has no eager run (simulate or compile it)")
    if not isinstance(type_, itensor):
        raise loc.error(f"sd.feedback(T): T must be the stream's sd.itensor, got {type_!r}")
    if type_.bounds:
        raise loc.error(f"sd.feedback: {type_} has a run-time length; a feedback stream's length must be static")
    op = Feedback(type_, loc)
    op.outputs = [GraphValue(type_, name, op)]
    _TRACES[-1].calls.append(op)
    return op.outputs[0]


def _concat_type(parts: Sequence[GraphValue], axis: int, shape: tuple[int, ...]) -> itensor | None:
    """A tiled order of the whole tensor whose regions stream exactly like the parts."""
    first = parts[0].type
    for order in itertools.permutations(range(len(shape))):
        try:
            whole = itensor.tiled(first.dtype, shape, first.tile, order)
            start, fits = 0, True
            for p in parts:
                fits = fits and whole.region(axis, start, p.shape[axis]) == p.type
                start += p.shape[axis]
        except ITensorError:
            continue
        if fits:
            return whole
    return None


# ---------------------------------------------------------------------------------------------
# Graph -> IR
# ---------------------------------------------------------------------------------------------


def _tensor_type(v: GraphValue) -> TensorType:
    if isinstance(v.type, ScalarSpec):
        return i32  # type: ignore[return-value]
    return TensorType(v.dtype.ir(), list(v.shape))


class _Emitter:
    def __init__(self, block: Block, params: Sequence[GraphValue], reserved: set[str]):
        self.block = block
        self.hbm = {id(p): arg for p, arg in zip(params, block.args)}
        self.pending: dict[int, list[SSAValue]] = {}  # stream -> SSA values still to hand out (forks)
        self.feedbacks: dict[int, SSAValue] = {}  # Feedback -> its itensor_feedback result
        self.names = set(reserved)

    def emit(self, op: Any) -> Any:
        self.block.add_op(op)
        return op

    def unique(self, name: str) -> str:
        candidate, n = name, 0
        while candidate in self.names:
            n += 1
            candidate = f"{name}_{n}"
        self.names.add(candidate)
        return candidate

    def stream(self, value: GraphValue, want: itensor, loc: Location | None = None) -> SSAValue:
        """The SSA stream feeding one consumer that expects the type `want`."""
        if id(value) in self.hbm:
            return self.emit(DmaLoadOp(self.hbm[id(value)], want.to_ir())).result
        if value.box is not None:  # a slice of an HBM argument: a DMA of its box
            root, offsets = value.box
            return self.emit(DmaLoadOp(self.hbm[id(root)], want.to_ir(), offsets)).result
        ssa = self.pending[id(value)].pop(0)
        if value.type != want and (value.type.bounds or want.bounds):
            raise (loc or Location(None, None, None)).error(
                f"{value.name} streams {value.type} but the port wants {want}; a stream with a run-time length "
                "cannot be reordered (no converter): give producer and consumer the same type and run-time loops")
        if value.type != want:  # a different stream order or tiling: reorder on chip
            ssa = self.emit(ITensorConverterOp(ssa, want.to_ir())).result
        elif ssa.type != want.to_ir():  # the same stream written differently (e.g. trip-1 loops)
            ssa = self.emit(ITensorCastOp(ssa, want.to_ir())).result
        return ssa

    def produced(self, value: GraphValue, ssa: SSAValue) -> None:
        if value.uses > 1:
            ssa_list = list(self.emit(ITensorForkOp(ssa, value.uses)).outputs)
        else:
            ssa_list = [ssa]
        self.pending[id(value)] = ssa_list

    def call(self, call: Call) -> None:
        pairs = list(zip(call.kernel.signature.arguments, call.args))
        ins = [self.stream(arg, port.type, call.location) for port, arg in pairs if isinstance(port, Port)]
        ins += [self.hbm[id(arg)] for port, arg in pairs if isinstance(port, ScalarParam)]
        inits = [self.emit(ITensorEmptyOp(p.type.to_ir())).result for p in call.kernel.outputs]
        task = self.emit(call.kernel.task(self.unique(call.kernel.name), ins, inits))
        for port, value, result in zip(call.kernel.outputs, call.outputs, task.results):
            if value.uses == 0:
                raise call.location.error(f"output {port.name!r} of kernel {call.kernel.name!r} is never used: "
                                          "return it from the dataflow function or pass it to another kernel")
            self.produced(value, result)

    def split(self, split: Split) -> None:
        parts = sorted(split.parts, key=lambda p: p[0])
        covered = 0
        for start, size, value in parts:
            if start != covered:
                what = f"overlaps [{start}, {covered})" if start < covered else f"leaves [{covered}, {start}) unused"
                raise split.location.error(
                    f"the slices of {split.source.name} along dim {split.dim} must split it: {value.name} {what}; "
                    "every token of a stream goes to exactly one consumer, so use every part exactly once (sd.chunk)")
            covered = start + size
        if covered != split.source.shape[split.dim]:
            raise split.location.error(
                f"the slices of {split.source.name} along dim {split.dim} leave [{covered}, "
                f"{split.source.shape[split.dim]}) unused; every token of a stream goes to exactly one consumer: "
                "slice the rest too and consume it (or cut the stream in the producing kernel)")
        for _, _, value in parts:
            if value.uses == 0:
                raise split.location.error(f"{value.name} is never used: pass it to a kernel or return it")
        src = self.stream(split.source, split.source.type)
        op = self.emit(ITensorChunkOp(src, split.dim, [v.type.to_ir() for _, _, v in parts]))
        for (_, _, value), result in zip(parts, op.outputs):
            self.produced(value, result)

    def concat(self, concat: Concat) -> None:
        srcs = [self.stream(s, s.type) for s in concat.sources]
        (out,) = concat.outputs
        if out.uses == 0:
            raise concat.location.error(f"{out.name} is never used: pass it to a kernel or return it")
        self.produced(out, self.emit(ITensorConcatOp(srcs, concat.dim, out.type.to_ir())).result)

    def join(self, join: Join) -> None:
        srcs = [self.stream(s, s.type) for s in join.sources]
        (out,) = join.outputs
        if out.uses == 0:
            raise join.location.error(f"{out.name} is never used: pass it to a kernel or return it")
        self.produced(out, self.emit(ITensorJoinOp(srcs, out.type.to_ir())).result)

    def feedback(self, fb: Feedback) -> None:
        (out,) = fb.outputs
        if fb.source is None:
            raise fb.location.error(f"{out.name} is never connected: call {out.name}.connect(y) with the stream that "
                                    "feeds it back")
        if out.uses == 0:
            raise fb.location.error(f"{out.name} is never used: pass it to a kernel")
        result = self.emit(ITensorFeedbackOp(fb.type.to_ir())).result
        result.name_hint = self.unique(out.name)
        self.feedbacks[id(fb)] = result
        self.produced(out, result)

    def connect(self, connect: Connect) -> None:
        fb = connect.feedback
        assert fb.source is not None
        source = self.stream(fb.source, fb.type, connect.location)
        self.emit(ITensorFeedbackConnectOp(source, self.feedbacks[id(fb)]))

    def step(self, step: Step) -> None:
        if isinstance(step, Feedback):
            self.feedback(step)
        elif isinstance(step, Connect):
            self.connect(step)
        elif isinstance(step, Split):
            self.split(step)
        elif isinstance(step, Concat):
            self.concat(step)
        elif isinstance(step, Join):
            self.join(step)
        else:
            self.call(step)

    def store(self, value: GraphValue, loc: Location) -> SSAValue:
        if id(value) in self.hbm or value.box is not None:
            raise loc.error(f"the dataflow function returns its argument {value.name!r} unchanged; return kernel outputs only")
        it = value.type
        assert isinstance(it, itensor) and value.producer is not None
        if it.has_reuse:
            raise value.producer.location.error(f"{value.name} streams {it}, which replays tiles (reuse loops); a result must stream each "
                            "tile once: give the producing port a type without reuse")
        ssa = self.pending[id(value)].pop(0)
        return self.emit(DmaStoreOp(ssa)).result


def build_module(name: str, params: Sequence[GraphValue], results: Sequence[GraphValue], calls: Sequence[Step],
                 loc: Location, reserved: set[str] | None = None) -> ModuleOp:
    for r in results:
        r.uses += 1
    in_types = [_tensor_type(p) for p in params]
    out_types = [_tensor_type(r) for r in results]
    scalars = []
    for p in params:
        if isinstance(p.type, ScalarSpec):
            if p.type.max is None:
                raise loc.error(f"scalar argument {p.name!r} needs a declared maximum: sd.Scalar[sd.i32, N]; the "
                                "program is compiled for values up to N (FIFOs are sized for it)")
            scalars.append((p.name, p.type.max))
    block = Block(arg_types=in_types)
    emitter = _Emitter(block, params, {name, *(reserved or ())})
    for step in calls:
        emitter.step(step)
    stored = [emitter.store(r, loc) for r in results]
    block.add_op(YieldOp(*stored))
    fblock = Block(arg_types=in_types)
    kernel = KernelOp(name, list(fblock.args), out_types, Region(block), scalars)
    fblock.add_ops([kernel, func.ReturnOp(*kernel.results)])
    for args in (block.args, fblock.args):  # IR, reports and DMA names read `x`, not `%0`
        for arg, param in zip(args, params):
            arg.name_hint = param.name
    fn = func.FuncOp(name, (in_types, out_types), Region(fblock))
    module = ModuleOp([fn])
    module.verify()
    return module


# ---------------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------------


@dataclass
class DataflowProgram(Program):
    """The object `@sd.dataflow` returns: a Program that can also run eagerly (`prog(*arrays)`)."""

    fn: Callable[..., Any] | None = None
    positional: int | None = None  # arguments passed positionally (None: all); the rest are keyword-only

    def __call__(self, *arrays: Any) -> Any:
        if self.fn is None:
            raise TypeError(f"program {self.name!r} has no Python function to run eagerly")
        positional = len(arrays) if self.positional is None else self.positional
        if any(isinstance(a, GraphValue) for a in arrays):  # called inside another @sd.dataflow: inline it
            return _call(self.fn, arrays, positional)
        return _call(self.fn, [a if isinstance(a, int) else np.asarray(a) for a in arrays], positional)


def _trace(fn: Callable[..., Any], params: list[GraphValue], loc: Location,
           positional: int | None = None) -> tuple[list[Step], list[GraphValue]]:
    _TRACES.append(_Trace())
    try:
        out = _call(fn, params, len(params) if positional is None else positional)
    finally:
        trace = _TRACES.pop()
    results = list(out) if isinstance(out, tuple) else [out]
    if not results or not all(isinstance(r, GraphValue) for r in results):
        raise loc.error(f"@sd.dataflow function {fn.__name__!r} must return kernel outputs (one or a tuple), got {out!r}")
    return trace.calls, results


def dataflow(fn: Callable[..., Any]) -> DataflowProgram | VariadicDataflow:
    """Trace `fn` (arguments annotated `sd.Tensor[dtype, shape]` or `sd.Scalar[...]`) into a
    Program. With `*xs: sd.Tensor[...]` it is a template (`VariadicDataflow`): each number of
    tensors passed for `xs` makes its own Program."""
    fdef, filename, shift = parse_function(fn)
    loc = Location(filename, fdef.lineno, fdef.col_offset + 1 + shift)
    try:
        annotations = inspect.get_annotations(fn, locals=annotation_scope(fn, sys._getframe(1)), eval_str=True)
    except Exception as e:  # noqa: BLE001 - report whatever the annotation raised
        raise loc.error(f"@sd.dataflow {fn.__name__!r}: cannot evaluate its annotations ({e})") from None
    a = fdef.args
    if a.kwarg or a.posonlyargs or a.defaults or a.kw_defaults and any(d is not None for d in a.kw_defaults) \
            or a.kwonlyargs and not a.vararg:
        raise loc.error(f"@sd.dataflow {fn.__name__!r}: arguments must be plain names annotated sd.Tensor[dtype, shape] "
                        "or sd.Scalar[sd.i32, max], and at most one *xs: sd.Tensor[...] (no **kwargs or defaults)")
    for arg in [*a.args, *a.kwonlyargs]:
        spec = annotations.get(arg.arg)
        if not isinstance(spec, TensorSpec | ScalarSpec):
            raise DSLError(f"argument {arg.arg!r} of @sd.dataflow {fn.__name__!r} needs an annotation "
                           f"sd.Tensor[dtype, shape] or sd.Scalar[sd.i32, max], got {spec!r}", filename, arg.lineno,
                           arg.col_offset + 1 + shift)
    if a.vararg is not None:
        if not isinstance(annotations.get(a.vararg.arg), TensorSpec):
            raise DSLError(f"*{a.vararg.arg} of @sd.dataflow {fn.__name__!r} needs an annotation sd.Tensor[dtype, shape]: "
                           f"every tensor it stands for has that type, got {annotations.get(a.vararg.arg)!r}", filename,
                           a.vararg.lineno, a.vararg.col_offset + 1 + shift)
        return VariadicDataflow(fn, annotations, loc)
    return _traced(fn, annotations, loc, 0)


def _traced(fn: Callable[..., Any], annotations: dict[str, Any], loc: Location, arity: int) -> DataflowProgram:
    """The Program of `fn` with `arity` tensors for its `*xs` (named `xs.0`, `xs.1`, ...), which
    come after its other positional arguments and before its keyword-only ones."""
    a = parse_function(fn)[0].args
    star = [] if a.vararg is None else [variadic_port(a.vararg.arg, i) for i in range(arity)]
    names = [arg.arg for arg in a.args] + star + [arg.arg for arg in a.kwonlyargs]
    specs = {n: annotations[n] for n in names if n not in star} | {n: annotations[a.vararg.arg] for n in star}
    params = [GraphValue(specs[n], n) for n in names]
    calls, results = _trace(fn, params, loc, len(a.args) + arity)
    module = build_module(fn.__name__, params, results, calls, loc)
    return DataflowProgram(module, fn.__name__, names, fn=fn, positional=len(a.args) + arity)


@dataclass
class VariadicDataflow:
    """`@sd.dataflow` of a function with `*xs`: `with_arity(n)` is its Program for `n` tensors in
    `xs`; called with arrays it runs eagerly, inside another dataflow function it is inlined."""

    fn: Callable[..., Any]
    annotations: dict[str, Any]
    location: Location
    programs: dict[int, DataflowProgram] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def fixed(self) -> int:
        """The arguments besides `*xs`."""
        a = parse_function(self.fn)[0].args
        return len(a.args) + len(a.kwonlyargs)

    def with_arity(self, count: int) -> DataflowProgram:
        if not isinstance(count, int) or count < 1:
            star = parse_function(self.fn)[0].args.vararg
            raise located(f"@sd.dataflow {self.name!r}: *{star.arg if star else 'xs'} stands for at least one tensor, "
                          f"got {count!r}")
        if count not in self.programs:
            self.programs[count] = _traced(self.fn, self.annotations, self.location, count)
        return self.programs[count]

    def __call__(self, *arrays: Any, **keywords: Any) -> Any:
        """Positional arguments, then the keyword-only ones (positionally, or by name)."""
        if keywords:
            kwonly = [arg.arg for arg in parse_function(self.fn)[0].args.kwonlyargs]
            if set(keywords) != set(kwonly):
                raise located(f"@sd.dataflow {self.name!r}: pass its keyword-only arguments {kwonly} by name, all of "
                              f"them, got {sorted(keywords)}")
            arrays = (*arrays, *(keywords[name] for name in kwonly))
        count = len(arrays) - self.fixed
        if count < 1:
            raise located(f"@sd.dataflow {self.name!r} takes {self.fixed} argument(s) and at least one tensor for its "
                          f"*{parse_function(self.fn)[0].args.vararg.arg}, got {len(arrays)} argument(s)")
        if any(isinstance(a, GraphValue) for a in arrays):  # inside another @sd.dataflow: inline it
            return _call(self.fn, arrays, len(arrays) - (self.fixed - len(parse_function(self.fn)[0].args.args)))
        return self.with_arity(count)(*arrays)

    def _needs_arity(self) -> DSLError:
        star = parse_function(self.fn)[0].args.vararg
        return self.location.error(f"@sd.dataflow {self.name!r} has *{star.arg if star else 'xs'}: its number of "
                                   f"tensors decides the program; compile {self.name}.with_arity(n)")

    @property
    def module(self) -> Any:
        raise self._needs_arity()

    def simulate(self, *arrays: Any, **options: Any) -> Any:
        return self.with_arity(len(arrays) - self.fixed).simulate(*arrays, **options)


def _call(fn: Callable[..., Any], args: Sequence[Any], positional: int) -> Any:
    """`fn` on `args`: the first `positional` positionally, the rest as its keyword-only arguments."""
    kwonly = [arg.arg for arg in parse_function(fn)[0].args.kwonlyargs]
    return fn(*args[:positional], **dict(zip(kwonly, args[positional:], strict=True)))


def kernel_program(kernel: Kernel) -> DataflowProgram:
    """One kernel as a Program: each input port is an HBM tensor of the port's shape."""
    params = [GraphValue(TensorSpec(p.type.dtype, p.type.shape) if isinstance(p, Port) else p.spec, p.name, uses=1)
              for p in kernel.signature.arguments]
    call = Call(kernel, params, Location(None, None, None))
    call.outputs = [GraphValue(p.type, f"{kernel.name}.{p.name}", call) for p in kernel.outputs]
    name = f"{kernel.name}_program"
    module = build_module(name, params, call.outputs, [call], call.location)
    return DataflowProgram(module, name, [p.name for p in kernel.signature.arguments], fn=kernel)
