"""Hostile inputs to the language core: sizes, integer ranges, divisors, casts, cycles and depth
attributes get a clean StreamdslError naming the culprit, in bounded time and memory."""

from __future__ import annotations

import time

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

import streamdsl as sd
from streamdsl.dialects.dataflow import DATAFLOW, kernel_of
from streamdsl.graph import GraphError
from streamdsl.itensor import MAX_NONLINEAR_TOKENS
from streamdsl.sim.functional import simulate
from streamdsl.wiring import kernel_nodes

R_TYPE = "!dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>"
KERNEL = """
!R = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>
!T = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d1, d0)>
func.func @k(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = dataflow.kernel "k"(%x) : (tensor<64x64xf32>) -> tensor<64x64xf32> {
  ^bb0(%xa: tensor<64x64xf32>):
    BODY
    dataflow.yield %o : tensor<64x64xf32>
  }
  func.return %y : tensor<64x64xf32>
}
"""


def parse(text: str) -> builtin.ModuleOp:
    ctx = Context(allow_unregistered=True)
    for dialect in (builtin.Builtin, func.Func, arith.Arith, DATAFLOW):
        ctx.load_dialect(dialect)
    module = Parser(ctx, text).parse_module()
    module.verify()
    return module


def kernel(body: str) -> builtin.ModuleOp:
    return parse(KERNEL.replace("BODY", body))


def test_mod_map_with_2_to_28_trips_is_refused_without_enumerating():
    # the 90-byte IR file that took 10.5 GB: offsets of a mod map are enumerated, so they are limited
    with pytest.raises(VerifyException, match=r"268435456 tokens and a map with mod.*limit is 1048576"):
        parse('"test.op"() : () -> !dataflow.itensor<1xf32, [268435456] * [1], (d0) -> (d0 mod 64)>')
    with pytest.raises(sd.ITensorError, match="limit is"):
        sd.itensor(sd.f32, tile=(4,), trips=(2**28,), steps=(4,), map="(d0) -> (d0 mod 64)")


def test_the_largest_enumerable_mod_map_is_accepted_and_correct():
    it = sd.itensor(sd.f32, tile=(1,), trips=(MAX_NONLINEAR_TOKENS,), steps=(1,), map="(d0) -> (d0 mod 64)")
    assert it.shape == (64,)
    assert it.tokens()[63:66] == [(63,), (0,), (1,)]


def test_a_linear_stream_of_10_to_12_tokens_has_closed_forms_and_refuses_enumeration():
    it = sd.itensor(sd.f32, tile=(8,), trips=(10**6, 10**6), steps=(0, 8), map="(d0, d1) -> (d1)")
    assert (it.num_tokens, it.shape, it.reuse_loops, it.is_regular) == (10**12, (8 * 10**6,), (0,), True)
    assert it == sd.itensor(sd.f32, tile=(8,), trips=(10**6, 10**6), steps=(0, 8), map="(d0, d1) -> (d1)")
    with pytest.raises(sd.LimitError, match="10+ tokens; listing its token offsets is limited"):
        it.offsets()


def test_sd_compile_of_a_10_to_12_token_stream_stops_with_a_limit_error():
    replay = "!dataflow.itensor<16x16xf32, [1000000, 1000000, 4, 4] * [0, 0, 16, 16], (d0, d1, d2, d3) -> (d2, d3)>"
    module = kernel("""%xs = dataflow.dma_load %xa : tensor<64x64xf32> -> !R
    %o = dataflow.dma_store %xs : !R -> tensor<64x64xf32>""".replace("!R ->", f"{replay} ->").replace("-> !R", f"-> {replay}"))
    with pytest.raises(sd.LimitError, match=r"16000000000000 tokens.*limit of 16777216"):
        sd.compile(module)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": (2**62,), "trips": (3,)}, "offsets past 2\\^63 in dim 0"),
        ({"steps": (1,), "trips": (2**63,)}, "trips: every entry must be an integer >= 1 and < 2\\^63"),
        ({"steps": (2**64,), "trips": (2,)}, "steps: every entry must be an integer >= 0 and < 2\\^63"),
        ({"steps": (1,), "trips": (2,), "map": "(d0) -> (d0 * 9223372036854775807 + 5)"}, "offsets past 2\\^63"),
        ({"steps": (1,), "trips": (4,), "map": "(d0) -> (d0 mod 0)"}, "divides by 0"),
        ({"steps": (1,), "trips": (4,), "map": "(d0) -> (d0 floordiv 0)"}, "divides by 0"),
        ({"steps": (1,), "trips": (4,), "map": "(d0) -> (d0 ceildiv -2)"}, "divides by -2"),
        ({"steps": (1,), "trips": (4,), "map": "(d0) -> (d0 mod (d0 + 1))"}, "positive constant"),
    ],
)
def test_integer_fields_are_checked_for_int64_overflow_and_division_by_zero(fields, message):
    args = {"tile": (1,), "map": "(d0) -> (d0)", **fields}
    with pytest.raises(sd.ITensorError, match=message):
        sd.itensor(sd.f32, **args)


def test_huge_trips_in_ir_text_are_a_verify_error_not_an_overflow():
    with pytest.raises(VerifyException, match="must be an integer >= 1 and < 2\\^63"):
        parse('"test.op"() : () -> !dataflow.itensor<1xf32, [99999999999999999999] * [1], (d0) -> (d0)>')


def test_a_cast_between_differently_ordered_types_is_refused_by_every_backend():
    module = kernel("""%xs = dataflow.dma_load %xa : tensor<64x64xf32> -> !R
    %t = dataflow.itensor_cast %xs : !R -> !T
    %o = dataflow.dma_store %t : !T -> tensor<64x64xf32>""")
    x = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    with pytest.raises(GraphError, match=r"itensor_cast from .*\(d0, d1\) -> \(d0, d1\).* to .*\(d1, d0\).*insert a converter"):
        simulate(module, x)
    kernel_op = kernel_of(module)
    with pytest.raises(GraphError, match="insert a converter"):
        kernel_nodes(kernel_op)  # the wiring of the timing graph and of the HLS emitter
    np.testing.assert_array_equal(sd.compile(module).simulate(x), x)  # sd.compile plans the converter first


def test_a_cycle_in_the_kernel_is_a_verify_error():
    text = KERNEL.replace("BODY", """%a:2 = dataflow.itensor_fork %b#0 : !R -> !R, !R
    %b:2 = dataflow.itensor_fork %a#0 : !R -> !R, !R
    %o = dataflow.dma_store %b#1 : !R -> tensor<64x64xf32>""")
    with pytest.raises(VerifyException, match="reads %b before dataflow.itensor_fork defines it: a cycle"):
        parse(text)


@pytest.mark.parametrize(
    "depth", ["0 : i64", "-3 : i64", '"deep"', "array<i64: 4, 4>", "array<i64: 0>", "2.5 : f32", "array<f32: 4.0>", "[0 : i64]"]
)
def test_a_depth_attribute_must_be_positive_integers_one_per_result(depth):
    text = KERNEL.replace("BODY", f"""%xs = dataflow.dma_load %xa {{depth = {depth}}} : tensor<64x64xf32> -> !R
    %o = dataflow.dma_store %xs : !R -> tensor<64x64xf32>""")
    with pytest.raises(VerifyException, match="must be a positive integer"):
        parse(text)


@pytest.mark.parametrize("depth", ["5 : i64", "array<i64: 5>", "array<i32: 5>", "[5 : i64]"])
def test_valid_depth_attributes_mean_the_same_to_simulator_and_sizing(depth):
    module = kernel(f"""%xs = dataflow.dma_load %xa {{depth = {depth}}} : tensor<64x64xf32> -> !R
    %o = dataflow.dma_store %xs : !R -> tensor<64x64xf32>""")
    record: dict = {}
    x = np.ones((64, 64), np.float32)
    np.testing.assert_array_equal(simulate(module, x, record=record), x)
    assert record["depth"] == {"xs": 5}


def test_a_stray_quote_in_ir_text_is_a_parse_error_not_a_hang():
    # xDSL 0.75's string-literal regex backtracks exponentially without the closing quote
    text = 'test.op"() : () -> !dataflow.itensor<1xf32, [1] * [0], (d0) -> (d0, d0)> ' + "x" * 60
    start = time.perf_counter()
    with pytest.raises(ParseError, match="closing string literal"):
        parse(text)
    assert time.perf_counter() - start < 1.0


def test_zero_divisor_folded_by_the_parser_is_a_clean_error():
    with pytest.raises(ParseError, match="mod, floordiv and ceildiv need a positive constant"):
        parse('"test.op"() : () -> !dataflow.itensor<1xf32, [1] * [0], (d0) -> ((4 mod 0))>')
    with pytest.raises(sd.ITensorError, match="positive constant"):
        sd.itensor(sd.f32, tile=(1,), trips=(1,), steps=(0,), map="(d0) -> ((0 floordiv 0))")


def test_the_functional_simulator_stops_at_its_time_budget():
    tiles = "!dataflow.itensor<1x1xf32, [64, 64] * [1, 1], (d0, d1) -> (d0, d1)>"
    module = kernel(f"""%s = dataflow.dma_load %xa : tensor<64x64xf32> -> {tiles}
    %o = dataflow.dma_store %s : {tiles} -> tensor<64x64xf32>""")
    x = np.ones((64, 64), np.float32)
    with pytest.raises(sd.LimitError, match=r"kernel @k: simulation stopped at its time budget after \d+ task resumptions"):
        simulate(module, x, time_budget=0.0)
    np.testing.assert_array_equal(simulate(module, x, time_budget=60.0), x)


def test_the_timed_simulator_stops_at_its_event_budget():
    from lowering.timing import kernel_graph
    from streamdsl.sim.timed import simulate_timed

    module = kernel(f"""%s = dataflow.dma_load %xa : tensor<64x64xf32> -> {R_TYPE}
    %o = dataflow.dma_store %s : {R_TYPE} -> tensor<64x64xf32>""")
    graph, _ = kernel_graph(kernel_of(module))
    assert simulate_timed(graph, max_events=32).makespan > 0  # 16 writes + 16 reads
    with pytest.raises(sd.LimitError, match="needs 32 events, past its budget of 31"):
        simulate_timed(graph, max_events=31)
