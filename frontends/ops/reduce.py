"""Reductions and the normalisations built from them (softmax, layer norm)."""

from __future__ import annotations

import math as pymath

import torch
from torch.fx import Node
from xdsl.dialects import arith, math
from xdsl.ir import SSAValue

from frontends.ops.registry import lowers, result_meta
from streamdsl.irbuild import IRBuilder, is_float, shape_of

aten = torch.ops.aten


def _dims(x: SSAValue, dims) -> list[int]:
    rank = len(shape_of(x))
    return list(range(rank)) if dims is None or len(dims) == 0 else [d % rank for d in dims]


def _keep(shape: list[int], dims: list[int]) -> list[int]:
    return [1 if i in dims else s for i, s in enumerate(shape)]


def _sum(b: IRBuilder, x: SSAValue, dims: list[int], keepdim: bool) -> SSAValue:
    combine = arith.AddfOp if is_float(x.type.get_element_type()) else arith.AddiOp
    r = b.reduce(x, dims, combine, 0)
    return b.reshape(r, _keep(list(shape_of(x)), dims)) if keepdim else r


def _amax(b: IRBuilder, x: SSAValue, dims: list[int], keepdim: bool) -> SSAValue:
    r = b.reduce(x, dims, arith.MaximumfOp, -pymath.inf)
    return b.reshape(r, _keep(list(shape_of(x)), dims)) if keepdim else r


def _scale(b: IRBuilder, x: SSAValue, factor: float) -> SSAValue:
    return b.elementwise(list(shape_of(x)), x.type.get_element_type(), [x, factor],
                         lambda bb, v: bb.op(arith.MulfOp(*v)))


def _count(x: SSAValue, dims: list[int]) -> int:
    return pymath.prod(shape_of(x)[d] for d in dims)


def _in_result_type(b: IRBuilder, node: Node, x: SSAValue) -> SSAValue:
    """torch sums in the result's dtype: bool and small ints promote to int64 (or `dtype=`); a
    sum of an i1 tensor in i1 would be the parity."""
    _, elt = result_meta(node)
    if x.type.get_element_type() == elt:
        return x
    return b.elementwise(list(shape_of(x)), elt, [x], lambda bb, v: bb.cast(v[0], elt))


@lowers(aten.sum.dim_IntList)
def sum_dim(b: IRBuilder, node: Node, x, dims=None, keepdim=False, dtype=None):
    return _sum(b, _in_result_type(b, node, x), _dims(x, dims), keepdim)


@lowers(aten.sum.default)
def sum_all(b: IRBuilder, node: Node, x, dtype=None):
    return _sum(b, _in_result_type(b, node, x), _dims(x, None), False)


@lowers(aten.mean.dim)
def mean_dim(b: IRBuilder, node: Node, x, dims=None, keepdim=False, dtype=None):
    dims = _dims(x, dims)
    return _scale(b, _sum(b, x, dims, keepdim), 1.0 / _count(x, dims))


@lowers(aten.amax.default)
def amax(b: IRBuilder, node: Node, x, dims=(), keepdim=False):
    return _amax(b, x, _dims(x, dims), keepdim)


@lowers(aten._softmax.default, aten.softmax.int)
def softmax(b: IRBuilder, node: Node, x, dim, half_to_float=None):
    """exp(x - max) / sum(exp(x - max)), with the max and the sum as reduction generics."""
    shape, elt = result_meta(node)
    if x.type.get_element_type() != elt:  # softmax.int's dtype= (training IR)
        x = b.elementwise(shape, elt, [x], lambda bb, v: v[0], compute_elt=[x.type.get_element_type()])
    return softmax_of(b, x, dim)


def softmax_of(b: IRBuilder, x: SSAValue, dim: int) -> SSAValue:
    shape, elt = list(shape_of(x)), x.type.get_element_type()
    dims = _dims(x, [dim])
    m = _amax(b, x, dims, True)
    e = b.elementwise(shape, elt, [x, m], lambda bb, v: bb.op(math.ExpOp(bb.op(arith.SubfOp(*v)))))
    s = _sum(b, e, dims, True)
    return b.elementwise(shape, elt, [e, s], lambda bb, v: bb.op(arith.DivfOp(*v)))


@lowers(aten.native_layer_norm.default)
def native_layer_norm(b: IRBuilder, node: Node, x, normalized_shape, weight, bias, eps):
    """(y, mean, rstd) as torch returns them."""
    y, mean, rstd = _layer_norm(b, x, len(normalized_shape), weight, bias, eps)
    return y, b.reshape(mean, result_meta(node, 1)[0]), b.reshape(rstd, result_meta(node, 2)[0])


@lowers(aten.layer_norm.default)
def layer_norm(b: IRBuilder, node: Node, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn=True):
    return _layer_norm(b, x, len(normalized_shape), weight, bias, eps)[0]


def _layer_norm(b: IRBuilder, x: SSAValue, ndims: int, weight, bias, eps: float):
    """Centre, mean of squares, rsqrt, affine; mean and rstd keep the normalised dims as 1s."""
    shape, elt = list(shape_of(x)), x.type.get_element_type()
    dims = list(range(len(shape) - ndims, len(shape)))
    mean = _scale(b, _sum(b, x, dims, True), 1.0 / _count(x, dims))
    xc = b.elementwise(shape, elt, [x, mean], lambda bb, v: bb.op(arith.SubfOp(*v)))
    sq = b.elementwise(shape, elt, [xc], lambda bb, v: bb.op(arith.MulfOp(v[0], v[0])))
    var = _scale(b, _sum(b, sq, dims, True), 1.0 / _count(x, dims))
    rstd = b.elementwise(list(shape_of(var)), elt, [var, eps],
                         lambda bb, v: bb.op(math.RsqrtOp(bb.op(arith.AddfOp(*v)))))
    operands = [xc, rstd] + [t for t in (weight, bias) if t is not None]

    def affine(bb, v):
        y = bb.op(arith.MulfOp(v[0], v[1]))
        if weight is not None:
            y = bb.op(arith.MulfOp(y, v[2]))
        if bias is not None:
            y = bb.op(arith.AddfOp(y, v[-1]))
        return y

    y = b.elementwise(shape, elt, operands, affine)
    return y, mean, rstd
