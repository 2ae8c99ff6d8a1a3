"""lowering/memory.py: memory counted by shape (primitives, not bits)."""

from __future__ import annotations

import pytest

from lowering.memory import BRAM36, LUTRAM, URAM, bind, count, words_of


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
    got = count([("a->b", 1024, 934), ("b->c", 512, 2)], [("conv", "converter", 64 * 64 * 32 * 2), ("t: tile", "local", 2048)])
    fifo_ab = bind(1024, 934, True)
    conv = bind(1024, 256, False)
    assert (got["BRAM36"], got["LUTRAM"]) == (fifo_ab[1] + conv[1], 512)
    assert got["URAM"] == 0 and got["fits"]
    assert [m["name"] for m in got["memories"]] == ["a->b", "conv", "b->c"]  # the local tile is registers
    huge = count([("x->y", 1024, 128 * 8192)], [])
    assert not huge["fits"] and huge["memories"][0]["resource"] == URAM
