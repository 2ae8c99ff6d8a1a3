"""Elementwise ATen ops: broadcasting `linalg.generic`s with `arith` / `math` bodies."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch.fx import Node
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import i1
from xdsl.ir import Operation, SSAValue

from frontends.errors import FrontendError
from frontends.ops.registry import element_type, lowers, promote, result_meta
from streamdsl.irbuild import Body, IRBuilder, is_float

aten = torch.ops.aten
ScalarFn = Callable[[Body, list[SSAValue]], SSAValue]


# The scalar bodies below are module-level functions bound with `partial`, not closures made at
# import: they run when a graph is imported, so mutation testing can switch them (docs/mutation.md).
def _binary(float_op: type[Operation] | None, int_op: type[Operation] | None, b: Body, v: list[SSAValue]) -> SSAValue:
    op = float_op if is_float(v[0].type) else int_op
    return b.op(op(v[0], v[1]))


def _emit(b: IRBuilder, node: Node, operands: list[object], fn: ScalarFn, compute=None) -> SSAValue:
    shape, elt = result_meta(node)
    return b.elementwise(shape, elt, operands, fn, compute_elt=compute)


# aten op -> (float arith op, integer arith op); computed in the result dtype.
_ARITH = {
    (aten.add.Tensor, aten.add.Scalar): (arith.AddfOp, arith.AddiOp),
    (aten.sub.Tensor, aten.sub.Scalar): (arith.SubfOp, arith.SubiOp),
    (aten.mul.Tensor, aten.mul.Scalar): (arith.MulfOp, arith.MuliOp),
    (aten.div.Tensor, aten.div.Scalar): (arith.DivfOp, None),  # true division: result is float
    (aten.maximum.default,): (arith.MaximumfOp, arith.MaxSIOp),
    (aten.minimum.default,): (arith.MinimumfOp, arith.MinSIOp),
    # `a & b` on tensors is `__and__` in the training IR (bitwise_and after decomposition).
    (aten.bitwise_and.Tensor, aten.bitwise_and.Scalar, aten.logical_and.default, aten.__and__.Tensor): (None, arith.AndIOp),
    (aten.bitwise_or.Tensor, aten.bitwise_or.Scalar, aten.logical_or.default, aten.__or__.Tensor): (None, arith.OrIOp),
    (aten.bitwise_xor.Tensor, aten.bitwise_xor.Scalar, aten.logical_xor.default, aten.__xor__.Tensor): (None, arith.XOrIOp),
}


def _register_arith(targets: tuple, fn: ScalarFn) -> None:
    @lowers(*targets)
    def lower(b: IRBuilder, node: Node, x, y, alpha=1):
        if alpha != 1:  # add/sub's `x + alpha * y`
            y = b.elementwise(*result_meta(node), [y, alpha], partial(_binary, arith.MulfOp, arith.MuliOp))
        return _emit(b, node, [x, y], fn)


for _targets, (_f, _i) in _ARITH.items():
    _register_arith(_targets, partial(_binary, _f, _i))

# aten comparison -> (cmpf predicate, cmpi predicate); computed in the promoted operand dtype.
_COMPARE = {
    (aten.lt.Tensor, aten.lt.Scalar): ("olt", "slt"),
    (aten.le.Tensor, aten.le.Scalar): ("ole", "sle"),
    (aten.gt.Tensor, aten.gt.Scalar): ("ogt", "sgt"),
    (aten.ge.Tensor, aten.ge.Scalar): ("oge", "sge"),
    (aten.eq.Tensor, aten.eq.Scalar): ("oeq", "eq"),
    (aten.ne.Tensor, aten.ne.Scalar): ("une", "ne"),
}


def _compare(fpred: str, ipred: str, b: Body, v: list[SSAValue]) -> SSAValue:
    if is_float(v[0].type):
        return b.op(arith.CmpfOp(v[0], v[1], fpred))
    return b.op(arith.CmpiOp(v[0], v[1], ipred))


def _register_compare(targets: tuple, fn: ScalarFn) -> None:
    @lowers(*targets)
    def lower(b: IRBuilder, node: Node, x, y):
        return _emit(b, node, [x, y], fn, compute=element_type(promote(node.args[:2])))


for _targets, (_fp, _ip) in _COMPARE.items():
    _register_compare(_targets, partial(_compare, _fp, _ip))


def _sigmoid(b: Body, x: SSAValue) -> SSAValue:
    one = b.const(1.0, x.type)
    e = b.op(math.ExpOp(b.op(arith.NegfOp(x))))
    return b.op(arith.DivfOp(one, b.op(arith.AddfOp(one, e))))


def _gelu_tanh(b: Body, x: SSAValue) -> SSAValue:
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    x3 = b.op(arith.MulfOp(x, b.op(arith.MulfOp(x, x))))
    inner = b.op(arith.AddfOp(x, b.op(arith.MulfOp(b.const(0.044715, x.type), x3))))
    t = b.op(math.TanhOp(b.op(arith.MulfOp(b.const(0.7978845608028654, x.type), inner))))
    half_x = b.op(arith.MulfOp(b.const(0.5, x.type), x))
    return b.op(arith.MulfOp(half_x, b.op(arith.AddfOp(b.const(1.0, x.type), t))))


def _gelu_erf(b: Body, x: SSAValue) -> SSAValue:
    # 0.5 x (1 + erf(x / sqrt(2)))
    e = b.op(math.ErfOp(b.op(arith.MulfOp(x, b.const(0.7071067811865476, x.type)))))
    half_x = b.op(arith.MulfOp(b.const(0.5, x.type), x))
    return b.op(arith.MulfOp(half_x, b.op(arith.AddfOp(b.const(1.0, x.type), e))))


def _unary(op: type[Operation], b: Body, x: SSAValue) -> SSAValue:
    return b.op(op(x))


# Float unary ops, computed in the result dtype.
_UNARY: dict[object, Callable[[Body, SSAValue], SSAValue]] = {
    aten.neg.default: partial(_unary, arith.NegfOp),
    aten.exp.default: partial(_unary, math.ExpOp),
    aten.log.default: partial(_unary, math.LogOp),
    aten.sqrt.default: partial(_unary, math.SqrtOp),
    aten.rsqrt.default: partial(_unary, math.RsqrtOp),
    aten.tanh.default: partial(_unary, math.TanhOp),
    aten.cos.default: partial(_unary, math.CosOp),
    aten.sin.default: partial(_unary, math.SinOp),
    aten.erf.default: partial(_unary, math.ErfOp),
    aten.abs.default: partial(_unary, math.AbsFOp),
    aten.round.default: partial(_unary, math.RoundEvenOp),  # torch.round: half to even
    aten.sigmoid.default: _sigmoid,
    aten.reciprocal.default: lambda b, x: b.op(arith.DivfOp(b.const(1.0, x.type), x)),
    aten.relu.default: lambda b, x: b.op(arith.MaximumfOp(x, b.const(0.0, x.type))),
    aten.silu.default: lambda b, x: b.op(arith.MulfOp(x, _sigmoid(b, x))),
}


def _register_unary(target: object, fn: Callable[[Body, SSAValue], SSAValue]) -> None:
    @lowers(target)
    def lower(b: IRBuilder, node: Node, x):
        return _emit(b, node, [x], lambda bb, v: fn(bb, v[0]))


for _target, _fn in _UNARY.items():
    _register_unary(_target, _fn)


@lowers(aten.gelu.default)
def gelu(b: IRBuilder, node: Node, x, approximate: str = "none"):
    fn = _gelu_tanh if approximate == "tanh" else _gelu_erf
    return _emit(b, node, [x], lambda bb, v: fn(bb, v[0]))


def _pow_scalar(b: Body, x: SSAValue, e: float) -> SSAValue:
    if e == 0.5:
        return b.op(math.SqrtOp(x))
    if e == -0.5:
        return b.op(math.RsqrtOp(x))
    if float(e).is_integer() and 1 <= e <= 4:  # multiplies (as torch does for 2, 3): no powf core
        result = x
        for _ in range(int(e) - 1):
            result = b.op(arith.MulfOp(result, x))
        return result
    return b.op(math.PowFOp(x, b.const(e, x.type)))


@lowers(aten.pow.Tensor_Scalar)
def pow_tensor_scalar(b: IRBuilder, node: Node, x, exponent):
    return _emit(b, node, [x], lambda bb, v: _pow_scalar(bb, v[0], exponent))


@lowers(aten.pow.Tensor_Tensor, aten.pow.Scalar)
def pow_tensor_tensor(b: IRBuilder, node: Node, x, exponent):
    return _emit(b, node, [x, exponent], lambda bb, v: bb.op(math.PowFOp(v[0], v[1])))


@lowers(aten.div.Tensor_mode, aten.div.Scalar_mode)
def div_mode(b: IRBuilder, node: Node, x, y, rounding_mode=None):
    """Division rounded toward -inf ("floor") or zero ("trunc")."""
    rounding = {"floor": (math.FloorOp, arith.FloorDivSIOp), "trunc": (math.TruncOp, arith.DivSIOp)}

    def fn(bb: Body, v: list[SSAValue]) -> SSAValue:
        if not is_float(v[0].type):
            return bb.op(rounding[rounding_mode][1](v[0], v[1]))
        q = bb.op(arith.DivfOp(v[0], v[1]))
        return q if rounding_mode is None else bb.op(rounding[rounding_mode][0](q))

    return _emit(b, node, [x, y], fn)


@lowers(aten.where.self, aten.where.ScalarOther, aten.where.ScalarSelf, aten.where.Scalar)
def where(b: IRBuilder, node: Node, cond, x, y):
    _, elt = result_meta(node)
    return _emit(b, node, [cond, x, y], lambda bb, v: bb.op(arith.SelectOp(*v)), compute=[i1, elt, elt])


@lowers(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def masked_fill(b: IRBuilder, node: Node, x, mask, value):
    _, elt = result_meta(node)
    return _emit(b, node, [mask, value, x], lambda bb, v: bb.op(arith.SelectOp(*v)), compute=[i1, elt, elt])


@lowers(aten.clamp.default)
def clamp(b: IRBuilder, node: Node, x, min=None, max=None):
    def fn(bb: Body, v: list[SSAValue]) -> SSAValue:
        val = v[0]
        if min is not None:
            val = _binary(arith.MaximumfOp, arith.MaxSIOp, bb, [val, bb.const(min, val.type)])
        if max is not None:
            val = _binary(arith.MinimumfOp, arith.MinSIOp, bb, [val, bb.const(max, val.type)])
        return val

    return _emit(b, node, [x], fn)


@lowers(aten.logical_not.default, aten.bitwise_not.default)
def logical_not(b: IRBuilder, node: Node, x):
    return _emit(b, node, [x], lambda bb, v: bb.op(arith.XOrIOp(v[0], bb.const(-1, v[0].type))))


@lowers(aten._to_copy.default, aten.to.dtype, aten.to.dtype_layout, aten.to.device, aten.to.other,
        aten.type_as.default)
def to_copy(b: IRBuilder, node: Node, x, *args, **kwargs):
    """A cast to the result's dtype (the training IR's `to`/`type_as` are the same cast)."""
    shape, elt = result_meta(node)
    if not isinstance(x, SSAValue):
        return b.fill(x, shape, elt)
    if x.type.get_element_type() == elt:
        return x
    return b.elementwise(shape, elt, [x], lambda bb, v: v[0], compute_elt=[x.type.get_element_type()])


@lowers(aten.clone.default, aten.alias.default, aten.lift_fresh_copy.default, aten.detach.default,
        aten.contiguous.default)
def identity(b: IRBuilder, node: Node, x, *args, **kwargs):
    return x


@lowers(aten.dropout.default)
def dropout(b: IRBuilder, node: Node, x, p, train):
    if train and p > 0:
        raise FrontendError(f"{node.name}: dropout in training mode is random; call model.eval() before importing")
    return x


@lowers(aten.full_like.default)
def full_like(b: IRBuilder, node: Node, x, fill_value, **_):
    """`torch.full_like` / `zeros_like` / `ones_like` of a computed tensor: a fill of its shape."""
    shape, elt = result_meta(node)
    return b.fill(fill_value, shape, elt)
