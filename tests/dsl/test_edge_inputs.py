"""Inputs that standard-normal data never produces: ties in comparisons, loops with a step.
Each kernel's IR (its simulation) and eager mode must agree with numpy / Python's `range`."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import streamdsl as sd

T = sd.itensor.tiled(sd.f32, shape=(4, 8), tile=(2, 8))  # 2 tokens of (2, 8)
COL = sd.itensor.tiled(sd.f32, shape=(4, 1), tile=(2, 1))
R3 = sd.itensor.tiled(sd.f32, shape=(1, 24), tile=(1, 8))  # 3 tokens of (1, 8)
R2 = sd.itensor.tiled(sd.f32, shape=(1, 16), tile=(1, 8))
R7 = sd.itensor.tiled(sd.f32, shape=(1, 56), tile=(1, 8))


@sd.kernel
def ties(x: T, c: COL, lt: sd.Out[T], le: sd.Out[T], gt: sd.Out[T], ge: sd.Out[T], eq: sd.Out[T], ne: sd.Out[T]):
    for i in range(2):
        v, col = x.read(), c.read()
        lt.write(sd.where(v < col, 1.0, 0.0) + sd.where(v < 0.0, 2.0, 0.0))
        le.write(sd.where(v <= col, 1.0, 0.0) + sd.where(v <= 0.0, 2.0, 0.0))
        gt.write(sd.where(v > col, 1.0, 0.0) + sd.where(v > 0.0, 2.0, 0.0))
        ge.write(sd.where(v >= col, 1.0, 0.0) + sd.where(v >= 0.0, 2.0, 0.0))
        eq.write(sd.where(v == col, 1.0, 0.0) + sd.where(v == 0.0, 2.0, 0.0))
        ne.write(sd.where(v != col, 1.0, 0.0) + sd.where(v != 0.0, 2.0, 0.0))


def test_where_agrees_with_numpy_on_ties() -> None:
    """Inputs drawn from {-1, 0, 1}: about a third of the comparisons are ties."""
    rng = np.random.default_rng(7)
    x = rng.integers(-1, 2, size=(4, 8)).astype(np.float32)
    c = rng.integers(-1, 2, size=(4, 1)).astype(np.float32)
    assert np.any(x == c) and np.any(x == 0)
    compare = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
    want = tuple(np.where(cmp(x, c), 1, 0) + np.where(cmp(x, 0), 2, 0) for cmp in compare)
    for got in (ties(x, c), ties.simulate(x, c)):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w.astype(np.float32))


def spread() -> sd.Kernel:
    @sd.kernel
    def spread(x: R3) -> R7:
        """Tile k of x lands in slot 3k: range(0, 8, 3) is 0, 3, 6, inside a buffer of 7."""
        buf = sd.zeros((7, 1, 8))
        for i in range(0, 8, 3):
            buf[i] = x.read()
        for j in range(7):
            yield buf[j]

    return spread


def mirrored() -> sd.Kernel:
    @sd.kernel
    def mirrored(x: R2) -> R7:
        """range(1, 9, 4) is 1, 5: slots 6 - i are 5 and 1, never below 0."""
        buf = sd.zeros((7, 1, 8))
        for i in range(1, 9, 4):
            buf[6 - i] = x.read()
        for j in range(7):
            yield buf[j]

    return mirrored


def _placed(x: np.ndarray, slots: range) -> np.ndarray:
    want = np.zeros((7, 8), np.float32)
    want[list(slots)] = x.reshape(-1, 8)
    return want.reshape(1, 56)


@pytest.mark.parametrize(("kernel", "tokens", "slots"), [(spread, 3, range(0, 8, 3)), (mirrored, 2, [6 - i for i in range(1, 9, 4)])])
def test_a_stepped_loop_indexes_what_pythons_range_yields(kernel, tokens: int, slots) -> None:
    kernel = kernel()  # built here: a wrong index range fails this test, not the module's import
    x = np.random.default_rng(3).standard_normal((1, 8 * tokens)).astype(np.float32)
    want = _placed(x, slots)
    np.testing.assert_array_equal(kernel(x), want)
    np.testing.assert_array_equal(kernel.simulate(x), want)


def test_a_stepped_loop_out_of_bounds_reports_the_range_python_yields() -> None:
    with pytest.raises(sd.DSLError, match=r"index range \[0, 8\] is out of bounds for dim 0 of size 8"):

        @sd.kernel
        def too_far(x: R3) -> R7:
            buf = sd.zeros((8, 1, 8))
            for i in range(0, 10, 4):  # 0, 4, 8
                buf[i] = x.read()
            for j in range(7):
                yield buf[j]
