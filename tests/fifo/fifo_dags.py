"""Random dataflow DAGs for FIFO-sizing tests, and a clock-stepped reference timed simulator.

Shapes: chains, diamonds, nested reconvergence and random DAGs with fan-out 1 to 4. Tasks are
pipelined loops (`Task.pipelined`) with random II, pipeline depth and token counts per edge, so
ports of one task may run at different rates (bursty reads and writes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from streamdsl.graph import Graph, Task

KINDS = ("chain", "diamond", "nested", "random")
TOKENS = (1, 2, 3, 4, 8, 12, 16, 32, 48, 64)


def _chain(n: int, rng: random.Random) -> list[list[int]]:
    return [[]] + [[j - 1] for j in range(1, n)]


def _diamonds(n: int, rng: random.Random, nested: bool) -> list[list[int]]:
    """Series of diamonds: a fork task, 2-4 branches (each a chain, or a diamond when nested), a join."""
    preds: list[list[int]] = [[]]

    def block(entry: int, budget: int, level: int) -> int:
        """Add a block fed by `entry`; returns its exit task."""
        if budget < 3 or (level > 0 and rng.random() < 0.4):
            last = entry
            for _ in range(max(1, min(budget, rng.randint(1, 3)))):
                preds.append([last])
                last = len(preds) - 1
            return last
        ways = rng.randint(2, 4)
        exits = []
        share = max(1, (budget - 1) // ways)
        for w in range(ways):
            if nested and level < 3 and rng.random() < 0.6:
                exits.append(block(entry, share, level + 1))
            elif w == 0 and rng.random() < 0.5:
                exits.append(entry)  # a direct edge: the paper's reconvergent shape
            else:
                exits.append(block(entry, min(share, rng.randint(1, 3)), level + 1))
        preds.append(sorted(set(exits)))
        return len(preds) - 1

    exit_ = 0
    while len(preds) < n:  # may overshoot n by a few tasks
        exit_ = block(exit_, n - len(preds), 0)
    return preds


def _random(n: int, rng: random.Random) -> list[list[int]]:
    fanout = [0] * n
    preds: list[list[int]] = [[]]
    for j in range(1, n):
        cands = [i for i in range(max(0, j - 12), j) if fanout[i] < 4] or [j - 1]
        chosen = sorted(set(rng.sample(cands, min(len(cands), rng.randint(1, 3)))))
        for i in chosen:
            fanout[i] += 1
        preds.append(chosen)
    return preds


def random_dag(kind: str, n: int, seed: int, max_ii: int = 4, max_depth: int = 30) -> Graph:
    rng = random.Random(seed)
    if kind == "chain":
        preds = _chain(n, rng)
    elif kind in ("diamond", "nested"):
        preds = _diamonds(n, rng, nested=kind == "nested")
    else:
        preds = _random(n, rng)
    return dag_from_preds(preds, rng, max_ii, max_depth)


def dag_from_preds(preds: list[list[int]], rng: random.Random, max_ii: int = 4, max_depth: int = 30) -> Graph:
    n = len(preds)
    tokens = {(i, j): rng.choice(TOKENS) for j in range(n) for i in preds[j]}
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, j in tokens:
        succs[i].append(j)
    graph = Graph()
    for v in range(n):
        reads = {f"i{i}": tokens[i, v] for i in preds[v]}
        writes = {f"o{j}": tokens[v, j] for j in succs[v]}
        graph.add_task(Task.pipelined(f"t{v}", ii=rng.randint(1, max_ii), depth=rng.randint(1, max_depth), reads=reads, writes=writes))
    for (i, j), _ in tokens.items():
        graph.connect(f"t{i}", f"o{j}", f"t{j}", f"i{i}", token_bits=rng.choice((8, 32, 512, 2048)), name=f"t{i}->t{j}")
    return graph


# ---------------------------------------------------------------------------------------------
# Reference: a clock-stepped simulator with the same FIFO rules, written independently
# ---------------------------------------------------------------------------------------------


@dataclass
class RefResult:
    makespan: int | None
    stall: dict[str, int]
    peak: dict[str, int]  # max tokens resident (written, slot not yet freed) at any cycle
    stall_on: dict[str, dict[bool, int]] = field(default_factory=dict)  # per task, {is_write: cycles}


def reference_simulate(graph: Graph, depths: dict[str, int | None], max_cycles: int = 200_000) -> RefResult:
    """Every cycle, every task fires its next events whose time has come and whose FIFO allows:
    a read needs the token written at least `read_latency` cycles ago; a write needs a free slot
    (fewer than `depth` tokens whose slot was freed less than `free_latency` cycles ago)."""
    lam, mu = graph.read_latency, graph.free_latency
    events = {}
    out_edge = {(e.src, e.src_port): e.name for e in graph.edges}
    in_edge = {(e.dst, e.dst_port): e.name for e in graph.edges}
    for t in graph.tasks.values():
        evs = [(int(c), 0, out_edge[t.name, p], True) for p, times in t.writes.items() for c in times]
        evs += [(int(c), 1, in_edge[t.name, p], False) for p, times in t.reads.items() for c in times]
        events[t.name] = sorted(evs, key=lambda x: (x[0], x[1]))  # stable: ports keep token order
    pos = dict.fromkeys(graph.tasks, 0)
    last = dict.fromkeys(graph.tasks, 0)  # actual time of the previous event
    prev_nominal = dict.fromkeys(graph.tasks, 0)
    written = {e.name: [] for e in graph.edges}
    read = {e.name: [] for e in graph.edges}
    cap = {e.name: depths.get(e.name) for e in graph.edges}
    stall = dict.fromkeys(graph.tasks, 0)
    stall_on = {name: {False: 0, True: 0} for name in graph.tasks}
    idle = 0
    for cycle in range(max_cycles):
        fired = False
        for name, evs in events.items():
            while pos[name] < len(evs):
                nominal, _, edge, is_write = evs[pos[name]]
                due = last[name] + nominal - prev_nominal[name]
                if due > cycle:
                    break
                if is_write:
                    k = len(written[edge])
                    d = cap[edge]
                    if d is not None and k >= d and not (k - d < len(read[edge]) and read[edge][k - d] + mu <= cycle):
                        break
                    written[edge].append(cycle)
                else:
                    k = len(read[edge])
                    if not (k < len(written[edge]) and written[edge][k] + lam <= cycle):
                        break
                    read[edge].append(cycle)
                stall[name] += cycle - due
                stall_on[name][is_write] += cycle - due
                last[name], prev_nominal[name] = cycle, nominal
                pos[name] += 1
                fired = True
        if all(pos[n] == len(e) for n, e in events.items()):
            break
        idle = 0 if fired else idle + 1
        if idle > lam + mu + 2 and all(
            last[n] + events[n][pos[n]][0] - prev_nominal[n] <= cycle for n in events if pos[n] < len(events[n])
        ):
            return RefResult(None, stall, {})
    else:
        raise AssertionError("reference simulation did not finish")
    finish = {}
    for t in graph.tasks.values():
        evs = events[t.name]
        finish[t.name] = last[t.name] + t.latency - (evs[-1][0] if evs else 0)
    peak = {}
    for e in graph.edges:
        w, r = written[e.name], read[e.name]
        peak[e.name] = max(sum(1 for x in w if x <= c) - sum(1 for x in r if x + mu <= c) for c in w)
    return RefResult(max(finish.values()), stall, peak, stall_on)
