"""Ops inside tasks (linalg named and generic, arith, math, tensor, scf) against numpy.

Each case is a one-token program: every input is loaded whole as a single tile, one task computes
`%r` from `%t0, %t1, ...` and the result is stored whole.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.sim.functional import simulate

from .irtext import generic, map_task, program, tensor, ty

RNG = np.random.default_rng(7)


def run_single(inputs: list[np.ndarray], out_shape: tuple[int, ...], compute: str) -> np.ndarray:
    dtypes = [sd.i8 if a.dtype == np.int8 else sd.f32 for a in inputs]
    ins = [(f"x{i}s", sd.itensor.tiled(dt, a.shape, a.shape)) for i, (a, dt) in enumerate(zip(inputs, dtypes))]
    out = sd.itensor.tiled(sd.f32, out_shape, out_shape)
    loads = "\n".join(
        f"    %x{i}s = dataflow.dma_load %x{i} : {tensor(a.shape, dt.name)} -> {ty(it)}"
        for i, ((_, it), a, dt) in enumerate(zip(ins, inputs, dtypes))
    )
    body = f"""{loads}
{map_task("op", ins, ("ys", out), compute)}
    %yt = dataflow.dma_store %ys : {ty(out)} -> {tensor(out_shape)}
    dataflow.yield %yt : {tensor(out_shape)}"""
    module = program("single", [(f"x{i}", a.shape, dt.name) for i, (a, dt) in enumerate(zip(inputs, dtypes))], [out_shape], body)
    return simulate(module, *inputs)


def close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(want, dtype=np.float64), rtol=1e-5, atol=1e-6)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# -- named linalg ops -------------------------------------------------------------------------------


def test_named_elementwise_ops() -> None:
    a, b = rand(4, 8), rand(4, 8)
    t = tensor((4, 8))
    compute = f"""        %e = tensor.empty() : {t}
        %s = linalg.add ins(%t0, %t1 : {t}, {t}) outs(%e : {t}) -> {t}
        %m = linalg.mul ins(%s, %t1 : {t}, {t}) outs(%e : {t}) -> {t}
        %d = linalg.sub ins(%m, %t0 : {t}, {t}) outs(%e : {t}) -> {t}
        %x = linalg.max ins(%d, %t0 : {t}, {t}) outs(%e : {t}) -> {t}
        %n = linalg.min ins(%x, %t1 : {t}, {t}) outs(%e : {t}) -> {t}
        %r = linalg.exp ins(%n : {t}) outs(%e : {t}) -> {t}"""
    want = np.exp(np.minimum(np.maximum((a + b) * b - a, a), b))
    close(run_single([a, b], (4, 8), compute), want)


def test_matmul_accumulates_into_a_filled_destination() -> None:
    a, b = rand(4, 16), rand(16, 8)
    compute = f"""        %z = arith.constant 0.5 : f32
        %e = tensor.empty() : {tensor((4, 8))}
        %f = linalg.fill ins(%z : f32) outs(%e : {tensor((4, 8))}) -> {tensor((4, 8))}
        %r = linalg.matmul ins(%t0, %t1 : {tensor((4, 16))}, {tensor((16, 8))}) outs(%f : {tensor((4, 8))}) -> {tensor((4, 8))}"""
    close(run_single([a, b], (4, 8), compute), a @ b + 0.5)


def test_transpose_broadcast_reduce() -> None:
    a, v = rand(4, 8), rand(8)
    compute = f"""        %e1 = tensor.empty() : {tensor((8, 4))}
        %tr = linalg.transpose ins(%t0 : {tensor((4, 8))}) outs(%e1 : {tensor((8, 4))}) permutation = [1, 0]
        %e2 = tensor.empty() : {tensor((8, 4))}
        %bc = linalg.broadcast ins(%t1 : {tensor((8,))}) outs(%e2 : {tensor((8, 4))}) dimensions = [1]
        %s = arith.addf %tr, %bc : {tensor((8, 4))}
        %ninf = arith.constant -1.0e30 : f32
        %e3 = tensor.empty() : {tensor((8,))}
        %init = linalg.fill ins(%ninf : f32) outs(%e3 : {tensor((8,))}) -> {tensor((8,))}
        %mx = linalg.reduce ins(%s : {tensor((8, 4))}) outs(%init : {tensor((8,))}) dimensions = [1]
          (%in: f32, %acc: f32) {{
            %m = arith.maximumf %in, %acc : f32
            linalg.yield %m : f32
          }}
        %e4 = tensor.empty() : {tensor((8, 4))}
        %mb = linalg.broadcast ins(%mx : {tensor((8,))}) outs(%e4 : {tensor((8, 4))}) dimensions = [1]
        %r = arith.subf %s, %mb : {tensor((8, 4))}"""
    s = a.T + v[:, None]
    close(run_single([a, v], (8, 4), compute), s - s.max(axis=1, keepdims=True))


def test_reduce_with_a_body_that_is_not_a_plain_combiner_runs_sequentially() -> None:
    a = rand(3, 5)
    compute = f"""        %z = arith.constant 0.0 : f32
        %e = tensor.empty() : {tensor((3,))}
        %init = linalg.fill ins(%z : f32) outs(%e : {tensor((3,))}) -> {tensor((3,))}
        %red = linalg.reduce ins(%t0 : {tensor((3, 5))}) outs(%init : {tensor((3,))}) dimensions = [1]
          (%in: f32, %acc: f32) {{
            %h = arith.constant 0.5 : f32
            %d = arith.mulf %acc, %h : f32
            %m = arith.addf %d, %in : f32
            linalg.yield %m : f32
          }}
        %r = tensor.expand_shape %red [[0, 1]] output_shape [3, 1] : {tensor((3,))} into {tensor((3, 1))}"""
    want = np.zeros(3)
    for j in range(5):
        want = want * 0.5 + a[:, j]
    close(run_single([a], (3, 1), compute), want[:, None])


# -- linalg.generic ---------------------------------------------------------------------------------


def test_generic_broadcasts_a_row_and_a_vector_with_constant_and_projected_maps() -> None:
    m, row, v = rand(4, 8), rand(1, 8), rand(4)
    body = """          %s = arith.addf %a0, %a1 : f32
          %p = arith.mulf %s, %a2 : f32
          linalg.yield %p : f32"""
    compute = generic(
        [("%t0", tensor((4, 8))), ("%t1", tensor((1, 8))), ("%t2", tensor((4,)))],
        ("", tensor((4, 8))),
        ["(d0, d1) -> (d0, d1)", "(d0, d1) -> (0, d1)", "(d0, d1) -> (d0)", "(d0, d1) -> (d0, d1)"],
        ["parallel", "parallel"],
        body,
    )
    close(run_single([m, row, v], (4, 8), compute), (m + row) * v[:, None])


def test_generic_transposed_input_map() -> None:
    a = rand(8, 4)
    body = "          %n = arith.negf %a0 : f32\n          linalg.yield %n : f32"
    compute = generic([("%t0", tensor((8, 4)))], ("", tensor((4, 8))), ["(d0, d1) -> (d1, d0)", "(d0, d1) -> (d0, d1)"],
                      ["parallel", "parallel"], body)
    close(run_single([a], (4, 8), compute), -a.T)


@pytest.mark.parametrize(("combiner", "ufunc"), [("arith.addf", np.sum), ("arith.maximumf", np.max), ("arith.mulf", np.prod)])
def test_generic_reduction_into_a_keepdims_output(combiner: str, ufunc: object) -> None:
    a = rand(4, 6)
    init = {"arith.addf": "0.0", "arith.maximumf": "-1.0e30", "arith.mulf": "1.0"}[combiner]
    compute = f"""        %z = arith.constant {init} : f32
        %e = tensor.empty() : {tensor((4, 1))}
        %acc = linalg.fill ins(%z : f32) outs(%e : {tensor((4, 1))}) -> {tensor((4, 1))}
""" + generic(
        [("%t0", tensor((4, 6)))],
        ("%acc", tensor((4, 1))),
        ["(d0, d1) -> (d0, d1)", "(d0, d1) -> (d0, 0)"],
        ["parallel", "reduction"],
        f"          %c = {combiner} %a0, %o0 : f32\n          linalg.yield %c : f32",
    )
    close(run_single([a], (4, 1), compute), ufunc(a.astype(np.float64), axis=1, keepdims=True))  # type: ignore[operator]


def test_generic_contraction_with_a_sliding_window_map() -> None:
    """A 1-D convolution: out[i] = sum_j x[i + j] * w[j]; the input map is not a projection."""
    x, w = rand(11), rand(4)
    compute = f"""        %z = arith.constant 0.0 : f32
        %e = tensor.empty() : {tensor((8,))}
        %acc = linalg.fill ins(%z : f32) outs(%e : {tensor((8,))}) -> {tensor((8,))}
""" + generic(
        [("%t0", tensor((11,))), ("%t1", tensor((4,)))],
        ("%acc", tensor((8,))),
        ["(d0, d1) -> (d0 + d1)", "(d0, d1) -> (d1)", "(d0, d1) -> (d0)"],
        ["parallel", "reduction"],
        "          %p = arith.mulf %a0, %a1 : f32\n          %s = arith.addf %o0, %p : f32\n          linalg.yield %s : f32",
    )
    want = np.array([sum(float(x[i + j]) * float(w[j]) for j in range(4)) for i in range(8)])
    close(run_single([x, w], (8,), compute), want)


def test_generic_sequential_fallback_for_an_order_dependent_reduction() -> None:
    """`acc = acc * 0.9 + x` is not a combiner of independent terms: evaluated in loop order."""
    a = rand(3, 7)
    compute = f"""        %z = arith.constant 0.0 : f32
        %e = tensor.empty() : {tensor((3,))}
        %acc = linalg.fill ins(%z : f32) outs(%e : {tensor((3,))}) -> {tensor((3,))}
""" + generic(
        [("%t0", tensor((3, 7)))],
        ("%acc", tensor((3,))),
        ["(d0, d1) -> (d0, d1)", "(d0, d1) -> (d0)"],
        ["parallel", "reduction"],
        "          %k = arith.constant 0.9 : f32\n          %d = arith.mulf %o0, %k : f32\n"
        "          %s = arith.addf %d, %a0 : f32\n          linalg.yield %s : f32",
        result="red",
    ) + f"\n        %r = tensor.expand_shape %red [[0, 1]] output_shape [3, 1] : {tensor((3,))} into {tensor((3, 1))}"
    want = np.zeros(3)
    for j in range(7):
        want = want * 0.9 + a[:, j]
    close(run_single([a], (3, 1), compute), want[:, None])


def test_generic_index_cmpf_select_and_casts() -> None:
    """out[i, j] = relu(a[i, j]) + j, with `linalg.index`, `arith.cmpf`, `select`, casts."""
    a = rand(3, 5)
    body = """          %z = arith.constant 0.0 : f32
          %pos = arith.cmpf ogt, %a0, %z : f32
          %relu = arith.select %pos, %a0, %z : f32
          %j = linalg.index 1 : index
          %ji = arith.index_cast %j : index to i32
          %jf = arith.sitofp %ji : i32 to f32
          %s = arith.addf %relu, %jf : f32
          linalg.yield %s : f32"""
    compute = generic([("%t0", tensor((3, 5)))], ("", tensor((3, 5))), ["(d0, d1) -> (d0, d1)"] * 2, ["parallel"] * 2, body)
    close(run_single([a], (3, 5), compute), np.maximum(a, 0) + np.arange(5))


def test_math_ops_on_tensors() -> None:
    a = np.abs(rand(2, 8)) + 0.1
    t = tensor((2, 8))
    compute = f"""        %th = math.tanh %t0 : {t}
        %er = math.erf %t0 : {t}
        %rs = math.rsqrt %t0 : {t}
        %lg = math.log %t0 : {t}
        %sq = math.sqrt %t0 : {t}
        %a1 = arith.addf %th, %er : {t}
        %a2 = arith.addf %a1, %rs : {t}
        %a3 = arith.addf %a2, %lg : {t}
        %a4 = arith.divf %a3, %sq : {t}
        %cst = arith.constant dense<2.0> : {t}
        %r = arith.subf %a4, %cst : {t}"""
    erf = np.vectorize(math.erf)(a.astype(np.float64))
    want = (np.tanh(a) + erf + 1 / np.sqrt(a) + np.log(a)) / np.sqrt(a) - 2
    close(run_single([a], (2, 8), compute), want)


# -- tensor ops and loops ---------------------------------------------------------------------------


def test_slices_with_loop_indices_and_reshapes() -> None:
    """Reverse the 4 column blocks of a row through a local buffer written with insert_slice."""
    a = rand(2, 16)
    t = tensor((2, 16))
    body = f"""          %c4 = arith.constant 4 : index
          %c3 = arith.constant 3 : index
          %off = arith.muli %j, %c4 : index
          %rj = arith.subi %c3, %j : index
          %roff = arith.muli %rj, %c4 : index
          %blk = tensor.extract_slice %t0[0, %off] [2, 4] [1, 1] : {t} to {tensor((2, 4))}
          %flat = tensor.collapse_shape %blk [[0, 1]] : {tensor((2, 4))} into {tensor((8,))}
          %back = tensor.expand_shape %flat [[0, 1]] output_shape [2, 4] : {tensor((8,))} into {tensor((2, 4))}
          %b2 = tensor.insert_slice %back into %buf[0, %roff] [2, 4] [1, 1] : {tensor((2, 4))} into {t}
          scf.yield %b2 : {t}"""
    from .irtext import loop

    compute = f"        %e = tensor.empty() : {t}\n" + loop(4, body, [("buf", "%e", t)], iv="j", results="r")
    want = np.concatenate([a[:, 12:16], a[:, 8:12], a[:, 4:8], a[:, 0:4]], axis=1)
    close(run_single([a], (2, 16), compute), want)


def test_unwritten_tensor_empty_reads_as_nan() -> None:
    """Reading a destination that nothing wrote must not look like valid data."""
    a = rand(2, 4)
    compute = f"""        %e = tensor.empty() : {tensor((2, 4))}
        %r = linalg.matmul ins(%t0, %t1 : {tensor((2, 4))}, {tensor((4, 4))}) outs(%e : {tensor((2, 4))}) -> {tensor((2, 4))}"""
    assert np.isnan(run_single([a, rand(4, 4)], (2, 4), compute)).all()


def test_bf16_values_are_rounded_where_produced() -> None:
    """bf16 is stored as float32 but every bf16 result carries bf16 precision (torch as reference)."""
    import torch

    a, b = rand(4, 8), rand(4, 8)
    t, h = tensor((4, 8)), tensor((4, 8), "bf16")
    compute = f"""        %ah = arith.truncf %t0 : {t} to {h}
        %bh = arith.truncf %t1 : {t} to {h}
        %ph = arith.mulf %ah, %bh : {h}
        %r = arith.extf %ph : {h} to {t}"""
    ta, tb = torch.from_numpy(a).to(torch.bfloat16), torch.from_numpy(b).to(torch.bfloat16)
    want = (ta * tb).to(torch.float32).numpy()
    np.testing.assert_array_equal(run_single([a, b], (4, 8), compute), want)


def test_scalar_extract_insert_splat_and_from_elements() -> None:
    """r = splat(a[1, 2]) with r[0, 3] = a[0, 0] + 1, plus a from_elements row added to row 1."""
    a = rand(2, 4)
    t = tensor((2, 4))
    compute = f"""        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %c2 = arith.constant 2 : index
        %c3 = arith.constant 3 : index
        %s = tensor.extract %t0[%c1, %c2] : {t}
        %sp = tensor.splat %s : {t}
        %a00 = tensor.extract %t0[%c0, %c0] : {t}
        %one = arith.constant 1.0 : f32
        %p = arith.addf %a00, %one : f32
        %ins = tensor.insert %p into %sp[%c0, %c3] : {t}
        %z = arith.constant 0.0 : f32
        %row = tensor.from_elements %z, %z, %z, %z, %one, %one, %one, %one : {t}
        %r = arith.addf %ins, %row : {t}"""
    want = np.full((2, 4), a[1, 2])
    want[0, 3] = a[0, 0] + 1
    want[1] += 1
    close(run_single([a], (2, 4), compute), want)


def _affine(n: int, dims: list[int]) -> str:
    args = ", ".join(f"d{i}" for i in range(n))
    return f"({args}) -> ({', '.join(f'd{d}' for d in dims)})"


@settings(max_examples=30)
@given(st.data())
def test_generic_matches_brute_force_loops(data: st.DataObject) -> None:
    """Random projected-permutation maps and iterator types against a scalar loop nest."""
    n = data.draw(st.integers(1, 3), "loops")
    ranges = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n), "ranges")
    iters = data.draw(st.lists(st.sampled_from(["parallel", "reduction"]), min_size=n, max_size=n), "iterators")
    iters[0] = "parallel"  # keep a ranked output
    full = data.draw(st.permutations(range(n)), "map0")  # every loop must index some operand
    in_maps = [full, data.draw(st.permutations(range(n)), "map1")[: data.draw(st.integers(1, n), "rank1")]]
    out_map = [d for d in range(n) if iters[d] == "parallel"]
    sequential = data.draw(st.booleans(), "order-dependent body")
    a = [rand(*(ranges[d] for d in m)) for m in in_maps]
    init = rand(*(ranges[d] for d in out_map))
    has_red = "reduction" in iters
    if not has_red:
        body, f = "          %p = arith.mulf %a0, %a1 : f32\n          %r1 = arith.subf %p, %o0 : f32", lambda o, x, y: x * y - o
    elif sequential:
        body = ("          %p = arith.mulf %a0, %a1 : f32\n          %h = arith.constant 0.5 : f32\n"
                "          %oh = arith.mulf %o0, %h : f32\n          %r1 = arith.addf %oh, %p : f32")
        f = lambda o, x, y: 0.5 * o + x * y  # noqa: E731
    else:
        body, f = "          %p = arith.mulf %a0, %a1 : f32\n          %r1 = arith.addf %o0, %p : f32", lambda o, x, y: o + x * y
    out_t = tensor(init.shape)
    compute = generic(
        [("%t0", tensor(a[0].shape)), ("%t1", tensor(a[1].shape))],
        ("%t2", out_t),
        [_affine(n, in_maps[0]), _affine(n, in_maps[1]), _affine(n, out_map)],
        iters,
        body + "\n          linalg.yield %r1 : f32",
    )
    want = init.astype(np.float64).copy()
    for point in itertools.product(*(range(r) for r in ranges)):
        idx = tuple(point[d] for d in out_map)
        want[idx] = f(want[idx], float(a[0][tuple(point[d] for d in in_maps[0])]), float(a[1][tuple(point[d] for d in in_maps[1])]))
    got = run_single([a[0], a[1], init], init.shape, compute)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_scf_if_inside_a_loop() -> None:
    """acc = a; for j in 0..4: acc = acc + 1 if j < 2 else acc * 2  ->  (a + 2) * 4."""
    a = rand(2, 3)
    t = tensor((2, 3))
    body = f"""          %c2 = arith.constant 2 : index
          %lt = arith.cmpi ult, %j, %c2 : index
          %nxt = scf.if %lt -> ({t}) {{
            %one = arith.constant dense<1.0> : {t}
            %s = arith.addf %acc, %one : {t}
            scf.yield %s : {t}
          }} else {{
            %two = arith.constant dense<2.0> : {t}
            %m = arith.mulf %acc, %two : {t}
            scf.yield %m : {t}
          }}
          scf.yield %nxt : {t}"""
    from .irtext import loop

    close(run_single([a], (2, 3), loop(4, body, [("acc", "%t0", t)], iv="j", results="r")), (a + 2) * 4)


def test_tensor_concat_and_pow() -> None:
    a, b = rand(2, 3), np.abs(rand(2, 5)) + 0.5
    compute = f"""        %ex = arith.constant dense<1.5> : {tensor((2, 5))}
        %p = math.powf %t1, %ex : {tensor((2, 5))}
        %r = tensor.concat dim(1) %t0, %p : ({tensor((2, 3))}, {tensor((2, 5))}) -> {tensor((2, 8))}"""
    close(run_single([a, b], (2, 8), compute), np.concatenate([a, b.astype(np.float64) ** 1.5], axis=1))


def test_int8_products_accumulate_in_i32() -> None:
    """W8A8-style: i8 x i8 -> i32 accumulation in a generic, then a scale to f32."""
    a = RNG.integers(-128, 128, (3, 16), dtype=np.int8)
    b = RNG.integers(-128, 128, (16, 4), dtype=np.int8)
    i32 = tensor((3, 4), "i32")
    body = """          %x = arith.extsi %a0 : i8 to i32
          %y = arith.extsi %a1 : i8 to i32
          %p = arith.muli %x, %y : i32
          %s = arith.addi %o0, %p : i32
          linalg.yield %s : i32"""
    compute = f"""        %z = arith.constant 0 : i32
        %e = tensor.empty() : {i32}
        %acc = linalg.fill ins(%z : i32) outs(%e : {i32}) -> {i32}
""" + generic(
        [("%t0", tensor((3, 16), "i8")), ("%t1", tensor((16, 4), "i8"))],
        ("%acc", i32),
        ["(d0, d1, d2) -> (d0, d2)", "(d0, d1, d2) -> (d2, d1)", "(d0, d1, d2) -> (d0, d1)"],
        ["parallel", "parallel", "reduction"],
        body,
        result="mm",
    ) + "\n" + generic(
        [("%mm", i32)],
        ("", tensor((3, 4))),
        ["(d0, d1) -> (d0, d1)"] * 2,
        ["parallel"] * 2,
        "          %f = arith.sitofp %a0 : i32 to f32\n          %k = arith.constant 0.5 : f32\n"
        "          %h = arith.mulf %f, %k : f32\n          linalg.yield %h : f32",
    )
    want = (a.astype(np.int64) @ b.astype(np.int64)) * 0.5
    np.testing.assert_array_equal(run_single([a, b], (3, 4), compute), want.astype(np.float32))


def test_strided_slice_and_a_scalar_generic_operand() -> None:
    """Every other column (stride 2), scaled by a scalar operand with the map `(d0, d1) -> ()`."""
    a = rand(2, 8)
    compute = f"""        %ev = tensor.extract_slice %t0[0, 1] [2, 4] [1, 2] : {tensor((2, 8))} to {tensor((2, 4))}
        %k = arith.constant 3.0 : f32
""" + generic(
        [("%ev", tensor((2, 4))), ("%k", "f32")],
        ("", tensor((2, 4))),
        ["(d0, d1) -> (d0, d1)", "(d0, d1) -> ()", "(d0, d1) -> (d0, d1)"],
        ["parallel", "parallel"],
        "          %m = arith.mulf %a0, %a1 : f32\n          linalg.yield %m : f32",
    )
    close(run_single([a], (2, 4), compute), a[:, 1::2] * 3)
