"""`share-hbm-ports`: loads whose readers run one after the other share HBM ports.

`allocate-hbm-channels` gives each DMA ports of its own, and each port an `m_axi` adapter: its
burst buffer (8 BRAM36 at 512 bits) and logic. `split-matvecs` gives each part of a matvec DMAs of
its own (its weight slice, its scales, its bias), so a decode block split P ways holds a few
adapters per part, each idle while the other matvecs run: every matvec needs the one before's
result. A `dataflow.dma_sequence` (docs/ir.md) streams several loads one after the other through
one set of ports, each into its own reader's FIFO; the adapters a split costs then stop growing
with the matvecs, and the memory and logic go to more parts.

Which loads (`chains`): the weight streams of split parts, the `dma_load`s read by one task named
`<task>_p<p>` (part p of a split, lowering/transforms/split_matvecs.py) whose stream is striped
(beats of two 512-bit words or more: `lowering.hbm_channels.max_stripes`) and whose buffer holds
at least `min_bytes` (default: an m_axi buffer's 512 words of 64 bytes; a smaller load, a bias or
scales, keeps a port of its own, which `narrow_ports` cuts to 2 BRAM36, and sharing it would tie
its reader to the SLR of the sequence). Loads share only with loads of the same part index and
stripes, so the parts of one split stay on parallel sequences and part p of every matvec on one.
In the unbounded timed run of the kernel each load is read over an interval, from its reader's
first token to its last. Taken by their first reads (IR order on ties), each load joins the first
chain whose last load was read to its end at least a DMA latency before this one's first read
(a member's loop drains its HBM latency before the next one asks for words: lowering/timing.py
`_dma_sequence`), else it starts a chain: first fit in order of start, the fewest chains any
sharing of these intervals can have. So no reader waits for a load the sequence holds back for
an earlier one, and the sequence is as fast as the loads it replaces.
A chain of two or more loads becomes one `dma_sequence`, placed above every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from lowering.hbm_channels import buffer_bytes, max_stripes
from lowering.memory import HBM_WORD_BITS, MAXI_WORDS
from lowering.timing import table_of
from lowering.transforms.split_matvecs import PART
from streamdsl.dialects.dataflow import DmaLoadOp, DmaSequenceOp, KernelOp, TaskOp, box_starts
from streamdsl.sim.timed import simulate_unbounded
from streamdsl.wiring import TimingModel, graph_from_kernel

__all__ = ["MIN_BYTES", "ShareHbmPortsPass", "chains", "load_name", "share_named", "share_ports", "shared_chains"]

# a load smaller than its port's m_axi buffer (512 words of 64 bytes) keeps its own port, which
# narrow_ports can cut to 2 BRAM36: sharing it would tie its reader to the sequence's SLR
MIN_BYTES = MAXI_WORDS * HBM_WORD_BITS // 8


def _reader(load: DmaLoadOp) -> TaskOp | None:
    uses = list(load.result.uses)
    reader = uses[0].operation if len(uses) == 1 else None
    return reader if isinstance(reader, TaskOp) else None


def chains(kernel: KernelOp, timing: TimingModel | None = None, min_bytes: int | None = None) -> list[list[DmaLoadOp]]:
    """The loads of `kernel` that can share ports, in chains (module doc); chains of one included.
    `timing`: the model its unbounded run is timed with (default: the kernel's table at its clock,
    `table_of`; the exploration passes its own, at the clock it explores); `min_bytes`: the least
    buffer a shared load has (default `MIN_BYTES`)."""
    min_bytes = MIN_BYTES if min_bytes is None else min_bytes
    gap = table_of(kernel).dma_latency  # a member's loop drains before the next one asks for words
    graph, values = graph_from_kernel(kernel, timing or table_of(kernel))
    run = simulate_unbounded(graph)
    edge = {value: name for name, value in values.items()}
    loads = {op: _key(op, min_bytes) for op in kernel.body.block.ops if isinstance(op, DmaLoadOp)}
    loads = {op: key for op, key in loads.items() if key is not None}
    reads = {load: run.read_times[edge[load.result]] for load in loads}
    out: list[list[DmaLoadOp]] = []
    for load in sorted((op for op in loads if reads[op].size), key=lambda op: int(reads[op][0])):  # stable: IR order on ties
        for chain in out:
            last = chain[-1]
            if loads[last] == loads[load] and reads[last][-1] + gap <= reads[load][0]:
                chain.append(load)
                break
        else:
            out.append([load])
    return out


def _key(load: DmaLoadOp, min_bytes: int) -> tuple[int, int] | None:
    """What a load shares ports with: loads of the same part index and HBM stripes; None for a
    load that shares none: not a split part's, one whose stream is not striped (narrow beats or
    run-time trip counts: `max_stripes`), or one smaller than `min_bytes`."""
    reader = _reader(load)
    part = PART.search(reader.sym_name.data) if reader is not None else None
    stripes = max_stripes(load.result.type.itensor)
    if part is None or stripes < 2 or buffer_bytes(load.result) < min_bytes:
        return None
    return int(part.group(1)), stripes


def share_ports(kernel: KernelOp, min_bytes: int | None = None, timing: TimingModel | None = None) -> list[DmaSequenceOp]:
    """Replace every chain of two or more loads of `kernel` by a `dma_sequence` (module doc);
    `timing` as for `chains`."""
    return _sequences(kernel, [c for c in chains(kernel, timing, min_bytes) if len(c) > 1])


def _sequences(kernel: KernelOp, loads: Sequence[Sequence[DmaLoadOp]]) -> list[DmaSequenceOp]:
    """A `dma_sequence` of each chain of `loads`, in its order, above every reader of its members."""
    sequences = []
    position = {op: i for i, op in enumerate(kernel.body.block.ops)}
    for chain in loads:
        sequence = DmaSequenceOp(chain)
        Rewriter.insert_op(sequence, InsertPoint.before(min(chain, key=position.__getitem__)))
        for load, out in zip(chain, sequence.outputs):
            out.name_hint = load.result.name_hint
            load.result.replace_all_uses_with(out)
            Rewriter.erase_op(load)
        sequences.append(sequence)
    return sequences


def load_name(source: SSAValue, box: Sequence[slice]) -> str:
    """A load as a design plan names it: its tensor, and the offsets of its box when it reads one
    (`p_layer_mlp_c_fc_weight@512,0,0`)."""
    starts = box_starts(box)
    return f"{source.name_hint}@{','.join(map(str, starts))}" if starts else str(source.name_hint)


def shared_chains(kernel: KernelOp) -> tuple[tuple[str, ...], ...]:
    """The loads each `dma_sequence` of `kernel` streams, by `load_name`: what a plan records."""
    return tuple(tuple(load_name(m.source, m.box) for m in op.members)
                 for op in kernel.body.block.ops if isinstance(op, DmaSequenceOp))


def share_named(kernel: KernelOp, named: Sequence[Sequence[str]]) -> list[DmaSequenceOp]:
    """The sequences `shared_chains` named, made again from `kernel`'s loads; a KeyError names a
    load the kernel does not have (or has twice)."""
    loads: dict[str, DmaLoadOp | None] = {}
    for op in kernel.body.block.ops:
        if isinstance(op, DmaLoadOp):
            name = load_name(op.source, op.box)
            loads[name] = None if name in loads else op
    missing = [n for chain in named for n in chain if loads.get(n) is None]
    if missing:
        raise KeyError(f"no single dma_load of {missing[0]}")
    return _sequences(kernel, [[loads[n] for n in chain] for chain in named])  # type: ignore[misc]


@dataclass(frozen=True)
class ShareHbmPortsPass(ModulePass):
    """Loads whose readers run one after the other stream through shared HBM ports (module doc)."""

    name = "share-hbm-ports"

    min_bytes: int = MIN_BYTES

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            share_ports(kernel, self.min_bytes)

