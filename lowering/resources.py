"""The U55C resource model: DSP, LUT, FF, BRAM36, URAM and LUTRAM per node of a dataflow kernel.

docs/resources.md gives the per-op table and where each figure comes from. In short:
- a **task** costs its tile ops' cores times their lanes (`min(scalar work, lanes)` copies of the
  op's scalar body, as the timing model issues them, lowering/timing.py), its scalar ops once, its
  control (`CostTable.task`), and its local tensors: registers (FFs) up to `REGISTER_BITS`, else
  memories bound by shape (`lowering.memory.bind`);
- a **FIFO** and a **converter bank** cost the memory primitives `lowering.memory.count` binds
  them to (nothing is counted twice: this module only attributes those memories to nodes);
- a **DMA** costs its `m_axi` adapters (one per HBM stripe): logic, plus a read/write buffer of
  `MAXI_OUTSTANDING` x `MAXI_BURST` words of its port (512 bits unless narrowed) that
  `lowering.memory.count` binds;
- **forks, joins, reshapes**: a register stage per beat (`CostTable.router`).

`kernel_usage(kernel, graph, depths)` gives the usage of every node (a FIFO's memory belongs to
its consumer, which is where the SLR placement puts it); `resources_report` the device and per-SLR
totals report.json keeps. `calibrated(table, modeled, measured)` scales the table's compute
figures to Vitis csynth reports (`hls_backend.csynth.parse_csynth_xml`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from xdsl.dialects.builtin import ShapedType, StringAttr
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr

from lowering.engine_phases import EnginePhases, engine_phases
from lowering.memory import (
    BRAM36,
    CAPACITY,
    HBM_WORD_BITS,
    LUTRAM,
    MAXI_WORDS,
    MEMORY_FILL,
    REGISTER_BITS,
    URAM,
    Buffer,
    bind,
    count,
    kernel_buffers,
    task_tensors,
)
from lowering.timing import U55C, hbm_stripes, loop_sizes, task_timing, tile_work, unroll_lanes
from streamdsl.dialects.dataflow import DMA_OPS, ITensorConverterOp, ITensorType, KernelOp, TaskOp
from streamdsl.graph import Graph
from streamdsl.opinfo import FLOAT_CORES, HLS_MATH_CORE, OPS
from streamdsl.wiring import kernel_nodes

__all__ = [
    "RESOURCES", "U55C_COSTS", "U55C_DEVICE", "CoreCost", "CostTable", "Device", "KernelUsage", "ResourceError", "Usage",
    "FIELD_BITS", "MAC_IMPL", "PackedMacs", "bind_macs", "calibrated", "device_scaled", "fits_device", "in_fabric", "is_narrow_multiply",
    "kernel_usage", "logic_usage", "op_cost", "packed_macs", "resources_report", "task_lanes", "task_usage",
]  # fmt: skip

RESOURCES = ("DSP", "LUT", "FF", BRAM36, URAM, LUTRAM)


class ResourceError(ValueError):
    """A design that does not fit the device by the resource model (names the largest consumers)."""


@dataclass(frozen=True)
class Usage:
    """Amounts of each resource. LUT counts every LUT, those used as memory (LUTRAM / SRL) too;
    LUTRAM counts those alone, against the LUTs that can be memory (SLICEM)."""

    DSP: float = 0
    LUT: float = 0
    FF: float = 0
    BRAM36: float = 0
    URAM: float = 0
    LUTRAM: float = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, r) + getattr(other, r) for r in RESOURCES))

    def __mul__(self, k: float) -> Usage:
        return Usage(*(getattr(self, r) * k for r in RESOURCES))

    __rmul__ = __mul__

    def as_dict(self) -> dict[str, int]:
        """Whole primitives: a packed DSP shared by two MACs still costs one slice."""
        return {r: math.ceil(getattr(self, r) - 1e-9) for r in RESOURCES}

    def share(self, capacity: Usage) -> float:
        """The largest fraction of `capacity` used by any resource."""
        return max(getattr(self, r) / getattr(capacity, r) for r in RESOURCES if getattr(capacity, r))

    def over(self, capacity: Usage) -> list[str]:
        """The resources used beyond `capacity`."""
        return [r for r in RESOURCES if getattr(self, r) > getattr(capacity, r) + 1e-9]

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        out = cls()
        for u in usages:
            out = out + u
        return out

    @classmethod
    def memory(cls, kind: str, n: int) -> Usage:
        """`n` primitives of `lowering.memory`'s kind (LUTRAM in LUTs, which are LUTs too)."""
        return cls(LUT=n, LUTRAM=n) if kind == LUTRAM else cls(**{kind: n})


@dataclass(frozen=True)
class Device:
    """A multi-die FPGA: `slrs` dies of `per_slr` each, `sll` super long lines between neighbours."""

    name: str
    slrs: int
    per_slr: Usage
    sll: int  # SLLs across each boundary between neighbouring SLRs

    @property
    def total(self) -> Usage:
        return self.per_slr * self.slrs


# XCU55C (Virtex UltraScale+ HBM, 3 SLRs of one die each): 1,303,680 LUTs, 2,607,360 FFs, 9,024
# DSP48E2, 2,016 BRAM36, 960 URAM, 589,824 LUTs usable as memory, split evenly over its three dies
# (docs/resources.md, "The device").
U55C_DEVICE = Device("xcu55c-fsvh2892-2L-e", 3, Usage(DSP=3008, LUT=434560, FF=869120, BRAM36=672, URAM=320, LUTRAM=196608),
                     sll=23040)


@contextlib.contextmanager
def device_scaled(k: float) -> Iterator[None]:
    """A what-if for studies (`benchmarks/roofline.py --device-scale`): the U55C's resources
    (`U55C_DEVICE`: per SLR, SLLs) and the memory count's capacities (`CAPACITY`) times `k`
    while inside, restored after. Changed in place: the exploration, FIFO sizing and SLR placement
    take the device as a default argument, bound once."""
    per_slr, sll, capacity = U55C_DEVICE.per_slr, U55C_DEVICE.sll, dict(CAPACITY)
    object.__setattr__(U55C_DEVICE, "per_slr", per_slr * k)
    object.__setattr__(U55C_DEVICE, "sll", int(sll * k))
    CAPACITY.update({r: int(c * k) for r, c in capacity.items()})
    try:
        yield
    finally:
        object.__setattr__(U55C_DEVICE, "per_slr", per_slr)
        object.__setattr__(U55C_DEVICE, "sll", sll)
        CAPACITY.update(capacity)


@dataclass(frozen=True)
class CoreCost:
    """One hardware core of a scalar op: DSP slices (fractional when several ops pack into one), LUTs, FFs."""

    dsp: float = 0
    lut: float = 0
    ff: float = 0

    def usage(self, copies: float = 1) -> Usage:
        return Usage(DSP=self.dsp * copies, LUT=self.lut * copies, FF=self.ff * copies)


def _f32_cores() -> dict[str, CoreCost]:
    """The op vocabulary's f32 cores (streamdsl/opinfo.py `FLOAT_CORES`); f16 halves the logic,
    f64 is `f64_scale` times it (docs/resources.md, "Per-op table")."""
    return {name: CoreCost(*core) for name, core in FLOAT_CORES.items()}


@dataclass(frozen=True)
class CostTable:
    """Every figure of the model (docs/resources.md says where each comes from). Pass another
    instance (e.g. `calibrated(...)`) to calibrate."""

    float_cores: Mapping[str, CoreCost] = field(default_factory=lambda: MappingProxyType(_f32_cores()))
    hls_math: CoreCost = CoreCost(*HLS_MATH_CORE)  # tanh, erf, sin, ...: several cores, an estimate
    f64_scale: float = 2.5  # LUT/FF of an f64 core over its f32 twin (DSPs: `f64_dsp`)
    f64_dsp: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"arith.mulf": 11, "arith.addf": 3, "arith.subf": 3}))
    packed_macs: int = 2  # multiplies of at most `packed_bits` x `packed_bits` one DSP48E2 holds (shared operand)
    packed_bits: int = 8
    packed_unpack: CoreCost = CoreCost(0, 2, 2)  # per packed MAC: its share of the fields' unpacking per tile
    fabric_mac: CoreCost = CoreCost(0, 24, 16)  # a narrow multiply in LUTs (BIND_OP impl=fabric); its add stays an addi
    divider_lut_per_bit2: float = 2.2  # integer divider: LUTs and FFs ~ 2.2 x width^2 (a radix-2 array)
    task: CoreCost = CoreCost(0, 150, 120)  # a process's control FSM and stream handshakes
    port: CoreCost = CoreCost(0, 12, 4)  # per stream port of a task: full/empty and valid logic
    router: CoreCost = CoreCost(0, 40, 0)  # fork / join / reshape: control (plus a beat register, FF = beat bits)
    maxi: CoreCost = CoreCost(0, 1600, 2600)  # a 512-bit m_axi adapter's logic (its buffer: lowering.memory)
    phase_mux: CoreCost = CoreCost(0, 0.5, 0)  # per bit and extra phase of an engine's input: a LUT6 muxes two bits
    scale: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"DSP": 1.0, "LUT": 1.0, "FF": 1.0}))

    def core(self, op: Operation) -> CoreCost:
        """The core of one scalar op (by the op vocabulary's latency source, streamdsl/opinfo.py)."""
        info = OPS.get(op.name)
        if info is None:
            return CoreCost()  # structural: reshapes, extracts, yields
        bits = _bits(op)
        if info.source == "chain":
            parts = [self.core_named(name, bits) for name in info.chain]
            return CoreCost(sum(p.dsp for p in parts), sum(p.lut for p in parts), sum(p.ff for p in parts))
        if info.source == "dsp48e2":
            return self.multiplier(*_multiplicand_bits(op))
        return self.core_named(op.name, bits)

    def core_named(self, name: str, bits: int) -> CoreCost:
        """The core of op `name` on `bits`-bit data."""
        source = OPS[name].source
        if source == "fp-core":
            f32 = self.float_cores[name]
            if bits <= 16:
                return CoreCost(f32.dsp, f32.lut / 2, f32.ff / 2)
            if bits > 32:
                return CoreCost(self.f64_dsp.get(name, f32.dsp), f32.lut * self.f64_scale, f32.ff * self.f64_scale)
            return f32
        if source == "hls-math":
            return self.hls_math
        if source == "dsp48e2":
            return self.multiplier(bits, bits)
        if source == "divider":
            area = self.divider_lut_per_bit2 * bits * bits
            return CoreCost(0, area, area)
        if source == "lut":
            return CoreCost(0, bits, bits)
        if source == "chain":
            parts = [self.core_named(n, bits) for n in OPS[name].chain]
            return CoreCost(sum(p.dsp for p in parts), sum(p.lut for p in parts), sum(p.ff for p in parts))
        return CoreCost()  # wire

    def multiplier(self, a: int, b: int) -> CoreCost:
        """An integer multiply of `a` x `b` bits as the emitter writes it, one product: over
        ceil(a/27) x ceil(b/18) slices (27x18 multipliers; a narrow one takes a whole slice),
        LUTs/FFs for the product register. Two narrow MACs share a slice only where the emitter
        packs them (`packed_macs`, charged by `op_cost`)."""
        a, b = max(a, b), min(a, b)
        return CoreCost(math.ceil(a / 27) * math.ceil(b / 18), (a + b) / 2, a + b)

    def maxi_usage(self, word_bits: int = HBM_WORD_BITS) -> Usage:
        """One m_axi adapter of `word_bits` words: its logic (as at 512 bits: the AXI control does
        not narrow) and its burst buffer, bound as `lowering.memory.count` binds it
        (`kernel_buffers` lists each DMA's buffers for the count)."""
        return self.maxi.usage() + Usage.memory(*bind(word_bits, MAXI_WORDS))


U55C_COSTS = CostTable()


def _bits(op: Operation) -> int:
    """Data width of a scalar op: its widest operand or result (a compare's operands)."""
    widths = [_width(v.type) for v in (*op.operands, *op.results)]
    return max([w for w in widths if w], default=32)


def _width(t: object) -> int:
    """Bits of a scalar or of a tensor's element (0 for `index` and other widthless types)."""
    t = t.get_element_type() if isinstance(t, ShapedType) else t
    return int(getattr(t, "bitwidth", 0) or 0)


def _multiplicand_bits(op: Operation) -> tuple[int, int]:
    """Widths of a multiply's operands before sign/zero extension (an i8 x i4 product is computed
    in i32 after `extsi`, but the multiplier only sees the narrow values)."""

    def narrow(value: SSAValue) -> int:
        while isinstance(value.owner, Operation) and value.owner.name in ("arith.extsi", "arith.extui"):
            value = value.owner.operands[0]
        return _width(value.type) or 32

    return narrow(op.operands[0]), narrow(op.operands[1])


MAC_IMPL = "mac_impl"  # a task attribute: "fabric" binds its narrow multiplies to LUTs (`bind_macs`)
FIELD_BITS = 18  # a packed DSP48E2's low product field: the 27-bit port holds w_hi * 2^18 + w_lo


def in_fabric(task: Operation) -> bool:
    """Whether `task`'s narrow multiplies are bound to LUTs (its `MAC_IMPL`)."""
    return (impl := task.attributes.get(MAC_IMPL)) is not None and impl.data == "fabric"  # type: ignore[attr-defined]


def is_narrow_multiply(op: Operation, table: CostTable = U55C_COSTS) -> bool:
    """An integer multiply of operands of at most `packed_bits` (seen through extensions)."""
    return op.name == "arith.muli" and max(_multiplicand_bits(op)) <= table.packed_bits


def narrow_macs(body: Block, table: CostTable = U55C_COSTS) -> dict[Operation, Operation]:
    """The narrow multiply-accumulates of a tile op's body: a narrow `muli` -> the `addi` that is
    its one use."""
    out = {}
    for op in body.ops:
        if is_narrow_multiply(op, table):
            uses = list(op.results[0].uses)
            if len(uses) == 1 and uses[0].operation.name == "arith.addi":
                out[op] = uses[0].operation
    return out


@dataclass(frozen=True)
class PackedMacs:
    """A tile op whose multiply-accumulates the emitter packs two to a DSP48E2 (docs/hls.md,
    "Packed MACs"): output rows `row` and `row + 1` share the `shared` input's element (the
    activation) and the other input's two elements (the weights, `packed_bits` wide) sit in one
    27-bit operand, 2^18 apart; the reduction over `reduced` (`reduced_size` terms) then accumulates in the slice's
    48-bit register, each field exact while it holds the sum (|sum| < 2^17)."""

    row: int  # the iteration dim of the output rows paired
    reduced: int  # the one reduction dim
    shared: int  # the input index (0 or 1) the rows share
    packed_bits: int


def packed_macs(op: Operation) -> PackedMacs | None:
    """How the tile op `op` packs its MACs, or None: a `linalg.generic` of two signed narrow inputs
    and an integer output whose body is `out + ext(a) * ext(b)`, one reduction dim, and an even
    parallel dim the output and one input index and the other input does not."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    block = op.regions[0].block
    body = [o for o in block.ops if o.name != "linalg.yield"]
    macs = narrow_macs(block)
    if len(macs) != 1 or len(body) != 4 or block.last_op.operands[0] is not next(iter(macs.values())).results[0]:
        return None
    mul = next(iter(macs))
    exts = [v.owner for v in mul.operands]
    if not all(isinstance(e, Operation) and e.name == "arith.extsi" and e.operands[0] in block.args[:2] for e in exts):
        return None
    if block.args[2] not in next(iter(macs.values())).operands:
        return None
    maps = [m.data for m in op.get_indexing_maps()]  # type: ignore[attr-defined]
    iterators = [t.data for t in op.get_iterator_types()]  # type: ignore[attr-defined]
    reductions = [d for d, i in enumerate(iterators) if i == IteratorType.REDUCTION]
    if len(reductions) != 1:
        return None
    shape = loop_sizes(op)
    uses = [{e.position for e in m.results if isinstance(e, AffineDimExpr)} for m in maps]
    if any(not all(isinstance(e, AffineDimExpr | AffineConstantExpr) for e in m.results) for m in maps):
        return None
    bits = [_width(e.operands[0].type) for e in exts]
    order = [block.args.index(e.operands[0]) for e in exts]
    bits_of = dict(zip(order, bits))
    for row in (d for d, i in enumerate(iterators) if i == IteratorType.PARALLEL and shape.get(d, 1) % 2 == 0 and d in uses[2]):
        for shared in (0, 1):
            if row in uses[shared] or row not in uses[1 - shared]:
                continue
            a, w = bits_of.get(shared, 32), bits_of.get(1 - shared, 32)
            terms = shape.get(reductions[0], 1)
            if terms > 1 and a <= 18 and w + FIELD_BITS <= 27 and terms * 2 ** (a + w - 2) < 2 ** (FIELD_BITS - 1):
                return PackedMacs(row, reductions[0], shared, w)
    return None


def op_cost(op: Operation, table: CostTable = U55C_COSTS, fabric: bool = False, pipelined: bool = True) -> Usage:
    """One copy of a tile op's scalar body (a linalg op's region), or a scalar op's core. With
    `fabric`, narrow multiplies are LUT multipliers (`CostTable.fabric_mac`); else a tile op the
    emitter packs (`packed_macs`, in a `pipelined` loop) costs half a DSP48E2 a MAC, its add in the
    slice's accumulator and the fields' unpacking (`packed_unpack`) its share of LUTs."""
    if not (op.name.startswith("linalg.") and op.regions and op.regions[0].blocks):
        return table.core(op).usage()
    block = op.regions[0].block
    macs = narrow_macs(block, table)
    packed = not fabric and pipelined and packed_macs(op) is not None
    total = Usage()
    for inner in block.ops:
        if fabric and inner in macs:
            total = total + table.fabric_mac.usage()
        elif packed and inner in macs:
            total = total + Usage(DSP=1 / table.packed_macs, LUT=table.packed_unpack.lut, FF=table.packed_unpack.ff)
        elif not (packed and inner in macs.values()):
            total = total + table.core(inner).usage()
    return total


def _work(op: Operation) -> int:
    """Scalar executions of a tile op (the timing model's count) or of an op on a tensor."""
    if op.name.startswith("linalg."):
        return tile_work(op)
    shaped = [r.type for r in op.results if isinstance(r.type, ShapedType)]
    return math.prod(shaped[0].get_shape()) if shaped else 1


def task_lanes(task: TaskOp) -> int:
    """A task's lanes: its `unroll`, else the timing table's default."""
    return _lanes(task, U55C.lanes)


def _lanes(op: Operation, default: int) -> int:
    return unroll_lanes(op) or default


def _block_usage(ops: Iterable[Operation], lanes: int, table: CostTable, loops: Mapping[Operation, int], ii: int = 0,
                 fabric: bool = False) -> Usage:
    """Cores of `ops` (a block's); `ii`: the initiation interval of the pipelined loop around them
    (0: not pipelined)."""
    total = Usage()
    for op in ops:
        if op.regions and not op.name.startswith("linalg."):
            inner_ii = loops.get(op, ii)
            for region in op.regions:
                for inner in region.blocks:
                    total = total + _block_usage(inner.ops, lanes, table, loops, inner_ii, fabric)
            continue
        work = max(1, _work(op))
        copies = min(work, _lanes(op, lanes))
        if ii > 1:  # HLS shares a core between the executions it schedules in different cycles of the II
            copies = min(copies, -(-work // ii))
        total = total + op_cost(op, table, fabric, pipelined=ii > 0) * copies
    return total


def _mux_bits(task: TaskOp, shared: EnginePhases) -> int:
    """Bits times extra phases of the multiplexers picking each phase's input stream (an engine)."""
    inputs = set(task.body.block.args[: len(task.inputs)])
    beats = [arg.type.itensor for arg in shared.ports if arg in inputs]  # type: ignore[attr-defined]
    return sum(it.beat_bits for it in beats) * (shared.count - 1)


def task_usage(task: TaskOp, table: CostTable = U55C_COSTS, lanes: int | None = None) -> Usage:
    """A task's compute and control: each tile op's scalar body times its lanes, scalar ops once,
    the control FSM and the stream ports, registers for local tensors of at most REGISTER_BITS
    (larger ones are memories: `kernel_usage` adds them). `lanes`: the timing model's default."""
    unrolled = _lanes(task, lanes or U55C.lanes)
    loops = {loop: timing.ii for loop, timing in task_timing(task).loops.items()}
    shared = engine_phases(task)  # an engine whose phases are one body: that body, once
    compute = _block_usage(shared.body if shared else task.body.block.ops, unrolled, table, loops, fabric=in_fabric(task))
    ports = len(task.body.block.args)
    registers = sum(bits for _, bits in task_tensors(task) if bits <= REGISTER_BITS)
    logic = compute + table.task.usage() + table.port.usage(ports) + Usage(FF=registers)
    if shared:
        logic = logic + table.phase_mux.usage(_mux_bits(task, shared))
    return Usage(DSP=logic.DSP * table.scale["DSP"], LUT=logic.LUT * table.scale["LUT"], FF=logic.FF * table.scale["FF"])


@dataclass
class KernelUsage:
    """Per node of a kernel (the timing graph's node names, a converter's two tasks as one), its
    usage; `memories` names which node holds each memory (FIFOs: their consumer)."""

    nodes: dict[str, Usage]
    memories: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Usage:
        return Usage.total(self.nodes.values())

    def per_slr(self, placement: Mapping[str, int], slrs: int) -> list[Usage]:
        """The usage in each of `slrs` SLRs under `placement` (node -> SLR; a node it omits: SLR0)."""
        return [Usage.total(u for n, u in self.nodes.items() if placement.get(n, 0) == s) for s in range(slrs)]

    def largest(self, resource: str, n: int = 3) -> list[tuple[str, float]]:
        ranked = sorted(self.nodes.items(), key=lambda kv: (-getattr(kv[1], resource), kv[0]))
        return [(name, getattr(u, resource)) for name, u in ranked[:n] if getattr(u, resource) > 0]

    def check(self, device: Device = U55C_DEVICE) -> None:
        """Raise ResourceError naming every resource over the device's total and its largest users."""
        over = self.total.over(device.total)
        if over:
            parts = [f"{r} {math.ceil(getattr(self.total, r))} of {getattr(device.total, r)} (largest: "
                     + ", ".join(f"{name} {math.ceil(v)}" for name, v in self.largest(r)) + ")" for r in over]
            raise ResourceError(f"the design does not fit the {device.name} by the resource model: {'; '.join(parts)}; "
                                "use fewer lanes (`unroll`), smaller tiles or a makespan slack for the FIFOs")


def _has_narrow_macs(task: TaskOp) -> bool:
    """Whether a tile op of `task` multiply-accumulates narrow integers (`narrow_macs`)."""
    return any(op.name.startswith("linalg.") and op.regions and op.regions[0].blocks and narrow_macs(op.regions[0].block)
               for op in task.body.walk())


DSP_FIRST = 0.5  # the share of the DSP48E2s packed MACs may take before any moves to LUTs


def bind_macs(tasks: Iterable[TaskOp], cost: Callable[[TaskOp], Usage], rest: Usage = Usage(),
              device: Device = U55C_DEVICE) -> Usage:
    """Choose each task's MAC binding (`MAC_IMPL`) and return the tasks' usage: every task with
    narrow MACs starts in DSP48E2s (packed where `packed_macs` says: half a slice a MAC); while the DSPs are
    over `DSP_FIRST` of `device` and busier than its LUTs (with `rest` counted), the largest DSP
    users in turn move to LUT multipliers, each kept when it lowers the busier of the two shares."""
    tasks = list(tasks)
    for task in tasks:
        task.attributes.pop(MAC_IMPL, None)
    usages = {task: cost(task) for task in tasks}
    total = rest + Usage.total(usages.values())

    def shares(u: Usage) -> tuple[float, float]:
        return u.DSP / device.total.DSP, u.LUT / device.total.LUT

    if shares(total)[0] <= max(shares(total)[1], DSP_FIRST):  # the usual case: no task's body is walked
        return Usage.total(usages.values())
    for task in sorted((t for t in tasks if _has_narrow_macs(t)), key=lambda t: (-usages[t].DSP, t.sym_name.data)):
        dsp, lut = shares(total)
        if dsp <= max(lut, DSP_FIRST):
            break
        task.attributes[MAC_IMPL] = StringAttr("fabric")
        fabric = cost(task)
        trial = total + usages[task] * -1 + fabric
        if max(shares(trial)) < dsp:
            total, usages[task] = trial, fabric
        else:
            task.attributes.pop(MAC_IMPL)
    return Usage.total(usages.values())


def logic_usage(kernel: KernelOp, table: CostTable = U55C_COSTS,
                task_cost: Callable[[TaskOp], Usage] | None = None, memories: Usage = Usage()) -> dict[str, Usage]:
    """The usage of every node of `kernel` but its memories (FIFOs, banks, local and m_axi buffers):
    what lanes, ports and adapters cost, known before FIFO sizing. The tasks' MACs are bound first
    (`bind_macs` sets each task's `mac_impl`, which the emitter follows), so every count is of the
    design the emitter writes; `memories`, when known (`kernel_usage`), count in that binding:
    their LUTRAM is LUTs the MACs would compete for. `task_cost`: a task's usage (default
    `task_usage` with `table`; the exploration passes its cached one)."""
    nodes: dict[str, Usage] = {}
    tasks = []
    for op, name in kernel_nodes(kernel):
        if isinstance(op, TaskOp):
            tasks.append((op, name))
        elif isinstance(op, DMA_OPS):  # an m_axi adapter per HBM stripe (lowering/hbm_channels.py)
            nodes[name] = table.maxi.usage(hbm_stripes(op)[0])  # its buffers: kernel_buffers
        elif isinstance(op, ITensorConverterOp):
            nodes[name] = table.task.usage() + table.port.usage(2)
        else:  # routers: control and a register of one beat per output
            beats = [r.type.itensor.beat_bits for r in op.results if isinstance(r.type, ITensorType)]
            nodes[name] = table.router.usage() + Usage(FF=sum(beats))
    cost = task_cost or (lambda t: task_usage(t, table))
    bind_macs([t for t, _ in tasks], cost, Usage.total(nodes.values()) + memories)
    nodes.update({name: cost(op) for op, name in tasks})
    return nodes


def fits_device(graph: Graph, kernel: KernelOp, device: Device = U55C_DEVICE, table: CostTable = U55C_COSTS,
                logic: Mapping[str, Usage] | None = None) -> Callable[[Mapping[str, int]], bool]:
    """Whether FIFO depths (in tokens, per edge of `graph`) keep `kernel` within the device's
    totals: its logic (fixed; `logic_usage` unless given) plus its memories at those depths, which
    take BRAM36, URAM and LUTs (LUTRAM) the logic competes for, the memories within `MEMORY_FILL`
    of the device's. FIFO sizing's on-chip budget (`size-fifos`)."""
    logic = Usage.total((logic if logic is not None else logic_usage(kernel, table)).values())
    buffers = kernel_buffers(kernel)
    total = device.total
    budget = replace(total, **{r: getattr(total, r) * MEMORY_FILL for r in (BRAM36, URAM, LUTRAM)})

    def fits(depths: Mapping[str, int]) -> bool:
        return not (logic + memory_usage(graph, buffers, depths)).over(budget)

    return fits


def memory_usage(graph: Graph, buffers: list[Buffer], depths: Mapping[str, int]) -> Usage:
    """The BRAM36, URAM and LUTs (LUTRAM) of FIFOs at `depths` (in tokens, per edge of `graph`)
    and of a kernel's `buffers` (`memory.kernel_buffers`)."""
    memory = count(_fifos(graph, depths), buffers)
    return Usage(BRAM36=memory[BRAM36], URAM=memory[URAM], LUT=memory[LUTRAM], LUTRAM=memory[LUTRAM])  # type: ignore[arg-type]


def _fifos(graph: Graph, depths: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """`count`'s FIFOs: (name, beat bits, words) of a FIFO of D tokens of b beats: D x b words."""
    return [(e.name, e.word, depths[e.name] * e.beats) for e in graph.fifos]


def kernel_usage(kernel: KernelOp, graph: Graph, depths: Mapping[str, int], table: CostTable = U55C_COSTS,
                 logic: Mapping[str, Usage] | None = None, task_cost: Callable[[TaskOp], Usage] | None = None) -> KernelUsage:
    """The usage of every node of `kernel` with FIFO `depths` (in tokens, per edge of `graph`);
    `logic`: the nodes' `logic_usage`, when known, else it is computed with these memories counted
    in the MACs' binding (`task_cost` as there): Gemma 3's explored design, its FIFOs' and buffers'
    LUTRAM left out of the binding, had six more matvec parts' MACs in LUTs, at 96% of the LUTs and
    80% of the DSPs, where counted 89% and 89%."""
    holder = {e.name: e.dst for e in graph.fifos}
    buffers = kernel_buffers(kernel)
    for buffer in buffers:
        holder[buffer.name] = buffer.name.split(": ", 1)[0] if buffer.kind != "converter" else buffer.name
    placed = [(holder[m["name"]], m["name"], Usage.memory(m["resource"], m["count"]))
              for m in count(_fifos(graph, depths), buffers)["memories"]]  # type: ignore[union-attr]
    nodes = dict(logic) if logic is not None else logic_usage(kernel, table, task_cost, Usage.total(u for _, _, u in placed))
    for node, _, usage in placed:
        nodes[node] = nodes.get(node, Usage()) + usage
    return KernelUsage(nodes, {name: node for node, name, _ in placed})


def resources_report(usage: KernelUsage, device: Device = U55C_DEVICE, placement: Mapping[str, int] | None = None) -> dict[str, object]:
    """report.json's `resources`: totals, capacities and fit, per SLR when `placement` (node -> SLR)
    is given, and the largest users of each resource."""
    total = usage.total
    out: dict[str, object] = {
        "device": device.name,
        "total": total.as_dict(),
        "capacity": device.total.as_dict(),
        "fits": not total.over(device.total),
        "largest": {r: [{"node": n, "amount": math.ceil(v)} for n, v in usage.largest(r)] for r in RESOURCES},
    }
    if placement is not None:
        per = usage.per_slr(placement, device.slrs)
        out["slrs"] = [{"name": f"SLR{s}", **u.as_dict(), "fits": not u.over(device.per_slr)} for s, u in enumerate(per)]
        out["available"] = device.per_slr.as_dict()
        out["fits"] = out["fits"] and all(not u.over(device.per_slr) for u in per)
    return out


def calibrated(table: CostTable, modeled: Mapping[str, Usage], measured: Mapping[str, Mapping[str, float]]) -> CostTable:
    """`table` with its compute figures scaled so the tasks' modeled DSP, LUT and FF add up to the
    `measured` ones (csynth reports per task, `hls_backend.csynth.parse_csynth_xml(...)["resources"]`:
    keys DSP, LUT, FF). A resource nothing measured keeps its scale."""
    missing = sorted(set(measured) - set(modeled))
    if missing:
        raise KeyError(f"calibration: no modeled usage for the reported tasks {missing}; modeled: {sorted(modeled)}")
    scale = dict(table.scale)
    for r in ("DSP", "LUT", "FF"):
        got = sum(float(measured[t].get(r, 0)) for t in measured)
        want = sum(getattr(modeled[t], r) for t in measured) / table.scale[r]
        if want > 0 and got > 0:
            scale[r] = got / want
    return replace(table, scale=MappingProxyType(scale))


assert {f.name for f in fields(Usage)} == set(RESOURCES)
