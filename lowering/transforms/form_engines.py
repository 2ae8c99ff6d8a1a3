"""`form-engines`: the parts of matvecs that run one after the other become engines shared by them.

A decode step's matvecs run phase after phase (query, key and value; the output projection; gate
and up; down): each needs the one before's result. `split-matvecs` gives every matvec parts of its
own, so the parts of one phase compute while every other phase's sit idle, and the device's
budget pays for each phase's parts. An engine computes each of its matvecs in turn: part p of
every matvec of a group (`<task>_p<p>`) becomes one task, `<first>_engine_p<p>` (after its first
member), whose body is the parts' bodies one after the other, in IR order: its loops read the
first matvec's weights and activation and write its output, then the next's. A matvec split into
fewer parts than another of its group is in the first engines only; a part index only one matvec
has keeps its own task.

The engine sits where its first matvec's part sat. A later matvec's input defined below it is
brought above when it is a load or an empty destination (nothing it reads is below), else it is
fed back: an `itensor_feedback` above the engine, connected to the input at the end of the
kernel (docs/ir.md). The activation of phase k + 1 is computed from phase k's output, so an
engine's stream graph has a cycle through it. A phase is a loop of its own, which drains before
the next phase's loop reads that activation, so its last rows are out: one loop over every phase
would hold them in its pipeline while it waits (docs/lowering.md, "Matvec engines").

An engine's lanes (`unroll`) are the most of its parts' (one array of multipliers serves every
loop; a plan may set them again by the engine's name); each result keeps its FIFO depth.

The parts of an engine must be one body up to integer constants and the streams they access
(`lowering.engine_phases`): the emitter then writes that body once, in a loop over the phases, and
the resource model charges it once. Parts that are not (a query's bias add and an output
projection's residual add) are refused: merged, they would cost what they cost apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from lowering.engine_phases import ENGINE_ATTR, phases_alike
from lowering.timing import unroll_lanes
from lowering.transforms.split_matvecs import PART
from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaSequenceOp,
    ITensorEmptyOp,
    ITensorFeedbackConnectOp,
    ITensorFeedbackOp,
    KernelOp,
    TaskOp,
    YieldOp,
    fifo_depth,
    set_fifo_depth,
)

__all__ = ["ENGINE_ATTR", "EngineError", "FormEnginesPass", "form_engines", "formed_groups", "merge_tasks"]

_MOVABLE = (DmaLoadOp, DmaSequenceOp, ITensorEmptyOp)  # ops that read nothing defined in the kernel


class EngineError(ValueError):
    """A group that cannot form engines (names the matvec and why)."""


def form_engines(kernel: KernelOp, groups: Sequence[Sequence[str]]) -> list[TaskOp]:
    """Merge part p of each matvec of every group (names of split tasks) into one engine per part
    index (module doc); returns the engines."""
    engines = []
    for group in groups:
        tasks = kernel.tasks
        if len(group) < 2:
            raise EngineError(f"form-engines: an engine computes two matvecs or more, got {list(group)}")
        parts = {name: sorted((t for t in tasks if PART.search(t) and PART.sub("", t) == name), key=_index) for name in group}
        if empty := [name for name, found in parts.items() if not found]:
            raise EngineError(f"form-engines: {empty[0]} has no parts (`<name>_p<p>`): split it first (split-matvecs)")
        for p in range(max(len(found) for found in parts.values())):
            members = [tasks[found[p]] for found in parts.values() if p < len(found)]
            if len(members) < 2:  # the other matvecs have fewer parts: this one keeps its own
                continue
            if not phases_alike(members):
                raise EngineError(f"form-engines: {', '.join(t.sym_name.data for t in members)} are not one body up to integer "
                                  "constants and streams (lowering/engine_phases.py): an engine of them would cost what they cost")
            engine = merge_tasks(kernel, members, f"{PART.sub('', members[0].sym_name.data)}_engine_p{p}")
            engine.attributes[ENGINE_ATTR] = ArrayAttr([StringAttr(t.sym_name.data) for t in members])
            engines.append(engine)
    return engines


def formed_groups(kernel: KernelOp) -> tuple[tuple[str, ...], ...]:
    """The groups (split tasks by name) whose parts compute in the kernel's engines, as
    `form_engines` takes them: its first engines' (part 0 of every split matvec of a group)."""
    return tuple(tuple(PART.sub("", m.data) for m in op.attributes[ENGINE_ATTR].data)  # type: ignore[attr-defined]
                 for op in kernel.body.block.ops
                 if isinstance(op, TaskOp) and ENGINE_ATTR in op.attributes and op.sym_name.data.endswith("_engine_p0"))


def _index(name: str) -> int:
    return int(PART.search(name).group(1))  # type: ignore[union-attr]


def merge_tasks(kernel: KernelOp, tasks: Sequence[TaskOp], name: str) -> TaskOp:
    """One task `name` running the bodies of `tasks` one after the other (in IR order), placed
    where the first was; inputs defined below it are moved up or fed back (module doc)."""
    block = kernel.body.block
    position = {op: i for i, op in enumerate(block.ops)}
    tasks = sorted(tasks, key=position.__getitem__)
    first = tasks[0]
    inputs = [_above(kernel, value, first, position) for t in tasks for value in t.inputs]
    inits = [_above(kernel, value, first, position) for t in tasks for value in t.inits]
    body = Block(arg_types=[v.type for v in (*inputs, *inits)])
    old_args = [a for t in tasks for a in t.body.block.args[: len(t.inputs)]]
    old_args += [a for t in tasks for a in t.body.block.args[len(t.inputs):]]
    for old, new in zip(old_args, body.args, strict=True):
        old.replace_all_uses_with(new)
    yielded: list[SSAValue] = []
    for task in tasks:
        for op in list(task.body.block.ops):
            op.detach()
            if isinstance(op, YieldOp):
                yielded += list(op.values)
                op.erase()
            else:
                body.add_op(op)
    body.add_op(YieldOp(*yielded))
    merged = TaskOp(name, inputs, inits, Region(body))
    merged.attributes.update({k: v for k, v in first.attributes.items() if k not in ("depth", "unroll")})
    if lanes := [lanes for t in tasks if (lanes := unroll_lanes(t))]:  # one array of multipliers serves every loop
        merged.attributes["unroll"] = IntegerAttr(max(lanes), i64)
    Rewriter.insert_op(merged, InsertPoint.before(first))
    for old, new in zip((r for t in tasks for r in t.outputs), merged.outputs, strict=True):
        if (depth := fifo_depth(old)) is not None:
            set_fifo_depth(new, depth)
        old.replace_all_uses_with(new)
    for task in tasks:
        Rewriter.erase_op(task)
    return merged


def _above(kernel: KernelOp, value: SSAValue, first: TaskOp, position: dict[Operation, int]) -> SSAValue:
    """`value` as an input of an engine placed at `first`: itself if defined above, its op moved
    up if that reads nothing of the kernel, else a feedback stream connected to it."""
    owner = value.owner
    if isinstance(value, BlockArgument) or position[owner] < position[first]:  # type: ignore[index]
        return value
    if isinstance(owner, _MOVABLE):
        owner.detach()
        Rewriter.insert_op(owner, InsertPoint.before(first))
        position[owner] = position[first] - 0.5  # type: ignore[assignment]
        return value
    feedback = ITensorFeedbackOp(value.type)  # type: ignore[arg-type]
    if value.name_hint:
        feedback.result.name_hint = f"{value.name_hint}_fb"
    Rewriter.insert_op(feedback, InsertPoint.before(first))
    Rewriter.insert_op(ITensorFeedbackConnectOp(value, feedback.result), InsertPoint.before(kernel.body.block.last_op))
    return feedback.result


@dataclass(frozen=True)
class FormEnginesPass(ModulePass):
    """Part p of each matvec of a group computes in one engine (module doc); `groups`: the split
    matvecs of each engine by name, `;` between groups, `,` between names."""

    name = "form-engines"

    groups: str = field(default="")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        groups = [g.split(",") for g in self.groups.split(";") if g]
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            try:
                form_engines(kernel, groups)
            except EngineError as err:
                raise PassFailedException(str(err)) from None
