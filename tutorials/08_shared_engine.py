"""Tutorial 08: one matvec engine for two layers -- a feedback stream.

y = tanh(x @ W1) @ W2 needs two matrix-vector products, one after the other: the second reads
what the first produced. Two kernels would each hold multipliers and weight buffers that sit idle
while the other runs. One `engine` kernel can compute both in turn: phase 1 reads x and W1 and
writes x @ W1 to `act`; phase 2 reads `act`'s output back and W2. That is a cycle in the stream
graph (engine -> act -> engine), which `sd.feedback` writes:

    back = sd.feedback(X, "hidden")   # a stream of type X, read before its producer is called
    y1, y2 = engine(x, back, w)       # phase 1 from x, phase 2 from back
    back.connect(act(y1))             # ... which is act's output

The IR gets a `dataflow.itensor_feedback` (the stream) and a `dataflow.itensor_feedback_connect`
(its producer); the simulators, FIFO sizing and the HLS backend follow the cycle. The engine must
let its first results out before it waits for what comes back: a kernel that reads `back` first
can never start, and every simulator says so, naming the streams of the cycle.

The two phases here are two loops of the kernel, and the HLS backend writes them so: two pipelined
loops, each with its multipliers. Split matvecs that `form-engines` merges are written as one body
in a loop over the phases when the phases differ only in trip counts and streams, so that one set
of multipliers serves them all (docs/hls.md, "Engines").

Run it: `python tutorials/08_shared_engine.py`.
"""

from __future__ import annotations

import numpy as np

import streamdsl as sd


def build(k: int = 64, t: int = 16, reads_back_first: bool = False) -> sd.DataflowProgram:
    X = sd.itensor.tiled(sd.f32, shape=(1, k), tile=(1, t))
    W = sd.itensor.tiled(sd.f32, shape=(2 * k, k), tile=(t, t))  # W1 over W2: phase 1's rows, then phase 2's
    m = k // t

    @sd.kernel
    def engine(x: X, back: X, w: W, y1: sd.Out[X], y2: sd.Out[X]):
        acc = sd.zeros((m, 1, t))
        for i in range(m):  # phase 1: x @ W1, written out before phase 2 waits for `back`
            xi = x.read()
            for j in range(m):
                acc[j] = acc[j] + xi @ w.read()
        for j in range(m):
            y1.write(acc[j])
        acc2 = sd.zeros((m, 1, t))
        for i in range(m):  # phase 2: back @ W2
            bi = back.read()
            for j in range(m):
                acc2[j] = acc2[j] + bi @ w.read()
        for j in range(m):
            y2.write(acc2[j])

    @sd.kernel
    def stuck_engine(x: X, back: X, w: W, y1: sd.Out[X], y2: sd.Out[X]):
        acc = sd.zeros((m, 1, t))
        for i in range(m):  # wrong: waits for `back` before anything is written
            bi = back.read()
            xi = x.read()
            for j in range(m):
                acc[j] = acc[j] + xi @ w.read() + bi @ w.read()
        for j in range(m):
            y1.write(acc[j])
            y2.write(acc[j])

    @sd.kernel
    def act(y: X) -> X:
        for i in range(m):
            yield sd.tanh(y.read())

    core = stuck_engine if reads_back_first else engine

    @sd.dataflow
    def two_layers(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (2 * k, k)]):
        back = sd.feedback(X, "hidden")
        y1, y2 = core(x, back, w)
        back.connect(act(y1))
        return y2

    return two_layers


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    k = x.shape[1]
    x, w = x.astype(np.float64), w.astype(np.float64)
    return np.tanh(x @ w[:k]) @ w[k:]


def main() -> None:
    prog = build()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    w = (rng.standard_normal((128, 64)) / 8).astype(np.float32)
    print(prog.module)  # itensor_feedback above the engine, itensor_feedback_connect below act

    np.testing.assert_allclose(prog.simulate(x, w), reference(x, w), rtol=1e-5, atol=1e-5)
    print("simulated output matches numpy")

    # FIFO sizing takes the cycle too: the sized design runs at the makespan of infinite FIFOs.
    design = sd.compile(prog)
    print("FIFO depths:", design.depths, "makespan:", design.sizing.makespan, "cycles")

    # An engine that reads the fed-back stream before it writes anything deadlocks.
    try:
        build(reads_back_first=True).simulate(x, w)
    except sd.DeadlockError as err:
        print("as expected:", str(err).splitlines()[0])


if __name__ == "__main__":
    main()
