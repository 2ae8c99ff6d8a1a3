"""The op table in eager mode (called on numpy arrays, as a kernel's Python body runs them): the
dtypes numpy's own rules give, against numpy, and the documented errors."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from streamdsl.dsl.ops import IntTile

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("op", "ref"), [(sd.exp, np.exp), (sd.tanh, np.tanh), (sd.sqrt, np.sqrt), (sd.abs, np.abs),
                                         (sd.rsqrt, lambda x: 1 / np.sqrt(x)), (sd.sigmoid, lambda x: 1 / (1 + np.exp(-x)))])
def test_an_elementwise_op_keeps_a_float_tiles_dtype(op, ref, dtype) -> None:
    x = RNG.uniform(0.25, 4, (2, 8)).astype(dtype)
    got = op(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, ref(x.astype(np.float64)), rtol=2 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize(("op", "ref"), [(sd.exp, np.exp), (sd.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
                                         (sd.rsqrt, lambda x: 1 / np.sqrt(x))])
def test_an_elementwise_op_of_integers_computes_in_f32(op, ref) -> None:
    x = np.arange(1, 9, dtype=np.int32).reshape(2, 4)
    got = op(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref(x.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize(("op", "ref"), [(sd.sum, np.sum), (sd.max, np.max), (sd.min, np.min), (sd.mean, np.mean)])
def test_a_reduction_keeps_the_axis_and_the_float_dtype(op, ref, dtype) -> None:
    x = RNG.uniform(-2, 2, (3, 4)).astype(dtype)
    for axis in (0, 1, -1):
        got = op(x, axis=axis)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref(x.astype(np.float64), axis=axis, keepdims=True), rtol=4 * float(np.finfo(dtype).eps))
    assert sd.sum(np.arange(6).reshape(2, 3), axis=1).dtype == np.float32


def test_where_takes_the_dtype_of_its_tiles() -> None:
    x = np.array([[-1, 0, 2]], np.float16)
    got = sd.where(x > 0, x, 0.0)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [[0, 0, 2]])
    assert sd.where(np.array([True, False]), 1.0, 2.0).dtype == np.float32


def test_construction_gives_the_requested_dtype() -> None:
    assert sd.zeros((2, 3)).dtype == np.float32 and sd.full((2, 2), 1.5, sd.f16).dtype == np.float16
    ints = sd.zeros((2, 2), sd.i8)
    assert ints.dtype == np.int8 and isinstance(ints, IntTile)
    q = np.array([[-3, 7]], np.int8)
    half = sd.dequantize(q, np.float16(0.5), sd.f16)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, [[-1.5, 3.5]])


def test_an_integer_matmul_accumulates_exactly_in_i32() -> None:
    a = sd.full((2, 64), 127, sd.i8)
    b = np.full((64, 3), -128, np.int8)
    for got in (a @ b, (b.T @ a.T).T):  # an integer tile on either side of a plain int8 array
        assert got.dtype == np.int32 and isinstance(got, IntTile)
        np.testing.assert_array_equal(got, np.full((2, 3), 127 * -128 * 64))


def test_an_integer_matmul_refuses_a_float_operand_on_either_side() -> None:
    ints, floats = sd.zeros((2, 2), sd.i8), np.ones((2, 2), np.float32)
    for a, b in ((ints, floats), (floats, ints)):
        with pytest.raises(TypeError, match=r"^@ of an integer tile and a float tile: convert one with sd.cast or sd.dequantize$"):
            a @ b


def test_chunk_cuts_along_the_given_dim() -> None:
    x = np.arange(24).reshape(2, 12)
    for dim in (0, 1, -1):
        parts = sd.chunk(x, 2, dim=dim)
        assert len(parts) == 2
        for got, want in zip(parts, np.split(x, 2, axis=dim), strict=True):
            np.testing.assert_array_equal(got, want)


def test_range_is_pythons_within_its_declared_maximum() -> None:
    assert list(sd.range(1, 9, 3)) == [1, 4, 7] and list(sd.range(5, max=5)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"^sd.range\(0, 12, 2\): runs 6 times, more than its declared maximum 5$"):
        sd.range(0, 12, 2, max=5)


def test_join_of_plain_arrays_asks_for_kernel_outputs() -> None:
    with pytest.raises(TypeError) as info:
        sd.join([np.zeros((1, 8)), np.zeros((1, 8))], sd.itensor.tiled(sd.f32, shape=(2, 8), tile=(1, 8)))
    assert str(info.value) == ("sd.join of arrays: pass kernel outputs (the order their kernels streamed them decides the "
                               "interleaving)")
