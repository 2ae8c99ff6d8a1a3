"""Stream and tile shaping: tile slicing and concatenation in kernels (`v[:, 32:]`,
`sd.concat`), batched `@`, and stream slicing / `sd.chunk` / `sd.concat` in dataflow functions
(`dataflow.itensor_chunk` / `itensor_concat`). Each program is checked against numpy eagerly, in
the functional simulator and, for the dataflow shapes, in g++ csim of the emitted HLS."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import streamdsl as sd
from streamdsl.dialects.dataflow import ITensorChunkOp, ITensorConcatOp

R, D = 4, 64
X = sd.itensor.tiled(sd.f32, shape=(R, D), tile=(1, D))


def _rng(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _check(prog, want, *arrays, rtol=1e-5) -> None:  # noqa: ANN001
    for got in (prog(*arrays), prog.simulate(*arrays)):
        for g, w in zip(got if isinstance(want, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-5)


def rotate_half(v):
    """RoPE's half rotation: (x1, x2) -> (-x2, x1) on the last dim."""
    half = v.shape[1] // 2
    return sd.concat([-v[:, half:], v[:, :half]], axis=1)


def test_tile_slices_and_concat_rotate_half() -> None:
    @sd.kernel
    def rope_like(x: X, cos: X, sin: X) -> X:
        for r in range(R):
            v = x.read()
            yield v * cos.read() + rotate_half(v) * sin.read()

    x, c, s = _rng(0, R, D), _rng(1, R, D), _rng(2, R, D)
    rot = np.concatenate([-x[:, D // 2:], x[:, : D // 2]], axis=1)
    _check(rope_like, x * c + rot * s, x, c, s)


def test_slice_stores_into_buffers_and_mixed_indices() -> None:
    Y = sd.itensor.tiled(sd.f32, shape=(1, 8), tile=(1, 8))

    @sd.kernel
    def gather(x: X) -> Y:
        buf = sd.zeros((R, 1, 8))
        for r in range(R):
            v = x.read()
            buf[r, :, 0:4] = v[:, 0:4]
            buf[r, :, 4:] = v[:, D - 4:]
        yield sd.sum(sd.reshape(buf, (R, 8)), axis=0) + buf[R - 1, :, :]

    x = _rng(3, R, D)
    rows = np.concatenate([x[:, :4], x[:, -4:]], axis=1)
    _check(gather, rows.sum(axis=0, keepdims=True) + rows[-1:], x)


@pytest.mark.parametrize(("b", "m", "k", "n"), [(2, 4, 8, 3), (3, 1, 16, 5)])
def test_batched_matmul(b: int, m: int, k: int, n: int) -> None:
    A = sd.itensor.tiled(sd.f32, shape=(b, m, k), tile=(b, m, k))
    B = sd.itensor.tiled(sd.f32, shape=(b, k, n), tile=(b, k, n))
    OUT = sd.itensor.tiled(sd.f32, shape=(b, m, n), tile=(b, m, n))

    @sd.kernel
    def bmm(a: A, w: B) -> OUT:
        yield a.read() @ w.read()

    a, w = _rng(4, b, m, k), _rng(5, b, k, n)
    _check(bmm, a @ w, a, w)


# -- streams -----------------------------------------------------------------------------------

T16 = sd.itensor.tiled(sd.f32, shape=(R, D), tile=(1, 16))
H16 = sd.itensor.tiled(sd.f32, shape=(R, D // 2), tile=(1, 16))
Q16 = sd.itensor.tiled(sd.f32, shape=(R, D // 4), tile=(1, 16))


@sd.kernel
def double(x: T16) -> T16:
    for i in range(R * 4):
        yield x.read() * 2.0


@sd.kernel
def negate(x: H16) -> H16:
    for i in range(R * 2):
        yield -x.read()


@sd.kernel
def plus_one(x: H16) -> H16:
    for i in range(R * 2):
        yield x.read() + 1.0


@sd.kernel
def quarter(x: Q16) -> Q16:
    for i in range(R):
        yield x.read() * 3.0


@sd.dataflow
def swap_halves(x: sd.Tensor[sd.f32, (R, D)]):
    y = double(x)
    lo, hi = y[:, : D // 2], y[:, D // 2 :]
    return sd.concat([negate(hi), plus_one(lo)], axis=1)


@sd.dataflow
def chunked(x: sd.Tensor[sd.f32, (R, D)]):
    a, b, c, d = sd.chunk(double(x), 4, dim=1)
    return quarter(a), sd.concat([quarter(b), quarter(c), quarter(d)], axis=-1)


def test_stream_slices_and_concat() -> None:
    x = _rng(6, R, D)
    y = 2 * x
    _check(swap_halves, np.concatenate([-y[:, D // 2:], y[:, : D // 2] + 1], axis=1), x)
    ops = list(swap_halves.module.walk())
    assert sum(isinstance(op, ITensorChunkOp) for op in ops) == 1
    assert sum(isinstance(op, ITensorConcatOp) for op in ops) == 1


def test_chunk_into_equal_parts() -> None:
    x = _rng(7, R, D)
    y = 6 * x
    _check(chunked, (y[:, :16], y[:, 16:]), x)


def test_part_types_follow_the_producers_order() -> None:
    """A column-major producer cut along rows: the parts stream in the producer's order, and a
    consumer wanting row-major tiles gets a converter."""
    C = sd.itensor.tiled(sd.f32, shape=(R, D), tile=(1, 16), order=(1, 0))

    @sd.kernel
    def colmajor(x: C) -> C:
        for i in range(R * 4):
            yield x.read() + 0.5

    HALF = sd.itensor.tiled(sd.f32, shape=(R // 2, D), tile=(1, 16))

    @sd.kernel
    def rows(x: HALF) -> HALF:
        for i in range(R // 2 * 4):
            yield x.read() * 2.0

    @sd.dataflow
    def prog(x: sd.Tensor[sd.f32, (R, D)]):
        top, bottom = sd.chunk(colmajor(x), 2, dim=0)
        return rows(top), rows(bottom)

    x = _rng(8, R, D)
    _check(prog, ((x[: R // 2] + 0.5) * 2, (x[R // 2:] + 0.5) * 2), x)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("name", ["swap_halves", "chunked"])
def test_stream_shaping_in_csim(name: str, tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project
    from tests.hls.cases import assert_close, csim_modes

    prog = {"swap_halves": swap_halves, "chunked": chunked}[name]
    x = _rng(9, R, D)
    design = sd.compile(prog)
    project = emit_project(design, tmp_path / name)
    want = prog.simulate(x)
    for mode, got in csim_modes(project, x):
        assert_close(got, want, 1e-6, f"{name} {mode} csim")


@pytest.mark.parametrize("dtype", [sd.i8, sd.i32])
def test_integer_ports_carry_data(dtype) -> None:  # noqa: ANN001
    """Integer ports are accepted: their tiles move, slice and concatenate (no integer maths)."""
    IO = sd.itensor.tiled(dtype, shape=(R, 16), tile=(1, 16))

    @sd.kernel
    def swap(x: IO) -> IO:
        for r in range(R):
            v = x.read()
            yield sd.concat([v[:, 8:], v[:, :8]], axis=1)

    x = np.arange(R * 16).reshape(R, 16).astype(dtype.storage)
    want = np.concatenate([x[:, 8:], x[:, :8]], axis=1)
    for got in (swap(x), swap.simulate(x)):
        assert got.dtype == dtype.storage
        np.testing.assert_array_equal(got, want)
