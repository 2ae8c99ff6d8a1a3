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


# -- --model-dir: a local Hugging Face checkpoint (config.json + safetensors) ---------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny Qwen3 saved as transformers saves it (config.json + model.safetensors)."""
    directory = tmp_path_factory.mktemp("qwen3")
    model = hf.build("qwen3", "tiny", attention="default", seed=3)
    model.save_pretrained(directory)
    return directory, model


def test_model_dir_equals_from_pretrained(checkpoint):
    import transformers

    directory, original = checkpoint
    ours = hf.from_dir(directory)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(directory, local_files_only=True).eval()
    assert type(ours) is type(theirs) and ours.config._attn_implementation == "sdpa"
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, theirs(ids).logits)
        assert torch.equal(ours(ids).logits, original(ids).logits)
    assert hf.from_dir(directory, num_layers=1).config.num_hidden_layers == 1


def _copy(checkpoint, tmp_path, skip=()):
    directory, _ = checkpoint
    for f in directory.iterdir():
        if f.name not in skip:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    return tmp_path


def test_model_dir_errors_name_the_file(checkpoint, tmp_path):
    with pytest.raises(ModelError, match="--model-dir .*absent: not a directory"):
        hf.from_dir(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json in it"):
        hf.from_dir(empty)
    (tmp_path / "bad").mkdir()
    bad = _copy(checkpoint, tmp_path / "bad")
    (bad / "config.json").write_text('{"model_type": "qwen3", "hidden_size": 64,')
    with pytest.raises(ModelError, match=r"config.json: not valid JSON \(Expecting property name"):
        hf.from_dir(bad)
    (bad / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2}')  # another model's config
    with pytest.raises(ModelError, match=r"shapes: lm_head.weight \[256, 64\] \(the model has \[50257, 768\]\); config.json is not"):
        hf.from_dir(bad)
    (bad / "config.json").write_text('{"hidden_size": 64}')
    with pytest.raises(ModelError, match='config.json: no "model_type" field'):
        hf.from_dir(bad)
    (bad / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(ModelError, match="model_type 'vit' is not a causal language model"):
        hf.from_dir(bad)


def test_model_dir_missing_or_corrupt_weights(checkpoint, tmp_path):
    (tmp_path / "a").mkdir()
    no_weights = _copy(checkpoint, tmp_path / "a", skip={"model.safetensors"})
    with pytest.raises(ModelError, match="--model-dir .*: no \\*.safetensors file in it$"):
        hf.from_dir(no_weights)
    (no_weights / "pytorch_model.bin").write_bytes(b"pickled")
    with pytest.raises(ModelError, match="pytorch_model.bin is a pickle, which streamdsl never loads"):
        hf.from_dir(no_weights)
    (tmp_path / "b").mkdir()
    corrupt = _copy(checkpoint, tmp_path / "b")
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(ModelError, match="model.safetensors: not a readable safetensors file"):
        hf.from_dir(corrupt)
