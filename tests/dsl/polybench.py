"""Ports of the PolyBench linear-algebra kernels that Stream-HLS and ScaleHLS evaluate, as DSL
programs: 2mm, 3mm, atax, bicg, mvt, gemver, gesummv (and a matmul chain). Vectors are (1, n)
rows in (1, t) tiles, matrices (t, t) tiles; `A x` is computed as rows of tiles of A against x
replayed per output tile, `x A` (PolyBench's `A^T x`) as columns of tiles of A. Each factory
returns a `programs.Case` whose reference is numpy in float64.
"""

from __future__ import annotations

import numpy as np

import streamdsl as sd

from .programs import Case, inputs, rand

ALPHA, BETA = 1.5, 1.2


def _row(n: int, t: int) -> sd.itensor:
    return sd.itensor.tiled(sd.f32, shape=(1, n), tile=(1, t))


def _mat(m: int, n: int, t: int, cols: bool = False) -> sd.itensor:
    return sd.itensor.tiled(sd.f32, shape=(m, n), tile=(t, t), order=(1, 0) if cols else None)


def matmul_kernel(m: int, k: int, n: int, t: int, name: str, scale: float = 1.0) -> sd.Kernel:
    """C = scale * A @ B: A re-read for every column block of C, B for every row block."""
    mt, kt, nt = m // t, k // t, n // t
    A = sd.itensor(sd.f32, tile=(t, t), trips=(mt, nt, kt), steps=(t, t, t), map="(d0, d1, d2) -> (d0, d2)")
    B = sd.itensor(sd.f32, tile=(t, t), trips=(mt, nt, kt), steps=(t, t, t), map="(d0, d1, d2) -> (d2, d1)")

    @sd.kernel(name=name)
    def mm(a: A, b: B) -> _mat(m, n, t):
        for i in range(mt):
            for j in range(nt):
                acc = sd.zeros((t, t))
                for p in range(kt):
                    acc = acc + a.read() @ b.read()
                yield acc * scale

    return mm


def axpby_kernel(m: int, n: int, t: int, alpha: float, beta: float, name: str, vector: bool = False) -> sd.Kernel:
    """alpha * x + beta * y, tile by tile, over an (m, n) matrix or a (1, n) row."""
    T = _row(n, t) if vector else _mat(m, n, t)
    tiles = (n // t) if vector else (m // t) * (n // t)

    @sd.kernel(name=name)
    def axpby(x: T, y: T) -> T:
        for i in range(tiles):
            yield x.read() * alpha + y.read() * beta

    return axpby


def mv_kernel(m: int, n: int, t: int, name: str) -> sd.Kernel:
    """y = A x for A (m, n): rows of tiles of A; x replayed for every row block."""
    X = _row(n, t).repeat(m // t)

    @sd.kernel(name=name)
    def mv(a: _mat(m, n, t), x: X) -> _row(m, t):
        for i in range(m // t):
            acc = sd.zeros((1, t))
            for j in range(n // t):
                acc += x.read() @ a.read().T
            yield acc

    return mv


def vm_kernel(m: int, n: int, t: int, name: str) -> sd.Kernel:
    """y = x A for A (m, n) (PolyBench's A^T x): columns of tiles of A; x replayed per column block."""
    X = _row(m, t).repeat(n // t)

    @sd.kernel(name=name)
    def vm(x: X, a: _mat(m, n, t, cols=True)) -> _row(n, t):
        for j in range(n // t):
            acc = sd.zeros((1, t))
            for i in range(m // t):
                acc += x.read() @ a.read()
            yield acc

    return vm


def two_mm(n: int, t: int) -> Case:
    """D = alpha A B C + beta D."""
    ab = matmul_kernel(n, n, n, t, "ab", ALPHA)
    abc = matmul_kernel(n, n, n, t, "abc")
    out = axpby_kernel(n, n, t, 1.0, BETA, "update")
    F = sd.Tensor[sd.f32, (n, n)]

    @sd.dataflow
    def mm2(a: F, b: F, c: F, d: F):
        return out(abc(ab(a, b), c), d)

    return Case(mm2, inputs(*[rand(n, n)] * 4), lambda a, b, c, d: ALPHA * (a.astype(np.float64) @ b) @ c + BETA * d)


def three_mm(n: int, t: int) -> Case:
    """G = (A B)(C D)."""
    e, f, g = (matmul_kernel(n, n, n, t, name) for name in ("e", "f", "g"))
    F = sd.Tensor[sd.f32, (n, n)]

    @sd.dataflow
    def mm3(a: F, b: F, c: F, d: F):
        return g(e(a, b), f(c, d))

    return Case(mm3, inputs(*[rand(n, n)] * 4), lambda a, b, c, d: (a.astype(np.float64) @ b) @ (c.astype(np.float64) @ d))


def matmul_chain(n: int, t: int, length: int = 4) -> Case:
    """((A B1) B2) ... : a chain of matmuls, each output re-read by the next."""
    stages = [matmul_kernel(n, n, n, t, f"mm{i}") for i in range(length)]
    F = sd.Tensor[sd.f32, (n, n)]

    @sd.dataflow
    def chain(a: F, b: F):
        y = stages[0](a, b)
        for stage in stages[1:]:
            y = stage(y, b)
        return y

    def ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        y = a.astype(np.float64)
        for _ in range(length):
            y = y @ b
        return y

    return Case(chain, inputs(rand(n, n), lambda rng: rand(n, n)(rng) * 0.2), ref)


def atax(m: int, n: int, t: int) -> Case:
    """y = A^T (A x)."""
    ax, aty = mv_kernel(m, n, t, "ax"), vm_kernel(m, n, t, "aty")

    @sd.dataflow
    def atax_prog(a: sd.Tensor[sd.f32, (m, n)], x: sd.Tensor[sd.f32, (1, n)]):
        return aty(ax(a, x), a)

    return Case(atax_prog, inputs(rand(m, n), rand(1, n)), lambda a, x: (x.astype(np.float64) @ a.T) @ a)


def bicg(m: int, n: int, t: int) -> Case:
    """s = A^T r, q = A p."""
    sr, qp = vm_kernel(m, n, t, "s"), mv_kernel(m, n, t, "q")

    @sd.dataflow
    def bicg_prog(a: sd.Tensor[sd.f32, (m, n)], r: sd.Tensor[sd.f32, (1, m)], p: sd.Tensor[sd.f32, (1, n)]):
        return sr(r, a), qp(a, p)

    return Case(bicg_prog, inputs(rand(m, n), rand(1, m), rand(1, n)),
                lambda a, r, p: (r.astype(np.float64) @ a, p.astype(np.float64) @ a.T))


def mvt(n: int, t: int) -> Case:
    """x1 = x1 + A y1, x2 = x2 + A^T y2."""
    ay, aty = mv_kernel(n, n, t, "ay1"), vm_kernel(n, n, t, "aty2")
    add1, add2 = (axpby_kernel(1, n, t, 1.0, 1.0, name, vector=True) for name in ("x1", "x2"))
    V, F = sd.Tensor[sd.f32, (1, n)], sd.Tensor[sd.f32, (n, n)]

    @sd.dataflow
    def mvt_prog(a: F, x1: V, x2: V, y1: V, y2: V):
        return add1(x1, ay(a, y1)), add2(x2, aty(y2, a))

    def ref(a, x1, x2, y1, y2):  # noqa: ANN001, ANN202
        return x1 + y1.astype(np.float64) @ a.T, x2 + y2.astype(np.float64) @ a

    return Case(mvt_prog, inputs(rand(n, n), *[rand(1, n)] * 4), ref)


def gesummv(n: int, t: int) -> Case:
    """y = alpha A x + beta B x."""
    ax, bx = mv_kernel(n, n, t, "ax"), mv_kernel(n, n, t, "bx")
    out = axpby_kernel(1, n, t, ALPHA, BETA, "y", vector=True)
    F = sd.Tensor[sd.f32, (n, n)]

    @sd.dataflow
    def gesummv_prog(a: F, b: F, x: sd.Tensor[sd.f32, (1, n)]):
        return out(ax(a, x), bx(b, x))

    return Case(gesummv_prog, inputs(rand(n, n), rand(n, n), rand(1, n)),
                lambda a, b, x: ALPHA * (x.astype(np.float64) @ a.T) + BETA * (x @ b.T))


def gemver(n: int, t: int) -> Case:
    """A2 = A + u1 v1^T + u2 v2^T; x = x + beta A2^T y + z; w = alpha A2 x."""
    nt = n // t
    Vr = sd.itensor(sd.f32, tile=(1, t), trips=(nt, nt), steps=(t, t), map="(d0, d1) -> (0, d1)")  # v replayed per row block
    M = _mat(n, n, t)
    Ucol = sd.itensor(sd.f32, tile=(1, t), trips=(nt, nt), steps=(t, t), map="(d0, d1) -> (0, d0)")

    @sd.kernel
    def rank2(a: M, u1: Ucol, v1: Vr, u2: Ucol, v2: Vr) -> M:
        for i in range(nt * nt):
            yield a.read() + u1.read().T @ v1.read() + u2.read().T @ v2.read()

    aty = vm_kernel(n, n, t, "a2ty")
    xnew = axpby_kernel(1, n, t, BETA, 1.0, "x", vector=True)
    xz = axpby_kernel(1, n, t, 1.0, 1.0, "xz", vector=True)
    a2x = mv_kernel(n, n, t, "a2x")
    w = axpby_kernel(1, n, t, ALPHA, 1.0, "w", vector=True)
    V = sd.Tensor[sd.f32, (1, n)]

    @sd.dataflow
    def gemver_prog(a: sd.Tensor[sd.f32, (n, n)], u1: V, v1: V, u2: V, v2: V, w0: V, x: V, y: V, z: V):
        a2 = rank2(a, u1, v1, u2, v2)
        x2 = xz(xnew(aty(y, a2), x), z)
        return w(a2x(a2, x2), w0), x2

    def ref(a, u1, v1, u2, v2, w0, x, y, z):  # noqa: ANN001, ANN202
        a2 = a.astype(np.float64) + u1.T @ v1 + u2.T @ v2
        x2 = x + BETA * (y @ a2) + z
        return w0 + ALPHA * (x2 @ a2.T), x2

    return Case(gemver_prog, inputs(rand(n, n), *[rand(1, n)] * 8), ref)


def cases(n: int = 32, t: int = 8) -> dict[str, Case]:
    """Every port at size n with t-wide tiles."""
    return {
        "2mm": two_mm(n, t), "3mm": three_mm(n, t), "atax": atax(n, n, t), "bicg": bicg(n, n, t),
        "mvt": mvt(n, t), "gemver": gemver(n, t), "gesummv": gesummv(n, t), "matmul_chain": matmul_chain(n, t),
    }  # fmt: skip
