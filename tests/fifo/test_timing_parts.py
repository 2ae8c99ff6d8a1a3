"""The timing model's parts the kernel-level tests reach only in part: a reduction outside any
loop (per-lane partials and their tree), loop-carried accumulators kept as interleaved partials,
the task's `ii` hint, DMAs under another table, and the scalar work of tile ops, each against
cycles or counts derived by hand from the table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects import scf
from xdsl.ir import Operation

from lowering.timing import (
    U55C,
    LanePartials,
    TimingError,
    accumulator,
    converter_depth,
    dma_token_cycles,
    hbm_word_lanes,
    kernel_graph,
    lane_partials,
    task_timing,
    tile_work,
)
from streamdsl.dialects.dataflow import DmaLoadOp, TaskOp
from streamdsl.dtypes import f32, i1
from streamdsl.itensor import BEAT_BITS, itensor

from .test_timing import kernel_of, one_task, parse
from .test_timing_cycles import _kernel

ROW_SUM = """
      %t = dataflow.itensor_read %in : !I -> tensor<{rows}x{elems}xf32>
      %z = arith.constant 0.000000e+00 : f32
      %e0 = tensor.empty() : tensor<{rows}x1xf32>
      %acc = linalg.fill ins(%z : f32) outs(%e0 : tensor<{rows}x1xf32>) -> tensor<{rows}x1xf32>
      %s = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>],
          iterator_types = ["parallel", "reduction"]}}
        ins(%t : tensor<{rows}x{elems}xf32>) outs(%acc : tensor<{rows}x1xf32>) {{
      ^bb0(%a: f32, %b: f32):
        %c = arith.{combiner} %a, %b : f32
        linalg.yield %c : f32
      }} -> tensor<{rows}x1xf32>
      %w = dataflow.itensor_write %s, %o : tensor<{rows}x1xf32> -> !O
      dataflow.yield %w : !O"""


def _row_sum(elems: int, rows: int = 1, combiner: str = "addf"):  # noqa: ANN202
    """A task reading one {rows}x{elems} token, summing its rows outside any loop, writing the sums."""
    text = _kernel(elems, 1, 1, 1, ROW_SUM.format(rows=rows, elems=elems, combiner=combiner))
    if rows > 1:
        text = text.replace(f"1x{elems}xf32, [1] * [{elems}], (d0) -> (0, d0)", f"{rows}x{elems}xf32, [1] * [{elems}], (d0) -> (0, d0)")
        text = text.replace("1x1xf32, [1] * [1], (d0) -> (0, d0)", f"{rows}x1xf32, [1] * [1], (d0) -> (0, d0)")
        text = text.replace(f"tensor<1x{elems}xf32>", f"tensor<{rows}x{elems}xf32>").replace("tensor<1x1xf32>", f"tensor<{rows}x1xf32>")
    return kernel_of(parse(text))


def _reduction(kernel) -> Operation:  # noqa: ANN001
    return next(op for op in kernel.walk() if op.name == "linalg.generic")


@pytest.mark.parametrize("elems", [256, 512])
def test_a_reduction_outside_loops_folds_lanes_into_interleaved_partials_then_a_tree(elems: int) -> None:
    """Outside a pipelined loop a sum of E f32 elements over 64 lanes runs at II=1: E / 64 chunks,
    each lane folding into min(chunks, addf latency) interleaved partials, then a tree of
    ceil(log2(partials x lanes)) + 1 adder levels (the + 1 folds in the initial value)."""
    kernel = _row_sum(elems)
    add, lanes = U55C.op_latency["arith.addf"], U55C.lanes
    chunks = elems // lanes
    interleave = min(chunks, add)
    levels = math.ceil(math.log2(interleave * lanes)) + 1
    plan = lane_partials(_reduction(kernel), lanes)
    assert plan == LanePartials(plan.combiner, lanes, chunks, interleave, levels * add) and plan.combiner.name == "arith.addf"
    beats = elems * 32 // BEAT_BITS  # the read takes a beat per cycle
    latency = (chunks - 1) + add + levels * add  # issue over the chunks, the element's add, the tree
    assert kernel_graph(kernel)[0].tasks["t"].writes["out0"].tolist() == [beats + latency]


def test_lane_partials_need_a_fold_several_chunks_and_whole_chunks_per_output() -> None:
    """Two elements a row over two lanes: one chunk per output, two adder levels. A product is
    no fold; a chunk as wide as the work, or lanes that do not divide the row, give no plan."""
    pair = _reduction(_row_sum(2, rows=4))
    add = U55C.op_latency["arith.addf"]
    plan = lane_partials(pair, 2)
    assert plan == LanePartials(plan.combiner, 2, 1, 1, 2 * add)
    assert lane_partials(pair, 8) is None  # all 8 elements in one cycle
    assert lane_partials(_reduction(_row_sum(12)), 8) is None  # 12 is no multiple of 8
    assert lane_partials(_reduction(_row_sum(256, combiner="mulf")), 64) is None
    assert lane_partials(next(op for op in _row_sum(256).walk() if op.name == "linalg.fill"), 64) is None


CARRIED = """
      %z = arith.constant 0.000000e+00 : f32
      %e0 = tensor.empty() : tensor<1x16xf32>
      %init = linalg.fill ins(%z : f32) outs(%e0 : tensor<1x16xf32>) -> tensor<1x16xf32>
      %n = arith.constant {trips} : index
      %sum, %other = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %init, %xc = %init) -> (tensor<1x16xf32>, tensor<1x16xf32>) {{
        %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
        %s = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>,
            affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}}
          ins({ins} : tensor<1x16xf32>, tensor<1x16xf32>) outs(%e0 : tensor<1x16xf32>) {{
        ^bb0(%a: f32, %b: f32, %c: f32):
          %d = arith.{combiner} {args} : f32
          linalg.yield %d : f32
        }} -> tensor<1x16xf32>
        scf.yield {yields} : tensor<1x16xf32>, tensor<1x16xf32>
      }}
      %w = dataflow.itensor_write %sum, %o : tensor<1x16xf32> -> !O
      dataflow.yield %w : !O"""


def _carried(trips: int, combiner: str = "addf", args: str = "%a, %b", yields: str = "%s, %xc", ins: str = "%t, %acc"):  # noqa: ANN202
    text = _kernel(16, trips, 16, 1, CARRIED.format(trips=trips, combiner=combiner, args=args, yields=yields, ins=ins))
    kernel = kernel_of(parse(text))
    loop = next(op for op in kernel.walk() if isinstance(op, scf.ForOp))
    return kernel, loop, loop.body.block.args[1]


def test_accumulator_is_an_f32_fold_of_the_carried_value_and_another_input_yielded_back() -> None:
    kernel, loop, acc = _carried(4)
    assert accumulator(acc) is next(op for op in loop.walk() if op.name == "linalg.generic")
    assert accumulator(loop.body.block.args[2]) is None  # %xc is only yielded back
    assert accumulator(_carried(4, combiner="mulf")[2]) is None  # a product is no accumulator
    assert accumulator(_carried(4, args="%a, %a")[2]) is None  # not a fold of both inputs
    assert accumulator(_carried(4, yields="%xc, %s")[2]) is None  # yielded as the other carried value


@pytest.mark.parametrize("trips", [1, 2, 16])
def test_a_carried_sum_becomes_interleaved_partials_and_a_tree_after_the_loop(trips: int) -> None:
    """The sum's chain (its addf, 4 cycles) spans k = min(trips, 4) iterations: k partials, an
    iteration every ceil(4 / k) cycles, then ceil(log2 k) adder levels after the last iteration;
    one iteration keeps one sum."""
    kernel, loop, acc = _carried(trips)
    add = U55C.op_latency["arith.addf"]
    k = min(trips, add)
    timing = task_timing(next(op for op in kernel.walk() if isinstance(op, TaskOp))).loops[loop]
    ii, combine = -(-add // k), math.ceil(math.log2(k)) * add
    assert (timing.ii, timing.partials, timing.combine) == (ii, {acc: k} if k > 1 else {}, combine)
    fill = 1  # the loop starts once the fill before it is done
    depth = 1 + add  # the read, then the add
    task = kernel_graph(kernel)[0].tasks["t"]
    assert task.reads["arg0"].tolist() == [fill + ii * i for i in range(trips)]
    assert task.writes["out0"].tolist() == [fill + ii * (trips - 1) + depth + combine]


def test_the_task_ii_hint_slows_its_pipelined_loops() -> None:
    copy = """
      %r = scf.for %i = %c0 to %c16 step %c1 iter_args(%w = %o) -> (!dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) {
        %t = dataflow.itensor_read %in : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> -> tensor<1x16xf32>
        %n = dataflow.itensor_write %t, %w : tensor<1x16xf32> -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
        scf.yield %n : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
      }
      dataflow.yield %r : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>"""
    text = one_task(copy, unroll="64").replace("unroll = 64 : i64", "unroll = 64 : i64, ii = 3 : i64")
    task = kernel_graph(kernel_of(parse(text)))[0].tasks["t"]
    assert task.reads["arg0"].tolist() == [3 * i for i in range(16)]
    assert task.writes["out0"].tolist() == [3 * i + 1 for i in range(16)]


def test_dma_tokens_take_the_hbm_rate_of_the_table_given() -> None:
    """A 256-element f32 token is 16 HBM words and 8 beats: at 300 MHz a channel gives 354 bits a
    cycle (24 cycles a token), at 150 MHz 708 (12: the 16 words, one per cycle, bound it)."""
    kernel = _row_sum(256)
    load = next(op for op in kernel.walk() if isinstance(op, DmaLoadOp))
    slow = U55C.at_clock(150)
    assert (dma_token_cycles(load), dma_token_cycles(load, slow)) == (24, 16)
    graph = kernel_graph(kernel, slow)[0]
    assert graph.tasks["dma_load(xa)"].writes["out0"].tolist() == [U55C.dma_latency + 16 - 8]  # first beat 8 beats early
    assert graph.tasks["dma_store(r)"].latency == 1 + U55C.dma_latency  # one word of sums, a cycle


def test_hbm_words_hold_8_bit_lanes_of_booleans() -> None:
    """hls_backend/hbm.py packs i1 elements a byte each: 64 a 512-bit word, 16 f32."""
    bits = itensor(i1, tile=[1, 8], trips=[4], steps=[8], map="(d0) -> (0, d0)")
    floats = itensor(f32, tile=[1, 8], trips=[4], steps=[8], map="(d0) -> (0, d0)")
    assert (hbm_word_lanes(bits, 512), hbm_word_lanes(floats, 512)) == (64, 16)


TILES = """
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x5xf32>, %c: tensor<2x5xf32>, %s: f32, %t: tensor<4x8xf32>, %r: tensor<4x1xf32>,
             %big: tensor<8x4xf32>, %row: tensor<1x4xf32>) {
  %m = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x5xf32>) outs(%c : tensor<2x5xf32>) -> tensor<2x5xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>],
      iterator_types = ["parallel", "reduction"]} ins(%s, %t : f32, tensor<4x8xf32>) outs(%r : tensor<4x1xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32):
    %p = arith.mulf %x, %y : f32
    %q = arith.addf %p, %z : f32
    linalg.yield %q : f32
  } -> tensor<4x1xf32>
  %i = tensor.insert_slice %row into %big[0, 0] [1, 4] [1, 1] : tensor<1x4xf32> into tensor<8x4xf32>
  func.return
}"""


def test_tile_work_counts_the_scalar_operations() -> None:
    """A 2x3 by 3x5 matmul is 30 multiply-adds; a generic's iteration space is read off every
    shaped operand (a scalar first among them too); an insert_slice moves its slice's elements."""
    ops = {op.name: op for op in parse(TILES).walk()}
    assert tile_work(ops["linalg.matmul"]) == 30
    assert tile_work(ops["linalg.generic"]) == 32
    assert tile_work(ops["tensor.insert_slice"]) == 4


def test_task_errors_name_the_task_for_computed_bounds_and_writes() -> None:
    """A bound computed from a run-time value names the task from inside the arithmetic; an
    output port written too few times is named with what the task writes."""
    run_time = """
      %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
      %d = tensor.dim %t, %c0 : tensor<1x16xf32>
      %ub = arith.addi %d, %c1 : index
      %r = scf.for %i = %c0 to %ub step %c1 iter_args(%w = %o) -> (!O) {
        %n = dataflow.itensor_write %t, %w : tensor<1x16xf32> -> !O
        scf.yield %n : !O
      }
      dataflow.yield %r : !O"""
    with pytest.raises(TimingError, match="task t: scf.for upper bound is neither"):
        kernel_graph(kernel_of(parse(_kernel(16, 1, 16, 2, run_time))))
    short = run_time.replace("%ub = arith.addi %d, %c1 : index", "%ub = arith.addi %c1, %c0 : index")
    with pytest.raises(TimingError, match=r"task t: writes 1 tokens on port 1 but its type .* has 2"):
        kernel_graph(kernel_of(parse(_kernel(16, 1, 16, 2, short))))


def test_a_reduction_after_a_pipelined_loop_is_timed_as_one_outside_loops() -> None:
    """A loop reading one 8-beat token takes 8 cycles; the row sum after it then runs as alone,
    8 cycles later (its lanes folded into partials, not unrolled as inside the loop)."""
    skip = """
      scf.for %i = %c0 to %c1 step %c1 {
        %u = dataflow.itensor_read %in : !I -> tensor<1x256xf32>
        scf.yield
      }"""
    alone = kernel_graph(_row_sum(256))[0].tasks["t"].writes["out0"].tolist()
    text = _kernel(256, 2, 1, 1, skip + ROW_SUM.format(rows=1, elems=256, combiner="addf"))
    after = kernel_graph(kernel_of(parse(text)))[0].tasks["t"]
    assert after.reads["arg0"].tolist() == [0, 8] and after.writes["out0"].tolist() == [8 + alone[0]]


def test_a_port_never_accessed_is_named() -> None:
    unread = """
      %z = arith.constant 0.000000e+00 : f32
      %e0 = tensor.empty() : tensor<1x16xf32>
      %t = linalg.fill ins(%z : f32) outs(%e0 : tensor<1x16xf32>) -> tensor<1x16xf32>
      %w = dataflow.itensor_write %t, %o : tensor<1x16xf32> -> !O
      dataflow.yield %w : !O"""
    with pytest.raises(TimingError, match=r"task t: reads 0 tokens on port 0 but its type .* has 1"):
        kernel_graph(kernel_of(parse(_kernel(16, 1, 16, 1, unread))))


def test_a_scalar_inserted_into_a_tile_takes_a_buffer_access() -> None:
    insert = """
      %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
      %z = arith.constant 0.000000e+00 : f32
      %v = tensor.insert %z into %t[%c0, %c0] : tensor<1x16xf32>
      %w = dataflow.itensor_write %v, %o : tensor<1x16xf32> -> !O
      dataflow.yield %w : !O"""
    task = kernel_graph(kernel_of(parse(_kernel(16, 1, 16, 1, insert))))[0].tasks["t"]
    assert task.writes["out0"].tolist() == [U55C.stream_op + U55C.buffer_latency]  # the read, then the insert


CONVERTER = """
func.func @f(%x: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %y = dataflow.kernel "k"(%x) : (tensor<16x16xf32>) -> tensor<16x16xf32> {
  ^bb0(%xa: tensor<16x16xf32>):
    %b = dataflow.dma_load %xa : tensor<16x16xf32> -> !R
    %t = dataflow.itensor_converter %b : !R -> !C
    %s = dataflow.dma_store %t : !C -> tensor<16x16xf32>
    dataflow.yield %s : tensor<16x16xf32>
  }
  func.return %y : tensor<16x16xf32>
}"""


@pytest.mark.parametrize("tile", [4, 8])
def test_a_converter_writes_each_token_at_its_static_schedule_step(tile: int) -> None:
    """Row-major tiles of a 16x16 tensor to column-major, one bank: the emitted loop reads a source
    beat every step; destination token k needs source tile (k % n) * n + k // n and its beats go
    one a step once that tile is in (an 8x8 f32 tile is 2 beats). The model reads token j at its
    first beat's step, writes token k at its last beat's step plus the bank's latency, and its
    accesses take each program position once."""
    n, beats = 16 // tile, -(-tile * tile * 32 // BEAT_BITS)
    it = f"!dataflow.itensor<{tile}x{tile}xf32, [{n}, {n}] * [{tile}, {tile}], (d0, d1) -> "
    text = CONVERTER.replace("!R", it + "(d0, d1)>").replace("!C", it + "(d1, d0)>")
    conv = kernel_graph(kernel_of(parse(text)))[0].tasks["converter(b)"]
    k = np.arange(n * n)
    first = ((k % n) * n + k // n + 1) * beats - 1  # the step a destination token's first beat may go
    last = np.zeros_like(k)
    for i in k:  # beats one a step, in order
        last[i] = max(first[i], (last[i - 1] + 1) if i else 0) + beats - 1
    assert conv.reads["arg0"].tolist() == (k * beats).tolist()
    assert conv.writes["out0"].tolist() == (last + converter_depth() - 1).tolist()
    ranks = np.concatenate([conv.order["arg0"], conv.order["out0"]])
    assert len(set(ranks.tolist())) == ranks.size
    assert conv.latency == max(n * n * beats, int(last[-1]) + 1) + converter_depth() - 1


def test_an_element_read_from_a_tile_inside_a_body_takes_a_buffer_access() -> None:
    """A body adding t[0, 15 - j] to t[0, j]: the index, the buffer read (2 cycles), the add (4)."""
    gather = """
      %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
      %e1 = tensor.empty() : tensor<1x16xf32>
      %c15 = arith.constant 15 : index
      %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
          iterator_types = ["parallel", "parallel"]} ins(%t : tensor<1x16xf32>) outs(%e1 : tensor<1x16xf32>) {
      ^bb0(%a: f32, %b: f32):
        %j = linalg.index 1 : index
        %m = arith.subi %c15, %j : index
        %v = tensor.extract %t[%c0, %m] : tensor<1x16xf32>
        %s = arith.addf %a, %v : f32
        linalg.yield %s : f32
      } -> tensor<1x16xf32>
      %w = dataflow.itensor_write %g, %o : tensor<1x16xf32> -> !O
      dataflow.yield %w : !O"""
    task = kernel_graph(kernel_of(parse(_kernel(16, 1, 16, 1, gather))))[0].tasks["t"]
    path = U55C.op_latency["arith.subi"] + U55C.buffer_latency + U55C.op_latency["arith.addf"]
    assert task.writes["out0"].tolist() == [U55C.stream_op + path]


TWO_RESULTS = """
func.func @f(%t: tensor<1x16xf32>, %init: tensor<1x16xf32>) -> tensor<1x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %init) -> (tensor<1x16xf32>) {
    %s, %s2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>,
        affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%t : tensor<1x16xf32>) outs(%acc, %init : tensor<1x16xf32>, tensor<1x16xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %d = arith.addf %a, %b : f32
      linalg.yield %d, %d : f32, f32
    } -> tensor<1x16xf32>, tensor<1x16xf32>
    scf.yield %s : tensor<1x16xf32>
  }
  func.return %r : tensor<1x16xf32>
}"""


def test_a_fold_with_two_results_is_no_accumulator() -> None:
    loop = next(op for op in parse(TWO_RESULTS).walk() if isinstance(op, scf.ForOp))
    assert accumulator(loop.body.block.args[1]) is None
