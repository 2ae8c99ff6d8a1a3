"""`make mutation`: mutation testing of the core modules with mutmut, one module per core at once.

Each module is mutated in a scratch copy of the checkout (build/mutation/<module>/) whose
pyproject.toml gets a `[tool.mutmut]` section naming the module and the tests that judge it, so
the checkout itself is never touched. mutmut forks one pre-loaded pytest per mutant and runs
only the tests that reach the mutated function. Prints the score per module (killed / mutants
not listed as equivalent in mutation/equivalent.txt) and every surviving mutant, and writes
build/mutation/summary.json.

    python mutation/run.py                      # every module (slow: see docs/mutation.md)
    python mutation/run.py fifo_sizing timing   # some of them
    python mutation/run.py --show lowering.timing.x__trip_count__mutmut_3   # one mutant's diff
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "build" / "mutation"
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
CSIM_CACHE = SCRATCH / "csim-cache"
PYTEST_ARGS = ["-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly"]
PACKAGES = ["streamdsl", "frontends", "lowering", "hls_backend", "toolchain", "tutorials", "docs"]

# module -> (source file, tests that judge it); roughly the costliest first: modules run
# side by side, and the run ends soonest when the last to start are short
MODULES: dict[str, tuple[str, list[str]]] = {
    "hls_emit": ("hls_backend/emit.py", ["tests/hls/test_emit.py", "tests/hls/test_pragmas.py", "tests/hls/test_emit_programs.py",
                                         "tests/hls/test_interleavings.py", "tests/hls/test_errors.py"]),
    "dsl_kernel": ("streamdsl/dsl/kernel.py", ["tests/dsl"]),
    "dsl_ops": ("streamdsl/dsl/ops.py", ["tests/dsl"]),
    "fifo_sizing": ("lowering/fifo_sizing.py", ["tests/fifo/test_lp.py", "tests/fifo/test_lp_bits.py", "tests/fifo/test_min_bits.py",
                                                "tests/fifo/test_late_sources.py"]),
    "cli": ("toolchain/cli.py", ["tests/test_cli.py", "tests/test_cli_failures.py", "tests/test_cli_bad_input.py",
                                 "tests/lowering/test_lower_cli.py", "tests/test_build.py",
                                 "tests/quant/test_quant_cli.py::test_compile_quantized_block_reports_scheme_bytes_and_both_latencies"]),
    "converter_runtime": ("streamdsl/sim/converter.py", ["tests/converters", "tests/sim"]),
    "itensor": ("streamdsl/itensor.py", ["tests/test_itensor.py", "tests/converters"]),
    "functional_sim": ("streamdsl/sim/functional.py", ["tests/sim", "tests/dsl/test_programs.py", "tests/dsl/test_scalars.py"]),
    "layout": ("streamdsl/layout.py", ["tests/converters"]),
    "converters_plan": ("lowering/converters.py", ["tests/converters"]),
    "timed_sim": ("streamdsl/sim/timed.py", ["tests/fifo/test_timed_sim.py", "tests/fifo/test_lp.py", "tests/fifo/test_lp_bits.py"]),
    "frontend_elementwise": ("frontends/ops/elementwise.py", ["tests/frontends/test_frontend_ops.py"]),
    "timing": ("lowering/timing.py", ["tests/fifo/test_timing.py", "tests/fifo/test_timing_cycles.py", "tests/fifo/test_timing_parts.py",
                                   "tests/fifo/test_compile.py"]),
    "frontend_reduce": ("frontends/ops/reduce.py", ["tests/frontends/test_frontend_ops.py"]),
}
# Ray's tests start a cluster (~15 s of waiting) for every mutant of the build command; what the
# CLI gives Ray is judged by a test that stands in for it
SKIPPED = ["tests/test_build.py::test_pool_and_ray_agree", "tests/test_build.py::test_a_failed_job_keeps_the_others"]
# Test files of these modules compile kernels when they are imported (`@sd.kernel` at module
# level). mutmut's default runner imports every test file once, unmutated, and forks each mutant
# from that process, so a mutant of the compiler never reached those kernels (docs/mutation.md).
# These modules run under a fork server that imports only third-party libraries: each mutant's
# pytest imports the project and its test files afresh, under the mutant.
FRESH_IMPORTS = {"dsl_kernel", "dsl_ops"}
PRELOAD = ["numpy", "torch", "hypothesis", "pytest", "xdsl.dialects.builtin", "xdsl.dialects.arith", "xdsl.dialects.func",
           "xdsl.dialects.linalg", "xdsl.dialects.math", "xdsl.dialects.scf", "xdsl.dialects.tensor"]


def equivalents() -> dict[str, str]:
    """Reviewed equivalent mutants: `name  # why it cannot change behaviour`, one per line."""
    out = {}
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.exists() else []:
        name, _, reason = line.partition("#")
        if name.strip():
            out[name.strip()] = reason.strip()
    return out


def copy_checkout(work: Path) -> Path:
    """A fresh copy of the checkout's tracked files (as they are in the work tree) at `work`."""
    shutil.rmtree(work, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    return work


def prepare(module: str) -> Path:
    source, tests = MODULES[module]
    work = copy_checkout(SCRATCH / module)
    copied = [p for p in PACKAGES if (ROOT / p).exists()]
    pytest_args = PYTEST_ARGS + [f"--deselect={t}" for t in SKIPPED]
    fresh = module in FRESH_IMPORTS
    if fresh:  # mutation/import_hits.py credits the calls made while a test file imports to its tests
        copied, pytest_args = [*copied, "mutation"], [*pytest_args, "-p", "mutation.import_hits"]
        (work / "preload.txt").write_text("\n".join(PRELOAD) + "\n")
    config = [
        "[tool.mutmut]",
        f"source_paths = [{json.dumps(source)}]",
        f"also_copy = {json.dumps(copied)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        f"pytest_add_cli_args = {json.dumps(pytest_args)}",
        *(['process_isolation = "forkserver"', 'forkserver_warmup = "import"',
           f"preload_modules_file = {json.dumps(str(work / 'preload.txt'))}"] if fresh else []),
    ]
    with (work / "pyproject.toml").open("a") as f:
        f.write("\n" + "\n".join(config) + "\n")
    return work


def mutmut_command(*args: str) -> tuple[list[str], dict[str, str]]:
    exe = Path(sys.executable).with_name("mutmut")
    # mutmut forks each mutant from a pytest that has run torch: a forked child that enters
    # OpenMP's thread pool waits forever on the parent's threads (then "times out", a false kill)
    # most mutants leave most tests' C++ unchanged: their g++ binaries are reused (hls_backend/csim.py)
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "STREAMDSL_CSIM_CACHE": str(CSIM_CACHE)}
    return ["nice", "-n", "19", str(exe), *args], env


def mutmut(work: Path, *args: str) -> tuple[int, str, float]:
    """Runs mutmut in `work`, its output appended to work/mutmut.log: its exit code, the tail of
    its output, and the CPU seconds it and every process it waited for used (several modules run
    at once, so the process's own children's total would mix them)."""
    command, env = mutmut_command(*args)
    log = work / "mutmut.log"
    with log.open("a+") as out:
        begin = out.tell()
        proc = subprocess.Popen(command, cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(begin)
        return proc.returncode, out.read()[-3000:], usage.ru_utime + usage.ru_stime


# 2: pytest stopped at a collection error, a test file that no longer imports under the mutant
# (a module-level kernel that fails to compile; FRESH_IMPORTS)
KILLED = {1: "killed", 2: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
OTHER = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", -9: "segfault", -11: "segfault"}


def collect(module: str) -> dict[str, object]:
    """The verdicts of the module's last run (mutmut's .meta files), scored."""
    statuses: dict[str, str] = {}
    for meta in (SCRATCH / module / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            statuses[name] = "not checked" if code is None else KILLED.get(code) or OTHER.get(code, f"exit {code}")
    known = equivalents()
    checked = {n: s for n, s in statuses.items() if s != "not checked"}
    judged = {n: s for n, s in checked.items() if n not in known}
    killed = sum(s in ("killed", "timeout") for s in judged.values())
    sample = SCRATCH / module / "sample.json"  # a sample's equivalents are not run (run()), still counted
    equivalent = known.keys() & (set(json.loads(sample.read_text())) if sample.exists() else checked.keys())
    return {
        "module": module, "source": MODULES[module][0], "mutants": len(statuses), "checked": len(checked),
        "unchecked": len(statuses) - len(checked) - len(equivalent - checked.keys()), "judged": len(judged),
        "equivalent": len(equivalent), "killed": killed, "score": killed / max(1, len(judged)),
        "interval": wilson(killed, len(judged)),
        "survivors": {n: judged[n] for n in sorted(judged) if judged[n] not in ("killed", "timeout")},
    }


def sample_of(module: str, work: Path, size: int, seed: int) -> tuple[list[str], float]:
    """`size` of the module's mutants, the same ones for a given seed and source.

    mutmut generates every mutant and records which tests reach which function before it looks
    at the names it is asked for; a name that matches nothing stops it right there.
    """
    cpu = mutmut(work, "run", "--max-children", "1", "no-such-mutant")[2]
    names = sorted(name for meta in (work / "mutants").rglob("*.meta") for name in json.loads(meta.read_text())["exit_code_by_key"])
    chosen = sorted(random.Random(f"{seed}:{module}").sample(names, min(size, len(names))))
    (work / "sample.json").write_text(json.dumps(chosen, indent=0) + "\n")
    return chosen, cpu


def wilson(killed: int, judged: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of the score of all the module's mutants, from a sample of them."""
    if not judged:
        return (0.0, 1.0)
    p, n = killed / judged, judged
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (round((centre - half) / (1 + z * z / n), 4), round((centre + half) / (1 + z * z / n), 4))


def run(module: str, children: int, sample: int = 0, seed: int = 0) -> dict[str, object]:
    work = prepare(module)
    start = time.perf_counter()
    chosen, cpu = sample_of(module, work, sample, seed) if sample else ([], 0.0)
    # a reviewed equivalent cannot be killed, and as a survivor it costs every test that reaches it
    # (a minute or more for the emitter's); it is left out of the score either way
    known = equivalents()
    to_judge = [name for name in chosen if name not in known]
    code, output, judging = mutmut(work, "run", "--max-children", str(children), *to_judge) if to_judge or not sample else (0, "", 0.0)
    # wall time depends on what else the machine runs; CPU time much less (a shared machine's figure)
    result = {**collect(module), "seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(cpu + judging, 1)}
    if not (result["checked"] or result["equivalent"]) or code:
        result["failed"] = output
    return result


def report(result: dict[str, object]) -> None:
    judged = result["judged"]
    unchecked = result["unchecked"]
    low, high = result["interval"]
    print(f"{result['module']:22s} {result['source']:30s} {result['killed']:4d}/{judged:<4d} killed ({result['score']:.1%}"
          + (f", 95% of all in {low:.0%}-{high:.0%}" if unchecked else "") + f"), {result['equivalent']} equivalent"
          + (f", {unchecked} not run" if unchecked else "")
          + (f", {result['seconds']:.0f} s ({result['cpu_seconds']:.0f} s of CPU)" if "seconds" in result else ""), flush=True)
    for name, status in result["survivors"].items():
        print(f"    {status:10s} {name}")


def announce(result: dict[str, object]) -> dict[str, object]:
    if "failed" in result:  # the other modules still get judged; the exit code says it
        print(f"{result['module']}: mutmut run failed:\n{result['failed']}", flush=True)
    else:
        report(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[], metavar="MODULE", help=f"any of {', '.join(MODULES)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="modules judged at once (default: one per core; 1 on a machine others share)")
    parser.add_argument("--max-children", type=int, default=1, help="mutants of one module run at once (default 1)")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="judge N mutants per module drawn with --seed (default 0: every mutant); `make mutation` uses 100")
    parser.add_argument("--seed", type=int, default=0, help="which sample (default 0)")
    parser.add_argument("--summary", action="store_true", help="only print the scores of the last runs")
    parser.add_argument("--show", metavar="MUTANT", help="print one mutant's diff (from the module's last run)")
    args = parser.parse_args(argv)
    if args.show:
        module = next(m for m, (src, _) in MODULES.items() if args.show.startswith(src[:-3].replace("/", ".") + "."))
        command, env = mutmut_command("show", args.show)
        subprocess.run(command, cwd=SCRATCH / module, env=env)
        return 0
    modules = args.modules or list(MODULES)
    if args.summary:  # scores of the runs already made (also of one interrupted half-way)
        results = [collect(m) for m in modules if (SCRATCH / m / "mutants").exists()]
        for result in results:
            report(result)
        return 0
    start = time.perf_counter()
    shutil.rmtree(CSIM_CACHE, ignore_errors=True)  # a run's binaries serve that run only (disk)
    # several modules at once: mutmut's first run (it records which tests reach which function)
    # is one process, so one module at a time leaves cores idle for minutes
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda m: announce(run(m, args.max_children, args.sample, args.seed)), modules))
    print(f"{len(results)} modules, {args.jobs} at once: {time.perf_counter() - start:.0f} s, "
          f"{sum(r['cpu_seconds'] for r in results):.0f} s of CPU")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    (SCRATCH / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    return int(any("failed" in r for r in results))


if __name__ == "__main__":
    sys.exit(main())
