"""Performance hints: `@sd.kernel(lanes=, ii=)` and `sd.hint(x, lanes=)` travel in the IR, the
timing model honours them (measured makespans move the way the hint says), the HLS emitter
pipelines the task's loops at the hinted II, and results do not change."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.linalg.ops import MatmulOp

import streamdsl as sd
from streamdsl.dialects.dataflow import TaskOp

M, K, N, T = 64, 64, 64, 16
X = sd.itensor.tiled(sd.f32, shape=(M, K), tile=(M, T))
W = sd.itensor.tiled(sd.f32, shape=(K, N), tile=(T, N))
Y = sd.itensor.tiled(sd.f32, shape=(M, N), tile=(M, N))


def build(lanes: int | None = None, ii: int | None = None, op_lanes: int | None = None) -> sd.DataflowProgram:
    @sd.kernel(lanes=lanes, ii=ii)
    def mm(x: X, w: W) -> Y:
        acc = sd.zeros((M, N))
        for k in range(K // T):
            p = x.read() @ w.read()
            acc = acc + (p if op_lanes is None else sd.hint(p, lanes=op_lanes))
        yield acc

    @sd.dataflow
    def prog(x: sd.Tensor[sd.f32, (M, K)], w: sd.Tensor[sd.f32, (K, N)]):
        return mm(x, w)

    return prog


def _makespan(prog: sd.DataflowProgram) -> int:
    timed = sd.compile(prog).timed_simulation()
    assert timed.deadlock is None
    return timed.makespan


def _task(prog: sd.DataflowProgram) -> TaskOp:
    (task,) = [op for op in prog.module.walk() if isinstance(op, TaskOp)]
    return task


def test_hints_are_carried_in_the_ir() -> None:
    prog = build(lanes=32, ii=3, op_lanes=128)
    task = _task(prog)
    assert task.attributes["unroll"].value.data == 32
    assert task.attributes["ii"].value.data == 3
    (matmul,) = [op for op in task.walk() if isinstance(op, MatmulOp)]
    assert matmul.attributes["unroll"].value.data == 128
    assert "unroll" not in build().module.body.ops.first.attributes  # no hint, no attribute


def test_timing_model_honours_lanes() -> None:
    """The matmul dominates: 16x fewer lanes takes several times longer, 4x more is faster."""
    slow, default, fast = (_makespan(build(lanes=n)) for n in (4, 64, 256))
    assert slow > 4 * default and fast < default
    # a per-op hint overrides the kernel's lanes for that op only
    assert _makespan(build(lanes=4, op_lanes=256)) < slow


E = sd.itensor.tiled(sd.f32, shape=(256, 16), tile=(1, 16))


def stream(ii: int | None) -> sd.DataflowProgram:
    @sd.kernel(ii=ii)
    def scale(x: E) -> E:
        for i in range(256):
            yield x.read() * 2.0

    @sd.dataflow
    def prog(x: sd.Tensor[sd.f32, (256, 16)]):
        return scale(x)

    return prog


def test_timing_model_honours_ii() -> None:
    base, slowed = _makespan(stream(None)), _makespan(stream(4))
    # 256 iterations, one start every 4 cycles; unhinted, the DMA (2 HBM beats a token) sets the pace
    assert slowed >= 4 * 255 > base


def test_results_do_not_change() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    prog = build(lanes=8, ii=2, op_lanes=16)
    for got in (prog(x, w), prog.simulate(x, w)):
        np.testing.assert_allclose(got, x @ w, rtol=1e-4, atol=1e-4)


def test_hls_pipelines_at_the_hinted_ii(tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project

    project = emit_project(sd.compile(stream(3)), tmp_path / "p")
    source = "\n".join(p.read_text() for p in project.rglob("*.cpp"))
    assert "#pragma HLS pipeline II=3" in source
    plain = emit_project(sd.compile(stream(None)), tmp_path / "q")
    assert "II=3" not in "\n".join(p.read_text() for p in plain.rglob("*.cpp"))


def test_eager_hint_is_identity() -> None:
    a = np.ones((2, 2), np.float32)
    assert sd.hint(a, lanes=4) is a
