"""The functional simulator on whole dataflow graphs: numerics against numpy, FIFO semantics,
deadlock diagnosis and stream-usage errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.errors import DeadlockError, LimitError, StreamError
from streamdsl.graph import GraphError
from streamdsl.program import Program
from streamdsl.sim._codegen import CompileError
from streamdsl.sim.functional import TaskFailure, simulate, simulate_with_stats

from . import programs as P
from .irtext import loop, map_task, program, task, tensor, tile, ty

RNG = np.random.default_rng(11)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want).max())))


# -- numerics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_tasks", "r", "d", "t"), [(3, 2, 64, 16), (7, 3, 96, 32), (4, 1, 8, 8)])
def test_elementwise_chain(n_tasks: int, r: int, d: int, t: int) -> None:
    x = rand(r, d)
    close(simulate(P.chain(n_tasks, r, d, t), x), P.chain_reference(n_tasks, x))


@pytest.mark.parametrize(("k", "n", "t"), [(64, 128, 32), (96, 32, 16), (16, 16, 16)])
def test_matvec_with_reuse_loop(k: int, n: int, t: int) -> None:
    x, w = rand(1, k), rand(k, n)
    got, stats = simulate_with_stats(P.matvec(k, n, t), x, w)
    close(got, x.astype(np.float64) @ w)
    tokens = {s.name: s.tokens for s in stats.streams}
    assert tokens == {"xs": (k // t) * (n // t), "ws": (k // t) * (n // t), "ys": n // t}


def test_program_object_and_bound_parameters() -> None:
    """`Program.simulate` appends `params` (the weights) after the given inputs."""
    x, w = rand(1, 32), rand(32, 16)
    prog = Program(P.matvec(32, 16, 16), "matvec", ["x"], {"w": w})
    close(prog.simulate(x), x.astype(np.float64) @ w)


def test_row_reductions_with_two_outputs() -> None:
    """One task, two output streams: per-row sum (generic reduction, keepdims map) and max
    (linalg.reduce), accumulated across the tiles of the row."""
    r, d, t = 3, 32, 8
    X, S = P.rows(r, d, t), sd.itensor.tiled(sd.f32, (r, 1), (1, 1))
    one, vec = tensor((1, 1)), tensor((1,))
    inner = f"""        %xt = dataflow.itensor_read %xs_p : {ty(X)} -> {tile(X)}
        %s = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>],
            iterator_types = ["parallel", "reduction"]}}
          ins(%xt : {tile(X)}) outs(%sacc : {one}) {{
        ^bb0(%a: f32, %o: f32):
          %p = arith.addf %a, %o : f32
          linalg.yield %p : f32
        }} -> {one}
        %m = linalg.reduce ins(%xt : {tile(X)}) outs(%macc : {vec}) dimensions = [1]
          (%in: f32, %init: f32) {{
            %mx = arith.maximumf %in, %init : f32
            linalg.yield %mx : f32
          }}
        scf.yield %s, %m : {one}, {vec}"""
    outer = f"""        %z = arith.constant dense<0.0> : {one}
        %ninf = arith.constant dense<-1.0e30> : {vec}
{loop(d // t, inner, [("sacc", "%z", one), ("macc", "%ninf", vec)], results="red")}
        %mx2 = tensor.expand_shape %red#1 [[0, 1]] output_shape [1, 1] : {vec} into {one}
        %w1 = dataflow.itensor_write %red#0, %sch : {one} -> {ty(S)}
        %w2 = dataflow.itensor_write %mx2, %mch : {one} -> {ty(S)}
        scf.yield %w1, %w2 : {ty(S)}, {ty(S)}"""
    body = (loop(r, outer, [("sch", "%sums_o", ty(S)), ("mch", "%maxs_o", ty(S))], results="fin")
            + f"\n      dataflow.yield %fin#0, %fin#1 : {ty(S)}, {ty(S)}")
    kernel = f"""    %xs = dataflow.dma_load %x : {tensor((r, d))} -> {ty(X)}
{task("rowstats", [("xs", X)], [("sums", S), ("maxs", S)], body)}
    %st = dataflow.dma_store %sums : {ty(S)} -> {tensor((r, 1))}
    %mt = dataflow.dma_store %maxs : {ty(S)} -> {tensor((r, 1))}
    dataflow.yield %st, %mt : {tensor((r, 1))}, {tensor((r, 1))}"""
    x = rand(r, d)
    sums, maxs = simulate(program("rowstats", [("x", (r, d))], [(r, 1), (r, 1)], kernel), x)
    close(sums, x.astype(np.float64).sum(axis=1, keepdims=True))
    close(maxs, x.max(axis=1, keepdims=True))


def test_fork_and_round_robin_join() -> None:
    """Two lanes of n/2 tiles (even tokens x2, odd tokens x3) joined back round robin."""
    n, t = 6, 8
    x = rand(1, n * t)
    want = x.reshape(n, t) * np.array([2.0, 3.0] * (n // 2))[:, None]
    close(simulate(P.round_robin_join(n, t), x), want.reshape(1, -1))


def test_chunk_concat_and_reassociate() -> None:
    x = rand(2, 8)
    want = np.concatenate([-x[:, :4], x[:, 4:] ** 2], axis=1).reshape(8, 2)
    close(simulate(P.split_concat(), x), want)


def test_converter_edge_reorders_tiles() -> None:
    """Converters between differently ordered tasks, whole-tensor and planned on a shared loop."""
    x = rand(4, 6)
    got, stats = simulate_with_stats(P.converters(), x)
    close(got, (x + 1) * 2)
    assert stats.converter_peak["converter(d)"] <= 2 * 2 * 6


def test_converter_with_too_small_a_buffer_fails_loudly() -> None:
    rowmajor = sd.itensor.tiled(sd.f32, (4, 6), (2, 2))
    colmajor = sd.itensor.tiled(sd.f32, (4, 6), (2, 2), order=(1, 0))
    body = f"""    %xs = dataflow.dma_load %x : {tensor((4, 6))} -> {ty(rowmajor)}
    %b = dataflow.itensor_converter %xs {{buffer_shape = array<i64: 2, 2>, shared_loops = 0 : i64}} : {ty(rowmajor)} -> {ty(colmajor)}
    %yt = dataflow.dma_store %b : {ty(colmajor)} -> {tensor((4, 6))}
    dataflow.yield %yt : {tensor((4, 6))}"""
    with pytest.raises(StreamError, match=r"^converter converter\(xs\) \(itensor"):  # named as in stats and depths
        simulate(program("conv", [("x", (4, 6))], [(4, 6)], body), rand(4, 6))


def test_stream_level_program() -> None:
    """`dataflow.stream` FIFOs with their own depth, `stream_read` / `stream_write` in tasks."""
    X = P.rows(2, 16, 8)
    S = f"!dataflow.stream<{tile(X)}, depth = 3>"
    produce = loop(4, f"""        %t = dataflow.itensor_read %xs_p : {ty(X)} -> {tile(X)}
        %n = arith.negf %t : {tile(X)}
        dataflow.stream_write %n, %sp : {tile(X)} -> {S}""")
    consume = loop(4, f"""        %t = dataflow.stream_read %sp : {S} -> {tile(X)}
        %w = dataflow.itensor_write %t, %ch : {tile(X)} -> {ty(X)}
        scf.yield %w : {ty(X)}""", [("ch", "%ys_o", ty(X))], results="f")
    body = f"""    %xs = dataflow.dma_load %x : {tensor((2, 16))} -> {ty(X)}
    %s = dataflow.stream : {S}
    dataflow.task "produce" ins(%xs, %s : {ty(X)}, {S}) outs( : ) {{
    ^bb0(%xs_p: {ty(X)}, %sp: {S}):
{produce}
      dataflow.yield
    }}
    %ys_e = dataflow.itensor_empty : {ty(X)}
    %ys = dataflow.task "consume" ins(%s : {S}) outs(%ys_e : {ty(X)}) -> {ty(X)} {{
    ^bb0(%sp: {S}, %ys_o: {ty(X)}):
{consume}
      dataflow.yield %f : {ty(X)}
    }}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((2, 16))}
    dataflow.yield %yt : {tensor((2, 16))}"""
    x = rand(2, 16)
    record: dict = {}
    close(simulate(program("streams", [("x", (2, 16))], [(2, 16)], body), x, record=record), -x)
    s = next(s for s in record["streams"] if s["name"] == "s")
    assert (s["producer"], s["consumer"], s["depth"], s["tokens"]) == ("produce", "consume", 3, 4)


# -- FIFO depth, peak occupancy and the reconvergent deadlock -----------------------------------------


def test_reconvergent_diamond_deadlocks_when_undersized_and_completes_when_deep_enough() -> None:
    n, t = 8, 4
    module = P.diamond(n, t)
    x = rand(1, n * t)
    with pytest.raises(DeadlockError) as info:
        simulate(module, x)
    err = info.value
    assert set(err.blocked) == {"total", "scale", "center", "fork(xs)", "dma_store(ys)"}
    assert err.blocked["center"] == ("tot", "empty", 0, 2)
    assert err.blocked["total"] == ("xa", "empty", 0, 2)
    assert err.blocked["scale"] == ("sc", "full", 2, 2)
    assert err.blocked["fork(xs)"] == ("xb", "full", 2, 2)
    assert err.cycle == ["fork(xs)", "scale", "center", "total"]
    message = str(err)
    assert message.startswith("kernel @diamond: deadlock: all 5 unfinished tasks are blocked")
    assert "center waits on stream tot (empty, 0/2 tokens), written by total" in message
    assert "scale waits on stream sc (full, 2/2 tokens), read by center" in message
    assert "wait-for cycle: fork(xs) -> scale -> center -> total -> fork(xs)" in message
    assert "raise the depth of a full stream on the cycle (xb, sc), e.g. simulate(..., depths={'xb': 6})" in message  # 2 x 2 + 2

    want = (2 * x - x.astype(np.float64).sum()).astype(np.float32)
    record: dict = {}
    close(simulate(module, x, depths={"sc": n}, record=record), want)
    assert record["peak_occupancy"]["sc"] == n  # the whole row waits there for the sum
    assert record["depth"]["sc"] == n
    # unbounded FIFOs: the peaks are what this schedule needs
    unbounded: dict = {}
    close(simulate(module, x, default_depth=None, record=unbounded), want)
    assert unbounded["peak_occupancy"]["sc"] == n and unbounded["depth"]["sc"] == float("inf")
    close(simulate(module, x, depths={"sc": None}), want)
    # the same depth written on the producing op by the FIFO-sizing pass
    close(simulate(P.diamond(n, t, scale_attrs="depth = 8 : i64"), x), want)


def test_peak_occupancy_and_stats() -> None:
    x = rand(2, 64)
    got, stats = simulate_with_stats(P.chain(3, 2, 64, 8), x, default_depth=4)
    close(got, P.chain_reference(3, x))
    assert [s.name for s in stats.streams] == ["xs", "s1", "s2", "ys"]
    assert all(1 <= s.peak <= s.depth == 4 and s.tokens == 16 for s in stats.streams)
    assert stats.streams[0].producer == "dma_load(x)" and stats.streams[0].consumer == "k0"
    assert stats.total_tokens == 64 and stats.tokens_per_second > 0


@functools.cache
def _small_chain() -> object:
    return P.chain(3, 2, 32, 8)


@settings(max_examples=40)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=4, max_size=4))
def test_results_do_not_depend_on_fifo_depths(depths: list[int]) -> None:
    x = np.linspace(-1, 1, 2 * 32, dtype=np.float32).reshape(2, 32)
    names = ["xs", "s1", "s2", "ys"]
    got = simulate(_small_chain(), x, depths=dict(zip(names, depths)))
    np.testing.assert_array_equal(got, P.chain_reference(3, x))


def test_values_of_any_magnitude_pass_through() -> None:
    """Only an i4 argument is limited to [-8, 7]; f32 values far outside it are simulated as given."""
    x = np.array([[-1e6, -9, -8.5, 7.5, 8, 1e6, 0, 3]], np.float32)
    np.testing.assert_array_equal(simulate(P.chain(2, 1, 8, 8), x), P.chain_reference(2, x))


def test_a_run_past_its_time_budget_stops_naming_the_kernel() -> None:
    """A budget of 0 s stops a run of hundreds of scheduling rounds; a generous one lets it finish."""
    x = rand(1, 4096)
    with pytest.raises(LimitError, match=r"kernel @chain: simulation stopped at its time budget after \d+ task "
                       r"resumptions; \d+ of 4 tasks unfinished .*Give a larger time_budget"):
        simulate(P.chain(2, 1, 4096, 8), x, time_budget=0.0)
    close(simulate(P.chain(2, 1, 4096, 8), x, time_budget=600.0), P.chain_reference(2, x))


def test_each_stream_reports_the_beats_it_moved() -> None:
    """A (1, 96) f32 tile is 3072 bits: 3 beats of 1024 (itensor.BEAT_BITS) per token."""
    _, stats = simulate_with_stats(P.chain(2, 1, 192, 96), rand(1, 192))
    assert [(s.tokens, s.beats) for s in stats.streams] == [(2, 6)] * 3


def test_unknown_depth_name_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"no stream named 'sx'; the streams are xs, s1"):
        simulate(P.chain(2, 1, 8, 8), rand(1, 8), depths={"sx": 3})


# -- stream usage errors -------------------------------------------------------------------------------


def _copy_program(n_in: int, n_reads: int, n_out: int) -> object:
    """A task that reads `n_reads` tokens of a stream of `n_in` and writes each to a stream of `n_out`."""
    t = 4
    X, Y = P.rows(1, n_in * t, t), P.rows(1, n_out * t, t)
    inner = f"""        %a = dataflow.itensor_read %xs_p : {ty(X)} -> {tile(X)}
        %w = dataflow.itensor_write %a, %ch : {tile(Y)} -> {ty(Y)}
        scf.yield %w : {ty(Y)}"""
    copy_body = loop(n_reads, inner, [("ch", "%ys_o", ty(Y))], results="f") + f"\n      dataflow.yield %f : {ty(Y)}"
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, n_in * t))} -> {ty(X)}
{task("copy", [("xs", X)], [("ys", Y)], copy_body)}
    %yt = dataflow.dma_store %ys : {ty(Y)} -> {tensor((1, n_out * t))}
    dataflow.yield %yt : {tensor((1, n_out * t))}"""
    return program("copy", [("x", (1, n_in * t))], [(1, n_out * t)], body)


def test_tokens_left_unread() -> None:
    with pytest.raises(StreamError, match=r"stream xs: 1 tokens left unread: copy read 5 of the 6 tokens dma_load\(x\) wrote"):
        simulate(_copy_program(6, 5, 5), rand(1, 24))


def test_producer_blocked_on_a_finished_consumer() -> None:
    with pytest.raises(StreamError,
                       match=r"dma_load\(x\) writes more tokens into stream xs than copy reads: copy finished after reading 3"):
        simulate(_copy_program(8, 3, 3), rand(1, 32))


def test_read_past_the_end() -> None:
    with pytest.raises(StreamError, match=r"task copy reads past the end of stream xs: dma_load\(x\) finished after writing 4 tokens"):
        simulate(_copy_program(4, 5, 5), rand(1, 16))


def test_consumer_reads_fewer_tokens_than_the_stream_type_promises() -> None:
    """The task writes only 3 of the 4 tokens its output type has: the DMA reads past the end."""
    with pytest.raises(StreamError, match=r"dma_store\(ys\) reads past the end of stream ys: "
                                          r"copy finished after writing 3 tokens \(the stream's type has 4\)"):
        simulate(_copy_program(3, 3, 4), rand(1, 12))


def test_two_consumers_need_a_fork() -> None:
    X = P.rows(1, 8, 4)
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, 8))} -> {ty(X)}
{map_task("a", [("xs", X)], ("ya", X), f"        %r = arith.negf %t0 : {tile(X)}")}
{map_task("b", [("xs", X)], ("yb", X), f"        %r = arith.negf %t0 : {tile(X)}")}
    %yt = dataflow.dma_store %ya : {ty(X)} -> {tensor((1, 8))}
    %zt = dataflow.dma_store %yb : {ty(X)} -> {tensor((1, 8))}
    dataflow.yield %yt, %zt : {tensor((1, 8))}, {tensor((1, 8))}"""
    module = program("two", [("x", (1, 8))], [(1, 8), (1, 8)], body)
    with pytest.raises(GraphError, match=r"kernel @two: stream %xs is read by a and b; fork it first \(dataflow.itensor_fork"):
        simulate(module, rand(1, 8))


def test_unsupported_op_names_the_task_and_op() -> None:
    X = P.rows(1, 8, 8)
    compute = f"        %r = arith.negf %t0 : {tile(X)}\n        %q = memref.alloc() : memref<4xf32>"
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, 8))} -> {ty(X)}
{map_task("weird", [("xs", X)], ("ys", X), compute)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((1, 8))}
    dataflow.yield %yt : {tensor((1, 8))}"""
    with pytest.raises(CompileError, match=r"task @weird: the functional simulator does not support `memref.alloc`"):
        simulate(program("w", [("x", (1, 8))], [(1, 8)], body), rand(1, 8))


def test_runtime_failure_names_the_task_and_op() -> None:
    """An out-of-range slice (the IR verifies, the data does not fit) fails at that op."""
    X = P.rows(1, 8, 8)
    compute = f"""        %c6 = arith.constant 6 : index
        %s = tensor.extract_slice %t0[0, %c6] [1, 4] [1, 1] : {tile(X)} to {tensor((1, 4))}
        %r = tensor.insert_slice %s into %t0[0, 0] [1, 4] [1, 1] : {tensor((1, 4))} into {tile(X)}"""
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, 8))} -> {ty(X)}
{map_task("slicer", [("xs", X)], ("ys", X), compute)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((1, 8))}
    dataflow.yield %yt : {tensor((1, 8))}"""
    with pytest.raises(TaskFailure, match=r"task slicer failed at `tensor.extract_slice`"):
        simulate(program("s", [("x", (1, 8))], [(1, 8)], body), rand(1, 8))


def test_argument_errors() -> None:
    module = P.chain(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"argument x_h has shape \(2, 8\), expected \(1, 8\)"):
        simulate(module, rand(2, 8))
    with pytest.raises(ValueError, match="takes 1 arrays"):
        simulate(module)
    (func,) = [op for op in module.ops if op.name == "func.func"]
    x = rand(1, 8)
    close(simulate(func, x), simulate(module, x))  # the func.func alone is the same program
    with pytest.raises(TypeError, match="expected a Program, a ModuleOp or a func.func, got ndarray"):
        simulate(x, x)
    two = P.chain(2, 1, 8, 8)
    two.body.block.add_op(func.clone())
    with pytest.raises(ValueError, match="exactly one func.func with a dataflow.kernel, found 2"):
        simulate(two, x)


@pytest.mark.parametrize(
    "build", [lambda: P.chain(4, 2, 32, 8), P.split_concat, P.converters, lambda: P.diamond(4, 4), lambda: P.matvec(32, 32, 16)])
def test_stream_and_task_names_match_the_timing_graph(build: object) -> None:
    """The names in deadlock messages, `depths=` and records are the timing graph's edge names."""
    from lowering.timing import kernel_graph
    from streamdsl.dialects.dataflow import KernelOp

    module = build()  # type: ignore[operator]
    (kernel,) = [op for op in module.walk() if isinstance(op, KernelOp)]
    graph, _ = kernel_graph(kernel)
    args = [rand(*a.type.get_shape()) for a in kernel.body.block.args]
    _, stats = simulate_with_stats(module, *args, default_depth=64)
    assert {(s.name, s.producer, s.consumer) for s in stats.streams} == {(e.name, e.src, e.dst) for e in graph.fifos}


def test_kernels_in_sequence_pass_tensors_through_hbm() -> None:
    """A func with two kernels (the second reads the first's result) and a dense weight constant."""
    from .irtext import parse

    X = P.rows(2, 16, 8)
    t2 = tensor((2, 16))

    def kernel(name: str, arg: str, compute: str, operands: str) -> str:
        return f"""  %{name} = dataflow.kernel "{name}"({operands}) : ({', '.join([t2] * (operands.count('%')))}) -> {t2} {{
  ^bb0(%{arg}: {t2}{', %wk: ' + t2 if operands.count('%') == 2 else ''}):
    %xs = dataflow.dma_load %{arg} : {t2} -> {ty(X)}
{map_task("op", [("xs", X)], ("ys", X), compute)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {t2}
    dataflow.yield %yt : {t2}
  }}"""

    text = f"""func.func @two(%x: {t2}) -> {t2} {{
{kernel("first", "xa", f"        %r = arith.negf %t0 : {tile(X)}", "%x")}
{kernel("second", "ya", f"        %r = arith.mulf %t0, %t0 : {tile(X)}", "%first")}
  func.return %second : {t2}
}}"""
    x = rand(2, 16)
    record: dict = {}
    close(simulate(parse(text), x, record=record), x * x)
    assert record["tokens"] == {"first/xs": 4, "first/ys": 4, "second/xs": 4, "second/ys": 4}
    with pytest.raises(ValueError, match="no stream named 'xs'; the streams are first/xs, first/ys, second/xs"):
        simulate(parse(text), x, depths={"xs": 4})


def test_a_stream_nobody_reads_is_rejected_before_running() -> None:
    X = P.rows(1, 8, 4)
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, 8))} -> {ty(X)}
    %xa, %xb = dataflow.itensor_fork %xs : {ty(X)} -> {ty(X)}, {ty(X)}
    %yt = dataflow.dma_store %xa : {ty(X)} -> {tensor((1, 8))}
    dataflow.yield %yt : {tensor((1, 8))}"""
    with pytest.raises(GraphError, match=r"kernel @dangling: stream %xb written by fork\(xs\) is never read; every stream needs"):
        simulate(program("dangling", [("x", (1, 8))], [(1, 8)], body), rand(1, 8))


@pytest.mark.parametrize("case", ["diamond", "transpose", "fork_join", "split_sign"])
def test_names_match_the_timing_graph_on_dsl_programs(case: str) -> None:
    """DSL programs (forks, converters, several outputs) name streams as the timing graph does."""
    from lowering.timing import kernel_graph
    from streamdsl.dialects.dataflow import KernelOp
    from tests.dsl import programs as dsl

    built = {"diamond": lambda: dsl.diamond(2, 64, 16), "transpose": lambda: dsl.transpose(32, 64, 16),
             "fork_join": lambda: dsl.fork_join(2, 64, 16), "split_sign": lambda: dsl.split_sign(2, 64, 16)}[case]()  # fmt: skip
    module = built.program.module
    (kernel,) = [op for op in module.walk() if isinstance(op, KernelOp)]
    graph, _ = kernel_graph(kernel)
    _, stats = simulate_with_stats(built.program, *built.inputs(np.random.default_rng(0)), default_depth=4096)
    assert {(s.name, s.producer, s.consumer) for s in stats.streams} == {(e.name, e.src, e.dst) for e in graph.fifos}
