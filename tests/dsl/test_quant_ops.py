"""Integer tiles and the quantization ops of the DSL (docs/quantization.md): the functional
simulator (the compiled IR) and eager mode against streamdsl.quant and plain integer arithmetic,
on random values including the extremes; the timing model's narrower tokens; the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import streamdsl as sd
from streamdsl import quant
from tests.dsl.test_errors import expect_error

R, C = 4, 16


def ints(lo: int, hi: int, shape: tuple[int, ...], dtype=np.int8) -> st.SearchStrategy:  # noqa: ANN001
    return hnp.arrays(dtype, shape, elements=st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi)))


def tiles(dtype: sd.DType, shape: tuple[int, int] = (R, C)) -> sd.itensor:
    return sd.itensor.tiled(dtype, shape=shape, tile=(1, shape[1]))


def both(kernel: sd.Kernel, *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(functional simulator, eager mode) results of a kernel."""
    return kernel.simulate(*arrays), kernel(*arrays)


def _cast_kernel(src: sd.DType, dst: sd.DType) -> sd.Kernel:
    @sd.kernel(name=f"cast_{src.name}_{dst.name}")
    def cast(x: tiles(src)) -> tiles(dst):
        for i in range(R):
            yield sd.cast(x.read(), dst)

    return cast


CASTS = {pair: _cast_kernel(*pair) for pair in [(sd.i32, sd.i4), (sd.i32, sd.i8), (sd.i8, sd.i32), (sd.i4, sd.i32),
                                                (sd.i32, sd.f32), (sd.f32, sd.i32), (sd.f16, sd.f32), (sd.i8, sd.i4)]}


@given(ints(-(2**31), 2**31 - 1, (R, C), np.int32))
def test_int_casts_wrap_and_extend(x: np.ndarray) -> None:
    for dst, bits in ((sd.i4, 4), (sd.i8, 8)):
        want = np.array([((int(v) + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1) for v in x.ravel()]).reshape(x.shape)
        for got in both(CASTS[sd.i32, dst], x):
            np.testing.assert_array_equal(got, want)
    small = (x % 16 - 8).astype(np.int8)
    for got in both(CASTS[sd.i4, sd.i32], small) + both(CASTS[sd.i8, sd.i32], small):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, small)
    for got in both(CASTS[sd.i8, sd.i4], (x % 256 - 128).astype(np.int8)):
        np.testing.assert_array_equal(got, (x % 256 - 128 + 8) % 16 - 8)
    for got in both(CASTS[sd.i32, sd.f32], x):
        np.testing.assert_array_equal(got, x.astype(np.float32))  # round to nearest even above 2^24


@given(hnp.arrays(np.float32, (R, C), elements=st.floats(-2e9, 2e9, width=32)))
def test_float_to_int_truncates(x: np.ndarray) -> None:
    for got in both(CASTS[sd.f32, sd.i32], x):
        np.testing.assert_array_equal(got, np.trunc(x).astype(np.int32))
    half = np.clip(x, -6e4, 6e4).astype(np.float16)
    for got in both(CASTS[sd.f16, sd.f32], half):
        np.testing.assert_array_equal(got, half.astype(np.float32))


def _quantize_kernel(dtype: sd.DType) -> sd.Kernel:
    @sd.kernel(name=f"quantize_{dtype.name}")
    def q(x: tiles(sd.f32), s: tiles(sd.f32, (R, 1))) -> tiles(dtype):
        for i in range(R):
            yield sd.quantize(x.read(), s.read(), dtype)

    return q


QUANTIZE = {d: _quantize_kernel(d) for d in (sd.i4, sd.i8)}


@given(hnp.arrays(np.float32, (R, C), elements=st.floats(-1e3, 1e3, width=32)),
       hnp.arrays(np.float32, (R, 1), elements=st.one_of(st.just(0.0), st.floats(2.0**-10, 1e3, width=32))),
       st.booleans())
def test_quantize_matches_the_reference(x: np.ndarray, s: np.ndarray, ties: bool) -> None:
    if ties:  # exact halves: round half to even decides
        x = ((np.round(x) + 0.5) * np.where(s == 0, 1, s)).astype(np.float32)
    for dtype in (sd.i4, sd.i8):
        want = quant.quantize(x, s, dtype.bits)
        for got in both(QUANTIZE[dtype], x, s):
            assert got.dtype == np.int8
            np.testing.assert_array_equal(got, want)


@sd.kernel
def dequantize_rows(q: tiles(sd.i32), s: sd.itensor.tiled(sd.f16, shape=(1, C), tile=(1, C)).repeat(R)) -> tiles(sd.f32):
    for i in range(R):
        yield sd.dequantize(q.read(), s.read())


@given(ints(-(2**31), 2**31 - 1, (R, C), np.int32), hnp.arrays(np.float16, (1, C), elements=st.floats(-100, 100, width=16)))
def test_dequantize_matches_the_reference(q: np.ndarray, s: np.ndarray) -> None:
    for got in both(dequantize_rows, q, s):
        np.testing.assert_array_equal(got, quant.dequantize(q, s))


def _matmul_kernel(a: sd.DType, b: sd.DType, m: int, k: int, n: int) -> sd.Kernel:
    A = sd.itensor.tiled(a, shape=(m, k), tile=(m, k))
    B = sd.itensor.tiled(b, shape=(k, n), tile=(k, n))

    @sd.kernel(name=f"mm_{a.name}_{b.name}_{m}x{k}x{n}")
    def mm(x: A, w: B) -> sd.itensor.tiled(sd.i32, shape=(m, n), tile=(m, n)):
        yield x.read() @ w.read()

    return mm


MATMULS = {(a, b, shape): _matmul_kernel(a, b, *shape) for a, b in [(sd.i8, sd.i4), (sd.i8, sd.i8), (sd.i32, sd.i4)]
           for shape in [(1, 128, 8), (3, 32, 5)]}


@given(st.sampled_from(sorted(MATMULS, key=str)), st.data())
def test_integer_matmul_is_exact(key: tuple, data: st.DataObject) -> None:
    a, b, (m, k, n) = key
    bounds = {sd.i4: (-8, 7), sd.i8: (-128, 127), sd.i32: (-(2**20), 2**20)}
    x = data.draw(ints(*bounds[a], (m, k), a.storage))
    w = data.draw(ints(*bounds[b], (k, n), b.storage))
    want = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.int32)  # wraps as int32 hardware does
    for got in both(MATMULS[key], x, w):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_integer_matmul_extremes() -> None:
    x, w = np.full((1, 128), -128, np.int8), np.full((128, 8), -8, np.int8)
    for got in both(MATMULS[sd.i8, sd.i4, (1, 128, 8)], x, w):
        assert (got == 128 * 1024).all()
    x[0, ::2], w[::2] = 127, 7
    for got in both(MATMULS[sd.i8, sd.i4, (1, 128, 8)], x, w):
        assert (got == 64 * (127 * 7 + 1024)).all()


@sd.kernel
def int_arith(a: tiles(sd.i8), b: tiles(sd.i8)) -> tiles(sd.i8):
    for i in range(R):
        x = a.read()
        yield (x + b.read()) * 3 - x


@given(ints(-128, 127, (R, C)), ints(-128, 127, (R, C)))
def test_integer_tile_arithmetic_wraps(a: np.ndarray, b: np.ndarray) -> None:
    want = (((a.astype(np.int64) + b) * 3 - a + 128) % 256 - 128).astype(np.int8)
    for got in both(int_arith, a, b):
        np.testing.assert_array_equal(got, want)


def test_i4_arguments_are_range_checked() -> None:
    with pytest.raises(ValueError, match=r"argument .* is i4 but holds values in \[-9, -9\]; i4 values lie in \[-8, 7\]"):
        CASTS[sd.i4, sd.i32].simulate(np.full((R, C), -9, np.int8))


def test_i4_tokens_move_in_an_eighth_of_the_beats() -> None:
    """The timing model counts 4 bits per i4 element: a DMA streams (128, 64) i4 tiles in 1/8 the
    512-bit words of their f32 twins, each word at the pseudo-channel's 383 bits per cycle: every
    token arrives that much sooner, and the load (which holds the channel until its last token's
    words are out) and the design finish sooner by all the tokens' savings."""
    from lowering.timing import U55C

    tokens = 8

    def design(dtype: sd.DType):
        W = sd.itensor.tiled(dtype, shape=(128 * tokens, 64), tile=(128, 64))

        @sd.kernel(name=f"first_rows_{dtype.name}")
        def first_rows(w: W) -> sd.itensor.tiled(dtype, shape=(tokens, 64), tile=(1, 64)):
            for i in range(tokens):
                yield w.read()[0:1, :]

        return sd.compile(first_rows.program)

    i4, f32 = design(sd.i4), design(sd.f32)
    bits = {d: next(s.token_bits for s in x.streams if s.name.startswith("dma_load")) for d, x in (("i4", i4), ("f32", f32))}
    assert bits == {"i4": 128 * 64 * 4, "f32": 128 * 64 * 32}
    beat = {d: -(-b // U55C.hbm_bits_per_cycle) for d, b in bits.items()}  # cycles per token
    assert beat == {"i4": 93, "f32": 741}  # a pseudo-channel at its measured 354 bits a cycle (300 MHz)
    sims = {d: x.timed_simulation() for d, x in (("i4", i4), ("f32", f32))}
    for d, sim in sims.items():
        arrivals = next(t for s, t in sim.write_times.items() if s.startswith("dma_load"))
        beats = -(-bits[d] // 1024)  # the first beat leaves when the token's words will be in as its reader takes them
        words_in = [-(-k * bits[d] // U55C.hbm_bits_per_cycle) for k in range(1, tokens + 1)]  # one burst: no rounding per token
        assert arrivals.tolist() == [U55C.dma_latency + w - beats for w in words_in]
        assert sim.finish["dma_load(w)"] == U55C.dma_latency + words_in[-1]
    # the f32 design waits on its load: its task stalls for it and ends as the last token is in
    assert sims["f32"].stall_cycles["first_rows_f32"] > sims["i4"].stall_cycles["first_rows_i4"]
    assert sims["f32"].finish["first_rows_f32"] - sims["f32"].finish["dma_load(w)"] < beat["i4"]
    assert sims["i4"].makespan < sims["f32"].makespan - (tokens - 1) * (beat["f32"] - beat["i4"])


# -- errors ---------------------------------------------------------------------------------------

I8 = tiles(sd.i8)
I4 = tiles(sd.i4)
F = tiles(sd.f32)


def test_quantize_an_integer_tile() -> None:
    def build():
        @sd.kernel
        def k(x: I8) -> I8:
            for i in range(R):
                yield sd.quantize(x.read(), 1.0)  # <- error

    expect_error(build, "sd.quantize: quantizes a float tile, got a tile [1, 16] i8")


def test_quantize_to_i32() -> None:
    def build():
        @sd.kernel
        def k(x: F) -> tiles(sd.i32):
            for i in range(R):
                yield sd.quantize(x.read(), 1.0, sd.i32)  # <- error

    expect_error(build, "quantizes to sd.i4 or sd.i8, not i32")


def test_scale_that_does_not_broadcast() -> None:
    def build():
        @sd.kernel
        def k(x: F) -> I8:
            for i in range(R):
                v = x.read()
                yield sd.quantize(v, v[:, 0:2])  # <- error

    expect_error(build, "a scale tile [1, 2] f32 does not broadcast to the [1, 16] tile")


def test_dequantize_a_float_tile() -> None:
    def build():
        @sd.kernel
        def k(x: F) -> F:
            for i in range(R):
                yield sd.dequantize(x.read(), 2.0)  # <- error

    expect_error(build, "sd.dequantize: dequantizes an integer tile")


def test_i4_arithmetic() -> None:
    def build():
        @sd.kernel
        def k(x: I4) -> I4:
            for i in range(R):
                v = x.read()
                yield v + v  # <- error

    expect_error(build, "got i4", "sd.cast it to i8 or i32 first")


def test_float_constant_with_an_integer_tile() -> None:
    def build():
        @sd.kernel
        def k(x: I8) -> I8:
            for i in range(R):
                yield x.read() * 0.5  # <- error

    expect_error(build, "a float number with a i8 tile", "sd.dequantize")


def test_matmul_of_an_integer_and_a_float_tile() -> None:
    def build():
        @sd.kernel
        def k(x: I8, y: sd.itensor.tiled(sd.f32, shape=(16, 16), tile=(16, 16))) -> F:
            v = x.read()
            yield v @ y.read()  # <- error
            for i in range(R - 1):
                yield sd.dequantize(x.read(), 1.0)

    expect_error(build, "@: dtype mismatch", "sd.cast")


def test_exp_of_an_integer_tile() -> None:
    def build():
        @sd.kernel
        def k(x: I8) -> F:
            for i in range(R):
                yield sd.exp(x.read())  # <- error

    expect_error(build, "exp: this tile math is supported on float dtypes only, got i8")


def test_cast_to_a_non_dtype() -> None:
    def build():
        @sd.kernel
        def k(x: I8) -> I8:
            for i in range(R):
                yield sd.cast(x.read(), np.int8)  # <- error

    expect_error(build, "sd.cast: dtype must be an sd dtype")
