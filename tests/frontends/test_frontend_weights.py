"""`weights=DIR` loads local safetensors (written by the test: no hub access)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import eager
from safetensors.torch import load_file, save_file

from frontends import ModelError, from_torch, hf


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
    with pytest.raises(ModelError, match="no \\*.safetensors file"):
        hf.build("llama", "tiny", weights=tmp_path)
    with pytest.raises(ModelError, match="not a directory"):
        hf.build("llama", "tiny", weights=tmp_path / "absent")


def test_unknown_family_and_size():
    with pytest.raises(ValueError, match="unknown model family 'bert'"):
        hf.build("bert")
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        hf.build("gpt2", "huge")
    with pytest.raises(ValueError, match="past_len >= 1"):
        hf.decode_step(hf.build("gpt2"), 0)


def test_integer_checkpoint_is_refused(tmp_path):
    model = hf.build("gpt2", "tiny")
    state = {k: v.to(torch.int64) if k.endswith("wte.weight") else v for k, v in model.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items() if k != "lm_head.weight"}, tmp_path / "model.safetensors")
    with pytest.raises(ModelError, match=r"non-float tensors: transformer.wte.weight \(torch.int64\)"):
        hf.build("gpt2", "tiny", weights=tmp_path)


def test_weight_shape_mismatch_names_the_tensor(tmp_path):
    hf.save_weights(hf.build("llama", "tiny", num_layers=1), tmp_path)
    state = {k: torch.zeros(2, 3) if k == "model.norm.weight" else v for k, v in load_file(tmp_path / "model.safetensors").items()}
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ModelError, match=r"model.norm.weight \[2, 3\] \(the model has \[\d+\]\)"):
        hf.build("llama", "tiny", num_layers=1, weights=tmp_path)


def test_corrupt_safetensors_file_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00\xffnot a safetensors file")
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        hf.build("gpt2", "tiny", weights=tmp_path)


@pytest.mark.parametrize("layers", [0, -1, 99])
def test_layer_count_is_validated(layers):
    with pytest.raises(ModelError, match=f"--layers {layers}: gpt2-tiny has 2 decoder layers"):
        hf.build("gpt2", "tiny", num_layers=layers)


def test_past_and_tokens_are_validated():
    model = hf.build("gpt2", "tiny", num_layers=1)
    for past in (0, -5):
        with pytest.raises(ModelError, match=f"--past {past}: decode_step needs past_len >= 1"):
            hf.decode_step(model, past)
    with pytest.raises(ModelError, match="--tokens 0: prefill needs seq_len >= 1"):
        hf.prefill(model, 0)
    with pytest.raises(ModelError, match="--past 100000000: the model has \\d+ positions"):
        hf.decode_step(model, 10**8)
