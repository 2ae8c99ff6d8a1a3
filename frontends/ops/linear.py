"""Contractions: mm / addmm as `linalg.matmul`, bmm as a batch-matmul `linalg.generic`; the
un-decomposed `linear` and `matmul` of torch.export's training IR lower to the same ops their
core-ATen decompositions give (view, transpose, mm/addmm/bmm)."""

from __future__ import annotations

import math

import torch
from torch.fx import Node
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from frontends.ops.registry import lowers, result_meta
from streamdsl.irbuild import IRBuilder, elt_of, shape_of

aten = torch.ops.aten


@lowers(aten.mm.default)
def mm(b: IRBuilder, node: Node, x, w):
    return b.matmul(x, w)


@lowers(aten.addmm.default)
def addmm(b: IRBuilder, node: Node, bias, x, w, beta=1, alpha=1):
    """beta * bias + alpha * (x @ w): the broadcast bias is the matmul's accumulator."""
    shape, elt = result_meta(node)
    if beta != 1:
        bias = b.elementwise(list(bias.type.get_shape()), elt, [bias, beta], lambda bb, v: bb.op(arith.MulfOp(*v)))
    if alpha != 1:
        x = b.elementwise(list(x.type.get_shape()), elt_of(x), [x, alpha], lambda bb, v: bb.op(arith.MulfOp(*v)))
    return b.matmul(x, w, init=b.broadcast_to(bias, shape))


@lowers(aten.bmm.default)
def bmm(b: IRBuilder, node: Node, x, y):
    return b.batch_matmul(x, y)


@lowers(aten.linear.default)
def linear(b: IRBuilder, node: Node, x, w, bias=None):
    """x @ w.T + bias with x's leading dims flattened into the matmul's rows."""
    shape, _ = result_meta(node)
    rows = b.reshape(x, [math.prod(shape_of(x)[:-1]), shape_of(x)[-1]])
    wt = b.transpose(w, [1, 0])
    init = None if bias is None else b.broadcast_to(bias, [shape_of(rows)[0], shape_of(wt)[1]])
    return b.reshape(b.matmul(rows, wt, init=init), shape)


@lowers(aten.matmul.default)
def matmul(b: IRBuilder, node: Node, x, y):
    return b.reshape(torch_matmul(b, x, y), result_meta(node)[0])


def torch_matmul(b: IRBuilder, x: SSAValue, y: SSAValue) -> SSAValue:
    """torch.matmul of operands of rank >= 2 (1-D ones get a unit dim, which the caller's
    reshape to torch's result shape drops): a 2-D right operand folds the left operand's batch
    dims into its rows; otherwise the batch dims broadcast and go through bmm."""
    if len(shape_of(x)) == 1:
        x = b.reshape(x, [1, shape_of(x)[0]])
    if len(shape_of(y)) == 1:
        y = b.reshape(y, [shape_of(y)[0], 1])
    (*xb, m, k), (*yb, _, n) = shape_of(x), shape_of(y)
    if not yb:
        return b.reshape(b.matmul(b.reshape(x, [math.prod(xb) * m, k]), y), [*xb, m, n])
    batch = list(torch.broadcast_shapes(tuple(xb), tuple(yb)))
    bs = math.prod(batch)
    x3 = b.reshape(b.broadcast_to(x, batch + [m, k]), [bs, m, k])
    y3 = b.reshape(b.broadcast_to(y, batch + [k, n]), [bs, k, n])
    return b.reshape(b.batch_matmul(x3, y3), [*batch, m, n])
