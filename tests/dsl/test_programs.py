"""DSL programs: their IR verifies and has the expected structure, eager mode and the functional
simulator (which runs the IR) both agree with numpy / torch references on several shapes."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

from streamdsl.dialects.dataflow import DmaLoadOp, DmaStoreOp, ITensorConverterOp, ITensorForkOp, TaskOp

from . import programs as P

CASES = {
    "elementwise_chain[2x64/16]": lambda: P.elementwise_chain(2, 64, 16),
    "elementwise_chain[3x96/32]": lambda: P.elementwise_chain(3, 96, 32),
    "row_stats[4x64/16]": lambda: P.row_stats(4, 64, 16),
    "row_stats[1x128/128]": lambda: P.row_stats(1, 128, 128),
    "layernorm[2x64/16]": lambda: P.layernorm(2, 64, 16),
    "layernorm[3x96/32]": lambda: P.layernorm(3, 96, 32),
    "rmsnorm[2x64/16]": lambda: P.rmsnorm(2, 64, 16),
    "rmsnorm[1x128/64]": lambda: P.rmsnorm(1, 128, 64),
    "softmax[2x64/16]": lambda: P.softmax(2, 64, 16),
    "softmax[4x48/8]": lambda: P.softmax(4, 48, 8),
    "matvec[64x128/32]": lambda: P.matvec(64, 128, 32),
    "matvec[96x32/16]": lambda: P.matvec(96, 32, 16),
    "matmul[32x64x48/16]": lambda: P.matmul(32, 64, 48, 16),
    "matmul[16x16x32/8]": lambda: P.matmul(16, 16, 32, 8),
    "transpose[32x64/16]": lambda: P.transpose(32, 64, 16),
    "transpose[24x16/8]": lambda: P.transpose(24, 16, 8),
    "cast_only[24x8/8]": lambda: P.transpose(24, 8, 8),  # one tile column: the two orders are one stream
    "fork_join[2x64/16]": lambda: P.fork_join(2, 64, 16),
    "fork_join[1x32/32]": lambda: P.fork_join(1, 32, 32),
    "diamond[2x64/16]": lambda: P.diamond(2, 64, 16),
    "diamond[3x32/8]": lambda: P.diamond(3, 32, 8),
    "gelu_mlp[64x128/32]": lambda: P.gelu_mlp(64, 128, 32),
    "gelu_mlp[32x64/16]": lambda: P.gelu_mlp(32, 64, 16),
    "silu_mlp[64x96/32]": lambda: P.silu_mlp(64, 96, 32),
    "silu_mlp[32x32/16]": lambda: P.silu_mlp(32, 32, 16),
    "matvec_cached[64x96/32]": lambda: P.matvec_cached(64, 96, 32),
    "matvec_cached[48x16/16]": lambda: P.matvec_cached(48, 16, 16),
    "split_sign[2x64/16]": lambda: P.split_sign(2, 64, 16),
    "split_sign[1x16/4]": lambda: P.split_sign(1, 16, 4),
}


def _as_tuple(x: object) -> tuple[np.ndarray, ...]:
    return tuple(x) if isinstance(x, tuple) else (x,)


def _check(got: object, want: object) -> None:
    got_t, want_t = _as_tuple(got), _as_tuple(want)
    assert len(got_t) == len(want_t)
    for g, w in zip(got_t, want_t):
        w = np.asarray(w)
        assert g.shape == w.shape
        assert g.dtype == np.float32
        scale = max(float(np.abs(w).max()), 1.0)  # relative to the output's magnitude
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def built() -> dict[str, P.Case]:
    return {}


def _case(name: str, built: dict[str, P.Case]) -> P.Case:
    if name not in built:
        built[name] = CASES[name]()
    return built[name]


@pytest.mark.parametrize("name", CASES)
def test_ir_verifies_and_round_trips(name: str, built: dict[str, P.Case]) -> None:
    from xdsl.context import Context
    from xdsl.dialects import get_all_dialects
    from xdsl.parser import Parser

    from streamdsl.dialects.dataflow import DATAFLOW

    prog = _case(name, built).program
    prog.verify()
    ctx = Context()
    for dialect_name, factory in get_all_dialects().items():
        ctx.register_dialect(dialect_name, factory)
    ctx.load_dialect(DATAFLOW)
    reparsed = Parser(ctx, str(prog.module)).parse_module()
    reparsed.verify()
    assert isinstance(reparsed, ModuleOp)


@pytest.mark.parametrize("name", CASES)
def test_eager_matches_reference(name: str, built: dict[str, P.Case]) -> None:
    case = _case(name, built)
    args = case.inputs(np.random.default_rng(0))
    _check(case.program(*args), case.reference(*args))


@pytest.mark.parametrize("name", CASES)
def test_simulation_matches_reference(name: str, built: dict[str, P.Case]) -> None:
    case = _case(name, built)
    args = case.inputs(np.random.default_rng(1))
    _check(case.program.simulate(*args, **case.sim_options), case.reference(*args))


def test_diamond_deadlocks_with_default_fifos_and_completes_when_deep_enough() -> None:
    import streamdsl as sd

    case = P.diamond(2, 64, 16)
    x = case.inputs(np.random.default_rng(3))
    with pytest.raises(sd.DeadlockError) as err:
        case.program.simulate(*x)
    assert {"softmax", "mul"} <= set(err.value.blocked)
    assert "fork(copy)->mul" in str(err.value)
    _check(case.program.simulate(*x, depths={"fork(copy)->mul": 6}), case.reference(*x))


def _ops(prog: object, kind: type) -> list:
    return [op for op in prog.module.walk() if isinstance(op, kind)]


def test_transpose_gets_a_whole_tensor_converter() -> None:
    prog = P.transpose(32, 64, 16).program
    (conv,) = _ops(prog, ITensorConverterOp)
    assert conv.buffer_shape is None and conv.shared_loops is None  # fallback: converter planning refines it
    src, dst = conv.source.type.itensor, conv.result.type.itensor
    assert src.tokens()[1] == (0, 16) and dst.tokens()[1] == (16, 0)


def test_no_converter_when_types_agree_and_dma_uses_consumer_order() -> None:
    prog = P.matvec(64, 128, 32).program
    assert not _ops(prog, ITensorConverterOp)
    loads = _ops(prog, DmaLoadOp)
    (task,) = _ops(prog, TaskOp)
    assert [ld.result.type for ld in loads] == [a.type for a in task.body.block.args[:2]]
    (store,) = _ops(prog, DmaStoreOp)
    assert store.source.type == task.results[0].type


def test_fork_for_values_used_twice() -> None:
    prog = P.fork_join(2, 64, 16).program
    (fork,) = _ops(prog, ITensorForkOp)
    assert len(fork.outputs) == 3 and all(len(list(o.uses)) == 1 for o in fork.outputs)
    prog = P.split_sign(2, 64, 16).program  # `pos` is returned and consumed
    (fork,) = _ops(prog, ITensorForkOp)
    assert len(fork.outputs) == 2


def test_task_names_unique_when_a_kernel_is_called_twice() -> None:
    import streamdsl as sd

    mv = P.matvec_kernel(32, 32, 16)

    @sd.dataflow
    def twice(x: sd.Tensor[sd.f32, (1, 32)], w1: sd.Tensor[sd.f32, (32, 32)], w2: sd.Tensor[sd.f32, (32, 32)]):
        return mv(mv(x, w1), w2)

    names = [t.sym_name.data for t in _ops(twice, TaskOp)]
    assert names == ["matvec", "matvec_1"]
    rng = np.random.default_rng(2)
    x, w1, w2 = (rng.standard_normal(s).astype(np.float32) for s in ((1, 32), (32, 32), (32, 32)))
    np.testing.assert_allclose(twice(x, w1, w2), x @ w1 @ w2, rtol=1e-4, atol=1e-4)


def test_kernel_alone_is_a_program() -> None:
    k = P.softmax_kernel(2, 32, 8)
    prog = k.program.verify()
    assert [t.sym_name.data for t in _ops(prog, TaskOp)] == ["softmax"]
    assert prog.input_names == ["x"]


def test_planned_converter_still_simulates_correctly() -> None:
    """Converter planning (lowering) sizes the DSL's whole-tensor converter; the result is unchanged."""
    from xdsl.context import Context

    from lowering.transforms.insert_converters import InsertConvertersPass
    from streamdsl.program import Program

    case = P.transpose(32, 64, 16)
    module = case.program.module.clone()
    InsertConvertersPass().apply(Context(), module)
    (conv,) = [op for op in module.walk() if isinstance(op, ITensorConverterOp)]
    assert conv.buffer_shape is not None
    x = case.inputs(np.random.default_rng(4))
    _check(Program(module, case.program.name).simulate(*x), case.reference(*x))


def test_dataflow_functions_compose() -> None:
    """A dataflow program called inside another is inlined: its kernels join the outer graph."""
    import streamdsl as sd

    inner = P.elementwise_chain(2, 64, 16)
    soft = P.softmax(2, 64, 16)

    @sd.dataflow
    def outer(x: sd.Tensor[sd.f32, (2, 64)]):
        return soft.program(inner.program(x))

    assert [t.sym_name.data for t in _ops(outer, TaskOp)] == ["scale_shift", "activate", "softmax"]
    x = inner.inputs(np.random.default_rng(5))[0]
    want = soft.reference(inner.reference(x))
    _check(outer(x), want)
    _check(outer.simulate(x), want)
