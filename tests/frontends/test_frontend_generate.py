"""Whole-model generation through one imported decoder-block design (frontends.block) and the host
loop (frontends.host), checked against Hugging Face `model.generate` in PyTorch eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from frontend_helpers import SMALL_TEST_LAYERS

from frontends import ModelError, hf
from frontends.block import import_block
from frontends.host import Generator, generate, run_numpy, torch_generate

PROMPT_LEN = 8
NEW_TOKENS = {"tiny": 16, "small": 4}
MAX_CONTEXT = {"tiny": 32, "small": 1024}



@pytest.fixture(scope="session")
def generators():
    """Cached Generators: generators(family, size, attention), numpy block runner."""
    cache: dict = {}

    def get(family: str, size: str = "tiny", attention: str = "eager"):
        if (family, size, attention) not in cache:
            layers = SMALL_TEST_LAYERS if size == "small" else None
            model = hf.lively(hf.build(family, size, num_layers=layers, attention=attention))
            cache[family, size, attention] = Generator(model, max_context=MAX_CONTEXT[size])
        return cache[family, size, attention]

    return get


def _prompt(model: torch.nn.Module, n: int = PROMPT_LEN, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (1, n), generator=torch.Generator().manual_seed(seed))


def assert_same_generation(gen: Generator, prompt: torch.Tensor, n_tokens: int) -> None:
    ours = gen.generate(prompt[0].tolist(), n_tokens)
    want = torch_generate(gen.model, prompt[0].tolist(), n_tokens)
    assert ours.tokens == want.tokens
    assert len(ours.logits) == len(want.logits) == n_tokens
    for step, (got, want) in enumerate(zip(ours.logits, want.logits)):
        bound = 1e-4 * float(np.abs(want).max())
        assert float(np.abs(got - want).max()) <= bound, f"step {step}: logits differ beyond {bound}"


@pytest.mark.parametrize("family", hf.FAMILIES)
@pytest.mark.parametrize("size", ["tiny", pytest.param("small", marks=pytest.mark.slow)])
def test_greedy_generation_matches_torch(generators, family, size):
    gen = generators(family, size)
    assert_same_generation(gen, _prompt(gen.model), NEW_TOKENS[size])


SLOW = pytest.mark.slow
DEFAULT_ATTENTION = [("mistral", "tiny"), ("phi3", "tiny"), ("llama", "tiny")] + [
    pytest.param(f, "tiny", marks=SLOW) for f in ("qwen3", "olmo", "falcon", "gemma2", "gpt2", "qwen2", "gemma")
] + [pytest.param(f, "small", marks=SLOW) for f in ("mistral", "phi3")]


@pytest.mark.parametrize(("family", "size"), DEFAULT_ATTENTION)
def test_greedy_generation_with_default_attention(generators, family, size):
    """Models as users build them (transformers' default attention: sdpa, eager for Gemma 2)."""
    gen = generators(family, size, "default")
    assert_same_generation(gen, _prompt(gen.model), NEW_TOKENS[size])


@pytest.mark.parametrize("prefill_len", [1, 3])
def test_prompt_through_decode_design_or_uneven_chunks(prefill_len):
    """The prompt token by token through the decode design, or in chunks of 3 (the last one
    padded): the same tokens and logits as torch."""
    gen = Generator(hf.lively(hf.build("qwen2", "tiny")), max_context=24, prefill_len=prefill_len)
    assert gen.prefill is None if prefill_len == 1 else gen.prefill.seq_len == 3
    assert_same_generation(gen, _prompt(gen.model), 6)


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_one_design_serves_every_cache_length(generators, family):
    """A decode step at cache lengths 1, half and max through the block design, with garbage in
    the cache rows beyond the cache length, equals torch's decode step over exactly that cache
    (HF's own masks, Gemma's sliding window of 4 included)."""
    gen = generators(family)
    model, rng = gen.model, np.random.default_rng(0)
    for length in (1, gen.max_context // 2, gen.max_context):
        module, inputs = hf.decode_step(model, length)
        with torch.no_grad():
            logits, *kv = [t.numpy() for t in module(*inputs)]
        caches = []
        for keys, values in zip(kv[::2], kv[1::2]):
            padded = [rng.normal(0, 30, gen.kv_shape).astype(np.float32) for _ in "kv"]
            for pad, real in zip(padded, (keys, values)):
                pad[:, :, :length] = real[:, :, :length]
            caches.append(padded)
        hidden = gen.step(gen.decode, inputs[0][0].tolist(), length, caches, write=False)
        got = gen.logits(hidden)
        np.testing.assert_allclose(got, logits[0, -1], atol=1e-4 * float(np.abs(logits).max()))


def test_block_interface(generators):
    """The contract the lowering relies on: input names, shapes and dtypes, per-layer params."""
    gen = generators("gemma")
    block, model = gen.decode, gen.model
    kv = (1, model.config.num_key_value_heads, gen.max_context, model.config.head_dim)
    specs = [(s.name, s.shape, s.dtype.name) for s in block.program.inputs]
    assert specs == [("hidden", (1, 1, 64), "f32"), ("past_key", kv, "f32"), ("past_value", kv, "f32"),
                     ("position", (), "i32"), ("cache_len", (), "i32"), ("window", (), "i32")]
    assert [s.shape for s in block.program.outputs] == [(1, 1, 64), (*kv[:2], 1, kv[3]), (*kv[:2], 1, kv[3])]
    assert [block.window(i) for i in range(2)] == [4, gen.max_context + 1]  # sliding, then global
    layer1 = block.layer_params[1]
    assert list(layer1) == list(block.program.params)
    q = model.model.layers[1].self_attn.q_proj.weight
    assert np.shares_memory(layer1["layer.self_attn.q_proj.weight"], q.detach().numpy())
    # Layer 1 is global: its RoPE frequencies are the global ones (base 1e6), under layer 0's name.
    freqs = {n: v for n, v in layer1.items() if n.startswith("rope.")}
    assert list(freqs) == ["rope.rotary.sliding_attention_inv_freq"]
    np.testing.assert_array_equal(freqs["rope.rotary.sliding_attention_inv_freq"],
                                  model.model.rotary_emb.full_attention_inv_freq.numpy())
    gpt2 = generators("gpt2").decode
    assert [s.name for s in gpt2.program.inputs] == ["hidden", "past_key", "past_value", "position", "cache_len"]


def test_generate_entry_point_and_runner_protocol():
    """`generate(family, size, prompt, n, block_runner)` calls the runner once per layer and step."""
    calls = []

    def counting(block, layer, inputs):
        calls.append((block.seq_len, layer, int(inputs[4])))
        return run_numpy(block, layer, inputs)

    out = generate("llama", "tiny", [1, 2, 3, 4, 5], 3, counting, max_context=16, prefill_len=4)
    assert len(out.tokens) == len(out.logits) == 3
    # prompt chunks of 4 (cache lengths 0 and 4), then 2 decode steps (5, 6); 2 layers each
    assert calls == [(4, 0, 0), (4, 1, 0), (4, 0, 4), (4, 1, 4), (1, 0, 5), (1, 1, 5), (1, 0, 6), (1, 1, 6)]


def test_generate_errors(generators):
    gen = generators("llama")
    with pytest.raises(ModelError, match="at least one token"):
        gen.generate([], 2)
    with pytest.raises(ModelError, match="max_context=32"):
        gen.generate([1] * 20, 14)
    with pytest.raises(ModelError, match="max_context must be a positive integer"):
        import_block(gen.model, max_context=0)
