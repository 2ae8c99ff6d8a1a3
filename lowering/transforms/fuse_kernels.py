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

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func, tensor
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.transforms.dead_code_elimination import region_dce
from xdsl.utils.exceptions import PassFailedException

from lowering.converters import plan
from lowering.reshape_streams import reshape_itensor
from lowering.transforms.insert_converters import _fork_uses
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorCastOp,
    ITensorConverterOp,
    ITensorReassociateOp,
    ITensorType,
    KernelOp,
    YieldOp,
)
from streamdsl.itensor import itensor

__all__ = ["FuseKernelsPass", "FusionPlan", "fuse_kernels", "plan_fusion"]

RESHAPES = (tensor.ExpandShapeOp, tensor.CollapseShapeOp)
INFEASIBLE = float("inf")


def trace_reshapes(value: SSAValue) -> SSAValue:
    """The tensor `value` is a reshape (chain) of."""
    while isinstance(value.owner, RESHAPES):
        value = value.owner.operands[0]
    return value


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
        source = trace_reshapes(kernel.inputs[load.source.index])
        producer = source.owner
        if not isinstance(producer, KernelOp):
            continue
        assert isinstance(load.result.type, ITensorType)
        route = _route(_stored_stream(producer, source.index), load.result.type.itensor)
        costs[producer] = costs.get(producer, 0) + (INFEASIBLE if route is None else route[2])
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


class _Merger:
    """Builds the fused kernel of one group."""

    def __init__(self, members: list[KernelOp], name: str):
        self.members, self.name = members, name
        self.member_set = set(members)
        self.block = Block()
        self.args: dict[SSAValue, SSAValue] = {}  # outside tensor -> block arg
        self.streams: dict[SSAValue, SSAValue] = {}  # member result tensor -> its stream in the new body
        self.stores: dict[SSAValue, DmaStoreOp] = {}  # member result tensor -> its cloned store

    def arg(self, value: SSAValue) -> SSAValue:
        if value not in self.args:
            self.args[value] = self.block.insert_arg(value.type, len(self.args))
            self.args[value].name_hint = value.name_hint
        return self.args[value]

    def add(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def connect(self, stream: SSAValue, want: ITensorType, load: DmaLoadOp) -> SSAValue:
        assert isinstance(stream.type, ITensorType)
        route = _route(stream.type.itensor, want.itensor)
        if route is None:
            raise PassFailedException(f"fuse-kernels: {self.name}: the stream {stream.type} cannot be reshaped to {want}")
        before, after, _ = route
        if before is not None:
            stream = self.add(ITensorReassociateOp(stream, ITensorType.from_itensor(before)))
        target = ITensorType.from_itensor(after) if after is not None else want
        if stream.type != target:
            assert isinstance(stream.type, ITensorType)
            same = stream.type.itensor == target.itensor
            stream = self.add(ITensorCastOp(stream, target) if same else ITensorConverterOp(stream, target))
        if after is not None:
            stream = self.add(ITensorReassociateOp(stream, want))
        return stream

    def merge(self) -> KernelOp:
        for kernel in self.members:
            env: dict[SSAValue, SSAValue] = {}
            for op in kernel.body.block.ops:
                if isinstance(op, DmaLoadOp):
                    outer = kernel.inputs[op.source.index]
                    source = trace_reshapes(outer)
                    if source.owner in self.member_set:
                        assert isinstance(op.result.type, ITensorType)
                        env[op.result] = self.connect(self.streams[source], op.result.type, op)
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
        kept = [r for r in self.stores if _used_outside(r, self.member_set)]
        for result, store in self.stores.items():
            if result not in kept:
                Rewriter.erase_op(store)
        self.block.add_op(YieldOp(*[self.stores[r].result for r in kept]))
        for op in list(self.block.ops):
            for value in op.results:
                if isinstance(value.type, ITensorType):
                    _fork_uses(value)
        fused = KernelOp(self.name, list(self.args), [r.type for r in kept], Region(self.block))
        Rewriter.insert_op(fused, InsertPoint.before(self.members[-1]))
        for old, new in zip(kept, fused.outputs):
            old.replace_all_uses_with(new)
        return fused


def _used_outside(result: SSAValue, members: set[KernelOp]) -> bool:
    for use in result.uses:
        user = use.operation
        if isinstance(user, RESHAPES):
            if _used_outside(user.results[0], members):
                return True
        elif user not in members:
            return True
    return False


def _move_reshapes_up(fn: func.FuncOp) -> None:
    """Place each reshape right after its source, so a fused kernel (inserted where its last member
    was) sees every reshape of an earlier member's result defined above it."""
    for op in [o for o in fn.body.block.ops if isinstance(o, RESHAPES)]:
        source = op.operands[0]
        op.detach()
        where = InsertPoint.after(source.owner) if isinstance(source.owner, Operation) else InsertPoint.at_start(fn.body.block)
        Rewriter.insert_op(op, where)


def fuse_kernels(fn: func.FuncOp, budget: float) -> FusionPlan:
    """Plan and apply the fusion of `fn`'s kernels; returns the plan."""
    region_dce(fn.body)
    _move_reshapes_up(fn)
    kernels = [op for op in fn.body.block.ops if isinstance(op, KernelOp)]
    fusion = plan_fusion(kernels, budget)
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
    """Fuse kernels greedily (Algorithm 2) while each group's converters fit `budget` bytes."""

    name = "fuse-kernels"

    budget: int = 2016 * 36 * 1024 // 8 + 960 * 288 * 1024 // 8  # the U55C's BRAM and URAM in bytes

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            fuse_kernels(fn, self.budget)

