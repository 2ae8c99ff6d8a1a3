"""Error paths: unsupported ops are listed, each with its source line; dynamic shapes need a
maximum."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from frontends import DataDependentControlFlowError, DynamicShapeError, ModelError, UnsupportedOpError, from_torch


class SpectralSort(nn.Module):
    def forward(self, x):
        spectrum = torch.fft.rfft(x).abs()  # MARK: fft
        ordered, _ = torch.sort(x, dim=-1)  # MARK: sort
        return spectrum.sum(-1) + ordered[..., 0]


def _line(marker: str) -> int:
    lines, start = inspect.getsourcelines(SpectralSort)
    return start + next(i for i, text in enumerate(lines) if f"MARK: {marker}" in text)


def test_unsupported_ops_are_all_listed_with_source_lines():
    with pytest.raises(UnsupportedOpError) as info:
        from_torch(SpectralSort(), torch.randn(2, 8))
    err = info.value
    ops = {u.op for u in err.ops}
    assert "aten.sort.default" in ops
    assert any("fft" in op for op in ops)
    message = str(err)
    assert f"{__file__}:{_line('fft')}" in message
    assert f"{__file__}:{_line('sort')}" in message
    assert "torch.sort(x, dim=-1)" in message  # the offending source line is quoted
    assert "frontends/ops" in message  # and what to do about it
    # The complex abs after the FFT is reported too: complex dtypes have no element type.
    assert "aten.abs.default on torch.complex64" in ops


def test_op_outside_the_table_even_when_the_rest_is_fine():
    class Cumulative(nn.Module):
        def forward(self, x):
            return torch.cumsum(x @ x.T, dim=0)

    with pytest.raises(UnsupportedOpError, match=r"aten\.cumsum\.default .*test_frontend_errors\.py:\d+"):
        from_torch(Cumulative(), torch.randn(3, 3))


class Scale(nn.Module):
    def forward(self, x):
        return torch.softmax(x * 2.0, dim=-1)


def test_dynamic_shape_without_maximum_is_refused():
    dim = torch.export.Dim("tokens")
    with pytest.raises(DynamicShapeError, match=r"without a maximum hint: input 'x' dim 0"):
        from_torch(Scale(), torch.randn(4, 8), dynamic_shapes={"x": {0: dim}})


def test_dynamic_shape_with_maximum_is_specialised_to_it():
    dim = torch.export.Dim("tokens", max=16)
    prog = from_torch(Scale(), torch.randn(4, 8), dynamic_shapes={"x": {0: dim}})
    assert prog.inputs[0].shape == (16, 8)
    x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    (got,) = prog.reference(x)
    np.testing.assert_allclose(got, torch.softmax(torch.from_numpy(x) * 2.0, -1).numpy(), atol=1e-6)


def test_reference_checks_its_arguments():
    prog = from_torch(Scale(), torch.randn(4, 8))
    with pytest.raises(TypeError, match="takes 1 runtime inputs"):
        prog.reference()
    with pytest.raises(ValueError, match=r"expects shape \(4, 8\)"):
        prog.reference(np.zeros((4, 9), np.float32))


def test_non_tensor_output_is_refused():
    class Shape(nn.Module):
        def forward(self, x):
            return x + 1, x.shape[0]

    with pytest.raises(Exception, match="not a tensor"):
        from_torch(Shape(), torch.randn(2))


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # MARK: branch
            return x * 2
        return x - 1


def test_data_dependent_control_flow_names_the_model_line():
    lines, start = inspect.getsourcelines(Branchy)
    line = start + next(i for i, text in enumerate(lines) if "MARK: branch" in text)
    with pytest.raises(DataDependentControlFlowError, match=rf"test_frontend_errors.py:{line} in forward: if x.sum\(\) > 0"):
        from_torch(Branchy(), torch.ones(3))


def test_from_torch_needs_example_inputs():
    with pytest.raises(ModelError, match=r"from_torch\(Branchy\): give example inputs"):
        from_torch(Branchy())
    with pytest.raises(ModelError, match=r"example input\(s\) \[1\] are not torch tensors"):
        from_torch(Branchy(), torch.ones(3), [1, 2])
