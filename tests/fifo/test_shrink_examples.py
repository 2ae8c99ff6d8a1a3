"""FIFO bits at the makespan (min-bits, the default sizing): on every tutorial program and the
built-in expert example (the ffn block) and on random DAGs, the shrunk depths reach the makespan of
unbounded FIFOs with no more bits than the LP's, and within 1.1x of depth 2 everywhere wherever
depth 2 reaches that makespan too (issue "Toward the HBM roofline", scope 5)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import streamdsl as sd
from lowering.fifo_sizing import size_fifos
from streamdsl.graph import Graph
from streamdsl.sim.timed import simulate_timed, simulate_unbounded
from toolchain.examples import ffn_block

from .fifo_dags import random_dag

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
BUILDS = ["01_elementwise", "02_matvec_reuse", "03_streaming_attention", "04_flash_decoding", "05_rope_prefill", "06_w4a8_matvec"]


def _programs() -> dict[str, object]:
    programs: dict[str, object] = {"ffn-block (tiny)": ffn_block(128, 512, 32).program}
    for name in BUILDS:
        built = runpy.run_path(str(TUTORIALS / f"{name}.py"))["build"]()
        programs |= {f"{name}/{k}": p for k, p in built.items()} if isinstance(built, dict) else {name: built}
    return programs


PROGRAMS = _programs()


def _check(graph: Graph, depths: dict[str, int]) -> tuple[int, int, bool]:
    """(min-bits bits, depth-2 bits, whether depth 2 reaches the unbounded makespan); asserts that
    `depths` reach it with no more bits than the LP."""
    makespan = simulate_unbounded(graph).makespan
    run = simulate_timed(graph, depths)
    assert run.deadlock is None and run.makespan == makespan
    assert graph.bits(depths) <= size_fifos(graph, "lp").total_bits
    two = size_fifos(graph, "default")
    at_two = simulate_timed(graph, two.depths)
    return graph.bits(depths), two.total_bits, at_two.deadlock is None and at_two.makespan == makespan


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_shrunk_fifos_of_tutorials_and_examples(name: str) -> None:
    design = sd.compile(PROGRAMS[name])  # min-bits
    bits, two, reaches = _check(design.graph, design.depths)
    if reaches:
        assert bits <= 1.1 * two


def test_shrunk_fifos_of_random_dags() -> None:
    compared = 0
    for kind in ("chain", "diamond", "nested", "random"):
        for seed in range(4):
            graph = random_dag(kind, 24, seed=seed)
            bits, two, reaches = _check(graph, size_fifos(graph).depths)
            if reaches:
                compared += 1
                assert bits <= 1.1 * two, (kind, seed)
    assert compared >= 3  # chains reach the makespan at depth 2: the 1.1x bound was exercised
