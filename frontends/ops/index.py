"""Gathers: embedding and index_select, as generics that `tensor.extract` from the table."""

from __future__ import annotations

import torch
from torch.fx import Node
from xdsl.dialects import tensor
from xdsl.ir import SSAValue

from frontends.builder import PARALLEL, Body, IRBuilder, affine_map, elt_of, shape_of
from frontends.ops.registry import lowers, result_meta

aten = torch.ops.aten


def _gather(b: IRBuilder, node: Node, table: SSAValue, idx: SSAValue, dim: int) -> SSAValue:
    """out[pre.., i.., post..] = table[pre.., idx[i..], post..] for a gather along `dim`."""
    shape, elt = result_meta(node)
    idx_rank = len(shape_of(idx))
    idx_map = affine_map(len(shape), range(dim, dim + idx_rank))
    post = len(shape_of(table)) - dim - 1

    def body(bb: Body, args: list[SSAValue]) -> SSAValue:
        pre_ix = [bb.index(d) for d in range(dim)]
        post_ix = [bb.index(dim + idx_rank + d) for d in range(post)]
        row = bb.to_index(args[0])
        return bb.op(tensor.ExtractOp(table, pre_ix + [row] + post_ix, elt_of(table)))

    return b.generic([(idx, idx_map)], shape, elt, [PARALLEL] * len(shape), body)


@lowers(aten.embedding.default)
def embedding(b: IRBuilder, node: Node, weight, indices, padding_idx=-1, scale_grad=False, sparse=False):
    return _gather(b, node, weight, indices, 0)


@lowers(aten.index_select.default)
def index_select(b: IRBuilder, node: Node, x, dim, index):
    return _gather(b, node, x, index, dim % len(shape_of(x)))
