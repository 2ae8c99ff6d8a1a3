"""The HBM layout (hls_backend/hbm.py): numpy pack/unpack round trips over shapes, tilings, loop
orders, replays and dtypes, and the layout is what the docstring says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from hls_backend.hbm import HbmLayout, pack, unpack
from streamdsl.sim._codegen import round_bf16

DTYPES = [sd.f32, sd.f16, sd.bf16, sd.i4, sd.i8, sd.i32]


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: sd.DType) -> np.ndarray:
    if dtype.is_float:
        x = rng.standard_normal(shape).astype(dtype.storage)
        return round_bf16(x) if dtype.name == "bf16" else x
    info = np.iinfo(dtype.storage)
    low, high = (-(1 << (dtype.bits - 1)), (1 << (dtype.bits - 1)) - 1) if dtype.bits < 8 else (info.min, info.max)
    return rng.integers(low, high, size=shape, endpoint=True, dtype=dtype.storage)


@st.composite
def layouts(draw: st.DrawFn) -> sd.itensor:
    rank = draw(st.integers(1, 3))
    tile = [draw(st.sampled_from([1, 2, 3, 4, 8, 16, 33])) for _ in range(rank)]
    shape = [t * draw(st.integers(1, 4)) for t in tile]
    order = draw(st.permutations(range(rank)))
    it = sd.itensor.tiled(draw(st.sampled_from(DTYPES)), shape, tile, order)
    return it


@settings(max_examples=150, deadline=None)
@given(it=layouts(), seed=st.integers(0, 2**16), word_bits=st.sampled_from([128, 256, 512]))
def test_pack_unpack_round_trip(it: sd.itensor, seed: int, word_bits: int) -> None:
    """At every port width: a narrowed port (lowering.hbm_channels.narrow_ports) packs the same
    tiles into fewer lanes a word."""
    x = _values(np.random.default_rng(seed), it.shape, it.dtype)
    buf = pack(x, it, word_bits)
    layout = HbmLayout.of(it, word_bits)
    assert buf.dtype == np.uint8 and buf.size == layout.nbytes and buf.size % (word_bits // 8) == 0
    assert layout.lanes * layout.bits == word_bits
    back = unpack(buf, it, word_bits)
    assert back.dtype == it.dtype.storage
    np.testing.assert_array_equal(back, x)


@settings(max_examples=50, deadline=None)
@given(it=layouts(), seed=st.integers(0, 2**16))
def test_token_k_is_its_tile_in_words_k_w_to_k_w_plus_w(it: sd.itensor, seed: int) -> None:
    """Each token's tile, row-major, little-endian lanes, padded with zeros to whole 512-bit words."""
    x = _values(np.random.default_rng(seed), it.shape, it.dtype)
    layout = HbmLayout.of(it)
    words = pack(x, it).reshape(layout.tokens, layout.words_per_token * 64)
    for k, tile in enumerate(it.reference_stream(x)):
        raw = np.ascontiguousarray(tile, dtype=it.dtype.storage).reshape(-1)
        if it.dtype.name == "bf16":
            raw = (raw.view(np.uint32) >> 16).astype(np.uint16)
        if it.dtype.bits == 4:  # two elements a byte, the first in the low nibble
            nibbles = np.append(raw.astype(np.uint8) & 0xF, np.zeros(raw.size % 2, np.uint8))
            raw = nibbles[0::2] | (nibbles[1::2] << 4)
        want = raw.view(np.uint8)
        assert words[k, : want.size].tobytes() == want.tobytes()
        assert not words[k, want.size :].any()


def test_replays_are_stored_again_and_words_are_whole() -> None:
    it = sd.itensor.tiled(sd.f32, (2, 48), (1, 16)).repeat(3)
    layout = HbmLayout.of(it)
    assert (layout.lanes, layout.words_per_token, layout.tokens) == (16, 1, 18)
    x = np.arange(96, dtype=np.float32).reshape(2, 48)
    words = pack(x, it).view(np.float32).reshape(18, 16)
    np.testing.assert_array_equal(words[:6], words[6:12])  # the stream replays the tensor: so does HBM
    with pytest.raises(Exception, match="replays tiles"):
        unpack(pack(x, it), it)  # a stored stream has one token per tile
    with pytest.raises(ValueError, match="needs 1152 bytes of HBM, got 64"):
        unpack(np.zeros(64, np.uint8), it)


def test_testbench_packs_as_numpy_does(tmp_path) -> None:  # noqa: ANN001
    """The C++ packing of sd_hbm.h (testbench and host) writes the bytes hbm.pack computes, for a
    replayed input (tutorial 02's replay: x is streamed once per output tile) and a tensor read by
    two DMAs (two ports); the output port's bytes unpack to the tensor the testbench saved."""
    import json
    import os
    import subprocess

    from hls_backend import build_csim, emit_project
    from hls_backend.project import write_test_data
    from streamdsl.itensor import itensor

    from .cases import CASES

    for name in ("tutorial02_replay", "silu_mlp"):
        case = CASES[name]()
        design = sd.compile(case.program)
        xs = case.inputs(np.random.default_rng(2))
        project = emit_project(design, tmp_path / name)
        write_test_data(project, xs, design.simulate(*xs))
        exe = build_csim(project, threaded=False)
        run = subprocess.run([str(exe), "data"], cwd=project, capture_output=True, text=True, env={**os.environ, "SD_DUMP_HBM": "1"})
        assert run.returncode == 0, run.stderr
        manifest = json.loads((project / "manifest.json").read_text())
        tensors = {a["name"]: x for a, x in zip(manifest["inputs"], xs)}
        kinds = {a["name"]: "input" for a in manifest["inputs"]} | {a["name"]: "output" for a in manifest["outputs"]}
        for port in manifest["ports"]:
            it = itensor.from_ir(_parse_itensor(port["itensor"]))
            got = np.fromfile(project / "data" / f"{port['name']}.hbm", dtype=np.uint8)
            if kinds[port["tensor"]] == "input":
                assert got.tobytes() == pack(tensors[port["tensor"]], it).tobytes(), port
            else:
                saved = np.fromfile(project / "data" / f"{port['tensor']}.bin", dtype=np.float32).reshape(it.shape)
                np.testing.assert_array_equal(unpack(got, it), saved)
        assert len(manifest["ports"]) == len({p["name"] for p in manifest["ports"]})
    assert [p["tensor"] for p in manifest["ports"]].count("x") == 2  # silu_mlp: x feeds two DMAs, two ports


def _parse_itensor(text: str):  # noqa: ANN202 - an ITensorType
    from xdsl.context import Context
    from xdsl.parser import Parser

    from streamdsl.dialects.dataflow import DATAFLOW

    ctx = Context()
    ctx.load_dialect(DATAFLOW)
    return Parser(ctx, "!dataflow." + text).parse_type()


@settings(max_examples=50, deadline=None)
@given(it=layouts(), seed=st.integers(0, 2**16), stripes=st.integers(1, 4))
def test_stripe_round_trip(it: sd.itensor, seed: int, stripes: int) -> None:
    """Stripe s holds words s, s + S, ... of the packed buffer; unstripe puts them back."""
    from hls_backend.hbm import stripe, unstripe

    buf = pack(_values(np.random.default_rng(seed), it.shape, it.dtype), it)
    words = buf.reshape(-1, 64)
    if len(words) % stripes:
        with pytest.raises(ValueError, match="do not divide"):
            stripe(buf, stripes)
        return
    parts = stripe(buf, stripes)
    assert [p.size for p in parts] == [buf.size // stripes] * stripes
    for s, part in enumerate(parts):
        np.testing.assert_array_equal(part.reshape(-1, 64), words[s::stripes])
    np.testing.assert_array_equal(unstripe(parts), buf)
