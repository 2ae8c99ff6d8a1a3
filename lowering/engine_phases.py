"""An engine's phases as one body: what lets its matvecs share one set of multipliers and arrays.

`form-engines` makes part p of each matvec of a group one task whose body runs the parts' loops
one after the other (the phases). Emitted as written, each phase loop would be hardware of its own:
Vitis builds every pipelined loop as a module with its own operators and its own local arrays, so
an engine would cost what its parts cost. When the phases are the same code up to integer
constants (trip counts, offsets) and the streams they read and write, the emitter writes the body
once, inside a loop over the phases (`for (ph ...)`): the constants become tables indexed by the
phase and each stream access picks the phase's stream. One body is one set of hardware whatever
Vitis's binder does, and every phase's pipelined loop still drains before the next phase starts,
as the timing model runs the loops one after the other (docs/lowering.md, "Matvec engines").

`engine_phases` decides it for the emitter (hls_backend/body.py) and the resource model
(lowering/resources.py, lowering/memory.py) alike, so both describe one design: a shared engine is
charged its first phase's body, its ports, and a multiplexer per input the phases read from
different streams.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType
from xdsl.ir import BlockArgument, Operation, SSAValue

from lowering.timing import TimingError, task_timing
from streamdsl.dialects.dataflow import ITensorType, TaskOp, YieldOp

__all__ = ["ENGINE_ATTR", "EnginePhases", "engine_phases", "phases_alike"]

ENGINE_ATTR = "engine"  # on a merged task: the matvecs it computes in turn, by name


@dataclass
class EnginePhases:
    """A task whose phases are one body: `body` (the first phase's top-level ops) runs once per
    phase; `constants` gives each integer constant of it that differs between phases its value in
    every phase, `ports` each stream argument it accesses that differs its argument in every phase,
    `trips` each loop whose trip count differs its most trips."""

    count: int
    body: list[Operation]
    constants: dict[SSAValue, list[int]] = field(default_factory=dict)
    ports: dict[SSAValue, list[BlockArgument]] = field(default_factory=dict)
    trips: dict[Operation, int] = field(default_factory=dict)


def engine_phases(task: TaskOp) -> EnginePhases | None:
    """The shared body of an engine (module doc); None for a task that is no engine or whose
    phases differ in more than integer constants and streams (it is then emitted and charged as
    its loops one after the other)."""
    members = task.attributes.get(ENGINE_ATTR)
    if members is None:
        return None
    ops = _ops(task)
    count = len(members.data)  # type: ignore[attr-defined]
    if count < 2 or len(ops) % count:
        return None
    size = len(ops) // count
    chunks = [ops[k * size:(k + 1) * size] for k in range(count)]
    if (shared := _alike(chunks, set(task.body.block.args))) is None:
        return None
    try:
        timing = task_timing(task)
    except TimingError:
        return None
    if any(len({_shape(timing.loops.get(loop)) for loop in loops}) > 1  # type: ignore[arg-type]
           for loops in zip(*(_loops(c) for c in chunks), strict=True)):
        return None  # each phase's loops must be pipelined alike
    return shared


def phases_alike(tasks: Sequence[TaskOp]) -> bool:
    """Whether `tasks`, merged into one engine (form-engines), would be one body (`engine_phases`;
    their loops' pipelines aside, which the engine's lanes decide)."""
    return _alike([_ops(t) for t in tasks], {a for t in tasks for a in t.body.block.args}) is not None


def _ops(task: TaskOp) -> list[Operation]:
    return [op for op in task.body.block.ops if not isinstance(op, YieldOp)]


def _alike(chunks: list[list[Operation]], args: set[SSAValue]) -> EnginePhases | None:
    """The phases `chunks` as one body: each the first up to integer constants and stream
    arguments (`args`), the loops whose trips differ with their most."""
    shared = EnginePhases(len(chunks), chunks[0])
    if not all(_congruent(shared, k, chunks[0], chunk, args) for k, chunk in enumerate(chunks[1:], 1)):
        return None
    for loops in zip(*(_loops(c) for c in chunks), strict=True):
        bounds = [(loop.lb, loop.ub, loop.step) for loop in loops]  # type: ignore[attr-defined]
        if any(v in shared.constants for v in bounds[0]):
            if not all(isinstance(v.owner, arith.ConstantOp) for b in bounds for v in b):
                return None
            shared.trips[loops[0]] = max(_trips(*(v.owner.value.value.data for v in b)) for b in bounds)  # type: ignore[attr-defined]
    return shared


def _loops(ops: list[Operation]) -> Iterator[Operation]:
    return (op for top in ops for op in top.walk() if isinstance(op, scf.ForOp))


def _shape(timing: object) -> tuple[object, ...] | None:
    if timing is None:
        return None
    return timing.ii, timing.depth, timing.lanes, tuple(sorted(timing.partials.values())), timing.combine  # type: ignore[attr-defined]


def _trips(lb: int, ub: int, step: int) -> int:
    return max(0, -(-(ub - lb) // step))


def _congruent(shared: EnginePhases, k: int, first: list[Operation], other: list[Operation], args: set) -> bool:
    """Whether phase `k`'s ops (`other`) are the first phase's up to integer constants and stream
    arguments; records those differences in `shared`."""
    same: dict[SSAValue, SSAValue] = {}
    ports: dict[SSAValue, SSAValue] = {}
    a_ops = [op for top in first for op in top.walk()]
    b_ops = [op for top in other for op in top.walk()]
    if len(a_ops) != len(b_ops):
        return False
    for a, b in zip(a_ops, b_ops):
        if (a.name, len(a.operands), len(a.results), len(a.regions)) != (b.name, len(b.operands), len(b.results), len(b.regions)):
            return False
        if a.attributes != b.attributes:
            return False
        if a.properties != b.properties and not _varying_constant(shared, k, a, b):
            return False
        for x, y in zip(a.operands, b.operands):
            if x in same:
                if same[x] is not y:
                    return False
            elif x in args and y in args and isinstance(x.type, ITensorType):  # a stream of the task
                if not _same_token(x, y) or ports.setdefault(x, y) is not y:
                    return False
            elif x is not y:
                return False
        for ra, rb in zip(a.regions, b.regions):
            if len(ra.blocks) != len(rb.blocks):
                return False
            for ba, bb in zip(ra.blocks, rb.blocks):
                if len(ba.args) != len(bb.args) or not all(_same_token(x, y) for x, y in zip(ba.args, bb.args)):
                    return False
                same.update(zip(ba.args, bb.args))
        if not all(_same_token(x, y) for x, y in zip(a.results, b.results)):
            return False
        same.update(zip(a.results, b.results))
    for x, y in ports.items():
        if y is not x:
            shared.ports.setdefault(x, [x] * shared.count)[k] = y  # type: ignore[list-item]
    return True


def _varying_constant(shared: EnginePhases, k: int, a: Operation, b: Operation) -> bool:
    """Record an integer constant that differs between phase 0 (`a`) and phase `k` (`b`)."""
    if not (isinstance(a, arith.ConstantOp) and isinstance(b, arith.ConstantOp)):
        return False
    va, vb = a.value, b.value
    if not (isinstance(va, IntegerAttr) and isinstance(vb, IntegerAttr) and va.type == vb.type):
        return False
    if not isinstance(va.type, IndexType | IntegerType):
        return False
    values = shared.constants.setdefault(a.result, [va.value.data] * shared.count)
    values[k] = vb.value.data
    return True


def _same_token(x: SSAValue, y: SSAValue) -> bool:
    """Equal types, streams compared by their tokens (a phase's stream has its own trips)."""
    if isinstance(x.type, ITensorType) and isinstance(y.type, ITensorType):
        return x.type.element_type == y.type.element_type
    return x.type == y.type
