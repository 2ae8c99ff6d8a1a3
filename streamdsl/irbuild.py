"""Building linalg on tensors: the one IR builder of the DSL's kernel compiler and the importer.

Every `IRBuilder` method appends ops to one block and returns the new tensor value; `Body` appends
scalar `arith` / `math` ops to a `linalg.generic` body. Conventions (the simulator, the timing
model and the HLS backend rely on them):
- `linalg.generic` maps are projected permutations, possibly with constant-0 results for
  broadcast unit dims; parallel generics write through the identity map.
- a reduction generic's body ends in `yield combine(x, acc)` where `acc` is the output block
  argument and `combine` is an associative op (`streamdsl.opinfo` names the combiners).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AffineMapAttr,
    AnyFloat,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    TensorType,
    i1,
    i64,
)
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.linalg.attrs import IteratorTypeAttr
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

__all__ = [
    "PARALLEL",
    "REDUCTION",
    "Body",
    "IRBuilder",
    "affine_map",
    "broadcast_map",
    "broadcast_shapes",
    "elt_of",
    "is_float",
    "reassociation",
    "reassociation_attr",
    "shape_of",
]

PARALLEL = IteratorTypeAttr.parallel()
REDUCTION = IteratorTypeAttr.reduction()


def is_float(elt: Attribute) -> bool:
    return isinstance(elt, AnyFloat)


def shape_of(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType), value.type
    return tuple(value.type.get_shape())


def elt_of(value: SSAValue) -> Attribute:
    return value.type.get_element_type() if isinstance(value.type, TensorType) else value.type


def affine_map(num_dims: int, results: Sequence[int | str]) -> AffineMapAttr:
    """`results` holds a loop index per result, or the string "0" for a constant-0 result."""
    exprs = tuple(AffineExpr.constant(0) if r == "0" else AffineExpr.dimension(r) for r in results)
    return AffineMapAttr(AffineMap(num_dims, 0, exprs))


def broadcast_map(shape: Sequence[int], out_shape: Sequence[int]) -> AffineMapAttr:
    """Numpy-style broadcast of `shape` (aligned right) into `out_shape`."""
    lead = len(out_shape) - len(shape)
    results = ["0" if s == 1 and out_shape[lead + j] != 1 else lead + j for j, s in enumerate(shape)]
    return affine_map(len(out_shape), results)


def broadcast_shapes(shapes: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    """numpy broadcasting (right-aligned, size-1 dims stretch); None if incompatible."""
    rank = max(len(s) for s in shapes)
    out = []
    for d in range(rank):
        sizes = {s[d - rank + len(s)] for s in shapes if d - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class Body:
    """Appends scalar arith/math ops to a generic's body block; constants default to `elt` (the
    generic's result element type)."""

    def __init__(self, block: Block, elt: Attribute | None = None):
        self.block, self.elt = block, elt

    def op(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def const(self, value: float | int | bool, elt: Attribute | None = None) -> SSAValue:
        elt = elt or self.elt
        assert elt is not None, "Body.const needs an element type"
        attr = FloatAttr(float(value), elt) if is_float(elt) else IntegerAttr(int(value), elt)
        return self.op(arith.ConstantOp(attr))

    def index(self, dim: int) -> SSAValue:
        return self.op(linalg.IndexOp(dim))

    def cast(self, value: SSAValue, to: Attribute) -> SSAValue:
        """Torch conversion semantics: to bool is `!= 0`, from bool is 0/1, float->int truncates."""
        src = value.type
        if src == to:
            return value
        if to == i1:
            zero = self.const(0, src)
            if is_float(src):
                return self.op(arith.CmpfOp(value, zero, "une"))
            return self.op(arith.CmpiOp(value, zero, "ne"))
        if is_float(src) and is_float(to):
            grow = to.bitwidth > src.bitwidth
            return self.op(arith.ExtFOp(value, to) if grow else arith.TruncFOp(value, to))
        if is_float(to):
            return self.op(arith.UIToFPOp(value, to) if src == i1 else arith.SIToFPOp(value, to))
        if is_float(src):
            return self.op(arith.FPToSIOp(value, to))
        assert isinstance(src, IntegerType) and isinstance(to, IntegerType)
        if to.width.data > src.width.data:
            return self.op(arith.ExtUIOp(value, to) if src == i1 else arith.ExtSIOp(value, to))
        return self.op(arith.TruncIOp(value, to))

    def to_index(self, value: SSAValue) -> SSAValue:
        return self.op(arith.IndexCastOp(value, IndexType()))


Operand = SSAValue | float | int | bool
BodyFn = Callable[[Body, list[SSAValue]], SSAValue]


class IRBuilder:
    """Appends linalg/tensor ops to `block`; every method returns the resulting tensor value."""

    def __init__(self, block: Block):
        self.block = block

    def add(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    # -- creation -------------------------------------------------------------------------------
    def empty(self, shape: Sequence[int], elt: Attribute) -> SSAValue:
        return self.add(tensor.EmptyOp([], TensorType(elt, list(shape))))

    def fill(self, value: float | int | bool, shape: Sequence[int], elt: Attribute) -> SSAValue:
        scalar = Body(self.block).const(value, elt)
        return self.add(linalg.FillOp([scalar], [self.empty(shape, elt)]))

    # -- structured ops -------------------------------------------------------------------------
    def generic(
        self,
        ins: Sequence[tuple[SSAValue, AffineMapAttr]],
        out_shape: Sequence[int],
        out_elt: Attribute,
        iterators: Sequence[IteratorTypeAttr],
        body: BodyFn,
        init: SSAValue | None = None,
        out_map: AffineMapAttr | None = None,
    ) -> SSAValue:
        """One linalg.generic; `body(b, args)` gets the block args (ins, then out) and returns the
        value to yield."""
        init = init if init is not None else self.empty(out_shape, out_elt)
        out_map = out_map or affine_map(len(iterators), range(len(iterators)))
        block = Block(arg_types=[elt_of(v) for v, _ in ins] + [out_elt])
        b = Body(block, out_elt)
        block.add_op(linalg.YieldOp(body(b, list(block.args))))
        op = linalg.GenericOp(
            [v for v, _ in ins], [init], Region(block), [m for _, m in ins] + [out_map],
            list(iterators), [init.type],
        )
        return self.add(op)

    def elementwise(
        self, out_shape: Sequence[int], out_elt: Attribute, operands: Sequence[Operand],
        fn: Callable[[Body, list[SSAValue]], SSAValue],
        compute_elt: Attribute | list[Attribute] | None = None,
    ) -> SSAValue:
        """A broadcasting elementwise generic. Tensor operands are broadcast numpy-style; Python
        scalars become constants in the body. Operands are cast to `compute_elt` (one type, or
        one per operand; default: the output type) before `fn`, and the result to `out_elt`."""
        computes = compute_elt if isinstance(compute_elt, list) else [compute_elt or out_elt] * len(operands)
        tensors = [v for v in operands if isinstance(v, SSAValue)]
        ins = [(v, broadcast_map(shape_of(v), out_shape)) for v in tensors]

        def body(b: Body, args: list[SSAValue]) -> SSAValue:
            it = iter(args)
            vals = [b.cast(next(it), c) if isinstance(v, SSAValue) else b.const(v, c)
                    for v, c in zip(operands, computes, strict=True)]
            return b.cast(fn(b, vals), out_elt)

        return self.generic(ins, out_shape, out_elt, [PARALLEL] * len(out_shape), body)

    def reduce(self, x: SSAValue, dims: Sequence[int], combine: type[Operation], init: float,
               pre: Callable[[Body, SSAValue], SSAValue] | None = None, keepdims: bool = False) -> SSAValue:
        """Reduces `x` over `dims` with `combine(x, acc)` starting at `init`; `pre` maps each
        element first. The reduced dims are dropped, or kept with size 1 (`keepdims`)."""
        shape = shape_of(x)
        dims = sorted(d % len(shape) for d in dims)
        kept = [i for i in range(len(shape)) if i not in dims]
        out_dims: list[int | str] = ["0" if i in dims else i for i in range(len(shape))] if keepdims else list(kept)
        out_shape = [1 if d == "0" else shape[d] for d in out_dims]  # type: ignore[index]
        elt = elt_of(x)
        acc = self.fill(init, out_shape, elt)
        iterators = [REDUCTION if i in dims else PARALLEL for i in range(len(shape))]

        def body(b: Body, args: list[SSAValue]) -> SSAValue:
            val = pre(b, args[0]) if pre else args[0]
            return b.op(combine(val, args[1]))

        return self.generic([(x, affine_map(len(shape), range(len(shape))))], out_shape, elt,
                            iterators, body, init=acc, out_map=affine_map(len(shape), out_dims))

    def matmul(self, a: SSAValue, b: SSAValue, init: SSAValue | None = None) -> SSAValue:
        (m, _), (_, n) = shape_of(a), shape_of(b)
        init = init if init is not None else self.fill(0.0, [m, n], elt_of(a))
        return self.add(linalg.MatmulOp([a, b], [init]))

    def batch_matmul(self, a: SSAValue, b: SSAValue, acc_elt: Attribute | None = None) -> SSAValue:
        """(..., M, K) x (..., K, N) over equal leading batch dims (none for a plain matmul): one
        generic whose innermost loop is the reduction (xDSL 0.75 has no linalg.batch_matmul).
        Integer operands are sign-extended to the integer `acc_elt` (default: a's type) before
        `muli` / `addi`, so an i8 x i4 product accumulates exactly in i32."""
        *batch, m, _ = shape_of(a)
        n = shape_of(b)[-1]
        lead, (i, j, k) = list(range(len(batch))), (len(batch), len(batch) + 1, len(batch) + 2)
        rank, out_shape, elt = len(batch) + 3, [*batch, m, n], acc_elt or elt_of(a)
        maps = [affine_map(rank, [*lead, i, k]), affine_map(rank, [*lead, k, j])]

        def body(bb: Body, args: list[SSAValue]) -> SSAValue:
            if is_float(elt):
                return bb.op(arith.AddfOp(args[2], bb.op(arith.MulfOp(args[0], args[1]))))
            product = bb.op(arith.MuliOp(bb.cast(args[0], elt), bb.cast(args[1], elt)))
            return bb.op(arith.AddiOp(args[2], product))

        return self.generic(
            list(zip([a, b], maps)), out_shape, elt, [PARALLEL] * (rank - 1) + [REDUCTION], body,
            init=self.fill(0, out_shape, elt), out_map=affine_map(rank, [*lead, i, j]),
        )

    # -- data movement --------------------------------------------------------------------------
    def transpose(self, x: SSAValue, perm: Sequence[int]) -> SSAValue:
        perm = [p % len(perm) for p in perm]
        if perm == sorted(perm):
            return x
        shape = shape_of(x)
        init = self.empty([shape[p] for p in perm], elt_of(x))
        return self.add(linalg.TransposeOp(x, init, DenseArrayBase.from_list(i64, perm)))

    def reshape(self, x: SSAValue, shape: Sequence[int]) -> SSAValue:
        """expand_shape / collapse_shape, or a collapse to 1-D then an expand when neither fits."""
        src = shape_of(x)
        shape = list(shape)
        if list(src) == shape:
            return x
        # Rank 0 <-> all-unit dims: xDSL's expand/collapse verifiers reject empty reassociations.
        if not src:
            return self.broadcast_to(x, shape)
        if not shape:
            return self.extract_slice(x, [0] * len(src), src, shape=[])
        if (groups := _reassociation(src, shape)) is not None:
            return self.add(tensor.CollapseShapeOp.build(
                operands=[x], result_types=[TensorType(elt_of(x), shape)],
                properties={"reassociation": reassociation_attr(groups)}))
        if (groups := _reassociation(shape, src)) is not None:
            return self.add(tensor.ExpandShapeOp(x, [], reassociation_attr(groups), shape,
                                                      TensorType(elt_of(x), shape)))
        flat = self.reshape(x, [math.prod(src)])
        return self.reshape(flat, shape)

    def broadcast_to(self, x: SSAValue, shape: Sequence[int]) -> SSAValue:
        """torch `expand`: drop the unit dims that grow, then one linalg.broadcast."""
        src = shape_of(x)
        shape = list(shape)
        if list(src) == shape:
            return x
        lead = len(shape) - len(src)
        added = list(range(lead)) + [lead + j for j, s in enumerate(src) if s != shape[lead + j]]
        kept = [s for j, s in enumerate(src) if lead + j not in added]
        x = self.reshape(x, kept)
        init = self.empty(shape, elt_of(x))
        return self.add(linalg.BroadcastOp(x, init, DenseArrayBase.from_list(i64, added)))

    def extract_slice(self, x: SSAValue, offsets: Sequence[SSAValue | int], sizes: Sequence[int],
                      strides: Sequence[int] | None = None, shape: Sequence[int] | None = None) -> SSAValue:
        """`x[offsets : offsets + sizes : strides]`, offsets ints or SSA `index` values; `shape`
        (default `sizes`) may leave out unit dims (a rank-reducing slice)."""
        strides = list(strides or [1] * len(sizes))
        shape = list(sizes if shape is None else shape)
        if list(offsets) == [0] * len(offsets) and list(sizes) == list(shape_of(x)) == shape and set(strides) <= {1}:
            return x
        return self.add(tensor.ExtractSliceOp.build(
            operands=[x, [o for o in offsets if isinstance(o, SSAValue)], [], []],
            result_types=[TensorType(elt_of(x), shape)], properties=_slice(offsets, sizes, strides)))

    def insert_slice(self, dest: SSAValue, value: SSAValue, offsets: Sequence[SSAValue | int],
                     sizes: Sequence[int], strides: Sequence[int] | None = None) -> SSAValue:
        """`dest` with `value` written at `offsets` (a new tensor value: tensors are immutable)."""
        strides = list(strides or [1] * len(sizes))
        return self.add(tensor.InsertSliceOp.build(
            operands=[value, dest, [o for o in offsets if isinstance(o, SSAValue)], [], []],
            result_types=[dest.type], properties=_slice(offsets, sizes, strides)))

    def concat(self, values: Sequence[SSAValue], dim: int) -> SSAValue:
        shape, elt = list(shape_of(values[0])), elt_of(values[0])
        dim %= len(shape)
        shape[dim] = sum(shape_of(v)[dim] for v in values)
        values = [v for v in values if math.prod(shape_of(v))]  # e.g. an empty KV cache
        if len(values) <= 1:
            return values[0] if values else self.empty(shape, elt)
        return self.add(tensor.ConcatOp(values, dim, TensorType(elt, shape)))


def _slice(offsets: Sequence[SSAValue | int], sizes: Sequence[int], strides: Sequence[int]) -> dict[str, DenseArrayBase]:
    static = [DYNAMIC_INDEX if isinstance(o, SSAValue) else o for o in offsets]
    return {
        "static_offsets": DenseArrayBase.from_list(i64, static),
        "static_sizes": DenseArrayBase.from_list(i64, list(sizes)),
        "static_strides": DenseArrayBase.from_list(i64, list(strides)),
    }


def _reassociation(fine: Sequence[int], coarse: Sequence[int]) -> list[list[int]] | None:
    """Groups of consecutive `fine` dims whose products are the `coarse` dims, or None."""
    if len(fine) < len(coarse) or math.prod(fine) != math.prod(coarse):
        return None
    if not coarse:
        return []
    groups: list[list[int]] = []
    i = 0
    for c in coarse:
        if i == len(fine):
            return None
        group, prod = [i], fine[i]
        i += 1
        while prod < c and i < len(fine):
            group.append(i)
            prod *= fine[i]
            i += 1
        if prod != c:
            return None
        groups.append(group)
    # Trailing unit dims join the last group.
    groups[-1].extend(range(i, len(fine)))
    return groups


def reassociation_attr(groups: Sequence[Sequence[int]]) -> ArrayAttr:
    """The `reassociation` attribute of an expand_shape / collapse_shape with these dim groups."""
    return ArrayAttr([ArrayAttr([IntegerAttr(i, i64) for i in g]) for g in groups])


def reassociation(op: tensor.ExpandShapeOp | tensor.CollapseShapeOp) -> list[list[int]]:
    """The dim groups of a reshape's `reassociation` (each collapsed dim's source dims)."""
    return [[i.value.data for i in group] for group in op.reassociation]
