"""Tiles streamed through (docs/hls.md "Tiles streamed through"): an integer tile whose one reader
keeps pace with its beats is consumed beat by beat, so the count holds two beats of it in
registers, the model starts its reader at the first beat and the emitted C++ declares it
completely partitioned; any other tile keeps the memory of words it had."""

from __future__ import annotations

import re

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_kernel, emit_project, model_cycles
from lowering import timing
from lowering.memory import design_memory, task_tensors
from lowering.timing import streams_through, task_timing, unroll_lanes
from streamdsl.dialects.dataflow import ITensorReadOp, TaskOp

from .cases import csim_modes

K, N, ROWS = 128, 64, 32  # a (32, 64) tile: 2,048 elements, 16 beats of 1,024 bits in i8


def program(lanes: int, dtype: sd.DType = sd.i8, rows: int = ROWS) -> sd.DataflowProgram:
    """x (1, K) @ w (K, N) in row tiles of `rows`, the sums of the K / rows tiles accumulated."""
    X = sd.itensor.tiled(dtype, shape=(1, K), tile=(1, K))
    W = sd.itensor.tiled(dtype, shape=(K, N), tile=(rows, N))
    acc_type = sd.i32 if dtype == sd.i8 else dtype
    Y = sd.itensor.tiled(acc_type, shape=(1, N), tile=(1, N))

    @sd.kernel(lanes=lanes)
    def matvec(x: X, w: W) -> Y:
        xb = sd.reshape(x.read(), (K // rows, 1, rows))
        acc = sd.zeros((1, N), acc_type)
        for g in range(K // rows):
            acc += xb[g] @ w.read()
        yield acc

    @sd.dataflow
    def run(x: sd.Tensor[dtype, (1, K)], w: sd.Tensor[dtype, (K, N)]):
        return matvec(x, w)

    return run


def _task(design: sd.CompiledDesign) -> TaskOp:
    return next(t for t in design.kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data == "matvec")


def _tile(task: TaskOp, rows: int = ROWS):  # noqa: ANN202 - the weight tile's SSA value
    return next(op.results[0] for op in task.body.walk() if isinstance(op, ITensorReadOp) and op.results[0].type.get_shape()[0] == rows)


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (1, K), dtype=np.int8), rng.integers(-128, 128, (K, N), dtype=np.int8)


@pytest.mark.parametrize("lanes", [128, 256])
def test_a_tile_at_its_beats_pace_streams_through_and_matches_in_csim(tmp_path, lanes: int) -> None:  # noqa: ANN001
    """At 128 lanes the (32, 64) int8 tile's 2,048 MACs issue in 16 cycles, its 16 beats' worth
    (at 256, in 8): it streams through. The count holds 2 beats (2,048 bits, registers: no memory of
    its own), the emitted C++ partitions it completely, and csim computes numpy's sums in the
    model's cycles."""
    design = sd.compile(program(lanes))
    task = _task(design)
    assert streams_through(_tile(task), unroll_lanes(task))
    assert 2 * 1024 in dict(task_tensors(task)).values()
    assert not [m for m in design_memory(design)["memories"] if m["kind"] == "local" and m["name"].startswith("matvec")]
    code = emit_kernel(design).code
    assert re.search(r"t_32x64_i8 (\w+);\n\s*#pragma HLS array_partition variable=\1\.v type=complete  // streamed through", code)
    assert "array_reshape" not in code

    x, w = _inputs()
    want = x.astype(np.int64) @ w.astype(np.int64)
    np.testing.assert_array_equal(np.reshape(design.simulate(x, w), want.shape), want)
    project = emit_project(design, tmp_path / "hls")
    for mode, got in csim_modes(project, x, w):
        np.testing.assert_array_equal(np.reshape(got[0], want.shape), want, err_msg=mode)
    counted, model = csim_cycles(project, x, w), model_cycles(design)
    for node, clock in counted["processes"].items():
        assert 1 / 1.2 <= clock["busy"] / max(1, model[node]) <= 1.2, (node, clock["busy"], model[node])


@pytest.mark.parametrize(("lanes", "shallower"), [(128, 16 - 2), (256, 8 - 1)])
def test_the_reader_starts_at_the_first_beat(monkeypatch, lanes: int, shallower: int) -> None:  # noqa: ANN001
    """The model's pipelined loop with the tile streamed through is the same loop, the same II,
    with the reader starting once its first beat is in (cycle 1) and its activation slice `xb[g]`
    too (cycle 2: a buffer read) rather than after the last beat (cycle 16), and ending its
    latency after that last beat. At 128 lanes its 2,048 MACs issue over 16 cycles: 16 - 2 cycles
    less deep; at 256 over 8, so the last beat, not the issue, ends it: 8 - 1 cycles less deep."""
    design = sd.compile(program(lanes))
    streamed = task_timing(_task(design)).loops
    monkeypatch.setattr(timing, "streams_through", lambda *_: False)
    held = task_timing(_task(design)).loops
    (loop,) = [op for op in streamed if streamed[op].ii == 16]
    assert held[loop].ii == 16
    assert held[loop].depth - streamed[loop].depth == shallower


@pytest.mark.parametrize(("lanes", "dtype", "why"), [(64, sd.i8, "32 cycles of MACs for 16 beats"), (128, sd.f32, "a float sum")])
def test_any_other_tile_keeps_its_memory(lanes: int, dtype: sd.DType, why: str) -> None:
    """A reader slower than the beats (the beats would pile up) or a float reduction (its order is
    the numerics) keeps the tile as a memory of 1,024-bit words, counted and declared so."""
    design = sd.compile(program(lanes, dtype))
    task = _task(design)
    assert not streams_through(_tile(task), unroll_lanes(task) or 64), why
    local = [m for m in design_memory(design)["memories"] if m["kind"] == "local" and m["name"].startswith("matvec")]
    assert [(m["width"], m["resource"], m["count"]) for m in local] == [(1024, "BRAM36", 15)]
    assert re.search(r"array_reshape variable=\w+\.v type=cyclic factor=\d+\n\s*#pragma HLS bind_storage variable=\w+\.v "
                     r"type=ram_s2p impl=bram", emit_kernel(design).code)


@pytest.mark.parametrize(("rows", "held", "streamed"), [(ROWS, 16_384, 2_048), (2, 1_024, 1_024)])
def test_a_streamed_tile_is_counted_as_two_beats_at_most(rows: int, held: int, streamed: int, monkeypatch) -> None:  # noqa: ANN001
    """The count's bits of the tile streamed through, against the same task with the tile held: a
    (32, 64) int8 tile of 16 beats becomes two beats (2,048 bits); a (2, 64) one, a single beat,
    stays itself (1,024 bits), never more than the tile."""
    from lowering import memory

    task = _task(sd.compile(program(128, rows=rows)))
    assert streams_through(_tile(task, rows), unroll_lanes(task))
    now = sorted(bits for _, bits in task_tensors(task))
    monkeypatch.setattr(memory, "streams_through", lambda *_: False)
    before = sorted(bits for _, bits in task_tensors(task))
    assert sorted(now) == sorted([*before[:before.index(held)], streamed, *before[before.index(held) + 1:]])
