"""Tutorial 01: element-wise kernels, streams of tiles, and composing them.

An itensor is a tensor *as a stream of tiles*. Here a (rows, cols) activation is streamed row by
row in (1, tile) tiles: `rows * cols // tile` tokens. A kernel is a Python function over such
streams: `x.read()` pulls the next tile, `yield` pushes one output tile. Its loops must be static
`range(N)` loops so the compiler can check, before anything runs, that every port reads and
writes exactly as many tokens as its type holds.

Run it: `python tutorials/01_elementwise.py`.
"""

from __future__ import annotations

import numpy as np

import streamdsl as sd


def build(rows: int = 4, cols: int = 256, tile: int = 64) -> sd.DataflowProgram:
    # Step 1: a stream type. 1 x tile tiles, walked row-major: (0, 0), (0, tile), ...
    X = sd.itensor.tiled(sd.f32, shape=(rows, cols), tile=(1, tile))
    n = X.num_tokens

    # Step 2: kernels. Tile arithmetic (+ - * /, sd.exp, sd.sigmoid, ...) becomes linalg ops on
    # tile-sized tensors; Python numbers are constants; shapes broadcast like numpy.
    @sd.kernel
    def silu(x: X) -> X:
        for i in range(n):
            v = x.read()
            yield v * sd.sigmoid(v)

    @sd.kernel
    def clamp_scale(x: X) -> X:
        for i in range(n):
            v = x.read() * 2.0 + 1.0
            yield sd.where(v > 4.0, 4.0, v)  # the comparison is written inside sd.where

    # Step 3: a dataflow function wires kernels: arguments are tensors in HBM, read by DMAs in the
    # order of the port that consumes them; results are written back by DMAs.
    @sd.dataflow
    def activation(x: sd.Tensor[sd.f32, (rows, cols)]):
        return clamp_scale(silu(x))

    return activation


def reference(x: np.ndarray) -> np.ndarray:
    v = (x / (1.0 + np.exp(-x))) * 2.0 + 1.0
    return np.minimum(v, 4.0)


def main() -> None:
    prog = build()
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)

    # The program is IR: func.func -> dataflow.kernel -> dma_load, two tasks, dma_store.
    print(prog.module)

    # Eager mode runs the Python functions on numpy (handy with print-debugging);
    # simulate() runs the compiled IR with bounded FIFOs.
    eager, simulated = prog(x), prog.simulate(x)
    np.testing.assert_allclose(eager, reference(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(simulated, reference(x), rtol=1e-5, atol=1e-6)
    print("eager and simulated outputs match numpy")
    print("tasks:", [op.sym_name.data for op in prog.module.walk() if op.name == "dataflow.task"])


if __name__ == "__main__":
    main()
