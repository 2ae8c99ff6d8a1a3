"""Built-in DSL programs: the default the main job compiles, with their PyTorch references.

`ffn_block` is the second half of a GPT-2 decoder layer for one decode token:
`h = x + attn; y = h + W2 @ gelu(W1 @ layernorm(h))`. It exercises every part of the flow: a row
buffered on chip (layernorm), layout converters (each matvec re-reads its input once per output
tile), an on-chip fork with reconvergence (the residual `h`), and FIFO sizing (the residual FIFO
must hold `h` while layernorm and the two matvecs run).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import streamdsl as sd
from streamdsl.dsl import DataflowProgram

__all__ = ["EXAMPLES", "Example", "ffn_block", "gelu_kernel", "layernorm_kernel", "matvec_kernel"]


@dataclass(frozen=True)
class Example:
    """A program, a config for the report, example inputs and an independent torch reference."""

    name: str
    config: dict[str, int]
    program: DataflowProgram
    make_inputs: Callable[[int], list[np.ndarray]]
    reference: Callable[..., np.ndarray]


def _row(n: int, t: int) -> sd.itensor:
    return sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, t))


def layernorm_kernel(r: int, d: int, t: int) -> sd.Kernel:
    """LayerNorm of r rows of d elements, streamed in (1, t) tiles; gain and bias are replayed per row."""
    X, G, n = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(1, t)), _row(d, t).repeat(r), d // t

    @sd.kernel
    def layernorm(x: X, g: G, b: G) -> X:
        for i in range(r):
            buf = sd.zeros((n, 1, t))  # the whole row stays on chip until its statistics are known
            s = sd.zeros((1, 1))
            for j in range(n):
                v = x.read()
                buf[j] = v
                s += sd.sum(v, axis=1)
            mean = s / d
            var = sd.zeros((1, 1))
            for j in range(n):
                c = buf[j] - mean
                var += sd.sum(c * c, axis=1)
            rstd = sd.rsqrt(var / d + 1e-5)
            for j in range(n):
                yield (buf[j] - mean) * rstd * g.read() + b.read()

    return layernorm


def matvec_kernel(k: int, n: int, t: int, name: str = "matvec") -> sd.Kernel:
    """y = x @ W for x (1, k), W (k, n): W a column of tiles at a time, x replayed per output tile."""
    X = _row(k, t).repeat(n // t)  # x is re-read once per output tile (a reuse loop)
    W = sd.itensor.tiled(sd.f32, shape=(k, n), tile=(t, t), order=(1, 0))  # a column of tiles at a time
    Y = _row(n, t)

    @sd.kernel
    def matvec(x: X, w: W) -> Y:
        for j in range(n // t):
            acc = sd.zeros((1, t))
            for i in range(k // t):
                acc += x.read() @ w.read()
            yield acc

    matvec.name = name
    return matvec


def gelu_kernel(n: int, t: int) -> sd.Kernel:
    """GELU (tanh form) of a (1, n) row in (1, t) tiles."""
    Y, c = _row(n, t), math.sqrt(2.0 / math.pi)

    @sd.kernel
    def gelu(x: Y) -> Y:
        for i in range(n // t):
            v = x.read()
            yield 0.5 * v * (1.0 + sd.tanh(c * (v + 0.044715 * v * v * v)))

    return gelu


def _add(n: int, t: int) -> sd.Kernel:
    Y = _row(n, t)

    @sd.kernel
    def residual(a: Y, b: Y) -> Y:
        for i in range(n // t):
            yield a.read() + b.read()

    return residual


def ffn_block(d: int = 768, h: int = 3072, t: int = 64) -> Example:
    """GPT-2's feed-forward block (hidden d, FFN h) on one token, streamed in (1, t) / (t, t) tiles."""
    norm, act, add = layernorm_kernel(1, d, t), gelu_kernel(h, t), _add(d, t)
    up, down = matvec_kernel(d, h, t, "fc_up"), matvec_kernel(h, d, t, "fc_down")

    @sd.dataflow
    def ffn(
        x: sd.Tensor[sd.f32, (1, d)],
        attn: sd.Tensor[sd.f32, (1, d)],
        ln_g: sd.Tensor[sd.f32, (1, d)],
        ln_b: sd.Tensor[sd.f32, (1, d)],
        w_up: sd.Tensor[sd.f32, (d, h)],
        w_down: sd.Tensor[sd.f32, (h, d)],
    ):
        h = add(x, attn)
        return add(h, down(act(up(norm(h, ln_g, ln_b), w_up)), w_down))

    def make_inputs(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((1, d)).astype(np.float32)
        attn = rng.standard_normal((1, d)).astype(np.float32)
        g = (1.0 + 0.1 * rng.standard_normal((1, d))).astype(np.float32)
        b = (0.1 * rng.standard_normal((1, d))).astype(np.float32)
        w_up = (rng.standard_normal((d, h)) / math.sqrt(d)).astype(np.float32)
        w_down = (rng.standard_normal((h, d)) / math.sqrt(h)).astype(np.float32)
        return [x, attn, g, b, w_up, w_down]

    def reference(x, attn, g, b, w_up, w_down):
        import torch

        xt = torch.from_numpy(x) + torch.from_numpy(attn)
        ln = torch.nn.functional.layer_norm(xt, (d,), torch.from_numpy(g[0]), torch.from_numpy(b[0]), 1e-5)
        hidden = torch.nn.functional.gelu(ln @ torch.from_numpy(w_up), approximate="tanh")
        return (xt + hidden @ torch.from_numpy(w_down)).numpy()

    return Example("ffn-block", {"hidden": d, "ffn": h, "tile": t}, ffn, make_inputs, reference)


EXAMPLES: dict[str, Callable[..., Example]] = {"ffn-block": ffn_block}
