"""Decoder families the zoo does not name, tried as a new user would (a transformers config,
`decode_step`, `from_torch`): they match eager, or fail with the listed error naming what is
missing."""

from __future__ import annotations

import pytest
import torch
import transformers
from frontend_helpers import assert_matches

from frontends import UnsupportedOpError, from_torch, hf

SHAPE = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)

FAMILIES = {
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0}),  # fused qkv, split
    "olmo": ("OlmoConfig", "OlmoForCausalLM", {"pad_token_id": 0}),  # parameter-free layer norm
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),  # q/k RMS norms
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16}),  # logit soft-capping (tanh)
}
SLOW_FAMILIES = {
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {"pad_token_id": 0}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {}),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", {}),
    "phi": ("PhiConfig", "PhiForCausalLM", {}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {}),
    "bloom": ("BloomConfig", "BloomForCausalLM", {}),  # ALiBi
    "opt": ("OPTConfig", "OPTForCausalLM", {}),
}


def _build(config_cls: str, model_cls: str, extra: dict) -> torch.nn.Module:
    config = getattr(transformers, config_cls)(**SHAPE, **extra)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return getattr(transformers, model_cls)(config).eval()


PARAMS = [pytest.param(*v, id=k) for k, v in FAMILIES.items()] + [
    pytest.param(*v, id=k, marks=pytest.mark.slow) for k, v in SLOW_FAMILIES.items()
]


@pytest.mark.parametrize(("config_cls", "model_cls", "extra"), PARAMS)
def test_unnamed_family_imports_and_matches(config_cls, model_cls, extra):
    module, inputs = hf.decode_step(_build(config_cls, model_cls, extra), 5)
    assert_matches(from_torch(module, *inputs), module, inputs)


def test_unsupported_family_names_what_is_missing():
    """Falcon splits heads with advanced indexing (aten.index.Tensor), which has no lowering:
    the error lists each use with its line in modeling_falcon.py."""
    module, inputs = hf.decode_step(_build("FalconConfig", "FalconForCausalLM", {}), 5)
    with pytest.raises(UnsupportedOpError) as info:
        from_torch(module, *inputs)
    ops = info.value.ops
    assert ops and {u.op for u in ops} == {"aten.index.Tensor"}
    assert all("modeling_falcon.py:" in u.location for u in ops)
    assert len(ops) >= SHAPE["num_hidden_layers"]  # every use, in every layer
