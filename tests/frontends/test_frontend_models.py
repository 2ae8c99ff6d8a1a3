"""The four zoo families at tiny and small size, decode step and prefill: the imported program run
on numpy equals PyTorch eager (logits and new KV within 1e-4 of max |logit|)."""

from __future__ import annotations

import pytest
from frontend_helpers import assert_matches

from frontends import from_torch, hf

CASES = [(f, s, step) for f in hf.FAMILIES for s in ("tiny", "small") for step in ("decode", "prefill")]


def _step(model, step: str, **kw):
    return hf.decode_step(model, 6, **kw) if step == "decode" else hf.prefill(model, 5, **kw)


@pytest.mark.parametrize(("family", "size", "step"), CASES, ids=["-".join(c) for c in CASES])
def test_import_matches_eager(zoo, family, size, step):
    model = zoo(family, size)
    module, inputs = _step(model, step)
    prog = from_torch(module, *inputs)
    assert_matches(prog, module, inputs)
    # Outputs: logits then (key, value) per layer, past and new tokens concatenated.
    n_layers = model.config.num_hidden_layers
    assert len(prog.outputs) == 1 + 2 * n_layers
    seq = 1 if step == "decode" else 5
    assert prog.outputs[0].shape == (1, seq, model.config.vocab_size)
    assert prog.outputs[1].shape[2] == (7 if step == "decode" else 5)


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_runtime_positions(zoo, family):
    """With position ids as an input the RoPE tables are computed in the program, not folded."""
    module, inputs = hf.decode_step(zoo(family), 6, position_input=True)
    prog = from_torch(module, *inputs)
    assert [s.name for s in prog.inputs][:3] == ["input_ids", "position_ids", "past_key_0"]
    assert "math.cos" in str(prog.module)
    assert_matches(prog, module, inputs)


def test_sliding_window_masks_old_tokens(zoo):
    """Gemma's tiny window (4) is shorter than the KV length (7): the sliding layer must mask."""
    model = zoo("gemma")
    assert model.config.layer_types == ["sliding_attention", "full_attention"]
    module, inputs = hf.decode_step(model, 6)
    prog = from_torch(module, *inputs)
    masks = [v for k, v in prog.params.items() if k.startswith("folded.")]
    assert any((m < -1e30).any() and (m == 0).any() for m in masks)  # HF masks with finfo.min
    assert_matches(prog, module, inputs)


@pytest.mark.slow
def test_small_at_full_depth():
    """The 12-layer GPT-2-124M shape (the other tests use 2 of its identical layers)."""
    model = hf.build("gpt2", "small")
    assert model.config.num_hidden_layers == 12
    module, inputs = hf.decode_step(model, 4)
    assert_matches(from_torch(module, *inputs), module, inputs)
