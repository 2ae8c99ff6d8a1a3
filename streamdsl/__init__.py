"""streamdsl: the language of stream dataflow accelerators.

itensor types (`sd.itensor`), the `dataflow` xDSL dialect, the Python DSL (`@sd.kernel`,
`@sd.dataflow`), the functional and timed simulators, and `sd.compile`.
"""

import streamdsl.xdsl_fixes  # noqa: F401 - patches xDSL's lexer before any parsing
from streamdsl.dsl import (
    DataflowProgram,
    Kernel,
    Out,
    Scalar,
    Tensor,
    VariadicDataflow,
    abs,
    cast,
    chunk,
    concat,
    dataflow,
    dequantize,
    erf,
    exp,
    feedback,
    full,
    hint,
    iota,
    join,
    kernel,
    log,
    max,
    maximum,
    mean,
    min,
    minimum,
    quantize,
    range,
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
from streamdsl.dtypes import DType, bf16, f16, f32, i4, i8, i32
from streamdsl.errors import DeadlockError, DSLError, LimitError, OutputError, StreamdslError, StreamError, UsageError, VerificationError
from streamdsl.itensor import ITensorError, itensor
from streamdsl.program import Program


def compile(prog, fifo_sizing="min-bits"):  # noqa: A001 - the public name is sd.compile
    """Size the FIFOs of a program and return a `Design` (see `streamdsl.compiler.compile`)."""
    from streamdsl.compiler import compile as compile_program

    return compile_program(prog, fifo_sizing)


__all__ = [
    "DSLError", "DType", "DataflowProgram", "DeadlockError", "ITensorError", "Kernel", "LimitError", "Out",
    "OutputError", "Program", "Scalar", "StreamError", "StreamdslError", "Tensor", "UsageError", "VariadicDataflow", "VerificationError",
    "abs", "bf16", "cast", "chunk", "compile", "concat", "dataflow", "dequantize", "erf", "exp", "f16", "f32", "feedback",
    "full", "hint", "i4", "i8", "iota", "join",
    "i32", "itensor", "kernel", "log", "max", "maximum", "mean", "min", "minimum", "quantize", "range", "reshape", "rsqrt",
    "sigmoid", "sqrt", "sum", "tanh", "transpose", "where", "zeros",
]  # fmt: skip
