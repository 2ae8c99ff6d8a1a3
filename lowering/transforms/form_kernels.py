"""`form-kernels`: each tiled loop nest becomes a `dataflow.kernel` holding one `dataflow.task`.

The itensor type of every stream is read off the tiled loops (the paper's kernel formation): a
`tensor.extract_slice` of a tensor from outside the nest becomes a `dataflow.itensor_read` of a
task port whose type has the slice sizes as its tile, the enclosing loops' trip counts and steps as
its iteration space, and a map sending each loop whose induction variable is a slice offset to that
tensor dim (constant offsets stay constants). An enclosing loop the offsets do not use is a reuse
loop: the stream replays (a vector re-read for every output tile of a matvec). The
`tensor.insert_slice` of a result tile becomes a `dataflow.itensor_write`, and its type is read off
the same way. The accumulator tile a nest starts each output tile from is a `tensor.empty` or a
`linalg.fill` of a constant on chip when the nest's initial tensor is one, else another port (a
bias, say), read in the output's order.

A rank-0 integer argument of the function (a cache length, a position; `tile-linalg` leaves it
unsliced) becomes a run-time scalar: an i32 operand of the kernels that read it (`scalars`,
`scalar_max` from the argument attribute `scalar_max`), passed to the task after its streams, where
a generic reads it as a one-element `tensor.splat` tile (docs/ir.md, "Run-time scalars").

At the kernel boundary tensors are in HBM: one `dataflow.dma_load` per port, in the port's order,
and a `dataflow.dma_store` of the result (the paper's implicit boundary conversions, which become
its DMAs). `fuse-kernels` then merges kernels and turns the DMAs on fused edges into on-chip
streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith, func, linalg, scf, tensor
from xdsl.dialects.builtin import AffineMapAttr, DictionaryAttr, FunctionType, IntegerAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from lowering.transforms.fuse_elementwise import erase_unused
from lowering.transforms.tile_linalg import TILE_ATTR, is_scalar_tensor
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorEmptyOp,
    ITensorReadOp,
    ITensorType,
    ITensorWriteOp,
    KernelOp,
    TaskOp,
    YieldOp,
)
from streamdsl.dtypes import dtype_from_ir
from streamdsl.itensor import itensor

__all__ = ["SCALAR_MAX", "FormKernelsPass", "form_kernel", "scalar_arguments", "slice_itensor"]


def _const_int(value: SSAValue) -> int:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    raise PassFailedException(f"form-kernels: loop bound {value} is not a constant")


def _loops_around(op: Operation, outer: scf.ForOp) -> list[scf.ForOp]:
    """The scf.for loops enclosing `op` up to and including `outer`, outermost first."""
    loops = []
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, scf.ForOp):
            loops.append(parent)
        if parent is outer:
            break
        parent = parent.parent_op()
    return loops[::-1]


def slice_itensor(op: tensor.ExtractSliceOp | tensor.InsertSliceOp, loops: Sequence[scf.ForOp]) -> itensor:
    """The itensor of the tiles a slice op visits as `loops` run (outermost first)."""
    full = op.source if isinstance(op, tensor.ExtractSliceOp) else op.dest
    assert isinstance(full.type, TensorType)
    ivs = {loop.body.block.args[0]: i for i, loop in enumerate(loops)}
    dynamic = iter(op.offsets)
    results: list[AffineExpr] = []
    for static in op.static_offsets.get_values():
        if static == -(2**63):  # ShapedType.kDynamic
            iv = next(dynamic)
            if iv not in ivs:
                raise PassFailedException(f"form-kernels: {op.name} offset {iv} is not the induction variable of an enclosing loop")
            results.append(AffineExpr.dimension(ivs[iv]))
        else:
            results.append(AffineExpr.constant(static))
    trips, steps = [], []
    for loop in loops:
        lb, ub, step = (_const_int(v) for v in (loop.lb, loop.ub, loop.step))
        if lb != 0:
            raise PassFailedException(f"form-kernels: loop from {lb}; tiled loops start at 0")
        trips.append((ub + step - 1) // step)
        steps.append(step)
    return itensor(dtype_from_ir(full.type.element_type), tile=list(op.static_sizes.get_values()), trips=trips, steps=steps,
                   map=AffineMap(len(loops), 0, tuple(results)))


@dataclass
class _Former:
    """Rebuilds one tiled nest inside a task body, collecting its ports."""

    nest: scf.ForOp
    init: SSAValue  # the nest's initial result tensor
    scalar_info: dict[SSAValue, tuple[str, int]] = field(default_factory=dict)  # function's run-time scalars
    ports: list[tuple[SSAValue, itensor]] = field(default_factory=list)  # (HBM tensor, port type)
    port_args: list[SSAValue] = field(default_factory=list)
    scalars: dict[SSAValue, SSAValue] = field(default_factory=dict)  # function scalar -> task block arg
    out_type: itensor | None = None

    def inside(self, value: SSAValue) -> bool:
        op = value.owner if isinstance(value.owner, Operation) else value.owner.parent_op()
        while op is not None:
            if op is self.nest:
                return True
            op = op.parent_op()
        return False

    def port(self, block: Block, tensor_value: SSAValue, type_: itensor) -> SSAValue:
        arg = block.insert_arg(ITensorType.from_itensor(type_), len(self.port_args))
        self.ports.append((tensor_value, type_))
        self.port_args.append(arg)
        return arg

    def scalar(self, task_block: Block, value: SSAValue) -> SSAValue:
        """The task's block argument for the function's run-time scalar `value` (after the streams)."""
        if value not in self.scalars:
            arg = task_block.insert_arg(value.type, len(self.port_args) + len(self.scalars))
            arg.name_hint = value.name_hint
            self.scalars[value] = arg
        return self.scalars[value]

    def rebuild(self, ops: Sequence[Operation], target: Block, env: dict[SSAValue, SSAValue], task_block: Block) -> None:
        for op in ops:
            for operand in op.operands:
                if operand in self.scalar_info:
                    env[operand] = self.scalar(task_block, operand)
                elif operand not in env and not self.inside(operand):
                    self.outside_operand(operand, op, target, env)
            if isinstance(op, linalg.ops.GenericOp) and any(v in self.scalar_info for v in op.inputs):
                env[op.results[0]] = self.with_scalar_tiles(op, target, env)
            elif isinstance(op, scf.ForOp):
                self.loop(op, target, env, task_block)
            elif isinstance(op, tensor.ExtractSliceOp) and self.carries_result(op.source):
                env[op.result] = self.initial_tile(op, target, env, task_block)
            elif isinstance(op, tensor.ExtractSliceOp) and not self.inside(op.source):
                read = ITensorReadOp(self.port(task_block, op.source, slice_itensor(op, _loops_around(op, self.nest))))
                target.add_op(read)
                env[op.result] = read.result
            elif isinstance(op, tensor.InsertSliceOp) and self.carries_result(op.dest):
                write = ITensorWriteOp(env[op.source], env[op.dest])
                target.add_op(write)
                env[op.result] = write.results[0]
            else:
                clone = op.clone(value_mapper=env)
                target.add_op(clone)

    def with_scalar_tiles(self, op: linalg.ops.GenericOp, target: Block, env: dict[SSAValue, SSAValue]) -> SSAValue:
        """`op` with each run-time scalar input read as a one-element tile (`tensor.splat`, map to
        element 0), as the DSL's kernels use scalars in tile maths."""
        inputs, maps = [], []
        for value, m in zip(op.inputs, op.indexing_maps):
            if value in self.scalar_info:
                splat = tensor.SplatOp(env[value], [], TensorType(value.type, [1]))
                target.add_op(splat)
                inputs.append(splat.result)
                maps.append(AffineMapAttr(AffineMap(m.data.num_dims, 0, (AffineExpr.constant(0),))))
            else:
                inputs.append(env[value])
                maps.append(m)
        maps += op.indexing_maps.data[len(op.inputs):]
        new = linalg.ops.GenericOp(inputs, [env[v] for v in op.outputs], op.body.clone(), maps, op.iterator_types,
                               op.result_types)
        target.add_op(new)
        return new.results[0]

    def outside_operand(self, operand: SSAValue, user: Operation, target: Block, env: dict[SSAValue, SSAValue]) -> None:
        """Constants from outside the nest are cloned in (a task is isolated from above)."""
        if isinstance(operand.owner, arith.ConstantOp):
            clone = operand.owner.clone()
            target.add_op(clone)
            env[operand] = clone.result
        elif not isinstance(user, tensor.ExtractSliceOp):
            raise PassFailedException(f"form-kernels: {user.name} in a tiled nest uses {operand} from outside; only slices "
                                      "of tensors and constants may cross into a kernel")

    def carries_result(self, value: SSAValue) -> bool:
        """Whether `value` is the loop-carried result tensor (a block arg of a parallel loop)."""
        return isinstance(value, BlockArgument) and value.type == self.init.type and isinstance(value.owner.parent_op(), scf.ForOp) \
            and value.index == 1 and self.chain_root(value) is self.init

    def chain_root(self, value: SSAValue) -> SSAValue:
        while isinstance(value, BlockArgument) and isinstance(loop := value.owner.parent_op(), scf.ForOp):
            value = loop.iter_args[value.index - 1]
        return value

    def loop(self, op: scf.ForOp, target: Block, env: dict[SSAValue, SSAValue], task_block: Block) -> None:
        carried = [env[v] for v in op.iter_args]
        body = Block(arg_types=[op.body.block.args[0].type, *(c.type for c in carried)])
        inner = dict(env)
        for old, new in zip(op.body.block.args, body.args):
            inner[old] = new
        self.rebuild(list(op.body.block.ops), body, inner, task_block)
        new = scf.ForOp(env[op.lb], env[op.ub], env[op.step], carried, body)
        target.add_op(new)
        for old, res in zip(op.results, new.results):
            env[old] = res

    def initial_tile(self, op: tensor.ExtractSliceOp, target: Block, env: dict[SSAValue, SSAValue], task_block: Block) -> SSAValue:
        tile_type = op.result.type
        owner = self.init.owner
        if isinstance(owner, tensor.EmptyOp):
            new: Operation = tensor.EmptyOp([], tile_type)
        elif isinstance(owner, linalg.ops.FillOp) and isinstance(owner.inputs[0].owner, arith.ConstantOp):
            value = owner.inputs[0].owner.clone()
            target.add_op(value)
            empty = tensor.EmptyOp([], tile_type)
            target.add_op(empty)
            new = linalg.ops.FillOp([value.result], [empty.tensor], [tile_type])
        else:
            read = ITensorReadOp(self.port(task_block, self.init, slice_itensor(op, _loops_around(op, self.nest))))
            target.add_op(read)
            return read.result
        target.add_op(new)
        return new.results[0]


def _kind(nest: scf.ForOp) -> str:
    generic = next(op for op in nest.walk() if isinstance(op, linalg.ops.GenericOp))
    names = {op.name for op in generic.body.block.ops}
    if any(str(it.data) == "reduction" for it in generic.iterator_types):
        return "matmul" if {"arith.mulf", "arith.addf"} <= names else "reduce"
    return "map"


def form_kernel(nest: scf.ForOp, name: str, scalars: dict[SSAValue, tuple[str, int]] | None = None) -> KernelOp:
    """Replace the tiled nest `nest` by a kernel of one task between DMAs; returns the kernel.
    `scalars`: the function's run-time scalar arguments with their names and maxima."""
    init = nest.iter_args[0]
    former = _Former(nest, init, dict(scalars or {}))
    writes = [op for op in nest.walk() if isinstance(op, tensor.InsertSliceOp) and former.carries_result(op.dest)]
    if len(writes) != 1:
        raise PassFailedException(f"form-kernels: the nest {name} must write its result tiles at one place, found {len(writes)}")
    former.out_type = slice_itensor(writes[0], _loops_around(writes[0], nest))
    out_type = ITensorType.from_itensor(former.out_type)
    task_block = Block(arg_types=[out_type])
    env: dict[SSAValue, SSAValue] = {init: task_block.args[0]}
    former.rebuild([nest], task_block, env, task_block)
    task_block.add_op(YieldOp(env[nest.results[0]]))

    tensors = list(dict.fromkeys(t for t, _ in former.ports))
    operands = [*tensors, *former.scalars]
    kblock = Block(arg_types=[t.type for t in operands])
    arg_of = dict(zip(operands, kblock.args))
    for t, a in arg_of.items():
        a.name_hint = t.name_hint
    loads = [DmaLoadOp(arg_of[t], ITensorType.from_itensor(it)) for t, it in former.ports]
    empty = ITensorEmptyOp(out_type)
    task = TaskOp(name, [*(ld.result for ld in loads), *(arg_of[v] for v in former.scalars)], [empty.result], Region(task_block))
    store = DmaStoreOp(task.outputs[0])
    kblock.add_ops([*loads, empty, task, store, YieldOp(store.result)])
    kernel = KernelOp(name, operands, [store.result.type], Region(kblock), [former.scalar_info[v] for v in former.scalars])
    Rewriter.insert_op(kernel, InsertPoint.before(nest))
    nest.results[0].replace_all_uses_with(kernel.outputs[0])
    bounds = [nest.lb, nest.ub, nest.step]
    Rewriter.erase_op(nest)
    for value in [init, *bounds]:
        erase_unused(value)
    return kernel



@dataclass(frozen=True)
class FormKernelsPass(ModulePass):
    """Each tiled nest (an `scf.for` marked by tile-linalg) becomes a kernel of one task."""

    name = "form-kernels"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        count = 0
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            scalars = scalar_arguments(fn)
            for nest in [o for o in fn.body.block.ops if isinstance(o, scf.ForOp) and TILE_ATTR in o.attributes]:
                form_kernel(nest, f"k{count}_{_kind(nest)}", scalars)
                count += 1


SCALAR_MAX = "scalar_max"  # argument attribute: the largest value a run-time scalar argument takes


def _arg_attr(fn: func.FuncOp, index: int, key: str) -> Attribute | None:
    if fn.arg_attrs is None:
        return None
    attrs = fn.arg_attrs.data[index]
    assert isinstance(attrs, DictionaryAttr)
    return attrs.data.get(key)


def scalar_arguments(fn: func.FuncOp) -> dict[SSAValue, tuple[str, int]]:
    """Each used rank-0 integer tensor argument of `fn` becomes an integer argument, a run-time
    scalar of the kernels that read it: its name (`torch.name`, else the SSA name) and its
    maximum (the `scalar_max` argument attribute)."""
    found: dict[SSAValue, tuple[str, int]] = {}
    for arg in list(fn.body.block.args):
        if not is_scalar_tensor(arg) or not arg.uses:
            continue
        name_attr = _arg_attr(fn, arg.index, "torch.name")
        name = name_attr.data if isinstance(name_attr, StringAttr) else arg.name_hint or f"arg{arg.index}"
        most = _arg_attr(fn, arg.index, SCALAR_MAX)
        if not isinstance(most, IntegerAttr):
            raise PassFailedException(f"form-kernels: the rank-0 argument %{arg.name_hint or arg.index} ({name}) is a run-time "
                                      f"scalar; give its largest value as the argument attribute `{SCALAR_MAX} = N : i64` "
                                      f"(lowering.pipeline.lower(..., scalar_max={{{name!r}: N}}))")
        assert isinstance(arg.type, TensorType)
        scalar = Rewriter.replace_value_with_new_type(arg, arg.type.element_type)
        for use in list(scalar.uses):  # `tensor.extract` of its one element (a DSL kernel's scalar operand)
            if isinstance(use.operation, tensor.ExtractOp):
                use.operation.result.replace_all_uses_with(scalar)
                Rewriter.erase_op(use.operation)
        found[scalar] = (name, most.value.data)
    fn.function_type = FunctionType.from_lists([a.type for a in fn.body.block.args], list(fn.function_type.outputs))
    return found
