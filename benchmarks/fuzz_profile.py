"""Deep profile of the fuzz suite (tests/fuzz): Hypothesis over itensor constructors and IR text,
valid and mutated, under a 1 GiB address-space limit and a per-example time limit.

    python benchmarks/fuzz_profile.py [--examples 100000] [--chunk 10000] [--random]

`--examples` counts both suites together (half each), run in chunks with seeds 1, 2, ... (so
each chunk explores afresh and a run is repeatable). After every chunk, prints the examples run
so far, the outcomes by error class, the peak memory (max RSS) and the worst time of one example. Any error that is not
a clean one (StreamdslError, xDSL's ParseError / VerifyException) or any wrong result stops the
run with Hypothesis' shrunk example, and the script exits 1.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fuzz"))

import fuzz_core  # noqa: E402

MEMORY_LIMIT = 1 << 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="examples in all (default 100000)")
    parser.add_argument("--chunk", type=int, default=10_000, help="examples per seed (default 10000)")
    parser.add_argument("--random", action="store_true", help="random seeds instead of 1, 2, ...")
    args = parser.parse_args()
    base = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (base + MEMORY_LIMIT, base + MEMORY_LIMIT))
    start = time.perf_counter()
    stats = fuzz_core.Stats()
    for chunk, done in enumerate(range(0, args.examples, args.chunk), start=1):
        fuzz_core.run(min(args.chunk, args.examples - done) // 2, seed=None if args.random else chunk, stats=stats)
        report(stats, time.perf_counter() - start)
    return 0


def report(stats: fuzz_core.Stats, seconds: float) -> None:
    print(f"examples run: {stats.examples} in {seconds:.0f} s ({seconds / max(stats.examples, 1) * 1e3:.1f} ms each)")
    print("outcomes by class:")
    for outcome, count in sorted(stats.outcomes.items()):
        print(f"  {outcome:32s} {count:7d}  ({count / stats.examples:.1%})")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(address space capped at start-up + {MEMORY_LIMIT >> 20} MiB)")
    print(f"worst time per example: {stats.worst_seconds:.3f} s (limit {fuzz_core.EXAMPLE_SECONDS:.0f} s), on:")
    print(f"  {stats.worst_example[:300]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
