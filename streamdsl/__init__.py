"""streamdsl: the language of stream dataflow accelerators (itensor types, the `dataflow` dialect)."""

from streamdsl.dtypes import DType, bf16, f16, f32, i8, i32
from streamdsl.itensor import ITensorError, itensor

__all__ = ["DType", "ITensorError", "bf16", "f16", "f32", "i8", "i32", "itensor"]
