"""FIFO sizing speed on large random DAGs, and FIFO memory (LP vs naive vs simulated peak) on the
DSL tutorial graphs and the DSL test programs.

Part 1 sizes random DAGs of 1,000 and 10,000 tasks (targets: < 1 s and < 30 s on the 2-core CI
machine) and checks each with the timed simulator (no deadlock, the makespan of infinite FIFOs).
Part 2 compiles every `build()` program of tutorials/*.py (and the library of DSL test programs)
with each sizing mode. Run: `python benchmarks/fifo_sizing.py [--sizes 1000 10000] [--profile]`.
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

import streamdsl as sd  # noqa: E402
from fifo.fifo_dags import random_dag  # noqa: E402
from lowering.fifo_sizing import size_fifos  # noqa: E402
from streamdsl.sim.timed import simulate_timed, simulate_unbounded  # noqa: E402

TARGET_SECONDS = {1000: 1.0, 10000: 30.0}


def random_dags(sizes: list[int], kinds: list[str]) -> None:
    print("== sizing random DAGs (LP mode) ==")
    print(f"{'kind':8} {'tasks':>6} {'edges':>6} {'events':>8} {'size s':>7} {'(CBC s)':>7} {'target':>6} {'ratio':>6} "
          f"{'sim s':>6} {'LP/peak':>7} {'naive/LP':>8} check")
    for n in sizes:
        for kind in kinds:
            graph = random_dag(kind, n, seed=n)
            events = sum(len(t) for t in graph.compiled.times)
            start = time.perf_counter()
            sizing = size_fifos(graph, "lp")
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            res = simulate_timed(graph, sizing.depths)
            sim_seconds = time.perf_counter() - start
            ok = res.deadlock is None and res.makespan == simulate_unbounded(graph).makespan
            target = TARGET_SECONDS.get(n, float("nan"))
            print(f"{kind:8} {len(graph.tasks):6d} {len(graph.edges):6d} {events:8d} {seconds:7.2f} {sizing.lp_seconds:7.2f} "
                  f"{target:6.1f} {seconds / target:6.2f} {sim_seconds:6.2f} {sizing.total_bits / sizing.sim_peak_bits:7.2f} "
                  f"{sizing.naive_bits / sizing.total_bits:8.2f} {'ok' if ok else 'FAIL'}")


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

    cases = {
        "diamond": P.diamond(4, 256, 32),
        "layernorm": P.layernorm(8, 256, 32),
        "softmax": P.softmax(8, 256, 32),
        "matvec": P.matvec(512, 256, 32),
        "transpose": P.transpose(128, 128, 32),
        "gelu_mlp": P.gelu_mlp(128, 256, 32),
        "fork_join": P.fork_join(8, 256, 32),
    }
    return {f"programs/{k}": c.program for k, c in cases.items()}


def dsl_graphs() -> None:
    print("\n== FIFO memory on DSL graphs (bits; sim peak = peak occupancy with infinite FIFOs) ==")
    print(f"{'program':34} {'fifos':>5} {'LP':>9} {'naive':>9} {'sim peak':>9} {'LP/peak':>7} {'naive/LP':>8} "
          f"{'LP s':>5} {'cons.':>9} {'depth 2':>10}")
    for name, prog in {**tutorial_programs(), **library_programs()}.items():
        design = sd.compile(prog, fifo_sizing="lp")
        s = design.sizing
        lp_run = design.timed_simulation()
        assert lp_run.deadlock is None and lp_run.makespan == simulate_unbounded(design.graph).makespan, name
        conservative = sd.compile(prog, fifo_sizing="conservative").sizing.total_bits
        default = sd.compile(prog, fifo_sizing="default").timed_simulation()
        verdict = "deadlock" if default.deadlock else f"+{default.makespan - lp_run.makespan} cyc"
        print(f"{name:34} {len(design.streams):5d} {s.total_bits:9d} {s.naive_bits:9d} {s.sim_peak_bits:9d} "
              f"{s.total_bits / s.sim_peak_bits:7.2f} {s.naive_bits / s.total_bits:8.2f} {s.seconds:5.2f} "
              f"{conservative:9d} {verdict:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--kinds", nargs="*", default=["random", "nested"])
    parser.add_argument("--profile", action="store_true", help="profile sizing of the largest DAG")
    args = parser.parse_args()
    random_dags(args.sizes, args.kinds)
    dsl_graphs()
    if args.profile:
        graph = random_dag("random", max(args.sizes), seed=0)
        cProfile.runctx("size_fifos(graph)", globals(), {"graph": graph}, "/tmp/fifo_sizing.prof")
        pstats.Stats("/tmp/fifo_sizing.prof").sort_stats("cumtime").print_stats(12)


if __name__ == "__main__":
    main()
