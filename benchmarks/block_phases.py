"""Where a planned block's cycles go: each weight matvec's span in the timed run and the HBM rate it
reaches there, and the time between matvecs.

A decode block is a chain of weight matvecs (each needs the one before's result) with norms,
attention and element-wise work between them. For each matvec (all its parts), printed: when its
first part starts and its last part ends in the timed simulation of the sized design, its weight
bytes (the slices its parts load), the bytes per cycle it moved over that span, the share of the
HBM's measured rate that is (425 GB/s at the plan's clock: docs/timing.md), the share of its
weight streams' own limit that is (each part's stream takes one beat, at most 1,024 bits, a cycle:
docs/hls.md "Stream beats"; near 100%, only more parts or wider beats make it faster), and the
HBM channels its weight streams hold. Between two matvecs (and before the first and after the
last) is time no matvec streams weights: the row `between`. The block reaches its HBM roofline only when every
matvec runs at the whole rate and the time between them is nothing. Last, the critical path: the
tasks that set the makespan, each from when the stream it had waited on delivered (what to make
faster: work off it cannot lower the makespan); a DMA on it shows its stripes and the HBM bits a
cycle they deliver against its stream's beat (below its beat, the DMA paces its reader).

Run: `python benchmarks/block_phases.py --family F --plan DIR/F.json` (a plan `roofline.py --plans`
wrote; the block is built as `streamdsl compile F --size paper --quant Q --max-context N --plan`
builds it; a plan made with `roofline.py --device-scale K` needs the same `--device-scale K`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamdsl as sd  # noqa: E402
from lowering.dse import load_plan  # noqa: E402
from lowering.hbm_channels import buffer_bytes  # noqa: E402
from lowering.resources import device_scaled  # noqa: E402
from lowering.timing import U55C, dma_bits_per_cycle, hbm_stripes, table_of  # noqa: E402
from lowering.transforms.split_matvecs import PART, weight_chains  # noqa: E402
from streamdsl import quant  # noqa: E402
from streamdsl.dialects.dataflow import DMA_OPS, TaskOp, kernel_of  # noqa: E402
from streamdsl.sim.timed import Segment, critical_path  # noqa: E402
from streamdsl.wiring import kernel_nodes, node_name, stream_reads, stream_writes  # noqa: E402
from toolchain.cli import positive_float  # noqa: E402
from toolchain.models import model_block, plan_design  # noqa: E402


def phases(design, run, heads: set[str], clock_mhz: float) -> list[dict[str, object]]:  # noqa: ANN001 - an sd.compile design, its timed run
    """Per weight matvec (`heads`: their tasks' names before any split), in order of start in
    `run`: its parts, span, weight bytes and HBM figures."""
    matvecs: dict[str, dict[str, object]] = {}
    for task in (t for t in design.kernel.body.block.ops if isinstance(t, TaskOp) and PART.sub("", t.sym_name.data) in heads):
        node = node_name(task)
        row = matvecs.setdefault(PART.sub("", task.sym_name.data), {"parts": 0, "start": run.start[node], "end": run.finish[node],
                                                                     "bytes": 0, "channels": 0, "beat_bytes": 0})
        row["parts"] += 1
        row["start"], row["end"] = min(row["start"], run.start[node]), max(row["end"], run.finish[node])
        loaded = [v for v in task.inputs if isinstance(v.owner, DMA_OPS)]
        if loaded:  # the weight slice: the largest stream a DMA (or a sequence's member) feeds it
            weight = max(loaded, key=buffer_bytes)
            row["bytes"] += buffer_bytes(weight)
            row["channels"] += hbm_stripes(weight.owner)[0]
            row["beat_bytes"] += weight.type.itensor.beat_lanes * weight.type.itensor.dtype.bits / 8
    hbm = U55C.at_clock(clock_mhz).hbm_bits_per_cycle * 32 / 8  # bytes per cycle, all 32 pseudo-channels
    rows = []
    for name, row in sorted(matvecs.items(), key=lambda kv: kv[1]["start"]):
        span = row["end"] - row["start"]
        rate = row["bytes"] / span if span else 0.0
        rows.append({"matvec": name, "parts": row["parts"], "start": row["start"], "end": row["end"], "span": span,
                     "MiB": row["bytes"] / 2**20, "bytes_per_cycle": rate, "hbm_share": rate / hbm,
                     "stream_share": rate / row["beat_bytes"] if row["beat_bytes"] else 0.0, "channels": row["channels"]})
    return rows


def dma_rates(design) -> dict[str, tuple[int, int, int]]:  # noqa: ANN001 - an sd.compile design
    """Per DMA node: its stripes, the HBM bits a cycle they deliver together (`dma_bits_per_cycle`
    at the kernel's clock, as its timed run charges them: each channel's measured rate times the
    DMA's share of it) and its stream's beat bits (what the stream would take a cycle). A DMA on
    the critical path below its beat paces its readers."""
    table = table_of(design.kernel)
    return {name: (hbm_stripes(op)[0], dma_bits_per_cycle(op, table), (stream_writes(op) or stream_reads(op))[0].type.itensor.beat_bits)
            for op, name in kernel_nodes(design.kernel) if isinstance(op, DMA_OPS)}


def planned_phases(block, plan) -> tuple[int, list[dict[str, object]], list[Segment], dict[str, tuple[int, int, int]]]:  # noqa: ANN001
    """`block` (a ModelBlock) built as `streamdsl compile --plan` builds it with `plan`: its makespan
    in the timed simulation, its `phases`, its critical path (`streamdsl.sim.timed.critical_path`)
    and its `dma_rates`."""
    heads = set(weight_chains(kernel_of(block.lowered.program.module)))
    plan_design(block.lowered.program.module, plan.tile, plan)
    design = sd.compile(block.example.program)
    run = design.timed_simulation()
    return (run.makespan, phases(design, run, heads, plan.clock_mhz), critical_path(design.graph, run),
            dma_rates(design))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--quant", default="w4a8")
    parser.add_argument("--max-context", type=int, default=128)
    parser.add_argument("--kv-cache", choices=("f32", "f16"), default="f32", help="what the KV cache is held in (as the plan was made)")
    parser.add_argument("--min-cycles", type=int, default=50, help="critical path segments shorter than this are not printed")
    parser.add_argument("--device-scale", type=positive_float, default=1.0, metavar="K",
                        help="the block lowered and its FIFOs sized on a device of K times the U55C's resources (as "
                             "`roofline.py --device-scale K` made the plan; default 1)")
    args = parser.parse_args()
    plan = load_plan(args.plan)
    with device_scaled(args.device_scale):  # the block lowered and sized on the device roofline.py explored it on
        block = model_block(args.family, "paper", args.max_context, plan.tile, quant=quant.scheme(args.quant), kv_cache=args.kv_cache)
        makespan, rows, path, rates = planned_phases(block, plan)
    print(f"{args.family}: {makespan} cycles at {plan.clock_mhz:g} MHz; weight matvecs in order of start")
    print(f"{'matvec':14s} {'parts':>5s} {'start':>7s} {'end':>7s} {'span':>7s} {'MiB':>6s} {'B/cycle':>8s} {'of HBM':>7s} "
          f"{'of streams':>10s} {'channels':>8s}")
    covered, last = 0, 0
    for r in rows:
        print(f"{r['matvec']:14s} {r['parts']:5d} {r['start']:7d} {r['end']:7d} {r['span']:7d} {r['MiB']:6.2f} "
              f"{r['bytes_per_cycle']:8.1f} {r['hbm_share']:7.0%} {r['stream_share']:10.0%} {r['channels']:8d}")
        covered += max(0, r["end"] - max(r["start"], last))
        last = max(last, r["end"])
    print(f"{'between':14s} {'':5s} {'':7s} {'':7s} {makespan - covered:7d}  (no weight matvec running: "
          f"{(makespan - covered) / makespan:.0%} of the block)")
    print(f"critical path (the tasks that set the makespan, each from the stream it waited on; {args.min_cycles}+ cycles):")
    for seg in path:
        if seg.end - seg.start >= args.min_cycles:
            after = f"  (after {seg.waited_on})" if seg.waited_on else ""
            if seg.task in rates:
                stripes, bits, beat = rates[seg.task]
                after += f"  [{stripes} stripe{'s' if stripes > 1 else ''}, {bits} of its stream's {beat} bits a cycle]"
            print(f"  {seg.start:7d} {seg.end:7d} {seg.end - seg.start:6d}  {seg.task}{after}")


if __name__ == "__main__":
    main()
