"""Emitting tile computations as `linalg` / `tensor` / `arith` / `math` ops on tile tensors.

Every op takes and returns `Tile`s (an SSA tensor value plus its static shape and dtype) and is
built by the core builder (`streamdsl.irbuild`, shared with the importer). Element-wise maths
becomes one `linalg.generic` per DSL operation whose body holds `arith`/`math` scalar ops;
broadcast operands (a size-1 dim, or a missing leading dim) read through indexing maps with a
constant `0` result, so the simulator and the HLS backend see plain affine maps. Reductions keep
their reduced dim (size 1), `@` is `linalg.fill` + `linalg.matmul`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import IndexType, TensorType, i64
from xdsl.ir import Block, Operation, SSAValue

from streamdsl.dtypes import DType
from streamdsl.irbuild import Body, IRBuilder, broadcast_shapes

__all__ = ["BodyBuilder", "Box", "Tile", "TileBuilder", "broadcast_shapes"]

BodyBuilder = Body  # a generic's body: `op(...)`, `const(value)` in the result's type
# A scalar body: maps the generic's block arguments (one per input) to the yielded value.
ScalarFn = Callable[[Body, Sequence[SSAValue]], SSAValue]


@dataclass(frozen=True)
class Tile:
    """A tile-sized tensor value during kernel compilation."""

    value: SSAValue
    shape: tuple[int, ...]
    dtype: DType

    def __str__(self) -> str:
        return f"tile {list(self.shape)} {self.dtype.name}"


class TileBuilder:
    """Emits ops at the end of `block` (the current insertion point of the kernel compiler)
    through the core builder, `streamdsl.irbuild.IRBuilder`, which the importer uses too."""

    def __init__(self, block: Block):
        self.block = block
        self.ir = IRBuilder(block)

    def emit(self, op: Operation) -> Operation:
        self.block.add_op(op)
        return op

    # -- constants and index arithmetic ---------------------------------------------------

    def index(self, value: int) -> SSAValue:
        return Body(self.block, IndexType()).const(value)

    def index_binop(self, kind: str, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
        cls = {"+": arith.AddiOp, "-": arith.SubiOp, "*": arith.MuliOp, "//": arith.FloorDivSIOp}[kind]
        return self.emit(cls(lhs, rhs)).results[0]

    def scalar(self, value: float, dtype: DType) -> SSAValue:
        return Body(self.block, dtype.ir()).const(value)

    def empty(self, shape: Sequence[int], dtype: DType) -> SSAValue:
        return self.ir.empty(shape, dtype.ir())

    def full(self, shape: Sequence[int], dtype: DType, value: float) -> Tile:
        return Tile(self.ir.fill(value, shape, dtype.ir()), tuple(shape), dtype)

    # -- linalg ---------------------------------------------------------------------------

    def elementwise(self, inputs: Sequence[Tile], out_shape: tuple[int, ...], dtype: DType, fn: ScalarFn) -> Tile:
        """`out[i] = fn(inputs broadcast to out_shape at i)`; `fn` receives one scalar per input
        (in its own type: nothing is cast)."""
        value = self.ir.elementwise(out_shape, dtype.ir(), [t.value for t in inputs], fn, [t.dtype.ir() for t in inputs])
        return Tile(value, out_shape, dtype)

    def reduce(self, x: Tile, axis: int, init: float, combine: type[Operation]) -> Tile:
        """Reduce `x` over `axis` with `combine(x, acc)`, keeping it as a size-1 dim."""
        out_shape = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
        return Tile(self.ir.reduce(x.value, [axis], combine, init, keepdims=True), out_shape, x.dtype)

    def transpose(self, x: Tile, perm: Sequence[int]) -> Tile:
        """Out dim d is input dim perm[d] (numpy's rule)."""
        return Tile(self.ir.transpose(x.value, perm), tuple(x.shape[p] for p in perm), x.dtype)

    def matmul(self, a: Tile, b: Tile) -> Tile:
        return Tile(self.ir.matmul(a.value, b.value), (a.shape[0], b.shape[1]), a.dtype)

    def iota(self, shape: tuple[int, ...], axis: int, dtype: DType) -> Tile:
        """`out[i] = i[axis]` as floats: a linalg.generic with no inputs reading `linalg.index`."""

        def body(b: Body, args: Sequence[SSAValue]) -> SSAValue:
            return b.op(arith.SIToFPOp(b.op(arith.IndexCastOp(b.index(axis), i64)), dtype.ir()))

        return Tile(self.ir.elementwise(shape, dtype.ir(), [], body), shape, dtype)

    def index_tile(self, index: SSAValue, dtype: DType) -> Tile:
        """A loop index (or index arithmetic) as a one-element tile of `dtype`, to broadcast."""
        value = self.emit(arith.SIToFPOp(self.emit(arith.IndexCastOp(index, i64)).results[0], dtype.ir())).results[0]
        return Tile(self.emit(tensor.SplatOp(value, [], TensorType(dtype.ir(), [1]))).results[0], (1,), dtype)

    def batch_matmul(self, a: Tile, b: Tile, acc: DType | None = None) -> Tile:
        """`a @ b` over leading batch dims (none for 2-d tiles; one linalg.generic, the innermost
        dim a reduction), accumulated in `acc` (default: a's dtype; integers sign-extend to it)."""
        dtype = acc or a.dtype
        value = self.ir.batch_matmul(a.value, b.value, dtype.ir())
        return Tile(value, (*a.shape[:-2], a.shape[-2], b.shape[-1]), dtype)

    # -- tensor ops -----------------------------------------------------------------------

    def reshape(self, x: Tile, shape: tuple[int, ...]) -> Tile:
        """Row-major, like numpy."""
        return Tile(self.ir.reshape(x.value, shape), shape, x.dtype)

    def extract(self, buf: Tile, region: Box) -> Tile:
        """`buf[i, 2:6]`: the slice at `region` (indexed dims dropped, as numpy does)."""
        return Tile(self.ir.extract_slice(buf.value, region.offsets, region.sizes, shape=region.shape), region.shape, buf.dtype)

    def insert(self, buf: Tile, region: Box, value: Tile) -> Tile:
        """`buf[i, 2:6] = value`: a new buffer value with the slice replaced."""
        return Tile(self.ir.insert_slice(buf.value, value.value, region.offsets, region.sizes), buf.shape, buf.dtype)

    def concat(self, parts: Sequence[Tile], axis: int) -> Tile:
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        return Tile(self.ir.concat([p.value for p in parts], axis), tuple(shape), parts[0].dtype)


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
