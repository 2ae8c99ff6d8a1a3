"""lowering/memory.py: memory counted by shape (primitives, not bits)."""

from __future__ import annotations

import pytest

from lowering import memory
from lowering.memory import BRAM36, CAPACITY, LUTRAM, URAM, Buffer, bind, count, fifo_storages, words_of


@pytest.mark.parametrize(
    ("width", "depth", "fifo", "want"),
    [
        (1024, 2, True, (LUTRAM, 1024)),  # a shallow FIFO: one SRL32 per bit
        (32, 32, True, (LUTRAM, 32)),
        (32, 33, True, (BRAM36, 1)),  # 1,056 bits: 33 x 32 in one BRAM36
        (16, 64, False, (LUTRAM, 16)),  # 1,024 bits of LUT RAM: 16 LUTs of 64 bits
        (72, 512, True, (BRAM36, 1)),
        (73, 512, True, (BRAM36, 2)),  # ceil(width / 72)
        (72, 513, True, (BRAM36, 2)),  # ceil(depth / 512)
        (1024, 467, True, (BRAM36, 15)),  # 15 x 1 BRAM36 (0.7% of 2,016) beats 15 URAM (1.6% of 960)
        (72, 4096, True, (URAM, 1)),  # 8 BRAM36 (0.4%) or 1 URAM (0.1%)
        (1024, 59776, True, (URAM, 15 * 15)),
    ],
)
def test_bind(width: int, depth: int, fifo: bool, want: tuple[str, int]) -> None:
    assert bind(width, depth, fifo) == want


def test_words_split_wide_tokens_evenly() -> None:
    assert words_of(2048) == (1024, 2)
    assert words_of(131072) == (1024, 128)  # a 64x64 f32 tile
    assert words_of(1025) == (513, 2)
    assert words_of(16) == (16, 1)


def test_count_totals_and_fit() -> None:
    got = count([("a->b", 1024, 934), ("b->c", 512, 2)], [Buffer("conv", "converter", 32, 2 * 64 * 64 // 32, 32),
                                                          Buffer.of_bits("t: tile", "local", 2048)])
    fifo_ab = bind(1024, 934, True)
    conv = bind(32, 256, False)  # 32 partitions of 256 floats: 1 BRAM36 each
    assert (got["BRAM36"], got["LUTRAM"]) == (fifo_ab[1] + 32 * conv[1], 512)
    assert got["URAM"] == 0 and got["fits"]
    assert [m["name"] for m in got["memories"]] == ["conv", "a->b", "b->c"]  # 32 BRAM36, 30; the local tile is registers
    huge = count([("x->y", 1024, 128 * 8192)], [])
    assert not huge["fits"] and huge["memories"][0]["resource"] == URAM


def _maxi(n: int) -> list[Buffer]:
    """n DMA m_axi buffers: 512 words of 512 bits, 8 BRAM36 each, which never move."""
    return [Buffer(f"dma{k}: m_axi0", "maxi", 512, 512) for k in range(n)]


def test_fifos_move_to_uram_most_bram_saved_per_uram_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device of 40 BRAM36 and 5 URAM. By shape every FIFO is in BRAM36 (2/40 < 1/5 ...): a 72 x 1024
    (2 BRAM36 or 1 URAM), b 144 x 512 (2 or 2), c 72 x 2048 (4 or 1), d 72 x 600 (2 or 1), with
    five m_axi buffers (40 BRAM36): 50 of 40. Moving c (4 per URAM), then a and d (2 per URAM, by
    name), then b (1 per URAM) frees 10 BRAM36 for 5 URAM."""
    monkeypatch.setitem(CAPACITY, BRAM36, 40)
    monkeypatch.setitem(CAPACITY, URAM, 5)
    monkeypatch.setattr(memory, "MEMORY_FILL", 1.0)  # the whole of a toy device (98% of 5 URAM is 4)
    fifos = [("a", 72, 1024), ("b", 144, 512), ("c", 72, 2048), ("d", 72, 600)]
    assert all(bind(w, d, True)[0] == BRAM36 for _, w, d in fifos)
    got = count(fifos, _maxi(5))
    assert (got["BRAM36"], got["URAM"], got["fits"]) == (40, 5, True)
    placed = {m["name"]: (m["resource"], m["count"], m.get("moved", False)) for m in got["memories"]}
    assert {k: placed[k] for k in "abcd"} == {"a": (URAM, 1, True), "b": (URAM, 2, True), "c": (URAM, 1, True), "d": (URAM, 1, True)}
    assert {placed[f"dma{k}: m_axi0"] for k in range(5)} == {(BRAM36, 8, False)}
    assert fifo_storages(fifos, _maxi(5)) == dict.fromkeys("abcd", "uram")
    monkeypatch.setitem(CAPACITY, URAM, 4)  # b does not fit in URAM any more: 42 BRAM36 of 40, a clear misfit
    got = count(fifos, _maxi(5))
    assert (got["BRAM36"], got["URAM"], got["fits"]) == (42, 3, False)
    assert fifo_storages(fifos, _maxi(5)) == {"a": "uram", "b": "bram", "c": "uram", "d": "uram"}


def test_only_what_is_needed_moves_and_uram_can_spill_to_bram(monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO that fits stays where its shape puts it; over URAM (72 x 4096: 1 URAM of 2, 0.5, or 8
    BRAM36 of 10, 0.8), one of three URAM FIFOs (f0, by name) moves to 8 BRAM36."""
    assert not any("moved" in m for m in count([("a", 72, 1024)], _maxi(2))["memories"])
    monkeypatch.setitem(CAPACITY, BRAM36, 10)
    monkeypatch.setitem(CAPACITY, URAM, 2)
    monkeypatch.setattr(memory, "MEMORY_FILL", 1.0)
    fifos = [(f"f{k}", 72, 4096) for k in range(3)]
    got = count(fifos, [])
    assert (got["BRAM36"], got["URAM"], got["fits"]) == (8, 2, True)
    assert fifo_storages(fifos, []) == {"f0": "bram", "f1": "uram", "f2": "uram"}


def test_fifos_move_once_the_bram_is_over_98_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 BRAM36 and 10 URAM; twelve m_axi buffers (96 BRAM36) and two 72 x 1024 FIFOs, f and g (2
    BRAM36 each by shape: 2% against 1 URAM, 10%): 100 BRAM36 fit the device, but the
    rebalance aims at MEMORY_FILL (98%, room for the SLR placement to split them): f (by name)
    moves to 1 URAM, 98 BRAM36 left."""
    monkeypatch.setitem(CAPACITY, BRAM36, 100)
    monkeypatch.setitem(CAPACITY, URAM, 10)
    fifos = [("f", 72, 1024), ("g", 72, 1024)]
    assert memory.MEMORY_FILL == 0.98 and all(bind(w, d, True) == (BRAM36, 2) for _, w, d in fifos)
    got = count(fifos, _maxi(12))
    assert (got["BRAM36"], got["URAM"], got["fits"]) == (98, 1, True)
    assert fifo_storages(fifos, _maxi(12)) == {"f": "uram", "g": "bram"}


def test_an_m_axi_buffer_is_512_words_of_512_bits() -> None:
    got = count([], _maxi(1))["memories"][0]
    assert (got["width"], got["depth"], got["resource"], got["count"]) == (512, 512, BRAM36, 8)


def test_a_converters_banks_are_counted_as_the_partitions_the_emitter_declares() -> None:
    """`bank[2][16 * 64]` of floats cut cyclically into 32 partitions: 32 memories of 32 bits x 64
    words (2,048 bits each: 1 BRAM36 each, 32 in all); `bank[1][1024]` of int8 in 64 partitions (an
    activation repeated to each weight tile): 64 memories of 8 bits x 16 words (128 bits: 2 LUTs of
    LUTRAM each); `bank[1][64]` in 64 partitions of one word each: registers, not counted."""
    from lowering.memory import buffer_storage, converter_buffer, is_register
    from streamdsl.compiler import ConverterRecord

    floats = converter_buffer(ConverterRecord("f", [16, 64], 2 * 16 * 64 * 4, banks=2, partitions=32))
    int8s = converter_buffer(ConverterRecord("x", [1024], 1024, banks=1, partitions=64))
    lanes = converter_buffer(ConverterRecord("r", [64], 64, banks=1, partitions=64))
    assert (floats, int8s, lanes) == (Buffer("f", "converter", 32, 64, 32), Buffer("x", "converter", 8, 16, 64),
                                      Buffer("r", "converter", 8, 1, 64))
    got = count([], [floats, int8s, lanes])
    assert (got["BRAM36"], got["LUTRAM"], got["URAM"]) == (32, 128, 0)
    assert [m["name"] for m in got["memories"]] == ["f", "x"] and is_register(lanes)
    assert (buffer_storage(floats), buffer_storage(int8s)) == ("bram", "lutram")
