"""Views and data movement: reshape, permute, expand, slice, select, cat, split."""

from __future__ import annotations

import operator

import torch
from torch.fx import Node

from frontends.ops.registry import lowers, result_meta
from streamdsl.irbuild import IRBuilder, shape_of

aten = torch.ops.aten


@lowers(aten.view.default, aten._unsafe_view.default, aten.reshape.default,
        aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
        aten.flatten.using_ints)
def reshape(b: IRBuilder, node: Node, x, *args):
    return b.reshape(x, result_meta(node)[0])


@lowers(aten.permute.default)
def permute(b: IRBuilder, node: Node, x, dims):
    return b.transpose(x, dims)


@lowers(aten.t.default)
def t(b: IRBuilder, node: Node, x):
    return b.transpose(x, list(reversed(range(len(shape_of(x))))))


@lowers(aten.transpose.int)
def transpose(b: IRBuilder, node: Node, x, dim0, dim1):
    perm = list(range(len(shape_of(x))))
    perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
    return b.transpose(x, perm)


@lowers(aten.expand.default)
def expand(b: IRBuilder, node: Node, x, size, implicit=False):
    return b.broadcast_to(x, result_meta(node)[0])


def _slice(b: IRBuilder, x, dim: int, start: int, end: int, step: int):
    shape = list(shape_of(x))
    dim %= len(shape)
    start, end, step = slice(start, end, step).indices(shape[dim])
    offsets = [0] * len(shape)
    sizes, strides = list(shape), [1] * len(shape)
    offsets[dim], sizes[dim], strides[dim] = start, len(range(start, end, step)), step
    return b.extract_slice(x, offsets, sizes, strides)


@lowers(aten.slice.Tensor)
def slice_tensor(b: IRBuilder, node: Node, x, dim=0, start=None, end=None, step=1):
    return _slice(b, x, dim, start, end, step)


@lowers(aten.select.int)
def select(b: IRBuilder, node: Node, x, dim, index):
    index %= shape_of(x)[dim % len(shape_of(x))]
    return b.reshape(_slice(b, x, dim, index, index + 1, 1), result_meta(node)[0])


@lowers(aten.cat.default)
def cat(b: IRBuilder, node: Node, tensors, dim=0):
    return b.concat(tensors, dim)


def _split(b: IRBuilder, x, sizes: list[int], dim: int):
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return tuple(_slice(b, x, dim, s, s + n, 1) for s, n in zip(starts, sizes))


@lowers(aten.split_with_sizes.default)
def split_with_sizes(b: IRBuilder, node: Node, x, sizes, dim=0):
    return _split(b, x, list(sizes), dim)


@lowers(aten.split.Tensor)
def split(b: IRBuilder, node: Node, x, size, dim=0):
    total = shape_of(x)[dim % len(shape_of(x))]
    return _split(b, x, [min(size, total - s) for s in range(0, total, size)], dim)


@lowers(operator.getitem)
def getitem(b: IRBuilder, node: Node, values, index):
    return values[index]
