"""The prefill design's block through `model_block(seq_len=S)` (what benchmarks/roofline.py times
for its time to first token): S prompt tokens after a full cache, checked against the block in
PyTorch eager, and its new rows against S decode steps of the decode block in turn."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from streamdsl import quant
from toolchain.models import model_block, run_block

MAX_CONTEXT = 8


@pytest.mark.parametrize("family", ["llama"])  # rotary positions and grouped-query attention; GPT-2: tests/lowering/test_roofline.py
def test_a_prefill_block_matches_torch_and_the_decode_block_token_by_token(family: str) -> None:
    scheme = quant.scheme("w4a8", 16)
    prefill = model_block(family, "tiny", MAX_CONTEXT, 16, quant=scheme, seq_len=3)
    assert prefill.example.config["seq_len"] == 3
    names = prefill.lowered.program.input_names
    inputs = prefill.example.make_inputs(5)
    given = dict(zip(names, inputs, strict=True))
    assert given["hidden"].shape[1] == 3
    got = sd.compile(prefill.example.program).simulate(*inputs)
    want = prefill.example.reference(*inputs)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert float(np.abs(g - w).max()) <= 1e-5 * float(np.abs(w).max())

    # the same prompt a token at a time through the decode block of a cache MAX_CONTEXT + 3 rows
    # long: the prefill's cache, the rows the steps before made, then rows masked out
    decode = model_block(family, "tiny", MAX_CONTEXT + 3, 16, quant=scheme)
    pad = np.zeros_like(given["past_key"][:, :, :3])
    keys, values = np.concatenate([given["past_key"], pad], 2), np.concatenate([given["past_value"], pad], 2)
    for t in range(3):
        step = decode.block.inputs(0, given["hidden"][:, t:t + 1], keys, values, position=MAX_CONTEXT + t,
                                   cache_len=MAX_CONTEXT + t)
        hidden, key, value = run_block(decode.module, decode.block, [s.name for s in decode.block.program.inputs], step)
        for mine, theirs in ((hidden[:, 0], want[0][:, t]), (key[:, :, 0], want[1][:, :, t]), (value[:, :, 0], want[2][:, :, t])):
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * float(np.abs(theirs).max()))
        keys[:, :, MAX_CONTEXT + t], values[:, :, MAX_CONTEXT + t] = key[:, :, 0], value[:, :, 0]
