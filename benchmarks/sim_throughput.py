"""Throughput of the functional simulator (streamdsl.sim.functional), in simulated tokens per second.

A token is one tile pushed through one FIFO (DMA streams included), so a chain of K kernels over
T tiles moves (K + 1) * T tokens. Run: `python benchmarks/sim_throughput.py [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdsl.sim.functional import simulate_with_stats  # noqa: E402
from tests.sim import programs  # noqa: E402


def measure(label: str, module: object, *arrays: np.ndarray, repeat: int = 3) -> float:
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        _, stats = simulate_with_stats(module, *arrays)
        wall = time.perf_counter() - start
        if best is None or wall < best[0]:
            best = (wall, stats)
    assert best is not None
    wall, stats = best
    rate = stats.total_tokens / wall
    print(
        f"{label}: {stats.total_tokens} tokens in {wall:.3f} s "
        f"(compile {stats.compile_seconds:.3f} s, run {stats.seconds - stats.compile_seconds:.3f} s) "
        f"-> {rate:,.0f} tokens/s, {stats.resumes} task resumptions"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries of each run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    chain = programs.chain(64, 16, 4096, 64)  # 64 kernels, 1024 tiles of 1x64 per stream
    x = rng.standard_normal((16, 4096)).astype(np.float32)
    matvec = programs.matvec(4096, 4096, 64)  # x re-read 64 times, W in 64x64 tiles
    v = rng.standard_normal((1, 4096)).astype(np.float32)
    w = rng.standard_normal((4096, 4096)).astype(np.float32)

    for label, module, arrays in [("64-kernel elementwise chain", chain, (x,)), ("4096x4096 matvec, 64x64 tiles", matvec, (v, w))]:
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(simulate_with_stats, module, *arrays)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
        measure(label, module, *arrays)


if __name__ == "__main__":
    main()
