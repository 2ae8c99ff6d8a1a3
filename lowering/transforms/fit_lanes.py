"""`fit-lanes`: halve the lanes (`unroll`) of the tasks whose compute over-fills the device until
every kernel's logic fits the resource model (docs/resources.md, "Default lanes").

Lanes default to the timing table's 64 a task; a block of wide element-wise maps (Gemma's GELU
and RMSNorm at 64 lanes: 1,184 DSPs for one map) can ask for more DSPs, LUTs or FFs than the
U55C has. While the kernel's logic (`lowering.resources.logic_usage`: tasks, adapters, routers;
memories come after FIFO sizing) is over `fill` of the device in DSP, LUT or FF, the task using
the most of the resource most over its supply (ties: by name) gets half its lanes, unless that
does not lower its use (its work is narrower than its lanes): then it is left alone. A kernel
that does not fit at one lane a task is left for the driver's resource check to report.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from lowering.resources import U55C_COSTS, U55C_DEVICE, Usage, logic_usage, task_lanes, task_usage
from streamdsl.dialects.dataflow import KernelOp, TaskOp
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
    """Halve tasks' lanes until `kernel`'s logic fits `fill` of the device (module doc); returns
    the lanes given, by task."""
    capacity = U55C_DEVICE.total * fill
    nodes = logic_usage(kernel, U55C_COSTS)
    tasks = {node_name(t): t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    given: dict[str, int] = {}
    settled: set[str] = set()
    while True:
        total = Usage.total(nodes.values())
        over = [r for r in COMPUTE if getattr(total, r) > getattr(capacity, r)]
        growing = [n for n in sorted(tasks) if n not in settled and task_lanes(tasks[n]) > 1]
        if not over or not growing:
            return given
        worst = max(over, key=lambda r: getattr(total, r) / getattr(capacity, r))
        name = min(growing, key=lambda n: -getattr(nodes[n], worst))
        task, lanes = tasks[name], task_lanes(tasks[name])
        before = task.attributes.get("unroll")
        task.attributes["unroll"] = IntegerAttr(lanes // 2, i64)
        usage = task_usage(task, U55C_COSTS)
        if getattr(usage, worst) < getattr(nodes[name], worst):
            nodes[name], given[name] = usage, lanes // 2
            continue
        if before is None:  # halving does not help: its work is narrower than its lanes
            task.attributes.pop("unroll")
        else:
            task.attributes["unroll"] = before
        settled.add(name)
