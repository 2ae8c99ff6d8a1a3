"""Grouped-query attention in one design without a whole-cache buffer: the KV heads repeated for
their query heads (the `expand` of Hugging Face's `repeat_kv`) and the cache's transpose are
streamed in the order the attention contractions read them (`order-loops`, the concatenation of
the cache in its consumer's order), so no converter holds a KV head's cache. A Qwen2 block the
issues do not name: 4 query heads per KV head, head dim 32 over tiles of 16 (two head-dim tiles,
as Gemma 3's 256 over 64), checked against PyTorch eager at cache lengths 1 and the maximum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, eager_block, program_inputs

import streamdsl as sd
from frontends.block import import_block
from lowering.converters import plan
from lowering.pipeline import lower
from streamdsl.dialects.dataflow import ITensorConverterOp, ITensorType

MAX_CONTEXT = 16
HEADS, KV_HEADS, HEAD_DIM, TILE = 8, 2, 32, 16


@pytest.fixture(scope="module", params=["eager", "sdpa"])
def gqa(request):
    """The block under Hugging Face's eager attention (`repeat_kv`: expand and reshape) and under
    `sdpa` (the same repeat before torch's attention, which the frontend lowers to its math)."""
    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=HEADS * HEAD_DIM, intermediate_size=128,
                                   num_hidden_layers=1, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS)
    cfg._attn_implementation = request.param
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg).to(torch.float32).eval()
    block = import_block(model, seq_len=1, max_context=MAX_CONTEXT)
    lowered = lower(block.program, default_tile=TILE, scalar_max=block.scalar_max)
    return block, lowered, sd.compile(lowered.program)


def test_no_converter_buffers_a_kv_head_cache(gqa):
    _, lowered, _ = gqa
    head_cache = (MAX_CONTEXT + 1) * HEAD_DIM * 4  # one KV head's keys (or values), new row included
    sizes = [plan(op.source.type.itensor, op.result.type.itensor).bytes
             for op in lowered.program.module.walk() if isinstance(op, ITensorConverterOp)]
    assert lowered.kernels == 1 and sizes
    assert max(sizes) < head_cache / 2, sorted(sizes)[-3:]


def test_no_stream_carries_the_repeated_cache(gqa):
    """The repeat folds into the contractions (fuse-elementwise): they read each KV head's cache
    once, so no stream anywhere has the repeated cache's heads x (cache + 1) x head-dim elements."""
    _, lowered, _ = gqa
    rows = MAX_CONTEXT + 1
    streams = {v.type.itensor for op in lowered.program.module.walk() for v in op.results if isinstance(v.type, ITensorType)}
    repeated = [it for it in streams if rows in it.shape and math.prod(it.shape) == HEADS * rows * HEAD_DIM]
    assert not repeated, repeated
    assert any(rows in it.shape and math.prod(it.shape) == KV_HEADS * rows * HEAD_DIM for it in streams)


@pytest.mark.parametrize("cache_len", [1, MAX_CONTEXT])
def test_gqa_design_matches_eager(gqa, cache_len):
    block, lowered, design = gqa
    inputs = block_invocation(block, 0, cache_len, seed=cache_len)
    params = {name: block.layer_params[0][name] for name in lowered.program.params}
    got = design.simulate(*program_inputs(block, lowered.program, inputs), *params.values())
    for g, w in zip(got, eager_block(block, 0, inputs), strict=True):
        assert float(np.abs(g - w).max()) <= 1e-5 * max(1.0, float(np.abs(w).max()))
    assert_no_deadlock_no_stall(design, scalars={**block.scalar_max, "cache_len": cache_len, "position": cache_len})
