"""Hand-written IR programs (tests/sim/programs.py, MLIR text) through the backend: element-wise
arith on whole tiles, linalg named ops, chunk / concat / reassociate, join, whole-tensor and
shared-loop converters, in both csim modes against the functional simulator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from hls_backend import build_csim, emit_project, run_csim
from hls_backend.lint import lint_project
from sim import programs as SP
from sim.irtext import loop, program, task, tensor, tile, ty
from streamdsl.sim.functional import simulate

from .cases import WARNINGS, assert_close


def round_robin_join(n: int = 6, t: int = 8) -> ModuleOp:
    """x forked to two lanes: `even` keeps tokens 0, 2, ... (x2), `odd` tokens 1, 3, ... (x3);
    itensor_join takes them back round robin."""
    X = SP.rows(1, n * t, t)

    def lane(name: str, src: str, dst: str, keep: str, factor: float) -> str:
        inner = f"""        %a = dataflow.itensor_read %{src}_p : {ty(X)} -> {tile(X)}
        %b = dataflow.itensor_read %{src}_p : {ty(X)} -> {tile(X)}
        %k = arith.constant dense<{factor}> : {tile(X)}
        %v = arith.mulf %{keep}, %k : {tile(X)}
        %w = dataflow.itensor_write %v, %ch : {tile(X)} -> {ty(X)}
        scf.yield %w : {ty(X)}"""
        body = loop(n // 2, inner, [("ch", f"%{dst}_o", ty(X))], results="f") + f"\n      dataflow.yield %f : {ty(X)}"
        return task(name, [(src, X)], [(dst, X)], body)

    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, n * t))} -> {ty(X)}
    %xa, %xb = dataflow.itensor_fork %xs : {ty(X)} -> {ty(X)}, {ty(X)}
{lane("even", "xa", "ea", "a", 2.0)}
{lane("odd", "xb", "ob", "b", 3.0)}
    %ys = dataflow.itensor_join %ea, %ob : {ty(X)}, {ty(X)} -> {ty(X)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((1, n * t))}
    dataflow.yield %yt : {tensor((1, n * t))}"""
    return program("lanes", [("x", (1, n * t))], [(1, n * t)], body)


PROGRAMS: dict[str, Callable[[], ModuleOp]] = {
    "chain": lambda: SP.chain(3, 2, 16, 4),
    "matvec": lambda: SP.matvec(16, 16, 4),
    "diamond": lambda: SP.diamond(4, 4),
    "split_concat": SP.split_concat,
    "converters": SP.converters,
    "join": round_robin_join,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_ir_program(name: str, tmp_path) -> None:  # noqa: ANN001
    module = PROGRAMS[name]()
    func = next(op for op in module.walk() if isinstance(op, FuncOp))
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal(a.type.get_shape()).astype(np.float32) for a in func.body.block.args]
    want = simulate(module, *xs)
    project = emit_project(module, tmp_path / name)
    for threaded in (False, True):
        build_csim(project, threaded, extra_flags=WARNINGS)
        assert_close(run_csim(project, *xs, threaded=threaded), want, 1e-5, f"{name} ({'threaded' if threaded else 'sequential'})")
    assert lint_project(project) == []
