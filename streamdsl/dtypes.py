"""Element data types: one object per dtype, linking numpy, the IR and the HLS backend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    IntegerType,
)
from xdsl.ir import Attribute

__all__ = ["DType", "bf16", "dtype_from_ir", "f16", "f32", "i8", "i32", "DTYPES"]


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
            case "f16":
                return Float16Type()
            case "bf16":
                return BFloat16Type()
            case _:
                return IntegerType(self.bits)

    @property
    def is_float(self) -> bool:
        return self.name.startswith(("f", "bf"))

    def __repr__(self) -> str:
        return f"sd.{self.name}"


f32 = DType("f32", 32, np.dtype(np.float32), "float")
f16 = DType("f16", 16, np.dtype(np.float16), "half")
bf16 = DType("bf16", 16, np.dtype(np.float32), "bfloat16")
i8 = DType("i8", 8, np.dtype(np.int8), "int8_t")
i32 = DType("i32", 32, np.dtype(np.int32), "int32_t")

DTYPES: dict[str, DType] = {d.name: d for d in (f32, f16, bf16, i8, i32)}


def dtype_from_ir(attr: Attribute) -> DType:
    """The DType of an xDSL scalar type; raises ValueError for types streamdsl does not support."""
    for dtype in DTYPES.values():
        if dtype.ir() == attr:
            return dtype
    supported = ", ".join(DTYPES)
    raise ValueError(f"unsupported element type {attr}; supported: {supported}")
