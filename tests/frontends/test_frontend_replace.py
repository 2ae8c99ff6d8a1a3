"""`from_torch(..., replace=...)` and `kernel_op`: a DSL program in place of a part of an imported
model, checked against PyTorch (the original model) at the IR level (the numpy interpreter runs
the inlined kernel in the functional simulator) and through generation with tutorial 07's flash
decoding attention."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import streamdsl as sd
from frontends import FrontendError, from_torch, kernel_op
from frontends.host import Generator, torch_generate
from streamdsl.dialects.dataflow import KernelOp

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
R, D = 4, 32
ROW = sd.itensor.tiled(sd.f32, shape=(R, D), tile=(1, D))
N = sd.Scalar[sd.i32, R]


@sd.kernel
def leaky(x: ROW, n: N) -> ROW:
    """Rows below n: relu-ish with slope 0.25; rows from n on: zero (a run-time scalar in tile maths)."""
    for r in range(R):
        v = x.read()
        kept = sd.where(v > 0.0, v, v * 0.25)
        yield sd.where(sd.iota((1, D)) * 0.0 + r >= n, 0.0, kept)


@sd.dataflow
def leaky_rows(x: sd.Tensor[sd.f32, (R, D)], n: N):
    return leaky(x, n)


LEAKY = kernel_op(leaky_rows)


class Rows(torch.nn.Module):
    def forward(self, x, n):
        return torch.mul(x * 2.0, n) + 1.0


def test_the_replaced_function_becomes_the_dsl_kernel() -> None:
    x = torch.randn(R, D, generator=torch.Generator().manual_seed(0))
    prog = from_torch(Rows(), x, torch.tensor(3, dtype=torch.int32), replace={torch.mul: LEAKY})
    kernels = [op for op in prog.module.walk() if isinstance(op, KernelOp)]
    assert [k.sym_name.data for k in kernels] == ["leaky_rows"] and "linalg" in str(prog.module)
    for n in (0, 2, R):
        want = F.leaky_relu(x * 2.0, 0.25).numpy() + 1.0
        want[n:] = 1.0
        (got,) = prog.reference(x.numpy(), np.array(n, np.int32))
        np.testing.assert_allclose(got, want, rtol=1e-6)
        eager = LEAKY(x * 2.0, torch.tensor(n, dtype=torch.int32)).numpy() + 1.0  # the op run eagerly
        np.testing.assert_allclose(eager, want, rtol=1e-6)


TUTORIAL_07 = runpy.run_path(str(TUTORIALS / "07_kernel_in_a_model.py"))


@pytest.mark.parametrize(("family", "prompt", "tokens"), [("gpt2", (7, 99, 3), 4), ("llama", (250, 1, 17, 64), 5)])
def test_every_attention_replaced_by_flash_decoding_generates_like_pytorch(family: str, prompt: tuple[int, ...],
                                                                           tokens: int) -> None:
    """Done when: a GPT-2 and a Llama-architecture model at tiny with every attention computed by
    the flash decoding kernel of tutorial 04 generate PyTorch's tokens (and logits within 1e-5)."""
    model = TUTORIAL_07["build_model"](family)
    gen = Generator(model, max_context=16, prefill_len=1, replace=TUTORIAL_07["REPLACE"])
    module = gen.decode.program.module
    assert not any(op.name == "linalg.softmax" for op in module.walk())
    assert [op.sym_name.data for op in module.walk() if isinstance(op, KernelOp)] == ["flash_decode"]
    ours, want = gen.generate(list(prompt), tokens), torch_generate(model, list(prompt), tokens)
    assert ours.tokens == want.tokens
    for got, ref in zip(ours.logits, want.logits, strict=True):
        assert float(np.abs(got - ref).max()) <= 1e-5 * float(np.abs(ref).max())


def test_a_tensor_of_the_wrong_shape_is_named() -> None:
    class Bad(torch.nn.Module):
        def forward(self, x):
            return F.relu(x)

    with pytest.raises(FrontendError, match=r"argument 0 of the DSL program 'leaky_rows' is a tensor<4x16xf32>.*"
                                            r"takes a tensor<4x32xf32>"):
        from_torch(Bad(), torch.randn(R, 16), replace={F.relu: lambda x, inplace=False: LEAKY(x, torch.tensor(1, dtype=torch.int32))})


def test_a_scalar_that_is_not_a_rank_0_integer_is_named() -> None:
    class Bad(torch.nn.Module):
        def forward(self, x, n):
            return F.relu(x) + n

    with pytest.raises(FrontendError, match="argument 1 is a run-time scalar of the DSL program; pass a rank-0 integer"):
        from_torch(Bad(), torch.randn(R, D), torch.ones(1), replace={F.relu: lambda x, inplace=False: LEAKY(x, torch.ones(1))})


def test_replace_takes_functions() -> None:
    with pytest.raises(FrontendError, match="map torch functions to Python functions"):
        from_torch(Rows(), torch.randn(R, D), torch.tensor(1), replace={torch.mul: 3})


def test_kernel_op_needs_one_kernel() -> None:
    prog = leaky_rows
    empty = type(prog)(prog.module.clone(), prog.name, prog.input_names)
    for op in list(empty.entry.body.block.ops):
        if isinstance(op, KernelOp):
            op.detach()
    with pytest.raises(FrontendError, match="must hold one dataflow.kernel, found 0"):
        kernel_op(empty)


T64 = sd.itensor.tiled(sd.f32, shape=(4, 64), tile=(1, 64))


@sd.kernel
def gelu_rows(x: T64) -> T64:
    for r in range(4):
        v = x.read()
        yield 0.5 * v * (1.0 + sd.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))


@sd.dataflow
def dsl_gelu(x: sd.Tensor[sd.f32, (4, 64)]):
    return gelu_rows(x)


def test_the_whole_model_lowering_compiles_the_kernel_with_the_rest() -> None:
    """A static DSL kernel in place of GELU between two linears: `lower` forms kernels of the
    linalg around it and fuses all of them, the DSL task included, into one design."""
    from lowering.pipeline import lower

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up, self.down = torch.nn.Linear(64, 64), torch.nn.Linear(64, 32)

        def forward(self, x):
            return self.down(F.gelu(self.up(x), approximate="tanh"))

    model, x = Mlp().eval(), torch.randn(4, 64, generator=torch.Generator().manual_seed(3))
    gelu = kernel_op(dsl_gelu)
    imported = from_torch(model, x, replace={F.gelu: lambda a, approximate="none": gelu(a)})
    lowered = lower(imported)
    tasks = [op.sym_name.data for op in lowered.program.module.walk() if op.name == "dataflow.task"]
    assert lowered.kernels == 1 and "gelu_rows" in tasks and len(tasks) > 1
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(imported.reference(x.numpy())[0], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sd.compile(lowered.program).simulate(x.numpy()), want, rtol=1e-5, atol=1e-5)


def test_runtime_scalars_outside_a_block() -> None:
    from frontends import ModelError
    from frontends.block import runtime_scalars

    with pytest.raises(ModelError, match="only defined while a decoder block"):
        runtime_scalars()


def test_a_kernel_with_a_run_time_scalar_is_lowered_with_the_rest(tmp_path) -> None:  # noqa: ANN001
    """The kernel's scalar is a rank-0 input of the model: kernel formation makes it the design's
    scalar (the `tensor.extract` the import put in front of the kernel folds away), and one design
    serves every value in the functional simulator and in csim."""
    from lowering.pipeline import lower

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(D, D)

        def forward(self, x, n):
            return self.lin(torch.mul(self.lin(x), n))

    net, x = Net().eval(), torch.randn(R, D, generator=torch.Generator().manual_seed(4))
    imported = from_torch(net, x, torch.tensor(3, dtype=torch.int32), replace={torch.mul: LEAKY})
    lowered = lower(imported, scalar_max={"n": R})
    (kernel,) = [op for op in lowered.program.module.walk() if isinstance(op, KernelOp)]
    assert list(kernel.scalar_args) == ["n"] and "leaky" in [op.sym_name.data for op in kernel.walk() if op.name == "dataflow.task"]
    design = sd.compile(lowered.program)
    project = None
    if shutil.which("g++") is not None:
        from hls_backend import emit_project

        project = emit_project(design, tmp_path / "net")
    for n in (0, R // 2, R):
        with torch.no_grad():
            h = net.lin(x)
            h = torch.where(h > 0, h, h * 0.25)
            h[n:] = 0.0
            want = net.lin(h).numpy()
        np.testing.assert_allclose(design.simulate(x.numpy(), np.array(n, np.int32)), want, rtol=1e-5, atol=1e-5)
        if project is not None:
            from hls_backend import run_csim

            np.testing.assert_allclose(run_csim(project, x.numpy(), n, threaded=True), want, rtol=1e-5, atol=1e-5)
