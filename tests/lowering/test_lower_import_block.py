"""The decoder block of `frontends.block.import_block` (run-time `position`, `cache_len` and
`window`, a KV cache at the maximum context, an i1/i64 mask from an iota) lowered to ONE design:
the functional simulator against the layer in PyTorch eager at cache lengths 1, M/2 and M (rows
beyond the cache length hold garbage), every layer's weights bound by name, and the timed
simulator without deadlock or stall at those lengths."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, eager_block, program_inputs

import streamdsl as sd
from frontends import hf
from frontends.block import import_block
from streamdsl.dialects.dataflow import KernelOp
from toolchain.models import lower_block

MAX_CONTEXT = 16
CASES = [("gpt2", "eager", 1), ("llama", "eager", 1), ("gpt2", "eager", 4),
         pytest.param(("qwen2", "eager", 1), marks=pytest.mark.slow),
         pytest.param(("gemma", "eager", 1), marks=pytest.mark.slow),
         pytest.param(("mistral", "default", 1), marks=pytest.mark.slow),
         pytest.param(("phi3", "default", 1), marks=pytest.mark.slow)]


def _id(case) -> str:
    family, attention, seq_len = case
    return f"{family}-{attention}-{'decode' if seq_len == 1 else f'prefill{seq_len}'}"


@pytest.fixture(scope="module", params=CASES, ids=lambda c: _id(c))
def compiled(request):
    family, attention, seq_len = request.param
    model = hf.build(family, "tiny", attention=attention)
    block = import_block(model, seq_len=seq_len, max_context=MAX_CONTEXT)
    lowered = lower_block(block)
    return block, lowered, sd.compile(lowered.program)


def test_one_design_with_run_time_scalars(compiled):
    block, lowered, design = compiled
    assert lowered.kernels == 1
    (kernel,) = [op for op in design.module.walk() if isinstance(op, KernelOp)]
    scalars = {name: most for name, (_, most) in kernel.scalar_args.items()}
    assert "cache_len" in scalars and scalars["cache_len"] == MAX_CONTEXT
    assert set(scalars) <= set(block.scalar_max)
    assert set(lowered.program.input_names) <= {s.name for s in block.program.inputs}


@pytest.mark.parametrize("cache_len", [1, MAX_CONTEXT // 2, MAX_CONTEXT])
def test_design_matches_the_block_at_every_cache_length(compiled, cache_len):
    block, lowered, design = compiled
    for layer in range(block.num_layers):
        inputs = block_invocation(block, layer, cache_len, seed=cache_len + 10 * layer)
        program = lowered.program
        params = {name: block.layer_params[layer][name] for name in program.params}
        got = design.simulate(*program_inputs(block, program, inputs), *params.values())
        want = eager_block(block, layer, inputs)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            assert float(np.abs(g - w).max()) <= 1e-5 * max(1.0, float(np.abs(w).max()))


@pytest.mark.parametrize("cache_len", [1, MAX_CONTEXT // 2, MAX_CONTEXT])
def test_timed_simulation_at_every_cache_length(compiled, cache_len):
    block, _, design = compiled
    assert_no_deadlock_no_stall(design, scalars={**block.scalar_max, "cache_len": cache_len, "position": cache_len})
