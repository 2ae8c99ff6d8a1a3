"""SLR placement: an integer program (python-mip / CBC) assigning every node of a kernel to one of
the device's SLRs (docs/resources.md, "SLR placement").

With x[v, s] = 1 when node v sits in SLR s and L[v, k] = sum_{s <= k} x[v, s] (v at or below
boundary k), a wire of `w` bits between u and v crosses boundary k exactly when L[u, k] != L[v, k]:

    minimise    sum_wires sum_k  w * c[wire, k]                  (bits crossing, times boundaries)
    subject to  sum_s x[v, s] = 1                                 every node in one SLR
                c[wire, k] >= L[u, k] - L[v, k],  c >= L[v, k] - L[u, k]
                sum_v usage[v, r] x[v, s] <= fill * capacity[r]   every SLR s, resource r
                sum_wires w * c[wire, k] <= SLLs per boundary     every boundary k

A DMA is wired (its AXI ports' words: 512 bits unless narrowed, one per HBM stripe) to the HBM, which sits below SLR0: it crosses
every boundary under its SLR. The SLRs form a chain (SLR0-SLR1-SLR2), so a wire between SLR0 and
SLR2 crosses two boundaries. Ties are broken by a second objective worth less than one bit (node i, by name,
weighs i + 1 toward lower SLRs), so the answer is deterministic. A design that fits in SLR0 has
that placement as its unique optimum (no bit crosses, every tie weight 0), found without CBC, which
can spend a minute proving it. A local search (`lowering.slr_search`) runs first: its placement
is CBC's start (CBC can only improve on it), and it alone answers whether a placement exists
(`place(..., first=True)`, the exploration's check, asked dozens of times: CBC's root work alone
took 4 to 9 s a check on TinyLlama's crowded block, a "no" 5 to 30 s). On a crowded device CBC
stops after `MAX_NODES` branch-and-bound nodes with the best placement found (a count, not a time,
so still deterministic).
`with_crossings(graph, placement)` is the timing
graph of the placed design: each FIFO that crosses k boundaries is followed by a relay of
k x `TimingTable.sll_latency` pipeline registers, whose slots are the FIFO's extra depth.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import mip
import numpy as np
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, i64

from lowering.resources import RESOURCES, U55C_DEVICE, Device, KernelUsage, Usage
from lowering.slr_search import TRIES, search
from lowering.timing import U55C, TimingTable, hbm_stripes, hbm_word_bits
from streamdsl.dialects.dataflow import DMA_OPS, KernelOp
from streamdsl.errors import StreamdslError
from streamdsl.graph import Graph, Task
from streamdsl.wiring import kernel_nodes

__all__ = ["Placement", "SlrError", "Wire", "kernel_wires", "place", "set_slr_hint", "slr_hint", "with_crossings"]

HBM = "HBM"
SMALL = 0.02  # nodes using less than this share of an SLR join a neighbour before the solve
# Branch-and-bound nodes CBC may explore (single-threaded, seeded: the same answer every run).
# Past it the best placement found stands (feasible, perhaps not the fewest crossing bits): a
# GPT-2 medium block packed to 99% of the device's BRAM had CBC searching for over 15 minutes.
# Of the tiny blocks only Gemma 3's reaches the limit: at 20,000 nodes 21,376 crossing bits in
# 21 s, at 2,000 21,728 bits (+1.6%) in 8.5 s (GPT-2's, TinyLlama's and Qwen2's: the same bits).
MAX_NODES = 2_000
SLR_HINT_ATTR = "slr_hint"  # on a dataflow.kernel: node -> SLR, the placement its design plan was explored with


class SlrError(StreamdslError, ValueError):
    """No placement fits the SLRs (names the solver status, the largest nodes and the limits)."""


@dataclass(frozen=True)
class Wire:
    """`bits` wires between nodes `a` and `b` (HBM for a DMA's port); `fifo`: the FIFO it carries."""

    a: str
    b: str
    bits: int
    fifo: str | None = None


@dataclass
class Placement:
    slr: dict[str, int]  # node -> SLR
    crossing_bits: int  # sum over wires of bits x boundaries crossed
    boundary_bits: list[int]  # bits across each boundary (SLL use)
    crossings: dict[str, int] = field(default_factory=dict)  # FIFO -> boundaries it crosses
    seconds: float = 0.0

    def report(self, device: Device = U55C_DEVICE) -> dict[str, object]:
        return {"slr_of": dict(sorted(self.slr.items())), "crossing_bits": self.crossing_bits,
                "boundary_bits": self.boundary_bits, "sll_per_boundary": device.sll,
                "crossing_fifos": dict(sorted(self.crossings.items())), "seconds": round(self.seconds, 4)}


def slr_hint(kernel: KernelOp) -> dict[str, int] | None:
    """The placement a design plan left on `kernel` (`set_slr_hint`), where the SLR searches of
    its build start; None: none."""
    attr = kernel.attributes.get(SLR_HINT_ATTR)
    if not isinstance(attr, DictionaryAttr):
        return None
    return {name: v.value.data for name, v in attr.data.items() if isinstance(v, IntegerAttr)}


def set_slr_hint(kernel: KernelOp, placement: Mapping[str, int]) -> None:
    """Leave `placement` (node -> SLR, the one the exploration found for this design) on `kernel`
    for the placements of its build to start from (none: drop it). GPT-2 medium's chosen design
    fills 98% of the device: from its own start the local search finds no placement, and CBC
    took 102 s to find one; from the exploration's, the first check holds."""
    if placement:
        kernel.attributes[SLR_HINT_ATTR] = DictionaryAttr({name: IntegerAttr(s, i64) for name, s in sorted(placement.items())})
    else:
        kernel.attributes.pop(SLR_HINT_ATTR, None)


def kernel_wires(kernel: KernelOp, graph: Graph) -> list[Wire]:
    """The wires of a kernel: each FIFO's word (a beat, `Edge.word`) between its producer
    and consumer nodes, and each DMA's AXI ports (a word, `hbm_word_bits`, per HBM stripe) to the HBM."""
    wires = [Wire(e.src, e.dst, e.word, e.name) for e in graph.fifos]
    wires += [Wire(name, HBM, hbm_word_bits(op) * hbm_stripes(op)[0]) for op, name in kernel_nodes(kernel) if isinstance(op, DMA_OPS)]
    return wires


def place(usage: KernelUsage, wires: Sequence[Wire], device: Device = U55C_DEVICE, fill: float = 1.0,
          small: float = SMALL, first: bool = False, hint: Mapping[str, int] | None = None, exact: bool = False) -> Placement:
    """The placement of `usage`'s nodes on `device`'s SLRs with the fewest crossing bits (module doc);
    `fill` is the share of each SLR a placement may use. Nodes using less than `small` of an SLR
    first join the neighbour they share the most wire bits with (`_coarsen`), which keeps the
    program small (a GPT-2 medium block: 109 nodes). With `first`, the local search's placement
    within every limit, not the fewest crossing bits: enough to know that one exists (the
    exploration's check: SlrError when the search finds none); with `exact` too, where the search
    finds none, CBC's first placement within every limit (no objective: any placement is as
    good, so CBC stops at the first), SlrError only when CBC finds none either. `hint` (node ->
    SLR, a similar design's placement) is that placement when it places every node within the
    limits, else the local search's first start (each coarse group at its named node's SLR). A
    group can bind where its nodes apart fit (a small node held by the HBM in SLR0 joining a large
    neighbour that does not fit there): where the groups have no least-crossing placement, one try
    of the search node by node gives one. Not with `first`: the exploration asks often, and a "no"
    would cost it that try (Qwen2.5's exploration: 66.5 s against 48.1)."""
    t0 = time.perf_counter()
    hint = hint if hint is not None and usage.nodes.keys() <= hint.keys() else None  # one naming every node
    if first and hint is not None:
        placed = _placement({v: hint[v] for v in usage.nodes}, wires, device, t0)
        if _within(usage, placed, device, fill):
            return placed
    group = _coarsen(usage, wires, device, small)
    members: dict[str, list[str]] = {}
    for v in sorted(usage.nodes):
        members.setdefault(group[v], []).append(v)
    coarse = KernelUsage({g: Usage.total(usage.nodes[v] for v in vs) for g, vs in members.items()})
    bundled: dict[tuple[str, str], int] = {}
    for w in wires:
        a, b = group[w.a], group.get(w.b, w.b)
        if a != b:
            key = (a, b) if b == HBM else tuple(sorted((a, b)))
            bundled[key] = bundled.get(key, 0) + w.bits  # type: ignore[index]
    try:
        near = {g: hint[g] for g in coarse.nodes} if hint is not None else None
        at = _solve(coarse, [Wire(a, b, bits) for (a, b), bits in sorted(bundled.items())], device, fill, first, near, exact)
    except SlrError as err:
        if not first and (found := search(usage, wires, device, fill, hint=hint, tries=TRIES[:1])) is not None:
            return _placement(found, wires, device, t0)  # the groups bound it
        raise SlrError(f"{err}".replace(f"of the {len(coarse.nodes)} nodes", f"of the {len(usage.nodes)} nodes")) from None
    return _placement({v: at[group[v]] for v in usage.nodes}, wires, device, t0)


def _placement(slr: dict[str, int], wires: Sequence[Wire], device: Device, t0: float) -> Placement:
    """The placement `slr` with its boundary bits and crossing FIFOs."""
    level = {**slr, HBM: -1}

    def crosses(w: Wire, k: int) -> bool:
        lo, hi = sorted((level[w.a], level[w.b]))
        return lo <= k < hi

    boundary = [sum(w.bits for w in wires if crosses(w, k)) for k in range(device.slrs - 1)]
    fifos = {w.fifo: abs(slr[w.a] - slr[w.b]) for w in wires if w.fifo is not None and slr[w.a] != slr[w.b]}
    return Placement(slr, sum(boundary), boundary, fifos, time.perf_counter() - t0)


def _within(usage: KernelUsage, placed: Placement, device: Device, fill: float) -> bool:
    """Whether `placed` keeps every SLR within `fill` of its resources and every boundary within its SLLs."""
    capacity = device.per_slr * fill
    within_sll = all(bits <= device.sll for bits in placed.boundary_bits)
    return within_sll and all(not u.over(capacity) for u in usage.per_slr(placed.slr, device.slrs))


def _coarsen(usage: KernelUsage, wires: Sequence[Wire], device: Device, small: float) -> dict[str, str]:
    """node -> its group: smallest first, a node (or group) using less than `small` of an SLR joins
    the group it shares the most wire bits with (ties by name), unless that group would use more
    than half an SLR."""
    group = {v: v for v in usage.nodes}
    size = dict(usage.nodes)
    incident: dict[str, list[Wire]] = {v: [] for v in usage.nodes}  # a group's wires, by its root
    for w in wires:
        if w.a in incident and w.b in incident:  # not the HBM
            incident[w.a].append(w)
            incident[w.b].append(w)

    def find(v: str) -> str:
        while group[v] != v:
            group[v] = v = group[group[v]]
        return v

    for v in sorted(usage.nodes, key=lambda n: (usage.nodes[n].share(device.per_slr), n)):
        g = find(v)
        if size[g].share(device.per_slr) >= small:
            continue
        links: dict[str, int] = {}
        for w in incident[g]:
            a, b = find(w.a), find(w.b)
            if a != b:
                other = b if a == g else a
                links[other] = links.get(other, 0) + w.bits
        for other in sorted(links, key=lambda o: (-links[o], o)):
            if (size[g] + size[other]).share(device.per_slr) <= 0.5:
                group[g], size[other] = other, size[g] + size[other]
                incident[other] += incident.pop(g)
                break
    return {v: find(v) for v in usage.nodes}


def _solve(usage: KernelUsage, wires: Sequence[Wire], device: Device, fill: float, first: bool = False,
           hint: Mapping[str, int] | None = None, exact: bool = False) -> dict[str, int]:
    """The integer program of the module doc on these nodes and wires, from the local search's
    placement (its first try from `hint`): node -> SLR (with `first`, the local search's placement,
    or with `exact` where it found none, the program's first feasible one, without its objective)."""
    nodes = sorted(usage.nodes)
    if usage.total.share(device.per_slr) <= fill:
        return dict.fromkeys(nodes, 0)  # no bit crosses and every tie weight is 0: the unique optimum
    found = search(usage, wires, device, fill, hint=hint)
    if first and found is not None:
        return found
    if first and not exact:
        tries = len(TRIES) + (hint is not None)  # the hint adds a try from it
        raise SlrError(_infeasible(usage, wires, device, fill, f"none found by the local search in {tries} tries"))
    slrs, bounds = range(device.slrs), range(device.slrs - 1)
    model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
    model.verbose, model.threads, model.seed = 0, 1, 0
    x = {(v, s): model.add_var(var_type=mip.BINARY) for v in nodes for s in slrs}
    below = {(v, k): mip.xsum(x[v, s] for s in slrs if s <= k) for v in nodes for k in bounds}
    for v in nodes:
        model += mip.xsum(x[v, s] for s in slrs) == 1
    for s in slrs:
        for r in RESOURCES:
            cap = getattr(device.per_slr, r) * fill
            terms = [getattr(usage.nodes[v], r) * x[v, s] for v in nodes if getattr(usage.nodes[v], r)]
            if terms:
                model += mip.xsum(terms) <= cap
    crossing: dict[tuple[int, int], mip.LinExpr] = {}
    for i, w in enumerate(wires):
        for k in bounds:
            if w.b == HBM:  # the HBM is below SLR0: the port crosses k when the node is above it
                crossing[i, k] = 1 - below[w.a, k]
                continue
            c = model.add_var(lb=0.0, ub=1.0)
            model += c >= below[w.a, k] - below[w.b, k]
            model += c >= below[w.b, k] - below[w.a, k]
            crossing[i, k] = c
    for k in bounds:
        model += mip.xsum(w.bits * crossing[i, k] for i, w in enumerate(wires)) <= device.sll
    if not first:  # the fewest crossing bits; with `first` (the search found none), any placement: CBC's first
        bits = mip.xsum(w.bits * crossing[i, k] for i, w in enumerate(wires) for k in bounds)
        # ties: the i-th node (by name) weighs i + 1 toward lower SLRs, a total below one bit
        tie = mip.xsum((i + 1) * s * x[v, s] for i, v in enumerate(nodes) for s in slrs)
        model.objective = bits + tie * (0.5 / (1 + len(nodes) ** 2 * device.slrs))
        if found is not None:  # the search's placement: CBC starts from it and can only improve on it
            model.start = [(x[v, s], float(found[v] == s)) for v in nodes for s in slrs]
    status = model.optimize(max_nodes=MAX_NODES, max_solutions=1 if first else mip.INT_MAX)
    if status not in (mip.OptimizationStatus.OPTIMAL, mip.OptimizationStatus.FEASIBLE):
        why = f"none found by the local search nor by CBC: {status}" if first else f"CBC: {status}"
        raise SlrError(_infeasible(usage, wires, device, fill, why))
    return {v: next(s for s in slrs if x[v, s].x >= 0.5) for v in nodes}


def _infeasible(usage: KernelUsage, wires: Sequence[Wire], device: Device, fill: float, why: str) -> str:
    widest = max(wires, key=lambda w: w.bits, default=None)
    per = ", ".join(f"{r} {getattr(device.per_slr, r) * fill:.0f}" for r in RESOURCES)
    big = ", ".join(f"{name} ({usage.nodes[name].share(device.per_slr):.0%} of an SLR)" for name in
                    sorted(usage.nodes, key=lambda n: -usage.nodes[n].share(device.per_slr))[:3])
    return (f"SLR placement: no assignment of the {len(usage.nodes)} nodes to the {device.slrs} SLRs fits ({why}); "
            f"per SLR: {per}, {device.sll} SLLs per boundary; largest nodes: {big}"
            + (f"; widest wire: {widest.a} -> {widest.b}, {widest.bits} bits" if widest else "")
            + "; use fewer lanes, smaller tiles or fewer DMAs")


def relay_name(fifo: str) -> str:
    return f"sll({fifo})"


def with_crossings(graph: Graph, crossings: Mapping[str, int], table: TimingTable = U55C) -> Graph:
    """`graph` with each FIFO in `crossings` (name -> boundaries crossed) followed by a relay: a
    pipeline of `boundaries x table.sll_latency` register stages that passes a token per `beats`
    cycles (a token arrives that many cycles later than without the crossing). The FIFO keeps its
    name (sizing sizes it as before); the relay's output link `sll(name)` is an internal link of
    `extra_depth` slots (the tokens in flight in the registers: the FIFO's extra depth), which the
    timed simulator charges."""
    out = Graph(graph.read_latency, graph.free_latency)
    out.intermediate_bits = dict(graph.intermediate_bits)
    for task in graph.tasks.values():
        out.add_task(task)
    for e in graph.edges:
        hops = crossings.get(e.name, 0)
        if not hops or e.fixed:
            out.edges.append(e)
            continue
        stages = hops * table.sll_latency
        n = graph.tokens(e)
        k = np.arange(n, dtype=np.int64) * max(1, e.beats)
        relay = relay_name(e.name)
        lag = max(0, stages - graph.read_latency)  # the relay's own link adds one FIFO hop
        out.add_task(Task(relay, {"in": k}, {"out": k + lag}, latency=int(k[-1] + lag + 1) if n else 1))
        first = out.connect(e.src, e.src_port, relay, "in", e.token_bits, name=e.name)
        first.depth, first.tensor_tokens, first.beats, first.word_bits = e.depth, e.tensor_tokens, e.beats, e.word_bits
        out.connect(relay, "out", e.dst, e.dst_port, e.token_bits, name=relay, fixed_depth=extra_depth(stages, e.beats))
    return out


def extra_depth(stages: int, beats: int) -> int:
    """Slots of a relay of `stages` registers on a stream of `beats` beats a token: the tokens in
    flight in its registers plus the two a FIFO needs at full rate."""
    return -(-stages // max(1, beats)) + 2
