"""HBM channel allocation (lowering/hbm_channels.py) against hand-computed answers, and the DMA
bandwidth the timing model charges for it."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import DenseArrayBase, FloatAttr, f64, i64

import streamdsl as sd
from lowering.hbm_channels import PORTS_PER_CHANNEL, Allocation, DmaDemand, HbmPortsError, allocate, max_stripes
from lowering.timing import U55C, dma_bits_per_cycle, dma_token_cycles
from streamdsl.dialects.dataflow import DmaLoadOp, DmaStoreOp, ITensorType


def test_stripes_by_bandwidth_share_on_the_least_loaded_channels() -> None:
    """a: 100 of 170 bytes x 4 channels = 2.4 -> 2 stripes of 50; b: 60/170 x 4 = 1.4 -> 1 stripe
    (it could use 2); c: 10 bytes, 1. Largest stripe first: b (60) on 0, a's (50 each) on 1 and 2,
    c on 3."""
    got = allocate([DmaDemand("a", 100, 2), DmaDemand("b", 60, 2), DmaDemand("c", 10, 1)], channels=4)
    assert got == [Allocation((1, 2), 1.0), Allocation((0,), 1.0), Allocation((3,), 1.0)]


def test_shared_channels_charge_round_robin_shares() -> None:
    """Two channels, a (100 bytes: 100/140 x 2 = 1.4 -> one stripe though it could use 2), b (30),
    c (10): a on 0, b on 1, c on 1 (loads 100 and 30). Round robin from the start: b finishes after
    the channel moved 30 of its own and min(10, 30) of c's, share 30/40; c after 10 + 10, 1/2."""
    got = allocate([DmaDemand("a", 100, 2), DmaDemand("b", 30), DmaDemand("c", 10)], channels=2)
    assert got == [Allocation((0,), 1.0), Allocation((1,), 0.75), Allocation((1,), 0.5)]


def test_balanced_across_the_design() -> None:
    """Eight equal DMAs of one stripe on four channels: two on each, every one at half a channel."""
    got = allocate([DmaDemand(f"d{i}", 64) for i in range(8)], channels=4)
    assert sorted(a.channels[0] for a in got) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert {a.share for a in got} == {0.5}


def test_small_stripes_go_where_they_finish_first() -> None:
    """Three channels, two weights of 1,000 bytes (on 0 and 1) and four vectors of 10. By bytes
    alone every vector would go to channel 2 (10, 20, 30 < 1,000) and wait for the other three
    (share 1/4). Where it finishes first: s1 on 2 (nothing to wait for), s2 on 2 (10 to wait for
    everywhere; 2 is the least loaded), s3 on 0 (10 there against 20 on 2; 0 and 1 tie, the
    lowest), s4 on 1. Each vector waits for one other stripe's 10 bytes (share 1/2); a weight
    waits for one vector's 10 bytes, 1,000/1,010."""
    got = allocate([DmaDemand("a", 1000), DmaDemand("b", 1000), *(DmaDemand(f"s{i}", 10) for i in range(1, 5))], channels=3)
    assert [a.channels for a in got] == [(0,), (1,), (2,), (2,), (0,), (1,)]
    assert [a.share for a in got] == [1000 / 1010, 1000 / 1010, 0.5, 0.5, 0.5, 0.5]


def test_a_channel_takes_at_most_its_ports() -> None:
    """One weight and 20 vectors on two channels: the vectors may not all crowd onto the channel
    the weight left empty; neither channel takes more than PORTS_PER_CHANNEL ports."""
    got = allocate([DmaDemand("w", 10**6), *(DmaDemand(f"v{i}", 10) for i in range(20))], channels=2)
    ports = [sum(c == channel for a in got for c in a.channels) for channel in (0, 1)]
    assert max(ports) <= PORTS_PER_CHANNEL and sum(ports) == 21


def test_stripes_of_one_dma_never_share_a_channel() -> None:
    got = allocate([DmaDemand("big", 1000, 2), DmaDemand("small", 1, 1)], channels=2)
    assert sorted(got[0].channels) == [0, 1]


def test_too_many_dmas_is_an_error_naming_the_limit() -> None:
    with pytest.raises(HbmPortsError, match=f"at most {2 * PORTS_PER_CHANNEL} ports"):  # a split trial's: no design
        allocate([DmaDemand(f"d{i}", 1) for i in range(2 * PORTS_PER_CHANNEL + 1)], channels=2)
    with pytest.raises(ValueError, match="0 HBM channels"):
        allocate([DmaDemand("d", 1)], channels=0)


@pytest.mark.parametrize(("dtype", "tile", "load", "want"), [
    (sd.f32, (32, 32), True, 2),  # 64 words a tile, two a 1,024-bit beat
    (sd.f32, (32, 32), False, 1),  # stores read a word at a time
    (sd.f32, (1, 16), True, 1),  # one word, one 512-bit beat
    (sd.f32, (1, 48), True, 1),  # three words in two beats: not whole stripes
    (sd.i4, (64, 64), True, 2),
    (sd.f16, (8, 64), True, 2),
])
def test_max_stripes(dtype: sd.DType, tile: tuple[int, int], load: bool, want: int) -> None:
    it = sd.itensor.tiled(dtype, (tile[0] * 2, tile[1] * 2), tile)
    assert max_stripes(it, load) == want


def _dma(it: sd.itensor, channels: list[int] | None = None, share: float | None = None) -> DmaLoadOp:
    from xdsl.dialects.builtin import TensorType
    from xdsl.ir import Block

    block = Block(arg_types=[TensorType(it.dtype.ir(), it.shape)])
    op = DmaLoadOp(block.args[0], ITensorType.from_itensor(it))
    if channels is not None:
        op.attributes["hbm_channels"] = DenseArrayBase.from_list(i64, channels)
    if share is not None:
        op.attributes["hbm_share"] = FloatAttr(share, f64)
    return op


def test_dma_rate_is_its_channels_at_the_measured_rate() -> None:
    """A 32x32 f32 tile is 64 words (32,768 bits) in 32 beats. One channel at 300 MHz: 425 GB/s /
    32 (Shuhai) = 13.28 GB/s = 354 bits a cycle, so ceil(32768 / 354) = 93 cycles; two stripes 708
    bits, 47; half a shared channel 177 bits, 186. At 250 MHz a channel is 425 bits a cycle: 78."""
    it = sd.itensor.tiled(sd.f32, (64, 64), (32, 32))
    assert U55C.hbm_bits_per_cycle == 354 and U55C.at_clock(250).hbm_bits_per_cycle == 425
    assert dma_token_cycles(_dma(it)) == 93
    assert dma_bits_per_cycle(_dma(it, [3, 4])) == 708 and dma_token_cycles(_dma(it, [3, 4])) == 47
    assert dma_token_cycles(_dma(it, [3], 0.5)) == 186
    assert dma_token_cycles(_dma(it), U55C.at_clock(250)) == 78


def test_a_dma_is_never_faster_than_its_stream_or_its_ports() -> None:
    """Sixteen stripes would move 64 words in 6 cycles, but the stream takes 32 beats."""
    it = sd.itensor.tiled(sd.f32, (64, 64), (32, 32))
    assert dma_token_cycles(_dma(it, list(range(16)))) == it.beats == 32
    store = DmaStoreOp(_dma(it).result)
    assert dma_token_cycles(store) == 93
