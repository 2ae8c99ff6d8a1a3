"""Bad kernels and dataflow functions: each raises sd.DSLError at the offending file:line with a
message that says what to change (in the style of Triton's test_compile_errors.py).

Every test builds its kernel inside a function; the offending line carries the marker comment
`# <- error`, and the error must point exactly there.
"""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest

import streamdsl as sd

X = sd.itensor.tiled(sd.f32, shape=(1, 64), tile=(1, 16))  # 4 tokens
S = sd.itensor.tiled(sd.f32, shape=(1, 4), tile=(1, 1))
X16 = sd.itensor.tiled(sd.f16, shape=(1, 64), tile=(1, 16))
N = 4


def expect_error(build, *fragments: str) -> sd.DSLError:
    with pytest.raises(sd.DSLError) as info:
        build()
    err = info.value
    lines, start = inspect.getsourcelines(build)
    marked = [start + i for i, line in enumerate(lines) if line.rstrip().endswith("# <- error")]
    assert len(marked) == 1, "each test marks exactly one line"
    source = inspect.getsourcefile(build)
    assert err.filename == source
    assert err.lineno == marked[0], f"error at line {err.lineno}, expected {marked[0]}: {err}"
    assert str(err).startswith(f"{source}:{marked[0]}:")
    for fragment in fragments:
        assert fragment in str(err), f"{fragment!r} not in {err}"
    return err


def test_if_statement() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                if v > 0:  # <- error
                    v = -v
                yield v

    expect_error(build, "`if` needs a condition known at compile time", "sd.where")


def test_while_loop() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            i = 0
            while i < N:  # <- error
                yield x.read()

    expect_error(build, "while loops are not supported", "range(N)")


def test_non_static_loop_bound() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            v = x.read()
            for i in range(v):  # <- error
                yield v

    expect_error(build, "loop bound must be a static Python int", "tile [1, 16] f32")


def test_tile_shape_mismatch() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                w = v + sd.zeros((1, 8))  # <- error
                yield w

    err = expect_error(build, "[1, 16] and [1, 8] do not broadcast", "shapes must be equal or 1")
    assert err.col == 21  # 1-based column of `v + ...` in this file


def test_dtype_mismatch() -> None:
    def build():
        @sd.kernel
        def k(x: X, h: X16) -> X:
            for i in range(N):
                yield x.read() * h.read()  # <- error

    expect_error(build, "dtype mismatch", "f32", "f16", "same dtype")


def test_stream_read_too_few_times() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> S:
            for i in range(3):
                yield sd.sum(x.read(), axis=1)  # <- error

    expect_error(build, "reads port 'x' 3 time(s)", "has 4 tokens", "run 4 times in total")


def test_stream_read_too_many_times() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> S:
            for i in range(N):
                a = x.read()  # <- error
                b = x.read()
                yield sd.sum(a + b, axis=1)

    expect_error(build, "reads port 'x' 8 time(s)", "has 4 tokens")


def test_output_written_too_many_times() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                for j in range(2):
                    yield v  # <- error

    expect_error(build, "writes port 'out' 8 time(s)", "has 4 tokens", "yield")


def test_wrong_output_tile_shape() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield sd.sum(x.read(), axis=1)  # <- error

    expect_error(build, "output 'out' has tiles of shape [1, 16]", "tile [1, 1] f32")


def test_undefined_name() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() * scale_factor  # noqa: F821  # <- error

    expect_error(build, "undefined name 'scale_factor'", "define it before use")


def test_recursion() -> None:
    def build():
        @sd.kernel
        def again(x: X) -> X:
            for i in range(N):
                yield again(x)  # <- error

    expect_error(build, "recursion is not supported", "static for loop")


def test_early_return() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read()
            return  # <- error

    expect_error(build, "return is not supported", "yield")


def test_unsupported_call() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield np.exp(x.read())  # <- error

    expect_error(build, "unsupported call to 'exp'", "sd.exp")


def test_calling_a_kernel_from_a_kernel() -> None:
    @sd.kernel
    def inner(x: X) -> X:
        for i in range(N):
            yield x.read()

    def build():
        @sd.kernel
        def outer(x: X) -> X:
            for i in range(N):
                yield inner(x)  # <- error

    expect_error(build, "kernels cannot call other kernels", "@sd.dataflow")


def test_loop_carried_shape_change() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> S:
            acc = sd.zeros((1, 16))
            for i in range(N):
                acc = sd.sum(acc + x.read(), axis=1)  # <- error
                yield acc

    expect_error(build, "'acc' is carried around the loop as a tile [1, 16] f32", "keep its shape and dtype")


def test_matmul_inner_dims() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield v @ v  # <- error

    expect_error(build, "cannot multiply tile [1, 16] f32 by tile [1, 16] f32", "x.T")


def test_buffer_index_out_of_bounds() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            buf = sd.zeros((3, 1, 16))
            for i in range(N):
                buf[i] = x.read()  # <- error
            for i in range(N):
                yield buf[0]

    expect_error(build, "index range [0, 3] is out of bounds for dim 0 of size 3")


def test_name_defined_only_inside_loop() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                last = x.read()
            for i in range(N):
                yield last  # <- error

    expect_error(build, "'last' is defined only inside the loop", "initialise it before the loop")


def test_comparison_outside_where() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                m = v > 0.0  # noqa: F841  # <- error
                yield v

    expect_error(build, "comparisons are only supported as the condition of sd.where")


def test_break() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read()
                break  # <- error

    expect_error(build, "break is not supported")


def test_missing_port_annotation() -> None:
    def build():
        @sd.kernel
        def k(x: X, scale) -> X:  # <- error
            for i in range(N):
                yield x.read()

    expect_error(build, "parameter 'scale'", "needs an itensor annotation")


def test_python_value_reassigned_in_loop() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            scale = 1.0
            for i in range(N):
                scale = scale * 2.0  # <- error
                yield x.read() * scale

    expect_error(build, "'scale' holds a Python value and is reassigned inside the loop", "make it a tile")


def test_yield_count_mismatch() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> (X, X):
            for i in range(N):
                yield x.read()  # <- error

    expect_error(build, "yield gives 1 value(s) but the kernel has 2 output(s)")


def test_write_to_input_port() -> None:
    def build():
        @sd.kernel
        def k(x: X, y: sd.Out[X]):
            for i in range(N):
                x.write(y)  # <- error

    expect_error(build, ".write(...) is only defined on output ports")


def test_lambda() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            f = lambda v: v * 2.0  # noqa: E731, F841  # <- error
            for i in range(N):
                yield x.read()

    expect_error(build, "Lambda is not supported")


def test_reduction_axis_out_of_range() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> S:
            for i in range(N):
                yield sd.sum(x.read(), axis=2)  # <- error

    expect_error(build, "axis must be a static int in [-2, 2)")


# -- dataflow-level errors ------------------------------------------------------------------------


@sd.kernel
def double(x: X) -> X:
    for i in range(N):
        yield x.read() * 2.0


@sd.kernel
def halves(x: X) -> (X, X):
    for i in range(N):
        v = x.read()
        yield v * 0.5, v * 0.25


def test_dataflow_argument_shape_mismatch() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (1, 32)]):
            return double(x)  # <- error

    expect_error(build, "argument 'x' of kernel 'double'", "[1, 32] f32 tensor", "[1, 64] f32 tensor")


def test_dataflow_unused_output() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (1, 64)]):
            a, b = halves(x)  # <- error
            return a

    expect_error(build, "output 'out1' of kernel 'halves' is never used")


def test_dataflow_result_with_reuse() -> None:
    Xr = X.repeat(2)

    @sd.kernel
    def replay(x: X) -> Xr:
        buf = sd.zeros((N, 1, 16))
        for i in range(N):
            buf[i] = x.read()
        for r in range(2):
            for i in range(N):
                yield buf[i]

    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (1, 64)]):
            return replay(x)  # <- error

    expect_error(build, "replays tiles (reuse loops)", "a result must stream each tile once")


def test_dataflow_returns_its_argument() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (1, 64)]):  # <- error
            return x

    expect_error(build, "returns its argument 'x' unchanged")


def test_dataflow_annotation_missing() -> None:
    def build():
        @sd.dataflow
        def f(x):  # <- error
            return double(x)

    expect_error(build, "argument 'x' of @sd.dataflow 'f' needs an annotation sd.Tensor[dtype, shape]")


def test_eager_mode_detects_runtime_read_past_end() -> None:
    # static checks make this unreachable for compiled kernels; eager mode still guards the Python
    with pytest.raises(sd.StreamError, match="read port 'x' past its end"):
        from streamdsl.dsl.eager import EagerIn
        from streamdsl.dsl.kernel import Port

        port = EagerIn("k", Port("x", X, 0), np.zeros((1, 64), np.float32))
        for _ in range(5):
            port.read()
    assert math.isfinite(1.0)


# -- helpers and static conditions -------------------------------------------------------------


def _helper_with_while(v):
    while True:  # <- error
        v = v * 2.0
    return v


def _helper_that_yields(v):
    yield v  # <- error


def _helper_returning_in_a_loop(port):
    for i in range(N):
        return port.read()  # <- error


def _helper_storing_into_its_argument(buf, t):
    buf[0] = t  # <- error
    return buf


def _expect_helper_error(helper, build, *fragments: str) -> None:
    """The error points into the helper (its own file:line), not at the call."""
    with pytest.raises(sd.DSLError) as info:
        build()
    lines, start = inspect.getsourcelines(helper)
    marked = [start + i for i, line in enumerate(lines) if line.rstrip().endswith("# <- error")]
    assert (info.value.filename, info.value.lineno) == (__file__, marked[0]), str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"


def test_helper_using_unsupported_python() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield _helper_with_while(x.read())

    _expect_helper_error(_helper_with_while, build, "while loops are not supported")


def test_helper_that_yields() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield _helper_that_yields(x.read())

    _expect_helper_error(_helper_that_yields, build, "helper '_helper_that_yields' yields", "return the tile")


def test_helper_return_inside_a_loop() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            yield _helper_returning_in_a_loop(x)

    _expect_helper_error(_helper_returning_in_a_loop, build, "return inside a loop of helper", "after the loop")


def test_helper_storing_into_its_argument() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            buf = sd.zeros((2, 1, 16))
            for i in range(N):
                buf = _helper_storing_into_its_argument(buf, x.read())
                yield buf[0]

    _expect_helper_error(_helper_storing_into_its_argument, build, "stores into its parameter 'buf'", "return the new buffer")


def test_helper_called_with_wrong_arguments() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield _helper_with_while(x.read(), 2.0)  # <- error

    expect_error(build, "cannot call helper '_helper_with_while'", "positional")


def test_nested_function_definition_points_to_module_level_helpers() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            def double(v):  # <- error
                return v * 2.0

            for i in range(N):
                yield double(x.read())

    expect_error(build, "nested functions are not supported", "plain functions are inlined")


def test_if_on_a_loop_index() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                if i == 0:  # <- error
                    v = v * 2.0
                yield v

    expect_error(build, "`if` needs a condition known at compile time", "loop index", "sd.where")


def test_conditional_expression_on_a_tile() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield v if v else -v  # <- error

    expect_error(build, "`... if ... else` needs a condition known at compile time", "sd.where")


def test_kernel_factory_annotation_undefined() -> None:
    def build():
        @sd.kernel
        def k(x: Missing) -> X:  # noqa: F821  # <- error
            for i in range(N):
                yield x.read()

    expect_error(build, "cannot evaluate its annotations", "name 'Missing' is not defined")


# -- tile and stream shaping -------------------------------------------------------------------

X4 = sd.itensor.tiled(sd.f32, shape=(4, 64), tile=(1, 16))
I8 = sd.itensor.tiled(sd.i8, shape=(1, 64), tile=(1, 16))


def test_tile_slice_out_of_range() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.concat([v[:, 8:20], v[:, 0:4]], axis=1)  # <- error

    expect_error(build, "selects [8, 20) of dim 1, which has size 16", "inside the tile")


def test_tile_slice_with_a_loop_index() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.concat([v[:, i:], v[:, :i]], axis=1)  # <- error

    expect_reason(build, "slice bounds must be static Python ints (tile shapes are static), got a loop index or a "
                  "run-time scalar (range [0, 3]); to pick a tile by a loop index, index a buffer dim instead")


def test_concat_of_mismatched_tiles() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.concat([v, v.T], axis=1)  # <- error

    expect_error(build, "sd.concat", "does not fit", "same sizes outside the axis")


def test_batched_matmul_mismatch() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = sd.reshape(x.read(), (2, 1, 8))
                yield sd.reshape(v @ sd.reshape(v, (1, 2, 8)), (1, 16))  # <- error

    expect_error(build, "@: cannot multiply", "equal leading batch dims")


def test_integer_tile_math() -> None:
    def build():
        @sd.kernel
        def k(x: I8) -> I8:
            for i in range(N):
                yield x.read() / x.read()  # <- error

    expect_error(build, "float dtypes only, got i8", "on integer tiles use +, -, * and @", "sd.dequantize")


@sd.kernel
def _double4(x: X4) -> X4:
    for i in range(16):
        yield x.read() * 2.0


def test_stream_slice_leaves_tokens_unused() -> None:
    H = sd.itensor.tiled(sd.f32, shape=(4, 32), tile=(1, 16))

    @sd.kernel
    def half(x: H) -> H:
        for i in range(8):
            yield x.read()

    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)]):
            return half(_double4(x)[:, :32])  # <- error

    expect_error(build, "leave [32, 64) unused", "exactly one consumer")


def test_stream_slice_straddles_tiles() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)]):
            y = _double4(x)
            return y[:, :40], y[:, 40:]  # <- error

    expect_error(build, "straddle", "multiples of the tile size 16")


def test_stream_slice_out_of_range() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)]):
            return _double4(x)[:, 32:80]  # <- error

    expect_error(build, "out of range", "dim 1 has size 64")


def test_slice_of_an_hbm_argument_out_of_range() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 128)]):
            return _double4(x[:, 100:164])  # <- error

    expect_error(build, "slice 100:164 of the HBM argument x is out of range", "dim 1 has size 128")


def test_slice_of_an_hbm_argument_with_an_int() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 4, 64)]):
            return _double4(x[0])  # <- error

    expect_error(build, "static slices", "ints would drop dims: keep them with i:i+1")


def test_join_of_streams_that_do_not_make_the_whole() -> None:
    W = sd.itensor.tiled(sd.f32, shape=(4, 64), tile=(1, 32))

    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)], y: sd.Tensor[sd.f32, (4, 64)]):
            return sd.join([_double4(x), _double4(y)], W)  # <- error

    expect_error(build, "sd.join", "16 tiles [1, 16]", "8 tiles [1, 32]", "must stream 4 tiles of that tile shape")


def test_join_of_streams_of_run_time_length() -> None:
    LEN = sd.Scalar[sd.i32, 4]

    @sd.kernel
    def first(x: X, n: LEN) -> X:
        for i in sd.range(n):
            yield x.read()

    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (1, 64)], y: sd.Tensor[sd.f32, (1, 64)], n: LEN):
            return sd.join([first(x, n), first(y, n)], sd.itensor.tiled(sd.f32, shape=(2, 64), tile=(1, 16)))  # <- error

    expect_error(build, "streams of run-time length cannot be joined")


def test_join_of_an_hbm_argument() -> None:
    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)], y: sd.Tensor[sd.f32, (4, 64)]):
            return sd.join([_double4(x), y], sd.itensor.tiled(sd.f32, shape=(8, 64), tile=(1, 16)))  # <- error

    expect_error(build, "sd.join of the HBM argument 'y' is not defined", "pass the tensor")


def test_concat_of_streams_in_different_orders() -> None:
    C = sd.itensor.tiled(sd.f32, shape=(4, 64), tile=(1, 16), order=(1, 0))

    @sd.kernel
    def colmajor(x: X4) -> C:
        buf = sd.zeros((4, 4, 1, 16))
        for i in range(4):
            for j in range(4):
                buf[i, j] = x.read()
        for j in range(4):
            for i in range(4):
                yield buf[i, j]

    def build():
        @sd.dataflow
        def f(x: sd.Tensor[sd.f32, (4, 64)], y: sd.Tensor[sd.f32, (4, 64)]):
            return sd.concat([_double4(x), colmajor(y)], axis=0)  # <- error

    expect_error(build, "sd.concat: cannot stream", "one tile order")


def test_variadic_ports_picked_by_a_loop_index() -> None:
    def build():
        @sd.kernel
        def k(*xs: X) -> X:
            for i in range(N):
                acc = sd.zeros((1, 16))
                for j in range(2):
                    acc = acc + xs[j].read()  # <- error
                yield acc

        @sd.dataflow
        def f(a: sd.Tensor[sd.f32, (1, 64)], b: sd.Tensor[sd.f32, (1, 64)]):
            return k(a, b)

    expect_error(build, "static tuples (such as x.shape) are indexed with Python ints")


def test_variadic_kernel_called_without_streams() -> None:
    @sd.kernel
    def k(s: X, *xs: X) -> X:
        for i in range(N):
            acc = s.read()
            for x in xs:
                acc = acc + x.read()
            yield acc

    def build():
        @sd.dataflow
        def f(a: sd.Tensor[sd.f32, (1, 64)]):
            return k(a)  # <- error

    expect_error(build, "kernel 'k' takes 1 argument(s) and at least one stream for *xs, got 1")


def test_variadic_ports_need_an_itensor() -> None:
    def build():
        @sd.kernel
        def k(*xs: sd.f32) -> X:  # <- error
            for i in range(N):
                yield xs[0].read()

    expect_error(build, "*xs of kernel 'k' needs an itensor annotation")


@sd.kernel
def k_double(x: X) -> X:
    for i in range(N):
        yield x.read() * 2.0


def test_variadic_dataflow_arguments_need_a_tensor_annotation() -> None:
    def build():
        @sd.dataflow
        def f(a: sd.Tensor[sd.f32, (1, 64)],
              *xs: sd.Scalar[sd.i32, 4]):  # <- error
            return k_double(a)

    expect_error(build, "*xs of @sd.dataflow 'f' needs an annotation sd.Tensor[dtype, shape]")


def test_variadic_dataflow_program_compiled_without_a_count() -> None:
    def build():
        @sd.dataflow
        def f(a: sd.Tensor[sd.f32, (1, 64)], *xs: sd.Tensor[sd.f32, (1, 64)]):  # <- error
            return k_double(a)

        sd.compile(f)

    expect_error(build, "@sd.dataflow 'f' has *xs", "compile f.with_arity(n)")


def test_variadic_dataflow_called_without_tensors() -> None:
    @sd.dataflow
    def f(a: sd.Tensor[sd.f32, (1, 64)], *xs: sd.Tensor[sd.f32, (1, 64)]):
        return k_double(a)

    def build():
        @sd.dataflow
        def g(a: sd.Tensor[sd.f32, (1, 64)]):
            return f(a)  # <- error

    expect_error(build, "@sd.dataflow 'f' takes 1 argument(s) and at least one tensor for its *xs, got 1")


def test_dataflow_keyword_only_arguments_need_a_star() -> None:
    def build():
        @sd.dataflow
        def f(a: sd.Tensor[sd.f32, (1, 64)], *, n: sd.Scalar[sd.i32, 4]):  # <- error
            return k_double(a)

    expect_error(build, "at most one *xs: sd.Tensor[...]")


# -- performance hints -----------------------------------------------------------------------

XM = sd.itensor.tiled(sd.f32, shape=(64, 64), tile=(64, 64))


def test_hint_the_device_cannot_meet_on_an_op() -> None:
    def build():
        @sd.kernel
        def k(x: XM) -> XM:
            v = x.read()
            yield sd.hint(v @ v, lanes=4096)  # <- error

    expect_error(build, "lanes=4096", "needs 20480 DSP slices", "the U55C has 9024", "at most 1804 lanes")


def test_kernel_hint_the_device_cannot_meet() -> None:
    def build():
        @sd.kernel(lanes=2048)
        def k(x: XM) -> XM:  # <- error
            v = x.read()
            yield v @ v + sd.exp(v)

    expect_error(build, "kernel 'k'", "DSP slices, the U55C has 9024", "linalg.matmul", "lower lanes=")


def test_hint_that_is_not_a_positive_int() -> None:
    def build():
        @sd.kernel(ii=0)
        def k(x: X) -> X:  # <- error
            for i in range(N):
                yield x.read()

    expect_error(build, "ii=0", "positive ints")


def test_hint_on_a_read_tile() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield sd.hint(x.read(), lanes=4)  # <- error

    expect_error(build, "sd.hint applies to the result of a tile operation", "dataflow.itensor_read")


# -- on-chip masks ---------------------------------------------------------------------------


def test_iota_axis_out_of_range() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() + sd.iota((1, 16), axis=2)  # <- error

    expect_error(build, "sd.iota: axis must be a static int in [-2, 2)")


def test_loop_index_alone_is_not_a_tile_to_yield() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()  # noqa: F841  (the kernel must consume its input)
                yield i  # <- error

    expect_error(build, "output 'out' needs a tile", "got a loop index")


# -- whole messages: what the user reads, word for word ------------------------------------------


def expect_reason(build, reason: str) -> None:
    assert expect_error(build).reason == reason


def test_range_keywords_and_arity() -> None:
    def with_step():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N, step=1):  # <- error
                yield x.read()

    def four_args():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(0, N, 1, 1):  # <- error
                yield x.read()

    expect_reason(with_step, "range takes no keywords; sd.range takes max=N, a positive static int")
    expect_reason(four_args, "range takes 1 to 3 positional arguments")


def test_cast_to_something_that_is_no_dtype() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield sd.cast(x.read(), "f32")  # <- error

    expect_reason(build, "sd.cast: dtype must be an sd dtype, got 'f32'")


def test_or_of_a_tile_names_the_or() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                if N < 2 or v:  # <- error
                    v = -v
                yield v

    expect_reason(build, "`or` needs a condition known at compile time, but `v` is a tile [1, 16] f32; select values per "
                  "element with sd.where(cond, a, b)")


def test_hint_needs_lanes() -> None:
    def no_lanes():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.hint(v + v)  # <- error

    def zero_lanes():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.hint(v + v, lanes=0)  # <- error

    expect_reason(no_lanes, "sd.hint: give lanes=N")
    assert "give lanes=N" not in expect_error(zero_lanes, "sd.hint: lanes").reason


def test_shapes_that_do_not_broadcast_are_named() -> None:
    def add():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() + sd.zeros((1, 8))  # <- error

    def where():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.where(v > 0, v, sd.zeros((1, 8)))  # <- error

    tail = " do not broadcast; shapes must be equal or 1 in each dim (reduce with keepdims, e.g. sd.sum(x, axis=1))"
    expect_reason(add, "add: tile shapes [1, 16] and [1, 8]" + tail)
    assert expect_error(where).reason.startswith("where: tile shapes [1, 16] and ")


CLAMP = functools.partial(max, 0.0)  # a callable without a __name__


def test_a_call_to_a_callable_without_a_name_names_it_as_written() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield CLAMP(x.read())  # <- error

    expect_error(build, "unsupported call to ", "CLAMP", "plain Python helper functions built from them (inlined)")


def test_a_slice_with_a_step_other_than_1() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield sd.concat([v[:, 0:16:1][:, ::2], v[:, 1::2]], axis=1)  # <- error

    expect_reason(build, "slices take step 1 only, got 2")


def test_construction_arguments_are_checked_where_they_are_written() -> None:
    def keyword():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() + sd.zeros((1, 16), fill=1.0)  # <- error

    def shape():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() + sd.zeros((1, -16))  # <- error

    def reshape():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield sd.reshape(sd.reshape(x.read(), (-1, -16)), (1, 16))  # <- error

    expect_reason(keyword, "sd.zeros: unexpected keyword 'fill' (parameters: shape, dtype)")
    expect_reason(shape, "sd.zeros: shape must be a static tuple of positive ints, got (1, -16)")
    expect_reason(reshape, "sd.reshape: cannot reshape a tile [1, 16] f32 to (-1, -16); the new static shape must have 16 "
                  "elements")


def _doubled_plus_one(v):
    twice = v + v  # a name assigned inside an inlined helper
    return twice + 1.0


def test_a_helper_that_assigns_names_is_inlined() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield _doubled_plus_one(x.read())

        return k

    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 64)
    np.testing.assert_array_equal(build().simulate(x), 2 * x + 1)


def test_an_unknown_tile_attribute() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read().size  # <- error

    expect_reason(build, "tiles have no attribute 'size' in kernels (supported: .T, .shape, .dtype); use the sd.* "
                  "functions, e.g. sd.sum(x, axis=1)")


def test_dequantize_of_something_that_is_no_tile() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() + sd.dequantize(3, 0.5)  # <- error

    expect_error(build, "sd.dequantize needs a tile, got ")


def test_an_operator_kernels_lack() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read() * (N << 1)  # <- error

    expect_error(build, "operator LShift is not supported in kernels (supported: + - * / @)")


def test_an_operator_tiles_lack() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                yield v % v  # <- error

    expect_error(build, "operator % is not supported on tiles (supported: + - * / @)")


def test_an_augmented_assignment_with_an_operator_tiles_lack() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                v = x.read()
                v %= v  # <- error
                yield v

    expect_error(build, "operator % is not supported on tiles")


def test_a_loop_that_runs_zero_times() -> None:
    def build():
        @sd.kernel
        def k(x: X) -> X:
            for i in range(N):
                yield x.read()
            for j in range(N, N):  # <- error
                yield x.read()

    expect_error(build, f"range({N}, {N}, 1) runs zero times: kernels need loops that run")


def test_a_parameter_with_a_default() -> None:
    def build():
        @sd.kernel
        def k(x: X, y: X = None) -> X:  # <- error
            for i in range(N):
                yield x.read() + y.read()

    expect_error(build, "kernel 'k': parameters must be plain names annotated with itensor types, and at most one "
                        "*ports: T (no **kwargs, defaults or keyword-only parameters)")
