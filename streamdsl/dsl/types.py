"""Annotations of DSL functions: HBM tensors (`sd.Tensor[dtype, shape]`) and output ports (`sd.Out[T]`).

Input ports of an `@sd.kernel` are annotated with an `sd.itensor` directly; its outputs are either the
return annotation (an itensor, or a tuple of them, fed by `yield`) or `sd.Out[itensor]` parameters
(fed by `port.write(tile)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamdsl.dtypes import DType
from streamdsl.itensor import itensor

__all__ = ["Out", "Tensor", "TensorSpec"]


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
