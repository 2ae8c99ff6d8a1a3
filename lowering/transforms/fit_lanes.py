"""`fit-lanes`: halve the lanes (`unroll`) of the tasks whose compute over-fills the device until
every kernel's logic fits the resource model (docs/resources.md, "Default lanes").

Lanes default to the timing table's 64 a task; a block of wide element-wise maps (Gemma's GELU
and RMSNorm at 64 lanes: 1,184 DSPs for one map) can ask for more DSPs, LUTs or FFs than the
U55C has. While the kernel's logic (`lowering.resources.logic_usage`: tasks, adapters, routers;
plus its memories at the least FIFO depths, `least_memories`) is over `fill` of
the device in DSP, LUT or FF, one task gets fewer lanes: for each task, the most lanes below its own that use less of the resource most over
its supply (a loop whose II already shares cores gains nothing from the first halving); of those
steps, the one leaving its task the shortest latency by the timing model (ties: the larger
saving, then by name), so the tasks that pace the block keep their lanes. A kernel that does not
fit at one lane a task is left for the driver's resource check to report.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from lowering.memory import kernel_buffers
from lowering.resources import U55C_COSTS, U55C_DEVICE, Usage, logic_usage, memory_usage, task_lanes, task_usage
from lowering.timing import TimingTable, kernel_graph, table_of
from streamdsl.dialects.dataflow import KernelOp, TaskOp
from streamdsl.scalars import specialise
from streamdsl.wiring import node_name

__all__ = ["COMPUTE", "FitLanesPass", "fit_lanes"]

COMPUTE = ("DSP", "LUT", "FF")  # what lanes cost


@dataclass(frozen=True)
class FitLanesPass(ModulePass):
    """Halve the lanes of the largest tasks until each kernel's logic is within `fill` of the U55C."""

    name = "fit-lanes"

    fill: float = 1.0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not 0 < self.fill <= 1:
            raise PassFailedException(f"fit-lanes: fill={self.fill}; give a share of the device in (0, 1]")
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            fit_lanes(kernel, self.fill)


def fit_lanes(kernel: KernelOp, fill: float = 1.0) -> dict[str, int]:
    """Give tasks fewer lanes until `kernel`'s logic fits `fill` of the device (module doc);
    returns the lanes given, by task."""
    capacity = U55C_DEVICE.total * fill
    reserved = least_memories(kernel)
    nodes = logic_usage(kernel, U55C_COSTS)
    table = table_of(kernel)
    tasks = {node_name(t): t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    steps: dict[tuple[str, str], _Step | None] = {}
    given: dict[str, int] = {}
    while True:
        total = Usage.total(nodes.values()) + reserved
        over = [r for r in COMPUTE if getattr(total, r) > getattr(capacity, r)]
        if not over:
            return given
        worst = max(over, key=lambda r: getattr(total, r) / getattr(capacity, r))
        for name in tasks:
            if (name, worst) not in steps:
                steps[name, worst] = _fewer_lanes(tasks[name], nodes[name], worst, table)
        options = [s for name in sorted(tasks) if (s := steps[name, worst]) is not None]
        if not options:
            return given  # over at the fewest useful lanes: the driver's resource check says so
        step = min(options, key=lambda s: (s.latency, getattr(s.usage, worst) - getattr(nodes[s.name], worst), s.name))
        _set_lanes(tasks[step.name], step.lanes)
        nodes[step.name], given[step.name] = step.usage, step.lanes
        for resource in COMPUTE:
            steps.pop((step.name, resource), None)


def least_memories(kernel: KernelOp) -> Usage:
    """The kernel's memories at the least FIFO depths: every FIFO one token deep (shallow FIFOs are
    shift registers, one LUT per bit of width whatever their depth), converter banks and local
    buffers. Their LUTs compete with the lanes' (Gemma 3 small W4A8: 164,875 LUTs at one token,
    163,787 once sized, as a deeper FIFO may leave LUTRAM for BRAM)."""
    if kernel.scalar_args:  # run-time scalars at their maxima (the longest streams), as FIFO sizing takes them
        static = specialise(kernel.get_toplevel_object(), None)  # type: ignore[arg-type]
        kernel = next(k for k in static.walk() if isinstance(k, KernelOp) and k.sym_name == kernel.sym_name)
    graph, _ = kernel_graph(kernel)
    return memory_usage(graph, kernel_buffers(kernel), {e.name: 1 for e in graph.fifos})


@dataclass(frozen=True)
class _Step:
    name: str
    lanes: int
    usage: Usage
    latency: int


def _fewer_lanes(task: TaskOp, now: Usage, resource: str, table: TimingTable) -> _Step | None:
    """The most lanes below the task's that use less of `resource` (a loop whose II shares cores
    may not gain from the first halvings), with its usage and latency; None at one lane."""
    before = task.attributes.get("unroll")
    lanes = task_lanes(task) // 2
    try:
        while lanes >= 1:
            _set_lanes(task, lanes)
            usage = task_usage(task, U55C_COSTS)
            if getattr(usage, resource) < getattr(now, resource):
                return _Step(node_name(task), lanes, usage, table.schedule(task).latency or 0)
            lanes //= 2
        return None
    finally:
        if before is None:
            task.attributes.pop("unroll")
        else:
            task.attributes["unroll"] = before


def _set_lanes(task: TaskOp, lanes: int) -> None:
    task.attributes["unroll"] = IntegerAttr(lanes, i64)
