"""Decoder families built as a user builds them (transformers' defaults, so `sdpa` attention where
the family supports it): the zoo's further families, the paper's four, and families the zoo does
not name (a transformers config, `decode_step`, `from_torch`). They match eager, or fail with the
listed error naming what is missing."""

from __future__ import annotations

import pytest
import torch
import transformers
from frontend_helpers import assert_matches

from frontends import UnsupportedOpError, from_torch, hf

SHAPE = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)

# Not in the zoo: built from their configs with transformers' defaults (default attention).
SLOW_FAMILIES = {
    "olmo2": ("Olmo2Config", {"pad_token_id": 0}),
    "granite": ("GraniteConfig", {}),
    "stablelm": ("StableLmConfig", {}),
    "phi": ("PhiConfig", {}),
    "gpt_neox": ("GPTNeoXConfig", {}),
    "bloom": ("BloomConfig", {}),  # ALiBi
    "opt": ("OPTConfig", {}),
    "gptj": ("GPTJConfig", {"n_embd": 64, "n_layer": 2, "n_head": 4, "rotary_dim": 8}),
    "starcoder2": ("Starcoder2Config", {}),
    "cohere": ("CohereConfig", {}),
}


def _build(config_cls: str, extra: dict) -> torch.nn.Module:
    """As a user builds a model: AutoModelForCausalLM.from_config, nothing switched."""
    config = getattr(transformers, config_cls)(**SHAPE, **extra)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("family", hf.MORE_FAMILIES)
def test_zoo_family_with_default_attention_imports_and_matches(family):
    model = hf.build(family, "tiny", attention="default")
    module, inputs = hf.decode_step(model, 5)
    assert_matches(from_torch(module, *inputs), module, inputs)


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) for f in hf.FAMILIES])
def test_paper_family_with_default_attention_imports_and_matches(family):
    model = hf.build(family, "tiny", attention="default")
    assert model.config._attn_implementation == "sdpa"
    for module, inputs in (hf.decode_step(model, 5), hf.prefill(model, 6)):
        assert_matches(from_torch(module, *inputs), module, inputs)


@pytest.mark.slow
@pytest.mark.parametrize(("config_cls", "extra"), list(SLOW_FAMILIES.values()), ids=list(SLOW_FAMILIES))
def test_unnamed_family_imports_and_matches(config_cls, extra):
    module, inputs = hf.decode_step(_build(config_cls, extra), 5)
    assert_matches(from_torch(module, *inputs), module, inputs)


def test_unsupported_family_names_what_is_missing():
    """Mixtral routes tokens to experts with data-dependent top-k / sort / histogram ops, which
    have no lowering (a static dataflow design cannot dispatch on data): the error lists each use
    with its line in the transformers source."""
    extra = {"num_local_experts": 4, "num_experts_per_tok": 2}
    module, inputs = hf.decode_step(_build("MixtralConfig", extra), 5)
    with pytest.raises(UnsupportedOpError, match="Add a lowering for .*aten.topk.default") as info:
        from_torch(module, *inputs)
    ops = info.value.ops
    topk = [u for u in ops if u.op == "aten.topk.default"]
    assert len(topk) == SHAPE["num_hidden_layers"]  # one router per layer
    assert all("modeling_mixtral.py:" in u.location and "torch.topk" in u.code for u in topk)
    assert {"aten.sort.default", "aten.histc.default"} <= {u.op for u in ops}
