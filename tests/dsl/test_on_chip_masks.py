"""Masks computed on chip: `sd.iota` and loop indices in tile maths. Checked against numpy
eagerly, in the functional simulator and (one case) in sequential and threaded g++ csim."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import streamdsl as sd


def causal_kernel(n: int, t: int) -> sd.Kernel:
    S = sd.itensor.tiled(sd.f32, shape=(n * t, n * t), tile=(t, t))

    @sd.kernel(name=f"causal{n}x{t}")
    def causal(s: S) -> S:
        for i in range(n):
            for j in range(n):
                rows = sd.iota((t, t), axis=0) + i * t
                cols = sd.iota((t, t), axis=1) + j * t
                yield sd.where(cols > rows, -math.inf, s.read())

    return causal


@pytest.mark.parametrize(("n", "t"), [(4, 8), (3, 5), (1, 16)])
def test_causal_mask_from_iota_and_loop_indices(n: int, t: int) -> None:
    kernel = causal_kernel(n, t)
    x = np.random.default_rng(n * t).standard_normal((n * t, n * t)).astype(np.float32)
    want = np.where(np.triu(np.ones_like(x), 1) > 0, -np.inf, x)
    np.testing.assert_array_equal(kernel(x), want)
    np.testing.assert_array_equal(kernel.simulate(x), want)


def test_loop_index_as_a_value_alibi_like() -> None:
    """A per-head slope and a per-position bias from loop indices (ALiBi-style)."""
    H, L = 3, 16
    X = sd.itensor.tiled(sd.f32, shape=(H, L), tile=(1, L))

    @sd.kernel
    def alibi(s: X) -> X:
        for h in range(H):
            yield s.read() + (sd.iota((1, L)) - (L - 1)) / (h + 1)

    x = np.random.default_rng(1).standard_normal((H, L)).astype(np.float32)
    pos = np.arange(L, dtype=np.float32) - (L - 1)
    want = np.stack([x[h] + pos / (h + 1) for h in range(H)])
    np.testing.assert_allclose(alibi(x), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(alibi.simulate(x), want, rtol=1e-6, atol=1e-6)


def test_iota_eager_matches_numpy() -> None:
    np.testing.assert_array_equal(sd.iota((2, 3), axis=0), [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(sd.iota(4), [0, 1, 2, 3])


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_on_chip_mask_in_csim(tmp_path) -> None:  # noqa: ANN001
    from hls_backend import emit_project
    from tests.hls.cases import csim_modes

    kernel = causal_kernel(3, 4)
    x = np.random.default_rng(2).standard_normal((12, 12)).astype(np.float32)
    project = emit_project(sd.compile(kernel.program), tmp_path / "causal")
    want = kernel.simulate(x)
    for mode, got in csim_modes(project, x):
        np.testing.assert_array_equal(got, want, err_msg=f"{mode} csim")
