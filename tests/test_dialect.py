"""The dataflow dialect from Python: op constructors build a verifying kernel, the IR round-trips,
verifier errors name the op, dtypes map to and from xDSL types."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, scf
from xdsl.dialects.builtin import Builtin, IndexType, MemRefType, ModuleOp, TensorType
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

import streamdsl as sd
from streamdsl.dialects.dataflow import (
    DATAFLOW,
    DEFAULT_DEPTH,
    BufferOp,
    DmaLoadOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorChunkOp,
    ITensorConcatOp,
    ITensorConverterOp,
    ITensorEmptyOp,
    ITensorForkOp,
    ITensorJoinOp,
    ITensorReadOp,
    ITensorReassociateOp,
    ITensorType,
    ITensorWriteOp,
    KernelOp,
    StreamOp,
    StreamReadOp,
    StreamType,
    StreamWriteOp,
    TaskOp,
    YieldOp,
    enclosing_task,
    fifo_depth,
    kernel_of,
    set_fifo_depth,
)
from streamdsl.dtypes import DTYPES, dtype_from_ir

ROW = sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2))  # row of tiles at a time
COL = sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2), order=(1, 0))  # Fig. 5 (b)
HALF = sd.itensor.tiled(sd.f32, shape=(8, 4), tile=(4, 2))
TENSOR = TensorType(builtin.f32, (8, 8))
LANES = sd.itensor.tiled(sd.f32, shape=(16, 8), tile=(4, 2))  # two 8x8 lanes joined round robin
LANES_COL = sd.itensor.tiled(sd.f32, shape=(16, 8), tile=(4, 2), order=(1, 0))
JOINED = TensorType(builtin.f32, (16, 8))


def context() -> Context:
    ctx = Context()
    for dialect in (Builtin, DATAFLOW, arith.Arith, func.Func, scf.Scf):
        ctx.load_dialect(dialect)
    return ctx


def text_of(op: object) -> str:
    out = StringIO()
    Printer(stream=out).print_op(op)  # type: ignore[arg-type]
    return out.getvalue()


def copy_task(name: str, source: object, out_type: ITensorType) -> tuple[ITensorEmptyOp, TaskOp]:
    """A task that reads every token of `source` and writes it to a stream of `out_type`."""
    empty = ITensorEmptyOp(out_type)
    body = Block(arg_types=[source.type, out_type])  # type: ignore[attr-defined]
    src, dest = body.args
    bounds = [arith.ConstantOp.from_int_and_width(v, IndexType()) for v in (0, out_type.itensor.num_tokens, 1)]
    loop_body = Block(arg_types=[IndexType(), out_type])
    read = ITensorReadOp(src)
    write = ITensorWriteOp(read.result, loop_body.args[1])
    loop_body.add_ops([read, write, scf.YieldOp(write.result)])
    loop = scf.ForOp(*(b.result for b in bounds), [dest], loop_body)
    body.add_ops([*bounds, loop, YieldOp(loop.results[0])])
    return empty, TaskOp(name, [source], [empty.result], Region(body))  # type: ignore[list-item]


def build_kernel() -> ModuleOp:
    """HBM -> dma_load -> task -> fork -> (chunk/concat, cast) -> join -> converter -> task -> dma_store."""
    body = Block(arg_types=[TENSOR])
    load = DmaLoadOp(body.args[0], ROW.to_ir())
    empty, produce = copy_task("produce", load.result, ROW.to_ir())
    fork = ITensorForkOp(produce.outputs[0], 2)
    chunk = ITensorChunkOp(fork.outputs[0], 1, [HALF.to_ir()] * 2)
    concat = ITensorConcatOp(chunk.outputs, 1, ROW.to_ir())
    cast = ITensorCastOp(fork.outputs[1], ROW.normalized().to_ir())
    join = ITensorJoinOp([concat.result, cast.result], LANES.to_ir())
    converter = ITensorConverterOp(join.result, LANES_COL.to_ir(), buffer_shape=(16, 8), shared_loops=0)
    empty2, consume = copy_task("consume", converter.result, LANES_COL.to_ir())
    store = DmaStoreOp(consume.outputs[0])
    body.add_ops([load, empty, produce, fork, chunk, concat, cast, join, converter, empty2, consume, store])
    body.add_op(YieldOp(store.result))
    kernel = KernelOp("relayout", [], [JOINED], Region(body))
    outer = Block(arg_types=[TENSOR])
    kernel.operands = [outer.args[0]]
    outer.add_ops([kernel, func.ReturnOp(kernel.outputs[0])])
    return ModuleOp([func.FuncOp("relayout", ((TENSOR,), (JOINED,)), Region(outer))])


def test_kernel_built_from_constructors_verifies_and_round_trips() -> None:
    module = build_kernel()
    module.verify()
    kernel = kernel_of(module)
    tasks = [op for op in kernel.body.block.ops if isinstance(op, TaskOp)]
    assert [t.sym_name.data for t in tasks] == ["produce", "consume"]
    assert [o.type for o in tasks[0].outputs] == [ROW.to_ir()]
    store = next(op for op in kernel.body.block.ops if isinstance(op, DmaStoreOp))
    assert store.result.type == JOINED
    text = text_of(module)
    parsed = Parser(context(), text).parse_module()
    parsed.verify()
    assert text_of(parsed) == text
    assert parsed.is_structurally_equivalent(module)


def test_kernel_of_and_enclosing_task_find_the_ops_around_an_op() -> None:
    module = build_kernel()
    kernel = kernel_of(module)
    task = next(op for op in kernel.body.block.ops if isinstance(op, TaskOp))
    inner = next(op for op in task.walk() if op is not task)
    assert enclosing_task(inner) is task
    assert enclosing_task(task) is None and enclosing_task(kernel) is None
    with pytest.raises(ValueError, match="builtin.module holds no dataflow.kernel"):
        kernel_of(ModuleOp([]))


def test_task_verifier_names_task_and_rule() -> None:
    module = build_kernel()
    task = next(op for op in module.walk() if isinstance(op, TaskOp))
    yield_op = task.body.block.last_op
    assert isinstance(yield_op, YieldOp)
    yield_op.operands = []
    with pytest.raises(VerifyException, match=r"dataflow.task @produce: yields \(\) but the results are"):
        module.verify()


def test_task_needs_a_kernel_parent() -> None:
    empty, task = copy_task("alone", ITensorEmptyOp(ROW.to_ir()).result, ROW.to_ir())
    block = Block()
    block.add_ops([empty, task])
    module = ModuleOp(Region(block))
    with pytest.raises(VerifyException, match=r"dataflow.task: 'dataflow.task' expects parent op 'dataflow.kernel'"):
        module.verify()


def test_stream_level_constructors() -> None:
    token = TensorType(builtin.f32, (4, 2))
    stream = StreamOp(StreamType(token, 4), layout=ROW.to_ir())
    read = StreamReadOp(stream.result)
    write = StreamWriteOp(read.result, stream.result)
    buffer = BufferOp(MemRefType(builtin.f32, (8, 2)))
    for op in (stream, read, write, buffer):
        op.verify()
    assert read.result.type == token and buffer.banks.value.data == 2
    assert StreamType(token).depth.data == 2
    with pytest.raises(VerifyException, match="dataflow.buffer: banks must be >= 1, got 0"):
        BufferOp(MemRefType(builtin.f32, (8, 2)), banks=0).verify()
    with pytest.raises(VerifyException, match="invalid !dataflow.stream: depth must be >= 1"):
        StreamType(token, 0)


def _kernel_ops(module: ModuleOp, kind: type) -> list:
    return [op for op in module.walk() if isinstance(op, kind)]


def test_chunk_and_concat_route_tiles_as_the_reference_stream_splits_the_tensor() -> None:
    """route()[k] is the part token k of the whole belongs to: streaming x through the route
    gives each part exactly the reference stream of its slice of x."""
    module = build_kernel()
    (chunk,), (concat,) = _kernel_ops(module, ITensorChunkOp), _kernel_ops(module, ITensorConcatOp)
    x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    tiles = ROW.reference_stream(x)
    for op in (chunk, concat):
        route = op.route()
        assert op.splits == (op is chunk) and op.whole is (op.source if op is chunk else op.result)
        assert route.shape == (ROW.num_tokens,)
        for i in range(2):
            got = [t for t, r in zip(tiles, route) if r == i]
            want = HALF.reference_stream(x[:, 4 * i : 4 * i + 4])
            assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))


def test_join_routes_result_token_k_from_source_k_mod_m() -> None:
    (join,) = _kernel_ops(build_kernel(), ITensorJoinOp)
    assert not join.splits and list(join.parts) == list(join.sources)
    assert join.route().tolist() == [k % 2 for k in range(LANES.num_tokens)]


def test_join_verifier_defines_the_lanes() -> None:
    """Each of m sources carries T/m tokens of the result's tile type; anything else is rejected."""
    block = Block(arg_types=[ROW.to_ir(), ROW.to_ir(), HALF.to_ir()])
    full, other, half = block.args
    ITensorJoinOp([full, other], LANES.to_ir()).verify()
    with pytest.raises(VerifyException, match=r"dataflow.itensor_join: source 1 .* must carry 8 tokens"):
        ITensorJoinOp([full, half], LANES.to_ir()).verify()
    with pytest.raises(VerifyException, match="cannot be taken round robin from 3 sources"):
        ITensorJoinOp([full, other, half], LANES.to_ir()).verify()
    with pytest.raises(VerifyException, match="needs at least two sources, got 1"):
        ITensorJoinOp([full], ROW.to_ir()).verify()


def test_fifo_depth_accessors_round_trip() -> None:
    module = build_kernel()
    (load,), (fork,) = _kernel_ops(module, DmaLoadOp), _kernel_ops(module, ITensorForkOp)
    assert fifo_depth(load.result) is None
    set_fifo_depth(load.result, 5)
    assert fifo_depth(load.result) == 5 and load.attributes["depth"] == builtin.IntegerAttr(5, builtin.i64)
    set_fifo_depth(fork.outputs[1], 7)
    assert [fifo_depth(r) for r in fork.outputs] == [DEFAULT_DEPTH, 7]
    set_fifo_depth(fork.outputs[0], 3)
    assert [fifo_depth(r) for r in fork.outputs] == [3, 7]
    assert str(fork.attributes["depth"]) == "array<i64: 3, 7>"
    module.verify()
    stream = StreamOp(StreamType(TensorType(builtin.f32, (4, 2))))
    assert fifo_depth(stream.result) == DEFAULT_DEPTH
    set_fifo_depth(stream.result, 9)
    assert stream.result.type.depth.data == 9 and fifo_depth(stream.result) == 9


def test_reassociate_constructor() -> None:
    source = ITensorEmptyOp(sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(2, 2)).to_ir())
    flat = sd.itensor(sd.f32, tile=[1, 4], trips=[16], steps=[4], map="(d0) -> (0, d0)")
    ITensorReassociateOp(source.result, flat.to_ir()).verify()
    wrong = sd.itensor(sd.f32, tile=[1, 8], trips=[8], steps=[8], map="(d0) -> (0, d0)")
    with pytest.raises(VerifyException, match="dataflow.itensor_reassociate: must keep tokens one to one"):
        ITensorReassociateOp(source.result, wrong.to_ir()).verify()


@pytest.mark.parametrize("name", ["f32", "f16", "bf16", "i8", "i32"])
def test_dtype_from_ir_round_trips(name: str) -> None:
    dtype = DTYPES[name]
    assert getattr(sd, name) is dtype
    assert dtype_from_ir(dtype.ir()) is dtype
    parsed = Parser(context(), name).parse_type()
    assert parsed == dtype.ir() and dtype_from_ir(parsed) is dtype
    it = sd.itensor.tiled(dtype, shape=(4, 4), tile=(2, 2))
    assert it.to_ir().dtype is dtype and it.to_ir().itensor == it


@pytest.mark.parametrize("text", ["f64", "i16", "index", "i1"])
def test_dtype_from_ir_rejects_unsupported_types(text: str) -> None:
    with pytest.raises(ValueError, match=rf"unsupported element type {text}; supported: f32, f16, bf16, i4, i8, i32"):
        dtype_from_ir(Parser(context(), text).parse_type())


def test_itensor_type_conversions() -> None:
    attr = ITensorType.from_itensor(COL)
    assert attr == COL.to_ir() and sd.itensor.from_ir(attr) == COL
    assert attr.element_type == TensorType(builtin.f32, (4, 2))
    assert [t.data for t in attr.trips] == [4, 2] and [s.data for s in attr.steps] == [2, 4]
    assert str(attr.map.data) == "(d0, d1) -> (d1, d0)"


ROUND_TRIP_FILES = ["types.mlir", "itensor_ops.mlir", "stream_ops.mlir", "structure.mlir"]


def test_every_op_has_a_round_trip_filecheck_test() -> None:
    """A new op must come with a round-trip test: the files must use every op of the dialect."""
    root = Path(__file__).parent / "filecheck" / "dialect"
    used = set()
    for name in ROUND_TRIP_FILES:
        used |= set(re.findall(r"^[^/]*?\b(dataflow\.\w+)", (root / name).read_text(), flags=re.MULTILINE))
    ops = {op.name for op in DATAFLOW.operations}
    assert len(ops) == 22
    assert ops <= used, f"no round-trip test for {sorted(ops - used)}"
    assert {"dataflow.itensor", "dataflow.stream"} <= {t.name for t in DATAFLOW.attributes}
