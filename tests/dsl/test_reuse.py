"""Code reuse in kernels: plain Python helpers are inlined, `if` on static conditions, kernel
factories under postponed annotations, and `name=` on `@sd.kernel`. Each compiled kernel is
checked against numpy, eagerly and in the functional simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

import streamdsl as sd
from streamdsl.dialects.dataflow import TaskOp

ROWS, D = 4, 32
X = sd.itensor.tiled(sd.f32, shape=(ROWS, D), tile=(1, D))
S = sd.itensor.tiled(sd.f32, shape=(ROWS, 1), tile=(1, 1))


def rms_norm(v, eps=1e-6):
    """A helper that only uses DSL operations (and a keyword default)."""
    return v * sd.rsqrt(sd.mean(v * v, axis=1) + eps)


def silu(v):
    return v * sd.sigmoid(v)


def scaled(v, scale, *, squash=False):
    if squash:  # a static condition: only one branch is compiled
        return sd.tanh(v) * scale
    return v * scale


def read_pair(a, b):
    """A helper may read ports it is given; the reads count towards the kernel's."""
    return a.read() + b.read()


def _rows(x: np.ndarray, fn) -> np.ndarray:
    return np.stack([fn(r[None, :])[0] for r in x])


def _np_rms(v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return v / np.sqrt(np.mean(v * v, axis=1, keepdims=True) + eps)


def _check(kernel: sd.Kernel, want: np.ndarray, *arrays: np.ndarray) -> None:
    np.testing.assert_allclose(kernel(*arrays), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel.simulate(*arrays), want, rtol=1e-5, atol=1e-6)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((ROWS, D)).astype(np.float32)


def test_helpers_are_inlined(x: np.ndarray) -> None:
    @sd.kernel
    def norm_silu(x: X) -> X:
        for r in range(ROWS):
            yield silu(rms_norm(x.read(), eps=1e-5))

    want = _rows(x, lambda v: (lambda n: n / (1 + np.exp(-n)))(_np_rms(v, 1e-5)))
    _check(norm_silu, want, x)
    # inlined: one task, no call op, the body holds the helpers' generics
    assert "func.call" not in str(norm_silu.module)


def test_helper_reads_ports_and_counts_them(x: np.ndarray) -> None:
    @sd.kernel
    def add_rows(a: X, b: X) -> X:
        for r in range(ROWS):
            yield read_pair(a, b)

    y = (x * 2 + 1).astype(np.float32)
    _check(add_rows, x + y, x, y)


def test_static_if_and_conditional_expression(x: np.ndarray) -> None:
    def make(squash: bool, mode: str):
        @sd.kernel(name=f"scale_{mode}")
        def k(x: X) -> X:
            for r in range(ROWS):
                v = x.read()
                if mode == "double" and not squash:
                    v = v * 2.0
                elif mode in ("half",):
                    v = v * 0.5
                else:
                    v = v + 1.0
                yield scaled(v, 3.0 if squash else 1.0, squash=squash)

        return k

    _check(make(False, "double"), x * 2.0, x)
    _check(make(True, "half"), np.tanh(x * 0.5) * 3.0, x)
    _check(make(False, "other"), x + 1.0, x)
    assert make(True, "half").name == "scale_half"


def test_helper_with_loops_and_carried_values(x: np.ndarray) -> None:
    def running_max(port, n):
        best = sd.full((1, D), -math.inf)
        for i in range(n):
            best = sd.maximum(best, port.read())
        return best

    Y = sd.itensor.tiled(sd.f32, shape=(1, D), tile=(1, D))

    @sd.kernel
    def colmax(x: X) -> Y:
        yield running_max(x, ROWS)

    _check(colmax, x.max(axis=0, keepdims=True), x)


def test_factory_kernels_under_postponed_annotations(x: np.ndarray) -> None:
    """This module uses `from __future__ import annotations`: the port types named below are
    locals of the factory, seen only by the annotations (so not in the kernel's closure), and
    the kernel is made one function call deeper than the factory's frame."""

    def factory(width: int, factor: float):
        T = sd.itensor.tiled(sd.f32, shape=(ROWS, width), tile=(1, width))

        def make():
            @sd.kernel(name=f"mul{width}")
            def proj(x: T) -> T:
                for r in range(ROWS):
                    yield x.read() * factor

            return proj

        return make()

    a, b = factory(D, 2.0), factory(2 * D, 3.0)
    assert (a.name, b.name) == (f"mul{D}", f"mul{2 * D}")
    _check(a, x * 2.0, x)
    wide = np.concatenate([x, x], axis=1)
    _check(b, wide * 3.0, wide)

    @sd.dataflow
    def both(x: sd.Tensor[sd.f32, (ROWS, D)]):
        return a(a(x))

    names = [op.sym_name.data for op in both.module.walk() if isinstance(op, TaskOp)]
    assert names == [f"mul{D}", f"mul{D}_1"]
    np.testing.assert_allclose(both.simulate(x), x * 4.0, rtol=1e-6)


def test_same_helper_twice_in_one_kernel(x: np.ndarray) -> None:
    @sd.kernel
    def twice(x: X) -> X:
        for r in range(ROWS):
            yield rms_norm(rms_norm(x.read()) * 3.0)

    _check(twice, _np_rms(_np_rms(x) * 3.0), x)
