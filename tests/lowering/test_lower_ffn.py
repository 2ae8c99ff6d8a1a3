"""Imported feed-forward blocks lowered to dataflow designs, run in the simulators against eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lowering_helpers import assert_no_deadlock_no_stall

import streamdsl as sd
from frontends import from_torch, hf
from lowering.pipeline import lower
from streamdsl.dialects.dataflow import ITensorConverterOp, KernelOp, TaskOp


class FFN(torch.nn.Module):
    """LayerNorm, linear, GELU, linear, residual: GPT-2's MLP half of a block."""

    def __init__(self, hidden: int, ffn: int):
        super().__init__()
        self.ln = torch.nn.LayerNorm(hidden)
        self.fc = torch.nn.Linear(hidden, ffn)
        self.proj = torch.nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(torch.nn.functional.gelu(self.fc(self.ln(x)), approximate="tanh"))


class GPT2MLPHalf(torch.nn.Module):
    """The second half of a Hugging Face GPT-2 block: `h + mlp(ln_2(h))`, with HF's own modules."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.ln_2, self.mlp = block.ln_2, block.mlp

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.ln_2(h))


def _design(module: torch.nn.Module, x: torch.Tensor, **options):
    imported = from_torch(module, x)
    lowered = lower(imported, **options)
    return lowered, sd.compile(lowered.program)


@pytest.fixture(scope="session")
def gpt2_mlp():
    torch.manual_seed(0)
    model = hf.build("gpt2", "tiny")
    module = GPT2MLPHalf(model.transformer.h[0]).eval()
    x = torch.randn(1, 1, model.config.n_embd)
    lowered, design = _design(module, x)
    return module, x, lowered, design


def _check_against_eager(module, x, design):
    expected = module(x).detach().numpy()
    got = np.asarray(design.simulate(x.numpy()))
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))


def test_gpt2_tiny_mlp_matches_eager(gpt2_mlp):
    module, x, _, design = gpt2_mlp
    _check_against_eager(module, x, design)


def test_gpt2_tiny_mlp_is_one_fused_kernel_of_many_tasks(gpt2_mlp):
    _, _, lowered, design = gpt2_mlp
    assert lowered.kernels == 1
    tasks = [op for op in design.kernel.body.block.ops if isinstance(op, TaskOp)]
    assert len(tasks) >= 5  # two reductions, normalisation, two matvecs (+ bias, gelu, residual maps)
    # a matvec re-reads its input per output tile: a converter (planned) on that edge
    converters = [op for op in design.module.walk() if isinstance(op, ITensorConverterOp)]
    assert converters and all(op.buffer_shape is not None for op in converters)
    assert 0 < lowered.fused_intermediate_bytes < lowered.unfused_intermediate_bytes


def test_gpt2_tiny_mlp_timed_simulation_has_no_deadlock_and_no_stall(gpt2_mlp):
    _, _, _, design = gpt2_mlp
    assert_no_deadlock_no_stall(design)
    report = design.report()["fifo_sizing"]
    assert report["total_bits"] <= report["naive_bits"]


@pytest.mark.parametrize(("hidden", "ffn", "tile"), [(48, 96, 16), (64, 128, 32)])
def test_ffn_shapes_and_tiles(hidden, ffn, tile):
    torch.manual_seed(hidden)
    module = FFN(hidden, ffn).eval()
    x = torch.randn(1, 1, hidden)
    lowered, design = _design(module, x, default_tile=tile)
    _check_against_eager(module, x, design)
    assert design.timed_simulation().deadlock is None


def test_budget_zero_leaves_converter_edges_unfused():
    torch.manual_seed(1)
    module = FFN(32, 64).eval()
    imported = from_torch(module, torch.randn(1, 1, 32))
    fused, unfused = lower(imported, default_tile=16), lower(imported, default_tile=16, budget=0)
    assert fused.kernels == 1
    assert unfused.kernels > 1
    assert all(cost <= 0 for cost in unfused.fusion.costs)
    kernels = [op for op in unfused.program.module.walk() if isinstance(op, KernelOp)]
    assert not any(isinstance(op, ITensorConverterOp) for k in kernels for op in k.walk())


def test_tiling_keeps_the_function(gpt2_mlp):
    """The tiled function (before kernel formation) computes what the imported one does."""
    from xdsl.context import Context

    from frontends.program import ImportedProgram
    from lowering.transforms.fuse_elementwise import FuseElementwisePass
    from lowering.transforms.tile_linalg import TileLinalgPass

    module, x, _, _ = gpt2_mlp
    imported = from_torch(module, x)
    tiled = imported.module.clone()
    FuseElementwisePass().apply(Context(), tiled)
    TileLinalgPass(default_tile=16).apply(Context(), tiled)
    again = ImportedProgram(tiled, imported.inputs, imported.params, imported.param_kinds, imported.outputs)
    np.testing.assert_allclose(again.reference(x.numpy())[0], imported.reference(x.numpy())[0], rtol=1e-5, atol=1e-6)
