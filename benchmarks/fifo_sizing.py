"""FIFO sizing: speed on large random DAGs, and FIFO memory at the makespan on DSL programs.

Part 1 sizes random DAGs of 1,000 and 10,000 tasks with the default (min-bits) and the LP
(targets: < 1 s and < 30 s on the 2-core CI machine) and checks each with the timed simulator
(no deadlock, the makespan of infinite FIFOs). Part 2 sizes the PolyBench ports, the tutorials,
the FFN block and the library of DSL test programs with every mode and prints min-bits' bits
against the best of conservative and depth 2 where those reach the makespan (target <= 1.1) and
against the LP (target <= 1). Part 3: 2mm at 1024^3 with 64x64 tiles against the U55C's on-chip
memory. Part 4: the makespan/memory trade-off curve of one program.
Run: `python benchmarks/fifo_sizing.py [--sizes 1000 10000] [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dsl import polybench as PB  # noqa: E402
from fifo.fifo_dags import random_dag  # noqa: E402

import streamdsl as sd  # noqa: E402
from lowering.fifo_sizing import size_fifos, tradeoff  # noqa: E402
from streamdsl.sim.timed import simulate_timed, simulate_unbounded  # noqa: E402

U55C_BITS = int(42.6 * 2**20 * 8)
TARGET_SECONDS = {1000: 1.0, 10000: 30.0}


def random_dags(sizes: list[int], kinds: list[str]) -> None:
    print("== sizing random DAGs: min-bits (the default) and the LP ==")
    print(f"{'kind':8} {'tasks':>6} {'edges':>6} {'events':>8} {'min-bits s':>10} {'sims':>4} {'LP s':>6} {'target':>6} "
          f"{'ratio':>6} {'bits/LP':>7} check")
    for n in sizes:
        for kind in kinds:
            graph = random_dag(kind, n, seed=n)
            events = graph.compiled.num_events
            start = time.perf_counter()
            sizing = size_fifos(graph)
            seconds = time.perf_counter() - start
            lp = size_fifos(graph, "lp")
            res = simulate_timed(graph, sizing.depths)
            ok = res.deadlock is None and res.makespan == simulate_unbounded(graph).makespan
            target = TARGET_SECONDS.get(n, float("nan"))
            print(f"{kind:8} {len(graph.tasks):6d} {len(graph.edges):6d} {events:8d} {seconds:10.2f} {sizing.simulations:4d} "
                  f"{lp.seconds:6.2f} {target:6.1f} {seconds / target:6.2f} {sizing.total_bits / lp.total_bits:7.2f} "
                  f"{'ok' if ok else 'FAIL'}")


def tutorial_programs() -> dict[str, object]:
    programs: dict[str, object] = {}
    for path in sorted((ROOT / "tutorials").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"tutorial_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            built = module.build()
        except Exception as err:  # a broken tutorial must not hide the others
            print(f"  skipped {path.name}: {type(err).__name__}: {err}")
            continue
        items = built.items() if isinstance(built, dict) else [("", built)]
        for name, prog in items:
            programs[f"{path.stem}{'/' + name if name else ''}"] = prog
    return programs


def library_programs() -> dict[str, object]:
    from dsl import programs as P
    from hls.cases import ffn_block

    cases = {
        "diamond": P.diamond(4, 256, 32),
        "layernorm": P.layernorm(8, 256, 32),
        "softmax": P.softmax(8, 256, 32),
        "matvec": P.matvec(512, 256, 32),
        "transpose": P.transpose(128, 128, 32),
        "gelu_mlp": P.gelu_mlp(128, 256, 32),
        "fork_join": P.fork_join(8, 256, 32),
    }
    programs = {f"programs/{k}": c.program for k, c in cases.items()}
    programs["ffn_block"] = ffn_block().program
    programs.update({f"polybench/{k}": c.program for k, c in PB.cases(256, 32).items()})
    return programs


def _reaches(graph, depths: dict[str, int], makespan: int) -> bool:  # noqa: ANN001
    run = simulate_timed(graph, depths)
    return run.deadlock is None and run.makespan == makespan


def dsl_graphs() -> list[str]:
    print("\n== FIFO bits at the makespan on DSL programs (cons./depth 2: '-' where they do not reach it) ==")
    print(f"{'program':34} {'fifos':>5} {'makespan':>9} {'min-bits':>9} {'LP':>9} {'cons.':>9} {'depth 2':>9} "
          f"{'naive':>9} {'tensor':>9} {'/best':>6} {'/LP':>5} {'s':>5} {'sims':>4}")
    failures = []
    for name, prog in {**tutorial_programs(), **library_programs()}.items():
        design = sd.compile(prog)
        graph, s = design.graph, design.sizing
        makespan = simulate_unbounded(graph).makespan
        ok = _reaches(graph, s.depths, makespan)
        others = {mode: size_fifos(graph, mode) for mode in ("lp", "conservative", "default")}
        reach = {m: _reaches(graph, o.depths, makespan) for m, o in others.items()}
        best = min([others[m].total_bits for m in ("conservative", "default") if reach[m]], default=None)
        vs_best = s.total_bits / best if best else float("nan")
        vs_lp = s.total_bits / others["lp"].total_bits
        col = lambda m: f"{others[m].total_bits:9d}" if reach[m] else f"{'-':>9}"  # noqa: E731
        print(f"{name:34} {len(design.streams):5d} {makespan:9d} {s.total_bits:9d} {others['lp'].total_bits:9d} "
              f"{col('conservative')} {col('default')} {s.naive_bits:9d} {s.tensor_deep_bits:9d} {vs_best:6.2f} "
              f"{vs_lp:5.2f} {s.seconds:5.2f} {s.simulations:4d}")
        if not ok or vs_lp > 1 or (best and vs_best > 1.1):
            failures.append(name)
    return failures


def on_chip() -> None:
    print("\n== 2mm at 1024^3, 64x64 tiles: FIFO memory at the makespan (U55C: 42.6 MiB on chip) ==")
    design = sd.compile(PB.two_mm(1024, 64).program)
    graph = design.graph
    makespan = simulate_unbounded(graph).makespan
    for mode, sizing in (("min-bits", design.sizing), *((m, size_fifos(graph, m)) for m in ("lp", "conservative", "default"))):
        run = simulate_timed(graph, sizing.depths)
        verdict = "deadlock" if run.deadlock else f"makespan {run.makespan}{' (= unbounded)' if run.makespan == makespan else ''}"
        fits = "fits" if sizing.total_bits <= U55C_BITS else "does NOT fit"
        print(f"  {mode:13} {sizing.total_bits / 8 / 2**20:10.3f} MiB  {fits:12} {verdict}  ({sizing.seconds:.2f} s)")
    print(f"  tensor-deep   {design.sizing.tensor_deep_bits / 8 / 2**20:10.3f} MiB  (every intermediate buffered whole)")


def curve() -> None:
    print("\n== makespan / memory trade-off (min-bits with a makespan slack), polybench atax 256 ==")
    graph = sd.compile(PB.atax(256, 256, 32).program).graph
    for p in tradeoff(graph):
        print(f"  slack {p.slack:5.2f}  makespan {p.makespan:9d}  bits {p.total_bits:9d}  ({p.seconds:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--kinds", nargs="*", default=["random", "nested"])
    parser.add_argument("--profile", action="store_true", help="profile sizing of the largest DAG")
    args = parser.parse_args()
    random_dags(args.sizes, args.kinds)
    failures = dsl_graphs()
    on_chip()
    curve()
    print(f"\nprograms off target: {', '.join(failures) if failures else 'none'}")
    if args.profile:
        graph = random_dag("random", max(args.sizes), seed=0)
        cProfile.runctx("size_fifos(graph)", globals(), {"graph": graph}, "/tmp/fifo_sizing.prof")
        pstats.Stats("/tmp/fifo_sizing.prof").sort_stats("cumtime").print_stats(12)


if __name__ == "__main__":
    main()
