"""The one wiring of a kernel (streamdsl/wiring.py): which ops are processes, how they are named,
which streams each reads and writes, which stream connects which two, the depth of each FIFO and
the one-writer / one-reader rules. The functional simulator, the timing graph and the HLS emitter
all wire kernels with it (tests/sim/test_functional.py checks that their names agree)."""

import pytest
from test_dialect import build_kernel, context
from xdsl.parser import Parser

from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorForkOp,
    ITensorJoinOp,
    KernelOp,
    TaskOp,
    kernel_of,
    set_fifo_depth,
)
from streamdsl.graph import GraphError
from streamdsl.wiring import (
    check_depth_names,
    kernel_nodes,
    stream_depth,
    stream_reads,
    stream_root,
    stream_writes,
    task_ports,
    wire_kernel,
)

S = "!dataflow.stream<tensor<1x16xf32>, depth = 5>"
STREAM_LEVEL = f"""dataflow.kernel "k"() : () -> () {{
  %sa = dataflow.stream : {S}
  %sb = dataflow.stream : {S}
  dataflow.task "gen" ins(%sa, %sb : {S}, {S}) outs(:) {{
  ^bb0(%a: {S}, %b: {S}):
    %t = arith.constant dense<1.0> : tensor<1x16xf32>
    dataflow.stream_write %t, %b : tensor<1x16xf32> -> {S}
    dataflow.stream_write %t, %a : tensor<1x16xf32> -> {S}
    dataflow.yield
  }}
  dataflow.task "eat" ins(%sb, %sa : {S}, {S}) outs(:) {{
  ^bb0(%b: {S}, %a: {S}):
    %x = dataflow.stream_read %a : {S} -> tensor<1x16xf32>
    %y = dataflow.stream_read %b : {S} -> tensor<1x16xf32>
    dataflow.yield
  }}
  dataflow.yield
}}"""


def kernel() -> KernelOp:
    return kernel_of(build_kernel())


def stream_kernel() -> KernelOp:
    return kernel_of(Parser(context(), STREAM_LEVEL).parse_module())


def test_nodes_are_the_processes_named_by_kind_and_source():
    names = [name for _, name in kernel_nodes(kernel())]
    # casts, empties and the yield are no processes; a merge names all its sources
    assert names == ["dma_load(0)", "produce", "fork(produce)", "chunk(0)", "concat(0, 1)", "join(0, 0)",
                     "converter(0)", "consume", "dma_store(consume)"]  # fmt: skip


def test_every_stream_has_one_writer_and_one_reader_through_casts():
    k = kernel()
    wires = wire_kernel(kernel_nodes(k), stream_reads, stream_writes)
    fork = next(op for op in k.body.block.ops if isinstance(op, ITensorForkOp))
    cast = next(op for op in k.body.block.ops if isinstance(op, ITensorCastOp))
    through_cast = next(w for w in wires if w.value is fork.outputs[1])
    assert (through_cast.consumer, through_cast.read) == ("join(0, 0)", cast.result)
    assert stream_root(cast.result) is fork.outputs[1]
    # no name hints here: producer->consumer, the second of a pair made unique with #2
    assert [w.name for w in wires if w.producer == "chunk(0)"] == ["chunk(0)->concat(0, 1)", "chunk(0)->concat(0, 1)#2"]
    assert len(wires) == len({w.value for w in wires}) == 10


def test_reads_and_writes_per_op_kind():
    k = kernel()
    ops = {type(op): op for op in k.body.block.ops}
    load, store, join, task = ops[DmaLoadOp], ops[DmaStoreOp], ops[ITensorJoinOp], ops[TaskOp]
    assert (stream_reads(load), stream_writes(load)) == ([], [load.result])
    assert (stream_reads(store), stream_writes(store)) == ([store.source], [])
    assert (stream_reads(join), stream_writes(join)) == (list(join.sources), [join.result])
    assert (stream_reads(task), stream_writes(task)) == (list(task.inputs), list(task.outputs))
    with pytest.raises(GraphError, match="`dataflow.yield` is not a process of a dataflow.kernel"):
        stream_reads(k.body.block.last_op)


def test_a_stream_level_task_writes_the_streams_it_stream_writes():
    k = stream_kernel()
    gen, eat = [op for op in k.body.block.ops if isinstance(op, TaskOp)]
    sa, sb = [op.results[0] for op in list(k.body.block.ops)[:2]]
    assert [(arg.index, value, written) for arg, value, written in task_ports(gen)] == [(0, sa, True), (1, sb, True)]
    assert (stream_reads(gen), stream_writes(gen)) == ([], [sa, sb])
    assert (stream_reads(eat), stream_writes(eat)) == ([sb, sa], [])
    wires = wire_kernel(kernel_nodes(k), stream_reads, stream_writes)
    assert [(w.name, w.producer, w.consumer) for w in wires] == [("sa", "gen", "eat"), ("sb", "gen", "eat")]
    assert [stream_depth(w.name, w.value, {"sb": 7}) for w in wires] == [5, 7]  # the type's depth, an override


def test_depth_is_the_override_then_the_ir_then_the_default():
    wires = wire_kernel(kernel_nodes(kernel()), stream_reads, stream_writes)
    load = next(w for w in wires if w.producer == "dma_load(0)")
    assert stream_depth(load.name, load.value, {}) == 2  # DEFAULT_DEPTH, the Vitis default
    assert stream_depth(load.name, load.value, {}, default=None) is None  # unbounded
    set_fifo_depth(load.value, 9)
    assert stream_depth(load.name, load.value, {}) == 9
    assert stream_depth(load.name, load.value, {load.name: 3}) == 3
    with pytest.raises(GraphError, match=r"stream dma_load\(0\)->produce: depth must be >= 1, got 0"):
        stream_depth(load.name, load.value, {load.name: 0})
    check_depth_names({load.name: 3}, [w.name for w in wires])
    with pytest.raises(GraphError, match=r"no stream named 'nope'; the streams are dma_load\(0\)->produce, produce->fork"):
        check_depth_names({"nope": 3}, [w.name for w in wires])


def test_wiring_errors_name_the_stream_and_the_nodes():
    k = kernel()
    nodes = kernel_nodes(k)
    load = nodes[0][0]
    twice = {op for op, name in nodes if name in ("produce", "fork(produce)")}
    produce = nodes[1][0]
    with pytest.raises(GraphError, match=r"stream <.*> is read by produce and fork\(produce\); fork it first"):
        wire_kernel(nodes, lambda op: [load.result] if op in twice else stream_reads(op), stream_writes)
    with pytest.raises(GraphError, match=r"written by dma_load\(0\) is never read; every stream needs one consumer"):
        wire_kernel(nodes, lambda op: [] if op is produce else stream_reads(op), stream_writes)
    with pytest.raises(GraphError, match=r"read by produce has no producer in the kernel"):
        wire_kernel(nodes, stream_reads, lambda op: [] if op is load else stream_writes(op))
