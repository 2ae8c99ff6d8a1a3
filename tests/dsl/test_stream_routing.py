"""Slices of HBM arguments (a DMA of a box of the tensor) and `sd.join` (round-robin merge of
streams, `dataflow.itensor_join`) in dataflow functions, checked against numpy eagerly, in the
functional simulator, in the timed simulator and in g++ csim of the emitted HLS."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from xdsl.dialects.builtin import DenseArrayBase, i64
from xdsl.utils.exceptions import VerifyException

import streamdsl as sd
from streamdsl.dialects.dataflow import DmaLoadOp, ITensorJoinOp
from tests.sim.irtext import parse

R, D = 8, 32
HALF = sd.itensor.tiled(sd.f32, shape=(R, D // 2), tile=(1, 16))
BOX = sd.itensor.tiled(sd.f32, shape=(2, 16), tile=(1, 16))
ROWS = sd.itensor.tiled(sd.f32, shape=(R // 2, D), tile=(1, 16))
WHOLE = sd.itensor.tiled(sd.f32, shape=(R, D), tile=(1, 16))


def _rng(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@sd.kernel
def scale(x: HALF, y: HALF) -> HALF:
    for i in range(R):
        yield x.read() * 2.0 - y.read()


@sd.kernel
def box_sum(b: BOX) -> sd.itensor.tiled(sd.f32, shape=(1, 16), tile=(1, 16)):
    yield b.read() + b.read()


@sd.dataflow
def halves(x: sd.Tensor[sd.f32, (R, D)]):
    # the two halves of one tensor are two DMAs; a box in the middle (overlapping both) a third
    return scale(x[:, :16], x[:, 16:]), box_sum(x[3:5, 8:24])


def halves_ref(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 2 * x[:, :16] - x[:, 16:], x[3:4, 8:24] + x[4:5, 8:24]


@sd.kernel
def lane(x: ROWS) -> ROWS:
    for i in range(R // 2 * 2):
        yield x.read() + 1.0


@sd.dataflow
def lanes(x: sd.Tensor[sd.f32, (R, D)]):
    top, bottom = sd.chunk(x, 2, dim=0)  # boxes of the HBM argument
    return sd.join([lane(top), lane(bottom)], WHOLE)


def lanes_ref(x: np.ndarray) -> np.ndarray:
    """Whole token k (row k // 2, tile column k % 2) is the next token of lane k % 2."""
    tokens = [t for pair in zip(_tiles(x[: R // 2] + 1), _tiles(x[R // 2:] + 1)) for t in pair]
    return np.concatenate([np.concatenate(tokens[r * 2:(r + 1) * 2], axis=1) for r in range(R)], axis=0)


def _tiles(a: np.ndarray) -> list[np.ndarray]:
    return [a[r:r + 1, c:c + 16] for r in range(a.shape[0]) for c in range(0, a.shape[1], 16)]


def test_slices_of_an_hbm_argument_are_dmas_of_boxes() -> None:
    x = _rng(1, R, D)
    for got in (halves(x), halves.simulate(x)):
        for g, w in zip(got, halves_ref(x)):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    loads = [op for op in halves.module.walk() if isinstance(op, DmaLoadOp)]
    assert sorted(tuple(s.start for s in op.box) for op in loads) == [(0, 0), (0, 16), (3, 8)]
    assert "offsets = array<i64: 3, 8>" in str(halves.module)


def test_join_interleaves_lanes_round_robin() -> None:
    x = _rng(2, R, D)
    want = lanes_ref(x)
    np.testing.assert_allclose(lanes(x), want, rtol=1e-6)
    np.testing.assert_allclose(lanes.simulate(x), want, rtol=1e-6)
    assert sum(isinstance(op, ITensorJoinOp) for op in lanes.module.walk()) == 1


def test_join_and_boxes_in_the_timed_simulator() -> None:
    """The joined lanes run in parallel: the whole takes about as long as one lane streams."""
    design = sd.compile(lanes)
    both = design.timed_simulation().makespan
    single = sd.compile(lane.program).timed_simulation().makespan
    assert single <= both < 2 * single


def test_ir_with_offsets_round_trips_and_is_checked() -> None:
    text = str(halves.module)
    assert str(parse(text)) == text
    load = next(op for op in parse(text).walk() if isinstance(op, DmaLoadOp) and op.offsets is not None)
    load.offsets = DenseArrayBase.from_list(i64, [7, 8])  # the box would reach row 9 of 8
    with pytest.raises(VerifyException, match="does not lie inside the tensor"):
        load.verify()


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("name", ["halves", "lanes"])
def test_boxes_and_join_in_csim(name: str, tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project
    from tests.hls.cases import assert_close, csim_modes

    prog, ref = {"halves": (halves, halves_ref), "lanes": (lanes, lanes_ref)}[name]
    x = _rng(3, R, D)
    project = emit_project(sd.compile(prog), tmp_path / name)
    want = ref(x)
    for mode, got in csim_modes(project, x):
        assert_close(got, want, 1e-6, f"{name} {mode} csim")


def test_eager_join_needs_kernel_outputs() -> None:
    with pytest.raises(TypeError, match="pass kernel outputs"):
        sd.join([np.zeros((R // 2, D), np.float32)] * 2, WHOLE)


# -- variadic ports --------------------------------------------------------------------------

PART = sd.itensor.tiled(sd.f32, shape=(R, 16), tile=(1, 16))


@sd.kernel
def mean_of(scale: PART, *parts: PART) -> PART:
    """The mean of any number of streams, times a fourth one: *parts is a static tuple of ports."""
    for r in range(R):
        acc = sd.zeros((1, 16))
        for p in parts:  # unrolled: one read of each port per row
            acc = acc + p.read()
        yield acc / len(parts) * scale.read()


@sd.dataflow
def means(x: sd.Tensor[sd.f32, (R, 64)]):
    a, b, c, d = sd.chunk(x, 4, dim=1)
    return mean_of(a, b, c), mean_of(a, b, c, d)


def means_ref(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b, c, d = np.split(x, 4, axis=1)
    return (b + c) / 2 * a, (b + c + d) / 3 * a


def test_variadic_ports_are_compiled_per_call() -> None:
    x = _rng(4, R, 64)
    want = means_ref(x)
    for got in (means(x), means.simulate(x), sd.compile(means).simulate(x)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    tasks = [op.sym_name.data for op in means.module.walk() if op.name == "dataflow.task"]
    assert tasks == ["mean_of", "mean_of_1"]
    assert [len(k.inputs) for k in (mean_of.with_arity(2), mean_of.with_arity(3))] == [3, 4]
    assert mean_of.with_arity(3).inputs[3].name == "parts.2"
    np.testing.assert_allclose(mean_of.with_arity(2).simulate(*np.split(x, 4, axis=1)[:3]), want[0], rtol=1e-6)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_variadic_ports_in_csim(tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project, run_csim

    x = _rng(5, R, 64)
    project = emit_project(sd.compile(means), tmp_path / "means")
    for g, w in zip(run_csim(project, x, threaded=True), means_ref(x)):
        np.testing.assert_allclose(g, w, rtol=1e-6)


# -- variadic dataflow arguments ---------------------------------------------------------------

LIMIT = sd.Scalar[sd.i32, R]


@sd.kernel
def masked_mean(n: LIMIT, *parts: PART) -> PART:
    """The mean of the parts in rows below n, zero from row n on (a scalar after *parts in the caller)."""
    for r in range(R):
        acc = sd.zeros((1, 16))
        for p in parts:
            acc = acc + p.read()
        yield sd.where(sd.iota((1, 16)) * 0.0 + r >= n, 0.0, acc / len(parts))


@sd.dataflow
def mean_rows(scale: sd.Tensor[sd.f32, (R, 16)], *rows: sd.Tensor[sd.f32, (R, 16)], n: LIMIT):
    """Any number of HBM tensors in *rows; the scalar is keyword-only (after them in the program)."""
    return mean_of(scale, masked_mean(n, *rows))


def test_variadic_dataflow_arguments_make_one_program_per_count() -> None:
    x = _rng(6, 5, R, 16)
    assert isinstance(mean_rows, sd.VariadicDataflow)
    for count in (1, 2, 4):
        prog = mean_rows.with_arity(count)
        assert prog is mean_rows.with_arity(count)  # built once per count
        assert prog.input_names == ["scale", *(f"rows.{i}" for i in range(count)), "n"]
        design = sd.compile(prog)
        for n in (0, 2, R):
            want = x[1:1 + count].mean(axis=0) * x[0]
            want[n:] = 0.0
            args = (x[0], *x[1:1 + count], n)
            for got in (mean_rows(*args), prog(*args), prog.simulate(*args), design.simulate(*args)):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@sd.dataflow
def two_means(x: sd.Tensor[sd.f32, (R, 16)], y: sd.Tensor[sd.f32, (R, 16)], n: LIMIT):
    return mean_rows(x, x, y, n=n), mean_rows(y, x, n=n)  # inlined, with two and one tensors


def test_a_variadic_dataflow_function_called_in_another_is_inlined() -> None:
    x, y = _rng(7, 2, R, 16)
    tasks = [op.sym_name.data for op in two_means.module.walk() if op.name == "dataflow.task"]
    assert sorted(tasks) == ["masked_mean", "masked_mean_1", "mean_of", "mean_of_1"]
    for got, want in zip(sd.compile(two_means).simulate(x, y, 3), two_means(x, y, 3), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(two_means(x, y, R)[1], x * y, rtol=1e-6)
