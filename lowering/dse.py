"""Design-space exploration: a design plan (tile size, lanes per task, HBM striping, clock) that
maximises decode tokens per second within the device's resources, judged by the timed simulator.

Hierarchical, as the paper's (its §5: the tiling space, then unrolling inside it, then resource
allocation), but driven by our models instead of HLS runs:

1. **Tiling** (`explore(tiles=...)`): each candidate default tile size is lowered once (`build`);
   the fusion groups follow from it (fuse-kernels under the on-chip budget) and a block that does
   not fuse into one design is skipped.
2. **Lanes per task**: the paper's intensity-aware greedy loop over a max-heap keyed on latency:
   take the slowest task, double its lanes (`unroll`), keep the step when the task got faster, the
   makespan fell by at least `gain` and the tasks' compute still fits the resource model
   (`lowering.resources`: within `fill` of every device resource); a task that cannot grow (its
   stream, a recurrence or HBM bounds it, or the device is full) leaves the heap; one that got
   faster while another task bounded the makespan is tried again in a next pass over the heap,
   after the steps that followed (Qwen2.5's up projection, once its gate projection, the other
   operand of their product, had grown); one that got faster while a task exactly as slow bounded
   the makespan (Gemma 3's gate and up projections, the same shape side by side: neither alone
   ever cuts it) is doubled together with it in one step. Ties between equally slow tasks are
   broken by a generator seeded with `seed`, so an exploration is deterministic for a seed.
   Before anything grows, level 1a (`_trim_lanes`) halves the lanes of the tasks with time to
   spare (paced by their inputs in the unbounded run), while the makespan holds within `gain`:
   on Gemma 3 their maps held most of the DSPs and LUTs and no matvec could be split; then
   further while it holds within `TRIM_SLACK`, so that the critical path's maps give room too.
   Splits (level 1b, `_explore_splits`: how many parallel parts each weight matvec is cut into,
   judged with its DMA adapters against the share) come before the lanes; its last step trades
   parts (`_traded_parts`: the most split chains and the unit holding the most of the critical
   path one divisor up, the others halved until the design fits). Then, while the FIFO-sized
   design at the starting lanes does not fit the device, the split whose halving costs the least
   makespan is halved (`back_off_splits`: every part brings DMA burst buffers and FIFOs the share
   does not see).
3. **Channel allocation**: the DMAs striped over HBM pseudo-channels by bandwidth share or one
   channel each (lowering/hbm_channels.py); level 2 runs from the starting lanes under each (the
   allocation decides which tasks are bound by their weight stream, whose lanes then cannot
   grow) and the faster is kept (`_channel_choice`): by the unbounded makespan, the one FIFO
   sizing aims at, but between two within `CHANNEL_TIE` of each other by the FIFO-sized one. With
   infinite FIFOs every weight streams from cycle 0, so TinyLlama's two allocations once took
   121,333 and 121,410 cycles, but sized within the memory one channel each took 168,510 and
   striped 121,410; and a sized figure of the grown lanes is no more than a tie-break, for the fit
   level then backs off lanes and narrows ports, which frees the memory prefetch needs: Qwen2.5
   striped 11,825 unbounded but 18,214 sized, one channel each 12,453 both, and striped, taken
   through the fit, ends at 11,692 cycles against 12,453.
   Level 3b (`_trim_grown`): when the design with every lanes step does not fit once FIFO-sized,
   level 1a runs again on it, over the tasks no step grew and no split cut (GPT-2 medium's
   activation quantizers and norm maps, which level 1a judged in the unsplit block, held 64 lanes
   of float cores for 16 cycles a vector): the room goes to the fit.
   Level 2c (`_attention_level`): at the grown lanes, the attention in parts by heads, fed by
   that many times the parts of the matvec before it, with their loads (the KV cache, that
   matvec's weights) on an early pool of channels of their own (`set_early_pool`); when it is
   faster unbounded and fits at the starting lanes, levels 3b to 6 run on both designs and the
   faster is kept.
4. **Fit**: levels 2 and 3 judge the tasks' compute (and the DMA adapters) alone; the FIFOs that
   sizing adds take BRAM36, URAM and LUTs. The design is FIFO-sized as `size-fifos` does (within
   the device) and judged by the resource model; the longest prefix of level 2's steps whose
   sized design fits the device's totals is kept (bisection), then halved while the SLR placement
   finds no room, then each later step that still fits on its own is kept too (`fitting_steps`);
   a design that fits at no prefix keeps its lanes and its plan says it does not fit
   (`figures["fits"]`).

Every step is judged by the timed simulator with unbounded FIFOs (`simulate_unbounded`: the
makespan FIFO sizing then aims at); per-task schedules are cached, so a step re-times one task.
The result is a `Plan`, which `Plan.apply` writes onto a lowered kernel and `Plan.to_json` /
`from_json` store (`streamdsl compile --dse` writes it into report.json and plan.json;
`--plan FILE` builds that design again).
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import json
import math
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, ModuleOp, f64, i64
from xdsl.ir import Attribute, Operation

from lowering.engine_phases import phases_alike
from lowering.fifo_sizing import Sizing, size_fifos
from lowering.forked import Forked, jobs
from lowering.hbm_channels import (
    CHANNELS,
    NARROW_WORDS,
    HbmPortsError,
    allocate_kernel,
    buffer_bytes,
    dma_tensor,
    early_pool,
    narrow_ports,
    set_early_pool,
    widen_ports,
)
from lowering.resources import (
    U55C_COSTS,
    U55C_DEVICE,
    Device,
    KernelUsage,
    Usage,
    bind_macs,
    fits_device,
    kernel_usage,
    logic_usage,
    task_usage,
)
from lowering.slr import SlrError, kernel_wires, place, set_slr_hint
from lowering.timing import CLOCK_ATTR, HBM_WORD_ATTR, U55C, TimingTable, hbm_stripes, hbm_word_bits, unroll_lanes
from lowering.transforms.flatten_loop_nests import flatten_loop_nests
from lowering.transforms.form_engines import EngineError, form_engines, formed_groups
from lowering.transforms.insert_converters import merge_duplicates
from lowering.transforms.narrow_streams import narrow_named, narrow_streams, narrowed_streams, widen_streams
from lowering.transforms.share_hbm_ports import share_named, share_ports, shared_chains
from lowering.transforms.split_matvecs import (
    PART,
    SplitError,
    cache_chains,
    feeding_chains,
    outer_trips,
    split_tasks,
    stream_producers,
    weight_chains,
)
from streamdsl.dialects.dataflow import DMA_OPS, DmaLoadOp, DmaSequenceOp, ITensorType, KernelOp, TaskOp, kernel_of
from streamdsl.errors import StreamdslError
from streamdsl.itensor import ITensorError
from streamdsl.scalars import specialise
from streamdsl.sim.timed import TimedResult, critical_path, simulate_unbounded
from streamdsl.wiring import NodeSchedule, graph_from_kernel, kernel_nodes, node_name, restream, retime

__all__ = ["MAX_LANES", "Plan", "PlanError", "back_off_splits", "explore", "fitting_steps", "load_plan", "longest_prefix", "set_clock"]

MAX_LANES = 1024  # scalar operations per cycle of one task: 16 beats of 64 i4 MACs
PLAN_VERSION = 1
# The makespan share level 1a may spend trimming the tasks on the critical path (GPT-2 medium with
# `narrow_splits`: 0.3% of the unsplit makespan bought 8 and 16 parts; 0.6% let the splits take the
# room the lanes then needed, 36,835 cycles).
TRIM_SLACK = 0.003


class PlanError(StreamdslError, ValueError):
    """A plan file that cannot be read or does not match the design (names the file and the key)."""


@dataclass(frozen=True)
class Plan:
    """A design's knobs: the default tile size, the lanes of each task (by name; the others keep
    the timing table's), whether DMAs are striped over HBM channels, the ports narrowed below
    512 bits (DMA node name -> word bits, lowering.hbm_channels.narrow_ports), the loads that
    share HBM ports (each chain streamed by one `dma_sequence`, its loads by
    `share_hbm_ports.load_name`), the kernel clock, and whether the tasks' perfect loop nests
    are flattened (`flatten-loop-nests`, after the splits), the weight chains' too (`flat_chains`;
    a plan written before they were, without the key, keeps theirs); the SLR placement the
    exploration found for it (`slr`, node -> SLR), which the placements of its build start from
    (`lowering.slr.set_slr_hint`: they are found again, not taken on trust); and the split matvecs
    whose parts compute in shared engines (`engines`, form-engines, after the splits and
    flattening: a plan names the engines' lanes by the engines' names)."""

    tile: int = 64
    clock_mhz: float = U55C.clock_mhz
    hbm_striping: bool = True
    lanes: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    splits: Mapping[str, int] = field(default_factory=dict)  # task -> parallel parts (split-matvecs), before lanes
    ports: Mapping[str, int] = field(default_factory=dict)  # DMA -> m_axi word bits, after the HBM allocation
    shared_ports: tuple[tuple[str, ...], ...] = ()  # chains of loads that share ports (share-hbm-ports), after splits
    flat_loops: bool = False  # flatten-loop-nests, after the splits
    early_tensors: tuple[str, ...] = ()  # tensors whose DMAs get `early_channels` of their own (level 2c)
    early_channels: int = 0
    flat_chains: bool = False  # with flat_loops: the weight chains' nests too (flatten-loop-nests chains=true)
    slr: Mapping[str, int] = field(default_factory=dict)  # node -> SLR the exploration placed, where its build starts
    figures: Mapping[str, Any] = field(default_factory=dict, compare=False)  # what the exploration measured (not applied)
    engines: tuple[tuple[str, ...], ...] = ()  # split matvecs whose parts compute in shared engines (form-engines)
    beats: Mapping[str, int] = field(default_factory=dict)  # FIFO -> narrowed beat bits (narrow-streams), after the ports

    def to_json(self) -> dict[str, Any]:
        return {"version": PLAN_VERSION, "tile": self.tile, "clock_mhz": self.clock_mhz, "hbm_striping": self.hbm_striping,
                "lanes": dict(sorted(self.lanes.items())), "seed": self.seed, "splits": dict(sorted(self.splits.items())),
                "ports": dict(sorted(self.ports.items())), "shared_ports": [list(c) for c in self.shared_ports],
                "flat_loops": self.flat_loops, "flat_chains": self.flat_chains, "early_tensors": list(self.early_tensors),
                "early_channels": self.early_channels, "slr": dict(sorted(self.slr.items())), "figures": dict(self.figures),
                "engines": [list(g) for g in self.engines], "beats": dict(sorted(self.beats.items()))}

    @staticmethod
    def from_json(data: Mapping[str, Any], source: str = "plan") -> Plan:
        if not isinstance(data, Mapping) or data.get("version") != PLAN_VERSION:
            raise PlanError(f"{source}: not a version-{PLAN_VERSION} design plan (a JSON object with \"version\": "
                            f"{PLAN_VERSION}, as `streamdsl compile --dse` writes to plan.json)")
        try:
            lanes = {str(k): int(v) for k, v in data.get("lanes", {}).items()}
            splits = {str(k): int(v) for k, v in data.get("splits", {}).items()}
            ports = {str(k): int(v) for k, v in data.get("ports", {}).items()}
            shared = tuple(tuple(str(n) for n in chain) for chain in data.get("shared_ports") or ())  # false: none (older plans)
            early = tuple(str(t) for t in data.get("early_tensors") or ())
            plan = Plan(int(data["tile"]), float(data["clock_mhz"]), bool(data["hbm_striping"]), lanes, int(data.get("seed", 0)),
                        splits, ports, shared, bool(data.get("flat_loops", False)), early, int(data.get("early_channels", 0)),
                        bool(data.get("flat_chains", False)), {str(k): int(v) for k, v in data.get("slr", {}).items()},
                        dict(data.get("figures", {})), tuple(tuple(str(n) for n in g) for g in data.get("engines") or ()),
                        {str(k): int(v) for k, v in data.get("beats", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise PlanError(f"{source}: a design plan needs tile, clock_mhz, hbm_striping and lanes ({err!r})") from None
        if plan.tile < 1 or plan.clock_mhz <= 0 or any(v < 1 or v > MAX_LANES for v in lanes.values()):
            raise PlanError(f"{source}: tile {plan.tile}, clock {plan.clock_mhz} MHz, lanes {lanes}: need a positive tile "
                            f"and clock, lanes in 1..{MAX_LANES}")
        if any(v < 2 for v in splits.values()):
            raise PlanError(f"{source}: splits {splits}: a task splits into 2 or more parts")
        if bad := [list(g) for g in plan.engines if len(set(g)) < 2 or len(set(g)) != len(g)]:
            raise PlanError(f"{source}: engines {bad[0]}: an engine computes two or more distinct matvecs")
        if plan.early_tensors and not 0 < plan.early_channels < CHANNELS:
            raise PlanError(f"{source}: early_channels {plan.early_channels}: the early tensors need 1 to {CHANNELS - 1} channels")
        if bad := {k: v for k, v in plan.slr.items() if not 0 <= v < U55C_DEVICE.slrs}:
            raise PlanError(f"{source}: slr {dict(list(bad.items())[:3])}: an SLR is 0 to {U55C_DEVICE.slrs - 1}")
        if bad := {k: v for k, v in ports.items() if v not in NARROW_WORDS}:
            raise PlanError(f"{source}: ports {bad}: a narrowed port's word is one of {', '.join(map(str, NARROW_WORDS))} bits")
        return plan

    def apply(self, kernel: KernelOp) -> None:
        """Write the plan onto a lowered kernel: its splits (split-matvecs), flattened nests,
        engines (form-engines) and shared ports (share-hbm-ports), its clock, each task's lanes, the
        HBM allocation (its early pool first), the narrowed ports, the SLR placement its build
        starts from (`set_slr_hint`)."""
        tasks = kernel.tasks
        if unknown := sorted(set(self.splits) - set(tasks)):
            raise PlanError(f"the plan splits tasks the design does not have: {', '.join(unknown[:5])} "
                            "(was the plan made for this model, tile, quantization and KV cache?)")
        try:
            split_tasks(kernel, self.splits)
        except SplitError as err:
            raise PlanError(str(err)) from None
        if self.flat_loops:  # after the splits: attention's parts (level 2c) are cut along their heads loop
            flatten_loop_nests(kernel, self.flat_chains)
        try:
            form_engines(kernel, self.engines)
        except EngineError as err:
            raise PlanError(str(err)) from None
        try:
            share_named(kernel, self.shared_ports)
        except KeyError as err:
            raise PlanError(f"the plan shares ports among loads the design does not have: {err.args[0]} "
                            "(was the plan made for this model, tile, quantization and KV cache?)") from None
        tasks = kernel.tasks
        if unknown := sorted(set(self.lanes) - set(tasks)):
            raise PlanError(f"the plan gives lanes for tasks the design does not have: {', '.join(unknown[:5])}; "
                            f"its tasks: {', '.join(sorted(tasks)[:8])}, ... (was the plan made for this model, tile, quantization "
                            "and KV cache?)")
        set_clock(kernel, self.clock_mhz)
        for name, task in tasks.items():
            if name in self.lanes:
                task.attributes["unroll"] = IntegerAttr(self.lanes[name], i64)
            else:
                task.attributes.pop("unroll", None)
        set_early_pool(kernel, self.early_tensors, self.early_channels)
        allocate_kernel(kernel, striping=self.hbm_striping)
        loads = {name: op for op, name in kernel_nodes(kernel) if isinstance(op, DmaLoadOp)}
        if unknown := sorted(set(self.ports) - set(loads)):
            raise PlanError(f"the plan narrows ports of DMAs the design does not have: {', '.join(unknown[:5])} "
                            "(was the plan made for this model, tile, quantization and KV cache?)")
        for name, bits in self.ports.items():
            loads[name].attributes[HBM_WORD_ATTR] = IntegerAttr(bits, i64)
        try:
            narrow_named(kernel, self.beats)
        except (KeyError, ITensorError) as err:
            raise PlanError(f"the plan narrows streams the design cannot narrow so: {err.args[0]} "
                            "(was the plan made for this model, tile, quantization and KV cache?)") from None
        set_slr_hint(kernel, self.slr)


def set_clock(kernel: KernelOp, clock_mhz: float) -> None:
    """The kernel clock its timing model runs at (`lowering.timing.table_of`)."""
    kernel.attributes[CLOCK_ATTR] = FloatAttr(float(clock_mhz), f64)


def load_plan(path: str) -> Plan:
    try:
        with open(path) as f:
            return Plan.from_json(json.load(f), path)
    except OSError as err:
        raise PlanError(f"{path}: cannot read the plan ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise PlanError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None


class _Structure:
    """What a node's schedule and compute usage follow from, without its SSA identity, so that the
    copies the exploration splits and times share them: its kind, port types, attributes (lanes,
    HBM channels, a converter's plan) and properties; a task's body by its name (within one
    exploration a name holds one body: a split part's differs from its task's in its types; level 6
    flattens bodies under their names, so it times them with a cache of its own). Each attribute
    is hashed once, the first time it is seen, and stands in the key as the number of its first
    equal one: hashing a port type on every look-up cost a tenth of an exploration."""

    def __init__(self) -> None:
        self.numbers: dict[Attribute, int] = {}
        self.seen: dict[int, tuple[Attribute, int]] = {}  # id -> (the attribute, kept alive so the id stays its, its number)

    def number(self, attr: Attribute) -> int:
        entry = self.seen.get(id(attr))
        if entry is None:
            entry = self.seen[id(attr)] = (attr, self.numbers.setdefault(attr, len(self.numbers)))
        return entry[1]

    def __call__(self, op: Operation) -> tuple[object, ...]:
        number = self.number
        return (op.name, tuple(number(t) for t in op.operand_types), tuple(number(t) for t in op.result_types),
                tuple((k, number(v)) for k, v in op.attributes.items()), tuple((k, number(v)) for k, v in op.properties.items()))


def _remap(schedule: NodeSchedule, port: Callable[[Any], Any]) -> NodeSchedule:
    """`schedule` with each stream key (an SSA value or a port number) mapped by `port`."""
    def keys(streams: Mapping[Any, Any] | None) -> dict[Any, Any] | None:
        return None if streams is None else {port(k): v for k, v in streams.items()}

    return dataclasses.replace(schedule, reads=keys(schedule.reads), writes=keys(schedule.writes), order=keys(schedule.order))


class _CachedTiming:
    """The timing table, remembering each node's schedule and each task's compute usage (at a lane
    count) by its `_Structure`: a step re-times only what it changed, and a split trial only its
    parts."""

    def __init__(self, table: TimingTable) -> None:
        self.table = table
        self.read_latency, self.free_latency = table.read_latency, table.free_latency
        self.cache: dict[tuple[object, ...], NodeSchedule] = {}
        self.usages: dict[tuple[object, ...], Usage] = {}
        self.structure = _Structure()

    def schedule(self, op: Operation) -> NodeSchedule:
        key = self.structure(op)
        if key not in self.cache:  # kept by port number: no SSA value (nor the copy it is in) held
            index = {v: k for k, v in enumerate((*op.operands, *op.results))}
            self.cache[key] = _remap(self.table.schedule(op), index.__getitem__)
        ports = (*op.operands, *op.results)
        return _remap(self.cache[key], ports.__getitem__)

    def usage(self, task: TaskOp, lanes: int | None = None) -> Usage:
        """`task_usage` of `task` built with `lanes` (None: its own). `task_usage` reads the task's
        `unroll` (its `lanes` argument is only the default for a task without one), so the task
        carries `lanes` while it is counted."""
        own = task.attributes.get("unroll")
        if lanes is not None:
            task.attributes["unroll"] = IntegerAttr(lanes, i64)
        try:
            key = self.structure(task)
            if key not in self.usages:
                self.usages[key] = task_usage(task, U55C_COSTS)
            return self.usages[key]
        finally:
            if own is None:
                task.attributes.pop("unroll", None)
            else:
                task.attributes["unroll"] = own


class _Design:
    """One lowered kernel under exploration: its timing graph, re-timed one task at a time."""

    def __init__(self, kernel: KernelOp, timing: _CachedTiming) -> None:
        self.kernel, self.timing, self.evaluations = kernel, timing, 0
        self.placement: dict[str, int] | None = None  # the last SLR placement found, tried first next time
        self.rebuild()

    def rebuild(self) -> None:
        """The whole graph again (after the HBM allocation changed)."""
        self.graph, _ = graph_from_kernel(self.kernel, self.timing)  # type: ignore[arg-type]

    def set_lanes(self, task: TaskOp, lanes: int | None) -> int:
        """Give `task` these lanes (None: the table's) and return its latency."""
        if lanes is None:
            task.attributes.pop("unroll", None)
        else:
            task.attributes["unroll"] = IntegerAttr(lanes, i64)
        name = node_name(task)
        self._retime(name, task)
        return self.graph.tasks[name].latency or 0

    def apply_lanes(self, lanes: Mapping[str, int]) -> None:
        """Every task at its lanes in `lanes` (one it omits: the table's)."""
        for task in self.kernel.body.block.ops:
            if isinstance(task, TaskOp) and unroll_lanes(task) != lanes.get(task.sym_name.data):
                self.set_lanes(task, lanes.get(task.sym_name.data))

    def _retime(self, name: str, op: Operation) -> None:
        """Node `name`'s task again from `op`'s schedule (its attributes changed)."""
        retime(self.graph, self.timing, {name: op})  # type: ignore[arg-type]

    def run(self) -> int:
        return self.timed().makespan  # type: ignore[return-value]

    def narrow_ports(self) -> dict[str, int]:
        """Level 5: every port at 512 bits and every stream at its default beats again, then the
        loads that keep pace narrowed (lowering.hbm_channels.narrow_ports: the makespan stays),
        then the streams whose tokens come slowly (narrow-streams: the makespan stays); returns
        DMA -> word bits."""
        restream(self.graph, self.timing, widen_streams(self.kernel))  # type: ignore[arg-type]
        names = {op: name for op, name in kernel_nodes(self.kernel)}
        for op in widen_ports(self.kernel):
            self._retime(names[op], op)
        ports = narrow_ports(self.kernel, self.graph, self.timed(), self.timing)  # type: ignore[arg-type]
        for op, name in names.items():
            if name in ports:
                self._retime(name, op)
        narrow_streams(self.kernel, self.timed(), self.timing, self.graph)  # type: ignore[arg-type]
        return ports

    def logic(self) -> dict[str, Usage]:
        """`logic_usage` of the kernel at its lanes, tasks' compute from the cache."""
        return logic_usage(self.kernel, task_cost=self.timing.usage)

    def timed(self) -> TimedResult:
        """The unbounded simulation (one evaluation); its makespan is never None."""
        result = simulate_unbounded(self.graph)
        self.evaluations += 1
        if result.makespan is None:
            raise PlanError(f"the design deadlocks with unbounded FIFOs: {result.deadlock}")
        return result


class _Compute:
    """The tasks' compute resources (`lowering.resources.task_usage`) at given lanes."""

    def __init__(self, tasks: Mapping[str, TaskOp], timing: _CachedTiming) -> None:
        self.tasks, self.timing = tasks, timing

    def usage(self, lanes: Mapping[str, int]) -> Usage:
        return bind_macs(self.tasks.values(), lambda task: self.timing.usage(task, lanes.get(task.sym_name.data)))


def _explore_lanes(design: _Design, rng: random.Random, fill: float, budget: int, gain: float,
                   say: Callable[[str], None], device: Device = U55C_DEVICE) -> tuple[dict[str, int], int, list[dict[str, int]]]:
    """Level 2: the greedy max-heap over task latencies (module doc), at most `budget` timed
    simulations; a step is kept when it cuts the makespan by at least the fraction `gain`. The
    parts of a split task (`<task>_p<i>`) are one heap entry: their lanes double together.
    Returns the lanes, the makespan and the steps kept, in order (the lanes each step gave)."""
    tasks = design.kernel.tasks
    capacity, compute = device.total * fill + _dma_usage(design.kernel) * -1, _Compute(tasks, design.timing)
    steps: list[dict[str, int]] = []
    lanes: dict[str, int] = {n: lanes for n, t in tasks.items() if (lanes := unroll_lanes(t))}
    groups: dict[str, list[str]] = {}
    for name in sorted(tasks):
        groups.setdefault(PART.sub("", name), []).append(name)
    run = design.timed()
    makespan = run.makespan

    def span(group: str) -> tuple[int, int]:  # when the group's tasks run in `run`
        nodes = [node_name(tasks[n]) for n in groups[group]]
        return min(run.start[v] for v in nodes), max(run.finish[v] for v in nodes)

    latency = {g: max(design.graph.tasks[node_name(tasks[n])].latency or 0 for n in members) for g, members in groups.items()}
    candidates = sorted(groups)
    while candidates:  # a pass over the heap; then again over the tasks that were faster but bounded by another
        if steps:
            say(f"lanes: again, {len(candidates)} tasks that got faster while another task bounded the makespan")
        heap = [(-latency[g], rng.random(), g) for g in candidates]
        heapq.heapify(heap)
        stepped, waiting = len(steps), []
        while heap and design.evaluations < budget:
            _, _, group = heapq.heappop(heap)
            if latency[group] / 2 < gain * makespan:
                break  # halving the slowest task left could not cut the makespan by `gain`
            together = [group]
            doubled = _doubled(design, tasks, groups, lanes, together, compute, capacity)
            if doubled is None:
                continue  # this task is done growing
            trial, faster = doubled
            trial_run = design.timed() if faster[group] < latency[group] else run
            twins = [g for g in sorted(groups) if g != group and latency[g] == latency[group] and span(g) == span(group)]
            if faster[group] < latency[group] and trial_run.makespan > makespan * (1 - gain) and twins:
                # a twin (as slow, from the same start to the same end: the gate and up
                # projections, the two operands of one product) bounds it: double them together
                joint = _doubled(design, tasks, groups, lanes, [group, *twins], compute, capacity)
                if joint is not None:
                    (trial, faster), together = joint, [group, *twins]
                    trial_run = design.timed()
            new_makespan = trial_run.makespan
            if faster[group] >= latency[group] or new_makespan > makespan * (1 - gain):
                for n in (n for g in together for n in groups[g]):
                    design.set_lanes(tasks[n], lanes.get(n))  # its stream, a recurrence or another node bounds it
                if faster[group] < latency[group]:
                    waiting.append(group)  # faster, but another task bounded the makespan: the next pass tries again
                continue
            lanes, makespan, run = trial, new_makespan, trial_run
            steps.append({n: trial[n] for g in together for n in groups[g]})
            say(f"lanes: {' + '.join(together)}{' (all parts)' if len(groups[group]) > 1 else ''} x{trial[groups[group][0]]}: "
                f"{makespan} cycles")
            for g in together:
                latency[g] = faster[g]
                heapq.heappush(heap, (-faster[g], rng.random(), g))
        candidates = waiting if len(steps) > stepped and design.evaluations < budget else []
    return lanes, makespan, steps


def _doubled(design: _Design, tasks: Mapping[str, TaskOp], groups: Mapping[str, list[str]], lanes: Mapping[str, int],
             together: Sequence[str], compute: _Compute, capacity: Usage) -> tuple[dict[str, int], dict[str, int]] | None:
    """The tasks of `together` (groups: a task, or a split task's parts) at twice their lanes in
    `design`: the lanes of every task then and each group's new latency; None (the design
    unchanged) when a task would pass `MAX_LANES` or the compute `capacity`."""
    table = design.timing.table
    more = {n: 2 * (lanes.get(n) or table.lanes) for g in together for n in groups[g]}
    trial = {**lanes, **more}
    if max(more.values()) > MAX_LANES or compute.usage(trial).over(capacity):
        return None
    return trial, {g: max(design.set_lanes(tasks[n], more[n]) for n in groups[g]) for g in together}


def _trim_lanes(design: _Design, keep: Collection[str], gain: float, say: Callable[[str], None],
                device: Device = U55C_DEVICE, slack: float = 0.0) -> None:
    """Level 1a: fewer lanes for the tasks that have time to spare, so that splits and the lanes
    level find the room they hold. A task paced by its inputs (a wide element-wise map fed by a
    matvec's output, one tile every few hundred cycles) gains nothing from its lanes: in the
    unbounded run it is busy from its start to its finish whatever its compute. So, largest
    compute first (its busiest share of the device's DSPs, LUTs and FFs; tasks under 0.5% left
    alone, as are the tasks in `keep`: the weight matvecs, whose lanes the split level relies on),
    its lanes are halved while the timing model's latency of the task alone stays within its time
    in that run; the step is kept when the block's makespan stays within the fraction `gain` of
    the makespan before this level (one timed simulation a task tried). With a `slack`, a task's
    lanes are then halved further while the makespan stays within that fraction of the one before
    this level (a timed simulation a halving): the tasks on the critical path between two
    matvecs (GPT-2 medium's norms and activation quantizers, 64 lanes of float cores on a vector
    of 1,024, a fifth of the device's LUTs) give a few cycles each for the room more parts need.
    No halving takes a task's own latency past the block's floor (`_hbm_floor`: the time every
    byte it loads takes at the HBM's whole rate): the unsplit block, slow everywhere, let the
    scores' contraction of GPT-2 medium's attention (its loops flattened, `flatten-loop-nests`)
    fall to 8 lanes (about 16,500 cycles alone, the floor 4,474), and the split level then judged
    every split with attention as its bound."""
    run = design.timed()
    floor = _hbm_floor(design.kernel, design.timing.table)
    table, limit = design.timing.table, run.makespan * (1 + gain)  # type: ignore[operator]
    spare = run.makespan * (1 + slack)  # type: ignore[operator]
    tasks = {n: t for n, t in design.kernel.tasks.items() if n not in keep}
    compute = {n: design.timing.usage(t).share(device.total) for n, t in tasks.items()}
    for name in sorted((n for n in tasks if compute[n] >= 0.005), key=lambda n: (-compute[n], n)):
        task, node = tasks[name], node_name(tasks[name])
        had = unroll_lanes(task)
        now = lanes = had or table.lanes
        while lanes > 1 and design.set_lanes(task, lanes // 2) <= min(run.finish[node] - run.start[node], floor):
            lanes //= 2
        makespan = run.makespan
        if lanes < now:
            design.set_lanes(task, lanes)
            if (makespan := design.run()) > limit:
                lanes, makespan = now, run.makespan
        spared = lanes
        while slack and lanes > 1:
            if design.set_lanes(task, lanes // 2) > floor or (halved := design.run()) > spare:
                break
            lanes, makespan = lanes // 2, halved
        design.set_lanes(task, lanes if lanes < now else had)
        if lanes < now:
            why = "has time to spare" if lanes == spared else f"gives up lanes within the {slack:.1%} slack"
            say(f"lanes: {name} {why}: x{lanes} (was x{now}), {makespan} cycles")


def _hbm_floor(kernel: KernelOp, table: TimingTable) -> int:
    """The cycles every byte the kernel loads from HBM takes at the 32 pseudo-channels' whole rate
    (no design of it is faster)."""
    loaded = sum(buffer_bytes(v) for op in kernel.body.block.ops if isinstance(op, DmaLoadOp | DmaSequenceOp) for v in op.results)
    return -(-loaded * 8 // (CHANNELS * table.hbm_bits_per_cycle))


def _trim_grown(design: _Design, tasks: Mapping[str, TaskOp], start: Mapping[str, int], steps: list[dict[str, int]],
                gain: float, say: Callable[[str], None], device: Device) -> dict[str, int]:
    """Level 3b: level 1a again, on the design the lanes level grew (every step applied), over the
    tasks no step grew and no split cut: level 1a judged them in the unsplit block, where the
    matvecs' slowness hid what they cost (GPT-2 medium's activation quantizers and norms kept 64
    lanes of float cores, 6% of the device's LUTs, for 16 cycles a vector). The room they give
    goes to the fit (level 4); run only when the grown design does not fit (`_fit_sized`): where
    it fits, the trim would cost cycles for room nothing needs. Returns the starting lanes with
    theirs."""
    design.apply_lanes(_with_steps(start, steps))
    keep = {n for step in steps for n in step} | {n for n in tasks if PART.search(n)}
    _trim_lanes(design, keep, gain, say, device, TRIM_SLACK)
    return {**start, **{n: v for n, t in tasks.items() if n not in keep and (v := unroll_lanes(t))}}


def _sizing(design: _Design, device: Device) -> Sizing:
    """The design's FIFOs sized as `size-fifos` sizes them (min-bits within the device: the
    prefetch limited where memory would over-fill it)."""
    return size_fifos(design.graph, "min-bits", fits=fits_device(design.graph, design.kernel, device, logic=design.logic()))


def _sized_usage(design: _Design, device: Device, sizing: Sizing | None = None) -> KernelUsage:
    """The resource model's usage of the design with its FIFOs sized (`sizing`, else `_sizing`)."""
    sizing = sizing or _sizing(design, device)
    return kernel_usage(design.kernel, design.graph, sizing.depths, task_cost=design.timing.usage)


def _placeable(design: _Design, usage: KernelUsage, device: Device) -> bool:
    """Whether the SLR placement finds every node an SLR within each SLR's resources."""
    try:
        design.placement = place(usage, kernel_wires(design.kernel, design.graph), device, first=True, hint=design.placement).slr
    except SlrError:
        return False
    return True


def longest_prefix(steps: int, fits: Callable[[int], bool]) -> int:
    """The most of `steps` lanes steps (0..steps) whose design `fits`, by bisection (more lanes,
    more logic: fit is taken to hold for every prefix of a fitting one); 0 when none fits."""
    if fits(steps):
        return steps
    lo, hi = 0, steps  # fits(hi) is false; lo is the answer unless a longer prefix fits
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def fitting_steps(steps: int, within: Callable[[tuple[int, ...]], bool], placed: Callable[[tuple[int, ...]], bool],
                  faster: Callable[[tuple[int, ...], tuple[int, ...]], bool]) -> tuple[int, ...] | None:
    """The lanes steps (indices into 0..steps) a design keeps: the longest prefix `within` the
    device's totals (`longest_prefix`), halved while it is not `placed` on the SLRs; then each
    later step in turn, on its own, when it makes the design `faster` and the design with it is
    still within and placed. A step the prefix stopped before can be small (a norm's lanes, where
    the prefix ended at a matvec's). None when not even the starting lanes (no step) fit."""
    k = longest_prefix(steps, lambda k: within(tuple(range(k))))
    while k > 0 and not placed(tuple(range(k))):
        k //= 2
    kept = tuple(range(k))
    if not (within(kept) and placed(kept)):
        return None
    for step in range(k, steps):
        trial = (*kept, step)
        if faster(kept, trial) and within(trial) and placed(trial):
            kept = trial
    return kept


def _fit_sized(design: _Design, start: Mapping[str, int], steps: list[dict[str, int]], device: Device,
               say: Callable[[str], None], gain: float = 0.0,
               trim: Callable[[], Mapping[str, int]] | None = None) -> tuple[dict[str, int], dict[str, Any]]:
    """Level 4, the fit: the exploration judged the tasks' compute only; the FIFOs sizing adds
    afterwards take BRAM36, URAM and LUTs. Keep the lanes steps `fitting_steps` keeps, judging
    each set of steps by its FIFO-sized design (a later step must cut the unbounded makespan by
    `gain`). A design that fits with no step keeps every step and says so (its splits or memories
    over-fill the device, not its lanes). When the design with every step does not fit, `trim`
    (level 3b) gives the starting lanes first. Returns the lanes and the figures."""

    def lanes_of(kept: tuple[int, ...]) -> dict[str, int]:
        return _with_steps(start, [steps[i] for i in kept])

    def apply(kept: tuple[int, ...]) -> None:
        design.apply_lanes(lanes_of(kept))

    @functools.cache
    def usage(kept: tuple[int, ...]) -> KernelUsage:
        apply(kept)
        design.narrow_ports()
        return _sized_usage(design, device)

    @functools.cache
    def placed(kept: tuple[int, ...]) -> bool:
        return _placeable(design, usage(kept), device)

    @functools.cache
    def makespan(kept: tuple[int, ...]) -> int:
        apply(kept)
        return design.run()

    def within(kept: tuple[int, ...]) -> bool:
        return not usage(kept).total.over(device.total)

    every = tuple(range(len(steps)))
    if trim is not None and not (within(every) and placed(every)):
        say("lanes: the grown design does not fit once FIFO-sized; trimming the tasks no step grew")
        start = trim()
        for cached in (usage, placed, makespan):
            cached.cache_clear()  # their designs started from the untrimmed lanes
    kept = fitting_steps(len(steps), within, placed, lambda kept, trial: makespan(trial) <= makespan(kept) * (1 - gain))
    if kept is None:  # not the lanes' doing: fewer would cost speed and fit no better
        kept = every
        over = usage(kept).total.over(device.total)
        say(f"fit: the FIFO-sized design does not fit the {device.name} by the resource model "
            f"({', '.join(over) if over else 'no SLR placement'}), not even at the starting lanes")
    elif len(kept) < len(steps):
        say(f"fit: the FIFO-sized design fits with {len(kept)} of the {len(steps)} lanes steps")
    apply(kept)
    fits = within(kept) and placed(kept)
    return lanes_of(kept), {"fits": fits, "lanes_steps": len(steps), "lanes_steps_kept": len(kept),
                            "busiest_share": round(usage(kept).total.share(device.total), 4)}


def _split_trial(module: ModuleOp, splits: Mapping[str, int], shared: Collection[str], timing: _CachedTiming,
                 capacity: Usage, sequences: bool = False, early: tuple[Collection[str], int] | None = None,
                 flat: bool = False, engines: Sequence[Sequence[str]] = ()) -> tuple[int, ModuleOp] | None:
    """The unbounded makespan of `module` (not changed) with these splits and its HBM allocated
    again, and the split copy; None when the parts' compute at their lanes exceeds `capacity`.
    The parts of a task in `shared` share its lanes (each gets lanes / parts, at least one);
    `sequences`: the parts' loads share ports (`share_ports`); `early`: the early pool's tensors
    and channels (`set_early_pool`; None: the module's); `flat`: the weight chains' loop nests
    flattened once split (a flattened block's, as its plan applies them); `engines`: groups of
    chain tasks whose parts compute in engines (form-engines), of the tasks this trial splits."""
    trial = module.clone()
    kernel = kernel_of(trial)
    if early is not None:
        set_early_pool(kernel, *early)
    for task in [op for op in kernel.body.block.ops if isinstance(op, TaskOp) and op.sym_name.data in shared]:
        name = task.sym_name.data
        task.attributes["unroll"] = IntegerAttr(max(1, (unroll_lanes(task) or timing.table.lanes) // splits[name]), i64)
    split_tasks(kernel, splits)
    if flat:
        flatten_loop_nests(kernel, chains=True)
    form_engines(kernel, [g for g in ([n for n in group if n in splits] for group in engines) if len(g) > 1])
    if sequences:  # chained by their readers' reads in the design with ports of their own, at the explored clock
        allocate_kernel(kernel)
        share_ports(kernel, timing=timing)
    allocate_kernel(kernel)
    merge_duplicates(kernel.body.block)  # as sd.compile's insert-converters will: the design judged is the one built
    tasks = kernel.tasks
    if (_Compute(tasks, timing).usage({n: u for n, t in tasks.items() if (u := unroll_lanes(t))}) + _dma_usage(kernel)).over(capacity):
        return None
    return _Design(kernel, timing).run(), trial


def _dma_usage(kernel: KernelOp) -> Usage:
    """The DMAs' m_axi adapters (logic and burst buffers), one per HBM stripe (lowering.resources)."""
    return sum((U55C_COSTS.maxi_usage(hbm_word_bits(op)) * hbm_stripes(op)[0]
                for op in kernel.body.block.ops if isinstance(op, DMA_OPS)), Usage())


def _engine_groups(chains: Mapping[str, list[str]], units: Sequence[tuple[str, ...]], tasks: Mapping[str, TaskOp]) -> list[list[str]]:
    """The chain tasks whose parts compute in engines (form-engines): a decode step's units of
    matvecs (`_Splits.units`: side by side) run one after the other in program order, so the i-th
    largest chain of each unit goes to engine i (TinyLlama: query, output projection, gate and
    down; key and up; value); at each depth of the chains, the tasks that are one body up to
    constants and streams (`phases_alike`: Llama's contractions, the scales but down's, the
    residual adds after o and down; not the query's rotation) form a group."""
    order = {name: k for k, name in enumerate(chains)}
    units = sorted(units, key=lambda unit: min(order[n] for n in unit))
    groups = []
    for i in range(max((len(u) for u in units), default=0)):
        heads = [unit[i] for unit in units if len(unit) > i]
        for depth in range(max(len(chains[h]) for h in heads)):
            alike: list[list[str]] = []
            for name in (chains[h][depth] for h in heads if len(chains[h]) > depth):
                if (group := next((g for g in alike if phases_alike([tasks[g[0]], tasks[name]])), None)) is not None:
                    group.append(name)
                else:
                    alike.append([name])
            groups += [g for g in alike if len(g) > 1]
    return groups


class _Splits:
    """The split space of a lowered block: how many parallel parts each weight matvec (and the
    tasks that walk its output in its order, `weight_chains`) is split into. Each trial is a split
    copy of `module` (not changed), its HBM allocated again, timed by the unbounded simulation;
    the weight matvecs' parts keep its lanes each (P times its compute, P weight streams), the
    tasks after one share theirs (the same compute, cut into lanes). `flat`: the block's loop
    nests are flattened (`explore`'s `flat_loops`), the weight chains' in each trial once split.
    A trial's compute is checked against `fill` of `device`."""

    def __init__(self, module: ModuleOp, timing: _CachedTiming, fill: float, sequences: bool = False, flat: bool = False,
                 device: Device = U55C_DEVICE, engines: bool = False) -> None:
        self.module, self.timing, self.fill, self.capacity = module, timing, fill, device.total * fill
        self.sequences, self.flat = sequences, flat
        kernel = kernel_of(module)
        self.chains = weight_chains(kernel)
        tasks = kernel.tasks
        self.trips = {name: outer_trips(tasks[name]) or 1 for name in self.chains}
        # largest weights first: by the tiles a matvec streams (its longest input), not its outer trips
        # (TinyLlama's down projection has 32 outer trips, its query projection 32, but 2.75x the tiles)
        tiles = {name: max(v.type.itensor.num_tokens for v in tasks[name].inputs if isinstance(v.type, ITensorType))
                 for name in self.chains}
        self.largest_first = sorted(self.chains, key=lambda n: (-tiles[n], -self.trips[n], n))
        # chains whose matvecs read the same activation (query, key and value; gate and up) run side by side:
        # one made faster alone waits for the others, so level 1b also steps them together
        reads = {n: frozenset(p for v in tasks[n].inputs for p in stream_producers(v) if isinstance(p, TaskOp)) for n in self.chains}
        self.units: list[tuple[str, ...]] = []
        for name in self.largest_first:
            if not any(name in unit for unit in self.units):
                self.units.append(tuple(n for n in self.largest_first if reads[n] and reads[n] == reads[name]) or (name,))
        self.heads: dict[str, int] = {}  # attention tasks -> parts by heads (level 2c), in every trial
        self.early: tuple[frozenset[str], int] = (frozenset(), 0)  # the early pool (level 2c)
        self.engines = _engine_groups(self.chains, self.units, tasks) if engines else []

    def splits_of(self, parts: Mapping[str, int]) -> dict[str, int]:
        return {**{t: p for name, p in parts.items() if p > 1 for t in self.chains[name]}, **self.heads}

    def trial(self, parts: Mapping[str, int]) -> tuple[int, ModuleOp] | None:
        """The makespan and the split copy; None when the parts' compute exceeds the share (or
        the attention's parts do not divide its heads)."""
        splits = self.splits_of(parts)
        followers = {t for chain in self.chains.values() for t in chain[1:] if t in splits} | set(self.heads)
        try:
            return _split_trial(self.module, splits, followers, self.timing, self.capacity, self.sequences, self.early, self.flat,
                                self.engines)
        except (SplitError, HbmPortsError, EngineError):  # parts that do not divide, more DMAs than the HBM has ports, ...
            return None

    def critical_unit(self, module: ModuleOp) -> tuple[str, ...]:
        """The unit (chains that run side by side) of the chain whose tasks hold the most cycles of
        the critical path of `module` (a trial's, unbounded: `critical_path`); none when no chain is on it."""
        design = _Design(kernel_of(module), self.timing)
        chain_of = {task: name for name, tasks in self.chains.items() for task in tasks}
        held: dict[str, int] = {}
        for segment in critical_path(design.graph, design.timed()):
            if (name := chain_of.get(PART.sub("", segment.task))) is not None:
                held[name] = held.get(name, 0) + segment.end - segment.start
        longest = max(held, key=lambda n: (held[n], n), default=None)
        return next((unit for unit in self.units if longest in unit), ())

    def divisor(self, name: str, most: int) -> int:
        return max(d for d in range(1, min(most, self.trips[name]) + 1) if self.trips[name] % d == 0)

    def next_divisor(self, name: str, parts: int) -> int | None:
        """The least part count above `parts` that divides the chain's outer trips, if any."""
        return next((d for d in range(parts + 1, self.trips[name] + 1) if self.trips[name] % d == 0), None)

    def unsplit(self) -> tuple[int, ModuleOp]:
        """The unbounded makespan of the design with nothing split, and that design as sd.compile
        builds it (a copy of `module`, its converters of one input merged)."""
        module = self.module.clone()
        if self.flat:
            flatten_loop_nests(kernel_of(module), chains=True)
        merge_duplicates(kernel_of(module).body.block)
        return _Design(kernel_of(module), self.timing).run(), module


def _speculated(evaluate: Callable[[Mapping[str, int]], tuple[Any, ModuleOp] | None],
                candidates: Sequence[Mapping[str, int]],
                ahead: Forked | None = None) -> Iterator[tuple[Any, Callable[[], ModuleOp]] | None]:
    """`evaluate` of each of `candidates` in turn (None, or its figures and its split copy) as
    (figures, a function giving the copy), for a caller that stops at the first it keeps: with two
    CPUs (`lowering.forked`), the one after each is evaluated in a child beside it (its figures
    come back), and its copy is made here only if it is asked for. `ahead`: the first
    candidate's figures, already being computed in a child."""
    def here(parts: Mapping[str, int]) -> tuple[Any, Callable[[], ModuleOp]] | None:
        return None if (result := evaluate(parts)) is None else (result[0], lambda: result[1])

    def beside(parts: Mapping[str, int], figures: Any) -> tuple[Any, Callable[[], ModuleOp]] | None:
        return None if figures is None else (figures, functools.cache(lambda: evaluate(parts)[1]))  # type: ignore[index]

    if ahead is not None:
        yield beside(candidates[0], ahead.result())
        candidates = candidates[1:]
    for k in range(0, len(candidates), 2):
        current, *after = candidates[k:k + 2]
        child = Forked(lambda: _figures(evaluate(after[0]))) if after and jobs() > 1 else None
        try:
            yield here(current)
            if after and child is None:
                yield here(after[0])
            elif after:
                figures, child = child.result(), None
                yield beside(after[0], figures)
        finally:
            if child is not None:
                child.cancel()


def _figures(result: tuple[Any, ModuleOp] | None) -> Any:
    return None if result is None else result[0]


def _neighbours(parts: int) -> tuple[int, ...]:
    """The part counts a chain tries next: double and half, and one more and one fewer (a count
    the doublings miss can cut an output where its consumers cut it: a query-key-value matvec in 3
    parts streams the three side by side, `fold_concat_chunks`)."""
    return parts * 2, parts // 2, parts - 1, parts + 1


def _moves(space: _Splits, unit: Sequence[str], parts: Mapping[str, int]) -> list[dict[str, int]]:
    """The steps level 1b tries for `unit` (chains that run side by side: `_Splits.units`): all
    its chains doubled, all halved, then each chain's own `_neighbours`."""
    moves = [{n: space.divisor(n, parts[n] * 2) for n in unit}, {n: space.divisor(n, max(1, parts[n] // 2)) for n in unit}] \
        if len(unit) > 1 else []
    return moves + [{n: space.divisor(n, c) if c >= 1 else 1} for n in unit for c in _neighbours(parts[n])]


def _explore_splits(space: _Splits, budget: int, gain: float, say: Callable[[str], None],
                    fits: Callable[[ModuleOp], bool] = lambda _: True) -> tuple[dict[str, int], ModuleOp]:
    """Level 1b: first one count for every chain (doubling while the makespan falls by `gain` and
    the split design, FIFO-sized at its lanes, still `fits`: a uniform count that does not fit
    would leave the back-off, one chain at a time, a long way down; a chain takes the largest
    divisor of its outer trips not above it), then chain by chain (a step to more parts kept only when it fits too),
    largest weights first, one step at a time while it helps (`_moves`: the chains that run side by
    side together, then each on its own; a step to fewer parts is kept when the makespan holds:
    fewer parts, fewer DMAs and tasks); at most `budget` trials; then a trade (`_traded_parts`).
    Returns the parts of each chain and the split module."""
    chains, trips = space.chains, space.trips
    best_parts = dict.fromkeys(chains, 1)
    makespan, best = space.unsplit()
    if not chains:
        return best_parts, best
    evaluations = 0
    uniform = 2
    while evaluations < budget and uniform <= max(trips.values()):
        parts = {name: space.divisor(name, uniform) for name in chains}
        evaluations += 1
        result = space.trial(parts)
        if result is None:
            say(f"splits: every weight matvec in up to {uniform} parts exceeds {space.fill:.0%} of the device")
            break
        if result[0] > makespan * (1 - gain):
            say(f"splits: every weight matvec in up to {uniform} parts: {result[0]} cycles, no faster")
            break
        if not fits(result[1]):
            say(f"splits: every weight matvec in up to {uniform} parts: {result[0]} cycles, but the sized design does not fit")
            break
        makespan, best, best_parts = result[0], result[1], parts
        say(f"splits: every weight matvec in up to {uniform} parts: {makespan} cycles")
        uniform *= 2
    improved = True
    while improved and evaluations < budget:
        improved = False
        for unit in space.units:
            moves = [m for m in _moves(space, unit, best_parts) if not all(best_parts[n] == p for n, p in m.items())]
            moves = moves[:budget - evaluations]
            with closing(_speculated(space.trial, [{**best_parts, **m} for m in moves])) as results:
                for move, result in zip(moves, results):
                    evaluations += 1
                    fewer = all(p <= best_parts[n] for n, p in move.items())
                    if result is not None and (fewer and result[0] <= makespan
                                               or result[0] <= makespan * (1 - gain) and fits(result[1]())):
                        makespan, best, best_parts, improved = result[0], result[1](), {**best_parts, **move}, True
                        say(f"splits: {', '.join(f'{n} in {p} parts' for n, p in move.items())}: {makespan} cycles")
                        break
    return _traded_parts(space, best_parts, best, makespan, gain, say, fits)


def _traded_parts(space: _Splits, parts: dict[str, int], module: ModuleOp, makespan: int, gain: float,
                  say: Callable[[str], None], fits: Callable[[ModuleOp], bool]) -> tuple[dict[str, int], ModuleOp]:
    """Level 1b's last step, a trade: the chains with the most parts and those of the unit that
    holds the most of the critical path (`_Splits.critical_unit`) each at the next count that
    divides its outer trips, then halvings until the design fits (`back_off_splits`, of any
    chain), kept when faster by `gain`. The steps before never reach it: a count between
    doublings rounds down to a divisor, and more parts of the largest matvecs alone do not fit,
    while fewer parts elsewhere buy the room (Gemma 3's MLP in 9 parts, not 6, with its
    attention's matvecs in fewer: 33,693 cycles at the starting lanes against 36,764; TinyLlama's
    gate and up projections, 4 parts each and 40% of its block, in 8, its down projection, the
    most split, back from 16 to 8: 54,606 cycles against 61,295). Its trials are not counted in
    the level's budget."""
    most = max(parts.values(), default=1)
    chosen = {n for n, p in parts.items() if p == most > 1} | set(space.critical_unit(module))
    raised = {n: d for n in sorted(chosen) if (d := space.next_divisor(n, parts[n])) is not None}
    if not raised or (result := space.trial({**parts, **raised})) is None or result[0] > makespan * (1 - gain):
        return parts, module
    last: list[Any] = [None, False]  # the module the back-off judged last, and whether it fits

    def judged(candidate: ModuleOp) -> bool:
        last[:] = [candidate, fits(candidate)]
        return last[1]

    traded, trial, cycles = back_off_splits(space, {**parts, **raised}, result[1], judged, say, result[0])
    assert cycles is not None
    named = ", ".join(f"{n} in {p}" for n, p in traded.items() if p != parts[n])
    if all(traded[n] <= parts[n] for n in raised) or cycles > makespan * (1 - gain) \
            or not (last[1] if last[0] is trial else fits(trial)):  # the back-off can end unfitted: nothing left to halve
        say(f"splits: {', '.join(raised)} in more parts, backed off to fit ({named or 'as it was'}): {cycles} cycles, not kept")
        return parts, module
    say(f"splits: traded, {named} parts: {cycles} cycles")
    return traded, trial


def _fewer_parts(space: _Splits, parts: Mapping[str, int], design: _Design, lanes: Mapping[str, int], striping: bool,
                 clock_mhz: float, say: Callable[[str], None]) -> tuple[dict[str, int], ModuleOp] | None:
    """Level 2b: the split level judged parts at the starting lanes, where a chain's parts can
    look needed because a task the lanes level grows later is slow (GPT-2 medium's query-key-value
    matvec went to 6 parts, but at the grown lanes its attention reads the key cache one head
    after the other at 258 cycles a head or more whatever the parts feed it: 13,358 cycles in 3
    parts against 15,095 in 6). At the grown `lanes`, each split chain, largest first, tries half
    its parts (its largest divisor not above), kept when the unbounded makespan holds: fewer
    parts, fewer DMAs and FIFOs for the fit. Returns the parts and the split module when any chain
    gave up parts, else None."""
    design.apply_lanes(lanes)
    makespan, best = design.run(), None
    parts = dict(parts)

    def judged(fewer: Mapping[str, int]) -> tuple[tuple[int, int], ModuleOp] | None:
        """The makespan of `fewer` parts at the grown lanes and its timed simulations; its split copy."""
        if (result := space.trial(fewer)) is None:
            return None
        kernel = kernel_of(result[1])
        set_clock(kernel, clock_mhz)
        allocate_kernel(kernel, striping=striping)
        trial = _Design(kernel, design.timing)
        trial.apply_lanes(lanes)
        return (trial.run(), trial.evaluations), result[1]

    names = [n for n in space.largest_first if parts[n] > 1]
    while names:  # each chain in turn; after one gives up parts, the rest again from the new parts
        candidates = [{**parts, n: space.divisor(n, parts[n] // 2)} for n in names]
        with closing(_speculated(judged, candidates)) as results:
            for name, fewer, result in zip(list(names), candidates, results):
                names.remove(name)
                if result is None:
                    continue
                (cycles, runs), module = result
                design.evaluations += runs
                if cycles <= makespan:
                    say(f"splits: at the grown lanes, {name} in {fewer[name]} parts: {cycles} cycles (was {makespan})")
                    parts, best, makespan = fewer, module(), cycles
                    break
    return (parts, best) if best is not None else None


CHANNEL_TIE = 0.01  # channel choices within 1% of each other unbounded: told apart by their FIFO-sized makespans


def _channel_choice(rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Level 3's choice of HBM channels, of rows `(sized, unbounded, ...)` (module doc): among the
    rows within `CHANNEL_TIE` of the fastest unbounded, the least, the sized makespan first."""
    fastest = min(row[1] for row in rows)
    return min(row for row in rows if row[1] <= fastest * (1 + CHANNEL_TIE))


HEAD_PARTS = (2, 4)  # the attention's parts by heads that level 2c tries
EARLY_CHANNELS = (16, 20, 24)  # the early pools it tries (of the 32 pseudo-channels)


def _loaded_tensors(tasks: Iterable[TaskOp]) -> frozenset[str]:
    """The HBM tensors whose loads reach the tasks' inputs (through stream ops)."""
    return frozenset(dma_tensor(p) for t in tasks for v in t.inputs for p in stream_producers(v) if isinstance(p, DmaLoadOp))


def _lanes_for(lanes: Mapping[str, int], tasks: Collection[str], heads: Mapping[str, int]) -> dict[str, int]:
    """`lanes` for the tasks of a design split again: a part takes the lanes of its task's parts
    (or of the task); a task newly split by heads (`heads`) shares them among its parts."""
    by_task = {PART.sub("", n): v for n, v in lanes.items()}
    out = {}
    for name in tasks:
        task = PART.sub("", name)
        if (value := lanes.get(name, by_task.get(task))) is not None:
            out[name] = max(1, value // heads[task]) if task in heads and name not in lanes else value
    return out


def _attention_level(space: _Splits, parts: dict[str, int], design: _Design, lanes: Mapping[str, int], striping: bool,
                     clock_mhz: float, gain: float, say: Callable[[str], None],
                     fits: Callable[[ModuleOp], bool]) -> tuple[dict[str, int], ModuleOp] | None:
    """Level 2c: the attention in parts by heads, and the first phase's loads on channels of their
    own, judged at the grown `lanes` (at the starting lanes the matvecs' compute hides both). A
    decode block's attention reads the KV cache one head after the other through one stream (a
    beat a cycle: GPT-2 medium's f32 keys, 258 cycles a head), so however many parts feed it its
    queries, keys and values, it ends thousands of cycles after them; and the first matvec's
    weights share every channel with the later matvecs' weights, which stream from the start, so
    it ends when the whole HBM does. Each attention (`cache_chains`) is tried in `HEAD_PARTS`
    parts by heads, the weight chains that feed it in that many times their parts (so that each
    attention part is fed by parts of its own: `hoist_chunk`), with the loads of both (the cache,
    the first matvec's weights) on an early pool of each of `EARLY_CHANNELS` channels
    (`set_early_pool`); the fastest that gains by `gain` and `fits` at the starting lanes is kept
    (the fit level then backs off lanes steps until the grown design fits). A head count whose
    faster candidate does not fit tries no further pool: its parts are the same on every pool
    (only their ports and FIFOs differ), and in the four `paper` families no faster candidate
    fitted, while the trials and sizings took 60 of GPT-2 medium's 165 s (under the profiler).
    Returns the weight chains' parts and the split module, the space keeping the attention's
    parts and the pool for every later trial; None when nothing gained."""
    kernel = kernel_of(space.module)
    chains = cache_chains(kernel)
    if not chains:
        return None
    tasks = kernel.tasks
    attention = {t for chain in chains for t in chain}
    feeding = feeding_chains(kernel, attention)
    early = _loaded_tensors(tasks[t] for t in attention | {t for n in feeding for t in space.chains[n]})
    design.apply_lanes(lanes)
    makespan, best = design.run(), None
    for heads in HEAD_PARTS:
        trial_parts = {**parts, **{n: space.divisor(n, parts[n] * heads) for n in feeding}}
        split_heads = dict.fromkeys(attention, heads)
        for channels in EARLY_CHANNELS:
            space.heads, space.early = split_heads, (early, channels)
            if (result := space.trial(trial_parts)) is None:
                continue
            start = result[1].clone()  # at the starting lanes, for the fit
            trial_kernel = kernel_of(result[1])
            set_clock(trial_kernel, clock_mhz)
            allocate_kernel(trial_kernel, striping=striping)
            trial = _Design(trial_kernel, design.timing)
            names = [t.sym_name.data for t in trial_kernel.body.block.ops if isinstance(t, TaskOp)]
            trial.apply_lanes(_lanes_for(lanes, names, split_heads))
            cycles = trial.run()
            design.evaluations += trial.evaluations
            if cycles < makespan * (1 - gain):
                if not fits(start):  # the same parts on every pool, only their ports and FIFOs differ
                    say(f"attention: {heads} parts by heads: {cycles} cycles on {channels} channels, but the sized design "
                        "does not fit; no other pool tried")
                    break
                makespan, best = cycles, (trial_parts, result[1], split_heads, space.early)
                say(f"attention: {heads} parts by heads, its loads on {channels} channels of their own: {cycles} cycles")
    space.heads, space.early = (best[2], best[3]) if best is not None else ({}, (frozenset(), 0))
    return (best[0], best[1]) if best is not None else None


def _finish(design: _Design, tasks: Mapping[str, TaskOp], start_lanes: Mapping[str, int], steps: Sequence[Mapping[str, int]],
            device: Device, gain: float, say: Callable[[str], None],
            flat_loops: bool) -> tuple[dict[str, int], dict[str, Any], dict[str, int], tuple | None, _Design]:
    """Levels 3b to 6 on an explored design: the fit (trimming again first when the grown design
    does not fit), the narrowed ports, the flattened loops. Returns the lanes, the fit's figures,
    the narrowed ports, the flattening (None: kept nested) and the design."""
    lanes, fit = _fit_sized(design, start_lanes, steps, device, say, gain,
                            trim=lambda: _trim_grown(design, tasks, start_lanes, steps, gain, say, device))  # type: ignore[arg-type]
    ports = design.narrow_ports()
    say(f"ports: {len(ports)} loads narrowed below 512 bits (the makespan holds: each keeps pace with its reader)")
    flat = None if flat_loops else _flatten_level(design, device, gain, say)
    if flat is not None:
        design, ports, fit = flat[0], flat[1], {**fit, **flat[2]}
    return lanes, fit, ports, flat, design


def _fastest_finished(finished: list[tuple[Any, ...]], device: Device, say: Callable[[str], None]) -> tuple[Any, ...]:
    """Level 2c's choice between the design as it was and the one with the attention in parts
    (each `(unbounded makespan, lanes, fit, ports, flat, design, splits)` as `_finish` left it):
    the one that fits, then the shorter FIFO-sized makespan, the one a plan builds; the unbounded
    run hides the prefetch the memory left allows, so a design that fits only with its FIFOs cut
    short could win by it."""
    if len(finished) == 1:
        return finished[0]
    keys = []
    for i, entry in enumerate(finished):
        sized, fits = _sizing(entry[5], device).makespan, entry[2].get("fits", False)
        keys.append((not fits, math.inf if sized is None else sized, entry[0], i))
        say(f"attention: {'in parts by heads' if i else 'as it was'}: {sized} cycles FIFO-sized ({entry[0]} unbounded)"
            f"{'' if fits else ', does not fit'}")
    return finished[min(keys)[-1]]


def _fits_sized(module: ModuleOp, timing: _CachedTiming, device: Device, narrowed: bool = False) -> bool:
    """Whether the design of `module` at its lanes, FIFO-sized, fits `device` and its SLRs, its
    ports at 512 bits or, `narrowed`, as the exploration will narrow them (the BRAM36 that frees
    then goes to more parts rather than to lanes steps: see `explore`'s `narrow_splits`)."""
    design = _Design(kernel_of(module), timing)
    if narrowed:
        design.narrow_ports()
    usage = _sized_usage(design, device)
    return not usage.total.over(device.total) and _placeable(design, usage, device)


def _flatten_level(design: _Design, device: Device, gain: float,
                   say: Callable[[str], None]) -> tuple[_Design, dict[str, int], dict[str, Any]] | None:
    """Level 6: the explored design with its perfect loop nests flattened (`flatten-loop-nests`,
    the weight chains' kept), its ports narrowed again; kept, as a copy, when its FIFO-sized
    makespan is shorter by `gain` and it still fits the device and its SLRs. Exploring the
    flattened block from the start (`explore`'s `flat_loops`) can end elsewhere: TinyLlama's fit
    then kept fewer lanes steps (46,325 cycles), while its design flattened at the end takes 37,968
    against 38,384 (though the existence check finds it no placement). Returns the flattened
    design, its ports and its fit figures, or None."""
    module = design.kernel.get_toplevel_object().clone()
    assert isinstance(module, ModuleOp)
    kernel = kernel_of(module)
    widen_streams(kernel)  # flattening retypes the streams; narrow_ports narrows them again
    if not flatten_loop_nests(kernel, chains=True):
        return None
    flat = _Design(kernel, _CachedTiming(design.timing.table))  # a body changed under its name: timed afresh (`_Structure`)
    flat.evaluations, flat.placement = design.evaluations, design.placement  # the same nodes: its placement tried first
    ports = flat.narrow_ports()
    sized = _sizing(flat, device)
    before, after = _sizing(design, device).makespan, sized.makespan
    usage = _sized_usage(flat, device, sized)
    fits = not usage.total.over(device.total) and _placeable(flat, usage, device)
    say(f"loops: flattened, {after} cycles FIFO-sized against {before}{'' if fits else ', but it does not fit'}")
    if before is None or after is None or not fits or after > before * (1 - gain):
        return None
    return flat, ports, {"fits": True, "busiest_share": round(usage.total.share(device.total), 4)}


def _with_steps(start: Mapping[str, int], steps: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """The lanes of `start` after `steps` (each the lanes it gave its tasks), in order."""
    lanes = dict(start)
    for step in steps:
        lanes.update(step)
    return lanes


def back_off_splits(space: _Splits, parts: dict[str, int], module: ModuleOp, fits: Callable[[ModuleOp], bool],
                     say: Callable[[str], None], makespan: int | None = None) -> tuple[dict[str, int], ModuleOp, int | None]:
    """Level 1c: the split exploration judged the parts' compute and DMA adapters against a share
    of the device, not the FIFOs, converters and buffers sizing adds (every part's DMAs have
    burst buffers, its streams FIFOs). While the design at the starting lanes does not `fit` (the
    FIFO-sized design within the device's totals and SLRs, `_fits_sized`), halve the parts of one
    chain: the halving that leaves the shortest makespan, the smallest chain first (ties: the
    smaller), and the first that leaves the makespan (`module`'s, if known, else the last
    halving's) as it was ends the round: a chain off the critical path gives its parts up for
    free, and no other trial of the round is needed. Stops when it fits or nothing is split.
    Returns the parts, the split module and its makespan (`makespan` when nothing was halved)."""
    while any(p > 1 for p in parts.values()):
        names = [n for n in reversed(space.largest_first) if parts[n] > 1]
        candidates = [{**parts, name: space.divisor(name, parts[name] // 2)} for name in names]
        ahead = Forked(lambda: _figures(space.trial(candidates[0]))) if jobs() > 1 else None  # beside the fit check
        if fits(module):
            if ahead is not None:
                ahead.cancel()
            break
        trials = []
        with closing(_speculated(space.trial, candidates, ahead)) as results:  # two at a time with two CPUs
            for rank, (name, fewer, result) in enumerate(zip(names, candidates, results)):
                if result is not None:
                    trials.append((result[0], rank, name, fewer, result[1]))
                    if makespan is not None and result[0] <= makespan:
                        break
        if not trials:
            break
        makespan, _, name, parts, built = min(trials, key=lambda t: t[:2])
        module = built()
        say(f"splits: the sized design does not fit; {name} back to {parts[name]} parts: {makespan} cycles")
    return parts, module, makespan


def explore(build: Callable[[int], Any], tiles: Sequence[int] = (64,), clock_mhz: float = U55C.clock_mhz, seed: int = 0,
            fill: float = 0.8, evaluations: int = 90, gain: float = 0.002, table: TimingTable = U55C,
            progress: Callable[[str], None] | None = None, device: Device = U55C_DEVICE, narrow_splits: bool = False,
            shared_ports: bool = False, flat_loops: bool = False, engines: bool = False) -> Plan:
    """The best plan over `tiles` (each lowered by `build(tile)`, which returns a module holding one
    kernel, or None when that tile gives no single design) at `clock_mhz`; `fill` is the share of
    the device's resources the tasks' compute may use; at most `evaluations` timed simulations a
    tile (a count, not a time, so that the result depends on the seed alone; a third of them for
    the split level's trials; 90 since the narrowed streams are re-timed in place: Gemma 3 18,787
    -> 18,015 cycles, the others within 0.1%, every `paper` exploration under 60 s, where 120 gave
    Gemma 3 18,708, docs/lowering.md); a lanes step must
    cut the makespan by the fraction `gain` (more lanes cost DSPs and LUTs); then the lanes steps
    are backed off until the FIFO-sized design fits `device` (`_fit_sized`).

    `narrow_splits`: the split levels judge the design with its ports narrowed, not at 512 bits,
    so that the BRAM36 narrowing frees goes to more parts instead of to lanes steps. Which is
    faster depends on the block: GPT-2 medium 14,302 cycles against 19,097, Gemma 3 46,326
    against 57,019, TinyLlama 72,902 against 54,649 (its sized design loses the prefetch memory
    the parts take; docs/lowering.md); `benchmarks/roofline.py` tries both.

    `shared_ports`: every split trial's parts that run one after the other load through shared
    ports (`share-hbm-ports`), so a part costs no `m_axi` adapter of its own.

    `flat_loops`: the tasks' perfect loop nests are flattened first (`flatten-loop-nests`), so
    attention streams its key tiles without a pipeline fill per head; the levels then judge that
    design. Which is faster depends on the block (docs/lowering.md); `benchmarks/roofline.py`
    tries both.

    `engines`: every split trial computes the parts of matvecs that run one after the other in
    shared engines (`_engine_groups`, form-engines), charged once by the resource model, so the
    same share holds more parts."""
    say = progress or (lambda _: None)
    start = time.perf_counter()
    best: tuple[int, Plan] | None = None
    for tile in tiles:
        say(f"tiling: lowering at tile {tile}")
        module = build(tile)
        if module is None:
            say(f"tiling: tile {tile} gives no single design; skipped")
            continue
        module = specialise(module)  # run-time scalars at their maxima: the invocation FIFOs are sized for
        if flat_loops:
            flatten_loop_nests(kernel_of(module))
        timing = _CachedTiming(table.at_clock(clock_mhz))
        _trim_lanes(_Design(kernel_of(module), timing), weight_chains(kernel_of(module)), gain, say, device, TRIM_SLACK)
        space = _Splits(module, timing, fill, shared_ports, flat_loops, device, engines)
        fits = lambda m: _fits_sized(m, timing, device, narrow_splits)  # noqa: E731
        parts, module = _explore_splits(space, max(1, evaluations // 3), gain, say, fits)
        parts, module, _ = back_off_splits(space, parts, module, fits, say)
        splits = space.splits_of(parts)
        kernel = kernel_of(module)
        set_clock(kernel, clock_mhz)
        design = _Design(kernel, timing)
        striped = {}
        for striping in (False, True):  # level 3 first at the default lanes, again after level 2
            allocate_kernel(kernel, striping=striping)
            design.rebuild()
            striped[striping] = design.run()
        striping = striped[True] <= striped[False]
        allocate_kernel(kernel, striping=striping)
        design.rebuild()
        say(f"channels: {'striped' if striping else 'one channel each'} ({striped[True]} vs {striped[False]} cycles)")
        tasks = kernel.tasks
        start_lanes = {n: v for n, t in tasks.items() if (v := unroll_lanes(t))}
        def lanes_under(choice: bool, tell: Callable[[str], None]) -> tuple[tuple[Any, ...], int]:
            """Level 2 from the starting lanes with the HBM channels `choice` (they decide which tasks
            are HBM-bound), sized; and its timed simulations."""
            before = design.evaluations
            design.apply_lanes(start_lanes)
            allocate_kernel(kernel, striping=choice)
            design.rebuild()
            _, makespan, steps = _explore_lanes(design, random.Random(seed), fill, design.evaluations + evaluations, gain, tell,
                                                device)
            sized = _sizing(design, device).makespan or makespan  # the prefetch the memory allows differs too
            tell(f"channels: {'striped' if choice else 'one channel each'} with its lanes: {makespan} cycles ({sized} FIFO-sized)")
            runs, design.evaluations = design.evaluations - before, before  # counted by the caller, wherever it ran
            return (sized, makespan, choice != striping, choice, steps), runs

        heard: list[str] = []  # the child's progress, told once it is back
        first = Forked(lambda: (*lanes_under(striping, heard.append), heard))  # in a child beside this process
        second = lanes_under(not striping, say)  # this process's choice, told as it goes
        *row, heard = first.result()
        for message in heard:
            say(message)
        explored = [tuple(row), second]
        design.evaluations += sum(runs for _, runs in explored)
        _, makespan, _, striping, steps = _channel_choice([row for row, _ in explored])
        allocate_kernel(kernel, striping=striping)
        design.rebuild()
        fewer = _fewer_parts(space, parts, design, _with_steps(start_lanes, steps), striping, clock_mhz, say)
        if fewer is not None:  # the design again, on the module with fewer parts; lanes of parts it lost dropped
            parts = fewer[0]
            splits, kernel, evaluations_so_far = space.splits_of(fewer[0]), kernel_of(fewer[1]), design.evaluations
            design = _Design(kernel, timing)
            design.evaluations = evaluations_so_far
            tasks = kernel.tasks
            start_lanes = {n: v for n, v in start_lanes.items() if n in tasks}
            steps = [kept for step in steps if (kept := {n: v for n, v in step.items() if n in tasks})]
        designs = [(design, tasks, start_lanes, steps, splits)]
        heads = _attention_level(space, parts, design, _with_steps(start_lanes, steps), striping, clock_mhz, gain, say, fits)
        if heads is not None:  # the design again, its lanes and steps carried to the new parts; both finished, the faster kept
            kernel = kernel_of(heads[1])
            set_clock(kernel, clock_mhz)
            allocate_kernel(kernel, striping=striping)
            split_design = _Design(kernel, timing)
            split_tasks_ = kernel.tasks
            designs.append((split_design, split_tasks_, _lanes_for(start_lanes, split_tasks_, space.heads),
                            [kept for step in steps if (kept := _lanes_for(step, split_tasks_, space.heads))], space.splits_of(heads[0])))
        finished = []
        for design, tasks, start_lanes, steps, splits in designs:
            lanes, fit, ports, flat, design = _finish(design, tasks, start_lanes, steps, device, gain, say, flat_loops)
            finished.append((design.run(), lanes, fit, ports, flat, design, splits))
        makespan, lanes, fit, ports, flat, design, splits = _fastest_finished(finished, device, say)
        design.evaluations = sum(f[5].evaluations for f in finished)
        figures = {"unbounded_makespan_cycles": makespan, "evaluations": design.evaluations, **fit, "narrow_splits": narrow_splits,
                   "shared_ports": shared_ports, "flat_loops": flat_loops, "engines": engines,
                   "block_us": round(makespan / clock_mhz, 3), "seconds": round(time.perf_counter() - start, 2)}
        pool, channels = early_pool(design.kernel)
        flattened = flat_loops or flat is not None
        plan = Plan(tile, clock_mhz, striping, lanes, seed, splits, ports, shared_chains(design.kernel), flattened,
                    tuple(sorted(pool)), channels, flattened, dict(design.placement or {}), figures, formed_groups(design.kernel),
                    narrowed_streams(design.kernel))
        say(f"tile {tile}: {makespan} cycles per block at {clock_mhz:g} MHz ({design.evaluations} timed simulations)")
        if best is None or makespan < best[0]:
            best = (makespan, plan)
    if best is None:
        raise PlanError(f"no tile of {list(tiles)} gives a single design")
    return best[1]
