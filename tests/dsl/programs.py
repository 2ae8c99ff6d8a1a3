"""A library of DSL programs for the tests, each built for a given shape by a factory.

Every factory returns `Case(program, make_inputs, reference)`; `reference` is an independent
numpy / torch computation of the same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import streamdsl as sd
from streamdsl.itensor import itensor
from toolchain.examples import gelu_kernel, layernorm_kernel, matvec_kernel


@dataclass
class Case:
    program: object  # an sd.DataflowProgram
    inputs: Callable[[np.random.Generator], list[np.ndarray]]
    reference: Callable[..., object]
    sim_options: dict = field(default_factory=dict)  # e.g. FIFO depths the graph needs


def rand(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


def inputs(*makers: Callable[[np.random.Generator], np.ndarray]) -> Callable[[np.random.Generator], list[np.ndarray]]:
    return lambda rng: [m(rng) for m in makers]


def rows(r: int, d: int, t: int) -> itensor:
    """A (r, d) tensor streamed row by row in (1, t) tiles."""
    return sd.itensor.tiled(sd.f32, shape=(r, d), tile=(1, t))


# -- 1. element-wise chain over two kernels -----------------------------------------------------


def elementwise_chain(r: int, d: int, t: int) -> Case:
    X = rows(r, d, t)
    n = (r * d) // t

    @sd.kernel
    def scale_shift(x: X) -> X:
        for i in range(n):
            yield x.read() * 2.0 - 0.5

    @sd.kernel
    def activate(x: X) -> X:
        for i in range(n):
            v = x.read()
            yield sd.tanh(v) + sd.sigmoid(v) * sd.exp(-v * v) + sd.maximum(v, 0.0) / 3.0

    @sd.dataflow
    def chain(x: sd.Tensor[sd.f32, (r, d)]):
        return activate(scale_shift(x))

    def ref(x):
        v = torch.from_numpy(x) * 2.0 - 0.5
        return (torch.tanh(v) + torch.sigmoid(v) * torch.exp(-v * v) + torch.relu(v) / 3.0).numpy()

    return Case(chain, inputs(rand(r, d)), ref)


# -- 2. row reductions (two outputs via sd.Out ports) ---------------------------------------------


def row_stats(r: int, d: int, t: int) -> Case:
    X = rows(r, d, t)
    S = sd.itensor.tiled(sd.f32, shape=(r, 1), tile=(1, 1))

    @sd.kernel
    def stats(x: X, total: sd.Out[S], peak: sd.Out[S]):
        for i in range(r):
            s = sd.zeros((1, 1))
            m = sd.full((1, 1), -math.inf)
            for j in range(d // t):
                v = x.read()
                s = s + sd.sum(v, axis=1)
                m = sd.maximum(m, sd.max(v, axis=-1))
            total.write(s)
            peak.write(m)

    @sd.dataflow
    def row_reductions(x: sd.Tensor[sd.f32, (r, d)]):
        return stats(x)

    return Case(row_reductions, inputs(rand(r, d)), lambda x: (x.sum(1, keepdims=True), x.max(1, keepdims=True)))


# -- 3./4. layernorm and RMSnorm: a row held in an on-chip buffer ---------------------------------


def layernorm(r: int, d: int, t: int) -> Case:
    norm = layernorm_kernel(r, d, t)

    @sd.dataflow
    def layer_norm(x: sd.Tensor[sd.f32, (r, d)], g: sd.Tensor[sd.f32, (1, d)], b: sd.Tensor[sd.f32, (1, d)]):
        return norm(x, g, b)

    def ref(x, g, b):
        return torch.nn.functional.layer_norm(torch.from_numpy(x), (d,), torch.from_numpy(g[0]), torch.from_numpy(b[0]), 1e-5).numpy()

    return Case(layer_norm, inputs(rand(r, d), rand(1, d), rand(1, d)), ref)


def rmsnorm(r: int, d: int, t: int) -> Case:
    X = rows(r, d, t)
    G = rows(1, d, t).repeat(r)
    n = d // t

    @sd.kernel
    def rms(x: X, g: G) -> X:
        for i in range(r):
            buf = sd.zeros((n, 1, t))
            ss = sd.zeros((1, 1))
            for j in range(n):
                buf[j] = x.read()
                ss += sd.sum(buf[j] ** 2, axis=1)
            scale = sd.rsqrt(ss / d + 1e-6)
            for j in range(n):
                yield buf[j] * scale * g.read()

    @sd.dataflow
    def rms_norm(x: sd.Tensor[sd.f32, (r, d)], g: sd.Tensor[sd.f32, (1, d)]):
        return rms(x, g)

    def ref(x, g):
        return torch.nn.functional.rms_norm(torch.from_numpy(x), (d,), torch.from_numpy(g[0]), 1e-6).numpy()

    return Case(rms_norm, inputs(rand(r, d), rand(1, d)), ref)


# -- 5. softmax ----------------------------------------------------------------------------------


def softmax_kernel(r: int, d: int, t: int) -> sd.Kernel:
    X = rows(r, d, t)
    n = d // t

    @sd.kernel
    def softmax(x: X) -> X:
        for i in range(r):
            buf = sd.zeros((n, 1, t))
            m = sd.full((1, 1), -math.inf)
            for j in range(n):
                v = x.read()
                buf[j] = v
                m = sd.maximum(m, sd.max(v, axis=1))
            total = sd.zeros((1, 1))
            for j in range(n):
                e = sd.exp(buf[j] - m)
                buf[j] = e
                total += sd.sum(e, axis=1)
            for j in range(n):
                yield buf[j] / total

    return softmax


def softmax(r: int, d: int, t: int) -> Case:
    kernel = softmax_kernel(r, d, t)

    @sd.dataflow
    def row_softmax(x: sd.Tensor[sd.f32, (r, d)]):
        return kernel(x)

    return Case(row_softmax, inputs(rand(r, d)), lambda x: torch.softmax(torch.from_numpy(x), dim=1).numpy())


# -- 6./7. matvec and matmul with reuse ------------------------------------------------------------


def matvec(k: int, n: int, t: int) -> Case:
    mv = matvec_kernel(k, n, t)

    @sd.dataflow
    def gemv(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (k, n)]):
        return mv(x, w)

    return Case(gemv, inputs(rand(1, k), rand(k, n)), lambda x, w: x.astype(np.float64) @ w)


def matmul(m: int, k: int, n: int, t: int) -> Case:
    mt, kt, nt = m // t, k // t, n // t
    # A[m, k] is replayed for every output column block n (a reuse loop), B[k, n] for every row block
    A = sd.itensor(sd.f32, tile=(t, t), trips=(mt, nt, kt), steps=(t, t, t), map="(d0, d1, d2) -> (d0, d2)")
    B = sd.itensor(sd.f32, tile=(t, t), trips=(mt, nt, kt), steps=(t, t, t), map="(d0, d1, d2) -> (d2, d1)")
    C = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, t))

    @sd.kernel
    def gemm(a: A, b: B) -> C:
        for i in range(mt):
            for j in range(nt):
                acc = sd.zeros((t, t))
                for p in range(kt):
                    acc = acc + a.read() @ b.read()
                yield acc

    @sd.dataflow
    def matmul_prog(a: sd.Tensor[sd.f32, (m, k)], b: sd.Tensor[sd.f32, (k, n)]):
        return gemm(a, b)

    return Case(matmul_prog, inputs(rand(m, k), rand(k, n)), lambda a, b: a.astype(np.float64) @ b)


# -- 8. a transpose whose consumer reads column-major: a converter sits in between ----------------


def transpose(m: int, n: int, t: int) -> Case:
    Y = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, t))  # row-major tiles
    Ycols = sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, t), order=(1, 0))  # column-major tiles
    Z = sd.itensor.tiled(sd.f32, shape=(n, m), tile=(t, t))

    @sd.kernel
    def produce(x: Y) -> Y:
        for i in range((m // t) * (n // t)):
            yield x.read() + 1.0

    @sd.kernel
    def flip(y: Ycols) -> Z:
        for i in range((m // t) * (n // t)):
            yield y.read().T

    @sd.dataflow
    def transposed(x: sd.Tensor[sd.f32, (m, n)]):
        return flip(produce(x))

    return Case(transposed, inputs(rand(m, n)), lambda x: (x + 1.0).T)


# -- 9./10. fork/join and a reconvergent diamond ---------------------------------------------------


def fork_join(r: int, d: int, t: int) -> Case:
    X = rows(r, d, t)
    n = (r * d) // t

    @sd.kernel
    def pre(x: X) -> X:
        for i in range(n):
            yield x.read() * 0.5

    @sd.kernel
    def square(x: X) -> X:
        for i in range(n):
            v = x.read()
            yield v * v

    @sd.kernel
    def join3(a: X, b: X, c: X) -> X:
        for i in range(n):
            yield a.read() + b.read() * c.read()

    @sd.dataflow
    def fork3(x: sd.Tensor[sd.f32, (r, d)]):
        y = pre(x)
        return join3(y, square(y), y)

    def ref(x):
        y = x * 0.5
        return y + (y * y) * y

    return Case(fork3, inputs(rand(r, d)), ref)


def diamond(r: int, d: int, t: int) -> Case:
    """x -> softmax (holds a whole row before emitting) and x -> identity, joined: reconvergent."""
    X = rows(r, d, t)
    n = (r * d) // t
    soft = softmax_kernel(r, d, t)

    @sd.kernel
    def copy(x: X) -> X:
        for i in range(n):
            yield x.read()

    @sd.kernel
    def mul(a: X, b: X) -> X:
        for i in range(n):
            yield a.read() * b.read()

    @sd.dataflow
    def reconverge(x: sd.Tensor[sd.f32, (r, d)]):
        y = copy(x)
        return mul(soft(y), y)

    def ref(x):
        return torch.softmax(torch.from_numpy(x), dim=1).numpy() * x

    # the direct branch must buffer a whole row while softmax reads it: d // t tiles (+2 in flight)
    return Case(reconverge, inputs(rand(r, d)), ref, {"depths": {"fork(copy)->mul": d // t + 2}})


# -- 11./12. MLPs: GELU (tanh form) and gated SiLU ---------------------------------------------------


def silu_mul_kernel(n: int, t: int) -> sd.Kernel:
    Y = sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, t))

    @sd.kernel
    def silu_mul(g: Y, u: Y) -> Y:
        for i in range(n // t):
            v = g.read()
            yield v * sd.sigmoid(v) * u.read()

    return silu_mul


def gelu_mlp(d: int, h: int, t: int) -> Case:
    up, down = matvec_kernel(d, h, t, "up"), matvec_kernel(h, d, t, "down")
    gelu = gelu_kernel(h, t)

    @sd.dataflow
    def mlp(x: sd.Tensor[sd.f32, (1, d)], w1: sd.Tensor[sd.f32, (d, h)], w2: sd.Tensor[sd.f32, (h, d)]):
        return down(gelu(up(x, w1)), w2)

    def ref(x, w1, w2):
        hidden = torch.nn.functional.gelu(torch.from_numpy(x).double() @ torch.from_numpy(w1).double(), approximate="tanh")
        return (hidden @ torch.from_numpy(w2).double()).numpy()

    return Case(mlp, inputs(rand(1, d), rand(d, h), rand(h, d)), ref)


def silu_mlp(d: int, h: int, t: int) -> Case:
    gate, up, down = matvec_kernel(d, h, t, "gate"), matvec_kernel(d, h, t, "up"), matvec_kernel(h, d, t, "down")
    act = silu_mul_kernel(h, t)

    @sd.dataflow
    def gated_mlp(x: sd.Tensor[sd.f32, (1, d)], wg: sd.Tensor[sd.f32, (d, h)], wu: sd.Tensor[sd.f32, (d, h)],
                  wd: sd.Tensor[sd.f32, (h, d)]):
        return down(act(gate(x, wg), up(x, wu)), wd)

    def ref(x, wg, wu, wd):
        xt = torch.from_numpy(x).double()
        hidden = torch.nn.functional.silu(xt @ torch.from_numpy(wg).double()) * (xt @ torch.from_numpy(wu).double())
        return (hidden @ torch.from_numpy(wd).double()).numpy()

    return Case(gated_mlp, inputs(rand(1, d), rand(d, h), rand(d, h), rand(h, d)), ref)


# -- 13. a kernel with a tuple return annotation: yield of a tuple ------------------------------------


def split_sign(r: int, d: int, t: int) -> Case:
    X = rows(r, d, t)
    n = (r * d) // t

    @sd.kernel
    def split(x: X) -> (X, X):
        for i in range(n):
            v = x.read()
            yield sd.where(v > 0.0, v, 0.0), sd.where(v <= 0.0, v, 0.0)

    @sd.kernel
    def recombine(p: X, q: X) -> X:
        for i in range(n):
            yield p.read() - q.read() * 2.0

    @sd.dataflow
    def relu_split(x: sd.Tensor[sd.f32, (r, d)]):
        pos, neg = split(x)
        return recombine(pos, neg), pos

    return Case(relu_split, inputs(rand(r, d)), lambda x: (np.maximum(x, 0) - 2 * np.minimum(x, 0), np.maximum(x, 0)))


# -- 14. a cached input vector: x read once into an on-chip buffer, reused for every output tile ------


def matvec_cached(k: int, n: int, t: int) -> Case:
    X = sd.itensor.tiled(sd.f32, shape=(1, k), tile=(1, t))  # no replay: each x tile once
    W = sd.itensor.tiled(sd.f32, shape=(k, n), tile=(t, t), order=(1, 0))
    Y = sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, t))

    @sd.kernel
    def matvec_cached_x(x: X, w: W) -> Y:
        xbuf = sd.zeros((k // t, 1, t))
        for i in range(k // t):
            xbuf[i] = x.read()
        for j in range(n // t):
            acc = sd.zeros((1, t))
            for i in range(k // t):
                acc += xbuf[i] @ w.read()
            yield sd.maximum(acc, 0.0)

    @sd.dataflow
    def gemv_relu(x: sd.Tensor[sd.f32, (1, k)], w: sd.Tensor[sd.f32, (k, n)]):
        return matvec_cached_x(x, w)

    return Case(gemv_relu, inputs(rand(1, k), rand(k, n)), lambda x, w: np.maximum(x.astype(np.float64) @ w, 0))


# -- 15. one matvec engine for two layers: its second input is its own first output, fed back ------


def shared_engine(k: int, t: int, reads_back_first: bool = False) -> Case:
    """y = tanh(x @ W1) @ W2 with one `engine` task computing both products, phase 2's input fed
    back from phase 1's output through `act` (tutorials/08_shared_engine.py, which builds it);
    `reads_back_first` breaks it: the engine waits for the fed-back stream before it writes."""
    import runpy
    from pathlib import Path

    tutorial = runpy.run_path(str(Path(__file__).resolve().parents[2] / "tutorials" / "08_shared_engine.py"))
    program = tutorial["build"](k, t, reads_back_first)
    weights = lambda rng: (rng.standard_normal((2 * k, k)) / np.sqrt(k)).astype(np.float32)  # noqa: E731
    return Case(program, inputs(rand(1, k), weights), tutorial["reference"])
