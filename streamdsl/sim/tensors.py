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
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, ModuleOp, ShapedType
from xdsl.ir import Block, Operation, Region

from streamdsl.dialects.dataflow import KernelOp
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
    """A function body: `func.return` returns the tuple of its operands; a `dataflow.kernel` in it
    (a DSL kernel put into an imported model) runs in the functional simulator."""

    def op(self, op: Operation, indent: int) -> None:
        if isinstance(op, func.ReturnOp):
            self.emit(indent, f"return ({''.join(self.use(v) + ', ' for v in op.operands)})", op)
        elif isinstance(op, KernelOp):
            run = self.bind(_kernel_function(op), "kernel")
            results = "".join(self.define(r) + ", " for r in op.results)
            self.emit(indent, f"{results}= {run}({', '.join(self.use(v) for v in op.inputs)})", op)
        else:
            super().op(op, indent)


def _kernel_function(kernel: KernelOp) -> Callable[..., tuple[np.ndarray, ...]]:
    """The kernel alone in a function, run by the functional simulator (scalars as ints)."""
    from streamdsl.sim.functional import simulate

    types = [v.type for v in kernel.inputs]
    block = Block(arg_types=types)
    inner = kernel.clone_on(block.args)
    block.add_ops([inner, func.ReturnOp(*inner.results)])
    entry = func.FuncOp(kernel.sym_name.data, (types, [r.type for r in kernel.results]), Region(block))
    module = ModuleOp([entry])

    def run(*args: Any) -> tuple[np.ndarray, ...]:
        values = [int(a) if isinstance(t, IntegerType) else a for a, t in zip(args, types)]
        out = simulate(module, *values)
        return out if isinstance(out, tuple) else (out,)

    return run


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
