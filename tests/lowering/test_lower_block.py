"""Whole decoder blocks (attention included) of Hugging Face models, lowered from `from_torch` to
one fused dataflow design: the functional simulator against eager, the timed simulator."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, layer_step

import streamdsl as sd
from frontends import from_torch
from lowering.pipeline import lower
from streamdsl.dialects.dataflow import ITensorChunkOp, ITensorConcatOp, ITensorReassociateOp

CASES = [("gpt2", 4, 64), ("gpt2", 6, 16), ("llama", 4, 64), ("qwen2", 3, 32)]


@pytest.fixture(scope="session", params=CASES, ids=[f"{f}-past{p}-tile{t}" for f, p, t in CASES])
def block(request):
    family, past_len, tile = request.param
    module, inputs = layer_step(family, past_len)
    expected = [r.detach().numpy() for r in module(*inputs)]
    lowered = lower(from_torch(module, *inputs), default_tile=tile)
    return lowered, sd.compile(lowered.program), [t.numpy() for t in inputs], expected


def test_block_matches_eager(block):
    _, design, inputs, expected = block
    got = design.simulate(*inputs)
    assert len(got) == len(expected) == 3  # hidden state, keys, values (past and new)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert np.max(np.abs(g - e)) <= 1e-5 * max(1.0, float(np.max(np.abs(e))))


def test_block_is_one_design_with_stream_views(block):
    lowered, design, _, _ = block
    assert lowered.kernels == 1
    ops = list(design.kernel.body.block.ops)
    assert any(isinstance(op, ITensorConcatOp) for op in ops)  # the KV cache: past rows then the new one
    assert any(isinstance(op, ITensorReassociateOp) for op in ops)  # heads split / merged
    assert lowered.fused_intermediate_bytes < lowered.unfused_intermediate_bytes


def test_gpt2_qkv_split_is_a_stream_chunk(block):
    lowered, design, _, _ = block
    if "c_attn" in str(list(lowered.program.params)):
        assert any(isinstance(op, ITensorChunkOp) for op in design.kernel.body.block.ops)


def test_block_timed_simulation(block):
    _, design, _, _ = block
    assert_no_deadlock_no_stall(design)
