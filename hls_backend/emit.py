"""Emit the Vitis HLS C++ of one sized `dataflow.kernel` (itensor level, docs/ir.md).

One `hls::stream` per FIFO (an itensor SSA edge; casts pass streams through), declared with its
depth (`hls::stream<T, D>` plus `#pragma HLS stream depth=D`); one `static void` process per
node: tasks (body translated by `body.BodyEmitter`), DMAs walking the itensor's loop nest over the
row-major tensor in HBM, forks (copy to every output) and converters (the planned ping-pong buffer,
token for token as the functional simulator's converter). The `extern "C"` top declares
the `m_axi` interfaces and calls every process in a `#pragma HLS dataflow` region through
`SD_DATAFLOW_PROCESS` (a plain call for Vitis and sequential csim, a thread for threaded csim).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntegerType, ModuleOp, ShapedType, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation, SSAValue

from hls_backend.body import BodyEmitter
from hls_backend.cxx import (
    HlsEmitError,
    affine_c,
    beat_struct,
    c_scalar,
    count_cycles,
    decode,
    flat_index,
    ident,
    io_scalar,
    np_dtype,
    partition_arrays,
    struct_name,
)
from hls_backend.hbm import HBM_CHANNEL_BYTES, WORD_BITS, HbmLayout
from lowering.engine_phases import engine_phases
from lowering.memory import (  # what the memory count charges
    MAXI_BURST,
    MAXI_OUTSTANDING,
    buffer_storage,
    fifo_storages,
    is_register,
    kernel_buffers,
)
from lowering.resources import in_fabric
from lowering.timing import (
    HBM_CHANNELS_ATTR,
    U55C,
    TimingError,
    converter_depth,
    dma_bits_per_cycle,
    hbm_word_bits,
    table_of,
    task_timing,
)
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaSequenceOp,
    DmaStoreOp,
    ITensorConverterOp,
    ITensorForkOp,
    ITensorReassociateOp,
    ITensorType,
    KernelOp,
    RoutingOperation,
    TaskOp,
    YieldOp,
    box_starts,
)
from streamdsl.errors import StreamError
from streamdsl.graph import GraphError
from streamdsl.itensor import Bound, itensor
from streamdsl.layout import bank_partitions, converter_token_steps, slab_layout
from streamdsl.wiring import (
    Wire,
    check_depth_names,
    kernel_nodes,
    stream_depth,
    stream_reads,
    stream_root,
    stream_writes,
    wire_kernel,
)

__all__ = ["Arg", "KernelSource", "Port", "StreamInfo", "emit_kernel", "packed_ports"]

# names the top (an extern "C" symbol) or an argument must not take: C++ keywords and C library
# functions the kernel or testbench sees through <cmath> / <cstdio> / <cstdlib>
_RESERVED = {
    "main", "int", "float", "double", "void", "for", "if", "else", "return", "static", "const", "auto",
    "new", "delete", "class", "struct", "default", "case", "switch", "while", "do", "break", "continue",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "tanh", "sin", "cos", "tan",
    "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "erf", "ceil", "floor",
    "trunc", "round", "pow", "fma", "fmod", "fmax", "fmin", "fabs", "abs", "copysign", "nearbyint",
    "exit", "abort", "free", "malloc", "calloc", "realloc", "printf", "fprintf", "puts", "time", "div",
}  # fmt: skip


@dataclass(frozen=True)
class Arg:
    """A top-level argument: a row-major tensor in HBM."""

    name: str
    ctype: str  # element type in the tensor files (the simulators' storage: float for bf16)
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name
    is_output: bool
    scalar: bool = False  # a run-time scalar passed by value (s_axilite), not a pointer to HBM

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def param(self) -> str:
        """Its parameter in the top function's signature."""
        if self.scalar:
            return f"{self.ctype} {self.name}"
        return f"{'' if self.is_output else 'const '}{self.ctype}* {self.name}"


@dataclass(frozen=True)
class Port:
    """An `m_axi` argument of the top (512-bit words unless narrowed): the HBM buffer of one DMA,
    holding `tensor` packed in the order the DMA's stream `it` moves it (hls_backend/hbm.py). Every DMA has its own port, so
    every port has one reader or writer process and its own HBM pseudo-channel."""

    name: str
    tensor: Arg
    it: itensor
    offsets: tuple[int, ...] = ()  # a dma_load of a slice: where the stream's box lies in `tensor`
    # a DMA striped over S pseudo-channels has S ports: stripe s holds words s, s + S, ... of the
    # whole buffer `whole` (lowering/hbm_channels.py); `channel` is its pseudo-channel (link.cfg)
    stripe: int = 0
    stripes: int = 1
    channel: int | None = None
    base: str = ""  # the whole buffer's name when striped (its pack / unpack functions)
    word_bits: int = WORD_BITS  # narrower when the exploration narrowed the DMA (`hbm_word_bits`)
    # a port a `dma_sequence` shares: its buffer is its members' buffers (each a port of one load,
    # its stripe `stripe`, which is no argument of the top) one after the other; `tensor` and `it`
    # are the first member's
    members: tuple[Port, ...] = ()

    @property
    def word(self) -> str:
        return f"ap_uint<{self.word_bits}>"

    @property
    def layout(self) -> HbmLayout:
        """The layout of the DMA's whole buffer (all its stripes)."""
        return HbmLayout.of(self.it, self.word_bits)

    @property
    def whole(self) -> str:
        return self.base or self.name

    @property
    def words(self) -> int:
        """Words of this port's buffer (its stripe; a shared port's: its members')."""
        if self.members:
            return sum(m.words for m in self.members)
        return self.layout.words // self.stripes

    @property
    def nbytes(self) -> int:
        return self.words * self.word_bits // 8


# a DMA's word loop: a word per cycle, its iteration as deep as the burst latency
DMA_PIPELINE = f"#pragma HLS pipeline II=1  // depth {U55C.dma_latency + 1}"


def packed_ports(ports: Sequence[Port]) -> list[Port]:
    """The buffers the host packs (or unpacks): each port's, a shared port's members' instead."""
    return [m for p in ports for m in (p.members or (p,))]


@dataclass
class StreamInfo:
    """One FIFO: a token (tile) crosses it as `beats` beats of the `token` struct (<= 1,024 bits,
    `itensor.beats`), so it is `depth` tokens = `depth * beats` words deep."""

    name: str  # as the simulators and report.json call it, e.g. `fork(copy)->mul`
    var: str  # the C++ variable
    token: str  # the beat struct (the FIFO word)
    depth: int  # in tokens, as sized
    producer: str = ""  # C++ process function names
    consumer: str = ""
    value: SSAValue | None = None
    tile: str = ""  # the tile struct a token is assembled into
    beats: int = 1
    word_bits: int = 0  # the beat's bits (a token's, up to BEAT_BITS), as lowering/memory.py counts them
    # its `bind_storage` impl: the primitive lowering/memory.py's count puts it in (by shape, or
    # moved between BRAM36 and URAM so the design fits), so Vitis builds what report.json counts
    storage: str = ""

    @property
    def depth_beats(self) -> int:
        return self.depth * self.beats


@dataclass
class _Process:
    fn: str
    node: str
    params: list[str]  # C++ parameter declarations
    args: list[str]  # C++ arguments of the call in the top
    body: list[str]
    comment: str
    lanes: int = U55C.lanes  # the lanes its tile arrays are accessed by (array_partition)


@dataclass
class KernelSource:
    top: str
    code: str
    inputs: list[Arg]
    outputs: list[Arg]
    streams: list[StreamInfo] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)  # the top's arguments, loads first
    hbm_code: str = ""  # sd_hbm.h: pack / unpack of every port for the testbench and the host
    nodes: dict[str, str] = field(default_factory=dict)  # process function -> node name

    @property
    def args(self) -> list[Arg]:
        return [*self.inputs, *self.outputs]


def _module(design_or_module: Any) -> ModuleOp:
    if isinstance(design_or_module, ModuleOp):
        return design_or_module
    module = getattr(design_or_module, "module", None)
    if isinstance(module, ModuleOp):
        return module
    raise TypeError(
        f"hls_backend: expected a Design (sd.compile(prog)), a program with .module or a ModuleOp, "
        f"got {type(design_or_module).__name__}"
    )


def _entry(module: ModuleOp) -> tuple[FuncOp, KernelOp]:
    funcs = [op for op in module.walk() if isinstance(op, FuncOp) and any(isinstance(o, KernelOp) for o in op.walk())]
    kernels = [op for op in module.walk() if isinstance(op, KernelOp)]
    if len(funcs) != 1 or len(kernels) != 1:
        raise HlsEmitError(
            f"hls_backend: the module must hold one func.func with exactly one dataflow.kernel (found {len(funcs)} "
            f"functions and {len(kernels)} kernels); emit one kernel per project"
        )
    return funcs[0], kernels[0]


class _KernelEmitter:
    def __init__(self, func: FuncOp, kernel: KernelOp, depths: Mapping[str, int]):
        self.func, self.kernel = func, kernel
        self.top = ident(kernel.sym_name.data)
        if self.top in _RESERVED:
            self.top += "_kernel"
        self.structs: dict[str, ShapedType] = {}
        self.streams: dict[SSAValue, StreamInfo] = {}
        self.procs: list[_Process] = []
        self.fns: set[str] = set()  # process function names taken
        self.inputs, self.outputs = self._args()
        self.pointer: dict[SSAValue, Arg] = dict(zip(kernel.body.block.args, self.inputs))
        self.scalars = {arg: self.pointer[arg].name for name, (arg, _) in kernel.scalar_args.items()}
        self.scalar_c = {name: self.pointer[arg].name for name, (arg, _) in kernel.scalar_args.items()}  # bound name -> C
        self.out_pointer: dict[SSAValue, Arg] = {}
        self.ports: list[Port] = []
        self.member_ports: list[Port] = []  # the buffers of sequence members (`Port.members`)
        self._build(depths)

    # -- arguments --------------------------------------------------------------------------

    def _args(self) -> tuple[list[Arg], list[Arg]]:
        formals = list(self.func.body.block.args)
        inputs, used = [], set()
        for i, value in enumerate(self.kernel.inputs):
            if value not in formals:
                raise HlsEmitError(f"kernel @{self.top}: operand #{i} is computed outside the kernel; "
                                   "only function arguments can cross into HBM")
            name = ident(value.name_hint or f"in{i}")
            while name in used or name in _RESERVED or name == self.top:
                name += "_"
            used.add(name)
            inputs.append(self._arg(name, value.type, False))
        ret = self.func.body.block.last_op
        if not isinstance(ret, ReturnOp) or list(ret.operands) != list(self.kernel.outputs):
            raise HlsEmitError(f"kernel @{self.top}: the function must return the kernel's results unchanged")
        outputs = []
        for i, value in enumerate(self.kernel.outputs):
            name = "out" if len(self.kernel.outputs) == 1 else f"out{i}"
            while name in used:
                name += "_"
            used.add(name)
            outputs.append(self._arg(name, value.type, True))
        return inputs, outputs

    def _arg(self, name: str, type_: Any, is_output: bool) -> Arg:
        if isinstance(type_, IntegerType):  # a run-time scalar: one value per invocation
            return Arg(name, c_scalar(type_), (1,), np_dtype(type_).name, is_output, scalar=True)
        assert isinstance(type_, TensorType)
        elem = type_.get_element_type()
        return Arg(name, io_scalar(elem), tuple(type_.get_shape()), np_dtype(elem).name, is_output)

    # -- graph ---------------------------------------------------------------------------------

    def _build(self, depths: Mapping[str, int]) -> None:
        yield_op = self.kernel.body.block.last_op
        assert isinstance(yield_op, YieldOp)
        for value, arg in zip(yield_op.values, self.outputs):
            if not isinstance(value.owner, DmaStoreOp):
                raise HlsEmitError(f"kernel @{self.top}: result {arg.name} is not written by a dataflow.dma_store")
            self.out_pointer[value] = arg
        nodes = self._nodes()
        self._make_streams(self._wires(nodes), depths)
        for op, node, fn in nodes:
            self.procs.append(self._process(op, node, fn))

    def _nodes(self) -> list[tuple[Operation, str, str]]:
        """(op, node name as the simulators name it, C++ function name) per process, in IR order."""
        return [
            (op, node, self._unique_fn(("task_" if isinstance(op, TaskOp) else "") + ident(node)))
            for op, node in kernel_nodes(self.kernel)
        ]

    def _wires(self, nodes: list[tuple[Operation, str, str]]) -> list[Wire]:
        """The FIFOs, wired and named as the simulators wire and name them."""
        try:
            return wire_kernel([(op, node) for op, node, _ in nodes], stream_reads, stream_writes)
        except GraphError as err:
            raise HlsEmitError(f"kernel @{self.top}: {err} (Vitis allows one writer and one reader per stream)") from None

    def _make_streams(self, wires: list[Wire], depths: Mapping[str, int]) -> None:
        """One FIFO per wire; depth: override, else the producing op's attribute, else the Vitis default."""
        try:
            check_depth_names(depths, [wire.name for wire in wires])
            for wire in wires:
                depth = stream_depth(wire.name, wire.value, depths)
                it = wire.value.type.itensor  # type: ignore[attr-defined]
                var = self._unique_var("s_" + ident(wire.name))
                beat = beat_struct(it, self.structs)
                self.streams[wire.value] = StreamInfo(wire.name, var, beat, int(depth), tile=self._token(it), beats=it.beats,
                                                        word_bits=it.beat_bits)
        except GraphError as err:
            raise HlsEmitError(str(err)) from None
        buffers = kernel_buffers(self.kernel)
        self.converter_banks = {b.name: b for b in buffers if b.kind == "converter"}
        storage = fifo_storages([(s.name, s.word_bits, s.depth_beats) for s in self.streams.values()], buffers)
        for s in self.streams.values():
            s.storage = storage[s.name]

    def _unique_fn(self, name: str) -> str:
        base, i = name, 2
        while name in self.fns or name == self.top:
            name = f"{base}_{i}"
            i += 1
        self.fns.add(name)
        return name

    def _unique_var(self, name: str) -> str:
        taken = {s.var for s in self.streams.values()} | {a.name for a in self.inputs + self.outputs} | {p.name for p in self.ports}
        base, i = name, 2
        while name in taken:
            name = f"{base}_{i}"
            i += 1
        return name

    def _token(self, it: itensor) -> str:
        type_ = TensorType(it.dtype.ir(), it.tile)
        name = struct_name(type_)
        self.structs.setdefault(name, type_)
        return name

    def _stream(self, value: SSAValue, fn: str, role: str) -> StreamInfo:
        info = self.streams[stream_root(value)]
        setattr(info, role, fn)
        return info

    # -- processes -------------------------------------------------------------------------------

    def _process(self, op: Operation, node: str, fn: str) -> _Process:
        bounded = [v for v in (*op.operands, *op.results) if isinstance(v.type, ITensorType) and v.type.bounds.data]
        if bounded and not isinstance(op, TaskOp | DmaLoadOp | DmaStoreOp | ITensorReassociateOp):
            raise HlsEmitError(f"{node}: `{op.name}` of a stream with a run-time length ({bounded[0].type}) has no HLS "
                               "translation yet; only tasks and DMAs take run-time lengths")
        if isinstance(op, TaskOp):
            return self._task(op, node, fn)
        if isinstance(op, DmaLoadOp):
            return self._dma(op, node, fn, load=True)
        if isinstance(op, DmaSequenceOp):
            return self._dma_sequence(op, node, fn)
        if isinstance(op, DmaStoreOp):
            return self._dma(op, node, fn, load=False)
        if isinstance(op, ITensorForkOp):
            return self._fork(op, node, fn)
        if isinstance(op, ITensorConverterOp):
            return self._converter(op, node, fn)
        if isinstance(op, ITensorReassociateOp):
            return self._reassociate(op, node, fn)
        if isinstance(op, RoutingOperation):
            return self._route(op, node, fn)
        raise HlsEmitError(f"`{op.name}` has no HLS translation (the kernel body may hold the ops of docs/ir.md)")

    def _task(self, op: TaskOp, node: str, fn: str) -> _Process:
        if any(not isinstance(v.type, ITensorType) and v not in self.scalars for v in [*op.inputs, *op.inits]):
            raise HlsEmitError(f"task {node}: only itensor-level tasks are translated (the stream level is not)")
        ii = op.attributes.get("ii")  # the performance hint of docs/ir.md, "Timing hints"
        try:
            timing = task_timing(op)
        except TimingError:  # a task the model cannot schedule (never one of a compiled design)
            timing = None
        body = BodyEmitter(f"task {node}", self.structs, ii.value.data if ii is not None else 1, timing)  # type: ignore[attr-defined]
        body.fabric = in_fabric(op)
        params, args = [], []
        used: set[str] = set()
        values = [*op.inputs, *op.outputs]
        for i, (arg, value) in enumerate(zip(op.body.block.args, values)):
            is_in = i < len(op.inputs)
            if value in self.scalars:  # a run-time scalar: passed by value
                name = body.names[arg] = ident(arg.name_hint or f"in{i}")
                used.add(name)
                params.append(f"{c_scalar(arg.type)} {name}")
                args.append(self.scalars[value])
                continue
            name = ident(arg.name_hint or (f"in{i}" if is_in else f"out{i - len(op.inputs)}"))
            while name in used:
                name += "_"
            used.add(name)
            info = self._stream(value, fn, "consumer" if is_in else "producer")
            body.ports[arg] = name
            params.append(f"hls::stream<{info.token}>& {name}")
            args.append(info.var)
        if (shared := engine_phases(op)) is not None:
            body.phases(shared, 1)
        else:
            body.block(op.body.block, 1)
        return _Process(fn, node, params, args, body.lines, f"task @{op.sym_name.data}", body.lanes)

    def _walk(self, it: itensor, indent: int, prefix: str) -> tuple[list[str], list[str], int]:
        """Loops over every token slot of the stream (trip-1 loops omitted; run-time trip counts at
        their maxima) and the tile offset per dim."""
        lines, dims = [], []
        depth = indent
        for k, (trip, step) in enumerate(zip(it.trips, it.steps)):
            if trip == 1:
                dims.append("0")
                continue
            var = f"{prefix}{k}"
            lines.append("  " * depth + f"for (int {var} = 0; {var} < {trip}; ++{var}) {{")
            dims.append(var if step == 1 else f"{var} * {step}")
            depth += 1
        names = []
        for j, expr in enumerate(it.map.results):
            if it.shape[j] == 1:  # a size-1 dim: the offset is 0
                names.append("0")
                continue
            lines.append("  " * depth + f"const int o{j} = {affine_c(expr, dims)};")
            names.append(f"o{j}")
        return lines, names, depth

    def _tile_copy(self, it: itensor, depth: int, offsets: list[str], assign: str, shape: tuple[int, ...]) -> list[str]:
        """Loops over one tile; `assign` gets {local} and {glob} flat indices: into the tile and
        into the row-major tensor of `shape` at per-dim `offsets`."""
        lines = []
        loops = [f"e{j}" if t > 1 else "0" for j, t in enumerate(it.tile)]
        inner = depth
        for var, t in zip(loops, it.tile):
            if t > 1:
                lines.append("  " * inner + f"for (int {var} = 0; {var} < {t}; ++{var}) {{")
                inner += 1
        local = flat_index(loops, it.tile)
        glob = flat_index([o if e == "0" else e if o == "0" else f"({o} + {e})" for o, e in zip(offsets, loops)], shape)
        lines.append("  " * inner + assign.format(local=local, glob=glob))
        lines += ["  " * d + "}" for d in reversed(range(depth, inner))]
        return lines

    @staticmethod
    def _lanes(it: itensor, beat: str, pad: str, assign: str, box: tuple[int, ...], base: str) -> list[str]:
        """The unrolled lanes of beat `beat` of a token; `assign` gets {lane} and {glob}: the flat
        index of the lane's element in a row-major box at the flat `base`."""
        lanes = it.beat_lanes
        element = f"{beat} * {lanes} + l" if it.beats > 1 else "l"
        within = flat_index(decode("e", it.tile), box)
        glob = base if within == "0" else f"{base} + {within}"
        guard = f"if (e < {it.token_elements}) " if it.beats * lanes != it.token_elements else ""
        statement = guard + assign.format(lane="l", glob=glob)
        element_used = re.search(r"\be\b", statement) is not None  # not for a one-element tile
        return [
            pad + f"for (int l = 0; l < {lanes}; ++l) {{",
            pad + "  #pragma HLS unroll",
            *([pad + f"  const int e = {element};"] if element_used else []),
            pad + "  " + statement,
            pad + "}",
        ]

    def _bound_c(self, bound: Bound, ivs: list[str], prefix: str = "") -> str:
        """C++ for a run-time trip count: loop indices and scalar arguments (named `prefix` + their
        C name; floor division, which may see negative values: a count below 0 runs no times)."""
        (expr,) = bound.map.results
        return affine_c(expr, ivs, [prefix + self.scalar_c[n] for n in bound.scalars])

    def _close(self, lines: list[str], depth: int, indent: int) -> None:
        lines += ["  " * d + "}" for d in reversed(range(indent, depth))]

    def _unique(self, want: str, tensor: Arg) -> str:
        name, n = want, 0
        taken = [*self.ports, *self.member_ports]
        while any(name in (p.name, p.whole) for p in taken) or name in {a.name for a in self.inputs + self.outputs if a is not tensor}:
            n += 1
            name = f"{want}_{n}"
        return name

    def _ports(self, tensor: Arg, it: itensor, node: str, op: DmaLoadOp | DmaSequenceOp | DmaStoreOp,
               offsets: tuple[int, ...] = (), top: bool = True) -> list[Port]:
        """The m_axi arguments of one DMA: the tensor's name for its first DMA, `x_1`, ... after; a
        DMA striped over S channels has S of them, `x_s0` ... (`hbm_channels` on the op). Not
        `top`: a sequence member's buffers, which the sequence's own ports hold."""
        channels = op.attributes.get(HBM_CHANNELS_ATTR)
        chans = [int(c) for c in channels.get_values()] if isinstance(channels, DenseArrayBase) else [None]
        base = self._unique(tensor.name, tensor)
        if len(chans) > 1 and (isinstance(op, DmaStoreOp) or it.bounds or HbmLayout.of(it).words_per_token % len(chans)):
            raise HlsEmitError(f"{node}: {len(chans)} HBM stripes on a DMA that reads a word at a time (a store, run-time trip "
                               "counts, or tokens that are not whole stripes); run allocate-hbm-channels to choose them")
        ports = []
        for s, channel in enumerate(chans):
            name = base if len(chans) == 1 else self._unique(f"{base}_s{s}", tensor)
            port = Port(name, tensor, it, offsets, s, len(chans), channel, base if len(chans) > 1 else "", hbm_word_bits(op))
            if port.nbytes > HBM_CHANNEL_BYTES:
                raise HlsEmitError(
                    f"{node}: {tensor.name} packed in its stream order (replays stored again) takes {port.nbytes / 2**20:.1f} MiB "
                    f"a stripe, more than one HBM pseudo-channel's {HBM_CHANNEL_BYTES // 2**20} MiB; stream it with fewer reuse loops"
                )
            (self.ports if top else self.member_ports).append(port)
            ports.append(port)
        return ports

    def _dma(self, op: DmaLoadOp | DmaStoreOp, node: str, fn: str, load: bool) -> _Process:
        """One sequential burst over each of the DMA's 512-bit ports, pipelined: token k is words
        [k W, (k + 1) W), `lanes` elements per word (hbm.py), and a stream beat is the words holding
        its lanes (`_words`). Striped over S ports, an iteration reads word i of every stripe (whole
        words g = i S + s of the buffer), S words: one beat. The pseudo-channels deliver fewer bits
        per cycle than the ports take: csim charges their rate per word (SD_HBM), as the timing
        model does (`dma_bits_per_cycle`)."""
        stream_value = op.result if load else op.source
        it = stream_value.type.itensor  # type: ignore[attr-defined]
        info = self._stream(stream_value, fn, "producer" if load else "consumer")
        tensor = self.pointer.get(op.source) if load else self.out_pointer.get(op.result)
        if tensor is None:
            what = "loads a tensor that is not a kernel argument" if load else "stores a tensor that is not a kernel result"
            raise HlsEmitError(f"{node}: {what}")
        ports = self._ports(tensor, it, node, op, box_starts(op.box) if load else ())
        lay, stripes = ports[0].layout, len(ports)
        rate = dma_bits_per_cycle(op, table_of(self.kernel))
        word = ports[0].word
        hbm = [f"hbm{s}" if stripes > 1 else "hbm" for s in range(stripes)]
        if load:
            params, args = [*(f"const {word}* {h}" for h in hbm), f"hls::stream<{info.token}>& out"], [*(p.name for p in ports), info.var]
        else:
            params, args = [f"hls::stream<{info.token}>& in", f"{word}* hbm"], [info.var, ports[0].name]
        direction = "HBM -> stream" if load else "stream -> HBM"
        lines = [f"  {info.token} beat = {{}};  // the stream beat being filled or emptied"]
        if it.bounds:
            lines += self._bounded_words(it, lay, load, DMA_PIPELINE, rate)
            for name in sorted(it.scalars):  # the run-time lengths (sd_ names: none of the loop's locals)
                params.append(f"int sd_{self.scalar_c[name]}")
                args.append(self.scalar_c[name])
            what = "run-time trip counts, a slot per token of the largest stream, the live ones in one burst"
        else:
            lines += self._words_loop(it, lay, load, rate, hbm)
            what = f"{it.num_tokens} tiles {list(it.tile)} of a {list(it.shape)} tensor"
            what += f" striped over {stripes} ports" if stripes > 1 else ""
        what += f", {lay.words_per_token} word(s) of {lay.lanes} lanes and {it.beats} beat(s) a tile"
        names = ", ".join(p.name for p in ports)
        return _Process(fn, node, params, args, lines, f"{node}: {direction} on port{'s' if stripes > 1 else ''} {names}, {what}")

    def _words_loop(self, it: itensor, lay: HbmLayout, load: bool, rate: int, hbm: Sequence[str], base: int = 0,
                    out: str = "out") -> list[str]:
        """Every word of a DMA's buffer in one pipelined loop, from word `base` of each of its ports
        `hbm` on: striped over S ports, iteration i reads (or writes) word i of every stripe (whole
        words g = i S + s of the buffer), S words: one beat."""
        pipeline, per, stripes = DMA_PIPELINE, lay.words_per_token, len(hbm)
        at = f"{base} + i" if base else "i"
        if stripes == 1:
            word = [f"    const int w = i % {per};"] if per > 1 else []
            return [f"  for (int i = 0; i < {lay.words}; ++i) {{", f"    {pipeline}", *word,
                    *self._word(it, lay, load, "    ", at, rate, hbm[0], out), "  }"]
        lines = [f"  for (int i = 0; i < {lay.words // stripes}; ++i) {{  // word i of every stripe: one beat", f"    {pipeline}"]
        for s in range(stripes):
            lines += ["    {", f"      const int w = (i * {stripes} + {s}) % {per};",
                      *self._word(it, lay, load, "      ", at, rate, hbm[s], out), "    }"]
        return [*lines, "  }"]

    def _dma_sequence(self, op: DmaSequenceOp, node: str, fn: str) -> _Process:
        """The members' loads one after the other, each as `_dma` reads it, through the sequence's
        ports: port s holds stripe s of every member's buffer, member after member."""
        rate = dma_bits_per_cycle(op, table_of(self.kernel))
        members = []
        for m in op.members:
            tensor = self.pointer.get(m.source)
            if tensor is None:
                raise HlsEmitError(f"{node}: loads a tensor that is not a kernel argument")
            members.append(self._ports(tensor, m.result.type.itensor, node, op, box_starts(m.box), top=False))
        stripes, first = len(members[0]), members[0][0]
        base = self._unique(f"{first.tensor.name}_seq", first.tensor)
        ports = [Port(base if stripes == 1 else f"{base}_s{s}", first.tensor, first.it, (), s, stripes, stripe[0].channel,
                      base if stripes > 1 else "", first.word_bits, stripe) for s, stripe in enumerate(zip(*members))]
        if any(p.nbytes > HBM_CHANNEL_BYTES for p in ports):
            raise HlsEmitError(f"{node}: its members take {ports[0].nbytes / 2**20:.1f} MiB a port, more than one HBM "
                               f"pseudo-channel's {HBM_CHANNEL_BYTES // 2**20} MiB; share ports among fewer loads")
        self.ports += ports
        hbm = [f"hbm{s}" if stripes > 1 else "hbm" for s in range(stripes)]
        params, args, lines, base_word = [f"const {first.word}* {h}" for h in hbm], [p.name for p in ports], [], 0
        for k, (m, member) in enumerate(zip(op.members, members)):
            info = self._stream(m.result, fn, "producer")
            it, lay = m.result.type.itensor, member[0].layout
            params.append(f"hls::stream<{info.token}>& out{k}")
            args.append(info.var)
            lines += [f"  {{  // member {k}: {member[0].tensor.name}, {it.num_tokens} tiles {list(it.tile)}, from word {base_word}",
                      f"  {info.token} beat = {{}};  // the stream beat being filled",
                      *self._words_loop(it, lay, True, rate, hbm, base_word, f"out{k}"), "  }"]
            base_word += member[0].words
        names = ", ".join(p.name for p in ports)
        what = ", ".join(member[0].tensor.name for member in members)
        return _Process(fn, node, params, args, lines, f"{node}: HBM -> streams on port{'s' if stripes > 1 else ''} {names}, "
                        f"the loads of {what} one after the other")

    def _bounded_words(self, it: itensor, lay: HbmLayout, load: bool, pipeline: str, rate: int) -> list[str]:
        """The live tokens' words of a stream with run-time trip counts (`_bounded_steps`)."""
        per = lay.words_per_token
        return self._bounded_steps(it, per, pipeline,
                                   lambda slot: self._word(it, lay, load, "      ", f"({slot}) * {per} + w", rate))

    def _bounded_steps(self, it: itensor, per: int, pipeline: str, step: Callable[[str], list[str]]) -> list[str]:
        """`per` steps (`step(slot)`, step w of the token in slot `slot`) for each live token of a
        stream with run-time trip counts, in one loop pipelined at a step per cycle: loop indices
        advance like an odometer, each loop carrying into the next outer one at its bound
        (computed from the outer indices and the scalars); a position outside a bound (an empty
        inner range) costs one iteration and moves nothing."""
        bounds = {b.loop: b for b in it.bounds}
        active = [k for k, trip in enumerate(it.trips) if trip > 1 or k in bounds]
        ivs = [f"i{k}" if k in active else "0" for k in range(len(it.trips))]
        limit = {k: self._bound_c(bounds[k], ivs, "sd_") if k in bounds else str(it.trips[k]) for k in active}
        live = " && ".join(f"i{k} < {limit[k]}" for k in active if k in bounds)
        advance = "done = true;"
        for k in active:  # outermost first: each level wraps the advance of the ones inside
            advance = f"if (i{k} + 1 < {limit[k]}) {{ ++i{k}; }} else {{ i{k} = 0; {advance} }}"
        slots = it.num_tokens * per
        return [
            f"  int {', '.join(f'i{k} = 0' for k in active)}, w = 0;  // the token's loop indices, its step",
            "  bool done = false;",
            f"  for (int k = 0; k < {slots} && !done; ++k) {{  // at most every slot's steps",
            f"    {pipeline}",
            f"    #pragma HLS loop_tripcount max={slots}",
            f"    const bool live = {live};",
            "    if (live) {",
            *step(flat_index(ivs, it.trips)),
            "    }",
            f"    if (live && w + 1 < {per}) {{",
            "      ++w;",
            "    } else {",
            "      w = 0;",
            f"      {advance}",
            "    }",
            "  }",
        ]

    @staticmethod
    def _word(it: itensor, lay: HbmLayout, load: bool, pad: str, address: str, rate: int, hbm: str = "hbm",
              out: str = "out") -> list[str]:
        """One HBM word (word `address` of the port, word w of its tile): element e of a tile is
        lane e % lanes of its word e // lanes and lane e % beat lanes of its beat. A beat holds
        `per_beat` whole words (beat lanes are a multiple of word lanes when a tile has more than
        one beat), so word w fills lanes [j lanes, (j + 1) lanes) of its beat, j = w % per_beat;
        the beat leaves after its last word (or the tile's)."""
        elem = c_scalar(it.dtype.ir())
        per, lanes = lay.words_per_token, lay.lanes
        per_beat = -(-it.beat_lanes // lanes)
        e = f"w * {lanes} + l" if per > 1 else "l"
        at = f"{'j' if it.beats > 1 else 'w'} * {lanes} + l" if per_beat > 1 else "l"
        guard = f"if ({e} < {lay.elements}) " if lay.elements % lanes else ""
        ends = ([f"j == {per_beat - 1}"] if it.beats > 1 else []) + ([f"w == {per - 1}"] if per > 1 else [])
        last = " || ".join(ends)
        lines = [pad + f"SD_HBM({lay.word_bits}, {rate});  // the pseudo-channels' rate",
                 *([pad + f"const int j = w % {per_beat};"] if it.beats > 1 else [])]
        if load:
            return lines + [pad + f"const ap_uint<{lay.word_bits}> word = {hbm}[{address}];",
                            pad + f"for (int l = 0; l < {lanes}; ++l) {{", pad + "  #pragma HLS unroll",
                            pad + f"  {guard}beat.v[{at}] = sd_lane<{elem}>(word, l);", pad + "}",
                            pad + f"{f'if ({last}) ' if last else ''}{out}.write(beat);"]
        first = ("j == 0" if it.beats > 1 else "w == 0") if per > 1 else ""
        return lines + [pad + f"{f'if ({first}) ' if first else ''}beat = in.read();",
                        pad + f"ap_uint<{lay.word_bits}> word = 0;",
                        pad + f"for (int l = 0; l < {lanes}; ++l) {{", pad + "  #pragma HLS unroll",
                        pad + f"  {guard}sd_set_lane<{elem}>(word, l, beat.v[{at}]);", pad + "}",
                        pad + f"{hbm}[{address}] = word;"]

    def hbm_code(self) -> str:
        """sd_hbm.h: for every port, pack (inputs) or unpack (outputs) between the row-major tensor
        and its HBM bytes, walking the DMA's stream in order (what hbm.pack / unpack do in numpy)."""
        out = [f"// sd_hbm.h -- the HBM layout of `{self.top}`'s ports (generated; see hls_backend/hbm.py).",
               "// Token k of a port's stream is bytes [k W b, (k + 1) W b), b the bytes of its word (64 unless narrowed):",
               "// its tile row-major, little-endian lanes.",
               "#ifndef SD_HBM_H", "#define SD_HBM_H", "", "#include <cstddef>", "#include <cstring>", "",
               '#include "sd_fp16.h"', ""]
        out += ["// Stripe s of a DMA striped over `stripes` ports: words s, s + stripes, ... of its whole buffer",
                "inline void sd_stripe(const unsigned char* sd_whole, size_t sd_words, int sd_stripes, int sd_s, unsigned char* sd_part) {",
                "  for (size_t g = sd_s, i = 0; g < sd_words; g += sd_stripes, ++i) std::memcpy(sd_part + i * 64, sd_whole + g * 64, 64);",
                "}", ""]
        for port in [p for p in packed_ports(self.ports) if p.stripe == 0]:  # one whole buffer per DMA (member)
            lay, a = port.layout, port.tensor
            size = lay.bits // 8
            fn = f"sd_{'unpack' if a.is_output else 'pack'}_{port.whole}"
            # parameter and counter names start with sd_, which no tensor name does (ident() of a user name)
            sig = (f"const unsigned char* sd_hbm, {a.ctype}* sd_tensor" if a.is_output
                   else f"const {a.ctype}* sd_tensor, unsigned char* sd_hbm")
            out += [f"// port {port.whole}: {a.name} as {port.it}, {lay.words} words", f"inline void {fn}({sig}) {{", "  size_t sd_k = 0;"]
            lines, offsets, depth = self._walk(port.it, 1, "i")  # every slot, up to the trip counts
            byte = f"(sd_k * {lay.words_per_token * lay.word_bits // 8} + size_t({{local}}) * {size})"
            if lay.bits == 4:  # files hold int8, HBM two nibbles a byte
                at = f"(sd_k * {lay.words_per_token * lay.word_bits // 8} + size_t({{local}}) / 2)"
                shift = "4 * (size_t({local}) % 2)"
                unpack = f"sd_tensor[{{glob}}] = int8_t(((sd_hbm[{at}] >> {shift}) & 0xF) ^ 8) - 8;"
                pack = f"sd_hbm[{at}] |= (unsigned char)((sd_tensor[{{glob}}] & 0xF) << {shift});"
                copy = unpack if a.is_output else pack
            elif port.it.dtype.name == "bf16":  # files hold float32, HBM the bf16 bits
                unpack = f"{{{{ uint16_t b; std::memcpy(&b, sd_hbm + {byte}, 2); sd_tensor[{{glob}}] = sd_bf16_value(b); }}}}"
                pack = f"{{{{ const uint16_t b = sd_bf16_bits(sd_tensor[{{glob}}]); std::memcpy(sd_hbm + {byte}, &b, 2); }}}}"
                copy = unpack if a.is_output else pack
            else:
                copy = (f"std::memcpy(&sd_tensor[{{glob}}], sd_hbm + {byte}, {size});" if a.is_output
                        else f"std::memcpy(sd_hbm + {byte}, &sd_tensor[{{glob}}], {size});")
            if port.offsets:  # a slice: the box's offsets within the whole tensor
                offsets = [o if not s else str(s) if o == "0" else f"({o} + {s})" for o, s in zip(offsets, port.offsets)]
            lines += self._tile_copy(port.it, depth, offsets, copy, a.shape)
            lines.append("  " * depth + "++sd_k;")
            self._close(lines, depth, 1)
            out += [*lines, "}", ""]
        return "\n".join([*out, "#endif  // SD_HBM_H"]) + "\n"

    def _fork(self, op: ITensorForkOp, node: str, fn: str) -> _Process:
        src = self._stream(op.source, fn, "consumer")
        outs = [self._stream(r, fn, "producer") for r in op.outputs]
        params = [f"hls::stream<{src.token}>& in"] + [f"hls::stream<{o.token}>& out{i}" for i, o in enumerate(outs)]
        tokens, beats = op.source.type.itensor.num_tokens, src.beats  # type: ignore[attr-defined]
        if beats == 1:
            lines = [f"  for (int k = 0; k < {tokens}; ++k) {{  // beats", "    #pragma HLS pipeline II=1  // depth 2"]
            lines.append(f"    const {src.token} w = in.read();")
            lines += [f"    out{i}.write(w);" for i in range(len(outs))]
            lines.append("  }")
        else:  # whole tokens, output after output, as the timing model's fork writes them (writing
            # beat by beat to every output would leave a token half-written to one output while
            # another is full, and a consumer waiting for the token's last beat can deadlock): one
            # pipelined loop of outputs x beats steps a token, the beats kept from the first output's
            steps = len(outs) * beats
            lines = [f"  {src.token} t[{beats}];", f"  for (int i = 0; i < {tokens * steps}; ++i) {{  // outputs x beats a token",
                     "    #pragma HLS pipeline II=1  // depth 2", f"    const int b = i % {beats};",
                     f"    const int o = (i / {beats}) % {len(outs)};", "    if (o == 0) t[b] = in.read();"]
            lines += [f"    {'if' if i == 0 else 'else if'} (o == {i}) out{i}.write(t[b]);" for i in range(len(outs) - 1)]
            lines += [f"    else out{len(outs) - 1}.write(t[b]);", "  }"]
        return _Process(fn, node, params, [src.var] + [o.var for o in outs], lines, f"{node}: every token to {len(outs)} consumers")

    def _reassociate(self, op: ITensorReassociateOp, node: str, fn: str) -> _Process:
        """The same elements regrouped into tiles of another shape (row-major order kept): the
        same beats, so a copy of every beat."""
        src = self._stream(op.source, fn, "consumer")
        dst = self._stream(op.result, fn, "producer")
        it = op.result.type.itensor  # type: ignore[attr-defined]
        assert src.token == dst.token, (src.token, dst.token)
        params, args = [f"hls::stream<{src.token}>& in", f"hls::stream<{dst.token}>& out"], [src.var, dst.var]
        if it.bounds:  # run-time trip counts (the same loops on both sides): the live tokens' beats
            lines = self._bounded_steps(it, it.beats, "#pragma HLS pipeline II=1  // depth 2", lambda slot: ["      out.write(in.read());"])
            for name in sorted(it.scalars):
                params.append(f"int sd_{self.scalar_c[name]}")
                args.append(self.scalar_c[name])
        else:
            lines = [
                f"  for (int k = 0; k < {it.num_tokens * it.beats}; ++k) {{  // beats",
                "    #pragma HLS pipeline II=1  // depth 2",
                "    out.write(in.read());",
                "  }",
            ]
        return _Process(fn, node, params, args, lines, f"{node}: tiles {list(it.tile)}, same elements")

    def _route(self, op: RoutingOperation, node: str, fn: str) -> _Process:
        """Token k of the whole stream goes to / comes from part `op.route()[k]` (the dialect's
        routing of join, chunk and concat)."""
        split = op.splits
        whole = self._stream(op.whole, fn, "consumer" if split else "producer")
        parts = [self._stream(v, fn, "producer" if split else "consumer") for v in op.parts]
        route = op.route().tolist()
        side = "in" if split else "out"
        part = "out" if split else "in"
        cases = []
        for i in range(len(parts)):
            move = f"{part}{i}.write(t);" if split else f"t = {part}{i}.read();"
            cases.append(f"      case {i}: {move} break;")
        beats = whole.beats
        token = "k" if beats == 1 else f"k / {beats}"
        lines = [
            f"  static const unsigned char route[{len(route)}] = {{{', '.join(map(str, route))}}};",
            f"  for (int k = 0; k < {len(route) * beats}; ++k) {{  // beats",
            "    #pragma HLS pipeline II=1  // depth 2",
            f"    {whole.token} t{' = in.read()' if split else ''};",
            f"    switch (route[{token}]) {{",
            *cases,
            "      default: break;",
            "    }",
            *([] if split else ["    out.write(t);"]),
            "  }",
        ]
        whole_param = f"hls::stream<{whole.token}>& {side}"
        part_params = [f"hls::stream<{p.token}>& {part}{i}" for i, p in enumerate(parts)]
        params = [whole_param, *part_params] if split else [*part_params, whole_param]
        args = [whole.var, *[p.var for p in parts]] if split else [*[p.var for p in parts], whole.var]
        what = "splits each token to" if split else "merges tokens of"
        return _Process(fn, node, params, args, lines, f"{node}: {what} {len(parts)} streams by a static route")

    def _converter(self, op: ITensorConverterOp, node: str, fn: str) -> _Process:
        """The planned converter with the semantics of streamdsl/sim/converter.py (slabs of
        streamdsl/layout.py): slab k of the source fills bank k % 2 while the reader drains slab
        k - 1, and a destination token leaves as soon as every element it covers has arrived. One
        pipelined loop on a static schedule moves up to a source and a destination beat per cycle,
        with blocking reads and writes."""
        src_it, dst_it = op.source.type.itensor, op.result.type.itensor  # type: ignore[attr-defined]
        src = self._stream(op.source, fn, "consumer")
        dst = self._stream(op.result, fn, "producer")
        shared = op.shared_loops.value.data if op.shared_loops is not None else 0
        planned = tuple(op.buffer_shape.get_values()) if op.buffer_shape is not None else src_it.shape
        try:
            layout = slab_layout(src_it, dst_it, shared)
        except StreamError as err:
            raise HlsEmitError(f"{node}: {err}") from None
        if layout.missing is not None or any(b > p for b, p in zip(layout.box, planned)):
            raise HlsEmitError(
                f"{node}: the plan (bank {list(planned)}, shared_loops={shared}) does not hold a slab of "
                f"{list(layout.box)} elements with all its data; re-plan it (insert-converters)"
            )
        n = layout.slabs
        ns, nd = src_it.num_tokens // n, dst_it.num_tokens // n
        banks, box = layout.banks, math.prod(layout.box)
        elem = c_scalar(src_it.dtype.ir())

        def table(rows: Any) -> str:
            return ", ".join(str(int(np.ravel_multi_index(tuple(row), layout.box))) for row in rows)

        bs, bd = src_it.beats, dst_it.beats
        trips = _converter_trips(layout, src_it, dst_it)
        bank_of = (lambda token, per: f"({token} / {per}) % 2") if banks == 2 else (lambda token, per: "0")
        room = f" && j / {ns} <= k / {nd} + 1" if banks == 2 else ""  # slab j / ns reuses the bank of slab j / ns - 2
        tokens_in = "read" if bs == 1 else f"read / {bs}"  # source tokens complete
        lines = [
            f"  // {n} slab(s) of {ns} source / {nd} destination tokens; bank = one slab {list(layout.box)}",
            f"  static const int src_at[{ns}] = {{{table(layout.src_rel)}}};  // tile origin in the bank",
            f"  static const int dst_at[{nd}] = {{{table(layout.dst_rel)}}};",
            f"  static const int ready[{nd}] = {{{', '.join(str(int(v)) for v in layout.ready)}}};  // last source token it needs",
            f"  static {elem} bank[{banks}][{box}];",
            f"#pragma HLS array_partition variable=bank type=cyclic factor={bank_partitions(src_it, dst_it, box)} dim=2",
            # where lowering/memory.py's count puts each partition (by its shape), so Vitis builds what report.json counts
            *([] if is_register(bank := self.converter_banks[node])
              else [f"#pragma HLS bind_storage variable=bank type=ram_s2p impl={buffer_storage(bank)}"]),
            "  // a static schedule: each cycle reads the next source beat while its slab's bank is free (slab s",
            "  // reuses the bank of slab s - 2) and writes the next destination beat once its source tokens are in",
            "  int read = 0, written = 0;  // beats",
            f"  for (int t = 0; t < {trips}; ++t) {{",
            f"    #pragma HLS pipeline II=1  // depth {converter_depth()}",  # the timing model's converter depth
            f"    const int j = {tokens_in}{'' if bs == 1 else f', rb = read % {bs}'};  // source token (and beat)",
            f"    const int k = {'written' if bd == 1 else f'written / {bd}'}{'' if bd == 1 else f', wb = written % {bd}'};",
            f"    if (read < {src_it.num_tokens * bs}{room}) {{",
            f"      const {src.token} w = in.read();",
            f"      const int bank_k = {bank_of('j', ns)}, at = src_at[j % {ns}];",
            *self._lanes(src_it, "rb", "      ", "bank[bank_k][{glob}] = w.v[{lane}];", layout.box, "at"),
            "      ++read;",
            "    }",
            f"    if (written < {dst_it.num_tokens * bd} && {tokens_in} > (k / {nd}) * {ns} + ready[k % {nd}]) {{",
            f"      const int bank_k = {bank_of('k', nd)}, at = dst_at[k % {nd}];",
            f"      {dst.token} w = {{}};",
            *self._lanes(dst_it, "wb", "      ", "w.v[{lane}] = bank[bank_k][{glob}];", layout.box, "at"),
            "      out.write(w);",
            "      ++written;",
            "    }",
            "  }",
        ]
        params = [f"hls::stream<{src.token}>& in", f"hls::stream<{dst.token}>& out"]
        comment = (
            f"{node}: layout converter {src_it} -> {dst_it}\n// ping-pong buffer of {banks} bank(s) x {list(layout.box)} "
            f"(planned bank {list(planned)}, {shared} shared loop(s))"
        )
        return _Process(fn, node, params, [src.var, dst.var], lines, comment)

    # -- the file ------------------------------------------------------------------------------------

    def source(self) -> str:
        feedback = self.feedback_streams()
        out = [
            f"// Vitis HLS kernel `{self.top}`, generated by streamdsl's hls_backend from dataflow.kernel",
            f"// @{self.kernel.sym_name.data}. Regenerate rather than edit.",
            "//",
            "// Build: v++ -c -t hw -k " + self.top + " (see Makefile). C simulation with g++: see tb.cpp.",
            *_feedback_define(feedback),
            "#include <cmath>",
            "#include <cstdint>",
            "#include <limits>",
            "",
            "#include <ap_int.h>",
            '#include "hls_stream.h"',
            '#include "sd_support.h"',
            "",
            "// ---- beat (FIFO word, <= 1,024 bits) and tile / buffer types, row-major ----",
        ]
        for name, type_ in sorted(self.structs.items()):
            n = math.prod(type_.get_shape())
            out += [f"struct {name} {{", f"  {c_scalar(type_.get_element_type())} v[{n}];  // {list(type_.get_shape())}", "};"]
        out.append("")
        out.append("// ---- dataflow processes ----")
        for proc in self.procs:
            body = count_cycles(partition_arrays(proc.body, self.structs, proc.lanes))
            out += ["", f"// {proc.comment}", f"static void {proc.fn}({', '.join(proc.params)}) {{", *body, "}"]
        out += ["", *self._top(feedback)]
        return "\n".join(out) + "\n"

    def feedback_streams(self) -> list[StreamInfo]:
        """The streams read by a process called before their writer (`dataflow.itensor_feedback`)."""
        order = {p.fn: k for k, p in enumerate(self.procs)}
        return [s for s in self.streams.values() if order[s.consumer] < order[s.producer]]

    def _top(self, feedback: list[StreamInfo]) -> list[str]:
        scalars = [a for a in self.inputs if a.scalar]
        lines = [f'extern "C" {top_declaration(self.top, self.ports, scalars)} {{']
        for k, port in enumerate(self.ports):
            way = "write" if port.tensor.is_output else "read"  # the adapter's buffer: lowering/resources.py
            burst = f"max_{way}_burst_length={MAXI_BURST} num_{way}_outstanding={MAXI_OUTSTANDING}"
            lines.append(f"#pragma HLS interface m_axi port={port.name} bundle=gmem{k} offset=slave depth={port.words} {burst}")
        for name in [p.name for p in self.ports] + [a.name for a in scalars]:
            lines.append(f"#pragma HLS interface s_axilite port={name}")
        lines += ["#pragma HLS interface s_axilite port=return", "#pragma HLS dataflow", ""]
        lines.append("  // FIFOs: one writer and one reader process each; depths from FIFO sizing")
        back_names = {s.name for s in feedback}
        for s in self.streams.values():
            words = f"{s.depth} tokens x {s.beats} beats" if s.beats > 1 else f"{s.depth} tokens"
            back = ", feedback" if s.name in back_names else ""
            lines.append(f'  hls::stream<{s.token}, {s.depth_beats}> {s.var}("{s.name}");  // {s.producer} -> {s.consumer}, {words}{back}')
            lines.append(f"#pragma HLS stream variable={s.var} depth={s.depth_beats}")
            lines.append(f"#pragma HLS bind_storage variable={s.var} type=fifo impl={s.storage}")
        lines += ["", "  SD_DATAFLOW_BEGIN()  // nothing for Vitis: the region is the calls below"]
        lines += [f"  SD_DATAFLOW_PROCESS({p.fn}, {', '.join(p.args)});" for p in self.procs]
        lines += ["  SD_DATAFLOW_END()", "}"]
        return lines


def _feedback_define(feedback: list[StreamInfo]) -> list[str]:
    """What kernel.cpp says and defines ahead of its includes when it has feedback streams."""
    if not feedback:
        return []
    return [f"// Feedback stream(s) {', '.join(s.name for s in feedback)}: read by a process called before its writer, an "
            "hls::stream of",
            "// explicit depth (UG1399, \"Modeling Feedback in Dataflow Regions\"); sequential csim then suspends a reader",
            "// of an empty stream until it is written (hls_stream.h).",
            "#define SD_CSIM_FEEDBACK"]


def _converter_trips(layout: Any, src: itensor, dst: itensor) -> int:
    """Cycles of the converter's static schedule (the emitted loop, step by step)."""
    try:
        return converter_token_steps(layout, src, dst)[2]
    except StreamError as err:
        raise HlsEmitError(str(err)) from None


def emit_kernel(design_or_module: Any, depths: Mapping[str, int] | None = None) -> KernelSource:
    """The kernel C++ of a sized design (`sd.compile(prog)`), a program or a module; `depths`
    overrides FIFO depths by stream name (as `simulate(..., depths=...)` does)."""
    func, kernel = _entry(_module(design_or_module))
    emitter = _KernelEmitter(func, kernel, dict(depths or {}))
    emitter.ports.sort(key=lambda p: p.tensor.is_output)  # loads first, as the top takes them
    code = emitter.source()
    return KernelSource(
        emitter.top, code, emitter.inputs, emitter.outputs, list(emitter.streams.values()), [p.fn for p in emitter.procs],
        list(emitter.ports), emitter.hbm_code(), {p.fn: p.node for p in emitter.procs},
    )


def top_declaration(top: str, ports: list[Port], scalars: list[Arg]) -> str:
    """`void top(const ap_uint<512>* x, ..., ap_uint<512>* out, int n)`: one pointer per port (of
    its word: 512 bits unless narrowed), then the run-time scalars by value."""
    params = [f"{'' if p.tensor.is_output else 'const '}{p.word}* {p.name}" for p in ports]
    return f"void {top}({', '.join(params + [a.param for a in scalars])})"
