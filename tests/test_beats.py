"""Stream beats: a token crosses a FIFO as `itensor.beats` words of at most 1,024 bits, each a run
of `beat_lanes` consecutive elements of the tile in row-major order (the last one padded)."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl import dtypes as dt
from streamdsl.itensor import BEAT_BITS


@pytest.mark.parametrize(
    ("dtype", "tile", "lanes", "beats"),
    [
        (sd.f32, (1, 64), 32, 2),  # 2,048 bits: two full beats
        (sd.f32, (64, 64), 32, 128),
        (sd.f32, (1, 16), 16, 1),  # a narrow tile is one beat of its own width
        (sd.f32, (1, 48), 32, 2),  # the last beat half full
        (dt.i16, (3, 7), 21, 1),  # 336 bits
        (sd.f32, (3, 11), 32, 2),  # 33 elements: a last beat of one
        (dt.i8, (1, 64), 64, 1),
        (dt.i8, (4, 64), 128, 2),
    ],
)
def test_beat_lanes_and_count(dtype, tile, lanes, beats) -> None:  # noqa: ANN001
    it = sd.itensor.tiled(dtype, shape=tuple(4 * t for t in tile), tile=tile)
    assert (it.beat_lanes, it.beats) == (lanes, beats)
    assert it.beat_lanes * dtype.bits <= BEAT_BITS
    assert (it.beats - 1) * it.beat_lanes < it.token_elements <= it.beats * it.beat_lanes
