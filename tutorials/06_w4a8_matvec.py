"""Tutorial 06: a W4A8 matrix-vector kernel by hand -- int4 weights, int8 activations, int32 sums.

y = x @ W.T for M tokens x: (M, K) float32 and a linear layer W: (N, K), quantized as
docs/quantization.md's `w4a8` scheme says:

- **weights** once, offline, on the host: int4 per output channel in groups of G = 128 input
  channels, one f16 scale per group (`streamdsl.quant.quantize_weight`). The kernel streams them
  as an `sd.i4` tensor (K, N): a (G, TN) tile is 4 bits an element, an eighth of its float32 twin
  in FIFO bits and DMA beats;
- **activations** on chip, per token: `s_x = max|x| / 127` and `xq = sd.quantize(x, s_x, sd.i8)`
  (round half to even, clamp to [-127, 127]);
- **products**: `xq_tile @ w_tile` on integer tiles sign-extends both to i32 and accumulates
  exactly, one int32 sum per group;
- **scales**: `sd.dequantize(acc, s_w)` is `float(acc) * float(s_w)`; the groups add up in
  float32 in order and one multiply by `s_x` ends it -- exactly the order of
  `streamdsl.quant.linear`, so the simulator's floats are bit-identical to the numpy reference.

Two kernels: `quantize_tokens` computes the per-token scale and the int8 tiles (a statistic per
token and a tile per group: two `sd.Out` ports), `w4a8_matvec` keeps one token's int8 tiles in an
on-chip buffer and sweeps the weight columns. The same group loop, written once as a plain Python
helper, also builds `int32_matvec`, which streams the raw int32 group sums out so the integer part
can be checked bit for bit on its own (with the per-token scales, also returned).

Run it: `python tutorials/06_w4a8_matvec.py`.
"""

from __future__ import annotations

import numpy as np
import torch

import streamdsl as sd
from frontends.quant import FakeQuantLinear
from streamdsl import quant

GROUP = 128  # input channels per weight scale (the w4a8 scheme)


def group_sums(xb, w, g):
    """The int32 sums of group g for one weight column tile: i8 (1, G) @ i4 (G, TN) -> i32 (1, TN)."""
    return xb[g] @ w.read()


def build(m: int = 2, k: int = 256, n: int = 128, tn: int = 64) -> dict[str, sd.DataflowProgram]:
    groups = k // GROUP
    X = sd.itensor.tiled(sd.f32, shape=(m, k), tile=(1, k))
    XQ = sd.itensor.tiled(sd.i8, shape=(m, k), tile=(1, GROUP))
    S = sd.itensor.tiled(sd.f32, shape=(m, 1), tile=(1, 1))
    # weights column tile by column tile (all groups of output channels j*TN.. before the next),
    # replayed once per token
    W = sd.itensor.tiled(sd.i4, shape=(k, n), tile=(GROUP, tn), order=(1, 0)).repeat(m)
    WS = sd.itensor.tiled(sd.f16, shape=(groups, n), tile=(1, tn), order=(1, 0)).repeat(m)
    Y = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(1, tn))
    # the int32 sums as (token, group, channel), streamed token by token, column tile by column tile
    ACC = sd.itensor.tiled(sd.i32, shape=(m, groups, n), tile=(1, 1, tn), order=(0, 2, 1))

    @sd.kernel
    def quantize_tokens(x: X, xq: sd.Out[XQ], s: sd.Out[S]):
        for t in range(m):
            v = x.read()
            sx = sd.max(sd.abs(v)) / 127.0  # per token, on chip
            q = sd.reshape(sd.quantize(v, sx, sd.i8), (groups, 1, GROUP))
            for g in range(groups):
                xq.write(q[g])
            s.write(sx)

    def token_buffer(xq):
        xb = sd.zeros((groups, 1, GROUP), sd.i8)
        for g in range(groups):
            xb[g] = xq.read()
        return xb

    @sd.kernel
    def w4a8_matvec(xq: XQ, s: S, w: W, ws: WS) -> Y:
        for t in range(m):
            xb = token_buffer(xq)
            sx = s.read()
            for j in range(n // tn):
                acc = sd.zeros((1, tn))
                for g in range(groups):
                    acc += sd.dequantize(group_sums(xb, w, g), ws.read())
                yield acc * sx

    # the integer part alone: the same group loop, its int32 sums streamed out (the scales unused)
    @sd.kernel
    def int32_matvec(xq: XQ, w: W) -> ACC:
        for t in range(m):
            xb = token_buffer(xq)
            for j in range(n // tn):
                for g in range(groups):
                    yield sd.reshape(group_sums(xb, w, g), (1, 1, tn))

    @sd.dataflow
    def w4a8_linear(x: sd.Tensor[sd.f32, (m, k)], w: sd.Tensor[sd.i4, (k, n)], ws: sd.Tensor[sd.f16, (groups, n)]):
        q, s = quantize_tokens(x)
        return w4a8_matvec(q, s, w, ws)

    @sd.dataflow
    def w4a8_int_part(x: sd.Tensor[sd.f32, (m, k)], w: sd.Tensor[sd.i4, (k, n)]):
        q, s = quantize_tokens(x)
        return int32_matvec(q, w), s

    return {"linear": w4a8_linear, "int_part": w4a8_int_part, "quantize_tokens": quantize_tokens}


def inputs(m: int, k: int, n: int, seed: int = 0) -> tuple[np.ndarray, quant.QuantizedWeight]:
    """Activations and a float weight quantized offline; one token is all zeros (scale 0)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10, (m, 1))).astype(np.float32)
    if m > 2:
        x[1] = 0.0
    w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    return x, quant.quantize_weight(w, quant.scheme("w4a8"), "tutorial.weight")


def device_arrays(x: np.ndarray, qw: quant.QuantizedWeight) -> tuple[np.ndarray, ...]:
    """What the host puts in HBM, unpacked: x, the int4 weight as (K, N) and its f16 scales (K/G, N)."""
    return x, np.ascontiguousarray(qw.values.T), np.ascontiguousarray(qw.scales.T)


def int_part_reference(x: np.ndarray, qw: quant.QuantizedWeight) -> np.ndarray:
    """The int32 group sums in the int_part program's (m, groups, n) layout."""
    xq, _ = quant.quantize_activations(x)
    return np.ascontiguousarray(quant.int_matmul(xq, qw.values, qw.group).transpose(0, 2, 1))


def torch_reference(x: np.ndarray, qw: quant.QuantizedWeight) -> np.ndarray:
    """The fake-quantized PyTorch linear layer (float, in the hardware's order: docs/quantization.md)."""
    with torch.no_grad():
        return FakeQuantLinear(qw, None)(torch.from_numpy(x)).numpy()


def main() -> None:
    m, k, n, tn = 3, 384, 128, 64
    programs = build(m, k, n, tn)
    x, qw = inputs(m, k, n)
    args = device_arrays(x, qw)
    y = programs["linear"].simulate(*args)
    assert np.array_equal(y, quant.linear(x, qw)), "floats differ from the numpy reference's order"
    ints, scales = programs["int_part"].simulate(*args[:2])
    assert ints.dtype == np.int32 and np.array_equal(ints, int_part_reference(x, qw))
    assert np.array_equal(scales, quant.activation_scale(x))
    assert np.array_equal(y, torch_reference(x, qw)), "floats differ from the fake-quantized PyTorch layer"
    design = sd.compile(programs["linear"])
    w_stream = next(s for s in design.streams if s.name.startswith("dma_load(w)"))
    print(f"W4A8 {m}x{k} @ {k}x{n}: int32 sums bit-exact, floats bit-exact vs streamdsl.quant.linear "
          "and the fake-quantized PyTorch linear")
    print(f"weight tokens: {w_stream.tokens} of {w_stream.token_bits} bits (float32: {w_stream.token_bits * 8}); "
          f"{qw.nbytes} bytes packed with scales vs {4 * n * k} in float32 ({qw.nbytes / (4 * n * k):.3f}x)")
    print(programs["linear"].module)


if __name__ == "__main__":
    main()
