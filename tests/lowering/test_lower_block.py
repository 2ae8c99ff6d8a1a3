"""Whole decoder blocks (attention included) of Hugging Face models, imported with
`frontends.block.import_block` and lowered to one fused dataflow design at several maximum
contexts and tile sizes: the functional simulator against the layer in PyTorch eager, the stream
views the block needs, the timed simulator."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, eager_block, program_inputs

import streamdsl as sd
from frontends import hf
from frontends.block import import_block
from streamdsl.dialects.dataflow import ITensorChunkOp, ITensorConcatOp, ITensorReassociateOp
from toolchain.models import lower_block

CASES = [("gpt2", 4, 64), ("gpt2", 6, 16), ("llama", 4, 64), ("qwen2", 3, 32)]


@pytest.fixture(scope="session", params=CASES, ids=[f"{f}-context{p}-tile{t}" for f, p, t in CASES])
def block(request):
    family, max_context, tile = request.param
    imported = import_block(hf.build(family, "tiny"), seq_len=1, max_context=max_context)
    inputs = block_invocation(imported, 0, max_context - 1)
    expected = eager_block(imported, 0, inputs)
    lowered = lower_block(imported, tile)
    return lowered, sd.compile(lowered.program), program_inputs(imported, lowered.program, inputs), expected


def test_block_matches_eager(block):
    _, design, inputs, expected = block
    got = design.simulate(*inputs)
    assert len(got) == len(expected) == 3  # hidden state, the new key and value rows
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert np.max(np.abs(g - e)) <= 1e-5 * max(1.0, float(np.max(np.abs(e))))


def test_block_is_one_design_with_stream_views(block):
    lowered, design, _, _ = block
    assert lowered.kernels == 1
    ops = list(design.kernel.body.block.ops)
    assert any(isinstance(op, ITensorConcatOp) for op in ops)  # the keys: the cache's rows then the new one
    assert any(isinstance(op, ITensorReassociateOp) for op in ops)  # heads split / merged
    assert lowered.fused_intermediate_bytes < lowered.unfused_intermediate_bytes


def test_gpt2_qkv_split_is_a_stream_chunk(block):
    lowered, design, _, _ = block
    if "c_attn" in str(list(lowered.program.params)):
        assert any(isinstance(op, ITensorChunkOp) for op in design.kernel.body.block.ops)


def test_block_timed_simulation(block):
    _, design, _, _ = block
    assert_no_deadlock_no_stall(design)
