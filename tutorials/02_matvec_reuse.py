"""Tutorial 02: a matrix-vector product two ways -- replaying a stream vs. an on-chip buffer.

y = x @ W with x: (1, K) and W: (K, N), both cut into t-sized tiles. Each output tile y[j] needs
every x tile and one column of W tiles. There are two ways to stream that:

(a) **Reuse through the stream type.** W arrives a column of tiles at a time (`order=(1, 0)`), and
    x is *replayed* once per output tile: `X.repeat(N // t)` adds an outer loop the tile offsets
    do not depend on (a reuse loop). The kernel keeps one (1, t) accumulator.

(b) **Reuse through an on-chip buffer.** x is read once; W arrives row-major. The kernel keeps all
    N // t partial sums in a local buffer `acc = sd.zeros((N // t, 1, t))`, indexed by the loop
    variable, and emits them at the end.

(a) moves K/t * N/t x-tiles through the FIFO, (b) only K/t but holds N elements on chip. Both are
checked statically (token counts) and both compute the same y. When the producer of W streams it
in one order and the consumer wants another, `@sd.dataflow` inserts a layout converter (c).

Run it: `python tutorials/02_matvec_reuse.py`.
"""

from __future__ import annotations

import numpy as np

import streamdsl as sd


def kernels(k: int, n: int, t: int) -> tuple[sd.Kernel, sd.Kernel]:
    Y = sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, t))

    # (a) x replayed n // t times; W column of tiles by column of tiles
    Xr = sd.itensor.tiled(sd.f32, shape=(1, k), tile=(1, t)).repeat(n // t)
    Wcols = sd.itensor.tiled(sd.f32, shape=(k, n), tile=(t, t), order=(1, 0))

    @sd.kernel
    def matvec_replay(x: Xr, w: Wcols) -> Y:
        for j in range(n // t):
            acc = sd.zeros((1, t))
            for i in range(k // t):
                acc += x.read() @ w.read()
            yield acc

    # (b) x read once, W row-major, partial sums in a local buffer
    X = sd.itensor.tiled(sd.f32, shape=(1, k), tile=(1, t))
    Wrows = sd.itensor.tiled(sd.f32, shape=(k, n), tile=(t, t))

    @sd.kernel
    def matvec_buffered(x: X, w: Wrows) -> Y:
        acc = sd.zeros((n // t, 1, t))
        for i in range(k // t):
            xi = x.read()
            for j in range(n // t):
                acc[j] = acc[j] + xi @ w.read()
        for j in range(n // t):
            yield acc[j]

    return matvec_replay, matvec_buffered


def build(k: int = 128, n: int = 256, t: int = 32) -> dict[str, sd.DataflowProgram]:
    replay, buffered = kernels(k, n, t)

    @sd.dataflow
    def mv_replay(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (k, n)]):
        return replay(x, w)

    @sd.dataflow
    def mv_buffered(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (k, n)]):
        return buffered(x, w)

    # (c) W is first scaled by a kernel that streams it row-major; matvec_replay wants it column
    # by column, so the two types differ and a converter is inserted between them.
    Wrows = sd.itensor.tiled(sd.f32, shape=(k, n), tile=(t, t))

    @sd.kernel
    def scale_rows(w: Wrows) -> Wrows:
        for i in range((k // t) * (n // t)):
            yield w.read() * 0.5

    @sd.dataflow
    def mv_converted(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (k, n)]):
        return replay(x, scale_rows(w))

    return {"replay": mv_replay, "buffered": mv_buffered, "converted": mv_converted}


def reference(name: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ (w * 0.5 if name == "converted" else w)


def main() -> None:
    k, n, t = 128, 256, 32
    programs = build(k, n, t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    for name, prog in programs.items():
        loads = [op for op in prog.module.walk() if op.name == "dataflow.dma_load"]
        x_tokens = loads[0].result.type.itensor.num_tokens
        converters = [op for op in prog.module.walk() if op.name == "dataflow.itensor_converter"]
        got = prog.simulate(x, w)
        np.testing.assert_allclose(got, reference(name, x, w), rtol=1e-5, atol=1e-4)
        print(f"{name:>9}: x streamed as {x_tokens:3d} tokens, {len(converters)} converter(s), matches numpy")
    print(programs["converted"].module)


if __name__ == "__main__":
    main()
