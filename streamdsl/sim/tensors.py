"""Linalg on tensors run on numpy: a `func.func` of `linalg` / `tensor` / `arith` / `math` ops.

This is the one numpy interpreter of linalg on tensors: a function body is compiled once to
Python exactly as a task body of the functional simulator is (`_codegen.Emitter`; each linalg op
becomes the closure `_linalg.compile_linalg` prepares), so the importer's reference run
(`ImportedProgram.reference`) and the simulator's task bodies share every op's meaning.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ShapedType
from xdsl.ir import Operation

from streamdsl.dtypes import numpy_dtype
from streamdsl.sim._codegen import CompileError, Emitter, element_type

__all__ = ["CompileError", "TensorFunction", "compile_function", "no_gc", "run_function"]


@contextmanager
def no_gc() -> Iterator[None]:
    """Building or compiling a model's IR allocates millions of short-lived objects next to the
    model's; full collections of all of them cost a large share of the time and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _FunctionEmitter(Emitter):
    """A function body: `func.return` returns the tuple of its operands."""

    def op(self, op: Operation, indent: int) -> None:
        if isinstance(op, func.ReturnOp):
            self.emit(indent, f"return ({''.join(self.use(v) + ', ' for v in op.operands)})", op)
        else:
            super().op(op, indent)


class TensorFunction:
    """A compiled `func.func`: call it with one numpy array per argument."""

    def __init__(self, fn: func.FuncOp):
        self.name = fn.sym_name.data
        block = fn.body.block
        self.args = [(arg.name_hint or f"arg{i}", _shape(arg.type), numpy_dtype(element_type(arg.type)))
                     for i, arg in enumerate(block.args)]
        emitter = _FunctionEmitter(f"@{self.name}")
        params = [emitter.define(arg) for arg in block.args]
        with no_gc():
            emitter.block(block, 1)
        if not any(isinstance(op, func.ReturnOp) for op in block.ops):
            raise CompileError(f"@{self.name}: the function has no func.return")
        self.run: Callable[..., tuple[np.ndarray, ...]] = emitter.compile(f"def run({', '.join(params)}):", "run")

    def __call__(self, *arrays: object) -> tuple[np.ndarray, ...]:
        if len(arrays) != len(self.args):
            raise TypeError(f"@{self.name} takes {len(self.args)} arguments, got {len(arrays)}")
        values = []
        for (name, shape, dtype), array in zip(self.args, arrays):
            value = np.asarray(array, dtype=dtype)
            if shape is not None and value.shape != shape:
                raise ValueError(f"@{self.name}: argument %{name} expects shape {shape}, got {value.shape}")
            values.append(value)
        return tuple(np.asarray(v) for v in self.run(*values))


def _shape(type_: object) -> tuple[int, ...] | None:
    return tuple(type_.get_shape()) if isinstance(type_, ShapedType) else None


def compile_function(fn: func.FuncOp) -> TensorFunction:
    """Compile `fn` once; raises CompileError naming an op the interpreter cannot run."""
    return TensorFunction(fn)


def run_function(fn: func.FuncOp, args: Sequence[object]) -> tuple[np.ndarray, ...]:
    """Run `fn` on `args` (one array per argument) and return its results."""
    return compile_function(fn)(*args)
