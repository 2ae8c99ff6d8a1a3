"""`fuse-kernels`: merge kernels into fused kernels under an on-chip memory budget (Algorithm 2).

Kernels are visited in program (topological) order. For a kernel `n`, the edges from each
predecessor kernel `p` (a result of `p` that `n` loads, possibly through `tensor.expand_shape` /
`collapse_shape`) are charged the bytes of the layout converter they would need on chip (the
planner of `insert-converters`; 0 when the two stream orders agree). The candidate groups are
those of `n`'s predecessors, each with the summed cost of its edges; `n` joins the nearest (the
latest group) if that group's cost plus the new edges' stays within `budget` bytes, else it starts
a group. A kernel that reads only HBM tensors (a bias broadcast, say) joins the latest group at no
cost. Joining only the latest group keeps groups convex (no path leaves a group and comes
back), so fused kernels stay acyclic.

Each group becomes one `dataflow.kernel`: a fused edge's `dma_store` -> `dma_load` pair becomes an
on-chip stream from the producing task, through an `itensor_reassociate` where the tensor was
reshaped and an `itensor_converter` (unplanned; `insert-converters` sizes it) where the consumer
reads in another order. A stream with several consumers gets an `itensor_fork`. A result still
needed outside its group (by another group or the function's return) keeps its `dma_store`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func, tensor
from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.transforms.dead_code_elimination import region_dce
from xdsl.utils.exceptions import PassFailedException

from lowering.converters import plan
from lowering.memory import onchip_bytes
from lowering.reshape_streams import Placed, reshape_itensor
from lowering.transforms.insert_converters import _fork_uses
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorChunkOp,
    ITensorConcatOp,
    ITensorConverterOp,
    ITensorReassociateOp,
    ITensorType,
    KernelOp,
    YieldOp,
)
from streamdsl.dtypes import dtype_from_ir
from streamdsl.itensor import itensor
from streamdsl.layout import loops_of

__all__ = ["FuseKernelsPass", "FusionPlan", "fuse_kernels", "plan_fusion"]

RESHAPES = (tensor.ExpandShapeOp, tensor.CollapseShapeOp)
VIEWS = (*RESHAPES, tensor.ExtractSliceOp, tensor.ConcatOp)
INFEASIBLE = float("inf")


def trace_reshapes(value: SSAValue) -> SSAValue:
    """The tensor `value` is a reshape (chain) of."""
    while isinstance(value.owner, RESHAPES):
        value = value.owner.operands[0]
    return value


def view_sources(value: SSAValue) -> list[SSAValue]:
    """The tensors `value` is built from through reshapes, static slices and concats."""
    if isinstance(value.owner, (*RESHAPES, tensor.ExtractSliceOp)):
        return view_sources(value.owner.operands[0])
    if isinstance(value.owner, tensor.ConcatOp):
        return [v for part in value.owner.operands for v in view_sources(part)]
    return [value]


def concat_part(op: tensor.ExtractSliceOp) -> SSAValue | None:
    """The operand of a `tensor.concat` that the static slice `op` of it selects exactly (the
    new KV rows of a cache extended by concatenation), else None."""
    cat = op.source.owner
    if not isinstance(cat, tensor.ConcatOp) or op.offsets or op.sizes or op.strides:
        return None
    dim = cat.dim.value.data
    start = 0
    for part in cat.inputs:
        assert isinstance(part.type, TensorType)
        offsets = [0] * len(part.type.get_shape())
        offsets[dim] = start
        if list(op.static_offsets.get_values()) == offsets and list(op.static_sizes.get_values()) == list(part.type.get_shape()) \
                and set(op.static_strides.get_values()) == {1}:
            return part
        start += part.type.get_shape()[dim]
    return None


def _through_reshapes_only(value: SSAValue) -> bool:
    return not isinstance(value.owner, VIEWS) or (isinstance(value.owner, RESHAPES) and _through_reshapes_only(value.owner.operands[0]))


def _stored_stream(kernel: KernelOp, index: int) -> itensor:
    yield_op = kernel.body.block.last_op
    assert isinstance(yield_op, YieldOp)
    store = yield_op.operands[index].owner
    assert isinstance(store, DmaStoreOp)
    assert isinstance(store.source.type, ITensorType)
    return store.source.type.itensor


def _route(src: itensor, want: itensor) -> tuple[itensor | None, itensor | None, int] | None:
    """How a stream `src` reaches a consumer that loads `want` (of a reshape of the same tensor):
    (the type to reassociate to before converting, the type to reassociate to after converting,
    converter bytes), or None if no reassociation exists."""
    if src.shape == want.shape:
        return None, None, plan(src, want).bytes if src != want else 0
    forward = reshape_itensor(src, want.shape)
    if forward is not None:
        return forward, None, plan(forward, want).bytes if forward != want else 0
    backward = reshape_itensor(want, src.shape)
    if backward is not None:
        return None, backward, plan(src, backward).bytes if src != backward else 0
    return None


@dataclass
class FusionPlan:
    """Algorithm 2's result: each kernel's group and each group's converter bytes."""

    kernels: list[KernelOp]
    group_of: dict[KernelOp, int] = field(default_factory=dict)
    costs: list[float] = field(default_factory=list)
    edge_costs: dict[tuple[KernelOp, KernelOp], float] = field(default_factory=dict)

    def groups(self) -> list[list[KernelOp]]:
        out: list[list[KernelOp]] = [[] for _ in self.costs]
        for k in self.kernels:
            out[self.group_of[k]].append(k)
        return out


def _edges_into(kernel: KernelOp) -> dict[KernelOp, float]:
    """Converter bytes of each predecessor kernel's edges into `kernel` (summed)."""
    costs: dict[KernelOp, float] = {}
    for load in kernel.body.block.ops:
        if not isinstance(load, DmaLoadOp):
            continue
        outer = kernel.inputs[load.source.index]
        assert isinstance(load.result.type, ITensorType)
        want = load.result.type.itensor
        for source in view_sources(outer):
            producer = source.owner
            if not isinstance(producer, KernelOp):
                continue
            if _through_reshapes_only(outer):
                route = _route(_stored_stream(producer, source.index), want)
                cost = INFEASIBLE if route is None else route[2]
            else:  # through slices or concats: charged a whole-tensor converter (an upper bound)
                cost = want.num_elements * want.dtype.bits // 8
            costs[producer] = costs.get(producer, 0) + cost
    return costs


def plan_fusion(kernels: list[KernelOp], budget: float) -> FusionPlan:
    """Algorithm 2 (greedy, topological order, nearest candidate group, budget `budget` bytes)."""
    result = FusionPlan(kernels)
    for n in kernels:
        edges = _edges_into(n)
        candidates: dict[int, float] = {}
        for p, cost in edges.items():
            result.edge_costs[p, n] = cost
            candidates[result.group_of[p]] = candidates.get(result.group_of[p], 0) + cost
        if not candidates and result.costs:  # reads only HBM: joining the latest group adds no converter
            candidates[len(result.costs) - 1] = 0
        if candidates:
            g = max(candidates)
            if result.costs[g] + candidates[g] <= budget:
                result.group_of[n] = g
                result.costs[g] += candidates[g]
                continue
        result.group_of[n] = len(result.costs)
        result.costs.append(0)
    return result


def _dim_order(want: itensor | None, dim: int, rank: int) -> list[int]:
    """The tensor dims outermost first in the order `want` streams them (without one, the concat
    `dim` first): a concatenation takes each whole tile from the part it lies in, so it can
    stream in its consumer's order (a KV cache read head-dim tile by head-dim tile by the values'
    contraction) instead of needing a converter that buffers the whole cache."""
    order: list[int] = []
    for loop in (loops_of(want) if want is not None else None) or []:
        order += [d for d, v in enumerate(loop.stride) if v and d not in order]
    if not order:
        order = [dim]
    return order + [d for d in range(rank) if d not in order]


class _Merger:
    """Builds the fused kernel of one group."""

    def __init__(self, members: list[KernelOp], name: str):
        self.members, self.name = members, name
        self.member_set = set(members)
        self.block = Block()
        self.args: dict[SSAValue, SSAValue] = {}  # outside tensor -> block arg
        self.streams: dict[SSAValue, SSAValue] = {}  # member result tensor -> its stream in the new body
        self.stores: dict[SSAValue, DmaStoreOp] = {}  # member result tensor -> its cloned store
        self.chunks: dict[tuple[SSAValue, int], dict[int, SSAValue]] = {}  # (sliced tensor, dim) -> part by offset

    def arg(self, value: SSAValue) -> SSAValue:
        if value not in self.args:
            self.args[value] = self.block.insert_arg(value.type, len(self.args))
            self.args[value].name_hint = value.name_hint
        return self.args[value]

    def add(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def convert(self, stream: SSAValue, target: itensor) -> SSAValue:
        """`stream` in the order `target` (a cast when only the spelling differs)."""
        assert isinstance(stream.type, ITensorType)
        if stream.type.itensor is target or stream.type == ITensorType.from_itensor(target):
            return stream
        type_ = ITensorType.from_itensor(target)
        same = stream.type.itensor == target
        return self.add(ITensorCastOp(stream, type_) if same else ITensorConverterOp(stream, type_))

    def materialize(self, value: SSAValue, want: itensor | None) -> SSAValue:
        """A stream of the tensor `value` (a member's result, or a view of one), preferably in the
        order `want`; built once per value."""
        if value in self.streams:
            return self.streams[value]
        owner = value.owner
        if isinstance(owner, RESHAPES):
            stream = self.reshaped(owner.operands[0], value, want)
        elif isinstance(owner, tensor.ExtractSliceOp) and (part := concat_part(owner)) is not None:
            stream = self.materialize(part, want)  # the slice is one part of a concatenation: that part
        elif isinstance(owner, tensor.ExtractSliceOp):
            stream = self.chunk_part(owner)
        elif isinstance(owner, tensor.ConcatOp):
            stream = self.concat(owner, want)
        else:  # a tensor in HBM (a function argument or another group's result)
            assert isinstance(value.type, TensorType)
            type_ = want or itensor.tiled(dtype_from_ir(value.type.element_type), value.type.get_shape(), value.type.get_shape())
            stream = self.add(DmaLoadOp(self.arg(value), ITensorType.from_itensor(type_)))
        self.streams[value] = stream
        return stream

    def hbm_view(self, value: SSAValue, want: itensor) -> SSAValue | None:
        """A DMA of the HBM tensor that `value` is a view of (reshapes and static slices), reading
        it in the consumer's order `want`; None when `value` is not such a view or the order does
        not carry over. Used for streams of run-time length, which converters cannot reorder."""
        placed: Placed | None = Placed.whole(want)
        while placed is not None and isinstance(value.owner, VIEWS):
            owner = value.owner
            if isinstance(owner, tensor.ExtractSliceOp) and (part := concat_part(owner)) is not None:
                value = part
                continue
            source = owner.operands[0]
            assert isinstance(source.type, TensorType)
            if isinstance(owner, RESHAPES):
                placed = placed.reshaped(source.type.get_shape())
            elif isinstance(owner, tensor.ExtractSliceOp) and not (owner.offsets or owner.sizes or owner.strides) \
                    and set(owner.static_strides.get_values()) == {1} and len(source.type.get_shape()) == placed.it.rank:
                placed = placed.sliced(owner.static_offsets.get_values(), source.type.get_shape())
            else:
                return None
            value = source
        if placed is None or isinstance(value.owner, VIEWS) or value.owner in self.member_set:
            return None
        assert isinstance(value.type, TensorType)
        whole = placed.low == (0,) * len(placed.low) and placed.it.shape == tuple(value.type.get_shape())
        load = self.add(DmaLoadOp(self.arg(value), ITensorType.from_itensor(placed.it), None if whole else placed.low))
        return load if placed.it is want else self.add(ITensorReassociateOp(load, ITensorType.from_itensor(want)))

    def reshaped(self, source: SSAValue, value: SSAValue, want: itensor | None) -> SSAValue:
        assert isinstance(value.type, TensorType) and isinstance(source.type, TensorType)
        pulled = reshape_itensor(want, source.type.get_shape()) if want is not None else None
        stream = self.materialize(source, pulled)
        assert isinstance(stream.type, ITensorType)
        forward = reshape_itensor(stream.type.itensor, value.type.get_shape())
        if forward is not None:
            return self.add(ITensorReassociateOp(stream, ITensorType.from_itensor(forward)))
        if pulled is None or want is None:
            raise PassFailedException(f"fuse-kernels: {self.name}: the stream {stream.type} has no reshape to {value.type}")
        return self.add(ITensorReassociateOp(self.convert(stream, pulled), ITensorType.from_itensor(want)))

    def chunk_part(self, op: tensor.ExtractSliceOp) -> SSAValue:
        """One part of the `itensor_chunk` that cuts the sliced stream into all its slices."""
        source = op.source
        assert isinstance(source.type, TensorType)
        shape = source.type.get_shape()
        sizes, offsets = list(op.static_sizes.get_values()), list(op.static_offsets.get_values())
        cut = [d for d in range(len(shape)) if sizes[d] != shape[d]]
        if len(cut) != 1 or op.offsets or list(op.static_strides.get_values()) != [1] * len(shape):
            raise PassFailedException(f"fuse-kernels: {self.name}: {op.name} {offsets} {sizes} of {source.type}: only static "
                                      "slices along one dim become stream chunks")
        dim = cut[0]
        if (source, dim) not in self.chunks:
            siblings = sorted({(int(u.operation.static_offsets.get_values()[dim]), int(u.operation.static_sizes.get_values()[dim]))
                               for u in source.uses if isinstance(u.operation, tensor.ExtractSliceOp)})
            start = 0
            for off, size in siblings:
                if off != start:
                    raise PassFailedException(f"fuse-kernels: {self.name}: the slices of {source.type} along dim {dim} "
                                              f"({siblings}) do not cut it into consecutive parts")
                start += size
            if start != shape[dim]:
                raise PassFailedException(f"fuse-kernels: {self.name}: the slices of {source.type} along dim {dim} cover "
                                          f"{start} of {shape[dim]}")
            stream = self.materialize(source, None)
            assert isinstance(stream.type, ITensorType)
            whole = stream.type.itensor
            step = math.gcd(whole.tile[dim], *(v for part in siblings for v in part))
            if step != whole.tile[dim]:
                tile = list(whole.tile)
                tile[dim] = step
                whole = itensor.tiled(whole.dtype, shape, tile)
                stream = self.convert(stream, whole)
            parts = [whole.region(dim, off, size) for off, size in siblings]
            chunk = ITensorChunkOp(stream, dim, [ITensorType.from_itensor(p) for p in parts])
            self.block.add_op(chunk)
            self.chunks[source, dim] = {off: out for (off, _), out in zip(siblings, chunk.outputs)}
        return self.chunks[source, dim][offsets[dim]]

    def concat(self, op: tensor.ConcatOp, want: itensor | None) -> SSAValue:
        """An `itensor_concat` of the parts' streams, in an order whose regions they can stream."""
        dim = op.dim.value.data
        assert isinstance(op.result.type, TensorType)
        shape = op.result.type.get_shape()
        sizes = [p.type.get_shape()[dim] for p in op.inputs]
        tile = list(want.tile) if want is not None else list(shape)
        tile[dim] = math.gcd(tile[dim], *sizes)
        whole = itensor.tiled(dtype_from_ir(op.result.type.element_type), shape, tile, _dim_order(want, dim, len(shape)))
        parts, start = [], 0
        for value, size in zip(op.inputs, sizes):
            part = whole.region(dim, start, size)
            parts.append(self.convert(self.materialize(value, part), part))
            start += size
        return self.add(ITensorConcatOp(parts, dim, ITensorType.from_itensor(whole)))

    def merge(self) -> KernelOp:
        scalars: dict[str, int] = {}
        for kernel in self.members:
            env: dict[SSAValue, SSAValue] = {}
            for name, (arg, most) in kernel.scalar_args.items():  # run-time scalars pass straight through
                env[arg] = self.arg(kernel.inputs[arg.index])
                scalars[name] = most
            for op in kernel.body.block.ops:
                if isinstance(op, DmaLoadOp):
                    outer = kernel.inputs[op.source.index]
                    if isinstance(outer.owner, VIEWS) or outer.owner in self.member_set:
                        assert isinstance(op.result.type, ITensorType)
                        want = op.result.type.itensor
                        direct = self.hbm_view(outer, want) if want.bounds else None
                        env[op.result] = direct or self.convert(self.materialize(outer, want), want)
                        continue
                    env[op.source] = self.arg(outer)
                if isinstance(op, YieldOp):
                    for result, value in zip(kernel.outputs, op.values):
                        store = env[value].owner
                        assert isinstance(store, DmaStoreOp)
                        self.streams[result] = store.source
                        self.stores[result] = store
                    continue
                clone = op.clone(value_mapper=env)
                self.block.add_op(clone)
                for old, new in zip(op.results, clone.results):
                    env[old] = new
        exported = self.exported()
        for result, store in self.stores.items():
            if result not in exported:
                Rewriter.erase_op(store)
        stored = [self.stores[v].result if v in self.stores else self.add(DmaStoreOp(self.materialize(v, None)))
                  for v in exported]
        self.block.add_op(YieldOp(*stored))
        for op in list(self.block.ops):
            for value in op.results:
                if isinstance(value.type, ITensorType):
                    _fork_uses(value)
        unused = [part for parts in self.chunks.values() for part in parts.values() if not part.uses]
        if unused:
            raise PassFailedException(f"fuse-kernels: {self.name}: a slice of a fused stream is used by no kernel of the group")
        self.in_argument_order()
        names = {outer: name for kernel in self.members for name, (arg, _) in kernel.scalar_args.items()
                 for outer in [kernel.inputs[arg.index]]}
        order = [(names[v], scalars[names[v]]) for v in self.args if isinstance(v.type, IntegerType)]
        fused = KernelOp(self.name, list(self.args), [v.type for v in stored], Region(self.block), order)
        Rewriter.insert_op(fused, InsertPoint.before(self.members[-1]))
        for old, new in zip(exported, fused.outputs):
            old.replace_all_uses_with(new)
        return fused

    def in_argument_order(self) -> None:
        """Operands in the function's argument order (what callers, the simulators and the HLS
        top pass), values from other groups after them."""
        def rank(value: SSAValue) -> tuple[int, int]:
            return (0, value.index) if isinstance(value, BlockArgument) and isinstance(value.owner.parent_op(), func.FuncOp) \
                else (1, 0)
        outer = sorted(self.args, key=rank)  # stable: other groups' values keep their order
        if outer == list(self.args):
            return
        old = [self.args[v] for v in outer]
        for value, arg in zip(outer, old):
            new = self.block.insert_arg(arg.type, len(self.block.args))
            new.name_hint = arg.name_hint
            arg.replace_all_uses_with(new)
            self.args[value] = new
        for arg in old:
            self.block.erase_arg(arg)
        self.args = {v: self.args[v] for v in outer}

    def exported(self) -> list[SSAValue]:
        """Members' results and views of them that something outside the group uses (another
        group's kernel, the function's return)."""
        out: list[SSAValue] = []

        def visit(value: SSAValue) -> None:
            for use in list(value.uses):
                user = use.operation
                if isinstance(user, VIEWS):
                    visit(user.results[0])
                elif user not in self.member_set and value not in out:
                    out.append(value)

        for kernel in self.members:
            for result in kernel.outputs:
                visit(result)

        def returned_at(value: SSAValue) -> int:  # results in the function's return order (the HLS top's)
            for use in value.uses:
                if isinstance(use.operation, func.ReturnOp):
                    return use.index
            return len(out)

        return sorted(out, key=returned_at)


def _move_reshapes_up(fn: func.FuncOp) -> None:
    """Place each reshape right after its source, so a fused kernel (inserted where its last member
    was) sees every reshape of an earlier member's result defined above it."""
    for op in [o for o in fn.body.block.ops if isinstance(o, RESHAPES)]:
        source = op.operands[0]
        op.detach()
        where = InsertPoint.after(source.owner) if isinstance(source.owner, Operation) else InsertPoint.at_start(fn.body.block)
        Rewriter.insert_op(op, where)


def fuse_kernels(fn: func.FuncOp, budget: float | None = None) -> FusionPlan:
    """Plan and apply the fusion of `fn`'s kernels under `budget` bytes (None: what the device's
    BRAM36 and URAM hold); returns the plan."""
    region_dce(fn.body)
    _move_reshapes_up(fn)
    kernels = [op for op in fn.body.block.ops if isinstance(op, KernelOp)]
    fusion = plan_fusion(kernels, onchip_bytes() if budget is None else budget)
    groups = fusion.groups()
    for index, members in enumerate(groups):
        if len(members) > 1:
            _Merger(members, members[0].sym_name.data if len(groups) > 1 else fn.sym_name.data).merge()
            for kernel in reversed(members):
                Rewriter.erase_op(kernel, safe_erase=False)
    region_dce(fn.body)
    _topological_order(fn.body.block)
    return fusion


def _topological_order(block: Block) -> None:
    """Reorder `block` so every op follows the ops it uses (stable: program order otherwise); a
    fused kernel sits where its last member was, which some user of an earlier member preceded."""
    ops = list(block.ops)
    index = {op: i for i, op in enumerate(ops)}
    placed: set[Operation] = set()
    order: list[Operation] = []

    def place(op: Operation) -> None:
        if op in placed:
            return
        placed.add(op)
        for operand in op.operands:
            if isinstance(operand.owner, Operation) and operand.owner in index:
                place(operand.owner)
        order.append(op)

    for op in ops:
        place(op)
    if order != ops:
        for op in order:
            op.detach()
        block.add_ops(order)


@dataclass(frozen=True)
class FuseKernelsPass(ModulePass):
    """Fuse kernels greedily (Algorithm 2) while each group's converters fit `budget` bytes
    (default: what the device's BRAM36 and URAM hold, `lowering.memory.onchip_bytes`)."""

    name = "fuse-kernels"

    budget: int | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            fuse_kernels(fn, self.budget)

