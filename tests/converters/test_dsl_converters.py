"""Converters in real DSL programs: `insert-converters` plans them, the functional simulator runs
them with exactly the planned buffer, and the results equal numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from test_converter_fuzz import pairs  # tests/converters is on sys.path (rootdir-relative imports)
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.parser import Parser

import streamdsl as sd
from lowering.converters import plan
from lowering.transforms.insert_converters import InsertConvertersPass
from streamdsl.dialects.dataflow import DATAFLOW, ITensorConverterOp
from streamdsl.errors import StreamError
from streamdsl.program import Program
from streamdsl.sim.functional import simulate_with_stats


def converters(prog: object) -> list[ITensorConverterOp]:
    return [op for op in prog.module.walk() if isinstance(op, ITensorConverterOp)]


def planned(prog: object) -> object:
    InsertConvertersPass().apply(Context(), prog.module)
    prog.module.verify()
    for conv in converters(prog):
        p = plan(conv.source.type.itensor, conv.result.type.itensor)
        assert tuple(conv.buffer_shape.get_values()) == p.buffer_shape
        assert conv.shared_loops.value.data == p.shared_loops
    return prog


def transpose_program(m: int, n: int, t: int, heads: int | None = None) -> object:
    """(m, n) transposed tile-wise; with `heads`, each head's block: heads are then shared loops,
    so the planned converter buffers one head, not the whole tensor."""
    lead, ones = ((), ()) if heads is None else ((heads,), (1,))
    rank = len(lead) + 2
    Y = sd.itensor.tiled(sd.f32, shape=(*lead, m, n), tile=(*ones, t, t))
    Ycols = sd.itensor.tiled(sd.f32, shape=(*lead, m, n), tile=(*ones, t, t), order=(*range(rank - 2), rank - 1, rank - 2))
    Z = sd.itensor.tiled(sd.f32, shape=(*lead, n, m), tile=(*ones, t, t))
    tiles = (heads or 1) * (m // t) * (n // t)
    perm = (*range(rank - 2), rank - 1, rank - 2)

    @sd.kernel
    def produce(x: Y) -> Y:
        for i in range(tiles):
            yield x.read() + 1.0

    @sd.kernel
    def flip(y: Ycols) -> Z:
        for i in range(tiles):
            yield sd.transpose(y.read(), perm)

    @sd.dataflow
    def transposed(x: sd.Tensor[sd.f32, (*lead, m, n)]):
        return flip(produce(x))

    return transposed


def row_to_column_program(m: int, n: int) -> object:
    Rows = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(1, n))
    Cols = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(m, 1), order=(1, 0))
    Out = sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, 1))

    @sd.kernel
    def double(x: Rows) -> Rows:
        for i in range(m):
            yield x.read() * 2.0

    @sd.kernel
    def column_sums(c: Cols) -> Out:
        for j in range(n):
            yield sd.sum(c.read(), axis=0)

    @sd.dataflow
    def colsum(x: sd.Tensor[sd.f32, (m, n)]):
        return column_sums(double(x))

    return colsum


def reread_program(m: int, n: int, t: int) -> object:
    """Row blocks (t, n) in; the consumer reads (t, t) tiles and each row block twice (a reuse
    loop inside the shared row-block loop): pass 1 takes the row sums, pass 2 centres the rows."""
    Blocks = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, n))
    Twice = sd.itensor(sd.f32, tile=(t, t), trips=(m // t, 2, n // t), steps=(t, 1, t), map="(d0, d1, d2) -> (d0, d2)")
    Out = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, t))

    @sd.kernel
    def double(x: Blocks) -> Blocks:
        for i in range(m // t):
            yield x.read() * 2.0

    @sd.kernel
    def centre(y: Twice) -> Out:
        for i in range(m // t):
            s = sd.zeros((t, 1))
            for j in range(n // t):
                s += sd.sum(y.read(), axis=1)
            for j in range(n // t):
                yield y.read() - s / n

    @sd.dataflow
    def centred(x: sd.Tensor[sd.f32, (m, n)]):
        return centre(double(x))

    return centred


def test_transpose() -> None:
    prog = planned(transpose_program(32, 64, 16))
    (conv,) = converters(prog)
    assert tuple(conv.buffer_shape.get_values()) == (32, 64) and conv.shared_loops.value.data == 0
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    out, stats = simulate_with_stats(prog, x)
    np.testing.assert_allclose(out, (x + 1.0).T, rtol=1e-6)
    assert max(stats.converter_peak.values()) <= 2 * 32 * 64


def test_row_to_column() -> None:
    prog = planned(row_to_column_program(8, 12))
    (conv,) = converters(prog)
    assert tuple(conv.buffer_shape.get_values()) == (8, 12)
    x = np.random.default_rng(1).standard_normal((8, 12)).astype(np.float32)
    out, _ = simulate_with_stats(prog, x)
    np.testing.assert_allclose(out, (2 * x).sum(axis=0, keepdims=True), rtol=1e-5, atol=1e-5)


def test_consumer_that_rereads_shares_the_row_block_loop() -> None:
    m, n, t = 32, 64, 8
    prog = planned(reread_program(m, n, t))
    (conv,) = converters(prog)
    assert tuple(conv.buffer_shape.get_values()) == (t, n) and conv.shared_loops.value.data == 1
    x = np.random.default_rng(2).standard_normal((m, n)).astype(np.float32)
    out, stats = simulate_with_stats(prog, x)
    y = 2 * x.astype(np.float64)
    np.testing.assert_allclose(out, y - y.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)
    (peak,) = stats.converter_peak.values()
    assert t * n < peak <= 2 * t * n  # writer and reader overlap across the two banks


def test_simulator_rejects_a_bank_smaller_than_the_slab() -> None:
    from xdsl.dialects.builtin import DenseArrayBase, i64

    prog = planned(reread_program(16, 32, 8))
    (conv,) = converters(prog)
    conv.buffer_shape = DenseArrayBase.from_list(i64, [8, 16])  # half a row block
    x = np.zeros((16, 32), dtype=np.float32)
    with pytest.raises(StreamError, match=r"one slab spans \[8, 32\] elements but the planned bank is \[8, 16\]"):
        simulate_with_stats(prog, x)


# -- random layouts end to end: IR text -> insert-converters -> functional simulator ----------------


def copy_through_converter(src: sd.itensor, dst: sd.itensor) -> Program:
    """A kernel that loads a tensor in `src` order, retypes it to `dst` and stores it."""
    tensor = f"tensor<{'x'.join(map(str, src.shape))}xf32>"
    text = f"""
    func.func @copy(%x: {tensor}) -> {tensor} {{
      %y = dataflow.kernel "copy"(%x) : ({tensor}) -> {tensor} {{
      ^bb0(%xa: {tensor}):
        %s = dataflow.dma_load %xa : {tensor} -> {src.to_ir()}
        %c = dataflow.itensor_cast %s : {src.to_ir()} -> {dst.to_ir()}
        %o = dataflow.dma_store %c : {dst.to_ir()} -> {tensor}
        dataflow.yield %o : {tensor}
      }}
      func.return %y : {tensor}
    }}"""
    ctx = Context()
    for dialect in (Builtin, Func, DATAFLOW):
        ctx.load_dialect(dialect)
    module = Parser(ctx, text).parse_module()
    InsertConvertersPass().apply(ctx, module)
    module.verify()
    return Program(module, "copy")


@settings(max_examples=max(500, settings().max_examples // 10))
@given(pairs(dst_reuse=False))
def test_random_layouts_simulate_to_the_identity(pair: tuple[sd.itensor, sd.itensor]) -> None:
    src, dst = pair
    prog = copy_through_converter(src, dst)
    x = np.arange(np.prod(src.shape), dtype=np.float32).reshape(src.shape)
    out, stats = simulate_with_stats(prog, x)
    np.testing.assert_array_equal(out, x)
    p = plan(src, dst)
    assert len(converters(prog)) == int(p.needed)
    assert all(peak <= p.elements for peak in stats.converter_peak.values())


def test_sd_compile_plans_converters_on_a_copy() -> None:
    """sd.compile plans converters like the CLI (`insert-converters`), leaves the program
    untouched, and reports each converter's ping-pong buffer in bytes."""
    h, m, n, t = 3, 8, 16, 4
    prog = transpose_program(m, n, t, heads=h)
    before = str(prog.module)
    (unplanned,) = converters(prog)
    assert unplanned.buffer_shape is None  # the DSL leaves the whole-tensor fallback
    design = sd.compile(prog)
    assert str(prog.module) == before  # not mutated
    (conv,) = [op for op in design.module.walk() if isinstance(op, ITensorConverterOp)]
    want = plan(conv.source.type.itensor, conv.result.type.itensor)
    assert tuple(conv.buffer_shape.get_values()) == want.buffer_shape
    (record,) = design.report()["converters"]
    assert record["buffer_shape"] == list(want.buffer_shape)
    assert record["bytes"] == 2 * int(np.prod(want.buffer_shape)) * 4
    assert record["bytes"] == 2 * m * n * 4  # one head, not the whole tensor (h heads)
    x = np.random.default_rng(0).standard_normal((h, m, n)).astype(np.float32)
    np.testing.assert_allclose(design.simulate(x), np.transpose(x + 1.0, (0, 2, 1)))
