"""Greedy generation through compiled block designs in the functional simulator, against Hugging
Face `model.generate` (tokens, and every step's logits within 1e-4 of max |logit|)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frontends import hf
from frontends.host import Generator
from toolchain.models import DesignRunner


@pytest.mark.parametrize("family", ["gpt2", pytest.param("llama", marks=pytest.mark.slow)])
def test_generation_through_compiled_designs_matches_generate(family):
    model = hf.build(family, "tiny")
    runner = DesignRunner(model)
    prompt = torch.randint(0, model.config.vocab_size, (1, 4), generator=torch.Generator().manual_seed(1))
    ours = Generator(model, max_context=16, prefill_len=1, block_runner=runner).generate(prompt[0].tolist(), 3)
    with torch.no_grad():
        out = model.generate(prompt, max_new_tokens=3, do_sample=False, output_logits=True, return_dict_in_generate=True,
                             pad_token_id=0)
    assert ours.tokens == out.sequences[0, 4:].tolist()
    for got, want in zip(ours.logits, out.logits, strict=True):
        want = want[0].numpy()
        assert float(np.abs(got - want).max()) <= 1e-4 * float(np.abs(want).max())
    assert sorted(runner.designs) == list(range(6))  # cache lengths 0..5: one compiled design each


def test_design_runner_refuses_a_prefill_chunk():
    model = hf.build("gpt2", "tiny")
    gen = Generator(model, max_context=16, prefill_len=4, block_runner=DesignRunner(model))
    with pytest.raises(ValueError, match="prefill_len=1"):
        gen.generate([1, 2, 3, 4], 1)
