"""An imported quantized linear layer (`frontends.quant.QuantLinear`, int4 and int8 weights with
f16 scales) lowered and emitted as HLS C++: g++ C simulation, sequential and threaded, is
bit-exact against `streamdsl.quant` on the int32 group sums and the per-token scales, and
within 1e-5 relative on the float outputs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from frontends.quant import QuantLinear
from hls_backend import emit_project
from streamdsl import quant
from tests.hls.cases import INT4_WARNINGS, csim_modes

from .test_quant_model import SCHEMES, IntegerPart, extreme_weight, lowered_design


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize(("scheme", "m", "k", "n"), [("w4a8", 2, 128, 64), pytest.param("w8a8", 1, 64, 32, marks=pytest.mark.slow)])
def test_quantized_linear_csim(scheme: str, m: int, k: int, n: int, tmp_path) -> None:  # noqa: ANN001
    sch = SCHEMES[scheme]
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10, (m, 1))).astype(np.float32)
    qw = extreme_weight(n, k, sch, rng)
    layer = QuantLinear(qw, None)
    xq, want_s = quant.quantize_activations(x)
    want_acc = quant.int_matmul(xq, qw.values, qw.group)
    want_y = quant.linear(x, qw)
    for module, name in ((IntegerPart(layer), "ints"), (layer, "floats")):
        _, design = lowered_design(module, x)
        project = emit_project(design, tmp_path / name)
        for _, got in csim_modes(project, x, flags=INT4_WARNINGS):
            if name == "ints":
                acc, s = got
                assert acc.dtype == np.int32
                np.testing.assert_array_equal(acc, want_acc)
                np.testing.assert_array_equal(s, want_s)
            else:
                assert float(np.abs(got - want_y).max()) <= 1e-5 * float(np.abs(want_y).max())
