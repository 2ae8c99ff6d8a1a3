"""Timing-model schedules the other tests do not reach: a port accessed twice per iteration and
reductions whose size is not a power of two, against cycles derived by hand from the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowering.timing import U55C, kernel_graph
from streamdsl.itensor import BEAT_BITS

from .test_timing import kernel_of, parse


def _kernel(elems: int, tokens: int, out_elems: int, out_tokens: int, body: str) -> str:
    """dma_load -> task "t" -> dma_store; `body` sees %in (!I), %o (!O) and %c0, %c1."""
    ins = f"!dataflow.itensor<1x{elems}xf32, [{tokens}] * [{elems}], (d0) -> (0, d0)>"
    outs = f"!dataflow.itensor<1x{out_elems}xf32, [{out_tokens}] * [{out_elems}], (d0) -> (0, d0)>"
    x, y = f"tensor<1x{elems * tokens}xf32>", f"tensor<1x{out_elems * out_tokens}xf32>"
    return f"""
func.func @f(%x: {x}) -> {y} {{
  %y = dataflow.kernel "k"(%x) : ({x}) -> {y} {{
  ^bb0(%xa: {x}):
    %xs = dataflow.dma_load %xa : {x} -> {ins}
    %e = dataflow.itensor_empty : {outs}
    %r = dataflow.task "t" ins(%xs : {ins}) outs(%e : {outs}) -> {outs} {{
    ^bb0(%in: {ins}, %o: {outs}):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
{body}
    }}
    %yt = dataflow.dma_store %r : {outs} -> {y}
    dataflow.yield %yt : {y}
  }}
  func.return %y : {y}
}}""".replace("!I", ins).replace("!O", outs)


@pytest.mark.parametrize("trips", [3, 8])
def test_two_accesses_to_one_port_per_iteration_take_two_cycles(trips: int) -> None:
    """A FIFO port moves one token per cycle: a pipelined loop that reads its input twice (and
    writes its output twice) per iteration runs at II = 2, every token on its own cycle."""
    body = f"""
      %n = arith.constant {trips} : index
      %r = scf.for %i = %c0 to %n step %c1 iter_args(%w = %o) -> (!O) {{
        %a = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
        %b = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
        %w1 = dataflow.itensor_write %b, %w : tensor<1x16xf32> -> !O
        %w2 = dataflow.itensor_write %a, %w1 : tensor<1x16xf32> -> !O
        scf.yield %w2 : !O
      }}
      dataflow.yield %r : !O"""
    graph, _ = kernel_graph(kernel_of(parse(_kernel(16, 2 * trips, 16, 2 * trips, body))))
    task, op = graph.tasks["t"], U55C.stream_op
    k = np.arange(2 * trips)
    # reads at 0, 1 of each iteration; %b is ready at 2 (op after its read), %a's write follows
    assert task.reads["arg0"].tolist() == (op * k).tolist()
    assert task.writes["out0"].tolist() == (2 * op + op * k).tolist()
    for times in (*task.reads.values(), *task.writes.values()):
        assert np.all(np.diff(times) >= op)  # never two tokens of one port in one cycle


REDUCE = """
      %n = arith.constant {rows} : index
      %r = scf.for %i = %c0 to %n step %c1 iter_args(%w = %o) -> (!O) {{
        %t = dataflow.itensor_read %in : !I -> tensor<1x{elems}xf32>
        %z = arith.constant 0.000000e+00 : f32
        %e0 = tensor.empty() : tensor<1x1xf32>
        %acc = linalg.fill ins(%z : f32) outs(%e0 : tensor<1x1xf32>) -> tensor<1x1xf32>
        %s = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>],
            iterator_types = ["parallel", "reduction"]}}
          ins(%t : tensor<1x{elems}xf32>) outs(%acc : tensor<1x1xf32>) {{
        ^bb0(%a: f32, %b: f32):
          %c = arith.addf %a, %b : f32
          linalg.yield %c : f32
        }} -> tensor<1x1xf32>
        %n2 = dataflow.itensor_write %s, %w : tensor<1x1xf32> -> !O
        scf.yield %n2 : !O
      }}
      dataflow.yield %r : !O"""


def _row_sum_write(elems: int, rows: int = 4) -> list[int]:
    text = _kernel(elems, rows, 1, rows, REDUCE.format(rows=rows, elems=elems))
    return kernel_graph(kernel_of(parse(text)))[0].tasks["t"].writes["out0"].tolist()


@pytest.mark.parametrize("elems", [2, 3, 5, 12, 16, 17, 48, 100])
def test_a_reduction_takes_an_adder_tree_of_ceil_log2_levels(elems: int) -> None:
    """Summing n elements needs ceil(log2 n) levels of adders after the element's own add: a
    reduction of 12 elements is as deep as one of 16, one level deeper than one of 8."""
    beats = -(-elems // (BEAT_BITS // 32))  # the f32 row crosses its stream in 1,024-bit beats
    op, add, fill = U55C.stream_op * beats, U55C.op_latency["arith.addf"], 1
    issue = -(-elems // U55C.lanes)  # cycles the tile op occupies its lanes
    levels = math.ceil(math.log2(elems))
    latency = issue - 1 + add + levels * add
    first = max(op, fill) + latency  # read (op) and fill (1) in parallel, then the reduction
    ii = max(beats, issue)  # the input port takes a beat per cycle
    assert _row_sum_write(elems) == [first + ii * r for r in range(4)]


NEST = """
      %lo = arith.constant {lo} : index
      %st = arith.constant {stride} : index
      %n = arith.constant {hi} : index
      %r = scf.for %i = %lo to %n step %st iter_args(%w = %o) -> (!O) {{
        {inner_trips}
        %r2 = scf.for %j = %c0 to %ub step %c1 iter_args(%w2 = %w) -> (!O) {{
          %a = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
          %w3 = dataflow.itensor_write %a, %w2 : tensor<1x16xf32> -> !O
          scf.yield %w3 : !O
        }}
        scf.yield %r2 : !O
      }}
      dataflow.yield %r : !O"""


def _nest_task(outer: int, tokens: int, inner_trips: str, lo: int = 0, stride: int = 1):  # noqa: ANN202
    text = _kernel(16, tokens, 16, tokens, NEST.format(lo=lo, stride=stride, hi=lo + outer * stride, inner_trips=inner_trips))
    return kernel_graph(kernel_of(parse(text)))[0].tasks["t"]


@pytest.mark.parametrize(("lo", "stride", "outer", "first", "step"), [(0, 1, 4, 1, 1), (1, 2, 3, 0, 2)])
def test_a_triangular_nest_runs_its_iterations_as_rectangular_nests_one_after_another(
        lo: int, stride: int, outer: int, first: int, step: int) -> None:
    """Iteration i of `for i in range(lo, ..., stride): for j in range(first + step * i)` is timed
    as an iteration of the rectangular nest with that inner trip count, starts one of that nest's
    periods after iteration i - 1 started, and the last one ends the task as it ends that nest."""
    trips = [first + step * i for i in range(lo, lo + outer * stride, stride)]
    bound = """%k = arith.constant {step} : index
        %f = arith.constant {first} : index
        %ik = arith.muli {index}, %k : index
        %ub = arith.addi %ik, %f : index"""
    triangular = _nest_task(outer, sum(trips), bound.format(step=step, first=first, index="%i"), lo, stride)
    reads, writes, start = [], [], 0
    for m in trips:  # the same bound's arithmetic on constants; two iterations: one period apart
        rect = _nest_task(2, 2 * m, bound.format(step=step, first=m, index="%c0"))
        rr, rw = rect.reads["arg0"], rect.writes["out0"]
        reads += (start + rr[:m]).tolist()
        writes += (start + rw[:m]).tolist()
        start += int(rr[m] - rr[0])
    assert triangular.reads["arg0"].tolist() == reads and triangular.writes["out0"].tolist() == writes
    last = _nest_task(1, trips[-1], bound.format(step=step, first=trips[-1], index="%c0"))
    assert triangular.latency == start - int(rr[m] - rr[0]) + last.latency
