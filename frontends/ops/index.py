"""Gathers: embedding, index_select and advanced indexing, as generics that `tensor.extract`
from the table."""

from __future__ import annotations

import torch
from torch.fx import Node
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import IndexType
from xdsl.ir import SSAValue

from frontends.ops.registry import lowers, result_meta
from streamdsl.irbuild import PARALLEL, Body, IRBuilder, affine_map, elt_of, shape_of

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


def _wrap(bb: Body, idx: SSAValue, size: int) -> SSAValue:
    """Python-style negative index: idx < 0 ? idx + size : idx, as an index value."""
    i = bb.to_index(idx)
    zero, n = bb.op(arith.ConstantOp.from_int_and_width(0, IndexType())), bb.op(
        arith.ConstantOp.from_int_and_width(size, IndexType()))
    return bb.op(arith.SelectOp(bb.op(arith.CmpiOp(i, zero, "slt")), bb.op(arith.AddiOp(i, n)), i))


@lowers(aten.index.Tensor)
def index_tensor(b: IRBuilder, node: Node, x, indices):
    """Advanced indexing x[..., i, j, ...]: the index tensors broadcast together; their dims go
    where the first indexed dim was if the indexed dims are adjacent, else in front (numpy's
    rule)."""
    shape, elt = result_meta(node)
    src = shape_of(x)
    indexed = [d for d, t in enumerate(indices) if t is not None]
    tensors = [indices[d] for d in indexed]
    rank = max(len(shape_of(t)) for t in tensors)
    adjacent = indexed == list(range(indexed[0], indexed[-1] + 1))
    first = indexed[0] if adjacent else 0  # out position of the broadcast index dims
    bshape = shape[first:first + rank]
    ins = []
    for t in tensors:
        lead = rank - len(shape_of(t))
        results = ["0" if s == 1 and bshape[lead + j] != 1 else first + lead + j for j, s in enumerate(shape_of(t))]
        ins.append((t, affine_map(len(shape), results)))
    rest = iter(d for d in range(len(shape)) if not first <= d < first + rank)  # out dims of unindexed src dims

    def body(bb: Body, args: list[SSAValue]) -> SSAValue:
        where = dict(zip(indexed, args))
        coords = [_wrap(bb, where[d], src[d]) if d in where else bb.index(next(rest)) for d in range(len(src))]
        return bb.op(tensor.ExtractOp(x, coords, elt_of(x)))

    return b.generic(ins, shape, elt, [PARALLEL] * len(shape), body)
