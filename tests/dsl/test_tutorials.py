"""The tutorials run as written, and their programs match independent references on several shapes."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import streamdsl as sd
from streamdsl import quant

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"


def _load(name: str) -> dict:
    return runpy.run_path(str(TUTORIALS / f"{name}.py"))


@pytest.mark.parametrize("name", ["01_elementwise", "02_matvec_reuse", "03_streaming_attention", "04_flash_decoding", "05_rope_prefill",
                                  "06_w4a8_matvec", "07_kernel_in_a_model", "08_shared_engine"])
def test_tutorial_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(TUTORIALS / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "dataflow.kernel" in out  # each tutorial prints its IR


@pytest.mark.parametrize(("heads", "cache", "dh", "rows"), [(4, 64, 32, 16), (2, 48, 16, 8), (1, 16, 8, 16), (3, 32, 64, 4)])
def test_attention_matches_torch_sdpa(heads: int, cache: int, dh: int, rows: int) -> None:
    mod = _load("03_streaming_attention")
    prog = mod["build"](heads, cache, dh, rows)
    prog.verify()
    rng = np.random.default_rng(heads * cache + dh)
    q = rng.standard_normal((heads, dh)).astype(np.float32)
    k = (3 * rng.standard_normal((heads, cache, dh))).astype(np.float32)  # peaky scores: the max matters
    v = rng.standard_normal((heads, cache, dh)).astype(np.float32)
    want = mod["reference"](q, k, v)
    np.testing.assert_allclose(prog(q, k, v), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prog.simulate(q, k, v), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("k", "n", "t"), [(128, 256, 32), (64, 32, 16)])
def test_matvec_variants_agree(k: int, n: int, t: int) -> None:
    mod = _load("02_matvec_reuse")
    rng = np.random.default_rng(k + n)
    x = rng.standard_normal((1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    for name, prog in mod["build"](k, n, t).items():
        want = mod["reference"](name, x, w)
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(prog.simulate(x, w), want, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(prog(x, w), want, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(("rows", "cols", "tile"), [(4, 256, 64), (1, 32, 32)])
def test_elementwise_tutorial_shapes(rows: int, cols: int, tile: int) -> None:
    mod = _load("01_elementwise")
    x = np.random.default_rng(rows).standard_normal((rows, cols)).astype(np.float32) * 3
    want = mod["reference"](x)
    prog = mod["build"](rows, cols, tile)
    np.testing.assert_allclose(prog.simulate(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prog(x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("heads", "kv_heads", "capacity", "dh", "rows"), [(4, 2, 32, 16, 8), (3, 1, 12, 8, 4), (2, 2, 8, 4, 8)])
def test_rope_prefill_matches_torch_sdpa(heads: int, kv_heads: int, capacity: int, dh: int, rows: int) -> None:
    """One compiled program serves the prompt lengths 1, half and the capacity (a run-time scalar)."""
    mod = _load("05_rope_prefill")
    prog = mod["build"](heads, kv_heads, capacity, dh, rows)
    args = mod["inputs"](heads, kv_heads, capacity, dh, seed=capacity)
    for n in (1, capacity // 2, capacity):
        want = mod["reference"](*args, n)
        np.testing.assert_allclose(prog(*args, n)[:, :n], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(prog.simulate(*args, n)[:, :n], want, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_rope_prefill_in_threaded_csim(tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project
    from tests.hls.cases import csim_modes

    mod = _load("05_rope_prefill")
    shape = (2, 1, 8, 8, 4)
    prog = mod["build"](*shape)
    args = mod["inputs"](*shape[:4], seed=3)
    project = emit_project(sd.compile(prog), tmp_path / "prefill")
    for n in (1, 4, 8):
        want = mod["reference"](*args, n)
        for mode, got in csim_modes(project, *args, n):
            np.testing.assert_allclose(got[:, :n], want, rtol=1e-4, atol=1e-5, err_msg=f"{mode} csim, {n} tokens")


@pytest.mark.parametrize("shape", [(4, 2, 32, 16, 8), (2, 1, 48, 8, 8)])
def test_rope_prefill_timed_cycles_follow_the_triangle(shape: tuple[int, ...]) -> None:
    """One invocation of the prefill streams the key tiles up to the diagonal: with u query tiles
    used, the timed cycles are a + b u + c u (u + 1) / 2 (constant second differences: each key
    tile visited costs the same), a prompt of 1 token costs what one tile does, and the longest
    prompt is the worst case the FIFOs are sized for."""
    mod = _load("05_rope_prefill")
    rows, capacity = shape[4], shape[2]
    design = sd.compile(mod["build"](*shape))
    tiles = capacity // rows
    cycles = [design.timed_simulation(scalars={"n": u * rows}).makespan for u in range(1, tiles + 1)]
    steps = np.diff(cycles)
    second = np.diff(steps)
    # a DMA's burst carries its channel's fraction of a cycle from token to token, so each makespan
    # may round a cycle or two either way: the second differences are constant within a few cycles
    assert second.min() > 0 and second.max() - second.min() <= 0.02 * second.min() + 4
    assert design.timed_simulation(scalars={"n": 1}).makespan == cycles[0]
    assert cycles[-1] == design.timed_simulation().makespan
    work = tiles * (tiles + 1) // 2  # key tiles per head at the longest prompt, 1 at one tile
    assert cycles[-1] / cycles[0] > work / 3  # far fewer cycles for a short prompt


@pytest.mark.parametrize(("heads", "kv_heads", "capacity", "dh", "rows", "splits"), [(8, 2, 64, 16, 8, 2), (4, 4, 32, 8, 4, 4),
                                                                               (2, 1, 16, 8, 4, 1)])
def test_flash_decoding_matches_torch_sdpa_at_three_lengths(heads: int, kv_heads: int, capacity: int, dh: int,
                                                           rows: int, splits: int) -> None:
    """One compiled program serves the lengths 1, half and the capacity (a run-time scalar)."""
    mod = _load("04_flash_decoding")
    args = mod["inputs"](heads, kv_heads, capacity, dh, rows, splits, seed=capacity)
    prog = mod["build"](heads, kv_heads, capacity, dh, rows, splits)
    design = sd.compile(prog)
    assert not design.converters  # the partials joined head by head, the order the combine reads
    for length in (1, capacity // 2, capacity):
        want = mod["reference"](length, rows, *args)
        np.testing.assert_allclose(prog(*args, length), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(design.simulate(*args, length), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("heads", "kv_heads", "capacity", "dh", "rows", "splits"), [(4, 2, 16, 16, 4, 2), (2, 2, 24, 8, 4, 3)])
def test_flash_decoding_with_the_new_token_matches_torch_sdpa(heads: int, kv_heads: int, capacity: int, dh: int, rows: int,
                                                              splits: int) -> None:
    """`new_token=True` (tutorial 07): the new token's key and value attend besides the first
    `length` cache positions, at every length from an empty cache to a full one."""
    mod = _load("04_flash_decoding")
    rng = np.random.default_rng(capacity)
    q, k_new, v_new = (rng.standard_normal(shape).astype(np.float32) for shape in ((heads, dh), (kv_heads, dh), (kv_heads, dh)))
    k, v = (rng.standard_normal((kv_heads, capacity, dh)).astype(np.float32) for _ in range(2))
    prog = mod["build"](heads, kv_heads, capacity, dh, rows, splits, new_token=True)
    design = sd.compile(prog)
    args = (q, k_new, v_new, *mod["paged"](k, splits, rows), *mod["paged"](v, splits, rows))
    for length in (0, capacity // 2 + 1, capacity):
        keys, values = (np.concatenate([c[:, :length], n[:, None]], axis=1) for c, n in ((k, k_new), (v, v_new)))
        want = torch.nn.functional.scaled_dot_product_attention(
            torch.from_numpy(q)[None, :, None], torch.from_numpy(keys)[None], torch.from_numpy(values)[None],
            enable_gqa=True)[0, :, 0].numpy()
        np.testing.assert_allclose(prog(*args, length), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(design.simulate(*args, length), want, rtol=1e-5, atol=1e-6)


def test_flash_decoding_timed_cycles_grow_with_the_length() -> None:
    """The timed simulation of one invocation streams only the valid pages: its cycles grow
    linearly with the number of pages per part, and a short cache takes far fewer than the
    longest one (which the FIFOs are sized for, without stalls)."""
    mod = _load("04_flash_decoding")
    heads, kv_heads, capacity, dh, rows, splits = 8, 2, 64, 16, 8, 2
    design = sd.compile(mod["build"](heads, kv_heads, capacity, dh, rows, splits))
    pages = {length: length // (rows * splits) for length in (16, 32, 48, 64)}  # pages per part
    cycles = {length: design.timed_simulation(scalars={"length": length}).makespan for length in (1, *pages)}
    assert cycles[64] == design.timed_simulation().makespan  # the maximum is the worst case
    steps = [cycles[b] - cycles[a] for a, b in [(16, 32), (32, 48), (48, 64)]]
    assert min(steps) > 0 and max(steps) - min(steps) <= 0.05 * min(steps)  # each page costs the same
    fixed = cycles[16] - steps[0]  # the part that does not depend on the length (queries, combine)
    assert cycles[1] < cycles[64] and cycles[64] - fixed == pytest.approx(4 * (cycles[16] - fixed), rel=0.05)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_flash_decoding_in_threaded_csim(tmp_path) -> None:  # noqa: ANN001
    """The emitted C++ takes the length as a scalar argument: one project, three lengths."""
    from hls_backend import emit_project
    from tests.hls.cases import csim_modes

    mod = _load("04_flash_decoding")
    heads, kv_heads, capacity, dh, rows, splits = 4, 2, 16, 8, 4, 2
    args = mod["inputs"](heads, kv_heads, capacity, dh, rows, splits, seed=5)
    project = emit_project(sd.compile(mod["build"](heads, kv_heads, capacity, dh, rows, splits)), tmp_path / "decode")
    code = (project / "kernel.cpp").read_text()
    assert "#pragma HLS interface s_axilite port=length" in code and "loop_tripcount max=" in code
    for length in (1, capacity // 2, capacity):
        want = mod["reference"](length, rows, *args)
        for mode, got in csim_modes(project, *args, length):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{mode} csim, length {length}")


@pytest.mark.parametrize(("m", "k", "n", "tn"), [(1, 128, 64, 64), (3, 384, 128, 32), (2, 256, 96, 48)])
def test_w4a8_matvec_bit_exact(m: int, k: int, n: int, tn: int) -> None:
    """Integer sums and per-token scales bit-exact against streamdsl.quant, floats bit-exact against
    its hardware order and the fake-quantized PyTorch linear (which multiplies in that order)."""
    mod = _load("06_w4a8_matvec")
    progs = mod["build"](m, k, n, tn)
    x, qw = mod["inputs"](m, k, n, seed=k + n)
    args = mod["device_arrays"](x, qw)
    ints, scales = progs["int_part"].simulate(*args[:2])
    np.testing.assert_array_equal(ints, mod["int_part_reference"](x, qw))
    np.testing.assert_array_equal(scales, quant.activation_scale(x))
    y = progs["linear"].simulate(*args)
    np.testing.assert_array_equal(y, quant.linear(x, qw))
    np.testing.assert_array_equal(progs["linear"](*args), y)  # eager mode agrees
    np.testing.assert_array_equal(y, mod["torch_reference"](x, qw))


def test_w4a8_matvec_extreme_integers() -> None:
    """The int32 sums with raw int4 weights at -8 and 7 (which the quantizer never makes) and
    activations that quantize to +-127."""
    mod = _load("06_w4a8_matvec")
    m, k, n, tn = 2, 256, 64, 64
    rng = np.random.default_rng(7)
    w = rng.choice(np.array([-8, 7, 0, -1], np.int8), size=(k, n))
    x = rng.choice(np.array([-1.0, 1.0, 0.5], np.float32), size=(m, k))
    ints, _ = mod["build"](m, k, n, tn)["int_part"].simulate(x, w)
    xq, _ = quant.quantize_activations(x)
    want = quant.int_matmul(xq, np.ascontiguousarray(w.T), 128).transpose(0, 2, 1)
    assert {-127, 127} <= set(np.unique(xq)) and {-8, 7} <= set(np.unique(w))
    np.testing.assert_array_equal(ints, want)
