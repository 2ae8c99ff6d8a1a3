"""Hand-written dataflow programs (MLIR text per docs/ir.md) shared by the simulator tests and the
throughput benchmark."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

import streamdsl as sd

from .irtext import loop, map_task, program, task, tensor, tile, ty


def rows(r: int, d: int, t: int) -> sd.itensor:
    return sd.itensor.tiled(sd.f32, (r, d), (1, t))


def chain(n_tasks: int, r: int, d: int, t: int) -> ModuleOp:
    """x -> n_tasks elementwise tasks cycling through `x*0.5+1` (arith on tensors), `exp(-|x|)`
    (linalg.generic) and `x + x` (linalg.add) -> y."""
    X = rows(r, d, t)
    tt = tile(X)
    computes = [
        f"        %h = arith.constant dense<0.5> : {tt}\n        %one = arith.constant dense<1.0> : {tt}\n"
        f"        %m = arith.mulf %t0, %h : {tt}\n        %r = arith.addf %m, %one : {tt}",
        f"        %e = tensor.empty() : {tt}\n        %r = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, "
        f'affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}} ins(%t0 : {tt}) outs(%e : {tt}) {{\n'
        "        ^bb0(%a: f32, %o: f32):\n          %ab = math.absf %a : f32\n          %n = arith.negf %ab : f32\n"
        f"          %ex = math.exp %n : f32\n          linalg.yield %ex : f32\n        }} -> {tt}",
        f"        %e = tensor.empty() : {tt}\n        %r = linalg.add ins(%t0, %t0 : {tt}, {tt}) outs(%e : {tt}) -> {tt}",
    ]
    names = ["xs", *(f"s{k}" for k in range(1, n_tasks)), "ys"]
    tasks = "\n".join(map_task(f"k{k}", [(names[k], X)], (names[k + 1], X), computes[k % 3]) for k in range(n_tasks))
    body = f"""    %xs = dataflow.dma_load %x : {tensor((r, d))} -> {ty(X)}
{tasks}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((r, d))}
    dataflow.yield %yt : {tensor((r, d))}"""
    return program("chain", [("x", (r, d))], [(r, d)], body)


def chain_reference(n_tasks: int, x):  # noqa: ANN001, ANN201
    import numpy as np

    y = x.astype(np.float32)
    for k in range(n_tasks):
        y = [lambda v: v * np.float32(0.5) + np.float32(1), lambda v: np.exp(-np.abs(v)), lambda v: v + v][k % 3](y)
    return y


def matvec(k: int, n: int, t: int) -> ModuleOp:
    """y = x @ W, x re-read for every column block (a reuse loop), W in column-block order."""
    X = sd.itensor.tiled(sd.f32, (1, k), (1, t)).repeat(n // t)
    W = sd.itensor.tiled(sd.f32, (k, n), (t, t), order=(1, 0))
    Y = sd.itensor.tiled(sd.f32, (1, n), (1, t))
    acc_t = tensor((1, t))
    inner = f"""        %xt = dataflow.itensor_read %xs_p : {ty(X)} -> {tile(X)}
        %wt = dataflow.itensor_read %ws_p : {ty(W)} -> {tile(W)}
        %mm = linalg.matmul ins(%xt, %wt : {tile(X)}, {tile(W)}) outs(%acc : {acc_t}) -> {acc_t}
        scf.yield %mm : {acc_t}"""
    outer = f"""        %z = arith.constant 0.0 : f32
        %e = tensor.empty() : {acc_t}
        %zero = linalg.fill ins(%z : f32) outs(%e : {acc_t}) -> {acc_t}
{loop(k // t, inner, [("acc", "%zero", acc_t)], iv="kk", results="sum")}
        %w2 = dataflow.itensor_write %sum, %ych : {acc_t} -> {ty(Y)}
        scf.yield %w2 : {ty(Y)}"""
    body = loop(n // t, outer, [("ych", "%ys_o", ty(Y))], iv="nn", results="yf") + f"\n      dataflow.yield %yf : {ty(Y)}"
    kernel = f"""    %xs = dataflow.dma_load %x : {tensor((1, k))} -> {ty(X)}
    %ws = dataflow.dma_load %w : {tensor((k, n))} -> {ty(W)}
{task("matvec", [("xs", X), ("ws", W)], [("ys", Y)], body)}
    %yt = dataflow.dma_store %ys : {ty(Y)} -> {tensor((1, n))}
    dataflow.yield %yt : {tensor((1, n))}"""
    return program("matvec", [("x", (1, k)), ("w", (k, n))], [(1, n)], kernel)


def diamond(n: int, t: int, scale_attrs: str = "") -> ModuleOp:
    """x -> fork -> `total` (reads the whole row, emits its sum) and `scale` (x*2, token by
    token) -> `center` (reads the sum first, then the row: 2x - sum). Reconvergent: the
    `scale -> center` FIFO must hold about a row or the graph deadlocks."""
    X = rows(1, n * t, t)
    S = sd.itensor.tiled(sd.f32, (1, 1), (1, 1))
    one = tensor((1, 1))
    total_inner = f"""        %xt = dataflow.itensor_read %xa_p : {ty(X)} -> {tile(X)}
        %e = tensor.empty() : {one}
        %s = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>],
            iterator_types = ["parallel", "reduction"]}}
          ins(%xt : {tile(X)}) outs(%acc : {one}) {{
        ^bb0(%a: f32, %o: f32):
          %p = arith.addf %a, %o : f32
          linalg.yield %p : f32
        }} -> {one}
        scf.yield %s : {one}"""
    total = f"""        %z = arith.constant dense<0.0> : {one}
{loop(n, total_inner, [("acc", "%z", one)], results="sum")}
        %tw = dataflow.itensor_write %sum, %tot_o : {one} -> {ty(S)}
        dataflow.yield %tw : {ty(S)}"""
    center_inner = f"""        %xt = dataflow.itensor_read %sc_p : {ty(X)} -> {tile(X)}
        %e = tensor.empty() : {tile(X)}
        %b = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
            affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d0, d1)>],
            iterator_types = ["parallel", "parallel"]}}
          ins(%xt, %st : {tile(X)}, {one}) outs(%e : {tile(X)}) {{
        ^bb0(%a: f32, %s: f32, %o: f32):
          %d = arith.subf %a, %s : f32
          linalg.yield %d : f32
        }} -> {tile(X)}
        %cw = dataflow.itensor_write %b, %ch : {tile(X)} -> {ty(X)}
        scf.yield %cw : {ty(X)}"""
    center = f"""        %st = dataflow.itensor_read %tot_p : {ty(S)} -> {one}
{loop(n, center_inner, [("ch", "%ys_o", ty(X))], results="cf")}
        dataflow.yield %cf : {ty(X)}"""
    scale = f"        %two = arith.constant dense<2.0> : {tile(X)}\n        %r = arith.mulf %t0, %two : {tile(X)}"
    scale_task = map_task("scale", [("xb", X)], ("sc", X), scale, scale_attrs)
    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, n * t))} -> {ty(X)}
    %xa, %xb = dataflow.itensor_fork %xs : {ty(X)} -> {ty(X)}, {ty(X)}
{task("total", [("xa", X)], [("tot", S)], total)}
{scale_task}
{task("center", [("tot", S), ("sc", X)], [("ys", X)], center)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((1, n * t))}
    dataflow.yield %yt : {tensor((1, n * t))}"""
    return program("diamond", [("x", (1, n * t))], [(1, n * t)], body)


def round_robin_join(n: int = 6, t: int = 8) -> ModuleOp:
    """x forked to two lanes: `even` keeps tokens 0, 2, ... (x2), `odd` tokens 1, 3, ... (x3);
    each lane is a stream of n/2 tiles, and itensor_join interleaves them back round robin."""
    X, L = rows(1, n * t, t), rows(1, n * t // 2, t)

    def lane(name: str, src: str, dst: str, keep: str, factor: float) -> str:
        inner = f"""        %a = dataflow.itensor_read %{src}_p : {ty(X)} -> {tile(X)}
        %b = dataflow.itensor_read %{src}_p : {ty(X)} -> {tile(X)}
        %k = arith.constant dense<{factor}> : {tile(X)}
        %v = arith.mulf %{keep}, %k : {tile(X)}
        %w = dataflow.itensor_write %v, %ch : {tile(L)} -> {ty(L)}
        scf.yield %w : {ty(L)}"""
        body = loop(n // 2, inner, [("ch", f"%{dst}_o", ty(L))], results="f") + f"\n      dataflow.yield %f : {ty(L)}"
        return task(name, [(src, X)], [(dst, L)], body)

    body = f"""    %xs = dataflow.dma_load %x : {tensor((1, n * t))} -> {ty(X)}
    %xa, %xb = dataflow.itensor_fork %xs : {ty(X)} -> {ty(X)}, {ty(X)}
{lane("even", "xa", "ea", "a", 2.0)}
{lane("odd", "xb", "ob", "b", 3.0)}
    %ys = dataflow.itensor_join %ea, %ob : {ty(L)}, {ty(L)} -> {ty(X)}
    %yt = dataflow.dma_store %ys : {ty(X)} -> {tensor((1, n * t))}
    dataflow.yield %yt : {tensor((1, n * t))}"""
    return program("lanes", [("x", (1, n * t))], [(1, n * t)], body)


def split_concat() -> ModuleOp:
    """Split rows into two halves along dim 1 (chunk), process each, concat back, regroup tiles
    (reassociate) into an 8x2 tensor."""
    X = sd.itensor.tiled(sd.f32, (2, 8), (1, 4))
    H = sd.itensor.tiled(sd.f32, (2, 4), (1, 4))
    R = sd.itensor.tiled(sd.f32, (8, 2), (2, 2))
    body = f"""    %xs = dataflow.dma_load %x : {tensor((2, 8))} -> {ty(X)}
    %lo, %hi = dataflow.itensor_chunk %xs {{dim = 1 : i64}} : {ty(X)} -> {ty(H)}, {ty(H)}
{map_task("neg", [("lo", H)], ("lo2", H), f"        %r = arith.negf %t0 : {tile(H)}")}
{map_task("sq", [("hi", H)], ("hi2", H), f"        %r = arith.mulf %t0, %t0 : {tile(H)}")}
    %cat = dataflow.itensor_concat %lo2, %hi2 {{dim = 1 : i64}} : {ty(H)}, {ty(H)} -> {ty(X)}
    %re = dataflow.itensor_reassociate %cat : {ty(X)} -> {ty(R)}
    %yt = dataflow.dma_store %re : {ty(R)} -> {tensor((8, 2))}
    dataflow.yield %yt : {tensor((8, 2))}"""
    return program("split", [("x", (2, 8))], [(8, 2)], body)


def converters() -> ModuleOp:
    """`inc` in row-major tile order -> whole-tensor converter -> `dbl` in column-major order ->
    converter back -> a converter planned on one shared loop (bank 2x6) to 2x3 tiles."""
    rowmajor = sd.itensor.tiled(sd.f32, (4, 6), (2, 2))
    colmajor = sd.itensor.tiled(sd.f32, (4, 6), (2, 2), order=(1, 0))
    wide = sd.itensor.tiled(sd.f32, (4, 6), (2, 3))
    inc = f"        %one = arith.constant dense<1.0> : {tile(rowmajor)}\n        %r = arith.addf %t0, %one : {tile(rowmajor)}"
    body = f"""    %xs = dataflow.dma_load %x : {tensor((4, 6))} -> {ty(rowmajor)}
{map_task("inc", [("xs", rowmajor)], ("a", rowmajor), inc)}
    %b = dataflow.itensor_converter %a : {ty(rowmajor)} -> {ty(colmajor)}
{map_task("dbl", [("b", colmajor)], ("c", colmajor), f"        %r = arith.addf %t0, %t0 : {tile(colmajor)}")}
    %d = dataflow.itensor_converter %c : {ty(colmajor)} -> {ty(rowmajor)}
    %e = dataflow.itensor_converter %d {{buffer_shape = array<i64: 2, 6>, shared_loops = 1 : i64}} : {ty(rowmajor)} -> {ty(wide)}
    %yt = dataflow.dma_store %e : {ty(wide)} -> {tensor((4, 6))}
    dataflow.yield %yt : {tensor((4, 6))}"""
    return program("conv", [("x", (4, 6))], [(4, 6)], body)
