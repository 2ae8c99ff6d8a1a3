"""Tutorial 03: streaming attention for one decode query (flash-decoding style).

During LLM decoding, each new token attends over the whole KV cache: for every head h,

    out[h] = softmax(q[h] @ K[h].T / sqrt(dh)) @ V[h]

The cache is far too big to hold on chip at once, so we stream K and V through the kernel in tiles
of T cache rows and keep only three small running values per head (the "online softmax"):

    m   -- the largest score seen so far               (1 x 1)
    l   -- the sum of exp(score - m) seen so far       (1 x 1)
    acc -- the sum of exp(score - m) * v seen so far   (1 x dh)

When a new tile raises the maximum from m to m_new, the old sums are rescaled by exp(m - m_new).
After the last tile, out = acc / l. Nothing ever waits for the whole cache: one K tile and one V
tile are on chip at a time.

Run it: `python tutorials/03_streaming_attention.py` (it checks itself against
torch.nn.functional.scaled_dot_product_attention).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import streamdsl as sd


def build(heads: int = 4, cache: int = 64, dh: int = 32, rows: int = 16) -> sd.DataflowProgram:
    """The attention program for `heads` heads of size `dh` over a cache of `cache` tokens,
    streamed `rows` cache rows per tile."""
    # Step 1: the stream types. One query token per head; K and V arrive head by head, each head
    # as cache // rows tiles of (1, rows, dh). The output is one (1, dh) token per head.
    Q = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))
    KV = sd.itensor.tiled(sd.f32, shape=(heads, cache, dh), tile=(1, rows, dh))
    OUT = sd.itensor.tiled(sd.f32, shape=(heads, dh), tile=(1, dh))
    tiles, scale = cache // rows, 1.0 / math.sqrt(dh)

    # Step 2: the kernel. The loops are static, so the compiler checks that q is read `heads`
    # times and k, v `heads * tiles` times: exactly their token counts.
    @sd.kernel
    def attention(q: Q, k: KV, v: KV) -> OUT:
        for h in range(heads):
            qh = q.read() * scale  # (1, dh)
            m = sd.full((1, 1), -math.inf)
            l = sd.zeros((1, 1))  # noqa: E741 - the paper's name
            acc = sd.zeros((1, dh))
            for t in range(tiles):
                kt = sd.reshape(k.read(), (rows, dh))
                vt = sd.reshape(v.read(), (rows, dh))
                s = qh @ kt.T  # (1, rows) scores of this tile
                m_new = sd.maximum(m, sd.max(s, axis=1))
                p = sd.exp(s - m_new)  # broadcast the (1, 1) max over the row
                alpha = sd.exp(m - m_new)  # rescales what was accumulated so far
                l = l * alpha + sd.sum(p, axis=1)  # noqa: E741
                acc = acc * alpha + p @ vt
                m = m_new
            yield acc / l

    # Step 3: the dataflow program: q, K and V live in HBM; DMAs stream them in the kernel's order.
    @sd.dataflow
    def decode_attention(
        q: sd.Tensor[sd.f32, (heads, dh)],
        k: sd.Tensor[sd.f32, (heads, cache, dh)],
        v: sd.Tensor[sd.f32, (heads, cache, dh)],
    ):
        return attention(q, k, v)

    return decode_attention


def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """torch's attention with a batch of 1 and a single query position."""
    out = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q)[None, :, None, :], torch.from_numpy(k)[None], torch.from_numpy(v)[None]
    )
    return out[0, :, 0, :].numpy()


def main() -> None:
    heads, cache, dh, rows = 4, 64, 32, 16
    prog = build(heads, cache, dh, rows)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((heads, dh)).astype(np.float32)
    k = rng.standard_normal((heads, cache, dh)).astype(np.float32)
    v = rng.standard_normal((heads, cache, dh)).astype(np.float32)

    # The IR: one dataflow.task whose scf.for loops carry m, l, acc (and the output stream).
    print(prog.module)

    want = reference(q, k, v)
    eager = prog(q, k, v)  # runs the Python function on numpy
    simulated = prog.simulate(q, k, v)  # runs the IR with bounded FIFOs
    for name, got in (("eager", eager), ("simulated", simulated)):
        err = float(np.abs(got - want).max())
        print(f"{name:>9}: max |out - torch sdpa| = {err:.2e}")
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    main()
