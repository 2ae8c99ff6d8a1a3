"""Element data types: one object per dtype, linking numpy, the IR and the HLS backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
)
from xdsl.ir import Attribute

__all__ = [
    "DTYPES",
    "TENSOR_DTYPES",
    "DType",
    "bf16",
    "dtype_from_ir",
    "f16",
    "f32",
    "f64",
    "i1",
    "i4",
    "i8",
    "i16",
    "i32",
    "i64",
    "numpy_dtype",
    "wrap_int",
]


@dataclass(frozen=True)
class DType:
    """A scalar element type.

    `storage` is the numpy dtype simulators compute in; bf16 has no numpy dtype, so it is stored
    as float32 (rounded to bf16 precision where it is produced).
    """

    name: str
    bits: int
    storage: np.dtype
    cpp: str

    def ir(self) -> Attribute:
        """The xDSL builtin type of this dtype."""
        match self.name:
            case "f32":
                return Float32Type()
            case "f64":
                return Float64Type()
            case "f16":
                return Float16Type()
            case "bf16":
                return BFloat16Type()
            case _:
                return IntegerType(self.bits)

    @property
    def is_float(self) -> bool:
        return self.name.startswith(("f", "bf"))

    @property
    def is_narrow(self) -> bool:
        """An integer type narrower than its numpy storage (i4 in int8): results wrap to `bits`."""
        return not self.is_float and self.bits < 8 * self.storage.itemsize and self.bits > 1

    def __repr__(self) -> str:
        return f"sd.{self.name}"


f32 = DType("f32", 32, np.dtype(np.float32), "float")
f16 = DType("f16", 16, np.dtype(np.float16), "half")
bf16 = DType("bf16", 16, np.dtype(np.float32), "bfloat16")
i4 = DType("i4", 4, np.dtype(np.int8), "ap_int<4>")  # stored in int8, wrapped to 4 bits
i8 = DType("i8", 8, np.dtype(np.int8), "int8_t")
i32 = DType("i32", 32, np.dtype(np.int32), "int32_t")

f64 = DType("f64", 64, np.dtype(np.float64), "double")
i1 = DType("i1", 1, np.dtype(np.bool_), "bool")
i16 = DType("i16", 16, np.dtype(np.int16), "int16_t")
i64 = DType("i64", 64, np.dtype(np.int64), "int64_t")

# element types of streams (itensors) and DSL tiles
DTYPES: dict[str, DType] = {d.name: d for d in (f32, f16, bf16, i4, i8, i32)}
# element types of any tensor in the IR (HBM tensors, imported programs' token ids and masks)
TENSOR_DTYPES: dict[str, DType] = {**DTYPES, **{d.name: d for d in (f64, i1, i16, i64)}}


_BY_IR: dict[Attribute, DType] = {d.ir(): d for d in TENSOR_DTYPES.values()}


def dtype_from_ir(attr: Attribute, among: dict[str, DType] = DTYPES) -> DType:
    """The DType of an xDSL scalar type; raises ValueError for types not `among` the supported."""
    dtype = _BY_IR.get(attr)
    if dtype is not None and among.get(dtype.name) is dtype:
        return dtype
    supported = ", ".join(among)
    raise ValueError(f"unsupported element type {attr}; supported: {supported}")


def numpy_dtype(attr: Attribute) -> np.dtype:
    """The numpy dtype simulators store values of an xDSL scalar type in (`index` is int64, bf16
    float32)."""
    return np.dtype(np.int64) if isinstance(attr, IndexType) else dtype_from_ir(attr, TENSOR_DTYPES).storage


def wrap_int(x: Any, bits: int) -> Any:
    """Integers wrapped to `bits`-bit two's complement (what hardware of that width holds), in
    the storage dtype of `x`."""
    arr = np.asarray(x)
    half = 1 << (bits - 1)
    out = ((arr.astype(np.int64) + half) & ((1 << bits) - 1)) - half
    return out.astype(arr.dtype) if arr.ndim else arr.dtype.type(out)
