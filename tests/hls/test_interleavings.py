"""Threaded csim under perturbed schedules (SD_CSIM_SEED, hls_stream.h): every seed's
interleaving gives the simulator's result; converters run a static schedule."""

from __future__ import annotations

import re

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import build_csim, emit_project, run_csim

from .cases import CASES, WARNINGS, assert_close, held_regrid, regrid

RACY = {"regrid_16x32": lambda: regrid(16, 32), "held_regrid_8x64": lambda: held_regrid(8, 64)}


@pytest.mark.parametrize("name", [*RACY, "transpose_planned", "tutorial02_converted", "diamond", "ffn_block"])
def test_every_seeded_interleaving_matches_the_simulator(name: str, tmp_path) -> None:  # noqa: ANN001
    case = (RACY.get(name) or CASES[name])()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(5))
    want = design.simulate(*xs)
    project = emit_project(design, tmp_path / name)
    build_csim(project, True, extra_flags=WARNINGS)
    for seed in range(1, 7):
        assert_close(run_csim(project, *xs, threaded=True, seed=seed), want, 1e-5, f"{name} threaded csim, schedule seed {seed}")


@pytest.mark.parametrize("name", RACY)
def test_a_converter_needs_its_ready_table_not_its_neighbours_speed(name: str, tmp_path) -> None:  # noqa: ANN001
    """The converter runs a static schedule (blocking reads and writes, no polling): its output
    cannot depend on how fast its neighbours are: as emitted, no seed and no mode changes the
    result. What it relies on is its `ready` table (a destination token leaves once every source
    token it covers is in) and the bank guard (slab s fills once slab s - 2 is drained)."""
    case = RACY[name]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(0))
    want = design.simulate(*xs)
    project = emit_project(design, tmp_path / name)
    code = (project / "kernel.cpp").read_text()
    converter = code[code.index("// converter(") :]
    converter = converter[: converter.index("\n}\n")]
    assert ".empty()" not in converter and ".full()" not in converter and "SD_POLL" not in converter
    assert re.search(r"j / \d+ <= k / \d+ \+ 1", converter), "the two-bank converter's guard"
    runs = [run_csim(project, *xs)] + [run_csim(project, *xs, threaded=True, seed=seed) for seed in (None, 7, 8)]
    for got in runs:
        np.testing.assert_array_equal(got, runs[0])
    assert_close(runs[0], want, 1e-5, name)
    # what it relies on is the ready table: a destination token let out one source token early
    # reads bank data that is not there yet, in every run
    kernel = project / "kernel.cpp"
    code, rules = re.subn(r" > \(k / (\d+)\) \* (\d+) \+ ready\[", r" >= (k / \1) * \2 + ready[", kernel.read_text())
    assert rules == 1, "the converter's ready rule was not found in the emitted code"
    kernel.write_text(code)
    build_csim(project, True)
    assert float(np.max(np.abs(run_csim(project, *xs) - want))) > 0
    assert float(np.max(np.abs(run_csim(project, *xs, threaded=True, seed=1) - want))) > 0


def test_a_schedule_seed_needs_threaded_csim(tmp_path) -> None:  # noqa: ANN001
    case = CASES["regrid_planned"]()
    project = emit_project(sd.compile(case.program), tmp_path / "p")
    with pytest.raises(ValueError, match="a schedule seed needs threaded=True"):
        run_csim(project, *case.inputs(np.random.default_rng(0)), seed=1)
