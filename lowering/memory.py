"""On-chip memory by shape: which primitive holds each FIFO and buffer, and how many of them.

A memory of `width` bits x `depth` words costs whole primitives, not bits (docs/hls.md, "On-chip
memory"):
- LUTRAM / SRL: a FIFO at most `SRL_DEPTH` (32) words deep is a shift register, one SRL32 LUT
  per bit of width (what Vitis HLS picks for shallow FIFOs); any memory of at most 1,024 bits.
- BRAM36: 72 bits x 512 words each, so ceil(width / 72) x ceil(depth / 512).
- URAM: 72 bits x 4,096 words each, so ceil(width / 72) x ceil(depth / 4096).
Between BRAM and URAM a memory takes the one that uses the smaller share of the device's
supply; when that over-fills one of them, `count` moves FIFOs to the other (`rebalance`), those
saving the most primitives per primitive they take first, until it fits, and the emitter binds
each FIFO where the count put it (`fifo_storages`).
A FIFO's word is the stream beat the emitter uses (`itensor.beats`: at most `MAX_WORD_BITS` =
1,024 bits, the last beat of a token padded), so a FIFO of D tokens of b beats is D x b words of
min(token bits, 1,024) bits; a task-local buffer of B bits is ceil(B / 1024) words. Task-local
tensors of at most `REGISTER_BITS` (4,096: one 64-lane tile of 64-bit elements) are registers (the
lane-parallel loops partition them), not memories; so is a token's tile consumed beat by beat as
it arrives (a matvec part's weight tile, `timing.streams_through`): two beats. A converter's banks are the memories the
emitter declares (`converter_buffer`): cut cyclically into one partition per lane of the wider
beat, each partition a memory of one element a word (one of a single word is a register), bound
by `bind_storage` where this count puts it (`buffer_storage`). A DMA's `m_axi` adapter buffers
`MAXI_OUTSTANDING` bursts of `MAXI_BURST` words of its port (512 bits, or narrower:
lowering/hbm_channels.py `narrow_ports`) per HBM stripe (Vitis builds it in BRAM36: it never
moves).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from xdsl.dialects import tensor
from xdsl.dialects.builtin import TensorType
from xdsl.dialects.linalg.abstract_ops import LinalgStructuredOperation
from xdsl.dialects.linalg.ops import BroadcastOp, FillOp, ReduceOp, TransposeOp
from xdsl.ir import BlockArgument, Operation, SSAValue

from lowering.engine_phases import engine_phases
from lowering.timing import U55C, hbm_stripes, hbm_word_bits, streams_through, task_lanes
from streamdsl.compiler import ConverterRecord, converter_records
from streamdsl.dialects.dataflow import DMA_OPS, KernelOp, TaskOp
from streamdsl.itensor import BEAT_BITS
from streamdsl.wiring import kernel_nodes, node_name

__all__ = [
    "BRAM36", "CAPACITY", "Buffer", "HBM_WORD_BITS", "LUTRAM", "MAXI_BURST", "MAXI_OUTSTANDING", "MAXI_WORDS", "MAX_WORD_BITS",
    "MEMORY_FILL", "REGISTER_BITS", "SRL_DEPTH", "URAM", "MemoryUse", "bind", "buffer_storage", "converter_buffer", "count",
    "design_memory", "fifo_storage", "fifo_storages", "is_register", "kernel_buffers", "local_tensors", "onchip_bytes",
    "rebalance", "task_tensors", "word_memory", "words_of",
]  # fmt: skip

MAX_WORD_BITS = BEAT_BITS
SRL_DEPTH = 32
REGISTER_BITS = 4096
BRAM36, URAM, LUTRAM = "BRAM36", "URAM", "LUTRAM"
# U55C (XCU55C): 2,016 BRAM36, 960 URAM, 36.0 Mib of distributed RAM = 589,824 LUTs of 64 bits
CAPACITY = {BRAM36: 2016, URAM: 960, LUTRAM: 36 * 2**20 // 64}
# The share of each that FIFO sizing fills (lowering.resources.fits_device) and `rebalance` aims
# at. At 100% every SLR must hold exactly a third: the SLR placement's integer program searched
# for minutes (GPT-2 medium: 113 s for 20,000 branch-and-bound nodes); with 2% headroom, 9 s.
MEMORY_FILL = 0.98
_SHAPE = {BRAM36: (72, 512), URAM: (72, 4096)}
MAXI_BURST = 64  # words per burst the emitter asks an m_axi port for (max_read/write_burst_length)
MAXI_OUTSTANDING = 8  # bursts in flight (num_read/write_outstanding): 512 words, one BRAM36 deep
HBM_WORD_BITS = U55C.hbm_word_bits  # an m_axi port's word (hls_backend/hbm.py) unless narrowed
MAXI_WORDS = MAXI_BURST * MAXI_OUTSTANDING  # the adapter buffer's depth, in words of its port


def onchip_bytes() -> int:
    """The bytes the device's BRAM36 and URAM hold (read at call time: `CAPACITY` is what a
    what-if device of `lowering.resources.device_scaled` scales)."""
    return sum(CAPACITY[k] * width * depth // 8 for k, (width, depth) in _SHAPE.items())


class Buffer(NamedTuple):
    """A memory of the design other than a FIFO: `copies` memories of `width` x `depth` each (a
    converter's banks cut into partitions, a DMA's m_axi buffer, a task-local tensor)."""

    name: str
    kind: str  # converter, local or maxi
    width: int  # bits per word
    depth: int  # words
    copies: int = 1

    @staticmethod
    def of_bits(name: str, kind: str, bits: int) -> Buffer:
        """A buffer of `bits` bits in words of at most `MAX_WORD_BITS` (`words_of`)."""
        return Buffer(name, kind, *words_of(bits))

    @property
    def bits(self) -> int:
        return self.width * self.depth * self.copies


@dataclass(frozen=True)
class MemoryUse:
    """One memory of the design and the primitives that hold it (`copies` alike memories: the
    count is theirs together)."""

    name: str
    kind: str  # fifo, converter, local or maxi
    width: int  # bits per word
    depth: int  # words
    resource: str
    count: int  # primitives (LUTs for LUTRAM)
    moved: bool = False  # put in the other of BRAM36 / URAM than its shape picks, so the design fits
    copies: int = 1

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "width": self.width, "depth": self.depth,
                "resource": self.resource, "count": self.count, **({"moved": True} if self.moved else {}),
                **({"copies": self.copies} if self.copies > 1 else {})}

    @property
    def movable(self) -> bool:
        """A FIFO in BRAM36 or URAM: the emitter binds it where `count` says (buffers are Vitis's)."""
        return self.kind == "fifo" and self.resource in _SHAPE

    def other(self) -> MemoryUse:
        """This memory in the other of BRAM36 and URAM."""
        kind = URAM if self.resource == BRAM36 else BRAM36
        w, d = _SHAPE[kind]
        return MemoryUse(self.name, self.kind, self.width, self.depth, kind,
                         self.copies * math.ceil(self.width / w) * math.ceil(self.depth / d), not self.moved, self.copies)


def words_of(bits: int, max_word: int = MAX_WORD_BITS) -> tuple[int, int]:
    """(word width, words) of a value of `bits` bits carried as words of at most `max_word` bits."""
    words = max(1, math.ceil(bits / max_word))
    return math.ceil(bits / words), words


def _element_bits(type_: TensorType) -> int:
    return getattr(type_.get_element_type(), "bitwidth", 64)


def word_memory(type_: TensorType) -> tuple[int, str] | None:
    """How the emitter builds a task-local tensor of `type_` as the memory this count takes it
    to be (`Buffer.of_bits`: words of at most 1,024 bits): (elements per word, its `bind_storage`
    impl), for `array_reshape ... type=cyclic factor=<elements per word>`; None for a register
    (at most `REGISTER_BITS`) or when a word would split an element."""
    elements, bits = math.prod(type_.get_shape()), _element_bits(type_)
    buffer = Buffer.of_bits("", "local", elements * bits)
    if is_register(buffer) or elements % buffer.depth or elements // buffer.depth * bits != buffer.width:
        return None
    return elements // buffer.depth, buffer_storage(buffer)


def bind(width: int, depth: int, fifo: bool = False) -> tuple[str, int]:
    """The primitive holding a `width` x `depth` memory and how many of it."""
    if width <= 0 or depth <= 0:
        return LUTRAM, 0
    if fifo and depth <= SRL_DEPTH:
        return LUTRAM, width  # one SRL32 per bit
    if width * depth <= 1024:
        return LUTRAM, math.ceil(width * depth / 64)  # 64-bit LUT RAMs
    options = {kind: math.ceil(width / w) * math.ceil(depth / d) for kind, (w, d) in _SHAPE.items()}
    kind = min(options, key=lambda k: (options[k] / CAPACITY[k], k != BRAM36))
    return kind, options[kind]


def fifo_storage(width: int, depth: int, resource: str | None = None) -> str:
    """The Vitis `bind_storage ... type=fifo impl=` for a FIFO in `resource` (None: the primitive
    `bind` picks by its shape)."""
    kind = resource or bind(width, depth, fifo=True)[0]
    if kind == LUTRAM:
        return "srl" if depth <= SRL_DEPTH else "lutram"
    return {BRAM36: "bram", URAM: "uram"}[kind]


def buffer_storage(buffer: Buffer) -> str:
    """The Vitis `bind_storage ... impl=` for a buffer: the primitive `bind` picks by its shape
    (buffers never move)."""
    return {LUTRAM: "lutram", BRAM36: "bram", URAM: "uram"}[bind(buffer.width, buffer.depth)[0]]


def fifo_storages(fifos: Iterable[tuple[str, int, int]], buffers: Iterable[Buffer]) -> dict[str, str]:
    """FIFO name -> its `bind_storage` impl where `count(fifos, buffers)` puts it (rebalanced)."""
    return {m["name"]: fifo_storage(m["width"], m["depth"], m["resource"])  # type: ignore[arg-type]
            for m in count(fifos, buffers)["memories"] if m["kind"] == "fifo"}  # type: ignore[union-attr]


def is_register(buffer: Buffer) -> bool:
    """Whether Vitis holds `buffer` in registers, not a memory: a task-local tensor of at most
    `REGISTER_BITS`, a converter bank cut into partitions of one word each."""
    return buffer.bits <= REGISTER_BITS if buffer.kind == "local" else buffer.kind == "converter" and buffer.depth == 1


def _memory(buffer: Buffer) -> MemoryUse:
    resource, count = bind(buffer.width, buffer.depth)
    return MemoryUse(buffer.name, buffer.kind, buffer.width, buffer.depth, resource, count * buffer.copies, copies=buffer.copies)


def _totals(uses: Iterable[MemoryUse]) -> dict[str, int]:
    totals = dict.fromkeys(CAPACITY, 0)
    for u in uses:
        totals[u.resource] += u.count
    return totals


def rebalance(uses: list[MemoryUse]) -> list[MemoryUse]:
    """`uses` with FIFOs moved between BRAM36 and URAM while one of them is over `MEMORY_FILL` of
    the device's supply and the other has room: each step moves the FIFO that frees the most primitives of the
    full one per primitive it takes of the other (ties: the larger saving, then by name), so few
    primitives of the scarcer kind are spent. Stops when both fit or no FIFO can move."""
    uses = list(uses)
    totals = _totals(uses)
    for full, spare in ((BRAM36, URAM), (URAM, BRAM36)):
        candidates = sorted((k for k, u in enumerate(uses) if u.movable and u.resource == full),
                            key=lambda k: (-uses[k].count / uses[k].other().count, -uses[k].count, uses[k].name))
        for k in candidates:
            if totals[full] <= CAPACITY[full] * MEMORY_FILL:
                break
            moved = uses[k].other()
            if totals[spare] + moved.count <= CAPACITY[spare] * MEMORY_FILL:
                totals[full] -= uses[k].count
                totals[spare] += moved.count
                uses[k] = moved
    return uses


def count(fifos: Iterable[tuple[str, int, int]], buffers: Iterable[Buffer]) -> dict[str, object]:
    """report.json's memory count. `fifos`: (name, word bits, depth in words); `buffers`: e.g. a
    converter's banks or a task's local buffer (local tensors of at most REGISTER_BITS are left
    out: registers). Returns the totals per resource, the capacities, whether it fits, and the
    memories, largest share of the device first."""
    uses = [MemoryUse(name, "fifo", width, depth, *bind(width, depth, fifo=True)) for name, width, depth in fifos]
    uses += [_memory(b) for b in buffers if not is_register(b)]
    uses = rebalance(uses)
    totals = _totals(uses)
    return {
        "rule": "BRAM36 = ceil(width/72) x ceil(depth/512), URAM = ceil(width/72) x ceil(depth/4096), the one using the "
                "smaller share of the device, then FIFOs moved to the other while one is over (most saved per primitive "
                "taken first); FIFOs <= 32 deep in SRL (1 LUT per bit), memories <= 1024 bits in LUTRAM; words <= 1024 bits; "
                "task-local tensors <= 4096 bits are registers; m_axi buffers 512 words of the port (512 bits unless narrowed)",
        **totals,
        "capacity": dict(CAPACITY),
        "fits": all(totals[k] <= CAPACITY[k] for k in CAPACITY),
        "memories": [u.as_dict() for u in sorted(uses, key=lambda u: (-u.count / CAPACITY[u.resource], u.name))],
    }


def local_tensors(kernel: KernelOp) -> list[tuple[str, str, int]]:
    """(task, tensor, bits) of every tensor a task computes inside its body that the emitted C++
    declares an array of (an upper bound: HLS may share storage between them)."""
    return [(node_name(task), name, bits) for task in kernel.body.block.ops if isinstance(task, TaskOp)
            for name, bits in task_tensors(task)]


def _no_array(value: SSAValue) -> bool:
    """Whether hls_backend/body.py declares no array of its own for `value`: a tensor.empty that
    only serves as the init of ops that never read it (a fill, a transpose, or a loop nest whose
    payload ignores that init), and a loop nest's result that updates its init in place (an init
    other than a tensor.empty that nothing else reads)."""
    owner = value.owner
    if isinstance(owner, tensor.EmptyOp):
        return all(_ignores_init(use.operation, use.index) for use in value.uses)
    inits = _loop_nest_inits(owner) if isinstance(owner, Operation) else {}
    if inits:
        init = owner.operands[list(inits)[value.index]]  # type: ignore[union-attr]
        return init.has_one_use() and not isinstance(init.owner, tensor.EmptyOp)
    return False


def _loop_nest_inits(op: Operation) -> dict[int, BlockArgument]:
    """Operand index -> payload argument of each init of a linalg op the emitter writes as one
    loop nest over its payload (body.py `_loop_op`: structured ops but fill and transpose, reduce,
    broadcast); empty for other ops."""
    if isinstance(op, ReduceOp | BroadcastOp):
        return {1: (op.region if isinstance(op, ReduceOp) else op.hidden_region).block.args[1]}
    if isinstance(op, LinalgStructuredOperation) and not isinstance(op, FillOp | TransposeOp):
        inputs = len(op.inputs)
        return {inputs + k: arg for k, arg in enumerate(op.body.block.args[inputs:])}
    return {}


def _ignores_init(op: Operation, operand: int) -> bool:
    """Whether `op` writes its result without reading its operand `operand` as an init."""
    if isinstance(op, FillOp | TransposeOp):
        return operand >= len(op.inputs)
    arg = _loop_nest_inits(op).get(operand)
    return arg is not None and not arg.uses


def task_tensors(task: TaskOp) -> list[tuple[str, int]]:
    """(tensor, bits) of every static tensor `task` computes inside its body that the emitted C++
    holds in an array of its own (`_no_array`: not an unread empty, not an in-place update); a
    token's tile that streams through its reader (`timing.streams_through`) holds two beats."""
    tensors = []
    lanes = task_lanes(task)
    shared = engine_phases(task)  # an engine whose phases are one body: that body's arrays, once
    for op in (op for top in shared.body for op in top.walk()) if shared else task.body.walk():
        for k, r in enumerate(op.results):
            if isinstance(r.type, TensorType) and r.type.has_static_shape() and not _no_array(r):
                bits = math.prod(r.type.get_shape()) * _element_bits(r.type)
                if streams_through(r, lanes):  # never held whole: a beat arriving, a beat in the multipliers
                    bits = min(bits, 2 * op.operands[0].type.itensor.beat_bits)  # type: ignore[attr-defined]
                tensors.append((r.name_hint or f"{op.name}#{k}", bits))
    return tensors


def converter_buffer(record: ConverterRecord) -> Buffer:
    """A converter's banks as the emitter declares them: `partitions` memories of one element a
    word, each holding every `partitions`-th element of the box of each bank."""
    box = math.prod(record.buffer_shape)
    width = record.bytes * 8 // (record.banks * box)
    return Buffer(record.name, "converter", width, record.banks * math.ceil(box / record.partitions), record.partitions)


def kernel_buffers(kernel: KernelOp) -> list[Buffer]:
    """`count`'s buffers of a kernel: its converters' banks, its tasks' local tensors and its DMAs'
    m_axi buffers (one adapter per HBM stripe, lowering/hbm_channels.py, 512 words of its port),
    each named `node: what` after the node that holds it (converters: their own name)."""
    return [converter_buffer(c) for c in converter_records(kernel)] + [
        Buffer.of_bits(f"{task}: {name}", "local", bits) for task, name, bits in local_tensors(kernel)
    ] + [Buffer(f"{name}: m_axi{k}", "maxi", hbm_word_bits(op), MAXI_WORDS)
         for op, name in kernel_nodes(kernel) if isinstance(op, DMA_OPS) for k in range(hbm_stripes(op)[0])]


def design_memory(design: Any) -> dict[str, object]:
    """The count of a sized design (`sd.compile(prog)`): its FIFOs at their depths, its converters'
    banks and its tasks' local tensors."""
    return count([(st.name, st.beat_bits, st.depth_beats) for st in design.streams], kernel_buffers(design.kernel))
