"""`size-fifos`: choose every FIFO depth of each `dataflow.kernel` and write it into the IR.

Depths come from `lowering.fifo_sizing` (mode `min-bits` by default; `lp`, `conservative`,
`naive`, `default`) over the U55C timing model. Where they go (docs/ir.md, "FIFO depths"):
- itensor level: a `depth` attribute on the op producing the stream, an i64 integer when the op
  has one result and `array<i64: ...>` (one entry per result) when it has several;
- stream level: the `depth` of the `!dataflow.stream` type (and of the task block arguments that
  receive the stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from lowering.fifo_sizing import MODES, Sizing, size_fifos
from lowering.resources import U55C_DEVICE, Device, fits_device, kernel_usage, logic_usage
from lowering.slr import SlrError, kernel_wires, place, slr_hint
from lowering.timing import U55C, kernel_graph
from streamdsl.dialects.dataflow import KernelOp, set_fifo_depth
from streamdsl.graph import Graph

__all__ = ["SizeFifosPass", "fits_and_places", "size_kernel", "write_depths"]


def size_kernel(kernel: KernelOp, mode: str = "min-bits") -> tuple[Graph, Sizing]:
    """Size the FIFOs of one kernel and write the depths into it; returns its timing graph too.
    min-bits keeps to the device (its logic and memories by the resource model) when it can, and
    when that design has no SLR placement, sizes again keeping to one that has
    (`fits_and_places`). Only then: the design sized by the totals is checked once (the local
    search, then CBC when it finds none), each prefetch level by the local search alone. Either
    way min-bits ends with the tasks' MACs bound as `kernel_usage` binds them at the sized depths
    (the emitter follows)."""
    graph, values = kernel_graph(kernel, U55C)
    sizing = size_fifos(graph, mode, fits=fits_device(graph, kernel))
    if mode == "min-bits" and not _placeable(kernel, graph, sizing.depths):
        sizing = size_fifos(graph, mode, fits=fits_and_places(graph, kernel))
        kernel_usage(kernel, graph, sizing.depths)  # the MACs bound with these memories counted, as `_placeable` binds them
    write_depths(values, sizing.depths)
    return graph, sizing


def _placeable(kernel: KernelOp, graph: Graph, depths: Mapping[str, int]) -> bool:
    """Whether the design at `depths` has an SLR placement: the local search's (from a design
    plan's placement, `slr_hint`, when the kernel has one), else CBC's first (`place(...,
    first=True, exact=True)`: CBC finds placements the search misses; without it
    Qwen2.5's explored design was sized within the search's answer, 20,177 cycles against
    13,245). Asking CBC first took 69 of the 84 s a tiny Gemma 3 W8A8 generation spent compiling
    its two designs; asking it for the least-crossing placement where the search found none took
    102 of the 112 s GPT-2 medium's chosen design (its weight chains' parts flattened) spent in
    `sd.compile`."""
    try:
        place(kernel_usage(kernel, graph, depths), kernel_wires(kernel, graph), first=True, hint=slr_hint(kernel), exact=True)
    except SlrError:
        return False
    return True


def fits_and_places(graph: Graph, kernel: KernelOp, device: Device = U55C_DEVICE) -> Callable[[Mapping[str, int]], bool]:
    """`fits_device`, and an SLR placement of the design at those depths exists (the first one
    CBC finds, the last one found tried first: `lowering.slr.place`). The totals alone let the
    prefetch fill the memory with nodes too large to share the SLRs: TinyLlama's float block at
    cache 1024 gave each of its three MLP matvecs 210 URAM of an SLR's 320, 930 of the 960, and
    no placement."""
    within, wires, logic = fits_device(graph, kernel, device), kernel_wires(kernel, graph), logic_usage(kernel)
    last: dict[str, dict[str, int] | None] = {"slr": slr_hint(kernel)}  # a design plan's placement first

    def fits(depths: Mapping[str, int]) -> bool:
        if not within(depths):
            return False
        try:
            last["slr"] = place(kernel_usage(kernel, graph, depths, logic=logic), wires, device, first=True, hint=last.get("slr")).slr
        except SlrError:
            return False
        return True

    return fits


def write_depths(values: Mapping[str, SSAValue], depths: Mapping[str, int]) -> None:
    """Store `depths[name]` on the FIFO `values[name]` (a producer's result or a stream)."""
    for name, value in values.items():
        set_fifo_depth(value, depths[name])


@dataclass(frozen=True)
class SizeFifosPass(ModulePass):
    """Size FIFOs: fewest bits at the unbounded makespan (or `mode=lp|conservative|naive|default`)."""

    name = "size-fifos"

    mode: str = "min-bits"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.mode not in MODES:
            raise PassFailedException(f"size-fifos: mode {self.mode!r} is unknown; choose one of {', '.join(MODES)}")
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            size_kernel(kernel, self.mode)
