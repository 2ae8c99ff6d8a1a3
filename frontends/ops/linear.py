"""Contractions: mm / addmm as `linalg.matmul`, bmm as a batch-matmul `linalg.generic`."""

from __future__ import annotations

import torch
from torch.fx import Node
from xdsl.dialects import arith

from frontends.builder import IRBuilder, elt_of
from frontends.ops.registry import lowers, result_meta

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
