"""Expert kernels in imported models: substitute a DSL program for a matched part of a model.

    from frontends import from_torch, kernel_op
    flash = kernel_op(build_flash_decoding(...))             # a DSL program as a torch op

    def attention(query, key, value, attn_mask=None, **kw):  # torch code around the kernel
        ...
        return flash(q, *k_pages, *v_pages, length)

    prog = from_torch(model, *inputs, replace={F.scaled_dot_product_attention: attention})

`replace` maps torch functions the model calls to Python functions with the same signature,
written in torch. They run instead of the originals while the model is exported (a
`TorchFunctionMode`), so the adapting code (reshapes, paging, a length computed from the mask)
is imported op by op with the rest of the model. `kernel_op(program)` makes a DSL dataflow
program callable from that code: a torch custom op whose eager run is the program in the
functional simulator and whose import inlines the program's `dataflow.kernel` into the imported
function (run-time scalars: rank-0 integer tensors, extracted to `i32`). The numpy interpreter of
the imported program runs such a kernel in the functional simulator (streamdsl.sim.tensors).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.fx import Node
from torch.overrides import TorchFunctionMode
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import IntegerType, TensorType, i32
from xdsl.ir import SSAValue

from frontends.errors import FrontendError
from frontends.ops.registry import LOWERINGS, TORCH_TO_XDSL
from streamdsl.dialects.dataflow import KernelOp
from streamdsl.irbuild import IRBuilder
from streamdsl.program import Program

__all__ = ["kernel_op", "replacing"]

_NAMES = itertools.count()
_LIBRARY = "streamdsl"


def kernel_op(program: Program) -> Callable[..., Any]:
    """The DSL `program` (an `@sd.dataflow` program or any dataflow Program with one kernel) as a
    torch op: tensors for its tensor arguments, rank-0 integer tensors for its run-time scalars,
    in the program's argument order; it returns its result tensor(s)."""
    fn = program.entry
    kernels = [op for op in fn.body.block.ops if isinstance(op, KernelOp)]
    if len(kernels) != 1:
        raise FrontendError(f"kernel_op({program.name}): the program must hold one dataflow.kernel, found {len(kernels)}")
    ins = list(fn.function_type.inputs.data)
    torch_dtype = {elt: dtype for dtype, elt in TORCH_TO_XDSL.items()}
    outs = [(tuple(t.get_shape()), torch_dtype[t.get_element_type()]) for t in fn.function_type.outputs.data]
    names = [n.replace(".", "_") for n in program.input_names] or [f"a{i}" for i in range(len(ins))]
    qualified = f"{_ident(program.name)}_{next(_NAMES)}"
    results = "Tensor" if len(outs) == 1 else f"({', '.join('Tensor' for _ in outs)})"
    schema = f"({', '.join(f'Tensor {n}' for n in names)}) -> {results}"

    def run(*args: torch.Tensor) -> Any:
        arrays = [int(a.item()) if isinstance(t, IntegerType) else a.detach().numpy() for a, t in zip(args, ins)]
        got = program.simulate(*arrays)
        got = got if isinstance(got, tuple) else (got,)
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(g)).to(dtype) for g, (_, dtype) in zip(got, outs))
        return tensors[0] if len(tensors) == 1 else tensors

    def fake(*args: torch.Tensor) -> Any:
        tensors = tuple(torch.empty(shape, dtype=dtype) for shape, dtype in outs)
        return tensors[0] if len(tensors) == 1 else tensors

    op = torch.library.custom_op(f"{_LIBRARY}::{qualified}", run, mutates_args=(), schema=schema)
    op.register_fake(fake)
    LOWERINGS[getattr(getattr(torch.ops, _LIBRARY), qualified).default] = _inline(program, kernels[0], ins)
    return op


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "kernel"


def _inline(program: Program, kernel: KernelOp, ins: Sequence[Any]) -> Callable[..., Any]:
    """The importer's lowering of the op: a copy of the program's kernel on the node's operands."""

    def lower(b: IRBuilder, node: Node, *args: Any) -> Any:
        operands = []
        for i, (arg, want) in enumerate(zip(args, ins)):
            if not isinstance(arg, SSAValue):
                raise FrontendError(f"{node.name}: argument {i} of the DSL program {program.name!r} is {arg!r}; "
                                    "pass tensors (rank-0 integer tensors for run-time scalars)")
            operands.append(_scalar(b, arg, node, i) if isinstance(want, IntegerType) else _checked(arg, want, node, program, i))
        inlined = kernel.clone_on(operands)
        b.block.add_op(inlined)
        return inlined.results[0] if len(inlined.results) == 1 else tuple(inlined.results)

    return lower


def _checked(arg: SSAValue, want: TensorType, node: Node, program: Program, i: int) -> SSAValue:
    if arg.type != want:
        raise FrontendError(f"{node.name}: argument {i} of the DSL program {program.name!r} is a {arg.type}, the "
                            f"program takes a {want}; adapt the tensor in the replacing function")
    return arg


def _scalar(b: IRBuilder, arg: SSAValue, node: Node, i: int) -> SSAValue:
    """A rank-0 integer tensor as the i32 a kernel scalar takes."""
    t = arg.type
    if not (isinstance(t, TensorType) and not t.get_shape() and isinstance(t.get_element_type(), IntegerType)):
        raise FrontendError(f"{node.name}: argument {i} is a run-time scalar of the DSL program; pass a rank-0 integer "
                            f"tensor (say (mask == 0).sum().to(torch.int32)), got {t}")
    value = b.add(tensor.ExtractOp(arg, [], t.get_element_type()))
    width = t.get_element_type().width.data
    if width > 32:
        return b.add(arith.TruncIOp(value, i32))
    return b.add(arith.ExtSIOp(value, i32)) if width < 32 else value


class _Replacing(TorchFunctionMode):
    def __init__(self, table: Mapping[Callable[..., Any], Callable[..., Any]]):
        super().__init__()
        self.table = dict(table)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        # torch disables the mode while this runs: the substitute's own torch calls are not replaced
        return self.table.get(func, func)(*args, **(kwargs or {}))


@contextmanager
def replacing(table: Mapping[Callable[..., Any], Callable[..., Any]] | None):
    """While active, calls of each key of `table` (a torch function such as
    `torch.nn.functional.scaled_dot_product_attention`) run its value instead."""
    if not table:
        yield
        return
    for original, substitute in table.items():
        if not callable(original) or not callable(substitute):
            raise FrontendError(f"replace: {original!r} -> {substitute!r}: map torch functions to Python functions")
    with _Replacing(table):
        yield
