"""Tutorial 04: flash decoding: grouped-query decode attention split over the KV cache.

One new token attends over a cache of `length` valid positions (of `capacity` allocated), and
`length` is a run-time scalar: ONE compiled program serves every length from 0 to `capacity`,
streaming only the valid pages of the cache. Flash decoding splits the cache into S parts that are
processed in parallel; each part returns an unnormalised partial result with its own softmax
statistics, and a combine kernel merges them:

    part s:   m_s = max score,  l_s = sum exp(score - m_s),  o_s = sum exp(score - m_s) * v
    combine:  M = max_s m_s,    out = sum_s exp(m_s - M) * o_s / sum_s exp(m_s - M) * l_s

Here the cache is kept as S separate HBM buffers, paged round robin (page j, `rows` positions, lives
in buffer j % S), so each split kernel streams its own buffer and all of them get work at every
length. Features shown:
- a run-time scalar (`length: sd.Scalar[sd.i32, capacity]`) and a loop whose trip count is
  computed from it (`for j in sd.range(...)`): the number of valid pages of each part. The K and V
  ports read in that loop become streams of run-time length (`bounds` in their itensor types), so
  the DMAs read only the valid pages, and the FIFOs are sized for the longest cache;
- a kernel factory (`@sd.kernel(name=...)`) making one split kernel per part, and a dataflow
  function with variadic arguments (`*caches: Cache`, then the keyword-only scalar): one
  definition for any number of splits (`flash_decode.with_arity(2 * splits)` is the program);
- the length mask computed on chip from `sd.iota`, loop indices and the scalar (positions >= length
  in the last page get a large negative score), so nothing but K and V is streamed;
- tile concatenation (`sd.concat` packs `o_s`, `m_s`, `l_s` into one token) and tile slicing
  (the combine kernel unpacks it);
- stream interleaving: the S partial streams are joined round robin with `sd.join` into one
  (S, H, dh + 2) stream, head by head: the order the combine kernel reads, so no layout converter
  is needed (`sd.concat` would stream part after part, and a converter would buffer all of them
  to reorder them; with parts of different run-time lengths, a part that finishes early would
  then wait on a FIFO for the concatenation to reach it).

Run it: `python tutorials/04_flash_decoding.py` (it checks itself against
torch.nn.functional.scaled_dot_product_attention(enable_gqa=True)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import streamdsl as sd

MASKED = -1.0e30  # finite: a part whose rows are all masked keeps finite statistics (its weight is 0)


def build(heads: int = 8, kv_heads: int = 2, capacity: int = 64, dh: int = 16, rows: int = 8,
          splits: int = 2, new_token: bool = False) -> sd.DataflowProgram:
    """The program for one query over `capacity` positions, of which the first `length` (the
    run-time scalar) are valid. With `new_token`, the program also takes the new token's key
    and value (one row per KV head, `k_new`, `v_new`, after `q`), which attend besides the cache
    (tutorial 07: the cache then stays where the model keeps it, in HBM)."""
    group, part = heads // kv_heads, capacity // splits
    tiles, scale = part // rows, 1.0 / math.sqrt(dh)
    Length = sd.Scalar[sd.i32, capacity]  # the valid cache positions, known at run time

    Q = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))
    # one part of the cache (at most `tiles` pages), replayed for each query head of its KV head's group
    KV = sd.itensor(sd.f32, tile=(1, rows, dh), trips=[kv_heads, group, tiles], steps=[1, 1, rows],
                    map=lambda h, g, j: (h, j, 0))
    # the new token's key (value): its KV head's row, replayed for each query head of the group
    NEW = sd.itensor(sd.f32, tile=(1, dh), trips=[kv_heads, group], steps=[1, 1], map=lambda h, g: (h, 0))
    # a partial result per head: [o_s (dh), m_s, l_s] in one token
    P = sd.itensor.tiled(sd.f32, shape=(1, heads, dh + 2), tile=(1, 1, dh + 2))
    # the combine kernel reads all parts of head 0, then of head 1, ...
    parts_in = splits + int(new_token)
    ALL = sd.itensor.tiled(sd.f32, shape=(parts_in, heads, dh + 2), tile=(1, 1, dh + 2), order=(1, 0, 2))
    OUT = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))

    def split_kernel(s: int):
        @sd.kernel(name=f"part{s}")
        def partial(q: Q, k: KV, v: KV, length: Length) -> P:
            pages = (length + rows - 1) // rows  # valid pages of the whole cache
            for h in range(heads):
                qh = q.read() * scale
                m = sd.full((1, 1), -math.inf)
                l = sd.zeros((1, 1))  # noqa: E741
                acc = sd.zeros((1, dh))
                for j in sd.range((pages - s + splits - 1) // splits):  # pages s, s + S, ... below `pages`
                    kt = sd.reshape(k.read(), (rows, dh))
                    vt = sd.reshape(v.read(), (rows, dh))
                    position = sd.iota((1, rows)) + (j * splits + s) * rows
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
    def fresh_part(q: Q, k: NEW, v: NEW) -> P:
        """The new token's part: one valid position, so m = its score, l = 1, o = its value."""
        for h in range(heads):
            score = sd.sum(q.read() * scale * k.read(), axis=1)
            yield sd.reshape(sd.concat([v.read(), score, sd.full((1, 1), 1.0)], axis=1), (1, 1, dh + 2))

    @sd.kernel
    def combine(p: ALL) -> OUT:
        for h in range(heads):
            m = sd.full((1, 1), -math.inf)
            l = sd.zeros((1, 1))  # noqa: E741
            acc = sd.zeros((1, dh))
            for s in range(parts_in):
                t = sd.reshape(p.read(), (1, dh + 2))
                m_s, l_s = t[:, dh:dh + 1], t[:, dh + 1:]
                m_new = sd.maximum(m, m_s)
                old, new = sd.exp(m - m_new), sd.exp(m_s - m_new)
                acc = acc * old + t[:, :dh] * new
                l = l * old + l_s * new  # noqa: E741
                m = m_new
            yield acc / l

    def attend(q, new, caches, length):  # noqa: ANN001, ANN202 - traced with dataflow values
        k_parts, v_parts = caches[:splits], caches[splits:]
        partials = [kern(q, k, v, length) for kern, k, v in zip(parts, k_parts, v_parts)]
        if new:  # first: the combine's running maximum is finite from the start
            partials.insert(0, fresh_part(q, *new))
        return combine(sd.join(partials, ALL) if len(partials) > 1 else partials[0])

    Cache = sd.Tensor[sd.f32, (kv_heads, part, dh)]
    Query = sd.Tensor[sd.f32, (heads, dh)]
    Row = sd.Tensor[sd.f32, (kv_heads, dh)]
    if new_token:
        @sd.dataflow
        def flash_decode(q: Query, k_new: Row, v_new: Row, *caches: Cache, length: Length):
            return attend(q, (k_new, v_new), caches, length)
    else:
        @sd.dataflow
        def flash_decode(q: Query, *caches: Cache, length: Length):  # the K parts, then the V parts
            return attend(q, (), caches, length)
    return flash_decode.with_arity(2 * splits)


def paged(cache: np.ndarray, splits: int, rows: int) -> list[np.ndarray]:
    """A (kv_heads, capacity, dh) cache as `splits` buffers: page j (`rows` positions) in buffer j % splits."""
    pages = cache.reshape(cache.shape[0], -1, rows, cache.shape[2])
    return [pages[:, s::splits].reshape(cache.shape[0], -1, cache.shape[2]) for s in range(splits)]


def unpaged(buffers: tuple[np.ndarray, ...], rows: int) -> np.ndarray:
    """The inverse of `paged`."""
    splits, (kv_heads, part, dh) = len(buffers), buffers[0].shape
    pages = np.stack([b.reshape(kv_heads, part // rows, rows, dh) for b in buffers], axis=2)  # (h, page/S, S, rows, dh)
    return pages.reshape(kv_heads, part * splits, dh)


def inputs(heads: int, kv_heads: int, capacity: int, dh: int, rows: int, splits: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The query and the paged cache: `splits` buffers of K, then of V."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((heads, dh)).astype(np.float32)
    k = (2 * rng.standard_normal((kv_heads, capacity, dh))).astype(np.float32)
    v = rng.standard_normal((kv_heads, capacity, dh)).astype(np.float32)
    return (q, *paged(k, splits, rows), *paged(v, splits, rows))


def reference(length: int, rows: int, q: np.ndarray, *cache: np.ndarray) -> np.ndarray:
    """torch's GQA attention of one query over the first `length` cache positions."""
    half = len(cache) // 2
    k, v = unpaged(cache[:half], rows), unpaged(cache[half:], rows)
    out = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q)[None, :, None, :], torch.from_numpy(k[:, :length])[None],
        torch.from_numpy(v[:, :length])[None], enable_gqa=True,
    )
    return out[0, :, 0, :].numpy()


def main() -> None:
    heads, kv_heads, capacity, dh, rows, splits = 8, 2, 64, 16, 8, 2
    args = inputs(heads, kv_heads, capacity, dh, rows, splits)
    prog = build(heads, kv_heads, capacity, dh, rows, splits)  # one program for every length
    print(prog.module)
    design = sd.compile(prog)  # FIFOs sized for the longest cache
    for length in (1, 13, capacity // 2, capacity):
        want = reference(length, rows, *args)
        for name, got in (("eager", prog(*args, length)), ("simulated", design.simulate(*args, length))):
            err = float(np.abs(got - want).max())
            print(f"length {length:>3} {name:>9}: max |out - torch sdpa| = {err:.2e}")
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        cycles = design.timed_simulation(scalars={"length": length}).makespan
        print(f"length {length:>3}  timed: {cycles} cycles")


if __name__ == "__main__":
    main()
