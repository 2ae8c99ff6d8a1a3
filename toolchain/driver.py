"""The main job: compile a program end to end with its verification and write `DIR/report.json`.

Stages (each timed in the report): build the IR, plan converters and size the FIFOs
(`sd.compile`), simulate functionally with the sized depths against the PyTorch reference,
judge the sizing with the timed simulator (no deadlock, no stall against unbounded FIFOs), and
write report.html (toolchain/report_html.py) beside report.json.
`hls_backend` is imported only when `--csim` asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from lowering.fifo_sizing import tradeoff
from lowering.memory import design_memory, local_tensors
from lowering.resources import ResourceError, kernel_usage, resources_report
from lowering.slr import SlrError, extra_depth, kernel_wires, place, slr_hint, with_crossings
from lowering.timing import U55C
from streamdsl.dialects.dataflow import DmaLoadOp, DmaSequenceOp, DmaStoreOp, ITensorType, KernelOp, TaskOp
from streamdsl.graphviz import graph_to_dot, render
from streamdsl.output import atomic_output_dir, check_output_dir, write_json
from streamdsl.sim.timed import simulate_timed
from toolchain.examples import Example
from toolchain.progress import Progress
from toolchain.report_html import summary_html, write_report_html

__all__ = ["CompileResult", "compile_example"]

# fp32 through a different summation order than torch: relative to the output's magnitude
TOLERANCE = 1e-5

# U55C on-chip memory in bits (the figure report.json's on_chip gives; the fit is judged by shape,
# lowering/memory.py): 2,016 BRAM36 (36 Kib each) + 960 URAM (288 Kib each) = 42.6 MiB
DEVICE_ON_CHIP_BITS = 2016 * 36 * 1024 + 960 * 288 * 1024


@dataclass
class CompileResult:
    report: dict[str, object]
    out_dir: Path
    passed: bool
    failures: list[str] = field(default_factory=list)
    design: Any = None  # the sized Design
    timed: Any = None  # its timed simulation

    def _repr_html_(self) -> str:
        """Jupyter: the key figures and the graph coloured by busy share."""
        return summary_html(self.report, self.design, self.timed)


STAGES = 7  # build, fifo_sizing (converters + FIFOs), reference, functional_sim, timed_sim, slr_placement, report (+2 with csim)


class _Stages:
    def __init__(self, step: Callable[[str], None], advance: Callable[[], None]) -> None:
        self.seconds: dict[str, float] = {}
        self.step = step
        self.advance = advance

    @contextmanager
    def __call__(self, name: str, what: str) -> Iterator[None]:
        self.step(what)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 4)
        self.advance()


def _dmas(kernel: KernelOp) -> list[dict[str, object]]:
    """A row per tensor a DMA moves: a `dma_sequence`'s members each (`shared_ports`: they stream
    one after the other through the sequence's ports)."""
    rows = []
    for op in kernel.body.block.ops:
        if isinstance(op, DmaSequenceOp):
            rows += [{**_dma_row("load", m.source, m.result), "shared_ports": True} for m in op.members]
        elif isinstance(op, DmaLoadOp):
            rows.append(_dma_row("load", op.source, op.result))
        elif isinstance(op, DmaStoreOp):
            rows.append(_dma_row("store", op.result, op.source))
    return rows


def _dma_row(direction: str, tensor: SSAValue, stream: SSAValue) -> dict[str, object]:
    assert isinstance(stream.type, ITensorType)
    it = stream.type.itensor
    return {"direction": direction, "tensor": tensor.name_hint or "result", "shape": list(it.shape),
            "bytes": it.num_elements * it.dtype.bits // 8, "tokens": it.num_tokens}


def compile_example(
    example: Example,
    out: Path,
    progress: Progress | None = None,
    seed: int = 0,
    csim: bool = False,
    force: bool = False,
    verify: bool = True,
    emit_hls: bool = False,
    model: dict[str, object] | None = None,
    fifo_tradeoff: bool = False,
) -> CompileResult:
    """Compile `example` and verify it; the output directory appears whole or not at all.

    With `csim`, also emit the Vitis HLS project into `out/hls` and run its C simulation with g++,
    sequentially (as Vitis csim) and threaded with bounded FIFOs, against the functional simulator.
    Without `verify` the PyTorch reference and the functional simulation are skipped (the timed
    simulation still runs); `emit_hls` writes the HLS project without simulating it. `model` (the
    figures of a lowered model, from toolchain.models) becomes the report's `model_figures`, with
    the cycles of one invocation, the FIFO bits and every stage's seconds added; its `layers` and
    `host_seconds` give the report's `estimate` (toolchain/estimate.py). `fifo_tradeoff` adds the
    makespan/FIFO-bits curve (`lowering.fifo_sizing.tradeoff`: min-bits at makespan slacks of 0 to
    100%) as the report's `fifo_tradeoff`.
    """
    check_output_dir(out, force)  # before any work: a bad output path costs nothing
    progress = Progress(0) if progress is None else progress
    with progress.bar("compile", STAGES + 2 * csim + fifo_tradeoff) as advance:
        return _compile(example, Path(out), _Stages(progress.step, advance), seed, csim, force, verify, emit_hls, model,
                        fifo_tradeoff)


def _compile(example: Example, out: Path, stages: _Stages, seed: int, csim: bool, force: bool, verify: bool = True,
             emit_hls: bool = False, model: dict[str, object] | None = None, fifo_tradeoff: bool = False) -> CompileResult:
    import streamdsl as sd

    with stages("build", f"building the IR of {example.name}"):
        program = example.program
        program.module.verify()
    with stages("fifo_sizing", "planning layout converters and sizing FIFOs: fewest bits at the unbounded makespan"):
        design = sd.compile(program)
    inputs = example.make_inputs(seed)
    expected = got = None
    if verify:
        with stages("reference", "running the PyTorch reference"):
            expected = example.reference(*inputs)
        with stages("functional_sim", "functional simulation with the sized FIFOs"):
            got = design.simulate(*inputs)
    with stages("timed_sim", "timed simulation: sized FIFOs vs unbounded"):
        timed = design.timed_simulation()
        unbounded = design.timed_simulation(dict.fromkeys(design.depths))  # None = unbounded
        # within the on-chip budget the DMAs' prefetch is limited: that run (the rest unbounded) is the target
        window = design.sizing.prefetch_depths
        target = design.timed_simulation({**dict.fromkeys(design.depths), **window}) if window else unbounded

    error = _max_abs(got, expected) if verify else None
    scale = max(float(np.max(np.abs(e))) for e in _outputs(expected)) if verify else None
    failures = []
    if verify and error > TOLERANCE * max(scale, 1.0):
        failures.append(f"functional simulation differs from torch by {error:.3g} (max |y| = {scale:.3g})")
    if timed.deadlock is not None:
        failures.append(f"timed simulation deadlocks with the sized FIFOs: {timed.deadlock}")
    elif target.makespan is not None and timed.makespan != target.makespan:
        limit = f" with DMA prefetch limited to {design.sizing.prefetch} tokens" if window else ""
        failures.append(f"sized FIFOs stall: makespan {timed.makespan} cycles vs {target.makespan} unbounded{limit}")

    kernel = design.kernel
    sizing = design.report()
    local: dict[str, int] = {}
    for task, _, bits in local_tensors(kernel):
        local[task] = local.get(task, 0) + bits
    on_chip = _on_chip(sizing["fifo_sizing"]["total_bits"], sizing["converters"], local)
    memory = design_memory(design)
    if not memory["fits"]:
        over = ", ".join(f"{memory[k]} {k} of {cap}" for k, cap in memory["capacity"].items() if memory[k] > cap)
        largest = ", ".join(f"{m['name']} ({m['width']} b x {m['depth']}: {m['count']} {m['resource']})" for m in memory["memories"][:3])
        failures.append(
            f"the design does not fit the U55C counted by memory shape: {over}; largest memories: {largest}; try "
            "fifo_sizing='conservative', smaller tiles (--tile), a shorter cache (--max-context), smaller local tensors or a makespan "
            "slack (lowering.fifo_sizing.tradeoff)"
        )
    usage = kernel_usage(kernel, design.graph, design.depths)
    placement = None
    try:
        usage.check()
        with stages("slr_placement", "placing the tasks on the three SLRs (ILP): fewest crossing bits"):
            placement = place(usage, kernel_wires(kernel, design.graph), hint=slr_hint(kernel))
    except (ResourceError, SlrError) as err:
        failures.append(str(err))
    report: dict[str, object] = {
        "model": example.name,
        "config": example.config,
        "kernels": [{"name": kernel.sym_name.data,
                     "tasks": [op.sym_name.data for op in kernel.body.block.ops if isinstance(op, TaskOp)]}],
        **sizing,
        "dmas": _dmas(kernel),
        "on_chip": on_chip,
        "memory": memory,
        "resources": resources_report(usage, placement=placement.slr if placement else None),
        **({"slr_placement": _slr_report(design, placement)} if placement else {}),
        "verification": {
            "sim_vs_torch_max_abs": error,
            "torch_max_abs": scale,
            "csim_vs_sim_max_abs": None,
            "deadlock_free": timed.deadlock is None,
        },
        "timed_simulation": {
            "makespan_cycles": timed.makespan,
            "unbounded_makespan_cycles": unbounded.makespan,
            **({"prefetch_tokens": design.sizing.prefetch, "prefetch_limited_makespan_cycles": target.makespan}
               if window else {}),
            "stall_cycles": timed.total_stall_cycles,
        },
        "timing": stages.seconds,
    }
    if fifo_tradeoff:
        with stages("fifo_tradeoff", "the makespan / FIFO-bits trade-off: min-bits at makespan slacks of 0 to 100%"):
            report["fifo_tradeoff"] = [{"slack": p.slack, "makespan_cycles": p.makespan, "total_bits": p.total_bits,
                                        "seconds": round(p.seconds, 4)} for p in tradeoff(design.graph)]
    if model is not None:
        from lowering.timing import table_of
        from toolchain.estimate import model_estimate

        report["model_figures"] = {
            **model,
            "cycles_per_block_invocation": timed.makespan,
            "fifo_bits": {"chosen": sizing["fifo_sizing"]["total_bits"], "naive": sizing["fifo_sizing"]["naive_bits"]},
        }
        if timed.makespan is not None:
            report["estimate"] = model_estimate(timed.makespan, int(model["layers"]), report["dmas"], float(model["host_seconds"]),
                                                table_of(kernel))
        if "plan" in model:  # a design plan (lowering/dse.py): in the report and beside it, for --plan
            report["plan"] = model["plan"]
    with atomic_output_dir(out, force) as staging:
        (staging / "program.mlir").write_text(str(design.module) + "\n")
        if "plan" in report:
            write_json(staging / "plan.json", report["plan"])
        render(graph_to_dot(design.graph, design.depths, example.name), staging / "dataflow.dot")
        if csim:
            failures += _csim(design, inputs, got, staging / "hls", stages, report)
        elif emit_hls:
            import hls_backend

            with stages("hls_emit", "emitting Vitis HLS C++, testbench, host program and link.cfg"):
                hls_backend.emit_project(design, staging / "hls")
        report["verification"].update(passed=not failures, failures=failures)
        with stages("report", "writing report.html: graph, FIFO table, Gantt chart of the timed simulation"):
            write_report_html(staging / "report.html", report, design, timed)
        if model is not None:  # every stage, the HLS emission and report.html included
            report["model_figures"]["compile_seconds"] = {**model.get("compile_seconds", {}), **stages.seconds}
        write_json(staging / "report.json", report)
    return CompileResult(report, out, not failures, failures, design, timed)


def _slr_report(design, placement) -> dict[str, object]:  # noqa: ANN001
    """report.json's `slr_placement`: the placement, each crossing FIFO's pipeline registers and
    extra depth, and the timed makespan with them (docs/resources.md, "SLR placement")."""
    beats = {e.name: e.beats for e in design.graph.fifos}
    fifos = {name: {"boundaries": hops, "registers": hops * U55C.sll_latency,
                    "extra_depth": extra_depth(hops * U55C.sll_latency, beats[name])}
             for name, hops in sorted(placement.crossings.items())}
    placed = design.timed_simulation() if not fifos else simulate_timed(with_crossings(design.graph, placement.crossings),
                                                                          design.depths)
    return {**placement.report(), "crossing_fifos": fifos, "makespan_cycles": placed.makespan}


def _on_chip(fifo_bits: int, converters: list[dict[str, object]], local: dict[str, int]) -> dict[str, int]:
    """On-chip memory the streams, converter buffers and task-local buffers need, against what the
    device has."""
    converter_bits = sum(int(c["bytes"]) * 8 for c in converters)
    local_bits = sum(local.values())
    return {"fifo_bits": fifo_bits, "converter_bits": converter_bits, "local_bits": local_bits,
            "total_bits": fifo_bits + converter_bits + local_bits, "device_bits": DEVICE_ON_CHIP_BITS}


def _outputs(value: object) -> list[np.ndarray]:
    """A program's outputs: one array, or a tuple of them (a decoder block's hidden state, keys, values)."""
    return [np.asarray(v, dtype=np.float64) for v in value] if isinstance(value, tuple | list) else [np.asarray(value, dtype=np.float64)]


def _max_abs(got: object, expected: object) -> float:
    return max(float(np.max(np.abs(g - e))) for g, e in zip(_outputs(got), _outputs(expected), strict=True))


def _csim(design, inputs: list[np.ndarray], simulated: object, project: Path, stages: _Stages, report: dict) -> list[str]:
    """Emit the HLS project and check its g++ C simulation (both modes) against the simulator."""
    import hls_backend
    from hls_backend.project import write_test_data

    with stages("hls_emit", "emitting Vitis HLS C++, testbench, host program and link.cfg"):
        hls_backend.emit_project(design, project)
        write_test_data(project, inputs, simulated)  # so `make csim` and `streamdsl build` run as they are
    with stages("csim", "C simulation with g++ (sequential as Vitis csim, then threaded with bounded FIFOs)"):
        record = hls_backend.csim_verification(design, project, *inputs, expected=simulated)
    verification = report["verification"]
    verification["csim_vs_sim_max_abs"] = record["csim_vs_sim_max_abs"]
    verification["csim_deadlock_free"] = record["deadlock_free"]
    verification["deadlock_free"] = verification["deadlock_free"] and record["deadlock_free"]
    report["timing"].update({f"csim_{mode}": round(sec, 4) for mode, sec in record["csim_seconds"].items()})
    if not record["deadlock_free"]:
        return [f"threaded C simulation deadlocks: {record.get('deadlock_report', '')}"]
    worst, scale = record["csim_vs_sim_max_abs"], verification["torch_max_abs"]
    if worst is None or worst > TOLERANCE * max(scale, 1.0):
        return [f"C simulation differs from the functional simulator by {worst}"]
    return []
