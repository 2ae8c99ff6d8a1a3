"""A W8A8 linear layer (int8 weights, int8 activations quantized on chip, int32 sums) in the DSL:
its emitted HLS C++, compiled with g++, is bit-exact against the functional simulator on the
integer sums and on the floats, in both C simulation modes, and the floats are bit-exact against
streamdsl.quant.linear (docs/quantization.md). (int4 and f16 ports went through the
HLS backend: tests/hls/test_dtypes.py runs them.)"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import emit_project
from hls_backend.lint import lint_project
from streamdsl import quant

from .cases import csim_modes


def w8a8_kernel(m: int, k: int, n: int, tn: int) -> sd.Kernel:
    X = sd.itensor.tiled(sd.f32, shape=(m, k), tile=(1, k))
    W = sd.itensor.tiled(sd.i8, shape=(k, n), tile=(k, tn), order=(1, 0)).repeat(m)
    WS = sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, tn)).repeat(m)
    Y = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(1, tn))
    ACC = sd.itensor.tiled(sd.i32, shape=(m, n), tile=(1, tn))

    @sd.kernel(name=f"w8a8_{m}x{k}x{n}")
    def w8a8(x: X, w: W, ws: WS, y: sd.Out[Y], acc_out: sd.Out[ACC]):
        for t in range(m):
            v = x.read()
            sx = sd.max(sd.abs(v)) / 127.0
            q = sd.quantize(v, sx, sd.i8)
            for j in range(n // tn):
                acc = q @ w.read()
                acc_out.write(acc)
                y.write(sd.dequantize(acc, ws.read()) * sx)

    return w8a8


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize(("m", "k", "n", "tn"), [(2, 256, 64, 32), (1, 96, 24, 8)])
def test_w8a8_csim_is_bit_exact(m: int, k: int, n: int, tn: int, tmp_path) -> None:  # noqa: ANN001
    kernel = w8a8_kernel(m, k, n, tn)
    rng = np.random.default_rng(k)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10, (m, 1))).astype(np.float32)
    x[0, :3] = (-1e-3, 0.0, 1e-3)
    qw = quant.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), quant.scheme("w8a8"))
    args = (x, np.ascontiguousarray(qw.values.T), qw.scales.astype(np.float32).T.copy())
    design = sd.compile(kernel.program)
    y, acc = design.simulate(*args)
    np.testing.assert_array_equal(y, quant.linear(x, qw))
    xq, _ = quant.quantize_activations(x)
    np.testing.assert_array_equal(acc, quant.int_matmul(xq, qw.values, k)[:, :, 0])
    project = emit_project(design, tmp_path / "w8a8")
    for _, (got_y, got_acc) in csim_modes(project, *args):
        assert got_acc.dtype == np.int32
        np.testing.assert_array_equal(got_acc, acc)
        np.testing.assert_array_equal(got_y, y)
    assert lint_project(project) == []
