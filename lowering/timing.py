"""The timing model: per node of a `dataflow.kernel`, the cycle of every token it reads and writes.

This is the analytical model the FIFO sizing LP and the timed simulator consume (through
`streamdsl.wiring.graph_from_kernel`). It is a module of its own so that a model calibrated on
Vitis HLS reports can replace it: anything with `read_latency`, `free_latency` and
`schedule(op) -> NodeSchedule` will do. The constants are the one table in `U55C` (docs/timing.md).

Tasks (docs/ir.md): the body is a tree of `scf.for` loops.
- An innermost loop (no loop inside) is pipelined: ops are scheduled as soon as their operands are
  ready; a tile op on E scalar elements issues over ceil(E / lanes) cycles and finishes
  `op_latency` later; II = max(1, the busiest op's issue cycles, the loop-carried recurrence
  (iteration start to the yielded tile value), the accesses to one port in one iteration).
- Any other loop runs its iterations one after the other; loops in a block run one after the
  other, straight-line ops in between start as soon as their operands are ready.
- An `scf.if` without loops or stream accesses inside takes as long as its slowest branch.
- `lanes` is the task's or op's `unroll` attribute when present, else `U55C.lanes`.
Other nodes: DMAs stream at the measured bandwidth of their HBM pseudo-channels; forks, joins, reshapes, chunks and
concats pass one token per cycle; a converter runs the emitted static schedule: it fills one bank
of its ping-pong buffer per shared loop iteration while draining the other, a beat each way a cycle.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import DenseArrayBase, Float32Type, Float64Type, FloatAttr, IntegerAttr, IntegerType, ShapedType
from xdsl.dialects.linalg.abstract_ops import LinalgStructuredOperation
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.ir.affine import AffineDimExpr

from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaSequenceOp,
    DmaStoreOp,
    ITensorConverterOp,
    ITensorForkOp,
    ITensorReadOp,
    ITensorReassociateOp,
    ITensorType,
    ITensorWriteOp,
    RoutingOperation,
    StreamReadOp,
    StreamWriteOp,
    TaskOp,
)
from streamdsl.errors import StreamdslError
from streamdsl.graph import Graph
from streamdsl.itensor import itensor
from streamdsl.layout import converter_token_steps, slab_layout
from streamdsl.opinfo import OPS
from streamdsl.scalars import MAX_TRIPS, fold_integer
from streamdsl.wiring import NodeSchedule, graph_from_kernel, task_ports

__all__ = [
    "ACCUMULATORS", "CLOCK_ATTR", "HBM_CHANNELS_ATTR", "HBM_SHARE_ATTR", "HBM_WORD_ATTR", "U55C", "LanePartials",
    "LoopTiming", "TaskTiming", "TimingError", "TimingTable", "accumulator", "converter_depth", "dma_bits_per_cycle",
    "dma_cycles", "dma_token_cycles", "hbm_stripes", "hbm_token_words", "hbm_word_bits", "hbm_word_lanes",
    "issue_cycles", "kernel_graph", "lane_partials", "once_reader", "reduced_size", "streams_through", "table_of", "task_lanes",
    "task_timing", "tile_work", "unroll_lanes",
]  # fmt: skip


class TimingError(StreamdslError, ValueError):
    """The timing model cannot schedule an op (names the task, the op and what to change)."""


# Ops of a task body outside the op vocabulary (streamdsl.opinfo gives every scalar and
# element-wise op's latency): placeholders and terminators cost nothing; a reshape or a tile
# built from scalars is one register stage.
_STRUCTURAL_LATENCY = {
    "tensor.empty": 0, "linalg.yield": 0, "scf.yield": 0, "dataflow.yield": 0, "linalg.index": 0,
    "bufferization.to_tensor": 0, "tensor.dim": 0,
    "tensor.reshape": 1, "tensor.expand_shape": 1, "tensor.collapse_shape": 1, "tensor.cast": 1,
    "tensor.splat": 1, "tensor.from_elements": 1, "tensor.concat": 1,
}  # fmt: skip
_OP_LATENCY = {**{name: info.latency for name, info in OPS.items()}, **_STRUCTURAL_LATENCY}


@dataclass(frozen=True)
class TimingTable:
    """Every constant of the model; see docs/timing.md for where each value comes from."""

    clock_mhz: float = 300.0
    read_latency: int = 1  # a FIFO token is readable the cycle after its write
    free_latency: int = 1  # a FIFO slot is writable the cycle after its read (depth 2 = full rate)
    stream_op: int = 1  # cycles per stream beat (a token crosses as `itensor.beats` beats of <= 1,024 bits)
    lanes: int = 64  # scalar ops per cycle of a tile op without an `unroll` attribute
    loop_entry: int = 1  # cycles to enter each iteration of a non-pipelined loop
    buffer_latency: int = 2  # on-chip buffer (BRAM/URAM) access: extract_slice / insert_slice
    # one HBM pseudo-channel as measured, not its 14.375 GB/s peak: Shuhai (Wang et al., FCCM 2020)
    # measured 425 GB/s over the 32 channels of the U280's HBM2, the U55C's stacks (docs/timing.md)
    hbm_channel_gbps: float = 425 / 32
    hbm_word_bits: int = 512  # a DMA's m_axi port: one word per cycle (hls_backend/hbm.py)
    dma_latency: int = 64  # DMA request to first beat (AXI burst + HBM controller)
    sll_latency: int = 4  # register stages per SLR boundary a FIFO crosses (Laguna TX/RX + one each side; lowering/slr.py)
    op_latency: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(dict(_OP_LATENCY)))

    @property
    def hbm_bits_per_cycle(self) -> int:
        """Bits one pseudo-channel delivers per kernel cycle (354 at 300 MHz, 425 at 250 MHz)."""
        return int(self.hbm_channel_gbps * 8e3 / self.clock_mhz)

    def at_clock(self, clock_mhz: float) -> TimingTable:
        """This table at another kernel clock (cycles of logic stay; HBM bits per cycle change)."""
        return dataclasses.replace(self, clock_mhz=clock_mhz)

    def latency_of(self, op: Operation) -> int:
        """The pipeline latency of a scalar, element-wise or structural op (not a loop or tile op)."""
        try:
            return self.op_latency[op.name]
        except KeyError:
            raise TimingError(
                f"the timing model has no latency for `{op.name}`; add it to the op vocabulary "
                "(streamdsl/opinfo.py) or, for an op that computes nothing, to lowering/timing.py"
            ) from None

    # -- the TimingModel protocol of streamdsl.wiring -----------------------------------------

    def schedule(self, op: Operation) -> NodeSchedule:
        if isinstance(op, TaskOp):
            return _TaskScheduler(self, op).run()
        for kind, fn in _NODES.items():
            if isinstance(op, kind):
                return fn(self, op)
        raise TimingError(f"the timing model has no schedule for `{op.name}` in a kernel body (docs/ir.md lists the ops)")


U55C = TimingTable()


@dataclass(frozen=True)
class LoopTiming:
    """How the model runs one pipelined (innermost) `scf.for`: a new iteration every `ii` cycles,
    each `depth` cycles long; the emitted C++ pipelines the loop at this II (hls_backend)."""

    ii: int
    depth: int
    lanes: int  # scalar operations per cycle of the task's tile ops
    # loop-carried accumulators kept as this many interleaved partial results (iteration i updates
    # partial i % K), combined by a tree after the loop: their recurrence no longer bounds the II
    partials: Mapping[SSAValue, int] = field(default_factory=dict)
    combine: int = 0  # cycles of those trees after the last iteration


@dataclass(frozen=True)
class TaskTiming:
    """What the model assumes of a task's hardware, for the emitter to build it: each pipelined
    loop's II and depth, the pipeline depth (per-element latency) of each tile op, and the lanes."""

    loops: dict[scf.ForOp, LoopTiming]
    op_depth: dict[Operation, int]
    lanes: int


# associative combiners a loop may interleave (reassociating the loop's updates) and their identity
ACCUMULATORS = {"arith.addf": -0.0, "arith.maximumf": -math.inf, "arith.minimumf": math.inf}


def accumulator(arg: BlockArgument) -> Operation | None:
    """The element-wise linalg op that makes a loop-carried tensor an accumulator: `arg` (an
    iter_arg of an `scf.for`) is used once, by a linalg op whose body is one op of ACCUMULATORS
    on its two inputs, and that op's result is only yielded back as the next `arg`. Such a carried
    value can be kept as K partial results (the hardware's interleaved partial sums). Sums of
    16-bit floats are not: the simulators round them in order, and reassociated they differ by
    about 1e-3 relative."""
    loop = arg.block.parent_op()
    if not isinstance(loop, scf.ForOp) or arg.index == 0 or not isinstance(arg.type, ShapedType) or not arg.has_one_use():
        return None
    use = next(iter(arg.uses))
    op = use.operation
    if op.parent_block() is not arg.block or not op.name.startswith("linalg.") or len(op.results) != 1 or not op.regions:
        return None
    body = [o for o in op.regions[0].block.ops if o.name != "linalg.yield"]
    kinds = op.properties.get("iterator_types")
    if len(body) != 1 or body[0].name not in ACCUMULATORS or (kinds is not None and any(
            not str(k.data).endswith("parallel") for k in kinds.data)):  # type: ignore[attr-defined]
        return None
    args = op.regions[0].block.args
    if len(op.operands) != 3 or set(body[0].operands) != {args[0], args[1]} or use.index > 1:
        return None
    if body[0].name == "arith.addf" and not isinstance(arg.type.get_element_type(), Float32Type | Float64Type):
        return None  # a 16-bit sum reassociated is 1e-3 off the simulator's in-order sum: kept in order
    result = op.results[0]
    if not result.has_one_use() or (out := next(iter(result.uses))).operation is not arg.block.last_op or out.index != arg.index - 1:
        return None
    return op


# combiners a reduction tile op may reassociate into per-lane partial results (integer folds are
# exact; float max / min too; an f32 sum changes rounding within the bound docs/hls.md states)
FOLDS = frozenset({*ACCUMULATORS, "arith.addi", "arith.maxsi", "arith.minsi", "arith.maxui", "arith.minui"})


@dataclass(frozen=True)
class LanePartials:
    """A reduction tile op outside a pipelined loop, as hardware runs it at II=1: its iteration
    space flattened with the reduced dims innermost, `lanes` elements a cycle; every output element
    takes `chunks` consecutive cycles, lane l of chunk j folds its element into partial
    [j % interleave][l] (the combiner's latency then spans `interleave` chunks), and after an output's
    last chunk a tree of `tree` cycles folds its interleave x lanes partials and its initial value."""

    combiner: Operation  # the body op folding one element into the output
    lanes: int
    chunks: int
    interleave: int
    tree: int


def lane_partials(op: Operation, lanes: int, table: TimingTable = U55C) -> LanePartials | None:
    """How `op` reaches II=1 outside a pipelined loop, or None when it cannot (then every chunk's
    lanes fold into one accumulator in turn: a chunk per `depth` cycles). It can when the op has one
    output, its body yields `combiner(out, x)` with `out` used nowhere else and `combiner` in FOLDS,
    and a chunk of lanes never straddles two outputs (the reduced size is a multiple of the lanes)."""
    if not op.name.startswith("linalg.") or len(op.results) != 1 or not op.regions or not op.regions[0].blocks:
        return None
    reduced, work = reduced_size(op), tile_work(op)
    if work <= lanes:
        return None  # one chunk: nothing carried from cycle to cycle
    block = op.regions[0].block
    out, last = block.args[-1], block.last_op
    if reduced <= 1 or reduced % lanes or last is None or len(last.operands) != 1 or not out.has_one_use():
        return None
    combiner = last.operands[0].owner
    if not isinstance(combiner, Operation) or combiner.name not in FOLDS or out not in combiner.operands or len(combiner.operands) != 2:
        return None
    if combiner.name == "arith.addf" and not isinstance(out.type, Float32Type | Float64Type):
        return None  # a 16-bit sum is kept in order, as `accumulator` says
    latency = table.latency_of(combiner)
    chunks = reduced // lanes
    interleave = max(1, min(chunks, latency))
    levels = math.ceil(math.log2(interleave * lanes)) + 1  # the partials' tree, then the initial value
    return LanePartials(combiner, lanes, chunks, interleave, levels * latency)


def task_timing(task: TaskOp, table: TimingTable = U55C) -> TaskTiming:
    """The model's machine for one task, as the emitter builds it; a loop with a run-time trip
    count is timed at its maximum (`max_trips`), the worst case the FIFOs are sized for."""
    scheduler = _TaskScheduler(table, task, worst_case=True)
    scheduler.run()
    return TaskTiming(scheduler.loops, scheduler.op_depth, scheduler.lanes)


def kernel_graph(kernel: Operation, table: TimingTable = U55C) -> tuple[Graph, dict[str, SSAValue]]:
    """The timing graph of a `dataflow.kernel` under `table` at the kernel's clock (`table_of`)."""
    return graph_from_kernel(kernel, table_of(kernel, table))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Non-task nodes
# ---------------------------------------------------------------------------------------------


def _it(value: SSAValue):
    assert isinstance(value.type, ITensorType), value.type
    return value.type.itensor


def _token_cycles(table: TimingTable, value: SSAValue) -> int:
    """Cycles a token takes to cross a stream: one beat per `stream_op`."""
    return _it(value).beats * table.stream_op


def hbm_word_lanes(it: itensor, word_bits: int) -> int:
    """Elements per HBM word of a DMA's buffer (hls_backend/hbm.py: packed, i1 a byte each)."""
    return word_bits // (8 if it.dtype.bits == 1 else it.dtype.bits)


def hbm_token_words(it: itensor, word_bits: int) -> int:
    """HBM words per token of a DMA's buffer."""
    return -(-it.token_elements // hbm_word_lanes(it, word_bits))


def hbm_word_bits(op: Operation, table: TimingTable = U55C) -> int:
    """Bits of a DMA's m_axi word: its `hbm_word_bits` (a port narrowed to its stream's pace,
    lowering/hbm_channels.py `narrow_ports`), else the table's."""
    bits = op.attributes.get(HBM_WORD_ATTR)
    return bits.value.data if isinstance(bits, IntegerAttr) else table.hbm_word_bits


HBM_CHANNELS_ATTR = "hbm_channels"  # array<i64: ...>: the pseudo-channel of each stripe (lowering/hbm_channels.py)
HBM_SHARE_ATTR = "hbm_share"  # f64: the stripes' least share of their channels' bytes (1: channels of its own)
HBM_WORD_ATTR = "hbm_word_bits"  # i64: a narrowed m_axi port's word (absent: the table's 512)
CLOCK_ATTR = "clock_mhz"  # on a dataflow.kernel: the kernel clock its timing model runs at


def hbm_stripes(op: Operation) -> tuple[int, float]:
    """A DMA's stripes (HBM ports, each on its own pseudo-channel) and the share of those channels'
    bandwidth it gets; a DMA without `hbm_channels` has one channel of its own."""
    channels, share = op.attributes.get(HBM_CHANNELS_ATTR), op.attributes.get(HBM_SHARE_ATTR)
    stripes = len(channels.get_values()) if isinstance(channels, DenseArrayBase) else 1
    return stripes, share.value.data if isinstance(share, FloatAttr) else 1.0


def dma_bits_per_cycle(op: Operation, table: TimingTable = U55C) -> int:
    """HBM bits per cycle a DMA's stripes deliver together: each stripe's channel at the measured
    rate, times the DMA's share of it."""
    stripes, share = hbm_stripes(op)
    return max(1, int(stripes * table.hbm_bits_per_cycle * share))


def dma_token_cycles(op: DmaLoadOp | DmaStoreOp, table: TimingTable = U55C) -> int:
    """Cycles one token of a DMA takes alone (`dma_cycles` of one token)."""
    return int(dma_cycles(op, 1, table)[0])


def dma_cycles(op: DmaLoadOp | DmaStoreOp | DmaSequenceOp, tokens: int, table: TimingTable = U55C,
               value: SSAValue | None = None) -> np.ndarray:
    """Cycles the first k tokens of a DMA take, for k = 1..tokens: each of its stripes is a port
    of `hbm_word_bits` (512 unless narrowed; a word per cycle) on its own HBM pseudo-channel (the
    emitted top gives a tensor loaded twice two DMAs), and the channels deliver
    `dma_bits_per_cycle` of the tokens' whole words, one burst with no gap between tokens (the
    emitted DMA is one loop over all its words: a token's fraction of a cycle is not rounded up,
    as csim's SD_HBM counts it); never faster than the stream takes its beats. `value`: the stream
    of a `dma_sequence`'s member, through the sequence's ports."""
    if value is None:
        value = op.result if isinstance(op, DmaLoadOp) else op.source
    word = hbm_word_bits(op, table)
    words, stripes = hbm_token_words(_it(value), word), hbm_stripes(op)[0]
    k = np.arange(1, tokens + 1, dtype=np.int64)
    return np.maximum.reduce([k * _token_cycles(table, value), -(-k * words // stripes),
                              -(-k * words * word // dma_bits_per_cycle(op, table))])


def table_of(kernel: Operation, table: TimingTable = U55C) -> TimingTable:
    """`table` at the kernel's clock (its `clock_mhz` attribute, set by a design plan), else as is."""
    clock = kernel.attributes.get(CLOCK_ATTR)
    return table.at_clock(float(clock.value.data)) if isinstance(clock, FloatAttr | IntegerAttr) else table


def _dma_load(table: TimingTable, op: DmaLoadOp) -> NodeSchedule:
    """Token k's words are in after `dma_latency + dma_cycles(k + 1)`; its first beat leaves
    `beats - 1` cycles before that (`beats` cycles before the last, which its reader takes one per
    cycle), so a reader never waits inside a token for HBM words; done when the last token's beats
    are out."""
    done = dma_cycles(op, _it(op.result).num_tokens, table)
    times = table.dma_latency + done - _token_cycles(table, op.result)
    return NodeSchedule({}, {op.result: times}, latency=table.dma_latency + int(done[-1] if done.size else 0))


def _dma_sequence(table: TimingTable, op: DmaSequenceOp) -> NodeSchedule:
    """Each member as `_dma_load` times it through the sequence's ports, one after the other: the
    emitted DMA runs a pipelined loop per member, and a loop ends `dma_latency` after it asked for
    its last word (its pipeline drains), so member k starts when member k - 1 ended."""
    writes, start = {}, 0
    for m in op.members:
        done = dma_cycles(op, _it(m.result).num_tokens, table, m.result)
        writes[m.result] = start + table.dma_latency + done - _token_cycles(table, m.result)
        start += table.dma_latency + (int(done[-1]) if done.size else 0)
    return NodeSchedule({}, writes, latency=start)


def _dma_store(table: TimingTable, op: DmaStoreOp) -> NodeSchedule:
    done = dma_cycles(op, _it(op.source).num_tokens, table)
    times = np.concatenate(([0], done[:-1]))[: done.size]
    return NodeSchedule({op.source: times}, {}, latency=int(done[-1] if done.size else 0) + table.dma_latency)


def _moved(table: TimingTable, reads: dict, writes: dict, source: SSAValue) -> NodeSchedule:
    """A node moving a beat per cycle: done one cycle after the last token's last beat."""
    n, cycles = _it(source).num_tokens, _token_cycles(table, source)
    return NodeSchedule(reads, writes, latency=n * cycles + table.stream_op)


def _fork(table: TimingTable, op: ITensorForkOp) -> NodeSchedule:
    """A one-beat token goes to every output in the same cycle. A token of several beats goes to
    the outputs whole, one after the other (hls_backend/emit.py: written beat by beat to all of
    them, a consumer could wait for the rest of a token while another output is full, and deadlock):
    `outputs x beats` cycles a token, output i's copy `i x beats` cycles after the first."""
    n, cycles = _it(op.source).num_tokens, _token_cycles(table, op.source)
    turns = len(op.outputs) if _it(op.source).beats > 1 else 1
    k = np.arange(n, dtype=np.int64) * cycles * turns
    writes = {out: k + (i if turns > 1 else 0) * cycles + table.stream_op for i, out in enumerate(op.outputs)}
    return NodeSchedule({op.source: k}, writes, latency=n * cycles * turns + table.stream_op)


def _reassociate(table: TimingTable, op: ITensorReassociateOp) -> NodeSchedule:
    """Beat for beat: the same elements in the same order make the same beats."""
    k = np.arange(_it(op.source).num_tokens, dtype=np.int64) * _token_cycles(table, op.source)
    return _moved(table, {op.source: k}, {op.result: k + table.stream_op}, op.source)


def _routed(table: TimingTable, op: RoutingOperation) -> NodeSchedule:
    """One token per `beats` cycles; token k of the whole stream belongs to part `op.route()[k]`.
    A split reads the whole stream and writes the parts, a merge reads the parts and writes the whole."""
    route = op.route()
    k = np.arange(route.size, dtype=np.int64) * _token_cycles(table, op.whole)
    by_part = {p: k[route == i] for i, p in enumerate(op.parts)}
    out = table.stream_op
    if op.splits:
        return _moved(table, {op.whole: k}, {p: t + out for p, t in by_part.items()}, op.whole)
    return _moved(table, by_part, {op.whole: k + out}, op.whole)


def _converter(table: TimingTable, op: ITensorConverterOp) -> NodeSchedule:
    """One process on the emitted static schedule (`converter_steps`, hls_backend/emit.py): a
    source beat read and a destination beat written per cycle at most, each at its step of the
    schedule, in the schedule's order. The reads block: a read of the next slab (into the other
    bank) waits for its token even while the current slab's tokens could leave, as the emitted
    loop does. A source token is read at the step of its first beat; a destination token is
    written at the step of its last beat, in the iteration's last stage (`converter_depth`)."""
    src, dst = _it(op.source), _it(op.result)
    shared = op.shared_loops.value.data if op.shared_loops is not None else 0
    layout = slab_layout(src, dst, shared)  # the runtime's and the emitter's slab analysis
    first, last, trips = converter_token_steps(layout, src, dst)
    order = {op.source: 2 * first, op.result: 2 * last + 1}  # in a step, the read before the write
    depth = converter_depth(table)  # the write is the iteration's last stage
    return NodeSchedule({op.source: first * table.stream_op}, {op.result: last * table.stream_op + depth - 1},
                        latency=trips * table.stream_op + depth - 1, order=order)


def converter_depth(table: TimingTable = U55C) -> int:
    """Pipeline depth of the emitted converter loop's iteration: read the source beat, store it
    in the bank, read the bank (an on-chip buffer access), write the destination beat."""
    return table.buffer_latency + 3


_NODES = {
    DmaLoadOp: _dma_load,
    DmaSequenceOp: _dma_sequence,
    DmaStoreOp: _dma_store,
    ITensorForkOp: _fork,
    ITensorReassociateOp: _reassociate,
    RoutingOperation: _routed,  # join, chunk, concat
    ITensorConverterOp: _converter,
}


# ---------------------------------------------------------------------------------------------
# Tasks: a loop tree
# ---------------------------------------------------------------------------------------------


@dataclass
class _Sched:
    """Token times per port (task block argument) relative to the start, the duration, and per
    port the position of each access in program order (the order the emitted C++ performs
    them: iteration by iteration, op by op) among the `count` accesses of this region."""

    duration: int
    ports: dict[BlockArgument, np.ndarray]
    order: dict[BlockArgument, np.ndarray] = field(default_factory=dict)
    count: int = 0


def _merge(parts: Sequence[_Sched | tuple[int, _Sched]]) -> _Sched:
    """A block's loops and straight-line accesses, in program order; (start, part) shifts times.
    Per port the accesses are ordered as the program performs them."""
    times: dict[BlockArgument, list[np.ndarray]] = {}
    order: dict[BlockArgument, list[np.ndarray]] = {}
    count = 0
    for start, part in (p if isinstance(p, tuple) else (0, p) for p in parts):
        for port, ts in part.ports.items():
            times.setdefault(port, []).append(np.asarray(ts, np.int64) + start)
            order.setdefault(port, []).append(part.order[port] + count)
        count += part.count
    ranks = {p: np.concatenate(o) for p, o in order.items()}
    by_rank = {p: np.argsort(r, kind="stable") for p, r in ranks.items()}
    return _Sched(0, {p: np.concatenate(ts)[by_rank[p]] for p, ts in times.items()}, {p: ranks[p][by_rank[p]] for p in ranks}, count)


class _Accesses:
    """Stream accesses of straight-line code, recorded in program order."""

    def __init__(self) -> None:
        self.times: dict[BlockArgument, list[int]] = {}
        self.ranks: dict[BlockArgument, list[int]] = {}
        self.count = 0

    def add(self, port: BlockArgument, time: int) -> None:
        self.times.setdefault(port, []).append(time)
        self.ranks.setdefault(port, []).append(self.count)
        self.count += 1

    def last(self, port: BlockArgument) -> int | None:
        ts = self.times.get(port)
        return ts[-1] if ts else None

    def sched(self, duration: int = 0) -> _Sched:
        ports = {p: np.asarray(ts, np.int64) for p, ts in self.times.items()}
        return _Sched(duration, ports, {p: np.asarray(r, np.int64) for p, r in self.ranks.items()}, self.count)


class _TaskScheduler:
    def __init__(self, table: TimingTable, task: TaskOp, worst_case: bool = False):
        self.table, self.task = table, task
        self.worst_case = worst_case  # a run-time trip count at its maximum (`max_trips`), for the emitter
        self.name = task.sym_name.data
        self.lanes = task_lanes(task, table)
        self.least_ii = _positive_attr(task, "ii") or 1  # a hint: pipelined loops start no faster
        self.known: dict[SSAValue, int] = {}  # indices of the loops timed iteration by iteration
        self.loops: dict[scf.ForOp, LoopTiming] = {}
        self.op_depth: dict[Operation, int] = {}
        self.pipelining = 0  # > 0 while timing a pipelined loop's body (its tile ops are unrolled)

    def run(self) -> NodeSchedule:
        sched = self.block(self.task.body.block)
        reads: dict[SSAValue, np.ndarray] = {}
        writes: dict[SSAValue, np.ndarray] = {}
        order: dict[SSAValue, np.ndarray] = {}
        for arg, outer, wrote in task_ports(self.task):
            times = sched.ports.get(arg, np.zeros(0, np.int64))
            (writes if wrote else reads)[outer] = times
            order[outer] = sched.order.get(arg, np.zeros(0, np.int64))
            self._check_tokens(outer, arg, times, "writes" if wrote else "reads")
        return NodeSchedule(reads, writes, latency=max(sched.duration, 1), order=order)

    def _check_tokens(self, outer: SSAValue, arg: BlockArgument, times: np.ndarray, verb: str) -> None:
        if not isinstance(outer.type, ITensorType):
            return
        want = outer.type.itensor.num_tokens
        if times.size != want:
            raise TimingError(
                f"task {self.name}: {verb} {times.size} tokens on port {arg.index} but its type {outer.type} has "
                f"{want}; every read/write of a port must sit in loops whose trip counts multiply to the token count"
            )

    # -- blocks and loops ----------------------------------------------------------------------

    def block(self, block: Block) -> _Sched:
        """Sequential region: loops one after the other, straight-line ops as soon as possible."""
        ready: dict[SSAValue, int] = {}
        barrier, end = 0, 0
        parts: list[_Sched | tuple[int, _Sched]] = []
        straight = _Accesses()
        for op in block.ops:
            if isinstance(op, scf.ForOp):
                start = end
                inner = self.loop(op)
                parts += [straight.sched(), (start, inner)]
                straight = _Accesses()
                barrier = end = start + inner.duration
                for r in op.results:
                    ready[r] = end
                continue
            start = max([barrier, *(ready.get(v, 0) for v in op.operands)])
            start, finish = self.place(op, start, straight)
            for r in op.results:
                ready[r] = finish
            end = max(end, finish)
        merged = _merge([*parts, straight.sched()])
        merged.duration = end
        return merged

    def place(self, op: Operation, start: int, accesses: _Accesses) -> tuple[int, int]:
        """Schedule one op at or after `start`; returns (start, finish) and records port accesses
        (a token holds its port for its beats, the time recorded is its first beat's)."""
        port = self.port(op)
        if port is None:
            return start, start + self.latency(op)
        cycles = self.token_cycles(port)
        if (previous := accesses.last(port)) is not None:
            start = max(start, previous + cycles)
        accesses.add(port, start)
        return start, start + cycles

    def token_cycles(self, port: BlockArgument) -> int:
        return _token_cycles(self.table, port) if isinstance(port.type, ITensorType) else self.table.stream_op

    def loop(self, op: scf.ForOp) -> _Sched:
        try:
            trips = _trip_count(op, self.name, self.known)
        except TimingError:
            if not (self.worst_case and isinstance(most := op.attributes.get(MAX_TRIPS), IntegerAttr)):
                raise
            trips = most.value.data
        if trips == 0:
            return _Sched(0, {})
        iv = op.body.block.args[0]
        if any(isinstance(o, scf.ForOp) and o is not op and any(_depends(v, iv) for v in (o.lb, o.ub, o.step))
               for o in op.walk()):
            return self.unrolled(op, iv, trips)
        if any(isinstance(o, scf.ForOp) for o in op.body.block.ops):
            inner = self.block(op.body.block)
            period = inner.duration + self.table.loop_entry
            return _repeat(inner, trips, period, trips * period)
        return self.pipelined(op, trips)

    def unrolled(self, op: scf.ForOp, iv: SSAValue, trips: int) -> _Sched:
        """A loop whose inner loops' trip counts depend on its index (a triangular nest): its
        iterations are timed one by one, one after the other."""
        first, step = _index_value(op.lb, self.known, self.name), _index_value(op.step, self.known, self.name)
        parts: list[_Sched | tuple[int, _Sched]] = []
        start = 0
        for k in range(trips):
            self.known[iv] = first + k * step
            inner = self.block(op.body.block)
            parts.append((start, inner))
            start += inner.duration + self.table.loop_entry
        del self.known[iv]
        merged = _merge(parts)
        merged.duration = start
        return merged

    def pipelined(self, op: scf.ForOp, trips: int) -> _Sched:
        body = op.body.block
        ready: dict[SSAValue, int] = {}
        carried: dict[SSAValue, int] = {a: 0 for a in body.args[1:] if not isinstance(a.type, ITensorType)}
        accesses = _Accesses()
        busiest = 1
        spans: dict[Operation, int] = {}
        first: dict[SSAValue, int] = {}  # a tile streamed through: when its first beat is in
        self.pipelining += 1
        for inner in body.ops:
            start = max([0, *(first.get(v, ready.get(v, 0)) for v in _inputs(inner))])
            start, finish = self.place(inner, start, accesses)
            if streamed := [ready[v] for v in inner.operands if v in first]:  # it ends its depth after the last beat
                finish = max(finish, max(streamed) + finish - start - self.issue(inner) + 1)
            spans[inner] = finish - start
            busiest = max(busiest, self.issue(inner))
            for r in inner.results:
                ready[r] = finish
                if isinstance(inner, ITensorReadOp) and streams_through(r, self.lanes):
                    first[r] = start + self.table.stream_op
            if hop := self.carried_path(inner, carried, finish - start):
                carried[inner.results[0]] = hop
        self.pipelining -= 1
        depth = max([1, *ready.values()])
        yielded = list(body.last_op.operands) if body.last_op is not None else []
        sums = {arg: acc for arg in body.args[1:] if (acc := accumulator(arg)) is not None}
        recurrence = max([0, *(carried.get(v, 0) for k, v in enumerate(yielded) if body.args[k + 1] not in sums)])
        port_span = max([0, *(ts[-1] - ts[0] + self.token_cycles(p) for p, ts in accesses.times.items())])
        ii = max(1, busiest, recurrence, port_span, self.least_ii)
        # an accumulator whose chain (its op, which takes the carried value directly) is longer
        # than the II becomes K interleaved partials: the chain then spans K iterations, and a
        # tree of ceil(log2 K) of its ops follows the loop
        partials, combine = {}, 0
        for arg, acc in sums.items():
            chain = spans[acc]
            k = min(trips, -(-chain // ii))
            if k > 1:
                partials[arg] = k
                combine = max(combine, math.ceil(math.log2(k)) * chain)
            ii = max(ii, -(-chain // max(1, k)))
        if (timed := self.loops.get(op)) is not None:  # inside a triangular nest: its slowest iteration
            ii, depth = max(ii, timed.ii), max(depth, timed.depth)
            partials = {a: max(k, timed.partials.get(a, 0)) for a, k in partials.items()}
            combine = max(combine, timed.combine)
        self.loops[op] = LoopTiming(ii, depth, self.lanes, partials, combine)
        return _repeat(accesses.sched(), trips, ii, (trips - 1) * ii + depth + combine)

    def carried_path(self, op: Operation, carried: dict[SSAValue, int], latency: int) -> int:
        """Longest path from a loop-carried value through `op` (the recurrence), 0 if none. A
        buffer updated with insert_slice writes a new slice each iteration: one cycle, not a chain."""
        if op.name == "tensor.insert_slice" and op.operands[1] in carried:
            others = [carried[v] + latency for v in op.operands[:1] if v in carried]
            return max([carried[op.operands[1]] + 1, *others])
        paths = [carried[v] + latency for v in _inputs(op) if v in carried]
        return max(paths) if paths and op.results else 0

    # -- ops -----------------------------------------------------------------------------------

    def port(self, op: Operation) -> BlockArgument | None:
        """The task port a stream op touches: reads name it directly, writes through iter_args."""
        if isinstance(op, ITensorReadOp | StreamReadOp):
            value = op.operands[0]
        elif isinstance(op, ITensorWriteOp):
            value = op.dest
        elif isinstance(op, StreamWriteOp):
            value = op.stream
        else:
            return None
        while True:
            if isinstance(value, BlockArgument) and value.block is self.task.body.block:
                return value
            if isinstance(value, BlockArgument) and isinstance(loop := value.block.parent_op(), scf.ForOp):
                value = loop.iter_args[value.index - 1]
            elif isinstance(value.owner, ITensorWriteOp):
                value = value.owner.dest
            else:
                raise TimingError(f"task {self.name}: `{op.name}` uses a stream that is not a port of the task")

    def branches(self, op: Operation) -> int:
        """An `scf.if` (or another region op without loops and streams): its slowest region."""
        if any(self.port(inner) is not None or isinstance(inner, scf.ForOp) for inner in op.walk() if inner is not op):
            raise TimingError(
                f"task {self.name}: `{op.name}` has loops or stream accesses inside; the timing model needs "
                "static token schedules, so keep reads, writes and loops outside conditionals"
            )
        longest = 0
        for block in (b for region in op.regions for b in region.blocks):
            ready: dict[SSAValue, int] = {}
            for inner in block.ops:
                start = max([0, *(ready.get(v, 0) for v in inner.operands)])
                finish = start + self.latency(inner)
                ready.update(dict.fromkeys(inner.results, finish))
                longest = max(longest, finish)
        return longest

    def issue(self, op: Operation) -> int:
        return issue_cycles(op, self.lanes)

    def latency(self, op: Operation) -> int:
        if op.regions and not _is_compute(op):
            return self.branches(op)
        if op.name in ("tensor.extract_slice", "tensor.insert_slice", "tensor.extract", "tensor.insert"):
            return self.issue(op) - 1 + self.table.buffer_latency
        if _is_compute(op):
            depth, issue = self.body_latency(op), self.issue(op)
            if not self.pipelining and reduced_size(op) > 1 and issue > 1:
                # outside a pipelined loop a reduction's lanes are chunked (hls_backend/body.py):
                # II=1 with per-lane partials and a tree, else each chunk waits for the last one
                if (plan := lane_partials(op, unroll_lanes(op) or self.lanes, self.table)) is not None:
                    depth = _scalar_path(op, self.table) + plan.tree
                else:
                    self.op_depth[op] = max(self.op_depth.get(op, 0), depth)
                    return issue * depth
            self.op_depth[op] = max(self.op_depth.get(op, 0), depth)
            return issue - 1 + depth
        return self.table.latency_of(op)

    def body_latency(self, op: Operation) -> int:
        """A linalg op's per-element pipeline: its scalar body's critical path, plus an adder tree
        over reduced dims."""
        if op.name == "linalg.matmul":
            lat, reduced = self.table.op_latency["arith.mulf"], reduced_size(op)
        elif op.name in ("linalg.fill", "linalg.copy", "linalg.transpose", "linalg.broadcast"):
            return 1
        else:
            lat = _scalar_path(op, self.table) if op.regions else 1  # a named op without a body copies
            reduced = reduced_size(op)
        tree = math.ceil(math.log2(reduced)) if reduced > 1 else 0
        return max(1, lat + tree * self.table.op_latency[_tree_adder(op)])


def _inputs(op: Operation) -> list[SSAValue]:
    """What `op` waits for: its operands and, for a region op (an `scf.if`), the values its regions
    use from outside it (a carried accumulator updated in a branch is a recurrence through the if)."""
    inside = {r for inner in op.walk() for r in (*inner.results, *(a for reg in inner.regions for b in reg.blocks for a in b.args))}
    captured = [v for inner in op.walk() if inner is not op for v in inner.operands if v not in inside]
    return list(dict.fromkeys([*op.operands, *captured]))


def _repeat(body: _Sched, trips: int, period: int, duration: int) -> _Sched:
    """`trips` iterations of `body`, one every `period` cycles, in program order."""
    steps = np.arange(trips, dtype=np.int64)[:, None]
    ports = {p: (steps * period + t[None, :]).ravel() for p, t in body.ports.items()}
    order = {p: (steps * body.count + r[None, :]).ravel() for p, r in body.order.items()}
    return _Sched(duration, ports, order, trips * body.count)


def _trip_count(op: scf.ForOp, task: str, known: Mapping[SSAValue, int] | None = None) -> int:
    lb, ub, step = (_index_value(v, known or {}, task, name) for name, v in
                    (("lower bound", op.lb), ("upper bound", op.ub), ("step", op.step)))
    return max(0, -(-(ub - lb) // step))


def _index_value(value: SSAValue, known: Mapping[SSAValue, int], task: str, what: str = "bound") -> int:
    """A loop bound: a constant, or integer arithmetic on constants and the indices of enclosing
    loops timed iteration by iteration (triangular nests)."""
    if value in known:
        return known[value]
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    if isinstance(owner, Operation):
        result = fold_integer(owner, [_index_value(v, known, task, what) for v in owner.operands])
        if result is not None:
            return result
    raise TimingError(f"task {task}: scf.for {what} is neither an arith.constant nor integer arithmetic on constants and "
                      "enclosing loop indices; the timing model needs trip counts it can compute (run-time scalars are "
                      "replaced by their values first: streamdsl.scalars.specialise)")


def _depends(value: SSAValue, iv: SSAValue) -> bool:
    """Whether `value` is computed from the loop index `iv` (through integer arithmetic)."""
    if value is iv:
        return True
    owner = value.owner
    return isinstance(owner, Operation) and not owner.regions and any(_depends(v, iv) for v in owner.operands)


def unroll_lanes(op: Operation) -> int | None:
    """The lanes an op's `unroll` attribute gives (a task's or a tile op's), None when it has no
    positive one (the table's default lanes apply)."""
    return _positive_attr(op, "unroll")


def _positive_attr(op: Operation, name: str) -> int | None:
    attr = op.attributes.get(name)
    return attr.value.data if isinstance(attr, IntegerAttr) and attr.value.data > 0 else None


def _is_compute(op: Operation) -> bool:
    return op.name.startswith("linalg.") or op.name in ("tensor.extract_slice", "tensor.insert_slice")


def loop_sizes(op: Operation) -> dict[int, int]:
    """Iteration-domain sizes of a linalg op, read off the operands its indexing maps name."""
    maps = op.properties.get("indexing_maps")
    if maps is None:
        return {}
    sizes: dict[int, int] = {}
    for value, amap in zip(op.operands, maps.data):  # type: ignore[attr-defined]
        if not isinstance(value.type, ShapedType):
            continue
        for expr, size in zip(amap.data.results, value.type.get_shape()):
            if isinstance(expr, AffineDimExpr):
                sizes.setdefault(expr.position, size)
    return sizes


def once_reader(token: SSAValue) -> LinalgStructuredOperation | None:
    """The one reader of a token's tile read in a pipelined loop (an innermost `scf.for`, as
    `loop` pipelines them), when that reader is a loop-nest op of the same iteration reading each
    element of the tile exactly once (its map names distinct dims and its loops span exactly the
    tile); else None. Such a tile is written a beat a cycle and read once, in one iteration."""
    read, loop = token.owner, token.owner.parent_op() if isinstance(token.owner, Operation) else None
    if not isinstance(read, ITensorReadOp) or not token.has_one_use() or not isinstance(loop, scf.ForOp):
        return None
    if any(isinstance(o, scf.ForOp) for o in loop.body.block.ops):
        return None
    use = next(iter(token.uses))
    reader = use.operation
    if not isinstance(reader, LinalgStructuredOperation) or reader.parent_block() is not read.parent_block():
        return None
    indices = reader.get_indexing_maps().data[use.index].data.results
    if not all(isinstance(e, AffineDimExpr) for e in indices) or len({e.position for e in indices}) != len(indices):  # type: ignore[attr-defined]
        return None
    return reader if tile_work(reader) == math.prod(token.type.get_shape()) else None  # type: ignore[attr-defined]


def streams_through(token: SSAValue, lanes: int) -> bool:
    """Whether a token's tile is consumed beat by beat as it arrives and never held whole (docs/hls.md
    "Tiles streamed through"): its `once_reader` keeps pace with its beats (its work over its
    `lanes`, or its `unroll`, issues in no more cycles than the token has beats) and every element
    it reads and writes is an integer (a sum in any order is the same sum, so each beat's products
    are added as it comes: a weight tile of a matvec part). The model then starts the reader at the
    first beat (`_TaskScheduler.pipelined`) and the count holds two beats in registers (one arriving, one
    in the multipliers) where a whole tile took a memory (lowering/memory.py `task_tensors`)."""
    reader = once_reader(token)
    if reader is None:
        return False
    if not all(isinstance(getattr(v.type, "element_type", None), IntegerType) for v in (*reader.operands, *reader.results)
               if isinstance(v.type, ShapedType)):
        return False
    return issue_cycles(reader, lanes) <= _it(token.owner.operands[0]).beats  # type: ignore[union-attr]


def task_lanes(task: TaskOp, table: TimingTable = U55C) -> int:
    """Scalar operations per cycle of `task`'s tile ops: its `unroll`, else the table's lanes."""
    return unroll_lanes(task) or table.lanes


def issue_cycles(op: Operation, lanes: int) -> int:
    """Cycles an op's hardware is busy per execution: its scalar work over its `unroll`, else over
    its task's `lanes`."""
    work = tile_work(op)
    return max(1, -(-work // (unroll_lanes(op) or lanes))) if work else 1


def tile_work(op: Operation) -> int:
    """Scalar operations a tile op performs."""
    if op.name == "linalg.matmul":
        (m, k), (_, n) = op.operands[0].type.get_shape()[-2:], op.operands[1].type.get_shape()[-2:]  # type: ignore[attr-defined]
        return m * n * k
    if op.name == "tensor.extract_slice":
        return math.prod(op.results[0].type.get_shape())  # type: ignore[attr-defined]
    if op.name == "tensor.insert_slice":
        return math.prod(op.operands[0].type.get_shape())  # type: ignore[attr-defined]
    if sizes := loop_sizes(op):
        return math.prod(sizes.values())
    if op.name.startswith("linalg.") and op.results and isinstance(op.results[0].type, ShapedType):
        return math.prod(op.results[0].type.get_shape())
    return 0


def reduced_size(op: Operation) -> int:
    """Elements a linalg op folds into each output element (the product of its reduction loops'
    sizes): 1 for an element-wise op, and for a reduction whose reduced loops have extent 1."""
    if op.name == "linalg.matmul":
        return op.operands[0].type.get_shape()[-1]  # type: ignore[attr-defined]
    kinds = op.properties.get("iterator_types")
    sizes = loop_sizes(op)
    if kinds is None or not sizes:
        return 1
    return math.prod(sizes.get(i, 1) for i, k in enumerate(kinds.data) if str(k.data).endswith("reduction"))  # type: ignore[attr-defined]


def _tree_adder(op: Operation) -> str:
    """The adder of a reduction's tree: an integer accumulator (an i32 matmul of quantized tiles)
    adds in LUTs (`arith.addi`), a float one in an `arith.addf` core."""
    result = op.results[0].type if op.results else None
    elt = result.get_element_type() if isinstance(result, ShapedType) else None
    return "arith.addi" if isinstance(elt, IntegerType) else "arith.addf"


def _scalar_path(op: Operation, table: TimingTable) -> int:
    """Critical path through the scalar ops of a linalg body."""
    ready: dict[SSAValue, int] = {}
    longest = 0
    for inner in op.regions[0].block.ops:
        start = max([0, *(ready.get(v, 0) for v in inner.operands)])
        finish = start + (table.buffer_latency if inner.name == "tensor.extract" else table.latency_of(inner))
        for r in inner.results:
            ready[r] = finish
        longest = max(longest, finish)
    return longest
