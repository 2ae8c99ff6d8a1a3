"""Helpers of the frontend tests: compare the imported IR run on numpy with PyTorch eager."""

from __future__ import annotations

import numpy as np
import torch

# `small` keeps GPT-2-124M's per-layer shapes (hidden 768, 12 heads, FFN 3072, vocab 50257) with
# 2 layers instead of 12, so that the suite stays fast; the layers are identical.
SMALL_TEST_LAYERS = 2


def eager(module: torch.nn.Module, inputs) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.detach().numpy() for t in module(*inputs)]


def assert_matches(prog, module, inputs, rel: float = 1e-4) -> list[float]:
    """Every output of the imported program on numpy within `rel` * max|logits| of eager."""
    expected = eager(module, inputs)
    got = prog.reference(*[t.numpy() for t in inputs])
    assert len(got) == len(expected)
    bound = rel * float(np.abs(expected[0]).max())
    errors = []
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"output {i}: shape {g.shape} != {e.shape}"
        errors.append(float(np.abs(g - e).max()))
        assert errors[-1] <= bound, f"output {i}: max abs error {errors[-1]} > {bound}"
    return errors
