"""The whole-model lowering of a decoder block whose attention is tutorial 07's DSL flash decoding
kernel (`from_torch(..., replace=...)`): one FIFO-sized design, generation through it in the
functional simulator against PyTorch, and one block invocation in threaded csim."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, program_inputs

import streamdsl as sd
from frontends import hf
from frontends.host import Generator, torch_generate
from lowering.reshape_streams import Placed
from streamdsl.dialects.dataflow import DmaLoadOp, ITensorConverterOp, KernelOp
from toolchain.models import DesignRunner

TUTORIAL_07_PATH = Path(__file__).resolve().parents[2] / "tutorials" / "07_kernel_in_a_model.py"
TUTORIAL_07 = runpy.run_path(str(TUTORIAL_07_PATH))


@pytest.mark.parametrize(("trips", "steps", "rows", "splits", "split"), [((4, 1, 2), (1, 1, 4), 4, 2, 1), ((2, 3, 3), (1, 0, 2), 2, 3, 2),
                                                                   ((3, 1, 1), (1, 1, 8), 8, 1, 0)])
def test_a_port_read_through_views_of_an_hbm_tensor_streams_its_tokens(trips, steps, rows, splits, split) -> None:  # noqa: ANN001
    """`Placed`: the consumer's stream followed back through reshapes and a slice (tutorial 07's
    paging) streams the same tiles from the HBM tensor, in the same order, with the same loops."""
    kv, dh = trips[0], 8
    cache = trips[2] * rows * splits  # the tiles loop steps by rows
    root = np.arange(kv * (cache + 1) * dh, dtype=np.float32).reshape(1, kv, cache + 1, dh)  # cache rows, then one more
    pages = root[:, :, :cache].reshape(kv, cache // (rows * splits), splits, rows, dh)[:, :, split:split + 1]
    view = pages.reshape(kv, cache // splits, dh)
    want = sd.itensor(sd.f32, tile=(1, rows, dh), trips=trips, steps=steps, map=lambda h, g, j: (h, j, 0))
    placed = Placed.whole(want).reshaped((kv, cache // (rows * splits), 1, rows, dh))
    placed = placed.sliced((0, 0, split, 0, 0), (kv, cache // (rows * splits), splits, rows, dh))
    placed = placed.reshaped((1, kv, cache, dh)).sliced((0, 0, 0, 0), (1, kv, cache + 1, dh))
    box = root[tuple(slice(lo, lo + n) for lo, n in zip(placed.low, placed.it.shape))]
    got = [t.reshape(want.tile) for t in placed.it.reference_stream(box)]
    assert placed.it.trips == want.trips and placed.it.num_tokens == want.num_tokens
    np.testing.assert_array_equal(np.stack(got), np.stack(list(want.reference_stream(view))))


def _flash_block(family: str, max_context: int = 16):  # noqa: ANN202
    model = hf.lively(TUTORIAL_07["build_model"](family))
    runner = DesignRunner()
    return model, runner, Generator(model, max_context=max_context, prefill_len=1, replace=TUTORIAL_07["REPLACE"],
                                    block_runner=runner)


@pytest.mark.parametrize(("family", "prompt"), [("gpt2", (7, 99, 3)), ("llama", (250, 1, 17, 64))])
def test_the_compiled_block_with_flash_decoding_generates_like_pytorch(family: str, prompt: tuple[int, ...]) -> None:
    """The whole-model lowering compiles the decoder block with the flash decoding kernel into ONE
    FIFO-sized design: the kernel's cache ports are DMAs of the block's KV cache in the kernel's
    order, streaming only the valid pages (no converter: their length is the run-time cache
    length). Generation through that design in the functional simulator gives PyTorch's tokens."""
    model, runner, gen = _flash_block(family)
    ours, want = gen.generate(list(prompt), 6), torch_generate(model, list(prompt), 6)
    assert ours.tokens == want.tokens and len(set(ours.tokens)) > 1
    for got, ref in zip(ours.logits, want.logits, strict=True):
        assert float(np.abs(got - ref).max()) <= 1e-4 * float(np.abs(ref).max())
    assert len(runner.designs) == 1  # one decode design for every cache length and layer


@pytest.mark.parametrize("family", ["gpt2", pytest.param("llama", marks=pytest.mark.slow)])
def test_the_flash_block_streams_only_the_valid_cache(family: str) -> None:
    """One fused kernel whose cache ports are bounded DMAs of the KV cache (no converter on a
    run-time-length stream); with the sized FIFOs no deadlock at any cache length, the cycles grow
    with it, and the maximum, the worst case the FIFOs are sized for, runs without a stall."""
    _, runner, gen = _flash_block(family, max_context=64)
    design = runner.design(gen.decode)
    kernels = [op for op in design.module.walk() if isinstance(op, KernelOp)]
    tasks = {op.sym_name.data for op in design.module.walk() if op.name == "dataflow.task"}
    assert len(kernels) == 1 and {"part0", "part1", "fresh_part", "combine"} <= tasks
    bounded = [op for op in design.module.walk() if isinstance(op, DmaLoadOp) and op.result.type.itensor.bounds]
    assert len(bounded) == 4 and {op.source.name_hint for op in bounded} == {"past_key", "past_value"}
    assert not any(isinstance(op, ITensorConverterOp) and op.result.type.itensor.bounds for op in design.module.walk())
    cycles = {}
    for n in (0, 1, 32, 64):
        run = design.timed_simulation(scalars=dict.fromkeys(kernels[0].scalar_args, n))
        assert run.deadlock is None
        cycles[n] = run.makespan
    # a short cache: the rest of the block is the critical path; a long one: the pages
    assert cycles[0] <= cycles[1] < cycles[32] < cycles[64] == design.timed_simulation().makespan
    assert_no_deadlock_no_stall(design)  # at the maximum, what the FIFOs are sized for


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("family", ["gpt2", pytest.param("llama", marks=pytest.mark.slow)])
def test_the_compiled_flash_block_in_threaded_csim(family: str, tmp_path) -> None:  # noqa: ANN001
    """One invocation of the compiled block (layer 0) in threaded csim equals the functional
    simulator at three cache lengths: one emitted project serves them all."""
    from hls_backend import csim_cycles, emit_project, model_cycles, run_csim

    _, runner, gen = _flash_block(family)
    design = runner.design(gen.decode)
    project = emit_project(design, tmp_path / "block")
    for cache_len in (0, 7, 16):
        inputs = program_inputs(gen.decode, design.program, block_invocation(gen.decode, 0, cache_len, seed=cache_len))
        want = design.simulate(*inputs)
        got = run_csim(project, *inputs, threaded=True)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # at the longest cache (what the model times) a reassociate of the run-time-length streams
    # moves a beat per cycle, as the model charges (token by token, it took twice that)
    counted, model = csim_cycles(project, *inputs)["processes"], model_cycles(design)
    for node in (n for n in model if n.startswith("reassociate")):
        assert counted[node]["busy"] <= 1.2 * model[node], (node, counted[node], model[node])


def test_compile_with_replace_on_the_command_line(tmp_path, capsys) -> None:  # noqa: ANN001
    """`streamdsl compile llama --size tiny --replace tutorials/07_kernel_in_a_model.py`: the block
    with the kernel through the whole main job (lowered, sized, verified against the model's
    own PyTorch layer); the report names the replacement."""
    from toolchain.cli import main

    code = main(["compile", "llama", "--size", "tiny", "--max-context", "16", "--replace", str(TUTORIAL_07_PATH),
                 "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["verification"]["passed"] and report["verification"]["deadlock_free"]
    assert report["config"]["replace"] == TUTORIAL_07_PATH.name
    program = (tmp_path / "out" / "program.mlir").read_text()
    assert program.count("dataflow.kernel") == 1 and "fresh_part" in program
    (tmp_path / "empty.py").write_text("X = 1\n")
    for bad, message in ((tmp_path / "none.py", "no such file"), (tmp_path / "empty.py", "must define REPLACE")):
        assert main(["compile", "gpt2", "--size", "tiny", "--replace", str(bad), "--out", str(tmp_path / "bad")]) != 0
        assert message in capsys.readouterr().err
    assert main(["compile", "ffn-block", "--replace", str(TUTORIAL_07_PATH), "--out", str(tmp_path / "ffn")]) != 0
    assert "--replace apply to model families" in capsys.readouterr().err


def test_exploration_of_a_block_with_run_time_trip_counts(tmp_path) -> None:  # noqa: ANN001
    """`--dse` on a block whose kernel loops over the run-time cache length (tutorial 07's flash
    decoding pages only the valid cache rows): the exploration times the design at the scalars'
    maxima, as FIFO sizing does (it stopped at the timing model's "trip counts it can compute"
    before), and its plan builds the same design again."""
    from toolchain.cli import main

    args = ["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "16", "--replace", str(TUTORIAL_07_PATH)]
    assert main([*args, "--dse", "--out", str(tmp_path / "a")]) == 0
    first = json.loads((tmp_path / "a" / "report.json").read_text())
    assert first["verification"]["passed"] and first["plan"]["figures"]["unbounded_makespan_cycles"] > 0
    assert main([*args, "--plan", str(tmp_path / "a" / "plan.json"), "--out", str(tmp_path / "b")]) == 0
    second = json.loads((tmp_path / "b" / "report.json").read_text())
    assert second["timed_simulation"] == first["timed_simulation"]
