"""Single kernels: every tile operation against numpy (eager and simulated), loop-carried values,
on-chip buffers with index arithmetic, and the shape of the generated IR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects import scf

import streamdsl as sd
from streamdsl.dialects.dataflow import ITensorReadOp, ITensorWriteOp, TaskOp

A, B = 4, 8  # tile shape used below
T = sd.itensor.tiled(sd.f32, shape=(2 * A, B), tile=(A, B))  # 2 tokens of (4, 8)
COL = sd.itensor.tiled(sd.f32, shape=(2 * A, 1), tile=(A, 1))
ROW = sd.itensor.tiled(sd.f32, shape=(2, B), tile=(1, B))
TT = sd.itensor.tiled(sd.f32, shape=(2 * B, A), tile=(B, A))
FLAT = sd.itensor.tiled(sd.f32, shape=(2, A * B), tile=(1, A * B))


@sd.kernel
def unary(x: T, y: sd.Out[T]):
    for i in range(2):
        v = x.read()
        a = sd.abs(v)
        y.write(sd.exp(v) + sd.log(a + 1.0) + sd.tanh(v) - sd.sqrt(a) * sd.rsqrt(a + 2.0) + sd.sigmoid(v) / 3.0
                + sd.erf(v) + v ** 2 - v ** 3 * 0.1 - (-v))


@sd.kernel
def binary(x: T, c: COL, r: ROW, y: sd.Out[T]):
    for i in range(2):
        v, col, row = x.read(), c.read(), r.read()
        y.write(sd.maximum(v, col) - sd.minimum(row, v) + col * row / (1.0 + row * row) + 2.0 - v)


@sd.kernel
def selects(x: T, c: COL, y: sd.Out[T]):
    for i in range(2):
        v, col = x.read(), c.read()
        s = sd.where(v > col, v, 0.0) + sd.where(v < 0.5, 1.0, v) + sd.where(v >= col, col, v)
        y.write(s + sd.where(v <= -0.5, v, 2.0) + sd.where(v == v, 1.0, 0.0) + sd.where(v != 0.0, v, 7.0))


@sd.kernel
def reductions(x: T, rows_out: sd.Out[COL], cols_out: sd.Out[ROW]):
    for i in range(2):
        v = x.read()
        rows_out.write(sd.sum(v, axis=1) + sd.max(v, axis=-1) - sd.min(v, 1) + sd.mean(v, axis=1))
        cols_out.write(sd.sum(v, axis=0) * sd.mean(v, axis=0) + sd.max(v, 0) - sd.min(v, axis=0))


@sd.kernel
def layout(x: T, t_out: sd.Out[TT], flat_out: sd.Out[FLAT]):
    for i in range(2):
        v = x.read()
        t_out.write(v.T + sd.transpose(v, (1, 0)))
        flat_out.write(sd.reshape(v, (1, A * B)))


def _ref_unary(x):
    a = np.abs(x)
    erf = np.vectorize(math.erf)(x)
    return (np.exp(x) + np.log(a + 1) + np.tanh(x) - np.sqrt(a) / np.sqrt(a + 2) + 1 / (1 + np.exp(-x)) / 3 + erf
            + x**2 - x**3 * 0.1 + x)


def _ref_binary(x, c, r):
    r = np.repeat(r, A, 0)  # ROW tokens: one (1, B) row per x tile, broadcast over its rows
    return np.maximum(x, c) - np.minimum(r, x) + c * r / (1 + r * r) + 2 - x


def _ref_selects(x, c):
    c = np.broadcast_to(c, x.shape)
    s = np.where(x > c, x, 0) + np.where(x < 0.5, 1, x) + np.where(x >= c, c, x)
    return s + np.where(x <= -0.5, x, 2) + 1.0 + np.where(x != 0, x, 7)


def _ref_reductions(x):
    tiles = x.reshape(2, A, B)
    rows = tiles.sum(2) + tiles.max(2) - tiles.min(2) + tiles.mean(2)
    cols = tiles.sum(1) * tiles.mean(1) + tiles.max(1) - tiles.min(1)
    return rows.reshape(2 * A, 1), cols


def _ref_layout(x):
    tiles = x.reshape(2, A, B)
    return np.concatenate([2 * t.T for t in tiles]), tiles.reshape(2, A * B)


CASES = {
    "unary": (unary, [(2 * A, B)], lambda x: _ref_unary(x)),
    "binary": (binary, [(2 * A, B), (2 * A, 1), (2, B)], _ref_binary),
    "selects": (selects, [(2 * A, B), (2 * A, 1)], _ref_selects),
    "reductions": (reductions, [(2 * A, B)], _ref_reductions),
    "layout": (layout, [(2 * A, B)], _ref_layout),
}


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _close(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_eager_matches_numpy(name: str) -> None:
    kernel, shapes, ref = CASES[name]
    args = _inputs(shapes)
    _close(kernel(*args), ref(*args))


@pytest.mark.parametrize("name", CASES)
def test_simulated_ir_matches_numpy(name: str) -> None:
    kernel, shapes, ref = CASES[name]
    args = _inputs(shapes, seed=1)
    _close(kernel.simulate(*args), ref(*args))


# -- loop-carried values and buffers ----------------------------------------------------------------

R = sd.itensor.tiled(sd.f32, shape=(1, 32), tile=(1, 8))  # 4 tokens


@sd.kernel
def reverse_pairs(x: R) -> R:
    """Emits the tiles in reverse order, each plus its successor: index arithmetic on a buffer."""
    buf = sd.zeros((5, 1, 8))
    for i in range(4):
        buf[i] = x.read()
    for j in range(4):
        yield buf[3 - j] + buf[4 - j]


@sd.kernel
def prefix_sum(x: R) -> R:
    total = sd.zeros((1, 8))
    unused = sd.zeros((1, 8))
    for i in range(4):
        unused = x.read()  # rebinds a name nobody reads later: no iter_arg for it
        total = total + unused
        yield total


def test_buffer_index_arithmetic() -> None:
    x = _inputs([(1, 32)])[0]
    tiles = list(x.reshape(4, 1, 8)) + [np.zeros((1, 8), np.float32)]
    want = np.concatenate([tiles[3 - j] + tiles[4 - j] for j in range(4)], axis=1)
    _close(reverse_pairs(x), want)
    _close(reverse_pairs.simulate(x), want)


def test_iter_args_only_for_values_read_again() -> None:
    (task,) = [op for op in prefix_sum.module.walk() if isinstance(op, TaskOp)]
    (loop,) = [op for op in task.walk() if isinstance(op, scf.ForOp)]
    # the output stream and `total`; `unused` is rebound in the loop but never read after it
    assert [str(a.type) for a in loop.iter_args] == [str(task.body.block.args[1].type), "tensor<1x8xf32>"]
    x = _inputs([(1, 32)])[0]
    _close(prefix_sum(x), np.cumsum(x.reshape(4, 8), axis=0).reshape(1, 32))


def test_reads_and_writes_are_in_the_loops_that_count_them() -> None:
    (task,) = [op for op in reverse_pairs.module.walk() if isinstance(op, TaskOp)]
    reads = [op for op in task.walk() if isinstance(op, ITensorReadOp)]
    writes = [op for op in task.walk() if isinstance(op, ITensorWriteOp)]
    assert len(reads) == 1 and len(writes) == 1
    assert isinstance(reads[0].parent_op(), scf.ForOp) and isinstance(writes[0].parent_op(), scf.ForOp)


def test_static_values_from_globals_and_shapes() -> None:
    @sd.kernel
    def scaled(x: R) -> R:
        for i in range(R.num_tokens):
            v = x.read()
            yield v * (v.shape[1] * SCALE) + math.pi

    x = _inputs([(1, 32)])[0]
    _close(scaled(x), x * 8 * SCALE + math.pi)


SCALE = 0.25


def test_kernel_repr_and_ports() -> None:
    assert [p.name for p in binary.inputs] == ["x", "c", "r"]
    assert [p.name for p in reductions.outputs] == ["rows_out", "cols_out"]
    assert repr(binary) == f"<sd.kernel binary(x: {T}, c: {COL}, r: {ROW}) -> ({T})>"  # its inputs and outputs


def test_eager_mode_checks_input_shapes() -> None:
    with pytest.raises(sd.ITensorError, match="has shape"):
        prefix_sum(np.zeros((1, 16), np.float32))


def test_buffer_augmented_assignment() -> None:
    @sd.kernel
    def twice_accumulated(x: R) -> R:
        buf = sd.zeros((4, 1, 8))
        for r in range(2):
            for i in range(2):
                buf[2 * r + i] += x.read()
                buf[2 * r + i] *= 3.0
        for i in range(4):
            yield buf[i]

    x = _inputs([(1, 32)])[0]
    _close(twice_accumulated(x), 3 * x)
    _close(twice_accumulated.simulate(x), 3 * x)


def test_docs_example_runs(tmp_path) -> None:
    """The first example of docs/dsl.md, run from a file (kernels need their source)."""
    import pathlib
    import re
    import runpy

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "dsl.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    setup = "import numpy as np\nrng = np.random.default_rng(0)\n"
    setup += "x = rng.standard_normal((1, 768)).astype(np.float32)\nw = rng.standard_normal((768, 3072)).astype(np.float32)\n"
    path = tmp_path / "example.py"
    path.write_text(setup + code.replace("print(ffn_up.module)", "text = str(ffn_up.module)"))
    ns = runpy.run_path(str(path))
    want = ns["x"].astype(np.float64) @ ns["w"]
    want = 0.5 * want * (1 + np.vectorize(math.erf)(want / math.sqrt(2)))
    scale = float(np.abs(want).max())
    for got in (ns["y_eager"], ns["y_sim"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    assert "dataflow.task" in ns["text"]


def test_constant_subexpressions_fold() -> None:
    @sd.kernel
    def folded(x: R) -> R:
        for i in range(4):
            yield x.read() * sd.where(1.0 > 2.0, 3.0, 4.0) + sd.exp(0.0) + sd.maximum(2.0, -1.0)

    x = _inputs([(1, 32)])[0]
    _close(folded(x), 4 * x + 3)
    _close(folded.simulate(x), 4 * x + 3)


H = sd.itensor.tiled(sd.f16, shape=(2, 16), tile=(1, 16))


def test_a_tiles_dtype_and_shape_are_static_values() -> None:
    """`v.dtype` and `v.shape` in a kernel are the tile's: here an f16 tile doubled by an f16 constant tile."""
    @sd.kernel
    def double(x: H) -> H:
        for i in range(2):
            v = x.read()
            yield v * sd.full(v.shape, 2.0, v.dtype)

    x = np.linspace(-4, 4, 32, dtype=np.float16).reshape(2, 16)
    got = double.simulate(x)  # compiled only: eagerly `v.dtype` is numpy's dtype, which sd.full does not take
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, 2 * x)
