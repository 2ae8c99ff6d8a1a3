"""Greedy generation through the ONE compiled decode design (and the prefill design) in the
functional simulator, against Hugging Face `model.generate`: the same tokens, and every step's
logits within 1e-4 of max |logit|."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frontends import hf
from frontends.host import Generator, torch_generate
from toolchain.models import DesignRunner

PROMPT, NEW = 8, 16
LIVELY = {"gemma": {"std": 0.05, "seed": 2}}  # Gemma 3 repeats one token at std 0.2 (embeddings scaled by sqrt(H))
FAMILIES = [("gpt2", "eager"), pytest.param(("llama", "eager"), marks=pytest.mark.slow),
            pytest.param(("qwen2", "eager"), marks=pytest.mark.slow), pytest.param(("gemma", "eager"), marks=pytest.mark.slow),
            pytest.param(("mistral", "default"), marks=pytest.mark.slow), pytest.param(("phi3", "default"), marks=pytest.mark.slow)]


def _check(ours, model, prompt: torch.Tensor, new: int) -> None:
    want = torch_generate(model, prompt[0].tolist(), new)  # model.generate, greedy
    assert ours.tokens == want.tokens
    for got, logits in zip(ours.logits, want.logits, strict=True):
        assert float(np.abs(got - logits).max()) <= 1e-4 * float(np.abs(logits).max())


@pytest.mark.parametrize("case", FAMILIES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_generation_through_one_design_matches_generate(case):
    family, attention = case
    model = hf.lively(hf.build(family, "tiny", attention=attention), **LIVELY.get(family, {}))
    runner = DesignRunner()
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(1))
    ours = Generator(model, max_context=PROMPT + NEW, prefill_len=PROMPT, block_runner=runner).generate(prompt[0].tolist(), NEW)
    _check(ours, model, prompt, NEW)
    assert len(runner.designs) == 2  # one decode design for all 15 cache lengths, one prefill design
    assert len(set(ours.tokens)) > 1  # tokens vary from step to step


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gemma"])
def test_generation_at_small_size(family):
    model = hf.lively(hf.build(family, "small", num_layers=2), **LIVELY.get(family, {}))
    runner = DesignRunner()
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(2))
    ours = Generator(model, max_context=PROMPT + 4, prefill_len=PROMPT, block_runner=runner).generate(prompt[0].tolist(), 4)
    _check(ours, model, prompt, 4)
