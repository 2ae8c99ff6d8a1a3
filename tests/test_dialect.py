"""The dataflow dialect from Python: op constructors build a verifying kernel, the IR round-trips,
verifier errors name the op, dtypes map to and from xDSL types."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

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
)
from streamdsl.dtypes import DTYPES, dtype_from_ir

ROW = sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2))  # row of tiles at a time
COL = sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2), order=(1, 0))  # Fig. 5 (b)
HALF = sd.itensor.tiled(sd.f32, shape=(8, 4), tile=(4, 2))
TENSOR = TensorType(builtin.f32, (8, 8))


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
    join = ITensorJoinOp([concat.result, cast.result])
    converter = ITensorConverterOp(join.result, COL.to_ir(), buffer_shape=(8, 8), shared_loops=0)
    empty2, consume = copy_task("consume", converter.result, COL.to_ir())
    store = DmaStoreOp(consume.outputs[0])
    body.add_ops([load, empty, produce, fork, chunk, concat, cast, join, converter, empty2, consume, store])
    body.add_op(YieldOp(store.result))
    kernel = KernelOp("relayout", [], [TENSOR], Region(body))
    outer = Block(arg_types=[TENSOR])
    kernel.operands = [outer.args[0]]
    outer.add_ops([kernel, func.ReturnOp(kernel.outputs[0])])
    return ModuleOp([func.FuncOp("relayout", ((TENSOR,), (TENSOR,)), Region(outer))])


def test_kernel_built_from_constructors_verifies_and_round_trips() -> None:
    module = build_kernel()
    module.verify()
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    tasks = [op for op in kernel.body.block.ops if isinstance(op, TaskOp)]
    assert [t.sym_name.data for t in tasks] == ["produce", "consume"]
    assert [o.type for o in tasks[0].outputs] == [ROW.to_ir()]
    store = next(op for op in kernel.body.block.ops if isinstance(op, DmaStoreOp))
    assert store.result.type == TENSOR
    text = text_of(module)
    parsed = Parser(context(), text).parse_module()
    parsed.verify()
    assert text_of(parsed) == text
    assert parsed.is_structurally_equivalent(module)


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
    with pytest.raises(ValueError, match=rf"unsupported element type {text}; supported: f32, f16, bf16, i8, i32"):
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
    assert len(ops) == 19
    assert ops <= used, f"no round-trip test for {sorted(ops - used)}"
    assert {"dataflow.itensor", "dataflow.stream"} <= {t.name for t in DATAFLOW.attributes}
