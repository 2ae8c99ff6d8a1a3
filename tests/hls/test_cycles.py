"""Cycle accounting in sequential csim (the counters of sd_support.h) against the timing model:
the emitted code builds the machine the model describes (benchmarks/hls_cycles.py prints the
ratios for the large designs)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_project, model_cycles, run_csim
from lowering.dse import set_clock
from streamdsl.dialects.dataflow import kernel_of
from streamdsl.sim.functional import simulate_with_stats

from .cases import CASES

TARGET = 1.2


@pytest.mark.parametrize(
    "name", ["tutorial01_elementwise", "ffn_block", "tutorial02_converted", "tutorial03_attention", "matvec", "layernorm"])
def test_csim_cycles_match_the_timing_model(name: str, tmp_path) -> None:  # noqa: ANN001
    case = CASES[name]()
    design = sd.compile(case.program)
    xs = case.inputs(np.random.default_rng(0))
    counted = csim_cycles(emit_project(design, tmp_path / name), *xs)
    model = model_cycles(design)
    assert set(counted["processes"]) == set(model)
    for node, clock in counted["processes"].items():
        assert 1 / TARGET <= clock["busy"] / model[node] <= TARGET, (node, clock, model[node])
        assert clock["busy"] <= clock["finish"] <= counted["makespan"]
    makespan = design.timed_simulation().makespan
    assert 1 / TARGET <= counted["makespan"] / makespan <= TARGET, (counted["makespan"], makespan)
    # every beat the functional simulator moves, csim writes
    _, stats = simulate_with_stats(design.module, *xs, depths=design.depths)
    assert counted["beats"] == {s.name: s.beats for s in stats.streams}


def test_counters_are_compiled_out_for_vitis(tmp_path) -> None:  # noqa: ANN001
    """Under __SYNTHESIS__ every counter macro is `(void)0` and the processes are plain calls."""
    project = emit_project(sd.compile(CASES["tutorial01_elementwise"]().program), tmp_path / "p")
    support = (project / "sd_support.h").read_text()
    synthesis = support[support.index("#if defined(SD_HLS_STREAM_H) && !defined(SD_CSIM_THREADED) && !defined(__SYNTHESIS__)"):]
    off = synthesis[synthesis.index("#else") : synthesis.index("#endif")]
    for macro in ("SD_II(n)", "SD_DEPTH(d)", "SD_LOOP_ENTRY()", "SD_LAG(d)"):
        assert f"#define {macro} (void)0" in off
    code = (project / "kernel.cpp").read_text()
    assert code.count("SD_II(") == code.count("#pragma HLS pipeline II=")


def _row_reduction(rows: int, cols: int, reduce: object, tokens: int = 3) -> sd.DataflowProgram:
    """A reduction of each (rows, cols) token outside a pipelined loop (its loop holds another
    loop), as tutorial 06's per-token max is: a chunk of 64 lanes a cycle."""
    X = sd.itensor.tiled(sd.f32, shape=(tokens * rows, cols), tile=(rows, cols))
    Y = sd.itensor.tiled(sd.f32, shape=(2 * tokens * rows, 1), tile=(rows, 1))

    @sd.kernel
    def row_stat(x: X, y: sd.Out[Y]):
        for t in range(tokens):
            r = reduce(x.read(), axis=1)
            for h in range(2):
                y.write(r)

    @sd.dataflow
    def stats(x: sd.Tensor[sd.f32, (tokens * rows, cols)]):
        return row_stat(x)

    return stats


@pytest.mark.parametrize(("rows", "cols", "reduce"), [
    (1, 384, sd.max),  # tutorial 06: one output, six chunks, max's latency of 2 -> 2 partials per lane
    (1, 320, sd.sum),  # an f32 sum: 4 partials per lane (the adder's latency), reassociated
    (4, 256, sd.max),  # four outputs, 4 chunks each: the tree runs inside the loop after each output
    (8, 64, sd.sum),   # one chunk per output: no partial is carried from chunk to chunk
])  # fmt: skip
def test_reduction_outside_a_pipeline_runs_at_ii_1(rows: int, cols: int, reduce: object, tmp_path) -> None:  # noqa: ANN001
    """Lane l of every chunk folds into its own partial (interleaved by the combiner's latency),
    so the chunk loop starts every cycle and a tree ends each output; folding all lanes into one
    accumulator made each chunk wait for the previous one (II = the op's depth, tutorial 06 2.68x
    the model). csim's cycles, the timing model's and the functional simulator's values agree."""
    design = sd.compile(_row_reduction(rows, cols, reduce))
    x = np.random.default_rng(1).standard_normal((3 * rows, cols)).astype(np.float32)
    project = emit_project(design, tmp_path / "p")
    code = (project / "kernel.cpp").read_text()
    task = code[code.index("void task_row_stat"):]
    assert "partials per lane" in task
    assert set(re.findall(r"#pragma HLS pipeline II=(\d+)", task[: task.index("\n}")])) == {"1"}
    counted = csim_cycles(project, x)
    model = model_cycles(design)
    node = next(n for n in model if "row_stat" in n)
    assert 1 / TARGET <= counted["processes"][node]["busy"] / model[node] <= TARGET, (counted["processes"][node], model[node])
    got, want = run_csim(project, x), design.simulate(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_reduction_that_straddles_outputs_is_charged_its_chain(tmp_path) -> None:  # noqa: ANN001
    """Rows of 96 with 64 lanes: a chunk would hold two outputs' elements, so the lanes fold into
    the output in turn and each chunk waits for the last (II = the op's depth); the model charges
    chunks x depth, where it charged one chunk a cycle (half of what csim counts)."""
    design = sd.compile(_row_reduction(2, 96, sd.sum))
    x = np.random.default_rng(2).standard_normal((6, 96)).astype(np.float32)
    project = emit_project(design, tmp_path / "p")
    task = (project / "kernel.cpp").read_text().split("void task_row_stat")[1].split("\n}")[0]
    assert "partials per lane" not in task
    assert any(int(ii) > 1 for ii in re.findall(r"#pragma HLS pipeline II=(\d+)", task))
    counted, model = csim_cycles(project, x)["processes"], model_cycles(design)
    node = next(n for n in model if "row_stat" in n)
    assert 1 / TARGET <= counted[node]["busy"] / model[node] <= TARGET, (counted[node], model[node])
    np.testing.assert_allclose(run_csim(project, x), design.simulate(x), rtol=1e-5, atol=1e-5)



def test_a_dma_of_two_word_tokens_streams_as_one_burst(tmp_path) -> None:  # noqa: ANN001
    """(1, 32) f32 tokens are two HBM words; at 250 MHz a pseudo-channel delivers 425 bits a
    cycle, 2.41 cycles a token over the DMA's one loop of words (GPT-2 medium W4A8's f16 scales).
    The model rounded each token up to 3 cycles, 1.24x what csim counts; it now carries the
    fraction over the burst (`lowering.timing.dma_cycles`), as csim's SD_HBM does."""
    tokens = 256
    X = sd.itensor.tiled(sd.f32, shape=(tokens, 32), tile=(1, 32))

    @sd.kernel
    def double(x: X, y: sd.Out[X]):
        for t in range(tokens):
            y.write(x.read() * 2.0)

    @sd.dataflow
    def scale(x: sd.Tensor[sd.f32, (tokens, 32)]):
        return double(x)

    set_clock(kernel_of(scale.module), 250.0)
    design = sd.compile(scale)
    x = np.random.default_rng(3).standard_normal((tokens, 32)).astype(np.float32)
    project = emit_project(design, tmp_path / "p")
    counted, model = csim_cycles(project, x)["processes"], model_cycles(design)
    load = model["dma_load(x)"]
    assert load == -(-tokens * 2 * 512 // 425) + 64  # the burst's channel time, then its latency
    assert 1 / TARGET <= counted["dma_load(x)"]["busy"] / load <= TARGET, (counted["dma_load(x)"], load)
    np.testing.assert_array_equal(run_csim(project, x), design.simulate(x))
