"""Annotations of DSL functions: HBM tensors (`sd.Tensor[dtype, shape]`) and output ports (`sd.Out[T]`).

Input ports of an `@sd.kernel` are annotated with an `sd.itensor` directly; its outputs are either the
return annotation (an itensor, or a tuple of them, fed by `yield`) or `sd.Out[itensor]` parameters
(fed by `port.write(tile)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamdsl.dtypes import DType, i32
from streamdsl.itensor import itensor

__all__ = ["Out", "Scalar", "ScalarSpec", "Tensor", "TensorSpec"]


@dataclass(frozen=True)
class TensorSpec:
    """A whole tensor in HBM: the argument or result type of an `@sd.dataflow` function, or an
    input or output of an imported program (which names it)."""

    dtype: DType
    shape: tuple[int, ...]
    name: str = ""

    def __str__(self) -> str:
        return f"sd.Tensor[sd.{self.dtype.name}, {self.shape}]"


class Tensor:
    """`sd.Tensor[sd.f32, (1, 768)]`: the annotation of a dataflow argument held in HBM."""

    def __class_getitem__(cls, params: tuple[DType, tuple[int, ...]]) -> TensorSpec:
        if not (isinstance(params, tuple) and len(params) == 2 and isinstance(params[0], DType)):
            raise TypeError(f"sd.Tensor[dtype, shape] expects a dtype and a shape tuple, got {params!r}")
        dtype, shape = params
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise TypeError(f"sd.Tensor: shape must be a tuple of positive ints, got {shape!r}")
        return TensorSpec(dtype, shape)


@dataclass(frozen=True)
class OutSpec:
    """The annotation `sd.Out[T]`: an output port of type `T` written with `.write(tile)`."""

    type: itensor


class Out:
    """`y: sd.Out[Y]` declares an output port of a kernel, fed by `y.write(tile)`."""

    def __class_getitem__(cls, it: itensor) -> OutSpec:
        if not isinstance(it, itensor):
            raise TypeError(f"sd.Out[T] expects an sd.itensor, got {it!r}")
        return OutSpec(it)


@dataclass(frozen=True)
class ScalarSpec:
    """A run-time scalar argument: read once per invocation, its value in [0, max]."""

    dtype: DType
    max: int | None = None

    def __str__(self) -> str:
        return f"sd.Scalar[sd.{self.dtype.name}{'' if self.max is None else f', {self.max}'}]"


class Scalar:
    """`n: sd.Scalar[sd.i32, 64]`: a run-time scalar argument of a kernel or a dataflow function
    (say a cache length), at most 64. Loops may run `sd.range(f(n))` times and tile maths may use
    it; one compiled program then serves every value up to the maximum (docs/dsl.md)."""

    def __class_getitem__(cls, params: DType | tuple[DType, int]) -> ScalarSpec:
        dtype, most = (params, None) if not isinstance(params, tuple) else (params[0], params[1]) if len(params) == 2 else (None, None)
        if dtype != i32 or (most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1)):
            raise TypeError(f"sd.Scalar[sd.i32] or sd.Scalar[sd.i32, max] (max a positive int) expected, got {params!r}")
        return ScalarSpec(dtype, most)
