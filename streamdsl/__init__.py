"""streamdsl: the language of stream dataflow accelerators (itensor types, the `dataflow` dialect)."""

from streamdsl.dtypes import DType, bf16, f16, f32, i8, i32
from streamdsl.itensor import ITensorError, itensor
from streamdsl.errors import DSLError, DeadlockError, StreamError
from streamdsl.dsl import (
    DataflowProgram,
    Kernel,
    Out,
    Tensor,
    abs,
    dataflow,
    erf,
    exp,
    full,
    kernel,
    log,
    max,
    maximum,
    mean,
    min,
    minimum,
    reshape,
    rsqrt,
    sigmoid,
    sqrt,
    sum,
    tanh,
    transpose,
    where,
    zeros,
)


def compile(prog, fifo_sizing="lp"):  # noqa: A001 - sd.compile; lazy: the driver imports lowering
    """Size the FIFOs of a program and return a `Design` (see streamdsl.compiler.compile)."""
    from streamdsl.compiler import compile as _compile

    return _compile(prog, fifo_sizing)


__all__ = ["DType", "ITensorError", "bf16", "f16", "f32", "i8", "i32", "itensor"]
__all__ += [
    "DSLError", "DataflowProgram", "DeadlockError", "Kernel", "Out", "StreamError", "Tensor", "abs", "dataflow",
    "erf", "exp", "full", "kernel", "log", "max", "maximum", "mean", "min", "minimum", "reshape", "rsqrt",
    "sigmoid", "sqrt", "sum", "tanh", "transpose", "where", "zeros",
]
__all__ += ["compile"]
