"""Property: random tile expressions (element-wise maths, broadcasting reductions, selects) compile to
IR whose simulation equals a direct numpy evaluation of the same expression.

Kernels need their source in a file, so each example writes a small module and runs it.
"""

from __future__ import annotations

import atexit
import itertools
import runpy
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

R, C = 4, 8
_DIR = Path(tempfile.mkdtemp(prefix="sd_random_kernels_"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_COUNTER = itertools.count()

TEMPLATE = """
import streamdsl as sd
X = sd.itensor.tiled(sd.f32, shape=(2 * {R}, {C}), tile=({R}, {C}))

@sd.kernel
def k(a: X, b: X) -> X:
    for i in range(2):
        va = a.read()
        vb = b.read()
        yield {expr} + sd.zeros(({R}, {C}))
"""

# An independent numpy meaning for the `sd` names the expressions use.
NP = SimpleNamespace(
    exp=np.exp, tanh=np.tanh, sigmoid=lambda x: 1 / (1 + np.exp(-x)), abs=np.abs, sqrt=np.sqrt,
    log=np.log, maximum=np.maximum, minimum=np.minimum, where=np.where,
    sum=lambda x, axis: np.sum(x, axis=axis, keepdims=True), max=lambda x, axis: np.max(x, axis=axis, keepdims=True),
    mean=lambda x, axis: np.mean(x, axis=axis, keepdims=True),
)

leaves = st.sampled_from(["va", "vb", "0.5", "2.0", "-1.25"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.sampled_from(["sd.tanh({})", "sd.sigmoid({})", "sd.abs({})", "sd.exp(sd.tanh({}))",
                             "sd.sqrt(sd.abs({}))", "sd.log(sd.abs({}) + 1.0)", "(-{})"])
    binary = st.sampled_from(["({} + {})", "({} - {})", "({} * {})", "({} / (1.0 + sd.abs({})))",
                              "sd.maximum({}, {})", "sd.minimum({}, {})"])
    reduce = st.sampled_from(["sd.sum({}, axis=1)", "sd.max({}, axis=0)", "sd.mean({}, axis=1)"])
    return st.one_of(
        st.builds(lambda f, x: f.format(x), unary, inner),
        st.builds(lambda f, x, y: f.format(x, y), binary, inner, inner),
        st.builds(lambda f, x: f.format(x), reduce, inner.filter(lambda e: "v" in e)),
        st.builds(lambda x, y, p, q: f"sd.where({x} > {y}, {p}, {q})", inner, inner, inner, inner),
    )


expressions = st.recursive(leaves, _extend, max_leaves=8).filter(lambda e: "va" in e or "vb" in e)


def _reference(expr: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tiles = []
    for i in range(2):
        va, vb = a[i * R : (i + 1) * R], b[i * R : (i + 1) * R]
        value = eval(expr, {"sd": NP, "va": va, "vb": vb})  # noqa: S307 - our own strings
        tiles.append(np.broadcast_to(np.asarray(value, np.float32), (R, C)))
    return np.concatenate(tiles)


@given(expr=expressions, seed=st.integers(0, 2**16))
def test_random_expression_simulates_like_numpy(expr: str, seed: int) -> None:
    path = _DIR / f"kernel_{next(_COUNTER)}.py"
    path.write_text(TEMPLATE.format(R=R, C=C, expr=expr))
    kernel = runpy.run_path(str(path))["k"]
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((2 * R, C)).astype(np.float32) for _ in range(2))
    want = _reference(expr, a, b)
    scale = max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(kernel.simulate(a, b), want, rtol=1e-5, atol=1e-5 * scale, err_msg=expr)
    np.testing.assert_allclose(kernel(a, b), want, rtol=1e-5, atol=1e-5 * scale, err_msg=expr)
