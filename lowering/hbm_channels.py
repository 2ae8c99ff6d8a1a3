"""HBM channel allocation (pass `allocate-hbm-channels`): stripe each DMA's HBM buffer over pseudo-channels, balanced by bytes.

The U55C has 32 HBM pseudo-channels. A DMA reads (or writes) its buffer, the tensor packed in
its stream's order (hls_backend/hbm.py), through 512-bit `m_axi` ports, one per **stripe**, each
stripe on one pseudo-channel: word g of the buffer is word g // S of stripe g % S. A stripe
delivers one channel's measured bandwidth (lowering/timing.py), so S stripes are S times one.

How many stripes a DMA can use: its stream takes one beat (at most 1,024 bits, two 512-bit
words) per cycle, and the emitted DMA reads one word from each stripe per cycle, filling one beat;
so S is the words of a beat when a token's words divide into whole beats (a load without run-time
trip counts), else 1 (`max_stripes`). More would not go faster: the stream is the limit.

Allocation (`allocate`): the stripes of all DMAs are placed on the channels largest first, each
on the channel where it finishes first under the round-robin charge below (the least sum of
min(y, x) over the stripes y already there, for a stripe of x bytes), among those that hold no
other stripe of its DMA and fewer than `PORTS_PER_CHANNEL` ports; ties go to the least-loaded
channel (bytes), then the lowest. While the channels hold only larger stripes this is the channel
with the fewest, then the least bytes: longest processing time first, so the busiest channel moves
close to the fewest bytes any placement can give it (the HBM time of a design whose DMAs all
stream at once). A small stripe (a bias, a norm's weight, the activation vector) goes beside one
large stripe rather than onto the one channel no large stripe took: there it waits for min(y, x)
of each neighbour, so beside one weight stripe it takes about twice its own time, where the
least-loaded channel, once it held every small stripe of a block, made it wait for twenty of them.
When there are more stripes than channels, channels are shared, and a DMA is charged its share of
each (`_share`): as if every stripe on the channel started at once under the HBM switch's
round-robin arbitration, a stripe of x bytes finishes after the channel moved min(y, x) of every
stripe y on it; the DMA's share is the least over its stripes.

Stripes per DMA (`_stripe_counts`): as many as its bandwidth share needs, its bytes' share of the
design's bytes times the 32 channels, rounded, at least one and at most `max_stripes` (a DMA of a
few words keeps one port: a port costs logic and buys it nothing). DMAs with the most bytes get
theirs first while the ports stay within 15 per channel (Vitis' limit of interfaces per bank).

Narrow ports (`narrow_ports`, a step of the design-space exploration, recorded in its plan): a
port is 512 bits wide by default, and its m_axi adapter buffers `MAXI_OUTSTANDING` bursts of its
words (lowering/memory.py: 8 BRAM36 at 512 bits, however few bytes it moves). A one-stripe load
whose reader takes its tokens no faster than a 128- or 256-bit word would bring them gets the
narrowest such word: every token still arrives before the timed simulation's reader took it (and
the DMA ends within the makespan), so the schedule and the makespan are the same, and a quantized
matvec part's scales and bias ports cost two BRAM36 each instead of eight.

The pass (lowering/transforms/allocate_hbm_channels.py) writes, on each `dma_load` /
`dma_sequence` / `dma_store`, `hbm_channels = array<i64: c0, c1, ...>` (the channel of each
stripe) and `hbm_share` (f64); the timing model charges the DMA those channels' bandwidth and the
HLS backend emits one port per stripe with `sp=top_1.<port>:HBM[c]` in link.cfg. A
`dma_sequence` (share-hbm-ports) is one demand: all its members' bytes, striped as all of them
allow; each of its ports holds that stripe of every member, one after the other.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, FloatAttr, IntegerAttr, StringAttr, f64, i64
from xdsl.ir import Operation, SSAValue

from lowering.timing import HBM_CHANNELS_ATTR, HBM_SHARE_ATTR, HBM_WORD_ATTR, U55C, hbm_stripes, hbm_token_words, hbm_word_lanes
from streamdsl.dialects.dataflow import DMA_OPS, DmaLoadOp, DmaSequenceOp, DmaStoreOp, ITensorType, KernelOp
from streamdsl.graph import Graph
from streamdsl.itensor import itensor
from streamdsl.sim.timed import TimedResult
from streamdsl.wiring import TimingModel, kernel_nodes

__all__ = ["CHANNELS", "NARROW_WORDS", "PORTS_PER_CHANNEL", "Allocation", "DmaDemand", "HbmPortsError", "allocate", "allocate_kernel",
           "buffer_bytes", "dma_tensor", "early_pool", "max_stripes", "narrow_ports", "set_early_pool", "widen_ports"]

CHANNELS = 32  # the U55C's HBM2 pseudo-channels
PORTS_PER_CHANNEL = 15  # Vitis connects at most 15 kernel interfaces to one HBM bank
# the m_axi words a one-stripe load may be narrowed to, narrowest first (every element width
# divides them): not 64, whose one-word ap_uint reads its value before setting it in the vendor's
# C++ model (g++ -Wall flags every copy)
NARROW_WORDS = (128, 256)
EARLY_TENSORS_ATTR = "hbm_early_tensors"  # on a dataflow.kernel: the tensors of the early pool (`set_early_pool`)
EARLY_CHANNELS_ATTR = "hbm_early_channels"  # on a dataflow.kernel: the pool's pseudo-channels, 0 .. n-1


@dataclass(frozen=True)
class DmaDemand:
    """What allocation needs of a DMA: its name (for messages), the bytes it moves and the most
    stripes it can use."""

    name: str
    nbytes: int
    max_stripes: int = 1


@dataclass(frozen=True)
class Allocation:
    channels: tuple[int, ...]  # the pseudo-channel of each stripe
    share: float  # the least, over its stripes, of the stripe's bytes over its channel's bytes

    @property
    def stripes(self) -> int:
        return len(self.channels)


def max_stripes(it: itensor, load: bool = True) -> int:
    """Stripes a DMA of `it` can read in parallel: the 512-bit words of one stream beat, when every
    token is whole beats of them (hls_backend/hbm.py packs a token into whole words); 1 for
    stores and streams with run-time trip counts (read in one odometer loop, a word at a time)."""
    lanes = hbm_word_lanes(it, U55C.hbm_word_bits)
    words, per_beat = -(-it.token_elements // lanes), -(-it.beat_lanes // lanes)
    if not load or it.bounds or per_beat < 2 or words % per_beat:
        return 1
    return per_beat


class HbmPortsError(ValueError):
    """More DMAs than the HBM has ports."""


def _stripe_counts(dmas: Sequence[DmaDemand], channels: int) -> list[int]:
    """Stripes per DMA: its bandwidth share, its bytes' share of all the design's bytes times the
    channels, rounded (at least 1, at most `max_stripes`); the DMAs with the most bytes first
    while the ports stay within `PORTS_PER_CHANNEL` a channel (ties: the earlier DMA)."""
    ports = channels * PORTS_PER_CHANNEL
    if len(dmas) > ports:
        raise HbmPortsError(f"allocate: {len(dmas)} DMAs, but the HBM takes at most {ports} ports "
                         f"({PORTS_PER_CHANNEL} per pseudo-channel); fuse fewer tensors into one design")
    total = sum(d.nbytes for d in dmas) or 1
    counts = [1] * len(dmas)
    free = ports - len(dmas)
    for i in sorted(range(len(dmas)), key=lambda i: (-dmas[i].nbytes, i)):
        extra = min(dmas[i].max_stripes, max(1, math.floor(dmas[i].nbytes / total * channels + 0.5))) - 1
        if 0 < extra <= free:
            counts[i] += extra
            free -= extra
    return counts


def _share(size: float, others: Sequence[float]) -> float:
    """The share of its channel a stripe of `size` bytes gets, the channel's stripes `others`
    (itself included) all starting at once under round-robin arbitration: it finishes after the
    channel moved min(y, size) of every stripe y, so its share is size / sum(min(y, size))."""
    moved = sum(min(y, size) for y in others)
    return size / moved if moved else 1.0


def allocate(dmas: Sequence[DmaDemand], channels: int = CHANNELS) -> list[Allocation]:
    """Stripes and channels for each DMA (in the order given), balanced by bytes (module doc)."""
    if channels < 1:
        raise ValueError(f"allocate: {channels} HBM channels; need at least one")
    counts = _stripe_counts(dmas, channels)
    stripes = [(d.nbytes / k, i, s) for i, (d, k) in enumerate(zip(dmas, counts)) for s in range(k)]
    load = [0.0] * channels
    on: list[list[float]] = [[] for _ in range(channels)]
    placed: dict[int, list[int]] = {i: [] for i in range(len(dmas))}
    for size, i, _ in sorted(stripes, key=lambda t: (-t[0], t[1], t[2])):
        free = [c for c in range(channels) if c not in placed[i] and len(on[c]) < PORTS_PER_CHANNEL] or list(range(channels))
        best = min(free, key=lambda c: (sum(min(y, size) for y in on[c]), load[c], c))  # where it finishes first
        placed[i].append(best)
        load[best] += size
        on[best].append(size)
    return [Allocation(tuple(placed[i]), min(_share(d.nbytes / counts[i], on[c]) for c in placed[i]))
            for i, d in enumerate(dmas)]


def buffer_bytes(stream: SSAValue) -> int:
    """Bytes of a DMA's HBM buffer: every slot of its stream, packed in 512-bit words."""
    assert isinstance(stream.type, ITensorType)
    it = stream.type.itensor.unbounded()  # the buffer holds every slot of the largest stream
    return it.num_tokens * hbm_token_words(it, U55C.hbm_word_bits) * U55C.hbm_word_bits // 8


def dma_tensor(op: DmaLoadOp | DmaSequenceOp | DmaStoreOp) -> str:
    """The name a DMA's allocation goes by (an early pool names its tensors so): its HBM tensor's,
    a sequence's first member's."""
    tensor = op.sources[0] if isinstance(op, DmaSequenceOp) else op.source if isinstance(op, DmaLoadOp) else op.result
    return tensor.name_hint or op.name


def _dma_demand(op: DmaLoadOp | DmaSequenceOp | DmaStoreOp) -> DmaDemand:
    """A sequence's ports carry every member's buffer, striped as the one that takes the fewest."""
    if isinstance(op, DmaSequenceOp):
        return DmaDemand(dma_tensor(op), sum(buffer_bytes(r) for r in op.outputs), min(max_stripes(r.type.itensor) for r in op.outputs))
    load = isinstance(op, DmaLoadOp)
    stream = op.result if load else op.source
    return DmaDemand(dma_tensor(op), buffer_bytes(stream), max_stripes(stream.type.itensor, load))


def early_pool(kernel: KernelOp) -> tuple[frozenset[str], int]:
    """The tensors whose DMAs `allocate_kernel` gives channels of their own, and how many
    (`set_early_pool`; none: every DMA on every channel)."""
    tensors, channels = kernel.attributes.get(EARLY_TENSORS_ATTR), kernel.attributes.get(EARLY_CHANNELS_ATTR)
    if not isinstance(tensors, ArrayAttr) or not isinstance(channels, IntegerAttr):
        return frozenset(), 0
    return frozenset(t.data for t in tensors.data if isinstance(t, StringAttr)), channels.value.data


def set_early_pool(kernel: KernelOp, tensors: Collection[str], channels: int) -> None:
    """Give the DMAs of `tensors` (by name) `channels` pseudo-channels of their own from now on
    (none, or no channels: drop the pool). The first phase of a decode block (its first weight
    matvec and the attention after it) needs its bytes first; on channels shared with the later
    matvecs' weights, which stream (prefetch) from the start, each of its stripes gets only its
    round-robin share (module doc), so it ends when the whole HBM does."""
    if not tensors or channels <= 0:
        kernel.attributes.pop(EARLY_TENSORS_ATTR, None)
        kernel.attributes.pop(EARLY_CHANNELS_ATTR, None)
        return
    if not 0 < channels < CHANNELS:
        raise ValueError(f"early pool: {channels} channels; give 1 to {CHANNELS - 1} (the rest go to the other DMAs)")
    kernel.attributes[EARLY_TENSORS_ATTR] = ArrayAttr([StringAttr(t) for t in sorted(tensors)])
    kernel.attributes[EARLY_CHANNELS_ATTR] = IntegerAttr(channels, i64)


def _pooled(demands: Sequence[DmaDemand], early: Collection[str], pool: int, channels: int) -> list[Allocation]:
    """`allocate`, the demands of `early` tensors on the first `pool` channels and the others on the rest."""
    mine = [i for i, d in enumerate(demands) if d.name in early]
    if not mine or len(mine) == len(demands) or not 0 < pool < channels:
        return allocate(demands, channels)
    rest = [i for i in range(len(demands)) if i not in mine]
    got: dict[int, Allocation] = dict(zip(mine, allocate([demands[i] for i in mine], pool)))
    for i, a in zip(rest, allocate([demands[i] for i in rest], channels - pool)):
        got[i] = Allocation(tuple(c + pool for c in a.channels), a.share)
    return [got[i] for i in range(len(demands))]


def allocate_kernel(kernel: KernelOp, channels: int = CHANNELS, striping: bool = True) -> list[Allocation]:
    """Allocate the DMAs of `kernel` and write `hbm_channels` / `hbm_share` on each (module doc);
    without `striping` every DMA keeps one stripe (channels are still balanced). The DMAs of the
    kernel's early pool (`set_early_pool`) get its channels, the others the rest."""
    dmas = [op for op in kernel.body.block.ops if isinstance(op, DMA_OPS)]
    demands = [_dma_demand(op) for op in dmas]
    if not striping:
        demands = [DmaDemand(d.name, d.nbytes, 1) for d in demands]
    allocations = _pooled(demands, *early_pool(kernel), channels)
    widen_ports(kernel)  # a new allocation: ports are narrowed again after it
    for op, a in zip(dmas, allocations):
        op.attributes[HBM_CHANNELS_ATTR] = DenseArrayBase.from_list(i64, list(a.channels))
        op.attributes[HBM_SHARE_ATTR] = FloatAttr(round(a.share, 6), f64)
    return allocations


def widen_ports(kernel: KernelOp) -> list[Operation]:
    """Every DMA of `kernel` back at 512-bit words; returns the DMAs that were narrower."""
    return [op for op in kernel.body.block.ops if op.attributes.pop(HBM_WORD_ATTR, None) is not None]


def narrow_ports(kernel: KernelOp, graph: Graph, run: TimedResult, timing: TimingModel) -> dict[str, int]:
    """Narrow the ports of `kernel`'s one-stripe loads (module doc) that keep pace with their
    readers in `run` (the timed simulation of `graph`, the kernel's graph with every port at
    512 bits, `widen_ports`): each gets the narrowest `NARROW_WORDS` word whose schedule
    (`timing`) writes every token at least `read_latency` before `run` read it and ends within
    the makespan. Writes `hbm_word_bits` on those loads; returns DMA node name -> word bits."""
    makespan = run.makespan or 0
    edges = {e.src: e for e in graph.fifos}
    narrowed = {}
    for op, name in kernel_nodes(kernel):
        edge = edges.get(name)
        if not isinstance(op, DmaLoadOp) or edge is None or hbm_stripes(op)[0] > 1 or op.result.type.itensor.bounds:
            continue
        reads = run.read_times[edge.name]
        for bits in NARROW_WORDS:
            op.attributes[HBM_WORD_ATTR] = IntegerAttr(bits, i64)
            schedule = timing.schedule(op)
            writes = schedule.writes[op.result]
            if (schedule.latency or 0) <= makespan and np.all(writes + graph.read_latency <= reads):
                narrowed[name] = bits
                break
            del op.attributes[HBM_WORD_ATTR]
    return narrowed
