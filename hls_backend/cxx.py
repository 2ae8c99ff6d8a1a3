"""C++ spellings of IR types, constants and affine expressions (shared by the emitters)."""

from __future__ import annotations

import math
import re

import numpy as np
from xdsl.dialects.builtin import (
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    ShapedType,
)
from xdsl.ir import Attribute
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr

__all__ = ["HlsEmitError", "affine_c", "c_literal", "c_scalar", "flat_index", "ident", "np_dtype", "struct_name"]


class HlsEmitError(ValueError):
    """The HLS backend cannot translate something; the message names the op and what to do."""


_SCALARS: dict[str, tuple[str, np.dtype]] = {
    "f32": ("float", np.dtype(np.float32)),
    "f64": ("double", np.dtype(np.float64)),
    "i1": ("bool", np.dtype(np.bool_)),
    "i8": ("int8_t", np.dtype(np.int8)),
    "i16": ("int16_t", np.dtype(np.int16)),
    "i32": ("int32_t", np.dtype(np.int32)),
    "i64": ("int64_t", np.dtype(np.int64)),
    "index": ("int", np.dtype(np.int64)),
}


def _key(elem: Attribute) -> str:
    match elem:
        case Float32Type():
            return "f32"
        case Float64Type():
            return "f64"
        case IndexType():
            return "index"
        case IntegerType(width=width) if f"i{width.data}" in _SCALARS:
            return f"i{width.data}"
    raise HlsEmitError(
        f"element type {elem} is not supported by the HLS backend (f32, f64, i1, i8, i16, i32, i64 are); "
        "bf16/f16 need ap_fixed/half types, which this backend does not emit yet"
    )


def c_scalar(elem: Attribute) -> str:
    """The C++ type of a scalar IR type."""
    return _SCALARS[_key(elem)][0]


def np_dtype(elem: Attribute) -> np.dtype:
    return _SCALARS[_key(elem)][1]


def struct_name(type_: ShapedType) -> str:
    """The struct holding one tensor value (a tile or a local buffer), e.g. `t_1x64_f32`."""
    shape = "x".join(str(s) for s in type_.get_shape()) or "scalar"
    return f"t_{shape}_{_key(type_.get_element_type())}"


def c_literal(value: float | int | bool, elem: Attribute) -> str:
    """A C++ literal of `value` with the exact precision of `elem`."""
    key = _key(elem)
    if key == "i1":
        return "true" if value else "false"
    if key in ("f32", "f64"):
        ctype = "float" if key == "f32" else "double"
        v = float(np.float32(value)) if key == "f32" else float(value)
        if math.isnan(v):
            return f"std::numeric_limits<{ctype}>::quiet_NaN()"
        if math.isinf(v):
            sign = "-" if v < 0 else ""
            return f"{sign}std::numeric_limits<{ctype}>::infinity()"
        text = repr(v)  # shortest repr that round-trips the double (float32 values are exact)
        if "e" not in text and "." not in text:
            text += ".0"
        return text + ("f" if key == "f32" else "")
    v = int(value)
    if key == "i64":
        return f"INT64_C({v})"
    return str(v)


_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def ident(text: str) -> str:
    """A C identifier made from a name such as `fork(copy)->mul`."""
    out = _IDENT.sub("_", text).strip("_") or "v"
    return out if not out[0].isdigit() else f"_{out}"


def affine_c(expr: AffineExpr, dims: list[str]) -> str:
    """C++ for an affine expression over non-negative dims (offsets are >= 0, so / and % are
    floordiv and mod)."""
    match expr:
        case AffineDimExpr(position=pos):
            return dims[pos]
        case AffineConstantExpr(value=value):
            return str(value)
        case AffineBinaryOpExpr(kind=kind, lhs=lhs, rhs=rhs):
            a, b = affine_c(lhs, dims), affine_c(rhs, dims)
            match kind:
                case AffineBinaryOpKind.Add:
                    return f"({a} + {b})"
                case AffineBinaryOpKind.Mul:
                    return f"({a} * {b})"
                case AffineBinaryOpKind.Mod:
                    return f"({a} % {b})"
                case AffineBinaryOpKind.FloorDiv:
                    return f"({a} / {b})"
                case AffineBinaryOpKind.CeilDiv:
                    return f"(({a} + {b} - 1) / {b})"
    raise HlsEmitError(f"affine expression {expr} is not supported")


def flat_index(indices: list[str], shape: list[int] | tuple[int, ...]) -> str:
    """Row-major flat index of a multi-index (constant terms folded where trivial)."""
    if not shape:
        return "0"
    terms: list[str] = []
    stride = 1
    for idx, size in reversed(list(zip(indices, shape))):
        if size != 1 and idx != "0":
            compound = idx if idx.isidentifier() or idx.isdigit() or idx.startswith("(") and idx.endswith(")") else f"({idx})"
            terms.append(idx if stride == 1 else f"{compound} * {stride}")
        stride *= size
    return " + ".join(reversed(terms)) if terms else "0"
