"""The zoo's configs: the paper sizes are the StreamTensor paper's Table 7, and they import.

Importing the four paper models takes about a minute and a half (see benchmarks/import_time.py):
one `slow` test builds them one after another, so only one ~4 GB model is alive at a time."""

from __future__ import annotations

import gc

import pytest

from frontends import from_torch, hf

# (layers, hidden, FFN, heads, KV heads) of Table 7.
TABLE_7 = {
    "gpt2": (24, 1024, 4096, 16, 16),
    "qwen2": (24, 896, 4864, 14, 2),
    "llama": (22, 2048, 5632, 32, 4),
    "gemma": (26, 1152, 6912, 4, 1),
}


def _dims(cfg) -> tuple[int, ...]:
    if hasattr(cfg, "n_layer"):
        return cfg.n_layer, cfg.n_embd, cfg.n_inner, cfg.n_head, cfg.n_head
    return (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads,
            cfg.num_key_value_heads)


@pytest.mark.parametrize("family", hf.FAMILIES)
def test_paper_configs_are_table_7(family):
    _, cfg = hf.config(family, "paper")
    assert _dims(cfg) == TABLE_7[family]
    assert cfg._attn_implementation == "eager"


@pytest.mark.parametrize("family", hf.FAMILIES)
def test_tiny_and_small_shapes(family):
    tiny, small = (_dims(hf.config(family, s)[1]) for s in ("tiny", "small"))
    assert tiny[:2] == (2, 64)
    assert small[:4] == (12, 768, 3072, 12)
    assert hf.config(family, "small", num_layers=2)[1].num_hidden_layers == 2


@pytest.mark.slow
def test_paper_configs_import():
    for family in hf.FAMILIES:
        model = hf.build(family, "paper", num_layers=2)  # paper widths; more layers repeat the same ops (53 s for all)
        module, inputs = hf.decode_step(model, 16)
        prog = from_torch(module, *inputs)
        assert prog.outputs[0].shape == (1, 1, model.config.vocab_size), family
        assert sum(kind == "parameter" for kind in prog.param_kinds.values()) == len(list(model.parameters())), family
        del model, module, inputs, prog
        gc.collect()
