"""Converter plans and runtime on the paper's cases, hand-checked splits, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest

import streamdsl as sd
from lowering.converters import ConverterError, plan
from streamdsl.errors import StreamError
from streamdsl.itensor import itensor
from streamdsl.layout import shared_loop_prefix, slab_count, slab_layout
from streamdsl.sim.converter import ConverterBuffer

# Paper Fig. 5: one 8x8 f32 tensor; (b) a column of 4x2 tiles at a time, (c) the same, each
# column streamed twice.
FIG5_B = itensor(sd.f32, tile=(4, 2), trips=(4, 2), steps=(2, 4), map="(d0, d1) -> (d1, d0)")
FIG5_C = itensor(sd.f32, tile=(4, 2), trips=(4, 2, 2), steps=(2, 1, 4), map="(d0, d1, d2) -> (d2, d0)")


def run(src: itensor, dst: itensor, prefer: str = "pop") -> tuple[list[np.ndarray], ConverterBuffer, list[tuple[int, int]]]:
    """Drive a planned converter, preferring `prefer` when both moves are possible; returns the
    output, the buffer and the trace of (tokens pushed, tokens popped) after every move."""
    p = plan(src, dst)
    conv = ConverterBuffer(src, dst, p.buffer_shape, p.shared_loops)
    array = np.random.default_rng(0).standard_normal(src.shape).astype(np.float32)
    tiles = iter(src.reference_stream(array))
    out, trace, pushed = [], [], 0
    while not conv.done:
        pop = conv.can_pop() and (prefer == "pop" or not conv.can_push())
        if pop:
            out.append(conv.pop())
        else:
            conv.push(next(tiles))
            pushed += 1
        trace.append((pushed, len(out)))
    for got, want in zip(out, dst.reference_stream(array), strict=True):
        np.testing.assert_array_equal(got, want)
    return out, conv, trace


def test_fig5_case2_needs_an_8x2_ping_pong_buffer() -> None:
    p = plan(FIG5_B, FIG5_C)
    assert p.needed and p.buffer_shape == (8, 2) and p.shared_loops == 1
    assert p.elements == 32 and p.bytes == 128  # "four tiles after ping-pong buffering"
    assert p.reuses == 4
    assert str(p) == "converter bank [8, 2] x 2 = 128 bytes, inside 1 shared loop(s), refilled 4 times"
    assert str(plan(FIG5_B, FIG5_B)) == "no converter (equal types)"
    _, conv, trace = run(FIG5_B, FIG5_C, prefer="push")
    assert conv.peak == 32 and conv.capacity == 32
    # ping-pong: the writer fills column 1 (tokens 2, 3) while the reader still replays column 0
    assert any(pushed > 2 and popped < 4 for pushed, popped in trace)


def test_fig5_sharing_is_decided_by_loop_order_not_dim_index() -> None:
    # The printed Algorithm 1 scans tensor dim 0 first, finds d1 (b) vs d2 (c), and keeps 8x8.
    # Both nests' outermost loop drives dim 1 in steps of 2, so dim 1 shrinks to 2 instead.
    assert plan(FIG5_B, FIG5_C).buffer_shape == (8, 2)
    assert FIG5_B.shape == (8, 8)


def test_fig7_16x64_buffer_reused_4_times() -> None:
    src = itensor.tiled(sd.f32, (64, 64), (16, 16))
    # a consumer that reads each 16-row block twice
    dst = itensor(sd.f32, tile=(16, 16), trips=(4, 2, 4), steps=(16, 1, 16), map="(d0, d1, d2) -> (d0, d2)")
    p = plan(src, dst)
    assert p.buffer_shape == (16, 64) and p.shared_loops == 1 and p.reuses == 4
    assert p.bank_elements * 4 == src.num_elements  # 4x less than a full-tensor buffer
    _, conv, _ = run(src, dst)
    assert conv.peak <= 2 * 16 * 64


def test_split_exposes_a_shared_loop_when_tile_sizes_divide() -> None:
    rows = itensor.tiled(sd.f32, (128, 64), (32, 64))  # 4 x 32-row tiles
    squares = itensor.tiled(sd.f32, (128, 64), (16, 16))  # 8 x 4 tiles of 16x16
    for src, dst in ((rows, squares), (squares, rows)):
        p = plan(src, dst)
        assert p.buffer_shape == (32, 64) and p.shared_loops == 1 and p.reuses == 4
        assert p.src_split.tokens() == src.tokens() and p.dst_split.tokens() == dst.tokens()
        assert p.src_split.trips[0] == p.dst_split.trips[0] == 4
        run(src, dst)


def test_split_with_lcm_steps() -> None:
    # 6-row and 4-row tiles over 24 rows share a 2 x 12-row loop (lcm of 6 and 4).
    src, dst = itensor.tiled(sd.f32, (24, 8), (6, 8)), itensor.tiled(sd.f32, (24, 8), (4, 8))
    p = plan(src, dst)
    assert p.buffer_shape == (12, 8) and p.reuses == 2
    run(src, dst)


def test_transpose_buffers_the_whole_tensor() -> None:
    src = itensor.tiled(sd.f32, (64, 64), (16, 16))
    dst = itensor.tiled(sd.f32, (64, 64), (16, 16), order=(1, 0))
    p = plan(src, dst)
    assert p.buffer_shape == (64, 64) and p.shared_loops == 0
    assert p.bytes == 64 * 64 * 4 and p.banks == 1  # one slab: one bank, as the emitted C++ allocates
    run(src, dst)


def test_reuse_outside_the_producer_loops_buffers_everything() -> None:
    # An outer reuse loop on the destination is not shared: the source streams once, so the
    # whole tensor must stay in the bank for the replays.
    src = itensor.tiled(sd.f32, (8, 8), (2, 8))
    p = plan(src, src.repeat(3))
    assert p.buffer_shape == (8, 8) and p.shared_loops == 0
    _, conv, _ = run(src, src.repeat(3))
    assert conv.peak == 64


def test_same_constant_dims_shrink_to_the_tile() -> None:
    # dim 0 is the constant 3 on both sides: the tensor is 4 rows but only row 3 is streamed;
    # 4-wide and 8-wide column tiles share a 2 x 8-column loop.
    src = itensor(sd.f32, tile=(1, 4), trips=(4,), steps=(4,), map="(d0) -> (3, d0)")
    dst = itensor(sd.f32, tile=(1, 8), trips=(2,), steps=(8,), map="(d0) -> (3, d0)")
    p = plan(src, dst)
    assert p.buffer_shape == (1, 8) and p.shared_loops == 1
    run(src, dst)


def test_equal_streams_need_no_converter() -> None:
    a = itensor.tiled(sd.f32, (8, 8), (2, 2))
    b = itensor(sd.f32, tile=(2, 2), trips=(1, 4, 2, 2), steps=(1, 2, 4, 2), map="(d0, d1, d2, d3) -> (d1, d2 + d3)")
    assert a.tokens() == b.tokens()
    p = plan(a, b)
    assert not p.needed and p.bytes == 0 and "no converter" in str(p)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

GAPPY = itensor(sd.f32, tile=(1,), trips=(4,), steps=(2,), map="(d0) -> (d0)")  # writes 0, 2, 4, 6
DENSE = itensor(sd.f32, tile=(1,), trips=(7,), steps=(1,), map="(d0) -> (d0)")


def test_plan_rejects_different_tensors() -> None:
    with pytest.raises(ConverterError, match=r"shape \[8, 8\].*shape \[8, 4\]"):
        plan(itensor.tiled(sd.f32, (8, 8), (2, 2)), itensor.tiled(sd.f32, (8, 4), (2, 2)))
    with pytest.raises(ConverterError, match="f32.*i32"):
        plan(itensor.tiled(sd.f32, (8, 8), (2, 2)), itensor.tiled(sd.i32, (8, 8), (2, 2)))


def test_plan_rejects_reading_unwritten_data() -> None:
    with pytest.raises(ConverterError, match="destination token 1 reads elements the source never writes"):
        plan(GAPPY, DENSE)
    with pytest.raises(StreamError, match="destination token 1 of each slab reads elements"):
        ConverterBuffer(GAPPY, DENSE, None, 0)


def test_undersized_bank_fails_loudly() -> None:
    src = itensor.tiled(sd.f32, (64, 64), (16, 16))
    dst = itensor.tiled(sd.f32, (64, 64), (16, 16), order=(1, 0))
    with pytest.raises(StreamError, match=r"converter conv7 .*one slab spans \[64, 64\] elements but the planned bank is \[16, 64\]"):
        ConverterBuffer(src, dst, (16, 64), 0, name="conv7")


def test_shared_loops_beyond_the_common_prefix() -> None:
    src = itensor.tiled(sd.f32, (64, 64), (16, 16))
    dst = itensor.tiled(sd.f32, (64, 64), (16, 16), order=(1, 0))
    with pytest.raises(StreamError, match="shared_loops=1 but .* share 0 outer loop"):
        ConverterBuffer(src, dst, (16, 64), 1)


def test_protocol_errors() -> None:
    src = itensor.tiled(sd.f32, (4, 4), (2, 2))
    dst = itensor.tiled(sd.f32, (4, 4), (2, 2), order=(1, 0))
    conv = ConverterBuffer(src, dst, None, 0, name="c")
    assert not conv.can_pop()
    with pytest.raises(StreamError, match="converter c: pop of destination token 0 while its data has not arrived"):
        conv.pop()
    with pytest.raises(StreamError, match=r"source tile has shape \(2, 3\), expected \(2, 2\)"):
        conv.push(np.zeros((2, 3)))
    for _ in range(4):
        conv.push(np.ones((2, 2)))
    with pytest.raises(StreamError, match="push of source token 4 of 4 while the stream is complete"):
        conv.push(np.ones((2, 2)))
    with pytest.raises(StreamError, match="are different tensors"):
        ConverterBuffer(src, itensor.tiled(sd.f32, (4, 2), (2, 2)), None, 0)


def test_writer_waits_for_the_reader_two_slabs_behind() -> None:
    # rows of 1x4 to 1x1 tokens: one row per slab; the writer may run one slab ahead, not two
    src = itensor.tiled(sd.f32, (4, 4), (1, 4))
    dst = itensor.tiled(sd.f32, (4, 4), (1, 1))
    p = plan(src, dst)
    assert p.buffer_shape == (1, 4) and p.shared_loops == 1
    conv = ConverterBuffer(src, dst, p.buffer_shape, p.shared_loops, name="rows")
    conv.push(np.ones((1, 4)))
    conv.push(np.ones((1, 4)))
    assert not conv.can_push() and conv.occupancy == 8 == conv.capacity
    with pytest.raises(StreamError, match="push of source token 2 of 4 while both banks are in use"):
        conv.push(np.ones((1, 4)))
    for _ in range(4):
        conv.pop()
    assert conv.can_push() and conv.occupancy == 4
    assert math.prod(p.buffer_shape) * 2 == conv.capacity


def test_slab_count_follows_the_split_nest() -> None:
    # 16x16 tiles (an 8 x 4 nest) to 32-row tiles: the shared loop is 4 x 32 rows after splitting
    # the 8 x 16 loop, so 4 slabs, not the source's first trip count 8.
    rows = itensor.tiled(sd.f32, (128, 64), (32, 64))
    squares = itensor.tiled(sd.f32, (128, 64), (16, 16))
    assert slab_count(squares, rows, 1) == plan(squares, rows).reuses == 4
    assert slab_count(squares, rows, 0) == 1


@pytest.mark.parametrize("it", [FIG5_B, FIG5_C])
def test_a_type_split_by_no_shared_loops_is_left_as_written(it: itensor) -> None:
    """No shared loops, nothing to split: the IR keeps the type's own steps and map, not an equal
    stream re-expressed with unit steps."""
    from lowering.converters import split_type

    assert split_type(it, ()).to_ir() == it.to_ir()


def test_split_types_stream_what_their_types_stream_and_print() -> None:
    p = plan(FIG5_B, FIG5_C)
    for split, it in ((p.src_split, FIG5_B), (p.dst_split, FIG5_C)):
        assert list(split.tokens()) == list(it.tokens())
        assert str(split.to_ir()).startswith("!dataflow.itensor<4x2xf32, [")


def _slab_elements(it: itensor, slabs: int) -> list[set[tuple[int, ...]]]:
    """The tensor elements each of `slabs` equal parts of the stream covers (numpy, no layout code)."""
    parts = it.offsets().reshape(slabs, it.num_tokens // slabs, it.rank)
    return [{tuple(int(v) for v in o + d) for o in part for d in np.ndindex(*it.tile)} for part in parts]


@pytest.mark.parametrize(("src", "dst", "shared"), [
    # replayed twice and four times: an outer replay of both (gcd 2) is shared, the rest is not
    (itensor(sd.f32, tile=(4,), trips=(2, 4), steps=(1, 4), map="(d0, d1) -> (d1)"),
     itensor(sd.f32, tile=(4,), trips=(4, 4), steps=(1, 4), map="(d0, d1) -> (d1)"), [2]),
    (itensor(sd.f32, tile=(4,), trips=(6, 2), steps=(1, 4), map="(d0, d1) -> (d1)"),
     itensor(sd.f32, tile=(2,), trips=(4, 4), steps=(1, 2), map="(d0, d1) -> (d1)"), [2]),
    # rows of 1 x 8 against 2 x 4 tiles: the pairs of rows are shared
    (itensor.tiled(sd.f32, (4, 8), (1, 8)), itensor.tiled(sd.f32, (4, 8), (2, 4)), [2]),
    # a replay against a diagonal loop (moving two dims at once): nothing to share
    (itensor(sd.f32, tile=(1, 1), trips=(2, 4), steps=(1, 1), map="(d0, d1) -> (d1, d1)"),
     itensor(sd.f32, tile=(1, 1), trips=(4, 2), steps=(1, 1), map="(d0, d1) -> (d0, d0)"), []),
    # a stream with no loop structure shares nothing
    (itensor(sd.f32, tile=(1,), trips=(4,), steps=(1,), map="(d0) -> ((d0 * 3) mod 4)"), itensor.tiled(sd.f32, (4,), (1,)), []),
])
def test_shared_loops_cut_both_streams_into_slabs_of_the_same_elements(src: itensor, dst: itensor, shared: list[int]) -> None:
    prefix = shared_loop_prefix(src, dst)
    assert [loop.trip for loop in prefix] == shared and shared_loop_prefix(dst, src) == prefix
    slabs = math.prod(shared)
    assert slab_count(src, dst, len(prefix)) == slabs
    assert _slab_elements(src, slabs) == _slab_elements(dst, slabs)


@pytest.mark.parametrize("order", [None, (1, 0)])
def test_a_plan_names_the_streams_it_converts_and_streams_them_unchanged(order: tuple[int, ...] | None) -> None:
    src, dst = itensor.tiled(sd.f32, (4, 8), (1, 8)), itensor.tiled(sd.f32, (4, 8), (2, 4), order=order)
    for a, b in ((src, dst), (dst, dst)):
        p = plan(a, b)
        assert p.src == a and p.dst == b and p.needed == (a != b)
        assert p.src_split.tokens() == a.tokens() and p.dst_split.tokens() == b.tokens()
        assert a != b or (p.buffer_shape == () and p.bytes == 0)  # no converter: no bank


@pytest.mark.parametrize(("src", "dst"), [
    (itensor.tiled(sd.f32, (4, 8), (1, 2)), itensor.tiled(sd.f32, (4, 8), (2, 1), order=(1, 0))),
    (itensor.tiled(sd.f32, (6, 6), (1, 1), order=(1, 0)), itensor.tiled(sd.f32, (6, 6), (2, 3))),
])
def test_each_destination_token_waits_for_the_last_source_token_it_needs(src: itensor, dst: itensor) -> None:
    """`ready[j]`: the source token after which destination token j has all its elements (the
    first writer of each, by brute force over the elements), within slab 0."""
    p = plan(src, dst)
    layout = slab_layout(src, dst, p.shared_loops)
    ns, nd = src.num_tokens // layout.slabs, dst.num_tokens // layout.slabs
    first: dict[tuple[int, ...], int] = {}
    for i, o in enumerate(src.offsets()[:ns]):
        for d in np.ndindex(*src.tile):
            first.setdefault(tuple(int(v) for v in o + d), i)
    want = [max(first[tuple(int(v) for v in o + d)] for d in np.ndindex(*dst.tile)) for o in dst.offsets()[:nd]]
    assert layout.ready.tolist() == want and layout.missing is None


def test_occupancy_counts_the_elements_of_the_slabs_still_in_use() -> None:
    """(2, 4) in (1, 2) tiles to (1, 1) tiles: each source tile is a slab of 2 elements, read by
    two destination tokens. A slab's bank counts until its last token has left; nothing is held
    before the first push."""
    src, dst = itensor.tiled(sd.f32, (2, 4), (1, 2)), itensor.tiled(sd.f32, (2, 4), (1, 1))
    p = plan(src, dst)
    conv = ConverterBuffer(src, dst, p.buffer_shape, p.shared_loops)
    assert (p.buffer_shape, conv.capacity, conv.occupancy, conv.peak) == ((1, 2), 4, 0, 0)
    occupancy = []
    for move in "++--+--+----":
        conv.push(np.ones((1, 2), np.float32)) if move == "+" else conv.pop()
        occupancy.append(conv.occupancy)
    assert occupancy == [2, 4, 4, 2, 4, 4, 2, 4, 4, 2, 2, 0] and conv.peak == 4 and conv.done
    # to whole rows: a slab is a row of two source tiles, filled a tile at a time
    rows = itensor.tiled(sd.f32, (2, 4), (1, 4))
    p = plan(src, rows)
    conv = ConverterBuffer(src, rows, p.buffer_shape, p.shared_loops)
    occupancy = []
    for move in "++++--":
        conv.push(np.ones((1, 2), np.float32)) if move == "+" else conv.pop()
        occupancy.append(conv.occupancy)
    assert p.buffer_shape == (1, 4) and occupancy == [2, 4, 6, 8, 4, 0] and conv.peak == 8


def test_a_converter_gives_back_the_values_and_dtype_it_was_given() -> None:
    """int32 values past float32's 24-bit mantissa, re-ordered from row-major to column-major tiles."""
    src, dst = itensor.tiled(sd.i32, (4, 4), (2, 2)), itensor.tiled(sd.i32, (4, 4), (2, 2), order=(1, 0))
    x = np.arange(16, dtype=np.int32).reshape(4, 4) + 2**30
    conv = ConverterBuffer(src, dst, None, 0, name="c")
    for tile in src.reference_stream(x):
        conv.push(tile)
    for want in dst.reference_stream(x):
        got = conv.pop()
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
    with pytest.raises(StreamError, match="converter c: pop of destination token 4 while the stream is complete"):
        conv.pop()
