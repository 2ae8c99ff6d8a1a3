"""`weights=DIR` loads local safetensors (written by the test: no hub access)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import eager

from frontends import from_torch, hf


@pytest.mark.parametrize("family", ["llama", "gpt2"])  # gpt2 ties lm_head to the embedding
def test_safetensors_round_trip(tmp_path, family):
    original = hf.build(family, "tiny", seed=0)
    hf.save_weights(original, tmp_path)
    loaded = hf.build(family, "tiny", seed=1, weights=tmp_path)
    fresh = hf.build(family, "tiny", seed=1)
    state, loaded_state = original.state_dict(), loaded.state_dict()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert not torch.equal(fresh.lm_head.weight, loaded.lm_head.weight)

    module, inputs = hf.decode_step(loaded, 3)
    want = eager(hf.decode_step(original, 3)[0], inputs)
    got = from_torch(module, *inputs).reference(*[t.numpy() for t in inputs])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_weights_of_another_model_are_refused(tmp_path):
    hf.save_weights(hf.build("gpt2", "tiny"), tmp_path)
    with pytest.raises(ValueError, match=r"do not fit the model: missing \['model.embed_tokens.weight'"):
        hf.build("llama", "tiny", weights=tmp_path)


def test_missing_weights_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors file"):
        hf.build("llama", "tiny", weights=tmp_path)


def test_unknown_family_and_size():
    with pytest.raises(ValueError, match="unknown model family 'bert'"):
        hf.build("bert")
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        hf.build("gpt2", "huge")
    with pytest.raises(ValueError, match="past_len >= 1"):
        hf.decode_step(hf.build("gpt2"), 0)
