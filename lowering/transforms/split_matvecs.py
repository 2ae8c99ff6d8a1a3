"""`split-matvecs`: a task that contracts against an HBM weight becomes P parallel tasks, each over
a P-th of its output, each with weight DMAs of its own.

A decode step's matvecs stream their weights through one DMA each, a beat of at most 1,024 bits a
cycle, one matvec after the other: 128 bytes a cycle of the 1,700 the 32 pseudo-channels deliver.
Split P ways along its outermost loop (a parallel loop over output tiles), a matvec streams P
weight slices at once, each on channels of its own (`allocate-hbm-channels` stripes them).

Which tasks (`splittable`): the task body is one outermost `scf.for` with constant bounds (plus
constants), every port is accessed inside it, so every itensor port has that loop first; at least
one input is **driven** by it (its map moves a tensor dim with that loop) and fed by a
`dma_load` (a weight in HBM), and every output is driven by it (the loop is parallel for the
result). Part p runs the loop over the p-th contiguous range of its iterations; its ports carry
the same itensor with the outer trip count divided by P:
- a driven input from a `dma_load` becomes a `dma_load` of the box of its part (`offsets`);
  a driven input from anything else is cut by an `itensor_chunk` along the driven dim;
- an input the loop does not drive (the activation vector, replayed for every output tile) is
  replayed fewer times: from a `dma_load`, P `dma_load`s; from a converter or cast, a fork of that
  converter's source and a planned converter per part; from a fork output, the same again from
  the fork's source;
- run-time scalars go to every part;
- each output's P parts are joined by an `itensor_concat` along its driven dim, in the
  consumer's order (part 0's tiles, then part 1's: the order of the loop the parts cut);
  where a chunk cuts that concat into pieces that are runs of parts (c_attn in 3 or 6 parts, cut
  into query, keys and values), each piece is its run of parts (`fold_concat_chunks`), so the
  pieces stream side by side instead of one after the other.

A chunk a part put on its input is moved above the stream ops that feed it (`hoist_chunk`): a
`dma_load` becomes a load of each part's box, a cast, reassociate, converter, fork or concat along
another dim one op per part, its results joined by concats that a split consumer's chunk folds
away. So a chain split where its inputs pass through such ops (the attention split by heads, its
keys the cache's rows and the new row concatenated, then retiled: `cache_chains`) reads each
part's heads from sources of its own, side by side, instead of one part after the other.

Part p is named `<task>_p<p>`; a task with `unroll` keeps it in every part. The pass splits
every task with a `split = P` attribute (set by a design plan, lowering/dse.py), or, with the
option `parts=P`, every splittable task whose outer trip count P divides.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException, VerifyException

from lowering.converters import ConverterError, plan
from lowering.transforms.insert_converters import _drop_fork_output, _fork_uses, planned_converter
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    ITensorCastOp,
    ITensorChunkOp,
    ITensorConcatOp,
    ITensorConverterOp,
    ITensorEmptyOp,
    ITensorForkOp,
    ITensorReassociateOp,
    ITensorType,
    KernelOp,
    TaskOp,
)
from streamdsl.itensor import itensor

__all__ = [
    "PART", "SPLIT_ATTR", "SplitError", "SplitMatvecsPass", "cache_chains", "feeding_chains", "fold_concat_chunks", "hoist_chunk",
    "is_weight_matvec",
    "outer_trips", "split_task", "split_tasks", "splittable", "stream_consumers", "stream_producers", "weight_chains",
]  # fmt: skip

SPLIT_ATTR = "split"  # on a dataflow.task: the parallel parts a design plan splits it into
PART = re.compile(r"_p(\d+)$")  # part p of split task t is named `t_p<p>`: PART.sub("", name) is t, group 1 is p


class SplitError(ValueError):
    """A task that cannot be split as asked (names the task and the reason)."""


def _it(value: SSAValue) -> itensor:
    assert isinstance(value.type, ITensorType)
    return value.type.itensor


def _outer_loop(task: TaskOp) -> scf.ForOp | None:
    """The task's one top-level loop, when the rest of its body is constants and the yield."""
    loops = [op for op in task.body.block.ops if isinstance(op, scf.ForOp)]
    others = [op for op in task.body.block.ops if not isinstance(op, scf.ForOp | arith.ConstantOp) and op is not task.body.block.last_op]
    return loops[0] if len(loops) == 1 and not others else None


def _constant(value: SSAValue) -> int | None:
    owner = value.owner
    return owner.value.value.data if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr) else None


def outer_trips(task: TaskOp) -> int | None:
    """Trips of the task's outermost loop when it has one with constant bounds, else None."""
    loop = _outer_loop(task)
    if loop is None:
        return None
    lb, ub, step = (_constant(v) for v in (loop.lb, loop.ub, loop.step))
    return None if lb is None or ub is None or not step else max(0, -(-(ub - lb) // step))


def _driven_dim(it: itensor) -> int | None:
    """The one tensor dim the itensor's first loop moves (None: a reuse loop); -1 when it moves several."""
    dims = [j for j, expr in enumerate(it.map.results) if 0 in expr.used_dims()]
    return dims[0] if len(dims) == 1 else (None if not dims else -1)


def _outer_bounded(it: itensor) -> bool:
    """Whether a run-time bound of the stream counts or depends on its outer loop (the loop a split
    cuts); bounds of inner loops (attention's cache length) go to every part unchanged."""
    return any(b.loop == 0 or 0 in b.map.results[0].used_dims() for b in it.bounds)


def _part_type(it: itensor, parts: int) -> itensor:
    return it._with(trips=(it.trips[0] // parts, *it.trips[1:]))  # noqa: SLF001 - the one field that changes


def _why_not(task: TaskOp, parts: int, needs_hbm: bool = True) -> str | None:
    """Why `task` cannot be split into `parts` (None: it can); `needs_hbm`: it must read a driven
    input from a dma_load (a task split as part of a weight chain need not)."""
    trips = outer_trips(task)
    if trips is None:
        return "its body is not one outermost scf.for with constant bounds"
    if parts < 2 or trips % parts:
        return _indivisible(task, parts)
    loop = _outer_loop(task)
    ports = [a for a in task.body.block.args if isinstance(a.type, ITensorType)]
    for arg in ports:
        it = arg.type.itensor  # type: ignore[attr-defined]
        if _outer_bounded(it) or it.trips[0] != trips:
            return f"port {arg.index} ({arg.type}) is not streamed by the outer loop alone"
        if any(not _inside(use.operation, loop) for use in arg.uses):  # type: ignore[arg-type]
            return f"port {arg.index} is accessed outside the outer loop"
        dim = _driven_dim(it)
        if dim == -1:
            return f"the outer loop moves several dims of port {arg.index} ({arg.type})"
        if dim is not None and _part_type(it, parts).shape[dim] * parts != it.shape[dim]:
            return f"the parts of port {arg.index} ({arg.type}) do not tile its dim {dim}"
    if any(_driven_dim(_it(o)) is None for o in task.outputs):
        return "an output is not driven by the outer loop (it reduces over it)"
    if needs_hbm and not any(isinstance(v.owner, DmaLoadOp) and isinstance(v.type, ITensorType) and _driven_dim(_it(v)) is not None
               for v in task.inputs):
        return "no input driven by the outer loop comes from HBM (a dma_load): not a weight contraction"
    for v in task.inputs:
        if isinstance(v.type, ITensorType) and _driven_dim(_it(v)) is None and _replica_source(v) is None:
            return f"its replayed input {v.type} comes from {v.owner.name if isinstance(v.owner, Operation) else 'a block argument'}, which the pass cannot replay fewer times"  # noqa: E501
    return None


def _inside(op: Operation, loop: Operation) -> bool:
    while op is not None:
        if op is loop:
            return True
        op = op.parent_op()  # type: ignore[assignment]
    return False


def splittable(task: TaskOp, parts: int = 2, needs_hbm: bool = True) -> bool:
    """Whether `task` reads an HBM tensor along its outer loop and can be split into `parts` (module doc)."""
    return _why_not(task, parts, needs_hbm) is None


def is_weight_matvec(task: TaskOp) -> bool:
    """A splittable task that also replays an input for every output tile: a contraction of the
    activation vector against an HBM weight (not a group sum or a bias add)."""
    trips = outer_trips(task)
    replays = any(isinstance(v.type, ITensorType) and _driven_dim(_it(v)) is None for v in task.inputs)
    return bool(trips) and _reduces(task) and replays and any(
        splittable(task, p) for p in range(2, trips + 1) if trips % p == 0)  # type: ignore[operator]


def _reduces(task: TaskOp) -> bool:
    """Whether a linalg op of the task reduces (a contraction, a sum, a max)."""
    return any(op.name.startswith("linalg.") and any(str(k.data).endswith("reduction") for k in kinds.data)
               for op in task.body.walk() if (kinds := op.properties.get("iterator_types")) is not None)


def weight_chains(kernel: KernelOp) -> dict[str, list[str]]:
    """Each weight matvec of the kernel (by name) and the tasks after it that walk its output in
    its order (its group sum, bias add, ...: each the one reader of the last one's output, with
    the same outer trip count), which a plan splits with it so that the parts flow lane by lane."""
    chains = {}
    for task in [t for t in kernel.body.block.ops if isinstance(t, TaskOp) and is_weight_matvec(t)]:
        chain, last = [task.sym_name.data], task
        while (len(last.outputs) == 1 and last.outputs[0].has_one_use()
               and isinstance(nxt := next(iter(last.outputs[0].uses)).operation, TaskOp)
               and outer_trips(nxt) == outer_trips(task) and _why_not(nxt, 2, needs_hbm=False) in (None, _indivisible(nxt, 2))):
            chain.append(nxt.sym_name.data)
            last = nxt
        chains[task.sym_name.data] = chain
    return chains


# the stream ops a chunk is hoisted through, and with chunks the ones tasks reach each other through
_HOISTED = (ITensorCastOp, ITensorReassociateOp, ITensorConverterOp, ITensorForkOp, ITensorConcatOp)
_STREAM_OPS = (*_HOISTED, ITensorChunkOp)


def stream_producers(value: SSAValue) -> list[Operation]:
    """The tasks and DMAs whose streams reach `value` through stream ops (casts, converters, forks, ...)."""
    owner = value.owner
    if isinstance(owner, _STREAM_OPS):
        return [p for v in owner.operands for p in stream_producers(v)]
    return [owner] if isinstance(owner, TaskOp | DmaLoadOp) else []


def stream_consumers(value: SSAValue) -> list[TaskOp]:
    """The tasks that `value` reaches through stream ops."""
    found: list[TaskOp] = []
    for use in value.uses:
        if isinstance(use.operation, TaskOp):
            found.append(use.operation)
        elif isinstance(use.operation, _STREAM_OPS):
            found += [t for r in use.operation.results for t in stream_consumers(r)]
    return found


def cache_chains(kernel: KernelOp) -> list[list[str]]:
    """The tasks of each attention, by name in program order: a task that reads a tensor loaded
    from HBM along its outer loop (the KV cache, one head after the other, through the concat
    that appends the new row: a task that reads a load straight in is a weight's), and the tasks
    connected to it through stream ops that loop the same outer trips (its queries, scores,
    softmax, values), each splittable along that loop (no reduction over it), when one of them
    reduces over an inner loop (a norm's maps do not). A plan splits them together by heads
    (`split_tasks`), so that each part reads its heads' box of the cache on ports of its own."""
    weights = {name for chain in weight_chains(kernel).values() for name in chain}
    order = [op for op in kernel.body.block.ops if isinstance(op, TaskOp)]

    def member(task: TaskOp, trips: int | None) -> bool:  # a weight's reader (its load straight in) is a matvec's
        return (task.sym_name.data not in weights and outer_trips(task) == trips and trips is not None and trips > 1
                and _why_not(task, 2, needs_hbm=False) in (None, _indivisible(task, 2))
                and _why_not(task, 2) is not None and _why_not(task, trips) is not None)

    seen: set[TaskOp] = set()
    chains = []
    for load in [op for op in kernel.body.block.ops if isinstance(op, DmaLoadOp) and _driven_dim(_it(op.result)) is not None]:
        for seed in stream_consumers(load.result):
            trips = outer_trips(seed)
            if seed in seen or not member(seed, trips):
                continue
            component, work = {seed}, [seed]
            while work:
                task = work.pop()
                near = [p for v in task.inputs for p in stream_producers(v) if isinstance(p, TaskOp)]
                near += [c for r in task.outputs for c in stream_consumers(r)]
                for other in near:
                    if other not in component and member(other, trips):
                        component.add(other)
                        work.append(other)
            seen |= component
            if any(_reduces(t) for t in component):  # not a norm's element-wise maps
                chains.append([t.sym_name.data for t in order if t in component])
    return chains


def feeding_chains(kernel: KernelOp, tasks: Collection[str]) -> list[str]:
    """The weight chains (`weight_chains`, by their matvec) whose last task's output reaches one
    of `tasks` through stream ops: the matvecs that feed an attention its queries, keys and values."""
    named = kernel.tasks
    return [name for name, chain in weight_chains(kernel).items()
            if any(c.sym_name.data in tasks for r in named[chain[-1]].outputs for c in stream_consumers(r))]


def _indivisible(task: TaskOp, parts: int) -> str:
    return f"its outer loop has {outer_trips(task)} trips, which {parts} parts do not divide (give a divisor above 1)"


def split_tasks(kernel: KernelOp, splits: Mapping[str, int]) -> None:
    """Split the named tasks of `kernel` into their parts (in program order), move the chunks the
    parts put on their inputs above the stream ops that feed them (`hoist_chunk`), then drop fork
    outputs nothing reads and fold a concat that a split consumer chunks into the same parts."""
    before = {op for op in kernel.body.block.ops if isinstance(op, ITensorChunkOp)}
    for task in [t for t in kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data in splits]:
        split_task(task, splits[task.sym_name.data], needs_hbm=False)
    moved = True
    while moved:  # a chunk stays until every reader of its producer is cut alike: again until none moves
        moved = False
        for chunk in [op for op in kernel.body.block.ops if isinstance(op, ITensorChunkOp) and op not in before]:
            moved |= chunk.parent is not None and hoist_chunk(chunk) is not None
    _operand_fork_cleanup(kernel)
    fold_concat_chunks(kernel)


def _outer_parts(value: SSAValue, parts: int) -> tuple[int, ITensorType] | None:
    """The dim `value`'s outer loop moves and the type of each of `parts` contiguous ranges of
    that loop (None: the stream cannot be cut so)."""
    it = _it(value)
    if _outer_bounded(it) or it.trips[0] % parts or (dim := _driven_dim(it)) is None or dim == -1:
        return None
    part = _part_type(it, parts)
    return (dim, ITensorType.from_itensor(part)) if part.shape[dim] * parts == it.shape[dim] else None


def _part_copy(op: Operation, sources: Sequence[SSAValue], types: Sequence[ITensorType]) -> Operation:
    """`op` over the parts `sources` of its operands, its results of `types`."""
    if isinstance(op, ITensorConverterOp):
        return planned_converter(sources[0], types[0], op)
    if isinstance(op, ITensorForkOp):
        return ITensorForkOp(sources[0], types)
    if isinstance(op, ITensorConcatOp):
        return ITensorConcatOp(sources, op.dim.value.data, types[0])
    return type(op)(sources[0], types[0])


def _cut_alike(value: SSAValue, parts: int, dim: int) -> bool:
    """Whether every reader of `value` cuts it into `parts` along `dim` (the concat that hoisting
    leaves on it then folds away everywhere)."""
    return bool(value.uses) and all(isinstance(c := use.operation, ITensorChunkOp) and len(c.outputs) == parts
                                    and c.dim.value.data == dim for use in value.uses)


def _plannable(source: ITensorType, result: ITensorType) -> bool:
    """Whether a converter between the two part types has a plan (`lowering.converters.plan`)."""
    try:
        plan(source.itensor, result.itensor)
    except ConverterError:
        return False
    return True


def hoist_chunk(chunk: ITensorChunkOp) -> list[ITensorChunkOp] | None:
    """Where `chunk` cuts a stream into contiguous ranges of its outer loop (the inputs of split
    parts), cut the producer's inputs instead, so that each part is streamed from its own sources
    in parallel, not after the parts before it: a `dma_load` read by the chunk alone becomes a
    load of each part's box; a cast, reassociate, converter, fork or concat (along another dim)
    whose ports all stream that loop's ranges as parts, and whose every reader cuts them alike,
    becomes one op per part, its results joined again by concats (which those readers' chunks fold
    away: a fork with one unsplit reader stays, where hoisting would add a fork per part and a
    concat). Returns the chunks put on the producer's inputs (to hoist in turn); None when `chunk`
    stays (a task's output, a concat along its own dim, a reader not cut alike)."""
    parts, producer = len(chunk.outputs), chunk.source.owner
    cut = _outer_parts(chunk.source, parts)
    if cut is None or cut[0] != chunk.dim.value.data or any(o.type != cut[1] for o in chunk.outputs):
        return None
    if isinstance(producer, DmaLoadOp) and chunk.source.has_one_use():
        loads = _driven_parts(chunk.source, cut[1], cut[0], parts, chunk)
        for out, value in zip(chunk.outputs, loads):
            out.replace_all_uses_with(value)
        Rewriter.erase_op(chunk)
        Rewriter.erase_op(producer)
        return []
    if not isinstance(producer, _HOISTED) or (isinstance(producer, ITensorConcatOp) and producer.dim == chunk.dim):
        return None
    ins, outs = [_outer_parts(v, parts) for v in producer.operands], [_outer_parts(v, parts) for v in producer.results]
    if any(c is None for c in (*ins, *outs)) or not all(_cut_alike(r, parts, c[0]) for r, c in zip(producer.results, outs)):  # type: ignore[index]
        return None
    if isinstance(producer, ITensorConverterOp | ITensorCastOp) and ins[0][0] != outs[0][0]:  # type: ignore[index]
        return None  # the ranges would be different boxes of the one tensor
    if isinstance(producer, ITensorConverterOp) and not _plannable(ins[0][1], outs[0][1]):  # type: ignore[index]
        return None
    chunks = [ITensorChunkOp(v, dim, [t] * parts) for v, (dim, t) in zip(producer.operands, ins)]  # type: ignore[misc]
    copies = [_part_copy(producer, [c.outputs[p] for c in chunks], [t for _, t in outs]) for p in range(parts)]  # type: ignore[misc]
    joins = [ITensorConcatOp([c.results[i] for c in copies], dim, r.type) for i, (r, (dim, _)) in enumerate(zip(producer.results, outs))]  # type: ignore[misc]
    try:  # each part streams its tiles in the order of the whole (else the route needs a converter)
        for op in (*chunks, *copies, *joins):
            op.verify()
    except VerifyException:
        for op in (*joins, *copies, *chunks):
            op.erase()
        return None
    Rewriter.insert_op([*chunks, *copies, *joins], InsertPoint.before(producer))
    for result, join in zip(producer.results, joins):
        result.replace_all_uses_with(join.result)
    Rewriter.erase_op(producer)
    return chunks


def _replica_source(value: SSAValue) -> SSAValue | None:
    """What a replayed input can be replayed again from: a dma_load's own result, a converter's or
    cast's source (through a fork output), else None."""
    owner = value.owner
    if isinstance(owner, DmaLoadOp):
        return value
    if isinstance(owner, ITensorForkOp):
        return _replica_source(owner.source) if owner.source is not None else None
    if isinstance(owner, ITensorConverterOp | ITensorCastOp):
        return owner.source
    return None


def _replicas(value: SSAValue, part: ITensorType, parts: int, where: Operation) -> list[SSAValue]:
    """`parts` streams of type `part` (fewer replays of `value`'s tensor) for the parts' ports."""
    source = _replica_source(value)
    assert source is not None
    if isinstance(source.owner, DmaLoadOp):
        load = source.owner
        offsets = list(load.offsets.get_values()) if load.offsets is not None else None
        ops = [DmaLoadOp(load.source, part, offsets) for _ in range(parts)]
        Rewriter.insert_op(ops, InsertPoint.before(where))
        return [op.result for op in ops]
    fork = ITensorForkOp(source, parts)
    converters = [planned_converter(out, part, where) if _it(out) != part.itensor else ITensorCastOp(out, part)
                  for out in fork.outputs]
    Rewriter.insert_op([fork, *converters], InsertPoint.before(where))
    return [c.results[0] for c in converters]


def _driven_parts(value: SSAValue, part: ITensorType, dim: int, parts: int, where: Operation) -> list[SSAValue]:
    """The parts of a driven input: a dma_load of each part's box, else an itensor_chunk."""
    load = value.owner
    if isinstance(load, DmaLoadOp) and value.has_one_use():
        base = list(load.offsets.get_values()) if load.offsets is not None else [0] * part.itensor.rank
        extent = part.itensor.shape[dim]
        ops = [DmaLoadOp(load.source, part, [o + (p * extent if j == dim else 0) for j, o in enumerate(base)])
               for p in range(parts)]
        Rewriter.insert_op(ops, InsertPoint.before(where))
        return [op.result for op in ops]
    chunk = ITensorChunkOp(value, dim, [part] * parts)
    Rewriter.insert_op(chunk, InsertPoint.before(where))
    return list(chunk.outputs)


def _retype_body(task: TaskOp, types: dict[Attribute, Attribute]) -> None:
    """Every value of the task's body whose type is a key of `types` takes the mapped type."""
    values: list[SSAValue] = [a for a in task.body.block.args]
    for op in task.body.walk():
        values += list(op.results)
        values += [a for region in op.regions for block in region.blocks for a in block.args]
    for value in values:
        if value.type in types:
            Rewriter.replace_value_with_new_type(value, types[value.type])


def _bound_loop(task: TaskOp, part: int, parts: int) -> None:
    """Part `part` of the outer loop: the p-th contiguous range of its iterations."""
    loop = _outer_loop(task)
    assert loop is not None
    lb, ub, step = (_constant(v) for v in (loop.lb, loop.ub, loop.step))
    assert lb is not None and ub is not None and step is not None
    span = (ub - lb) // step // parts * step
    bounds = [arith.ConstantOp(IntegerAttr(lb + part * span + k * span, IndexType())) for k in (0, 1)]
    Rewriter.insert_op(bounds, InsertPoint.before(loop))
    loop.operands[0], loop.operands[1] = bounds[0].result, bounds[1].result


def split_task(task: TaskOp, parts: int, needs_hbm: bool = True) -> list[TaskOp]:
    """Replace `task` by `parts` tasks over contiguous ranges of its outer loop (module doc)."""
    name = task.sym_name.data
    if (why := _why_not(task, parts, needs_hbm)) is not None:
        raise SplitError(f"split-matvecs: task {name} cannot be split into {parts} parts: {why}")
    old_types = [v.type for v in (*task.inputs, *task.inits)]
    types = {t: ITensorType.from_itensor(_part_type(t.itensor, parts)) for t in old_types if isinstance(t, ITensorType)}
    part_inputs: list[list[SSAValue]] = []
    for value in task.inputs:
        if not isinstance(value.type, ITensorType):
            part_inputs.append([value] * parts)
            continue
        part, dim = types[value.type], _driven_dim(_it(value))
        part_inputs.append(_driven_parts(value, part, dim, parts, task) if dim is not None
                           else _replicas(value, part, parts, task))
    tasks = []
    for p in range(parts):
        inits = [ITensorEmptyOp(types[v.type]) for v in task.inits]
        Rewriter.insert_op(inits, InsertPoint.before(task))
        body = task.body.clone() if p < parts - 1 else task.detach_region(task.body)  # the last part takes the task's own
        clone = TaskOp(f"{name}_p{p}", [ins[p] for ins in part_inputs], [e.results[0] for e in inits], body)
        clone.attributes.update({k: v for k, v in task.attributes.items() if k != SPLIT_ATTR})
        _retype_body(clone, types)
        _bound_loop(clone, p, parts)
        Rewriter.insert_op(clone, InsertPoint.before(task))
        tasks.append(clone)
    for i, result in enumerate(task.outputs):
        concat = ITensorConcatOp([t.outputs[i] for t in tasks], _driven_dim(_it(result)), result.type)
        Rewriter.insert_op(concat, InsertPoint.before(task))
        result.replace_all_uses_with(concat.results[0])
    dead = [v.owner for v in (*task.inputs, *task.inits) if isinstance(v.owner, Operation)]
    replayed = [_replica_source(v) for v in task.inputs if isinstance(v.type, ITensorType) and _driven_dim(_it(v)) is None]
    Rewriter.erase_op(task)
    _erase_dead(dead)
    for source in replayed:  # still read by a converter serving other consumers: a fork output each
        if source is not None and not isinstance(source.owner, DmaLoadOp):
            _fork_uses(source)
    return tasks


def _erase_dead(ops: Sequence[Operation]) -> None:
    """Drop the split task's former producers that nothing reads any more (and theirs)."""
    work = list(ops)
    while work:
        op = work.pop()
        if op.parent is None or any(r.uses for r in op.results) or not isinstance(
                op, DmaLoadOp | ITensorEmptyOp | ITensorConverterOp | ITensorCastOp | ITensorForkOp):
            continue
        sources = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
        if isinstance(op, ITensorForkOp) and any(r.uses for r in op.results):
            continue
        Rewriter.erase_op(op)
        work += sources


def _operand_fork_cleanup(kernel: KernelOp) -> None:
    """A fork with an output nothing reads keeps only the outputs read (insert-converters' rule)."""
    while fork := next((op for op in kernel.body.block.ops if isinstance(op, ITensorForkOp)
                        and any(not out.uses for out in op.outputs)), None):
        _drop_fork_output(fork, next(out for out in fork.outputs if not out.uses))


def _runs(sizes: Sequence[int], pieces: Sequence[int]) -> list[range] | None:
    """The consecutive runs of `sizes` that add up to each of `pieces` in turn; None when a piece
    ends inside a size."""
    runs, start, i = [], 0, 0
    for piece in pieces:
        total = 0
        while i < len(sizes) and total < piece:
            total, i = total + sizes[i], i + 1
        if total != piece:
            return None
        runs.append(range(start, i))
        start = i
    return runs if i == len(sizes) else None


def _joined(sources: Sequence[SSAValue], dim: int, result_type: Attribute) -> tuple[list[Operation], SSAValue] | None:
    """`sources` streamed as one itensor of `result_type`: the one source itself (a cast if its
    type only spells the same stream otherwise), or their concat; None if they do not stream so."""
    if len(sources) == 1:
        (source,) = sources
        if source.type == result_type:
            return [], source
        if _it(source) != result_type.itensor:  # type: ignore[attr-defined]
            return None
        cast = ITensorCastOp(source, result_type)
        return [cast], cast.result
    concat = ITensorConcatOp(sources, dim, result_type)
    try:
        concat.verify()
    except VerifyException:
        concat.erase()  # drop its uses of the sources
        return None
    return [concat], concat.results[0]


def fold_concat_chunks(kernel: KernelOp) -> None:
    """A split task's concat cut again by a chunk whose pieces are runs of its parts (the same
    parts, or a coarser cut: a matvec in 6 parts whose output is cut into query, keys and values):
    each piece is its run of parts, streamed straight from the producer parts (a chain of split
    tasks runs in parallel, and the pieces are produced side by side, not one after the other)."""
    for chunk in [op for op in kernel.body.block.ops if isinstance(op, ITensorChunkOp)]:
        concat = chunk.source.owner
        if not (isinstance(concat, ITensorConcatOp) and chunk.source.has_one_use() and concat.dim == chunk.dim):
            continue
        dim = chunk.dim.value.data
        runs = _runs([_it(s).shape[dim] for s in concat.sources], [_it(o).shape[dim] for o in chunk.outputs])
        if runs is None:
            continue
        joins = [_joined([concat.sources[i] for i in run], dim, out.type) for run, out in zip(runs, chunk.outputs)]
        if any(j is None for j in joins):
            for op in (op for j in joins if j is not None for op in j[0]):
                op.erase()
            continue
        for out, (ops, value) in zip(chunk.outputs, joins):  # type: ignore[misc]
            Rewriter.insert_op(ops, InsertPoint.before(chunk))
            out.replace_all_uses_with(value)
        Rewriter.erase_op(chunk)
        Rewriter.erase_op(concat)


@dataclass(frozen=True)
class SplitMatvecsPass(ModulePass):
    """Split weight contractions into parallel tasks: those with a `split` attribute, or with
    `parts` > 0 every splittable task whose outer trips `parts` divides."""

    name = "split-matvecs"

    parts: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.parts < 0 or self.parts == 1:
            raise PassFailedException(f"split-matvecs: parts={self.parts}; give 0 (the tasks' `split` attributes) or 2 or more")
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            splits = {}
            for task in [t for t in kernel.body.block.ops if isinstance(t, TaskOp)]:
                attr = task.attributes.get(SPLIT_ATTR)
                parts = attr.value.data if isinstance(attr, IntegerAttr) else 0
                if self.parts and not parts and splittable(task, self.parts):
                    parts = self.parts
                if parts > 1:
                    splits[task.sym_name.data] = parts
                else:
                    task.attributes.pop(SPLIT_ATTR, None)
            try:
                split_tasks(kernel, splits)
            except SplitError as err:
                raise PassFailedException(str(err)) from None
