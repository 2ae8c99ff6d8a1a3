"""Performance hints: `@sd.kernel(lanes=N, ii=M)` and `sd.hint(tile, lanes=N)` on one op.

Hints travel in the IR as attributes the timing model reads (docs/ir.md, "Timing hints"):
`unroll = N : i64` (scalar operations per cycle, on a task or a tile op) and `ii = M : i64` (the
least initiation interval of the task's pipelined loops). The one device limit checked here is
the DSP budget: every tile op is its own hardware, `lanes` copies of its scalar body, and the
floating-point multipliers and adders of all of them must fit the U55C's DSP slices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.ir import Operation

from streamdsl.opinfo import FLOAT_CORES

__all__ = ["DEVICE_DSPS", "Hints", "dsp_cost", "hint", "set_lanes"]

DEVICE_DSPS = 9024  # DSP48E2 slices of the Alveo U55C (XCU55C)

# DSP slices per scalar op and lane: the f32 Floating-Point Operator cores of the op vocabulary
# (the resource model's table, lowering/resources.py). Other ops are built from LUTs here.
_DSP_PER_OP = {name: core[0] for name, core in FLOAT_CORES.items() if core[0]}


@dataclass(frozen=True)
class Hints:
    """Kernel-level hints (None: the timing model's defaults)."""

    lanes: int | None = None
    ii: int | None = None

    def check(self) -> str | None:
        for name, value in (("lanes", self.lanes), ("ii", self.ii)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                return f"{name}={value!r}: hints are positive ints"
        return None

    def attributes(self) -> dict[str, IntegerAttr]:
        attrs = {}
        if self.lanes is not None:
            attrs["unroll"] = IntegerAttr(self.lanes, i64)
        if self.ii is not None:
            attrs["ii"] = IntegerAttr(self.ii, i64)
        return attrs


def hint(x: object, lanes: int | None = None) -> object:
    """`sd.hint(a @ b, lanes=16)`: compute the op producing `x` with `lanes` scalar operations
    per cycle (eagerly: `x` unchanged)."""
    return x


def set_lanes(op: Operation, lanes: int) -> None:
    op.attributes["unroll"] = IntegerAttr(lanes, i64)


def _lanes(op: Operation) -> int | None:
    attr = op.attributes.get("unroll")
    return attr.value.data if isinstance(attr, IntegerAttr) else None


def dsp_cost(op: Operation, default_lanes: int) -> int:
    """DSP slices a tile op needs: its lanes times the DSPs of one scalar body."""
    if op.name == "linalg.matmul":
        per_lane = _DSP_PER_OP["arith.mulf"] + _DSP_PER_OP["arith.addf"]
    elif op.name.startswith("linalg.") and op.regions:
        per_lane = sum(_DSP_PER_OP.get(inner.name, 0) for inner in op.regions[0].block.ops)
    else:
        return 0
    return per_lane * (_lanes(op) or default_lanes)


def over_budget(ops: Iterable[Operation], default_lanes: int) -> tuple[int, list[tuple[int, Operation]]]:
    """Total DSPs of `ops` and the costliest ones, when the total exceeds the device."""
    costs = sorted(((dsp_cost(op, default_lanes), op) for op in ops), key=lambda c: -c[0])
    total = sum(c for c, _ in costs)
    return total, [c for c in costs if c[0]][:3] if total > DEVICE_DSPS else []
