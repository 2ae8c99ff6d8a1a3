"""The simulator's per-op tests (tests/sim/test_ops.py: linalg named and generic ops, arith, math,
tensor, scf on single-tile programs) rerun with every simulated program also emitted as HLS C++
and run in sequential csim: the two must agree."""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import pytest
from sim import test_ops as ops

from hls_backend import emit_project, run_csim

from .cases import assert_close

# not translated on purpose: reading an unwritten tensor.empty is
# undefined in C++ (the simulator fills it with NaN to expose such reads)
SKIP = {"test_unwritten_tensor_empty_reads_as_nan"}
CASES = sorted(
    name for name, fn in vars(ops).items()
    if name.startswith("test_") and name not in SKIP and not hasattr(fn, "hypothesis")
)  # fmt: skip
_COUNT = itertools.count()


def _arguments(fn: object) -> list[dict[str, object]]:
    """One keyword set per pytest parametrization of `fn` (a single empty one if none)."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    if not marks:
        return [{}]
    names, values = marks[0].args
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    return [dict(zip(names, v if len(names) > 1 else (v,))) for v in values]


@pytest.mark.parametrize("name", CASES)
def test_sim_op_case_in_csim(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    simulate = ops.simulate
    checked = []

    def simulate_and_csim(module, *arrays):  # noqa: ANN001, ANN202
        want = simulate(module, *arrays)
        project = emit_project(module, tmp_path / f"p{next(_COUNT)}")
        assert_close(run_csim(project, *arrays), want, 1e-5, f"{name}: csim vs simulator")
        checked.append(project)
        return want

    monkeypatch.setattr(ops, "simulate", simulate_and_csim)
    fn = getattr(ops, name)
    assert not inspect.signature(fn).parameters or _arguments(fn) != [{}]
    for kwargs in _arguments(fn):
        fn(**kwargs)
    assert checked, f"{name} simulated nothing"
