"""Tutorial 04: flash decoding: grouped-query decode attention split over the KV cache.

One new token attends over a cache of `length` valid positions (of `capacity` allocated). Flash
decoding splits the cache into S parts that are processed in parallel; each part returns an
unnormalised partial result with its own softmax statistics, and a combine kernel merges them:

    part s:   m_s = max score,  l_s = sum exp(score - m_s),  o_s = sum exp(score - m_s) * v
    combine:  M = max_s m_s,    out = sum_s exp(m_s - M) * o_s / sum_s exp(m_s - M) * l_s

Here the cache is kept as S separate HBM buffers (like the pages of a paged KV cache), so each
split kernel streams its own. Features shown:
- a kernel factory (`@sd.kernel(name=...)`) making one split kernel per part;
- the length mask computed on chip from `sd.iota` and loop indices (positions >= length get a
  large negative score), so nothing but K and V is streamed;
- tile concatenation (`sd.concat` packs `o_s`, `m_s`, `l_s` into one token) and tile slicing
  (the combine kernel unpacks it);
- stream concatenation: the S partial streams are joined with `sd.concat` into one (S, H, dh + 2)
  stream; the combine kernel reads it head by head, so a layout converter reorders it on chip
  (`sd.compile` plans its buffer).

The valid length is a compile-time constant here: run-time scalars (`sd.Scalar`) are not in the
DSL yet, so a program is compiled per length, and all `capacity` rows are streamed.

Run it: `python tutorials/04_flash_decoding.py` (it checks itself against
torch.nn.functional.scaled_dot_product_attention(enable_gqa=True)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import streamdsl as sd

MASKED = -1.0e30  # finite: a part whose rows are all masked keeps finite statistics (its weight is 0)


def build(heads: int = 8, kv_heads: int = 2, capacity: int = 64, length: int = 40, dh: int = 16,
          rows: int = 8, splits: int = 2) -> sd.DataflowProgram:
    group, part = heads // kv_heads, capacity // splits
    tiles, scale = part // rows, 1.0 / math.sqrt(dh)

    Q = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))
    # one part of the cache, replayed for each query head of its KV head's group
    KV = sd.itensor(sd.f32, tile=(1, rows, dh), trips=[kv_heads, group, tiles], steps=[1, 1, rows],
                    map=lambda h, g, j: (h, j, 0))
    # a partial result per head: [o_s (dh), m_s, l_s] in one token
    P = sd.itensor.tiled(sd.f32, shape=(1, heads, dh + 2), tile=(1, 1, dh + 2))
    # the combine kernel reads all parts of head 0, then of head 1, ...
    ALL = sd.itensor.tiled(sd.f32, shape=(splits, heads, dh + 2), tile=(1, 1, dh + 2), order=(1, 0, 2))
    OUT = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))

    def split_kernel(s: int):
        first = s * part  # cache position of this part's first row

        @sd.kernel(name=f"part{s}")
        def partial(q: Q, k: KV, v: KV) -> P:
            for h in range(heads):
                qh = q.read() * scale
                m = sd.full((1, 1), -math.inf)
                l = sd.zeros((1, 1))  # noqa: E741
                acc = sd.zeros((1, dh))
                for j in range(tiles):
                    kt = sd.reshape(k.read(), (rows, dh))
                    vt = sd.reshape(v.read(), (rows, dh))
                    position = sd.iota((1, rows)) + (first + j * rows)
                    scores = sd.where(position >= length, MASKED, qh @ kt.T)
                    m_new = sd.maximum(m, sd.max(scores, axis=1))
                    p = sd.exp(scores - m_new)
                    alpha = sd.exp(m - m_new)
                    l = l * alpha + sd.sum(p, axis=1)  # noqa: E741
                    acc = acc * alpha + p @ vt
                    m = m_new
                yield sd.reshape(sd.concat([acc, m, l], axis=1), (1, 1, dh + 2))

        return partial

    parts = [split_kernel(s) for s in range(splits)]

    @sd.kernel
    def combine(p: ALL) -> OUT:
        for h in range(heads):
            m = sd.full((1, 1), -math.inf)
            l = sd.zeros((1, 1))  # noqa: E741
            acc = sd.zeros((1, dh))
            for s in range(splits):
                t = sd.reshape(p.read(), (1, dh + 2))
                m_s, l_s = t[:, dh:dh + 1], t[:, dh + 1:]
                m_new = sd.maximum(m, m_s)
                old, new = sd.exp(m - m_new), sd.exp(m_s - m_new)
                acc = acc * old + t[:, :dh] * new
                l = l * old + l_s * new  # noqa: E741
                m = m_new
            yield acc / l

    def attend(q, k_parts, v_parts):  # noqa: ANN001, ANN202 - traced with dataflow values
        partials = [kern(q, k, v) for kern, k, v in zip(parts, k_parts, v_parts)]
        return combine(sd.concat(partials, axis=0))

    Cache = sd.Tensor[sd.f32, (kv_heads, part, dh)]
    Query = sd.Tensor[sd.f32, (heads, dh)]
    if splits == 2:
        @sd.dataflow
        def flash_decode(q: Query, k0: Cache, k1: Cache, v0: Cache, v1: Cache):
            return attend(q, [k0, k1], [v0, v1])
    elif splits == 4:
        @sd.dataflow
        def flash_decode(q: Query, k0: Cache, k1: Cache, k2: Cache, k3: Cache,
                         v0: Cache, v1: Cache, v2: Cache, v3: Cache):
            return attend(q, [k0, k1, k2, k3], [v0, v1, v2, v3])
    else:
        raise ValueError(f"this tutorial spells out 2 or 4 splits, got {splits}")
    return flash_decode


def inputs(heads: int, kv_heads: int, capacity: int, dh: int, splits: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The query and the cache split into `splits` parts of K, then of V."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((heads, dh)).astype(np.float32)
    k = (2 * rng.standard_normal((kv_heads, capacity, dh))).astype(np.float32)
    v = rng.standard_normal((kv_heads, capacity, dh)).astype(np.float32)
    return (q, *np.split(k, splits, axis=1), *np.split(v, splits, axis=1))


def reference(length: int, q: np.ndarray, *cache: np.ndarray) -> np.ndarray:
    """torch's GQA attention of one query over the first `length` cache positions."""
    half = len(cache) // 2
    k, v = np.concatenate(cache[:half], axis=1), np.concatenate(cache[half:], axis=1)
    out = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q)[None, :, None, :], torch.from_numpy(k[:, :length])[None],
        torch.from_numpy(v[:, :length])[None], enable_gqa=True,
    )
    return out[0, :, 0, :].numpy()


def main() -> None:
    heads, kv_heads, capacity, dh, rows, splits = 8, 2, 64, 16, 8, 2
    args = inputs(heads, kv_heads, capacity, dh, splits)
    for length in (1, capacity // 2, capacity):
        prog = build(heads, kv_heads, capacity, length, dh, rows, splits)
        if length == 1:
            print(prog.module)
        want = reference(length, *args)
        for name, got in (("eager", prog(*args)), ("simulated", sd.compile(prog).simulate(*args))):
            err = float(np.abs(got - want).max())
            print(f"length {length:>3} {name:>9}: max |out - torch sdpa| = {err:.2e}")
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    main()
