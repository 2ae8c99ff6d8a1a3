"""A numpy interpreter for the linalg-on-tensors subset the importer emits.

It executes the *IR* (not the torch graph), so comparing it with PyTorch eager checks the
import. `linalg.generic` bodies are evaluated vectorised over the whole iteration space: every
operand is laid out along the loop dims (broadcast where its map does not use a loop), the scalar
body ops become numpy ufuncs, and a reduction's `combine(x, acc)` becomes `ufunc.reduce` over
the reduction loops. Contractions (`acc + a * b`) go through `np.einsum`. Anything outside the
subset raises `NotImplementedError` naming the op.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects import arith, func, tensor
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import AffineMapAttr, FloatAttr, IntegerAttr, IntegerType, TensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr

from frontends.builder import is_float
from streamdsl.opinfo import ARITH_CASTS, NUMPY_HELPERS, OPS, template

Env = dict[SSAValue, object]


def numpy_dtype(elt: Attribute) -> np.dtype:
    if is_float(elt):
        # numpy has no bfloat16: bf16 programs are interpreted in float32.
        return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[elt.bitwidth]
                        if elt.name != "bf16" else np.float32)
    if isinstance(elt, IntegerType):
        return np.dtype(np.bool_ if elt.width.data == 1 else f"int{elt.width.data}")
    return np.dtype(np.int64)  # index


def run_function(fn: func.FuncOp, args: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    block = fn.body.block
    if len(args) != len(block.args):
        raise TypeError(f"@{fn.sym_name.data} takes {len(block.args)} arguments, got {len(args)}")
    env: Env = {}
    for arg, value in zip(block.args, args, strict=True):
        expected = tuple(arg.type.get_shape())
        value = np.asarray(value, dtype=numpy_dtype(arg.type.get_element_type()))
        if value.shape != expected:
            raise ValueError(f"argument %{arg.name_hint} expects shape {expected}, got {value.shape}")
        env[arg] = value
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            return tuple(np.asarray(env[v]) for v in op.arguments)
        results = _run_op(op, env)
        for r, v in zip(op.results, results, strict=True):
            env[r] = v
    raise ValueError("function without func.return")


def _run_op(op: Operation, env: Env) -> tuple:
    impl = _TOP.get(type(op))
    if impl is None:
        raise NotImplementedError(f"the reference interpreter does not handle {op.name}")
    return (impl(op, env),)


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())


def _dtype(value: SSAValue) -> np.dtype:
    t = value.type
    return numpy_dtype(t.get_element_type() if isinstance(t, TensorType) else t)


def _constant(op: arith.ConstantOp, env: Env):
    attr = op.value
    dtype = _dtype(op.result)
    if isinstance(attr, FloatAttr | IntegerAttr):
        return dtype.type(attr.value.data)
    raise NotImplementedError(f"arith.constant of {attr}")


def _fill(op: linalg.FillOp, env: Env):
    out = op.outputs[0]
    return np.full(_shape(out), env[op.inputs[0]], dtype=_dtype(out))


def _matmul(op: linalg.MatmulOp, env: Env):
    a, b = (env[v] for v in op.inputs)
    return (env[op.outputs[0]] + a @ b).astype(_dtype(op.outputs[0]))


def _broadcast(op: linalg.BroadcastOp, env: Env):
    x = env[op.input]
    for d in sorted(op.dimensions.get_values()):
        x = np.expand_dims(x, d)
    return np.broadcast_to(x, _shape(op.init)).copy()


def _extract_slice(op: tensor.ExtractSliceOp, env: Env):
    offsets, sizes, strides = (p.get_values() for p in (op.static_offsets, op.static_sizes, op.static_strides))
    index = tuple(slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offsets, sizes, strides))
    return env[op.source][index].reshape(_shape(op.result))


def _insert_slice(op: tensor.InsertSliceOp, env: Env):
    offsets, sizes, strides = (p.get_values() for p in (op.static_offsets, op.static_sizes, op.static_strides))
    out = np.array(env[op.dest])
    index = tuple(slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offsets, sizes, strides))
    out[index] = np.reshape(env[op.source], out[index].shape)
    return out


_TOP: dict[type[Operation], Callable[[Operation, Env], object]] = {
    arith.ConstantOp: _constant,
    tensor.EmptyOp: lambda op, env: np.zeros(_shape(op.tensor), dtype=_dtype(op.tensor)),
    linalg.FillOp: _fill,
    linalg.MatmulOp: _matmul,
    linalg.TransposeOp: lambda op, env: np.transpose(env[op.inputs[0]], op.permutation.get_values()),
    linalg.BroadcastOp: _broadcast,
    tensor.CollapseShapeOp: lambda op, env: np.reshape(env[op.src], _shape(op.result)),
    tensor.ExpandShapeOp: lambda op, env: np.reshape(env[op.src], _shape(op.result)),
    tensor.ExtractSliceOp: _extract_slice,
    tensor.InsertSliceOp: _insert_slice,
    tensor.ConcatOp: lambda op, env: np.concatenate([env[v] for v in op.inputs], axis=op.dim.value.data),
    linalg.GenericOp: lambda op, env: _generic(op, env),
}


# -- linalg.generic ------------------------------------------------------------------------------

def _map_results(m: AffineMapAttr) -> list[int | None]:
    """Loop dim of each map result; None for a constant-0 result."""
    out: list[int | None] = []
    for e in m.data.results:
        if isinstance(e, AffineDimExpr):
            out.append(e.position)
        elif isinstance(e, AffineConstantExpr) and e.value == 0:
            out.append(None)
        else:
            raise NotImplementedError(f"indexing map {m.data}: only projected permutations are handled")
    return out


def _to_loops(arr: np.ndarray, results: list[int | None], n: int) -> np.ndarray:
    """Lays `arr` (indexed by the map results) out along the n loop dims."""
    for axis in reversed([i for i, d in enumerate(results) if d is None]):
        arr = np.take(arr, 0, axis=axis)
    dims = [d for d in results if d is not None]
    arr = np.transpose(arr, np.argsort(dims))
    shape = [1] * n
    for d, size in zip(sorted(dims), arr.shape):
        shape[d] = size
    return arr.reshape(shape)


def _from_loops(arr: np.ndarray, results: list[int | None], loop_shape: list[int], out_shape) -> np.ndarray:
    arr = np.broadcast_to(arr, loop_shape)
    dims = [d for d in results if d is not None]
    rest = [d for d in range(len(loop_shape)) if d not in dims]
    return np.ascontiguousarray(np.transpose(arr, dims + rest)).reshape(out_shape)


def _loop_ranges(op: linalg.GenericOp, maps: list[list[int | None]]) -> list[int]:
    n = len(op.iterator_types)
    ranges = [1] * n
    for value, results in zip([*op.inputs, *op.outputs], maps):
        for d, size in zip(results, _shape(value)):
            if d is not None:
                ranges[d] = size
    return ranges


def _generic(op: linalg.GenericOp, env: Env) -> np.ndarray:
    maps = [_map_results(m) for m in op.indexing_maps]
    n = len(op.iterator_types)
    ranges = _loop_ranges(op, maps)
    reductions = [i for i, it in enumerate(op.iterator_types) if it.data.value == "reduction"]
    out = op.outputs[0]
    block = op.body.block
    if (result := _try_einsum(op, env, maps, block)) is not None:
        return result
    vals: dict[SSAValue, object] = {
        arg: _to_loops(env[v], m, n) for arg, v, m in zip(block.args, [*op.inputs, *op.outputs], maps)
    }
    acc = block.args[-1]
    result = None
    for body_op in block.ops:
        if isinstance(body_op, linalg.YieldOp):
            result = vals[body_op.operands[0]]
            break
        if reductions and acc in body_op.operands:
            vals[body_op.results[0]] = _combine(body_op, acc, vals, ranges, reductions)
            continue
        vals[body_op.results[0]] = _scalar(body_op, vals, env, ranges)
    loop_shape = [1 if i in reductions else r for i, r in enumerate(ranges)]
    return _from_loops(np.asarray(result, dtype=_dtype(out)), maps[-1], loop_shape, _shape(out))


def _combine(op: Operation, acc: SSAValue, vals, ranges, reductions) -> np.ndarray:
    """`combine(x, acc)` at the root of a reduction body: reduce x over the reduction loops."""
    ufunc = _UFUNCS.get(op.name)
    others = [v for v in op.operands if v is not acc]
    if ufunc is None or len(others) != 1:
        raise NotImplementedError(f"reduction combiner {op.name} is not an associative binary op")
    if any(not isinstance(u.operation, linalg.YieldOp) for u in op.results[0].uses):
        raise NotImplementedError("a reduction's combined value must be yielded directly")
    x = np.broadcast_to(vals[others[0]], ranges)
    return ufunc(vals[acc], ufunc.reduce(x, axis=tuple(reductions), keepdims=True))


def _try_einsum(op, env, maps, block: Block):
    """acc + a * b over projected permutations: a contraction, evaluated by np.einsum."""
    ops = list(block.ops)
    if len(op.inputs) != 2 or len(ops) != 3 or any(None in m for m in maps):
        return None
    mul, add, yld = ops
    a, b, acc = block.args
    if not (isinstance(mul, arith.MulfOp) and isinstance(add, arith.AddfOp) and isinstance(yld, linalg.YieldOp)):
        return None
    if set(mul.operands) != {a, b} or set(add.operands) != {acc, mul.result} or yld.operands[0] != add.result:
        return None
    letters = string.ascii_letters
    subs = ",".join("".join(letters[d] for d in m) for m in maps[:2]) + "->" + "".join(letters[d] for d in maps[2])
    init = env[op.outputs[0]]
    return (init + np.einsum(subs, env[op.inputs[0]], env[op.inputs[1]])).astype(init.dtype)


_UFUNCS: dict[str, np.ufunc] = {name: info.combiner for name, info in OPS.items() if info.combiner is not None}
_COMPILED: dict[tuple[str, int], Callable] = {}


def _elementwise(op: Operation) -> Callable | None:
    """The op's numpy text from the op vocabulary, compiled once into a function of its operands."""
    info = OPS.get(op.name)
    if info is None or op.name == "arith.constant" or op.name in ARITH_CASTS:
        return None
    predicate = op.predicate.value.data if isinstance(info.numpy, tuple) else -1
    fn = _COMPILED.get((op.name, predicate))
    if fn is None:
        args = [f"a{i}" for i in range(len(op.operands))]
        source = f"lambda {', '.join(args)}: {template(info, 'numpy', op).format(*args)}"
        fn = _COMPILED[op.name, predicate] = eval(source, dict(NUMPY_HELPERS))  # noqa: S307 - our table
    return fn


def _scalar(op: Operation, vals, env: Env, ranges: list[int]):
    args = [vals[v] if v in vals else env[v] for v in op.operands]
    dtype = _dtype(op.results[0])
    if isinstance(op, arith.ConstantOp):
        return _constant(op, env)
    if isinstance(op, linalg.IndexOp):
        d = op.dim.value.data
        shape = [1] * len(ranges)
        shape[d] = ranges[d]
        return np.arange(ranges[d]).reshape(shape)
    if isinstance(op, tensor.ExtractOp):
        table = env[op.tensor]
        return table[tuple(np.broadcast_arrays(*args[1:]))]
    if op.name in ARITH_CASTS:
        return np.asarray(args[0]).astype(dtype)
    if (fn := _elementwise(op)) is not None:
        return np.asarray(fn(*args)).astype(dtype, copy=False)
    raise NotImplementedError(f"the reference interpreter does not handle {op.name} in a linalg.generic body")
