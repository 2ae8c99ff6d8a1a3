"""Emitting tile computations as `linalg` / `tensor` / `arith` / `math` ops on tile tensors.

Every op takes and returns `Tile`s (an SSA tensor value plus its static shape and dtype). Element-wise
maths becomes one `linalg.generic` per DSL operation whose body holds `arith`/`math` scalar ops;
broadcast operands (a size-1 dim, or a missing leading dim) read through indexing maps with a
constant `0` result, so the simulator and the HLS backend see plain affine maps. Reductions keep
their reduced dim (size 1), `@` is `linalg.fill` + `linalg.matmul`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, tensor
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import (
    AffineMapAttr,
    DenseArrayBase,
    FloatAttr,
    IndexType,
    IntegerAttr,
    TensorType,
    i64,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.dialects.linalg.attrs import IteratorTypeAttr

from streamdsl.dtypes import DType

__all__ = ["Box", "Tile", "TileBuilder", "broadcast_shapes"]

DYNAMIC_INDEX = -(2**63)


@dataclass(frozen=True)
class Tile:
    """A tile-sized tensor value during kernel compilation."""

    value: SSAValue
    shape: tuple[int, ...]
    dtype: DType

    def __str__(self) -> str:
        return f"tile {list(self.shape)} {self.dtype.name}"


def tensor_type(shape: Sequence[int], dtype: DType) -> TensorType:
    return TensorType(dtype.ir(), list(shape))


def broadcast_shapes(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    """numpy broadcasting (right-aligned, size-1 dims stretch); None if incompatible."""
    rank = max(len(s) for s in shapes)
    out = []
    for d in range(rank):
        sizes = {s[d - rank + len(s)] for s in shapes if d - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


# A scalar body: maps the generic's block arguments (one per input) to the yielded value.
ScalarFn = Callable[["BodyBuilder", Sequence[SSAValue]], SSAValue]


class BodyBuilder:
    """Appends scalar ops to a linalg.generic body."""

    def __init__(self, block: Block, dtype: DType):
        self.block, self.dtype = block, dtype

    def op(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def const(self, value: float) -> SSAValue:
        return self.op(arith.ConstantOp(FloatAttr(float(value), self.dtype.ir())))


class TileBuilder:
    """Emits ops at the end of `block` (the current insertion point of the kernel compiler)."""

    def __init__(self, block: Block):
        self.block = block

    def emit(self, op: Operation) -> Operation:
        self.block.add_op(op)
        return op

    # -- constants and index arithmetic ---------------------------------------------------

    def index(self, value: int) -> SSAValue:
        return self.emit(arith.ConstantOp(IntegerAttr(value, IndexType()))).results[0]

    def index_binop(self, kind: str, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
        cls = {"+": arith.AddiOp, "-": arith.SubiOp, "*": arith.MuliOp}[kind]
        return self.emit(cls(lhs, rhs)).results[0]

    def scalar(self, value: float, dtype: DType) -> SSAValue:
        return self.emit(arith.ConstantOp(FloatAttr(float(value), dtype.ir()))).results[0]

    def empty(self, shape: Sequence[int], dtype: DType) -> SSAValue:
        return self.emit(tensor.EmptyOp([], tensor_type(shape, dtype))).results[0]

    def full(self, shape: Sequence[int], dtype: DType, value: float) -> Tile:
        fill = linalg.FillOp([self.scalar(value, dtype)], [self.empty(shape, dtype)], [tensor_type(shape, dtype)])
        return Tile(self.emit(fill).results[0], tuple(shape), dtype)

    # -- linalg.generic -------------------------------------------------------------------

    def _generic(
        self,
        inputs: Sequence[Tile],
        in_maps: Sequence[AffineMap],
        init: SSAValue,
        out_shape: tuple[int, ...],
        out_map: AffineMap,
        iterators: Sequence[IteratorTypeAttr],
        dtype: DType,
        body: Callable[[BodyBuilder, Sequence[SSAValue]], SSAValue],
    ) -> Tile:
        block = Block(arg_types=[t.dtype.ir() for t in inputs] + [dtype.ir()])
        result = body(BodyBuilder(block, dtype), block.args)
        block.add_op(linalg.YieldOp(result))
        op = linalg.GenericOp(
            [t.value for t in inputs],
            [init],
            Region(block),
            [AffineMapAttr(m) for m in (*in_maps, out_map)],
            list(iterators),
            [tensor_type(out_shape, dtype)],
        )
        return Tile(self.emit(op).results[0], out_shape, dtype)

    def elementwise(self, inputs: Sequence[Tile], out_shape: tuple[int, ...], dtype: DType, fn: ScalarFn) -> Tile:
        """`out[i] = fn(inputs broadcast to out_shape at i)`; `fn` receives one scalar per input."""
        rank = len(out_shape)
        maps = [_broadcast_map(t.shape, out_shape) for t in inputs]
        return self._generic(
            inputs,
            maps,
            self.empty(out_shape, dtype),
            out_shape,
            AffineMap.identity(rank),
            [IteratorTypeAttr.parallel()] * rank,
            dtype,
            lambda b, args: fn(b, args[: len(inputs)]),
        )

    def reduce(self, x: Tile, axis: int, init: float, combine: ScalarFn) -> Tile:
        """Reduce `x` over `axis`, keeping it as a size-1 dim."""
        rank = len(x.shape)
        out_shape = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
        out_map = AffineMap(
            rank, 0, tuple(AffineExpr.constant(0) if d == axis else AffineExpr.dimension(d) for d in range(rank))
        )
        iterators = [IteratorTypeAttr.reduction() if d == axis else IteratorTypeAttr.parallel() for d in range(rank)]
        acc = self.full(out_shape, x.dtype, init).value
        return self._generic(
            [x], [AffineMap.identity(rank)], acc, out_shape, out_map, iterators, x.dtype, lambda b, args: combine(b, args)
        )

    def transpose(self, x: Tile, perm: Sequence[int]) -> Tile:
        """`out[i_0..] = x[i_perm^-1 ...]`, i.e. out dim d is input dim perm[d] (numpy's rule)."""
        rank = len(perm)
        out_shape = tuple(x.shape[p] for p in perm)
        in_map = AffineMap(rank, 0, tuple(AffineExpr.dimension(perm.index(d)) for d in range(rank)))
        return self._generic(
            [x],
            [in_map],
            self.empty(out_shape, x.dtype),
            out_shape,
            AffineMap.identity(rank),
            [IteratorTypeAttr.parallel()] * rank,
            x.dtype,
            lambda b, args: args[0],
        )

    # -- named ops and tensor ops ---------------------------------------------------------

    def matmul(self, a: Tile, b: Tile) -> Tile:
        out_shape = (a.shape[0], b.shape[1])
        acc = self.full(out_shape, a.dtype, 0.0)
        op = linalg.MatmulOp([a.value, b.value], [acc.value], [tensor_type(out_shape, a.dtype)])
        return Tile(self.emit(op).results[0], out_shape, a.dtype)

    def reshape(self, x: Tile, shape: tuple[int, ...]) -> Tile:
        """`tensor.reshape` with a constant shape operand (row-major, like numpy)."""
        from xdsl.dialects.builtin import DenseIntOrFPElementsAttr

        shape_type = TensorType(i64, [len(shape)])
        shape_val = self.emit(arith.ConstantOp(DenseIntOrFPElementsAttr.from_list(shape_type, list(shape)))).results[0]
        op = tensor.ReshapeOp(x.value, shape_val, tensor_type(shape, x.dtype))
        return Tile(self.emit(op).results[0], shape, x.dtype)

    def extract(self, buf: Tile, region: Box) -> Tile:
        """`buf[i, 2:6]`: the slice at `region` (indexed dims dropped, as numpy does)."""
        op = tensor.ExtractSliceOp.build(
            operands=[buf.value, region.dynamic, [], []],
            result_types=[tensor_type(region.shape, buf.dtype)],
            properties=region.properties(),
        )
        return Tile(self.emit(op).results[0], region.shape, buf.dtype)

    def insert(self, buf: Tile, region: Box, value: Tile) -> Tile:
        """`buf[i, 2:6] = value`: a new buffer value with the slice replaced."""
        op = tensor.InsertSliceOp.build(
            operands=[value.value, buf.value, region.dynamic, [], []],
            result_types=[buf.value.type],
            properties=region.properties(),
        )
        return Tile(self.emit(op).results[0], buf.shape, buf.dtype)

    def concat(self, parts: Sequence[Tile], axis: int) -> Tile:
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        op = tensor.ConcatOp([p.value for p in parts], axis, tensor_type(shape, parts[0].dtype))
        return Tile(self.emit(op).results[0], tuple(shape), parts[0].dtype)

    def iota(self, shape: tuple[int, ...], axis: int, dtype: DType) -> Tile:
        """`out[i] = i[axis]` as floats: a linalg.generic with no inputs reading `linalg.index`."""
        rank = len(shape)

        def body(b: BodyBuilder, args: Sequence[SSAValue]) -> SSAValue:
            return b.op(arith.SIToFPOp(b.op(arith.IndexCastOp(b.op(linalg.IndexOp(axis)), i64)), dtype.ir()))

        return self._generic([], [], self.empty(shape, dtype), shape, AffineMap.identity(rank),
                             [IteratorTypeAttr.parallel()] * rank, dtype, body)

    def index_tile(self, index: SSAValue, dtype: DType) -> Tile:
        """A loop index (or index arithmetic) as a one-element tile of `dtype`, to broadcast."""
        value = self.emit(arith.SIToFPOp(self.emit(arith.IndexCastOp(index, i64)).results[0], dtype.ir())).results[0]
        return Tile(self.emit(tensor.SplatOp(value, [], tensor_type((1,), dtype))).results[0], (1,), dtype)

    def batch_matmul(self, a: Tile, b: Tile) -> Tile:
        """`a @ b` over leading batch dims: out[..., i, j] += a[..., i, k] * b[..., k, j] (one
        linalg.generic, the innermost dim a reduction)."""
        batch = a.shape[:-2]
        rank = len(batch) + 3
        lead = [AffineExpr.dimension(d) for d in range(len(batch))]
        i, j, k = (AffineExpr.dimension(len(batch) + n) for n in range(3))
        maps = [AffineMap(rank, 0, (*lead, i, k)), AffineMap(rank, 0, (*lead, k, j))]
        out_shape = (*batch, a.shape[-2], b.shape[-1])
        iterators = [IteratorTypeAttr.parallel()] * (rank - 1) + [IteratorTypeAttr.reduction()]

        def body(bb: BodyBuilder, args: Sequence[SSAValue]) -> SSAValue:
            return bb.op(arith.AddfOp(args[2], bb.op(arith.MulfOp(args[0], args[1]))))

        acc = self.full(out_shape, a.dtype, 0.0).value
        return self._generic([a, b], maps, acc, out_shape, AffineMap(rank, 0, (*lead, i, j)), iterators, a.dtype, body)


@dataclass(frozen=True)
class Box:
    """A static-size box of a tile or buffer: one offset (int, or an SSA index) and size per dim;
    `dropped` dims (indexed by an int, not a slice) are left out of the result shape."""

    offsets: tuple[SSAValue | int, ...]
    sizes: tuple[int, ...]
    dropped: frozenset[int]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s for d, s in enumerate(self.sizes) if d not in self.dropped)

    @property
    def dynamic(self) -> list[SSAValue]:
        return [o for o in self.offsets if isinstance(o, SSAValue)]

    def properties(self) -> dict[str, DenseArrayBase]:
        static = [DYNAMIC_INDEX if isinstance(o, SSAValue) else o for o in self.offsets]
        return {
            "static_offsets": DenseArrayBase.from_list(i64, static),
            "static_sizes": DenseArrayBase.from_list(i64, list(self.sizes)),
            "static_strides": DenseArrayBase.from_list(i64, [1] * len(self.sizes)),
        }


def _broadcast_map(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> AffineMap:
    """Read a right-aligned operand of `shape` at an output point: size-1 dims read index 0."""
    rank, lead = len(out_shape), len(out_shape) - len(shape)
    results = tuple(
        AffineExpr.constant(0) if s == 1 and out_shape[lead + d] != 1 else AffineExpr.dimension(lead + d)
        for d, s in enumerate(shape)
    )
    return AffineMap(rank, 0, results)
