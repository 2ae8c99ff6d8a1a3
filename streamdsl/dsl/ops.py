"""Tile functions usable in kernels: `sd.exp(x)`, `sd.sum(x, axis=1)`, `sd.zeros(shape)`, ...

Each function is one object that serves both modes: called directly it computes on numpy arrays
(eager mode), and the kernel compiler recognises it and emits IR from the same description
(`scalar` builds the element-wise body; reductions name their init value and combiner). Keeping
both next to each other is what makes eager mode a trustworthy second reference.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.ir import Operation, SSAValue

from streamdsl import quant
from streamdsl.dsl.irbuild import BodyBuilder
from streamdsl.dtypes import DType, f32, i8, wrap_int
from streamdsl.errors import StreamError

__all__ = [
    "abs",
    "cast",
    "chunk",
    "join",
    "concat",
    "dequantize",
    "erf",
    "exp",
    "feedback",
    "full",
    "iota",
    "log",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "quantize",
    "range",
    "reshape",
    "rsqrt",
    "sigmoid",
    "sqrt",
    "sum",
    "tanh",
    "transpose",
    "where",
    "zeros",
]

Scalar = Callable[[BodyBuilder, Sequence[SSAValue]], SSAValue]


def _f32(x: object) -> np.ndarray:
    arr = np.asarray(x)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float32)


# -- element-wise -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Elementwise:
    """An element-wise function of `arity` tiles (numpy broadcasting applies)."""

    name: str
    arity: int
    numpy: Callable[..., np.ndarray]
    scalar: Scalar

    def __call__(self, *args: object) -> np.ndarray:
        if len(args) != self.arity:
            raise TypeError(f"sd.{self.name} takes {self.arity} tile argument(s), got {len(args)}")
        dtype = np.result_type(*[_f32(a) for a in args if isinstance(a, np.ndarray)] or [np.float32])
        return np.asarray(self.numpy(*args), dtype=dtype)

    def __repr__(self) -> str:
        return f"sd.{self.name}"


# The bodies are module-level functions bound with `partial`, not closures made at import: the
# code that builds a body then runs when a kernel compiles (which is also what mutation testing's
# forked runs see; docs/mutation.md).
def _unary(cls: type, b: BodyBuilder, a: Sequence[SSAValue]) -> SSAValue:
    return b.op(cls(a[0]))


def _binary(cls: type, b: BodyBuilder, a: Sequence[SSAValue]) -> SSAValue:
    return b.op(cls(a[0], a[1]))


def _sigmoid(b: BodyBuilder, a: Sequence[SSAValue]) -> SSAValue:
    one = b.const(1.0)
    e = b.op(mathd.ExpOp(b.op(arith.NegfOp(a[0]))))
    return b.op(arith.DivfOp(one, b.op(arith.AddfOp(one, e))))


def _rsqrt_np(x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    return (np.ones((), x.dtype) / np.sqrt(x)).astype(x.dtype)


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    one = np.ones((), x.dtype)
    return one / (one + np.exp(-x))


_erf_np = np.vectorize(math.erf, otypes=[np.float64])

exp = Elementwise("exp", 1, np.exp, partial(_unary, mathd.ExpOp))
log = Elementwise("log", 1, np.log, partial(_unary, mathd.LogOp))
tanh = Elementwise("tanh", 1, np.tanh, partial(_unary, mathd.TanhOp))
sqrt = Elementwise("sqrt", 1, np.sqrt, partial(_unary, mathd.SqrtOp))
rsqrt = Elementwise("rsqrt", 1, _rsqrt_np, partial(_unary, mathd.RsqrtOp))
abs = Elementwise("abs", 1, np.abs, partial(_unary, mathd.AbsFOp))  # noqa: A001 - sd.abs mirrors numpy
erf = Elementwise("erf", 1, _erf_np, partial(_unary, mathd.ErfOp))
sigmoid = Elementwise("sigmoid", 1, _sigmoid_np, _sigmoid)
maximum = Elementwise("maximum", 2, np.maximum, partial(_binary, arith.MaximumfOp))
minimum = Elementwise("minimum", 2, np.minimum, partial(_binary, arith.MinimumfOp))

# Python operators on tiles share these bodies (the compiler looks them up by operator).
BINARY_OPERATORS: dict[str, Elementwise] = {
    "+": Elementwise("add", 2, np.add, partial(_binary, arith.AddfOp)),
    "-": Elementwise("sub", 2, np.subtract, partial(_binary, arith.SubfOp)),
    "*": Elementwise("mul", 2, np.multiply, partial(_binary, arith.MulfOp)),
    "/": Elementwise("div", 2, np.divide, partial(_binary, arith.DivfOp)),
}
NEGATE = Elementwise("neg", 1, np.negative, partial(_unary, arith.NegfOp))

# `sd.where(a < b, x, y)`: the comparison is fused into the select's body (arith.cmpf predicate).
COMPARISONS: dict[str, str] = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "one"}


def where(cond: np.ndarray, x: object, y: object) -> np.ndarray:
    """Element-wise select; in a kernel `cond` must be a comparison written inline: `sd.where(s > 0, s, 0.0)`."""
    xs = [_f32(v) for v in (x, y) if isinstance(v, np.ndarray)]
    return np.where(cond, x, y).astype(np.result_type(*xs) if xs else np.float32)


# -- reductions (keepdims) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reduction:
    """Reduce over one axis, keeping it with size 1 (tiles keep their rank)."""

    name: str
    numpy: Callable[..., np.ndarray]
    init: float
    combine: type[Operation]  # combine(element, acc)
    average: bool = False

    def __call__(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        x = _f32(x)
        return self.numpy(x, axis=axis, keepdims=True).astype(x.dtype)

    def __repr__(self) -> str:
        return f"sd.{self.name}"


sum = Reduction("sum", np.sum, 0.0, arith.AddfOp)  # noqa: A001
mean = Reduction("mean", np.mean, 0.0, arith.AddfOp, average=True)
max = Reduction("max", np.max, -math.inf, arith.MaximumfOp)  # noqa: A001
min = Reduction("min", np.min, math.inf, arith.MinimumfOp)  # noqa: A001

# -- integers and quantization (docs/quantization.md) ----------------------------------------------


class IntTile(np.ndarray):
    """An integer tile in eager mode: `a @ b` sign-extends to int32 and accumulates exactly, as the
    compiled kernel does (a plain int8 ndarray would multiply and overflow in int8)."""

    def __matmul__(self, other: Any) -> np.ndarray:
        return _int_matmul(self, other)

    def __rmatmul__(self, other: Any) -> np.ndarray:
        return _int_matmul(other, self)


def _int_matmul(a: Any, b: Any) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        raise TypeError("@ of an integer tile and a float tile: convert one with sd.cast or sd.dequantize")
    return int_tile(np.matmul(a.astype(np.int32), b.astype(np.int32)))


def int_tile(x: Any) -> Any:
    """`x` as an eager integer tile (integer arrays only; anything else unchanged)."""
    return x.view(IntTile) if isinstance(x, np.ndarray) and x.dtype.kind in "iu" else x


def cast(x: Any, dtype: DType) -> Any:
    """`x` converted to `dtype`: int to int sign-extends or wraps, int to float rounds to nearest,
    float to int truncates toward zero (out of range is undefined: clamp first)."""
    arr = np.asarray(x)
    if dtype.is_float:
        return arr.astype(dtype.storage)
    whole = np.trunc(arr) if arr.dtype.kind == "f" else arr
    return int_tile(wrap_int(whole.astype(np.int64), dtype.bits).astype(dtype.storage))


def quantize(x: Any, scale: Any, dtype: DType = i8) -> Any:
    """`clamp(round(x / scale), -qmax, qmax)` as `dtype` (i4: qmax 7, i8: 127), ties to even, 0
    where `scale == 0`; `scale` broadcasts (a per-token (1, 1) tile, a per-channel row, ...)."""
    return int_tile(quant.quantize(x, scale, dtype.bits))


def dequantize(q: Any, scale: Any, dtype: DType = f32) -> np.ndarray:
    """`float(q) * float(scale)` as the float `dtype` (an f16 scale is widened exactly)."""
    return np.asarray(quant.dequantize(q, scale), dtype=dtype.storage)


# -- construction and layout -----------------------------------------------------------------------


def zeros(shape: Sequence[int] | int, dtype: DType = f32) -> np.ndarray:
    """A tile (or an on-chip buffer of tiles, indexed by its leading dims) of zeros."""
    return int_tile(np.zeros(shape, dtype=dtype.storage))


def full(shape: Sequence[int] | int, value: float, dtype: DType = f32) -> np.ndarray:
    return int_tile(np.full(shape, value, dtype=dtype.storage))


def iota(shape: Sequence[int] | int, axis: int = -1, dtype: DType = f32) -> np.ndarray:
    """A tile whose elements are their index along `axis` (0, 1, 2, ...), computed on chip: with
    loop indices it builds masks, e.g. `sd.where(sd.iota((1, T)) + t * T > pos, -math.inf, s)`."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    ramp = np.arange(shape[axis], dtype=dtype.storage)
    return np.broadcast_to(np.expand_dims(ramp, [d for d in range(len(shape)) if d != axis % len(shape)]), shape).copy()


def transpose(x: np.ndarray, perm: Sequence[int] | None = None) -> np.ndarray:
    """numpy's transpose: output dim `d` is input dim `perm[d]` (reversed dims by default)."""
    return np.ascontiguousarray(np.transpose(x, perm))


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Row-major reshape of a tile."""
    return np.reshape(x, tuple(shape)).copy()


def chunk(x: Any, parts: int, dim: int = 0) -> Any:
    """Cut a stream (in an `@sd.dataflow` function: `dataflow.itensor_chunk`) or an array into
    `parts` equal consecutive pieces along `dim`."""
    from streamdsl.dsl.dataflow import GraphValue, record_chunk

    if isinstance(x, GraphValue):
        return record_chunk(x, parts, dim)
    return tuple(np.split(np.asarray(x), parts, axis=dim))


def concat(parts: Sequence[np.ndarray], axis: int = -1) -> Any:
    """Tiles joined along `axis` (in a kernel), or streams joined along a tensor dim (in an
    `@sd.dataflow` function: `dataflow.itensor_concat`)."""
    from streamdsl.dsl.dataflow import GraphValue, record_concat

    if any(isinstance(p, GraphValue) for p in parts):
        return record_concat(list(parts), axis)
    return np.concatenate([np.asarray(p) for p in parts], axis=axis)


def feedback(type_: Any, name: str = "feedback") -> Any:
    """A stream of type `type_` that kernels read before the kernel writing it is called; name its
    producer later with `.connect(y)` (in an `@sd.dataflow` function: `dataflow.itensor_feedback`).
    Such a program runs in the simulators and on the device, not eagerly."""
    from streamdsl.dsl.dataflow import record_feedback

    return record_feedback(type_, name)


def join(parts: Sequence[Any], result: Any) -> Any:
    """Interleave streams round robin into one of type `result` (an `sd.itensor`): its token k is
    the next token of part k mod m (in an `@sd.dataflow` function: `dataflow.itensor_join`).
    Eagerly the parts are kernel outputs, whose stream types give their token order."""
    from streamdsl.dsl.dataflow import GraphValue, record_join
    from streamdsl.dsl.eager import stream_type

    if any(isinstance(p, GraphValue) for p in parts):
        return record_join(list(parts), result)
    types = [stream_type(p) for p in parts]
    if None in types:
        raise TypeError("sd.join of arrays: pass kernel outputs (the order their kernels streamed them decides the "
                        "interleaving)")
    streams = [t.reference_stream(np.asarray(p)) for p, t in zip(parts, types)]
    if len({len(s) for s in streams}) != 1 or len(streams[0]) * len(parts) != result.num_tokens:
        raise StreamError(f"sd.join: parts of {[len(s) for s in streams]} tokens cannot make the "
                          f"{result.num_tokens} tokens of {result} round robin")
    return result.from_stream([tile for group in zip(*streams) for tile in group])


def range(*args: int, max: int | None = None) -> Any:  # noqa: A001, A002 - mirrors Python's range
    """`for t in sd.range(n)`: a loop whose trip count is a run-time value (computed from
    `sd.Scalar` arguments), at most `max` times (default: its value at the scalars' maxima).
    Eagerly it is Python's range (checked against `max` when given)."""
    steps = builtins.range(*args)
    if max is not None and len(steps) > max:
        raise ValueError(f"sd.range{args}: runs {len(steps)} times, more than its declared maximum {max}")
    return steps
