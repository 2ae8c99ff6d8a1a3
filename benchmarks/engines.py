"""What matvec engines (`form-engines`) buy a planned block: cycles and resources per split.

A design plan that `roofline.py --plans DIR` wrote gives the block's lanes and loop flattening; the
weight matvecs (in program order, `weight_chains`) are split as `--parts` says instead of as the
plan did, their loads share ports (`share-hbm-ports`), the DMAs are striped and, with `--narrow`,
the small loads' ports narrowed, as the exploration does. For each split, printed without engines
and with the `--engines` groups (part p of each matvec of a group in one task, at every depth of
the matvecs' chains whose tasks are one body: the contraction, the scales; docs/lowering.md,
"Matvec engines: one body, charged once"): the unbounded timed run, the sized design's cycles and
its resources by the model, which charges an engine's body once as the emitter writes it once.

    python benchmarks/engines.py --family llama --plan DIR/llama.json \\
        --parts 8,1,4,8,8,8,8 --parts 8,1,4,8,11,11,8 --engines 0,3,4,6 --engines 2,5 [--narrow]

`--parts`: one count per weight matvec in program order (1: unsplit), repeat for several splits;
`--engines`: the matvecs (indices in that order) of one engine, repeat for several engines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdsl.dialects.builtin import IntegerAttr, i64  # noqa: E402

import streamdsl as sd  # noqa: E402
from lowering.dse import load_plan, set_clock  # noqa: E402
from lowering.engine_phases import phases_alike  # noqa: E402
from lowering.hbm_channels import allocate_kernel, narrow_ports  # noqa: E402
from lowering.resources import RESOURCES, U55C_DEVICE, Usage, kernel_usage  # noqa: E402
from lowering.timing import table_of  # noqa: E402
from lowering.transforms.flatten_loop_nests import flatten_loop_nests  # noqa: E402
from lowering.transforms.form_engines import form_engines  # noqa: E402
from lowering.transforms.share_hbm_ports import share_ports  # noqa: E402
from lowering.transforms.split_matvecs import PART, split_tasks, weight_chains  # noqa: E402
from streamdsl import quant  # noqa: E402
from streamdsl.dialects.dataflow import TaskOp, kernel_of  # noqa: E402
from streamdsl.sim.timed import simulate_unbounded  # noqa: E402
from streamdsl.wiring import graph_from_kernel  # noqa: E402
from toolchain.models import model_block  # noqa: E402


def build(args: argparse.Namespace, plan, parts: list[int], engines: list[list[int]]):  # noqa: ANN001, ANN201
    """The block split, engined and allocated as the module doc says: (block, chains, unbounded cycles)."""
    block = model_block(args.family, "paper", args.max_context, plan.tile, quant=quant.scheme(args.quant), kv_cache=args.kv_cache)
    kernel = kernel_of(block.lowered.program.module)
    chains = weight_chains(kernel)
    heads = list(chains)
    if len(parts) != len(heads):
        raise SystemExit(f"--parts: {len(heads)} weight matvecs ({', '.join(heads)}), got {len(parts)} counts")
    split_tasks(kernel, {task: n for head, n in zip(heads, parts) if n > 1 for task in chains[head]})
    if plan.flat_loops:
        flatten_loop_nests(kernel, plan.flat_chains)
    tasks = kernel.tasks
    depths = [[chains[heads[i]][depth] for i in group if depth < len(chains[heads[i]])]
              for group in engines for depth in range(max(len(chains[heads[i]]) for i in group))]
    form_engines(kernel, [g for g in depths if phases_alike([tasks[f"{t}_p0"] for t in g if f"{t}_p0" in tasks])])
    share_ports(kernel)
    set_clock(kernel, plan.clock_mhz)
    by_task = {PART.sub("", name): lanes for name, lanes in plan.lanes.items()}
    for task in (op for op in kernel.body.block.ops if isinstance(op, TaskOp)):
        members = [m.data for m in task.attributes["engine"].data] if "engine" in task.attributes else [task.sym_name.data]
        lanes = [plan.lanes.get(m, by_task.get(PART.sub("", m))) for m in members]
        if any(lanes):
            task.attributes["unroll"] = IntegerAttr(max(n for n in lanes if n), i64)
        else:
            task.attributes.pop("unroll", None)
    allocate_kernel(kernel, striping=plan.hbm_striping)
    graph, _ = graph_from_kernel(kernel, table_of(kernel))
    run = simulate_unbounded(graph)
    if args.narrow:
        narrow_ports(kernel, graph, run, table_of(kernel))
        graph, _ = graph_from_kernel(kernel, table_of(kernel))
        run = simulate_unbounded(graph)
    return block, chains, run.makespan


def _shares(total: Usage) -> str:
    return ", ".join(f"{r} {getattr(total, r) / getattr(U55C_DEVICE.total, r):.0%}" for r in RESOURCES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--plan", required=True, type=Path, help="the family's plan, as roofline.py --plans DIR wrote it")
    parser.add_argument("--parts", action="append", required=True, help="parts per weight matvec in program order, e.g. 8,1,4,8,8,8,8")
    parser.add_argument("--engines", action="append", default=[], help="indices of the matvecs of one engine, e.g. 0,3,4")
    parser.add_argument("--quant", default="w4a8")
    parser.add_argument("--max-context", type=int, default=128)
    parser.add_argument("--kv-cache", choices=("f32", "f16"), default="f32")
    parser.add_argument("--narrow", action="store_true", help="narrow the small loads' ports, as the exploration does")
    args = parser.parse_args()
    plan = load_plan(str(args.plan))
    engines = [[int(i) for i in group.split(",")] for group in args.engines]
    for spec in args.parts:
        parts = [int(n) for n in spec.split(",")]
        print(f"{args.family} parts {spec} engines {';'.join(args.engines) or '-'}:")
        for groups, what in (([], "without engines"), (engines, "with engines")):
            block, _, unbounded = build(args, plan, parts, groups)
            design = sd.compile(block.example.program)
            usage = kernel_usage(design.kernel, design.graph, design.depths).total
            print(f"  {what}: {unbounded} cycles unbounded, {design.timed_simulation().makespan} sized; {_shares(usage)}")

if __name__ == "__main__":
    main()
