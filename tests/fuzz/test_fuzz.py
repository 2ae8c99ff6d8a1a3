"""The fuzz suite in CI: Hypothesis over itensor constructors and IR text (tests/fuzz/fuzz_core.py),
run in a subprocess under a memory limit (RLIMIT_AS) with a per-example time limit; only clean
errors or correct results pass. `benchmarks/fuzz_profile.py` runs the same at 100,000 examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from fuzz_core import EXAMPLE_SECONDS, check_itensor, reference_offsets  # noqa: E402

import streamdsl as sd  # noqa: E402

MEMORY_LIMIT = 1 << 30  # bytes of address space on top of the interpreter's start-up mappings


def run_limited(examples: int, seed: int) -> dict:
    """Run fuzz_core.run in a fresh interpreter whose address space is capped; returns its stats."""
    code = f"""
import json, resource, sys
sys.path.insert(0, {str(HERE)!r})
import fuzz_core
base = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (base + {MEMORY_LIMIT}, base + {MEMORY_LIMIT}))
stats = fuzz_core.run({examples}, seed={seed})
print(json.dumps({{"examples": stats.examples, "outcomes": dict(stats.outcomes), "worst_seconds": stats.worst_seconds,
                   "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fuzz_under_memory_and_time_limits():
    stats = run_limited(examples=150, seed=0)
    assert stats["examples"] >= 300  # both suites ran
    assert stats["worst_seconds"] < EXAMPLE_SECONDS
    outcomes = stats["outcomes"]
    # the generators reach both sides of the oracle: correct results and clean errors
    assert outcomes.get("itensor: ok", 0) > 0 and outcomes.get("itensor: ITensorError", 0) > 0
    assert outcomes.get("ir: ok", 0) > 0 and outcomes.get("ir: ParseError", 0) > 0


def test_the_memory_limit_is_enforced():
    """The cap is real: a 2 GiB allocation fails inside the limited interpreter."""
    code = f"""
import resource
base = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (base + {MEMORY_LIMIT}, base + {MEMORY_LIMIT}))
try:
    bytearray(2 << 30)
except MemoryError:
    print("refused")
"""
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "refused"


@pytest.mark.parametrize(
    "args",
    [
        {"tile": (2, 3), "trips": (3, 2), "steps": (2, 3), "map": "(d0, d1) -> (d0, d1)"},
        {"tile": (1,), "trips": (5, 3), "steps": (1, 2), "map": "(d0, d1) -> ((d0 + d1) mod 4)"},
        {"tile": (2,), "trips": (4, 3), "steps": (0, 2), "map": "(d0, d1) -> (d1 floordiv 2 + d0 ceildiv 3)"},
    ],
)
def test_the_oracle_agrees_with_hand_worked_streams(args):
    it = sd.itensor(sd.f32, **args)
    check_itensor(it)
    if args["map"] == "(d0, d1) -> ((d0 + d1) mod 4)":
        assert reference_offsets(it)[:6] == [(0,), (2,), (0,), (1,), (3,), (1,)]
