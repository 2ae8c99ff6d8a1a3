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
    "falcon": ("FalconConfig", "FalconForCausalLM", {}),  # heads split by advanced indexing
}
SLOW_FAMILIES = {
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {"pad_token_id": 0}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {}),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", {}),
    "phi": ("PhiConfig", "PhiForCausalLM", {}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {}),
    "bloom": ("BloomConfig", "BloomForCausalLM", {}),  # ALiBi
    "opt": ("OPTConfig", "OPTForCausalLM", {}),
    "gptj": ("GPTJConfig", "GPTJForCausalLM", {"n_embd": 64, "n_layer": 2, "n_head": 4, "rotary_dim": 8}),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", {}),
    "cohere": ("CohereConfig", "CohereForCausalLM", {}),
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
    """Mixtral routes tokens to experts with data-dependent top-k / sort / histogram ops, which
    have no lowering (a static dataflow design cannot dispatch on data): the error lists each use
    with its line in the transformers source."""
    extra = {"num_local_experts": 4, "num_experts_per_tok": 2}
    module, inputs = hf.decode_step(_build("MixtralConfig", "MixtralForCausalLM", extra), 5)
    with pytest.raises(UnsupportedOpError, match="Add a lowering for .*aten.topk.default") as info:
        from_torch(module, *inputs)
    ops = info.value.ops
    topk = [u for u in ops if u.op == "aten.topk.default"]
    assert len(topk) == SHAPE["num_hidden_layers"]  # one router per layer
    assert all("modeling_mixtral.py:" in u.location and "torch.topk" in u.code for u in topk)
    assert {"aten.sort.default", "aten.histc.default"} <= {u.op for u in ops}
