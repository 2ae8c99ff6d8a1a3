"""`sd.compile` and the `Design` it returns.

The FIFO-sizing pipeline lives in a layer above the language core (`lowering`), which the core
never imports: `compile` finds it through the `streamdsl.compile` entry point group that the
package registers in pyproject.toml (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from xdsl.dialects.builtin import ModuleOp

from streamdsl.dialects.dataflow import ITensorConverterOp, KernelOp
from streamdsl.graph import Graph
from streamdsl.graphviz import summary_html
from streamdsl.layout import bank_partitions, slab_layout
from streamdsl.scalars import has_scalars, specialise
from streamdsl.sim.timed import TimedResult, activity, simulate_timed
from streamdsl.wiring import kernel_nodes

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ConverterRecord", "Design", "StreamRecord", "compile", "converter_records"]

PIPELINE_GROUP = "streamdsl.compile"


@dataclass(frozen=True)
class StreamRecord:
    """One FIFO of the design (the `streams` entries of report.json)."""

    name: str
    producer: str
    consumer: str
    tokens: int
    token_bits: int
    depth: int
    lag: int | None = None  # least producer-to-consumer delay that never starves the consumer (cycles)
    delay: int | None = None  # the sizing's chosen delay (cycles), which the depth covers
    beats: int = 1  # stream beats (<= 1,024 bits) per token; the emitted FIFO is depth x beats words deep
    depth_beats: int = 0
    beat_bits: int = 0  # a beat's bits: the FIFO's word

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ConverterRecord:
    """One layout converter of the design (the `converters` entries of report.json): `banks`
    banks of `buffer_shape` (one slab each; two for ping-pong when there is more than one slab),
    `bytes` in all, cut cyclically into `partitions` memories along the box, exactly what the
    emitted C++ allocates."""

    name: str
    buffer_shape: list[int]
    bytes: int
    banks: int = 2
    partitions: int = 1

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def converter_records(kernel: KernelOp) -> list[ConverterRecord]:
    """The layout converters of `kernel`, with the banks the emitted C++ allocates."""
    records = []
    for op, name in kernel_nodes(kernel):
        if isinstance(op, ITensorConverterOp):
            src, dst = op.source.type.itensor, op.result.type.itensor  # type: ignore[attr-defined]
            shared = op.shared_loops.value.data if op.shared_loops is not None else 0
            layout = slab_layout(src, dst, shared)  # the emitter allocates from the same analysis
            records.append(ConverterRecord(name, list(layout.box), layout.buffer_bytes(src.dtype.bits), layout.banks,
                                           bank_partitions(src, dst, math.prod(layout.box))))
    return records


@dataclass
class Design:
    """A compiled program: the IR with planned converters and sized FIFOs, its timing graph and
    the FIFO sizing decision."""

    program: Any
    module: ModuleOp
    graph: Graph
    sizing: Any  # lowering.fifo_sizing.Sizing
    seconds: float

    @property
    def kernel(self) -> KernelOp:
        return _kernel(self.module)

    @property
    def depths(self) -> dict[str, int]:
        return dict(self.sizing.depths)

    @property
    def streams(self) -> list[StreamRecord]:
        return [
            StreamRecord(e.name, e.src, e.dst, self.graph.tokens(e), e.token_bits, self.sizing.depths[e.name],
                         self.sizing.lags.get(e.name), self.sizing.delays.get(e.name), e.beats, self.sizing.depths[e.name] * e.beats,
                         e.word)
            for e in self.graph.fifos
        ]

    @property
    def converters(self) -> list[ConverterRecord]:
        return converter_records(self.kernel)

    def timed_simulation(self, depths: Mapping[str, int | None] | None = None, scalars: Mapping[str, int] | None = None) -> TimedResult:
        """The timed simulation with the design's depths, overridden by `depths` (e.g. smaller
        ones to try; None for an unbounded FIFO). With run-time scalars, `scalars` gives their
        values (default: their maxima, the worst case the FIFOs were sized for)."""
        return simulate_timed(self.graph_at(scalars), {**self.sizing.depths, **(depths or {})})

    def graph_at(self, scalars: Mapping[str, int] | None = None) -> Graph:
        """The timing graph of one invocation with these scalar values (None: the worst case)."""
        if scalars is None:
            return self.graph
        static = specialise(self.module, scalars)
        return _pipeline("size_kernel")(_kernel(static), "default")[0]

    def simulate(self, *arrays: np.ndarray, **options: Any) -> Any:
        """Functional simulation of the sized IR on numpy (bounded FIFOs with the design's depths)."""
        from streamdsl.sim.functional import simulate

        program = self.program  # a Program (a dataclass with a module and parameters), or a bare ModuleOp
        sized = dataclasses.replace(program, module=self.module) if hasattr(program, "params") else self.module
        return simulate(sized, *arrays, **options)

    def report(self) -> dict[str, object]:
        """The `fifo_sizing`, `streams` and `converters` parts of report.json."""
        return {
            "fifo_sizing": self.sizing.report(),
            "streams": [s.as_dict() for s in self.streams],
            "converters": [c.as_dict() for c in self.converters],
        }

    def _repr_html_(self) -> str:
        """Jupyter: sizing figures and the graph, nodes coloured by their busy share of the makespan."""
        timed = self.timed_simulation()
        acts = activity(self.graph, timed)
        makespan = max(timed.makespan or 0, 1)
        figures = {
            "tasks / FIFOs": f"{len(self.graph.tasks)} / {len(self.graph.edges)}",
            "FIFO sizing": f"{self.sizing.mode}: {self.sizing.total_bits:,} bits ({self.sizing.naive_bits:,} naive)",
            "makespan": f"{timed.makespan:,} cycles" if timed.makespan is not None else f"deadlock: {timed.deadlock}",
        }
        shares = {name: act.busy_cycles / makespan for name, act in acts.items()}
        return summary_html(self.kernel.sym_name.data, figures, self.graph, self.depths, shares)


def _kernel(module: ModuleOp) -> KernelOp:
    kernels = [op for op in module.walk() if isinstance(op, KernelOp)]
    if len(kernels) != 1:
        raise ValueError(
            f"sd.compile: the program's module must hold exactly one dataflow.kernel, found {len(kernels)} (docs/ir.md)"
        )
    return kernels[0]


def compile(prog: Any, fifo_sizing: str = "min-bits") -> Design:  # noqa: A001 - the public name is sd.compile
    """Plan the layout converters of `prog` (a DSL program, anything with `.module`, or a
    ModuleOp) and size every FIFO, on a copy (`prog` is not changed), and return the Design.
    `fifo_sizing`: "min-bits" (fewest bits at the makespan of infinite FIFOs, checked by the timed
    simulator), "lp" (the paper's LP, no task ever stalls), "conservative" (LP after slowing every
    task to the slowest), "naive" (as deep as the tensor) or "default" (depth 2); the pipeline rejects any other
    (`lowering.fifo_sizing.MODES` lists them)."""
    module = prog if isinstance(prog, ModuleOp) else getattr(prog, "module", None)
    if not isinstance(module, ModuleOp):
        raise TypeError(f"sd.compile: expected an @sd.dataflow program or a ModuleOp, got {type(prog).__name__}")
    start = time.perf_counter()
    sized = module.clone()
    kernel = _kernel(sized)
    _pipeline("plan_converters")(sized)
    if not has_scalars(sized):
        graph, sizing = _pipeline("size_kernel")(kernel, fifo_sizing)
        return Design(prog, sized, graph, sizing, time.perf_counter() - start)
    worst = specialise(sized, None)  # run-time scalars at their maxima: the longest streams
    graph, sizing = _pipeline("size_kernel")(_kernel(worst), fifo_sizing)
    for op, worst_op in zip(_kernel(sized).body.block.ops, _kernel(worst).body.block.ops, strict=True):
        if "depth" in worst_op.attributes:  # the same ops in the same order: carry the depths over
            op.attributes["depth"] = worst_op.attributes["depth"]
    return Design(prog, sized, graph, sizing, time.perf_counter() - start)


@functools.cache
def _pipeline(name: str) -> Callable[..., Any]:
    """A registered stage of the pipeline: `plan_converters(module)` (in place), then
    `size_kernel(kernel, mode) -> (graph, sizing)`."""
    found = entry_points(group=PIPELINE_GROUP, name=name)
    if not found:
        raise RuntimeError(
            f"sd.compile: no {name!r} stage is registered (entry point group {PIPELINE_GROUP!r}); install the "
            "streamdsl distribution with its tool chain (`make setup`, or `pip install -e .` after "
            "pyproject.toml changed)"
        )
    return next(iter(found)).load()
