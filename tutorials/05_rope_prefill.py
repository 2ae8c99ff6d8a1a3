"""Tutorial 05: rotary embeddings and causal prefill attention with grouped-query heads.

During prefill, all L prompt positions attend causally: position r sees positions 0..r. L is a
run-time scalar here: one compiled program serves every prompt length up to `capacity`, and only
the tiles of the first ceil(L / rows) positions are streamed. With
grouped-query attention (GQA), H query heads share Hkv key/value heads (G = H / Hkv query heads
per group). Before attention, queries and keys are rotated by their position (RoPE):

    rope(x) = x * cos + rotate_half(x) * sin,     rotate_half([x1, x2]) = [-x2, x1]

This tutorial shows five DSL features:
- a run-time scalar (`length: sd.Scalar[sd.i32, capacity]`) bounding the query and key tile loops
  (`sd.range`), so every stream carries only the tiles the prompt needs;
- a plain Python helper (`rotate_half`) that kernels call: it is inlined;
- tile slicing and concatenation (`v[:, half:]`, `sd.concat`) for the half rotation;
- the causal mask computed on chip from `sd.iota` and the loop indices (nothing streamed from HBM);
- itensor reuse types: each K/V tile is replayed for every query tile of every head of its group
  (the K/V ports' types get a triangular bound from the kernel's loops: tile j for query tile i
  only while j <= i).

Queries are rotated by their own kernel; keys are rotated inside the attention kernel as their
tiles arrive, by the same inlined helper, so the rotation is recomputed for each replay (a handful
of multiply-adds per element) instead of buffering the rotated keys on chip. The key loop is
triangular (`sd.range(i + 1)`: key tiles up to the query tile's diagonal), so key tiles above the
diagonal are never streamed; the mask is needed on the diagonal tile only.

Run it: `python tutorials/05_rope_prefill.py` (it checks itself against
torch.nn.functional.scaled_dot_product_attention(is_causal=True, enable_gqa=True)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import streamdsl as sd


def rotate_half(v):
    """[x1, x2] -> [-x2, x1] along the last dim: two tile slices and a concatenation."""
    half = v.shape[-1] // 2
    return sd.concat([-v[:, half:], v[:, :half]], axis=-1)


def rope(v, cos, sin):
    return v * cos + rotate_half(v) * sin


def build(heads: int = 4, kv_heads: int = 2, capacity: int = 32, dh: int = 16, rows: int = 8) -> sd.DataflowProgram:
    """Causal prefill attention over up to `capacity` positions, `rows` positions per tile."""
    group, tiles, length = heads // kv_heads, capacity // rows, capacity  # types are written for the maximum
    scale = 1.0 / math.sqrt(dh)
    Length = sd.Scalar[sd.i32, capacity]

    # Step 1: stream types. Q is streamed once, tile by tile: (1, rows, dh) per (head, query tile).
    Q = sd.itensor.tiled(sd.f32, shape=(heads, length, dh), tile=(1, rows, dh))
    # K and V: for every KV head, for each of its G query heads, for each query tile i, all key
    # tiles j: loops (kv head, g, i, j), the offset moves only with the KV head and j (reuse loops).
    KV = sd.itensor(sd.f32, tile=(1, rows, dh), trips=[kv_heads, group, tiles, tiles], steps=[1, 1, 1, rows],
                    map=lambda h, g, i, j: (h, j, 0))
    # cos / sin tables (length, dh): once per query tile for Q, once per key tile (replayed like K).
    CQ = sd.itensor(sd.f32, tile=(rows, dh), trips=[heads, tiles], steps=[1, rows], map=lambda h, i: (i, 0))
    CK = sd.itensor(sd.f32, tile=(rows, dh), trips=[kv_heads, group, tiles, tiles], steps=[1, 1, 1, rows],
                    map=lambda h, g, i, j: (j, 0))

    # Step 2: the queries' rotary embedding, one tile per (head, query tile).
    @sd.kernel
    def rope_q(x: Q, cos: CQ, sin: CQ, n: Length) -> Q:
        for h in range(heads):
            for i in sd.range((n + rows - 1) // rows):
                v = sd.reshape(x.read(), (rows, dh))
                yield sd.reshape(rope(v, cos.read(), sin.read()), (1, rows, dh))

    # Step 3: attention with an online softmax over key tiles; the causal mask from iota.
    @sd.kernel
    def attention(q: Q, k: KV, v: KV, cos: CK, sin: CK, n: Length) -> Q:
        used = (n + rows - 1) // rows  # tiles holding prompt positions
        for h in range(heads):
            for i in sd.range(used):
                qi = sd.reshape(q.read(), (rows, dh)) * scale
                m = sd.full((rows, 1), -math.inf)
                l = sd.zeros((rows, 1))  # noqa: E741 - the paper's name
                acc = sd.zeros((rows, dh))
                for j in sd.range(i + 1):  # triangular: key tiles up to the diagonal
                    kt = rope(sd.reshape(k.read(), (rows, dh)), cos.read(), sin.read())
                    vt = sd.reshape(v.read(), (rows, dh))
                    query_pos = sd.iota((rows, rows), axis=0) + i * rows
                    key_pos = sd.iota((rows, rows), axis=1) + j * rows
                    s = sd.where(key_pos > query_pos, -math.inf, qi @ kt.T)  # key_pos >= n is masked too
                    m_new = sd.maximum(m, sd.max(s, axis=1))
                    p = sd.exp(s - m_new)
                    alpha = sd.exp(m - m_new)
                    l = l * alpha + sd.sum(p, axis=1)  # noqa: E741
                    acc = acc * alpha + p @ vt
                    m = m_new
                yield sd.reshape(acc / l, (1, rows, dh))

    @sd.dataflow
    def prefill(
        q: sd.Tensor[sd.f32, (heads, length, dh)],
        k: sd.Tensor[sd.f32, (kv_heads, length, dh)],
        v: sd.Tensor[sd.f32, (kv_heads, length, dh)],
        cos: sd.Tensor[sd.f32, (length, dh)],
        sin: sd.Tensor[sd.f32, (length, dh)],
        n: Length,
    ):
        return attention(rope_q(q, cos, sin, n), k, v, cos, sin, n)

    return prefill


def rope_tables(length: int, dh: int, base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """Llama's cos / sin tables: frequency base**(-2i/dh) for i < dh/2, repeated for both halves."""
    inv = base ** (-np.arange(0, dh, 2, dtype=np.float64) / dh)
    angles = np.outer(np.arange(length), inv)
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def reference(q, k, v, cos, sin, n=None) -> np.ndarray:  # noqa: ANN001
    """torch: rotate q and k, then causal GQA attention over the first n positions (all by default)."""
    n = q.shape[1] if n is None else n
    q, k, v, cos, sin = q[:, :n], k[:, :n], v[:, :n], cos[:n], sin[:n]
    def rot(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return x * torch.from_numpy(cos) + torch.cat([-x2, x1], dim=-1) * torch.from_numpy(sin)

    out = torch.nn.functional.scaled_dot_product_attention(
        rot(torch.from_numpy(q))[None], rot(torch.from_numpy(k))[None], torch.from_numpy(v)[None],
        is_causal=True, enable_gqa=True,
    )
    return out[0].numpy()


def inputs(heads: int, kv_heads: int, length: int, dh: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((heads, length, dh)).astype(np.float32)
    k = rng.standard_normal((kv_heads, length, dh)).astype(np.float32)
    v = rng.standard_normal((kv_heads, length, dh)).astype(np.float32)
    return (q, k, v, *rope_tables(length, dh))


def main() -> None:
    heads, kv_heads, capacity, dh, rows = 4, 2, 32, 16, 8
    prog = build(heads, kv_heads, capacity, dh, rows)  # one program for every prompt length
    args = inputs(heads, kv_heads, capacity, dh)
    print(prog.module)
    for n in (1, 13, capacity // 2, capacity):
        want = reference(*args, n)
        for name, got in (("eager", prog(*args, n)), ("simulated", prog.simulate(*args, n))):
            err = float(np.abs(got[:, :n] - want).max())  # positions past the prompt are not computed
            print(f"length {n:>3} {name:>9}: max |out - torch sdpa| = {err:.2e}")
            np.testing.assert_allclose(got[:, :n], want, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    main()
