"""Run-time scalars: a program specialised to the values of one invocation.

A `dataflow.kernel` may take integer operands, run-time scalars (say a cache length), each with a
declared maximum (`scalars`, `scalar_max`; docs/ir.md, "Run-time scalars"). Task loops whose trip
count is computed from a scalar and itensor `bounds` that name it make one compiled program serve
every value up to the maximum. The simulators, the timing model and FIFO sizing run on static
programs: `specialise(module, values)` returns a copy in which every scalar is replaced by its value
(the scalar operands disappear, index arithmetic on them is folded to constants, bounded itensor
types are bound), so the functional simulator runs one invocation exactly and the timing model
times it; `values=None` takes every scalar at its maximum, the worst case that FIFOs are sized for.
Only the HLS emitter sees the scalars themselves (scalar ports, variable trip counts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import FunctionType, IntegerAttr, IntegerType, ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import Rewriter

from streamdsl.dialects.dataflow import ITensorType, KernelOp, TaskOp
from streamdsl.errors import StreamdslError
from streamdsl.itensor import ITensorError

__all__ = ["MAX_TRIPS", "ScalarError", "fold_integer", "has_scalars", "scalar_names", "specialise", "split_arguments"]

MAX_TRIPS = "max_trips"  # the discardable attribute of an scf.for whose trip count is a run-time value


class ScalarError(StreamdslError, ValueError):
    """A run-time scalar out of its range, or a loop past its declared maximum (names both)."""


_FOLD: dict[str, Callable[[int, int], int]] = {
    "arith.addi": lambda a, b: a + b,
    "arith.subi": lambda a, b: a - b,
    "arith.muli": lambda a, b: a * b,
    "arith.floordivsi": lambda a, b: a // b,
    "arith.ceildivsi": lambda a, b: -(-a // b),
    "arith.divsi": lambda a, b: abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1),
    "arith.remsi": lambda a, b: a - b * (abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1)),
    "arith.minsi": min,
    "arith.maxsi": max,
}
_CASTS = ("arith.index_cast", "arith.extsi", "arith.trunci")


def fold_integer(op: Operation, args: Sequence[int]) -> int | None:
    """The value of an integer arithmetic op (index or iN) on known operands, None for other ops."""
    if op.name in _CASTS:
        return args[0]
    fold = _FOLD.get(op.name)
    return None if fold is None else fold(*args)


def _kernels(module: ModuleOp) -> list[KernelOp]:
    return [op for op in module.walk() if isinstance(op, KernelOp)]


def has_scalars(module: ModuleOp) -> bool:
    return any(k.scalar_args for k in _kernels(module))


def scalar_names(module: ModuleOp) -> dict[str, int]:
    """Every run-time scalar of the module's kernels with its declared maximum."""
    return {name: most for k in _kernels(module) for name, (_, most) in k.scalar_args.items()}


def split_arguments(func: FuncOp, given: Sequence[Any]) -> tuple[list[Any], dict[str, int]]:
    """The arrays and the scalar values among a call's arguments (in the function's order; a
    scalar is an integer argument of the func, passed on to a kernel's scalar operand)."""
    names: dict[SSAValue, str] = {}
    for kernel in (op for op in func.walk() if isinstance(op, KernelOp)):
        inner = {arg: name for name, (arg, _) in kernel.scalar_args.items()}
        names.update({operand: inner[arg] for operand, arg in zip(kernel.inputs, kernel.body.block.args) if arg in inner})
    formals = func.body.block.args
    arrays = [v for f, v in zip(formals, given) if f not in names]
    values = {names[f]: v for f, v in zip(formals, given) if f in names}
    return arrays + list(given[len(formals):]), values


def specialise(module: ModuleOp, values: Mapping[str, Any] | None = None) -> ModuleOp:
    """A static copy of `module` for one invocation: each scalar takes `values[name]` (all of them
    at their maxima when `values` is None). Raises ScalarError for a missing or out-of-range value
    and for a loop (or stream) that would run past its declared maximum."""
    clone = module.clone()
    for kernel in _kernels(clone):
        scalars = kernel.scalar_args
        if not scalars:
            continue
        given = _check_values(kernel, scalars, values)
        for op in list(kernel.body.block.ops):
            if isinstance(op, TaskOp):
                _specialise_task(kernel, op, given)
        _bind_types(kernel, given)
        _drop_scalar_operands(kernel)
    return clone


def _check_values(kernel: KernelOp, scalars: dict[str, tuple[SSAValue, int]], values: Mapping[str, Any] | None) -> dict[str, int]:
    given = {}
    for name, (_, most) in scalars.items():
        if values is None:
            given[name] = most
            continue
        if name not in values:
            raise ScalarError(f"kernel @{kernel.sym_name.data}: no value for its run-time scalar {name!r}; pass it with "
                              "the arrays (in the function's argument order)")
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
            raise ScalarError(f"kernel @{kernel.sym_name.data}: scalar {name!r} must be an int, got {value!r}")
        value = int(value)
        if not 0 <= value <= most:
            raise ScalarError(f"kernel @{kernel.sym_name.data}: scalar {name} = {value} is outside [0, {most}], the range "
                              "its program was compiled for (its declared maximum); compile with a larger maximum")
        given[name] = value
    return given


def _specialise_task(kernel: KernelOp, task: TaskOp, values: dict[str, int]) -> None:
    """Replace the task's scalar operands by constants, fold, and check its bounded loops."""
    names = {arg: name for name, (arg, _) in kernel.scalar_args.items()}
    block = task.body.block
    keep = []
    for i, operand in enumerate(task.inputs):
        if operand in names:
            arg = block.args[i]
            const = arith.ConstantOp(IntegerAttr(values[names[operand]], arg.type))
            block.insert_op_before(const, block.first_op)  # type: ignore[arg-type]
            arg.replace_all_uses_with(const.result)
        else:
            keep.append(i)
    if len(keep) == len(task.inputs):
        return
    _fold(task)
    for loop in task.walk():
        if isinstance(loop, scf.ForOp) and MAX_TRIPS in loop.attributes:
            _check_loop(kernel, task, loop, values)
    new = TaskOp.build(
        operands=[[task.inputs[i] for i in keep], list(task.inits)],
        result_types=[[r.type for r in task.outputs]],
        properties=dict(task.properties),
        attributes=dict(task.attributes),
        regions=[Rewriter.move_region_contents_to_new_regions(task.body)],
    )
    for i in reversed(range(len(block.args) - len(task.inits))):
        if i not in keep:
            block.erase_arg(block.args[i])
    Rewriter.replace_op(task, new)


def _constant(value: SSAValue) -> int | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def _fold(task: TaskOp) -> None:
    """Integer arithmetic on constants becomes a constant (so loop bounds are static again)."""
    for op in list(task.walk()):
        if op.name not in _FOLD and op.name not in _CASTS:
            continue
        args = [_constant(v) for v in op.operands]
        if any(a is None for a in args):
            continue
        value = fold_integer(op, args)  # type: ignore[arg-type]
        Rewriter.replace_op(op, arith.ConstantOp(IntegerAttr(value, op.results[0].type)))


def _check_loop(kernel: KernelOp, task: TaskOp, loop: scf.ForOp, values: dict[str, int]) -> None:
    bounds = [_constant(v) for v in (loop.lb, loop.ub, loop.step)]
    most = loop.attributes[MAX_TRIPS].value.data  # type: ignore[attr-defined]
    if any(b is None for b in bounds):  # it depends on enclosing loop indices (a triangular nest): its
        return  # streams' bounds are checked instead (itensor.bind)
    lb, ub, step = bounds
    trips = max(0, -(-(ub - lb) // step))  # type: ignore[operator]
    if trips > most:
        raise ScalarError(f"kernel @{kernel.sym_name.data}, task {task.sym_name.data}: a loop would run {trips} times at "
                          f"{values}, more than its declared maximum {most}; the scalars are beyond what the program "
                          "was compiled for")


def _bind_types(kernel: KernelOp, values: dict[str, int]) -> None:
    """Every bounded itensor value takes its bound type (the stream this invocation carries)."""
    found: list[SSAValue] = []
    for op in kernel.walk():
        found += [r for r in op.results if isinstance(r.type, ITensorType) and r.type.bounds.data]
        for region in op.regions:
            for block in region.blocks:
                found += [a for a in block.args if isinstance(a.type, ITensorType) and a.type.bounds.data]
    for value in found:
        try:
            bound = value.type.itensor.bind(values)  # type: ignore[attr-defined]
        except ITensorError as err:
            owner = value.owner
            what = owner.name if isinstance(owner, Operation) else "a block argument"
            raise ScalarError(f"kernel @{kernel.sym_name.data}: the stream {value.name_hint or ''} of {what} at "
                              f"{values}: {err}") from None
        Rewriter.replace_value_with_new_type(value, bound.to_ir())


def _drop_scalar_operands(kernel: KernelOp) -> None:
    """The kernel (and its function) no longer take the scalars."""
    block = kernel.body.block
    scalar_at = [i for i, v in enumerate(kernel.inputs) if isinstance(v.type, IntegerType)]
    func = kernel.parent_op()
    func_args = [kernel.inputs[i] for i in scalar_at]
    new = KernelOp(kernel.sym_name.data, [v for i, v in enumerate(kernel.inputs) if i not in scalar_at],
                   [r.type for r in kernel.outputs], Rewriter.move_region_contents_to_new_regions(kernel.body))
    new.attributes.update(kernel.attributes)
    for i in reversed(scalar_at):
        block.erase_arg(block.args[i])
    Rewriter.replace_op(kernel, new)
    if isinstance(func, FuncOp):
        fblock = func.body.block
        for arg in func_args:
            if isinstance(arg, SSAValue) and arg.owner is fblock and not arg.uses:
                fblock.erase_arg(arg)  # type: ignore[arg-type]
        func.function_type = FunctionType.from_lists([a.type for a in fblock.args], list(func.function_type.outputs))
