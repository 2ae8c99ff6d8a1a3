"""`narrow-streams`: a FIFO whose tokens come slowly carries them in narrower beats.

A stream's beat is its FIFO's word (docs/hls.md, "Stream beats"): up to 1,024 bits, so a FIFO of
two-beat tokens between two tasks is 1,024 bits wide, an SRL of 1,024 LUTs however seldom a
token passes, and 1,024 SLLs where it crosses an SLR boundary. A split matvec's group sums (64
floats an output tile, once per row of weight tiles) pass once in hundreds of cycles: beats of
one float carry them as fast, in a thirty-second of the LUTs and wires.

Which FIFOs (`candidates`): a stream a task reads (no cast between) and its body takes only by
reads, written by a task whose destination is an `itensor_empty` of its own and whose body only
writes it and carries it in loops (`_chain`: those values are retyped with it), or by a load
whose one port `narrow_ports` narrowed (its beat then no narrower than the port's word, which the
emitter writes as one beat); no engine (its phases share one body). Each gets the narrowest beat
(a power-of-two number of elements, `itensor.narrowed`) that crosses a token in half the fewest
cycles between two of its tokens in the unbounded timed run, and in at most `MAX_BEATS` beats (a
FIFO of two tokens stays a shift register). The timing model holds a port for a token's beats,
so a narrowed token can arrive a little later; while the narrowed design's run is slower, the
narrowed streams that a task on its critical path writes or reads are widened again. The
design then keeps its makespan, and its FIFOs their depths in tokens; only their words narrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from lowering.engine_phases import ENGINE_ATTR
from lowering.memory import SRL_DEPTH
from lowering.timing import HBM_WORD_ATTR, hbm_stripes, hbm_word_bits, hbm_word_lanes, table_of
from streamdsl.dialects.dataflow import (
    DEFAULT_DEPTH,
    DmaLoadOp,
    ITensorEmptyOp,
    ITensorReadOp,
    ITensorType,
    ITensorWriteOp,
    KernelOp,
    TaskOp,
    YieldOp,
)
from streamdsl.graph import Graph
from streamdsl.itensor import itensor
from streamdsl.sim.timed import TimedResult, critical_path, simulate_unbounded
from streamdsl.wiring import TimingModel, graph_from_kernel, kernel_nodes, restream, stream_reads, stream_writes, wire_kernel

# a FIFO of DEFAULT_DEPTH tokens of at most this many beats stays a shift register (SRL_DEPTH words)
MAX_BEATS = SRL_DEPTH // DEFAULT_DEPTH

__all__ = ["NarrowStreamsPass", "beat_for", "candidates", "narrow_named", "narrow_streams", "narrowed_streams", "widen_streams"]


def _chain(task: TaskOp, value: SSAValue) -> list[SSAValue] | None:
    """The values of `task`'s body that stand for the stream of port `value` (an input or an
    init: its block argument, and from an init the `itensor_write`s and loop-carried values up
    to the `dataflow.yield`), or None when another op takes it."""
    ports = (*task.inputs, *task.inits)
    found = [task.body.block.args[ports.index(value)]]
    for v in found:
        for use in v.uses:
            op = use.operation
            if isinstance(op, ITensorWriteOp) and use.index == 1:
                found.append(op.result)
            elif isinstance(op, scf.ForOp) and use.index >= 3:  # an iter_arg: the body's argument, the loop's result
                found += [op.body.block.args[use.index - 2], op.results[use.index - 3]]
            elif isinstance(op, scf.YieldOp | YieldOp | ITensorReadOp):
                continue
            else:
                return None
    return found


def _narrow_load(op: Operation) -> bool:
    """A load through one port narrowed below 512 bits (`narrow_ports`): its beats may narrow to
    the port's word, which the emitter then writes as one beat (hls_backend/emit.py `_word`)."""
    return isinstance(op, DmaLoadOp) and HBM_WORD_ATTR in op.attributes and hbm_stripes(op)[0] == 1


def _produced(value: SSAValue) -> bool:
    """Whether `value`'s producer can write it in other beats: a narrowed load, or a task whose
    destination is an `itensor_empty` of its own and whose body only writes and carries it."""
    producer = value.owner
    if _narrow_load(producer):  # type: ignore[arg-type]
        return True
    if not isinstance(producer, TaskOp) or ENGINE_ATTR in producer.attributes:  # an engine's phases: one type
        return False
    init = producer.inits[producer.outputs.index(value)]
    return isinstance(init.owner, ITensorEmptyOp) and init.has_one_use() and _chain(producer, init) is not None


def candidates(kernel: KernelOp) -> dict[str, SSAValue]:
    """The streams `narrow_streams` may narrow (module doc), by FIFO name."""
    out = {}
    for wire in wire_kernel(kernel_nodes(kernel), stream_reads, stream_writes):
        consumer, value = wire.consumer_op, wire.value
        if (isinstance(consumer, TaskOp) and ENGINE_ATTR not in consumer.attributes and wire.read is value
                and value.has_one_use() and _produced(value) and _chain(consumer, value) is not None):
            out[wire.name] = value
    return out


def _least_lanes(value: SSAValue) -> int:
    """The fewest elements a beat of `value` may hold: a narrowed load's port word, else one."""
    it = value.type.itensor  # type: ignore[attr-defined]
    return hbm_word_lanes(it, hbm_word_bits(value.owner)) if _narrow_load(value.owner) else 1  # type: ignore[arg-type]


def _retype(value: SSAValue, beat: int | None) -> SSAValue:
    """The stream `value` (a `candidates` one), its producer's init and the values of both tasks'
    bodies that stand for it (`_chain`), retyped to beats of `beat` bits (None: the default
    beats, `itensor.narrowed`); returns the new value."""
    new = ITensorType.from_itensor(value.type.itensor.narrowed(beat))  # type: ignore[attr-defined]
    producer, consumer = value.owner, next(iter(value.uses)).operation
    assert isinstance(consumer, TaskOp)
    inside = [*_chain(consumer, value)]  # type: ignore[misc]
    if isinstance(producer, TaskOp):
        init = producer.inits[producer.outputs.index(value)]
        inside += _chain(producer, init)  # type: ignore[arg-type]
        Rewriter.replace_value_with_new_type(init.owner.results[0], new)  # type: ignore[union-attr]
    value = Rewriter.replace_value_with_new_type(value, new)
    for v in inside:
        Rewriter.replace_value_with_new_type(v, new)
    return value


def _gap(run: TimedResult, name: str) -> int:
    """The fewest cycles between two tokens of FIFO `name` in `run`, at either end."""
    times = [np.diff(run.write_times[name]), np.diff(run.read_times[name])]
    return int(min((t.min() for t in times if t.size), default=run.makespan or 1))


def beat_for(it: itensor, cycles: int, least: int = 1) -> int | None:
    """The narrowest beat (a power-of-two number of elements, at least `least`) whose token
    crosses in at most `cycles` cycles and at most `MAX_BEATS` beats (never more beats than it
    has), or None: no narrower than it is."""
    lanes = least
    while -(-it.token_elements // lanes) > max(min(cycles, MAX_BEATS), it.beats):
        lanes *= 2
    return lanes * it.dtype.bits if lanes < it.beat_lanes else None


def narrow_streams(kernel: KernelOp, run: TimedResult | None = None, timing: TimingModel | None = None,
                   graph: Graph | None = None) -> dict[str, int]:
    """Narrow the `candidates` streams of `kernel` (module doc) to the beat that crosses a token
    in half the fewest cycles between two of its tokens in `run` (the unbounded timed run of
    `graph`, the kernel's graph, built with `timing`, else the kernel's table, when not given), then
    widen again those on the critical path of the narrowed design while it is slower than `run`.
    `graph` is left the narrowed kernel's (`restream`). Returns FIFO name -> beat bits of those
    left narrowed."""
    timing = timing or table_of(kernel)
    if graph is None:
        graph = graph_from_kernel(kernel, timing)[0]
    if run is None:
        run = simulate_unbounded(graph)
    found = candidates(kernel)
    narrowed = {}
    for name, value in found.items():
        if (bits := beat_for(value.type.itensor, _gap(run, name) // 2, _least_lanes(value))) is not None:  # type: ignore[attr-defined]
            found[name] = _retype(value, bits)
            narrowed[name] = bits
    restream(graph, timing, {name: found[name] for name in narrowed})
    while narrowed:
        timed = simulate_unbounded(graph)
        if timed.makespan is not None and timed.makespan <= (run.makespan or 0):
            break
        path = {s.task for s in critical_path(graph, timed)} if timed.makespan is not None else set()
        late = {e.name for e in graph.fifos if e.name in narrowed and (e.src in path or e.dst in path)}
        widened = late or set(narrowed)
        for name in widened:
            found[name] = _retype(found[name], None)
            del narrowed[name]
        restream(graph, timing, {name: found[name] for name in widened})
    return narrowed


def narrowed_streams(kernel: KernelOp) -> dict[str, int]:
    """FIFO name -> beat bits of every narrowed stream of `kernel`: what a plan records."""
    return {w.name: it.beat for w in wire_kernel(kernel_nodes(kernel), stream_reads, stream_writes)
            if isinstance(w.value.type, ITensorType) and (it := w.value.type.itensor).beat}


def narrow_named(kernel: KernelOp, beats: Mapping[str, int]) -> None:
    """Narrow the streams `beats` names (FIFO name -> beat bits, `narrowed_streams`); a KeyError
    names one that is not a `candidates` stream of `kernel`."""
    found = candidates(kernel)
    for name, bits in beats.items():
        if name not in found:
            raise KeyError(name)
        _retype(found[name], bits)


def widen_streams(kernel: KernelOp) -> dict[str, SSAValue]:
    """Every narrowed stream of `kernel` back at its default beats; returns them (FIFO name -> the
    stream now, for `restream`)."""
    return {name: _retype(value, None) for name, value in candidates(kernel).items() if value.type.itensor.beat}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NarrowStreamsPass(ModulePass):
    """FIFOs between tasks whose tokens come slowly carry them in narrower beats (module doc)."""

    name = "narrow-streams"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            narrow_streams(kernel)
