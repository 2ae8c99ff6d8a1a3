"""On-chip memory by shape: which primitive holds each FIFO and buffer, and how many of them.

A memory of `width` bits x `depth` words costs whole primitives, not bits (docs/hls.md, "On-chip
memory"):
- LUTRAM / SRL: a FIFO at most `SRL_DEPTH` (32) words deep is a shift register, one SRL32 LUT
  per bit of width (what Vitis HLS picks for shallow FIFOs); any memory of at most 1,024 bits.
- BRAM36: 72 bits x 512 words each, so ceil(width / 72) x ceil(depth / 512).
- URAM: 72 bits x 4,096 words each, so ceil(width / 72) x ceil(depth / 4096).
Between BRAM and URAM a memory takes the one that uses the smaller share of the device's
supply. A FIFO's word is the stream beat the emitter uses (`itensor.beats`: at most
`MAX_WORD_BITS` = 1,024 bits, the last beat of a token padded), so a FIFO of D tokens of b beats
is D x b words of min(token bits, 1,024) bits; a buffer of B bits is ceil(B / 1024) words. Task-local tensors of at most
`REGISTER_BITS` (4,096: one 64-lane tile of 64-bit elements) are registers (the lane-parallel
loops partition them), not memories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import TensorType

from streamdsl.compiler import converter_records
from streamdsl.dialects.dataflow import KernelOp, TaskOp
from streamdsl.graph import Graph
from streamdsl.itensor import BEAT_BITS
from streamdsl.wiring import node_name

__all__ = [
    "BRAM36", "CAPACITY", "LUTRAM", "MAX_WORD_BITS", "REGISTER_BITS", "SRL_DEPTH", "URAM", "MemoryUse", "bind", "count",
    "design_memory", "fifo_storage", "fits_on_chip", "kernel_buffers", "local_tensors", "task_tensors", "words_of",
]  # fmt: skip

MAX_WORD_BITS = BEAT_BITS
SRL_DEPTH = 32
REGISTER_BITS = 4096
BRAM36, URAM, LUTRAM = "BRAM36", "URAM", "LUTRAM"
# U55C (XCU55C): 2,016 BRAM36, 960 URAM, 36.0 Mib of distributed RAM = 589,824 LUTs of 64 bits
CAPACITY = {BRAM36: 2016, URAM: 960, LUTRAM: 36 * 2**20 // 64}
_SHAPE = {BRAM36: (72, 512), URAM: (72, 4096)}


@dataclass(frozen=True)
class MemoryUse:
    """One memory of the design and the primitives that hold it."""

    name: str
    kind: str  # fifo, converter or local
    width: int  # bits per word
    depth: int  # words
    resource: str
    count: int  # primitives (LUTs for LUTRAM)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "width": self.width, "depth": self.depth,
                "resource": self.resource, "count": self.count}


def words_of(bits: int) -> tuple[int, int]:
    """(word width, words) of a value of `bits` bits carried as words of at most MAX_WORD_BITS."""
    words = max(1, math.ceil(bits / MAX_WORD_BITS))
    return math.ceil(bits / words), words


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


def fifo_storage(width: int, depth: int) -> str:
    """The Vitis `bind_storage ... type=fifo impl=` for the primitive `bind` puts a FIFO in."""
    kind, _ = bind(width, depth, fifo=True)
    if kind == LUTRAM:
        return "srl" if depth <= SRL_DEPTH else "lutram"
    return {BRAM36: "bram", URAM: "uram"}[kind]


def _memory(name: str, kind: str, bits: int) -> MemoryUse:
    width, words = words_of(bits)
    return MemoryUse(name, kind, width, words, *bind(width, words))


def count(fifos: Iterable[tuple[str, int, int]], buffers: Iterable[tuple[str, str, int]]) -> dict[str, object]:
    """report.json's memory count. `fifos`: (name, word bits, depth in words); `buffers`: (name,
    kind, bits), e.g. a converter's banks or a task's local buffer (local tensors of at most
    REGISTER_BITS are left out: registers). Returns the totals per resource, the capacities,
    whether it fits, and the memories, largest share of the device first."""
    uses = [MemoryUse(name, "fifo", width, depth, *bind(width, depth, fifo=True)) for name, width, depth in fifos]
    uses += [_memory(name, kind, bits) for name, kind, bits in buffers
             if kind != "local" or bits > REGISTER_BITS]
    totals = {kind: sum(u.count for u in uses if u.resource == kind) for kind in CAPACITY}
    return {
        "rule": "BRAM36 = ceil(width/72) x ceil(depth/512), URAM = ceil(width/72) x ceil(depth/4096), the one using the "
                "smaller share of the device; FIFOs <= 32 deep in SRL (1 LUT per bit), memories <= 1024 bits in LUTRAM; "
                "words <= 1024 bits; task-local tensors <= 4096 bits are registers",
        **totals,
        "capacity": dict(CAPACITY),
        "fits": all(totals[k] <= CAPACITY[k] for k in CAPACITY),
        "memories": [u.as_dict() for u in sorted(uses, key=lambda u: (-u.count / CAPACITY[u.resource], u.name))],
    }


def local_tensors(kernel: KernelOp) -> list[tuple[str, str, int]]:
    """(task, tensor, bits) of every tensor a task computes inside its body: each is an on-chip
    array in the emitted C++ (an upper bound: HLS may share storage between them)."""
    return [(node_name(task), name, bits) for task in kernel.body.block.ops if isinstance(task, TaskOp)
            for name, bits in task_tensors(task)]


def task_tensors(task: TaskOp) -> list[tuple[str, int]]:
    """(tensor, bits) of every static tensor `task` computes inside its body."""
    tensors = []
    for op in task.body.walk():
        for k, r in enumerate(op.results):
            if isinstance(r.type, TensorType) and r.type.has_static_shape():
                bits = math.prod(r.type.get_shape()) * getattr(r.type.get_element_type(), "bitwidth", 64)
                tensors.append((r.name_hint or f"{op.name}#{k}", bits))
    return tensors


def kernel_buffers(kernel: KernelOp) -> list[tuple[str, str, int]]:
    """`count`'s buffers of a kernel: its converters' banks and its tasks' local tensors."""
    return [(c.name, "converter", c.bytes * 8) for c in converter_records(kernel)] + [
        (f"{task}: {name}", "local", bits) for task, name, bits in local_tensors(kernel)
    ]


def design_memory(design: Any) -> dict[str, object]:
    """The count of a sized design (`sd.compile(prog)`): its FIFOs at their depths, its converters'
    banks and its tasks' local tensors."""
    return count([(st.name, min(st.token_bits, BEAT_BITS), st.depth_beats) for st in design.streams], kernel_buffers(design.kernel))


def fits_on_chip(graph: Graph, kernel: KernelOp) -> Callable[[Mapping[str, int]], bool]:
    """Whether depths for `graph`'s FIFOs, with `kernel`'s buffers, fit the device by `count`
    (a FIFO of D tokens is D x beats words of the beat's width, as the emitter declares it)."""
    buffers = kernel_buffers(kernel)

    def fits(depths: Mapping[str, int]) -> bool:
        fifos = [(e.name, min(e.token_bits, BEAT_BITS), depths[e.name] * e.beats) for e in graph.fifos]
        return bool(count(fifos, buffers)["fits"])

    return fits
