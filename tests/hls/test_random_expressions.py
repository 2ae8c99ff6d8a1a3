"""Property: random tile expressions (tests/dsl/test_random_expressions.py's generator) emitted as
HLS C++ and run in sequential csim equal the functional simulator and numpy."""

from __future__ import annotations

import itertools
import runpy
from pathlib import Path

import numpy as np
import pytest
from dsl import test_random_expressions as rx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamdsl as sd
from hls_backend import emit_project, run_csim

TEMPLATE = rx.TEMPLATE + """

@sd.dataflow
def prog(a: sd.Tensor[sd.f32, (2 * {R}, {C})], b: sd.Tensor[sd.f32, (2 * {R}, {C})]):
    return k(a, b)
"""
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hls_random")


# each example compiles C++ (about a second): a twelfth of the profile's examples
@settings(max_examples=max(4, settings.default.max_examples // 12), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expr=rx.expressions, seed=st.integers(0, 2**16))
def test_random_expression_csim_like_numpy(workdir: Path, expr: str, seed: int) -> None:
    n = next(_COUNTER)
    path = workdir / f"kernel_{n}.py"
    path.write_text(TEMPLATE.format(R=rx.R, C=rx.C, expr=expr))
    prog = runpy.run_path(str(path))["prog"]
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((2 * rx.R, rx.C)).astype(np.float32) for _ in range(2))
    want = rx._reference(expr, a, b)
    scale = max(float(np.abs(want).max()), 1.0)
    design = sd.compile(prog)
    got = run_csim(emit_project(design, workdir / f"p{n}"), a, b)
    np.testing.assert_allclose(got, design.simulate(a, b), rtol=1e-5, atol=1e-5 * scale, err_msg=expr)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, err_msg=expr)
