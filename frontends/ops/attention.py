"""`scaled_dot_product_attention` (Hugging Face's default `sdpa` attention) as the math it
stands for: softmax(q k^T * scale + mask) v, in the ops eager attention lowers to.

Lowered in torch.export's training IR, so a model with default attention needs no decomposition
(torch's decomposition of the op adds `any` / `full_like` guards for fully masked rows, which no
transformer mask produces: Hugging Face masks with the dtype's minimum, not -inf).
"""

from __future__ import annotations

import math

import torch
from torch.fx import Node
from xdsl.dialects import arith
from xdsl.dialects.builtin import i1
from xdsl.ir import SSAValue

from frontends.errors import FrontendError
from frontends.ops.linear import torch_matmul
from frontends.ops.reduce import softmax_of
from frontends.ops.registry import lowers, result_meta
from streamdsl.irbuild import Body, IRBuilder, elt_of, shape_of

aten = torch.ops.aten


def _repeat_heads(b: IRBuilder, x: SSAValue, heads: int) -> SSAValue:
    """(..., kv_heads, S, E) -> (..., heads, S, E), each KV head repeated for its query group
    (torch's enable_gqa: repeat_interleave over the head dim)."""
    *lead, kv, s, e = shape_of(x)
    if kv == heads:
        return x
    grown = b.broadcast_to(b.reshape(x, [*lead, kv, 1, s, e]), [*lead, kv, heads // kv, s, e])
    return b.reshape(grown, [*lead, heads, s, e])


def _causal(bb: Body, _values: list[SSAValue]) -> SSAValue:
    """Key j visible from query i iff j <= i (torch's top-left aligned causal mask)."""
    return bb.op(arith.CmpiOp(bb.index(1), bb.index(0), "ule"))


def _masked(b: IRBuilder, scores: SSAValue, allowed: SSAValue) -> SSAValue:
    elt = elt_of(scores)
    return b.elementwise(list(shape_of(scores)), elt, [allowed, scores],
                         lambda bb, v: bb.op(arith.SelectOp(v[0], v[1], bb.const(-math.inf, elt))),
                         compute_elt=[i1, elt])


@lowers(aten.scaled_dot_product_attention.default)
def scaled_dot_product_attention(b: IRBuilder, node: Node, q, k, v, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    if dropout_p:
        raise FrontendError(f"scaled_dot_product_attention (node {node.name}) with dropout_p={dropout_p}: "
                            "export the model in eval mode (model.eval()) so that attention dropout is off")
    shape, elt = result_meta(node)
    heads = shape_of(q)[-3] if len(shape_of(q)) >= 3 else 1
    if enable_gqa:
        k, v = _repeat_heads(b, k, heads), _repeat_heads(b, v, heads)
    rank = len(shape_of(k))
    scale = 1.0 / math.sqrt(shape_of(q)[-1]) if scale is None else scale
    scores = torch_matmul(b, q, b.transpose(k, [*range(rank - 2), rank - 1, rank - 2]))
    scores = b.elementwise(list(shape_of(scores)), elt, [scores, scale], lambda bb, x: bb.op(arith.MulfOp(*x)))
    if is_causal:
        scores = _masked(b, scores, b.elementwise(list(shape_of(scores)[-2:]), i1, [], _causal))
    if attn_mask is not None:
        if elt_of(attn_mask) == i1:
            scores = _masked(b, scores, attn_mask)
        else:
            scores = b.elementwise(list(shape_of(scores)), elt, [scores, attn_mask],
                                   lambda bb, x: bb.op(arith.AddfOp(*x)))
    return b.reshape(torch_matmul(b, softmax_of(b, scores, -1), v), shape)
