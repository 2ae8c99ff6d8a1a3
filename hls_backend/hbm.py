"""The HBM layout of a DMA's buffer: the tensor packed in the order its stream reads it.

A `dma_load` / `dma_store` moves its itensor's tokens in stream order through a 512-bit `m_axi`
port (128 or 256 bits when the exploration narrowed it: lowering/hbm_channels.py). Its
HBM buffer holds exactly those tokens, one after the other (a replayed tile is stored again, so a
DMA is one sequential burst over the whole buffer): token k occupies words [k * W, (k + 1) * W) of
`ap_uint<B>`, B the port's word bits, W = ceil(tile elements / lanes), lanes = B / element bits;
element e of the tile (row-major within the tile, the itensor's element order) is lane e % lanes
of word e // lanes, bits [lane * b, lane * b + b), little-endian (i4: two lanes a byte, the even
lane in the low nibble); the last word's unused lanes are zero. `pack` / `unpack` are the
numpy reference of that layout; the host program and the testbench do the same in C++
(hls_backend/project.py) and the DMA processes read it (hls_backend/emit.py).

A DMA striped over S pseudo-channels (lowering/hbm_channels.py) has S ports: stripe s holds words
s, s + S, s + 2S, ... of that buffer, in order (`stripe` / `unstripe`; `sd_stripe` in C++), so the
DMA reads word i of every stripe in one cycle, the S consecutive words g = i S + s of its stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hls_backend.cxx import HlsEmitError
from lowering.memory import HBM_WORD_BITS
from streamdsl.itensor import itensor

__all__ = ["HBM_CHANNEL_BYTES", "WORD_BITS", "HbmLayout", "element_bits", "pack", "stripe", "unpack", "unstripe"]

WORD_BITS = HBM_WORD_BITS  # the port word the timing and resource models charge
HBM_CHANNEL_BYTES = 512 * 2**20  # one of the U55C's 32 pseudo-channels (16 GiB in all)


def element_bits(it: itensor) -> int:
    """Bits of one element in HBM: the dtype's width, a byte for i1."""
    return max(8, it.dtype.bits) if it.dtype.bits == 1 else it.dtype.bits


@dataclass(frozen=True)
class HbmLayout:
    tokens: int
    elements: int  # per token
    bits: int  # per element
    lanes: int  # elements per word
    words_per_token: int
    word_bits: int = WORD_BITS  # the port's word

    @property
    def words(self) -> int:
        return self.tokens * self.words_per_token

    @property
    def nbytes(self) -> int:
        return self.words * self.word_bits // 8

    @staticmethod
    def of(it: itensor, word_bits: int = WORD_BITS) -> HbmLayout:
        it = it.unbounded()  # a slot per token of the largest stream (run-time trip counts at their maxima)
        bits = element_bits(it)
        if word_bits % bits:
            raise HlsEmitError(f"{it}: elements of {bits} bits do not divide a {word_bits}-bit HBM word")
        lanes = word_bits // bits
        return HbmLayout(it.num_tokens, it.token_elements, bits, lanes, math.ceil(it.token_elements / lanes), word_bits)


def _raw(values: np.ndarray, it: itensor) -> np.ndarray:
    """Elements as unsigned integers of the HBM element width (bf16: the upper half of float32;
    i4: the low 4 bits, in a uint8)."""
    bits = element_bits(it)
    if bits == 4:
        return (np.asarray(values).astype(np.int64) & 0xF).astype(np.uint8)
    if it.dtype.name == "bf16":
        f32 = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        rounded = (f32.astype(np.uint64) + 0x7FFF + ((f32 >> 16) & 1)) >> 16  # nearest even, as the simulators round
        return rounded.astype(np.uint16)
    stored = np.ascontiguousarray(values, dtype=it.dtype.storage)
    return stored.view(np.dtype(f"u{stored.dtype.itemsize}")).astype(np.dtype(f"u{max(1, bits // 8)}"))


def _cooked(raw: np.ndarray, it: itensor) -> np.ndarray:
    if element_bits(it) == 4:
        return ((raw.astype(np.int16) ^ 8) - 8).astype(it.dtype.storage)  # sign-extend the nibble
    if it.dtype.name == "bf16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    storage = it.dtype.storage
    return raw.astype(np.dtype(f"u{storage.itemsize}")).view(storage)


def pack(array: np.ndarray, it: itensor, word_bits: int = WORD_BITS) -> np.ndarray:
    """The bytes of the HBM buffer a DMA of `it` reads through `word_bits` words: `array`'s tiles
    in stream order."""
    it = it.unbounded()  # every slot of a stream with run-time trip counts
    layout = HbmLayout.of(it, word_bits)
    array = np.asarray(array)
    tiles = np.stack(it.reference_stream(array)).reshape(layout.tokens, layout.elements) if layout.tokens else np.zeros((0, 0))
    raw = _raw(tiles, it)
    padded = np.zeros((layout.tokens, layout.words_per_token * layout.lanes), dtype=raw.dtype)
    padded[:, : layout.elements] = raw
    if layout.bits == 4:  # two lanes a byte, the even lane in the low nibble
        return (padded[:, 0::2] | (padded[:, 1::2] << 4)).astype(np.uint8).reshape(-1)
    return padded.view(np.uint8).reshape(-1)


def unpack(buffer: np.ndarray, it: itensor, word_bits: int = WORD_BITS) -> np.ndarray:
    """The tensor a DMA of `it` wrote into the HBM buffer `buffer` (bytes) through `word_bits`
    words, as the simulators store it."""
    it = it.unbounded()  # every slot of a stream with run-time trip counts
    layout = HbmLayout.of(it, word_bits)
    data = np.asarray(buffer, dtype=np.uint8)
    if data.size != layout.nbytes:
        raise ValueError(f"unpack: {it} needs {layout.nbytes} bytes of HBM, got {data.size}")
    if layout.bits == 4:
        nibbles = np.stack([data & 0xF, data >> 4], axis=-1)
        raw = nibbles.reshape(layout.tokens, layout.words_per_token * layout.lanes)
    else:
        raw = data.view(np.dtype(f"u{layout.bits // 8}")).reshape(layout.tokens, layout.words_per_token * layout.lanes)
    values = _cooked(np.ascontiguousarray(raw[:, : layout.elements]), it)
    return it.from_stream(list(values.reshape(layout.tokens, *it.tile)))


def stripe(buffer: np.ndarray, stripes: int) -> list[np.ndarray]:
    """The bytes of each of the `stripes` ports of a packed buffer: stripe s holds words s, s + S, ...."""
    words = np.asarray(buffer, dtype=np.uint8).reshape(-1, WORD_BITS // 8)
    if len(words) % stripes:
        raise ValueError(f"stripe: {len(words)} words do not divide into {stripes} stripes")
    return [np.ascontiguousarray(words[s::stripes]).reshape(-1) for s in range(stripes)]


def unstripe(parts: list[np.ndarray]) -> np.ndarray:
    """The packed buffer whose stripes are `parts` (the inverse of `stripe`)."""
    words = [np.asarray(p, dtype=np.uint8).reshape(-1, WORD_BITS // 8) for p in parts]
    if len({len(w) for w in words}) > 1:
        raise ValueError(f"unstripe: stripes of {[len(w) for w in words]} words; every stripe holds as many")
    return np.stack(words, axis=1).reshape(-1)
