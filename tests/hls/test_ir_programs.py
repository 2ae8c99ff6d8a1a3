"""Hand-written IR programs (tests/sim/programs.py, MLIR text) through the backend: element-wise
arith on whole tiles, linalg named ops, chunk / concat / reassociate, join, whole-tensor and
shared-loop converters, in both csim modes against the functional simulator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sim import programs as SP
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from hls_backend import emit_project
from hls_backend.lint import lint_project
from streamdsl.sim.functional import simulate

from .cases import assert_close, csim_modes

PROGRAMS: dict[str, Callable[[], ModuleOp]] = {
    "chain": lambda: SP.chain(3, 2, 16, 4),
    "matvec": lambda: SP.matvec(16, 16, 4),
    "diamond": lambda: SP.diamond(4, 4),
    "split_concat": SP.split_concat,
    "converters": SP.converters,
    "join": SP.round_robin_join,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_ir_program(name: str, tmp_path) -> None:  # noqa: ANN001
    module = PROGRAMS[name]()
    func = next(op for op in module.walk() if isinstance(op, FuncOp))
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal(a.type.get_shape()).astype(np.float32) for a in func.body.block.args]
    want = simulate(module, *xs)
    project = emit_project(module, tmp_path / name)
    for mode, got in csim_modes(project, *xs):
        assert_close(got, want, 1e-5, f"{name} ({mode})")
    assert lint_project(project) == []
