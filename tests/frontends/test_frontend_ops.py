"""Per-op lowerings against torch eager, including table entries the four families do not use,
and the builder's reshape/broadcast helpers against numpy (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import Block, Region

from frontends import FrontendError, from_torch
from streamdsl.irbuild import PARALLEL, IRBuilder, affine_map
from streamdsl.sim.tensors import CompileError, run_function


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _randn(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def _ints(*shape, high=5):
    return torch.randint(-high, high, shape, generator=torch.Generator().manual_seed(7))


CASES = {
    "add_alpha": (lambda x, y: torch.add(x, y, alpha=0.5), [_randn(2, 3), _randn(3)]),
    "sub_scalar": (lambda x: x - 1.5, [_randn(4)]),
    "div_ints": (lambda x, y: x / y, [_ints(3, 4), _ints(3, 4).abs() + 1]),
    "int_arith": (lambda x, y: (x * y + x - 2) // 3 + torch.div(x, 2, rounding_mode="trunc"), [_ints(5), _ints(5)]),
    "float_floor_div": (lambda x: x // 0.3 + torch.div(x, 0.7, rounding_mode="trunc"), [_randn(6)]),
    "maximum": (lambda x, y: torch.maximum(x, y) + torch.minimum(x, y) * 2, [_randn(3, 4), _randn(1, 4)]),
    "compare": (lambda x, y: (x < y).float() + (x >= 0.1).float() + (x == x).float() - (x != y).float(),
                [_randn(3, 4), _randn(3, 1)]),
    "int_compare": (lambda x, y: ((x <= y) & (x > -2)) | ~(x == 0), [_ints(6), _ints(6)]),
    "where_scalar": (lambda x: torch.where(x > 0, x, 0.25), [_randn(3, 5)]),
    "masked_fill": (lambda x: x.masked_fill(x < 0, -1e4), [_randn(3, 5)]),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), [_randn(9)]),
    "unary": (lambda x: x.exp() + x.abs().sqrt() + x.abs().add(1).log() + x.reciprocal() + x.tanh() + torch.erf(x),
              [_randn(2, 6)]),
    "relu_gelu": (lambda x: F.relu(x) + F.gelu(x) + torch.sigmoid(x), [_randn(2, 6)]),
    "pow": (lambda x: x.abs().pow(1.5) + x.pow(3) + x.abs().pow(-0.5) + x.pow(2), [_randn(7)]),
    "casts": (lambda x, i: x.to(torch.int64).float() + i.float() + (i > 0).to(torch.float32), [_randn(5) * 4, _ints(5)]),
    "sum_of_bools": (lambda x: (x > 0).sum() + (x < 0.5).sum(dim=1) + (x > 0).to(torch.int32).sum(dim=0, dtype=torch.int64),
                     [_randn(5, 5)]),  # int64 counts (17 > 0 of 25: a sum in i1 would be the parity)
    "sum_amax_mean": (lambda x: x.sum() + x.sum(dim=(0, 2), keepdim=True) + x.amax(-1, keepdim=True)
                      + x.mean(dim=(1, 2), keepdim=True), [_randn(2, 3, 4)]),
    "log_softmax_parts": (lambda x: torch.softmax(x, 0) * torch.softmax(x, 1), [_randn(3, 4)]),
    "split_transpose": (lambda x: torch.cat([t.transpose(0, 1) for t in x.split(2, dim=1)], 0), [_randn(3, 5)]),
    "t_and_select": (lambda x: x.t()[-1] + x[:, 2], [_randn(4, 4)]),
    "slice_step": (lambda x: x[::2, 1:5:3] * 2, [_randn(5, 7)]),
    "index_select": (lambda x, i: torch.index_select(x, 1, i), [_randn(3, 6), torch.tensor([5, 0, 2, 2])]),
    "index_adjacent": (lambda x, i: x[:, i], [_randn(3, 6, 2), torch.tensor([[5, -1], [0, 2]])]),
    "index_nonadjacent": (lambda x, i, j: x[i, :, j], [_randn(3, 4, 5), torch.tensor([2, 0]), torch.tensor([[-5], [4]])]),
    "index_list": (lambda x: x[..., [-2], :] + x[..., [0], :], [_randn(2, 5, 3)]),
    "embedding_2d": (lambda w, i: F.embedding(i, w), [_randn(10, 4), torch.tensor([[1, 9], [0, 3]])]),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, (4,)), [_randn(3, 4)]),
    "layer_norm_2d": (lambda x, w: F.layer_norm(x, (3, 4), w), [_randn(2, 3, 4), _randn(3, 4)]),
    "linear_no_bias_3d": (lambda x, w: F.linear(x, w), [_randn(2, 3, 4), _randn(5, 4)]),
    "batched_matmul_4d": (lambda a, b: a @ b, [_randn(2, 3, 4, 5), _randn(2, 3, 5, 2)]),
    "reshape_mixed": (lambda x: x.reshape(6, 2, 2).permute(2, 0, 1).reshape(4, 6), [_randn(4, 3, 2)]),
    "expand": (lambda x: x.unsqueeze(0).expand(3, 2, 4) + 0, [_randn(2, 1).expand(2, 4).contiguous()]),
    # Ops of torch.export's training IR that are lowered without decomposing the graph.
    "linear_bias_4d": (lambda x, w, b: F.linear(x, w, b), [_randn(2, 2, 3, 4), _randn(5, 4), _randn(5)]),
    "matmul_vectors": (lambda a, b, m: (a @ b) + (a @ m).sum() + (m.t() @ b).sum(), [_randn(4), _randn(4), _randn(4, 3)]),
    "matmul_3d_2d": (lambda a, b: a @ b, [_randn(2, 3, 4), _randn(4, 5)]),
    "matmul_broadcast_batch": (lambda a, b: torch.matmul(a, b), [_randn(2, 1, 3, 4), _randn(3, 4, 2)]),
    "matmul_vector_batch": (lambda a, b: a @ b, [_randn(4), _randn(2, 4, 3)]),
    "softmax_dtype": (lambda x: torch.softmax(x.half(), -1, dtype=torch.float32), [_randn(3, 4)]),
    "casts_to_type_as": (lambda x, i: x.to(torch.float64).type_as(x) + i.to(x.dtype) + i.type_as(x), [_randn(5), _ints(5)]),
    "contiguous_dropout": (lambda x: F.dropout(x.t().contiguous(), 0.3, training=False), [_randn(3, 4)]),
    "layer_norm_bias": (lambda x, w, b: F.layer_norm(x, (4,), w, b, 1e-3), [_randn(2, 3, 4), _randn(4), _randn(4)]),
    # Hugging Face's default attention: lowered whole, in the training IR and after decomposition.
    "sdpa_float_mask": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                        [_randn(1, 2, 3, 4), _randn(1, 2, 5, 4), _randn(1, 2, 5, 6), _randn(1, 1, 3, 5)]),
    "sdpa_bool_mask_scale": (lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.arange(5) <= torch.arange(3).unsqueeze(1) + 2, scale=0.3),
        [_randn(2, 3, 4), _randn(2, 5, 4), _randn(2, 5, 4)]),
    "sdpa_causal_gqa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
                        [_randn(1, 4, 3, 4), _randn(1, 2, 5, 4), _randn(1, 2, 5, 4)]),
    "pow_of_tensors": (lambda x, y: x.abs().add(0.5).pow(y) + torch.pow(2.0, y) + x.abs().pow(0.5), [_randn(3, 4), _randn(3, 4)]),
    "full_like": (lambda x: torch.full_like(x, 2.5) * x + torch.zeros_like(x) + torch.ones_like(x), [_randn(3, 4)]),
    "layer_norm_in_decomposed_graph": (lambda x, w, b: torch.addcmul(F.layer_norm(x, (4,), w, b, 1e-3), x, x, value=0.5),
                                       [_randn(2, 3, 4), _randn(4), _randn(4)]),
    "sdpa_in_decomposed_graph": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v) + q.chunk(2, -1)[0].sum(),
                                 [_randn(1, 2, 3, 4), _randn(1, 2, 3, 4), _randn(1, 2, 3, 4)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_op_matches_eager(name):
    fn, inputs = CASES[name]
    module = Fn(fn)
    prog = from_torch(module, *inputs)
    with torch.no_grad():
        want = module(*inputs)
    (got,) = prog.reference(*[t.numpy() for t in inputs])
    assert got.shape == tuple(want.shape) and got.dtype == want.numpy().dtype
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def _run(build, in_shape):
    """Builds @f(x) = build(builder, x) with the IRBuilder and runs it on the reference."""
    block = Block(arg_types=[TensorType(f32, list(in_shape))])
    out = build(IRBuilder(block), block.args[0])
    block.add_op(func.ReturnOp(out))
    fn = func.FuncOp("f", ([block.args[0].type], [out.type]), Region(block))
    ModuleOp([fn]).verify()
    x = np.arange(math.prod(in_shape), dtype=np.float32).reshape(in_shape)
    return x, run_function(fn, [x])[0]


_dims = st.lists(st.sampled_from([1, 2, 3, 4, 6]), min_size=0, max_size=4)


@given(_dims, st.randoms(use_true_random=False))
def test_reshape_is_numpy_reshape(shape, rnd):
    """Any reshape (collapse, expand, or neither) through the IR equals numpy's."""
    factors = [p for s in shape for p in ([2] * (s % 2 == 0) + [s // 2] if s % 2 == 0 and s > 2 else [s])]
    rnd.shuffle(factors)
    target = factors + [1] * rnd.randint(0, 1)
    x, got = _run(lambda b, v: b.reshape(v, target), shape)
    np.testing.assert_array_equal(got, x.reshape(target))


@given(_dims, st.integers(0, 2), st.randoms(use_true_random=False))
def test_broadcast_is_numpy_broadcast(shape, lead, rnd):
    target = [rnd.choice([1, 3]) for _ in range(lead)] + [s if s != 1 else rnd.choice([1, 5]) for s in shape]
    x, got = _run(lambda b, v: b.broadcast_to(v, target), shape)
    np.testing.assert_array_equal(got, np.broadcast_to(x, target))


def test_reference_names_what_it_cannot_interpret():
    from xdsl.dialects import math as xmath
    from xdsl.dialects.builtin import i32

    def popcount(bb, a):
        return bb.cast(bb.op(xmath.CtPopOp(bb.cast(a[0], i32))), f32)

    def build(b, v):
        return b.generic([(v, affine_map(1, [0]))], [3], f32, [PARALLEL], popcount)

    with pytest.raises(CompileError, match="the functional simulator does not support `math.ctpop`"):
        _run(build, [3])


@pytest.fixture
def decompositions(monkeypatch) -> list:
    """Records each ExportedProgram.run_decompositions call."""
    calls = []
    original = torch.export.ExportedProgram.run_decompositions
    monkeypatch.setattr(torch.export.ExportedProgram, "run_decompositions",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    return calls


def test_graph_without_lowerings_is_decomposed(decompositions):
    """Ops without a lowering (addcmul, in-place add_) send the whole graph through torch's core-ATen
    decomposition; graphs of lowered ops skip it."""
    calls = decompositions

    def inplace(x, y):
        z = x * 2
        z.add_(y)
        return z

    x, y = _randn(3, 4), _randn(3, 4)
    for fn, decomposed in [(lambda a, b: torch.addcmul(a, a, b, value=0.5), True), (inplace, True),
                           (lambda a, b: F.linear(a, b).softmax(-1), False)]:
        calls.clear()
        prog = from_torch(Fn(fn), x, y)
        assert bool(calls) == decomposed
        np.testing.assert_allclose(prog.reference(x.numpy(), y.numpy())[0], fn(x, y).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gemma"])
def test_families_import_without_decomposition(family, decompositions):
    """The four families' exported graphs need no core-ATen decomposition (it was most of the
    paper configs' import time); their numerics are checked in test_frontend_models."""
    from frontends import hf

    module, inputs = hf.decode_step(hf.build(family, "tiny"), 3)
    from_torch(module, *inputs)
    assert decompositions == []


def test_training_mode_dropout_is_refused():
    with pytest.raises(FrontendError, match=r"dropout in training mode .*model\.eval\(\)"):
        from_torch(Fn(lambda x: F.dropout(x, 0.5, training=True)), _randn(3, 4))


def _outputs_match(fn, inputs, rtol=0.0, atol=0.0):
    """`fn` imported and run on the reference gives torch eager's outputs, dtypes included."""
    prog = from_torch(Fn(fn), *inputs)
    with torch.no_grad():
        want = fn(*inputs)
    got = prog.reference(*[t.numpy() for t in inputs])
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.numpy().dtype, i
        np.testing.assert_allclose(g, w.numpy(), rtol=rtol, atol=atol, err_msg=f"output {i}")


def _compare_all(x, y, s):
    return (x < y, x <= y, x > y, x >= y, x == y, x != y, x < s, x <= s, x > s, x >= s, x == s, x != s,
            torch.lt(y, x), torch.ge(y, x))


@pytest.mark.parametrize("dtype, scalar", [(torch.int32, 1), (torch.int64, -2), (torch.float32, 0.5), (torch.int64, 0.5)])
def test_every_comparison_matches_eager_on_ties(dtype, scalar):
    """Each comparison (tensor-tensor, tensor-scalar, operands either way round) on int32, int64 and
    float tensors with many equal pairs, and on ints against a float scalar (compared in float),
    gives torch's booleans."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randint(-3, 3, (4, 6), generator=gen)
    y = torch.randint(-3, 3, (6,), generator=gen)
    if dtype.is_floating_point:  # halves: ties with each other and with the scalar
        x, y = x / 2, y / 2
    x, y = x.to(dtype), y.to(dtype)
    assert (x == y).any() and (x != y).any()
    _outputs_match(lambda a, b: _compare_all(a, b, scalar), [x, y])


_UNARY_OPS = (torch.neg, torch.exp, torch.tanh, torch.cos, torch.sin, torch.erf, torch.abs, torch.round,
              torch.sigmoid, F.relu, F.silu, F.gelu, lambda t: F.gelu(t, approximate="tanh"))
_POSITIVE_OPS = (torch.log, torch.sqrt, torch.rsqrt, torch.reciprocal)


def test_every_unary_op_matches_eager():
    """Each float unary op of the lowering table (and gelu, erf and tanh forms) on random floats and
    on halves (round's ties go to even) equals torch eager within float32 rounding."""
    from frontends.ops.elementwise import _UNARY

    x = torch.cat([_randn(40) * 3, torch.arange(-6, 7) / 2])
    fn = lambda t: tuple(op(t) for op in _UNARY_OPS) + tuple(op(t.abs() + 0.1) for op in _POSITIVE_OPS)  # noqa: E731
    targets = {n.target for n in torch.export.export(Fn(fn), (x,)).graph.nodes}
    assert set(_UNARY) <= targets, set(_UNARY) - targets
    _outputs_match(fn, [x], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_every_integer_arithmetic_op_matches_eager(dtype):
    """Integer add (with alpha), sub, mul, maximum, minimum, the bitwise ops and clamp, on tensors
    and scalars, stay integers and give torch's values."""
    gen = torch.Generator().manual_seed(5)
    x, y = (torch.randint(-9, 9, shape, generator=gen).to(dtype) for shape in [(3, 5), (5,)])

    def fn(a, b):
        return (a + b, torch.add(a, b, alpha=3), a - b, torch.sub(a, 2, alpha=2), a * b, a * 3,
                torch.maximum(a, b), torch.minimum(a, b), a & b, a | b, a ^ b, a.clamp(-4, 5), a.clamp(min=1))

    _outputs_match(fn, [x, y])


@pytest.mark.parametrize("exponent, op", [(1, None), (2, "arith.mulf"), (3, "arith.mulf"), (4, "arith.mulf"), (0.5, "math.sqrt"),
                                          (-0.5, "math.rsqrt"), (1.5, "math.powf")])
def test_small_integer_and_half_powers_need_no_pow_core(exponent, op):
    """`x ** e` for e in 1..4 is x or a chain of multiplies, e = 0.5 a sqrt and e = -0.5 an rsqrt:
    on hardware a powf core costs far more than these. Other exponents keep powf. Powers 1 to 3
    equal torch's bit for bit (torch multiplies too); the others are within float32 rounding."""
    x = _randn(16).abs() + 0.1
    prog = from_torch(Fn(lambda t: t.pow(exponent)), x)
    names = {o.name for o in prog.func.walk()}
    assert ("math.powf" in names) == (exponent == 1.5)
    assert op is None or op in names
    if op is None:  # x ** 1 is x itself: no arithmetic at all
        assert not names & {"arith.mulf", "math.sqrt", "math.rsqrt", "math.powf"}
    _outputs_match(lambda t: (t.pow(exponent),), [x], rtol=0 if exponent in (1, 2, 3) else 2.4e-7)
