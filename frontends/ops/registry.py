"""The lowering table: one small function per core-ATen op, registered with `@lowers`.

A lowering is called as `fn(b, node, *args, **kwargs)`: `b` is the `IRBuilder`, `node` the FX
node (its `meta["val"]` gives the result's shape and dtype), and `args`/`kwargs` are the node's
arguments with every tensor replaced by its IR value (folded constants stay Python scalars).
It returns the result value, or a tuple of values for multi-result ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.fx import Node
from xdsl.dialects.builtin import bf16, f16, f32, f64, i1, i8, i32, i64
from xdsl.ir import Attribute

TORCH_TO_XDSL: dict[torch.dtype, Attribute] = {
    torch.float32: f32, torch.float16: f16, torch.bfloat16: bf16, torch.float64: f64,
    torch.int64: i64, torch.int32: i32, torch.int8: i8, torch.bool: i1,
}  # fmt: skip


def element_type(dtype: torch.dtype) -> Attribute:
    try:
        return TORCH_TO_XDSL[dtype]
    except KeyError:
        raise TypeError(f"dtype {dtype} has no element type in the importer") from None


Lowering = Callable[..., object]

LOWERINGS: dict[object, Lowering] = {}


def lowers(*targets: object) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for target in targets:
            if target in LOWERINGS:
                raise ValueError(f"{target} already has a lowering ({LOWERINGS[target].__name__})")
            LOWERINGS[target] = fn
        return fn

    return register


def result_meta(node: Node, index: int | None = None) -> tuple[list[int], Attribute]:
    """Static shape and element type of `node`'s result (or of result `index` of a tuple)."""
    val = node.meta["val"] if index is None else node.meta["val"][index]
    return [int(s) for s in val.shape], element_type(val.dtype)


def arg_dtype(arg: object) -> torch.dtype | None:
    """The torch dtype of an FX argument (None for Python scalars)."""
    return arg.meta["val"].dtype if isinstance(arg, Node) else None


def promote(args: Sequence[object]) -> torch.dtype:
    """Torch's type promotion for tensor/scalar operands (tensors' dtypes win within a category)."""
    dtypes = [d for a in args if (d := arg_dtype(a)) is not None]
    result = dtypes[0]
    for d in dtypes[1:]:
        result = torch.promote_types(result, d)
    if any(isinstance(a, float) for a in args) and not result.is_floating_point:
        return torch.get_default_dtype()
    return result
