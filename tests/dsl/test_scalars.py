"""Run-time scalars (`sd.Scalar`, `sd.range`): one compiled program for every value up to a declared
maximum, checked against numpy in eager mode, the functional simulator and the timed simulator;
the IR form round-trips; misuse is a located error."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.dialects.linalg import Linalg
from xdsl.dialects.math import Math
from xdsl.dialects.scf import Scf
from xdsl.dialects.tensor import Tensor
from xdsl.parser import Parser

import streamdsl as sd
from streamdsl.dialects.dataflow import DATAFLOW
from streamdsl.scalars import ScalarError, specialise
from tests.dsl.test_errors import expect_error

ROWS, T, MAXN = 3, 8, 40
X = sd.itensor(sd.f32, tile=(1, T), trips=[ROWS, MAXN // T], steps=[1, T], map=lambda r, j: (r, j))
Y = sd.itensor.tiled(sd.f32, shape=(ROWS, 1), tile=(1, 1))


@sd.kernel
def prefix_sum(x: X, n: sd.Scalar[sd.i32, MAXN]) -> Y:
    """Sum of the first n entries of each row: only ceil(n / T) tiles are streamed."""
    for r in range(ROWS):
        acc = sd.zeros((1, 1))
        for j in sd.range((n + T - 1) // T):
            pos = sd.iota((1, T)) + j * T
            acc += sd.sum(sd.where(pos < n, x.read(), 0.0), axis=1)
        yield acc


@sd.dataflow
def summed(x: sd.Tensor[sd.f32, (ROWS, MAXN)], n: sd.Scalar[sd.i32, MAXN]):
    return prefix_sum(x, n)


def _x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((ROWS, MAXN)).astype(np.float32)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 23, MAXN])
def test_one_program_every_length(n: int) -> None:
    x = _x()
    want = x[:, :n].sum(axis=1, keepdims=True)
    design = sd.compile(summed)
    np.testing.assert_allclose(summed(x, n), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(design.simulate(x, n), want, rtol=1e-5, atol=1e-5)  # the worst-case depths
    timed = design.timed_simulation(scalars={"n": n})
    assert timed.makespan is not None and timed.deadlock is None


def test_streams_carry_the_run_time_count() -> None:
    record: dict = {}
    for n, tiles in ((1, 1), (17, 3), (MAXN, MAXN // T)):
        summed.simulate(_x(), n, record=record)
        assert record["tokens"]["dma_load(x)->prefix_sum"] == ROWS * tiles


def test_ir_form_round_trips_and_names_the_scalar() -> None:
    text = str(summed.module)
    assert 'scalars = ["n"]' in text and "scalar_max = array<i64: 40>" in text
    assert 'bounds [1: (d0, d1)[s0] -> (((s0 + 7) floordiv 8)) ["n"]]' in text and "max_trips = 5" in text
    ctx = Context(allow_unregistered=False)
    for dialect in (Builtin, DATAFLOW, Func, Arith, Scf, Linalg, Tensor, Math):
        ctx.load_dialect(dialect)
    parsed = Parser(ctx, text).parse_module()
    parsed.verify()
    assert str(parsed) == text


def test_specialised_program_is_static() -> None:
    static = specialise(summed.module, {"n": 12})
    text = str(static)
    assert "i32" not in text.split("dataflow.kernel")[1].split(")")[0]  # the kernel takes no scalar
    assert 'bounds [1: (d0, d1) -> (2) []]' in text


def test_scalar_beyond_its_maximum_is_an_error() -> None:
    with pytest.raises(ScalarError, match=r"scalar n = 41 is outside \[0, 40\]"):
        summed.simulate(_x(), MAXN + 1)
    with pytest.raises(ScalarError, match="no value for its run-time scalar 'n'"):
        specialise(summed.module, {})


def test_range_without_a_maximum_is_located() -> None:
    def build():
        @sd.kernel
        def k(x: X, n: sd.Scalar[sd.i32]) -> Y:
            for r in range(ROWS):
                acc = sd.zeros((1, 1))
                for j in sd.range(n // T):  # <- error
                    acc += sd.sum(x.read(), axis=1)
                yield acc

    expect_error(build, "n has no maximum; declare the scalar's (sd.Scalar[sd.i32, 64])")


def test_scalar_used_as_a_tile_port_is_located() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (ROWS, MAXN)], n: sd.Scalar[sd.i32, MAXN]):
            return prefix_sum(n, n)  # <- error

    expect_error(build, "argument 'x' of kernel 'prefix_sum' is a stream port")


def test_scalar_maximum_larger_than_the_kernels_is_located() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (ROWS, MAXN)], n: sd.Scalar[sd.i32, 2 * MAXN]):
            return prefix_sum(x, n)  # <- error

    expect_error(build, "n may reach 80 but scalar 'n' of kernel 'prefix_sum' is at most 40")


def test_dataflow_scalar_needs_a_maximum() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (ROWS, MAXN)], n: sd.Scalar[sd.i32]):  # <- error
            return prefix_sum(x, n)

    with pytest.raises(sd.DSLError, match="scalar argument 'n' needs a declared maximum"):
        build()


def test_port_read_outside_a_matching_loop_is_located() -> None:
    Z = sd.itensor.tiled(sd.f32, shape=(ROWS, MAXN), tile=(ROWS, T))  # one loop of 5: no row loop

    def build():
        @sd.kernel
        def k(x: Z, n: sd.Scalar[sd.i32, MAXN]) -> Y:
            for r in range(ROWS):
                acc = sd.zeros((1, 1))
                for j in sd.range(n // (3 * T)):
                    acc += sd.sum(sd.sum(x.read(), axis=1), axis=0)  # <- error
                yield acc

    with pytest.raises(sd.DSLError):
        build()


def test_a_run_time_loop_without_a_port_loop_of_its_trips_is_located() -> None:
    """The port's 10 tokens come as 2 rows of 5; the kernel reads them as at most 5 groups of 2."""
    R = sd.itensor(sd.f32, tile=(1, T), trips=[2, MAXN // T], steps=[1, T], map=lambda r, j: (r, j))

    def build():
        @sd.kernel
        def k(x: R, n: sd.Scalar[sd.i32, MAXN]) -> Y:
            acc = sd.zeros((1, 1))
            for j in sd.range(n // T):
                for r in range(2):
                    acc += sd.sum(x.read(), axis=1)  # <- error
            for r in range(ROWS):
                yield acc

    with pytest.raises(sd.DSLError) as info:
        build()
    assert info.value.reason == (f"port 'x' is accessed in a run-time loop (sd.range, at most 5 times) but its type {R} has no "
                                 "loop of 5 trips with 2 token(s) inside; give the port a loop per kernel loop around the access")


def test_triangular_prefill_streams_only_the_lower_triangle() -> None:
    """Tutorial 05's key loop runs `sd.range(i + 1)`: the K stream's type gets a bound that
    depends on the query tile loop, so one invocation streams 1 + 2 + ... + used key tiles per
    head; the timing model times the triangular nest iteration by iteration."""
    import runpy
    from pathlib import Path

    mod = runpy.run_path(str(Path(__file__).resolve().parents[2] / "tutorials" / "05_rope_prefill.py"))
    heads, kv_heads, capacity, dh, rows = 4, 2, 32, 16, 8
    prog = mod["build"](heads, kv_heads, capacity, dh, rows)
    assert "(d0, d1, d2, d3) -> ((d2 + 1)) []" in str(prog.module)
    args = mod["inputs"](heads, kv_heads, capacity, dh)
    design = sd.compile(prog)
    cycles = {}
    for n in (1, 12, 24, 32):  # 1, 2, 3 and 4 query tiles
        record: dict = {}
        got = design.simulate(*args, n, record=record)
        np.testing.assert_allclose(got[:, :n], mod["reference"](*args, n), rtol=1e-4, atol=1e-5)
        used = -(-n // rows)
        assert record["tokens"]["dma_load(k)->attention"] == heads * used * (used + 1) // 2
        timed = design.timed_simulation(scalars={"n": n})
        assert timed.deadlock is None
        cycles[n] = timed.makespan
    assert cycles[1] < cycles[12] < cycles[24] < cycles[32] == design.timed_simulation().makespan


def test_scalar_used_as_a_tile_is_located() -> None:
    def build():
        @sd.kernel
        def k(x: X, n: sd.Scalar[sd.i32, MAXN]) -> Y:
            for r in range(ROWS):
                for j in range(MAXN // T):
                    t = x.read()  # noqa: F841 - read and dropped
                yield n  # <- error

    expect_error(build, "output 'out' needs a tile of shape [1, 1], got a loop index or a run-time scalar (range [0, 40])")


def test_a_run_time_trip_count_must_be_affine() -> None:
    """n * r multiplies a scalar by a loop index: not affine, so no port type can bound it."""
    def build():
        @sd.kernel
        def k(x: X, n: sd.Scalar[sd.i32, MAXN]) -> Y:
            for r in range(ROWS):
                acc = sd.zeros((1, 1))
                for j in sd.range(n * r // T, max=MAXN // T):  # <- error
                    acc += sd.sum(x.read(), axis=1)
                yield acc

    assert expect_error(build).reason == ("sd.range(n): n must be affine in the sd.Scalar arguments and the enclosing loop "
                                          "indices (+, -, * by ints, // by a positive int)")
