"""A KV cache held in f16 (`model_block(kv_cache="f16")`, `streamdsl compile --kv-cache f16`).

Checked against independent references: the design against the block in PyTorch eager (its cache
held in f16 the same way), that reference against the float32-cache block on the same inputs
(f16 rounding apart, the same attention), and the streams against the float32-cache design: the
attention's contractions read the cache at 16 bits, with no task of their own to widen it."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from frontends.block import import_block
from frontends.errors import ModelError
from streamdsl import quant
from streamdsl.dialects.dataflow import TaskOp
from tests.lowering.lowering_helpers import assert_no_deadlock_no_stall
from toolchain.models import model_block, run_block

MAX_CONTEXT = 8


def _blocks(family: str) -> tuple:
    scheme = quant.scheme("w4a8", 16)
    return tuple(model_block(family, "tiny", MAX_CONTEXT, 16, quant=scheme, kv_cache=kv) for kv in ("f32", "f16"))


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma"])  # llama: grouped-query attention; gemma: sliding windows, one KV head
def test_an_f16_cache_design_matches_torch_and_streams_16_bit_keys_and_values(family: str) -> None:
    wide, narrow = _blocks(family)
    inputs = narrow.example.make_inputs(3)
    past = [x for x, spec in zip(inputs, narrow.lowered.program.input_names, strict=True) if spec in ("past_key", "past_value")]
    assert [x.dtype for x in past] == [np.float16, np.float16]
    design = sd.compile(narrow.example.program)
    got = design.simulate(*inputs)
    want = narrow.example.reference(*inputs)
    assert [g.dtype for g in got[1:]] == [np.float16, np.float16]  # the new rows, as the cache holds them
    for g, w in zip(got, want, strict=True):
        assert float(np.abs(g.astype(np.float64) - w).max()) <= 1e-5 * float(np.abs(w).max())
    # the same inputs through the f32-cache block: the attention differs by the new rows' f16 rounding only
    widened = [x.astype(np.float32) if x.dtype == np.float16 else x for x in inputs]
    f32 = run_block(wide.module, wide.block, wide.lowered.program.input_names, widened)
    for g, w in zip(got, f32, strict=True):
        np.testing.assert_allclose(g.astype(np.float32), w, rtol=0, atol=2e-3 * float(np.abs(w).max()))
    assert not any(np.array_equal(g.astype(np.float32), w) for g, w in zip(got[1:], f32[1:], strict=True))  # rounded as stored
    assert_no_deadlock_no_stall(design)

    wide_design = sd.compile(wide.example.program)
    for name in ("past_key", "past_value"):  # the same tiles, each of half the bits
        tiles = [[(e.token_bits, e.tensor_tokens) for e in d.graph.edges if e.src == f"dma_load({name})"] for d in (wide_design, design)]
        assert tiles[1] and tiles[1] == [(bits // 2, n) for bits, n in tiles[0]], (name, tiles)
    tasks = [len([op for op in d.kernel.body.block.ops if isinstance(op, TaskOp)]) for d in (wide_design, design)]
    assert tasks[1] <= tasks[0]  # the conversion fused into the contractions, not a task of its own
    # (one fewer on GPT-2: the keys' transpose fuses into the scores with it)


def test_a_cache_dtype_other_than_f32_or_f16_is_refused() -> None:
    import torch

    from frontends import hf
    from frontends.block import KV_DTYPES
    from toolchain.cli import build_parser

    for name in KV_DTYPES:  # the CLI's choices, written out to keep `--help` free of torch, take every one
        assert build_parser().parse_args(["compile", "--kv-cache", name]).kv_cache == name

    with pytest.raises(ModelError, match=r"KV cache in torch\.bfloat16 is not supported.*torch\.float16"):
        import_block(hf.build("gpt2", "tiny"), max_context=4, kv_dtype=torch.bfloat16)
    with pytest.raises(ModelError, match=r"unsupported KV cache dtype 'f8': choose one of f32, f16"):
        model_block("gpt2", "tiny", 4, 16, kv_cache="f8")


def test_a_plan_made_for_the_other_cache_is_refused() -> None:
    from lowering.dse import Plan, PlanError
    from streamdsl.dialects.dataflow import kernel_of

    wide, narrow = _blocks("gpt2")
    names = [{t.sym_name.data for t in kernel_of(b.lowered.program.module).body.block.ops if isinstance(t, TaskOp)}
             for b in (wide, narrow)]
    only_wide = sorted(names[0] - names[1])  # the keys' transpose, a task of its own at f32
    assert only_wide
    with pytest.raises(PlanError, match=r"does not have: .*was the plan made for this model, tile, quantization and KV cache"):
        Plan(tile=16, lanes={only_wide[0]: 2}).apply(kernel_of(narrow.lowered.program.module))


def test_the_emitted_f16_cache_design_computes_and_times_as_modeled(tmp_path) -> None:  # noqa: ANN001
    """The GPT-2 tiny W4A8 block with its cache in f16, emitted: it passes the hardware-true lint,
    g++ csim (sequential and threaded) computes what the functional simulator computes, bit for bit
    on the f16 rows it stores, and counts the modeled cycles within 1.2x, process by process."""
    from hls_backend import csim_cycles, emit_project, model_cycles
    from hls_backend.lint import lint_cpp
    from tests.hls.cases import INT4_WARNINGS, csim_modes

    block = model_block("gpt2", "tiny", 16, 16, quant=quant.scheme("w4a8", 32), kv_cache="f16")
    design = sd.compile(block.example.program)
    project = emit_project(design, tmp_path / "hls")
    assert lint_cpp((project / "kernel.cpp").read_text()) == []
    xs = block.example.make_inputs(0)
    want = design.simulate(*xs)
    for mode, got in csim_modes(project, *xs, flags=INT4_WARNINGS):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5 * float(np.abs(want[0]).max()), err_msg=mode)
        for g, w in zip(got[1:], want[1:], strict=True):
            assert np.array_equal(np.asarray(g, np.float16), w), mode
    counted, model = csim_cycles(project, *xs), model_cycles(design)
    ratios = {node: clock["busy"] / max(1, model[node]) for node, clock in counted["processes"].items()}
    assert all(1 / 1.2 <= r <= 1.2 for r in ratios.values()), ratios
    assert 1 / 1.2 <= counted["makespan"] / design.timed_simulation().makespan <= 1.2
