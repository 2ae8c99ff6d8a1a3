"""A local search for an SLR placement within every limit (docs/resources.md, "SLR placement").

On a crowded device CBC spends seconds of root work before its first feasible placement, and on
a "no" tens of seconds, while an exploration asks whether a placement exists dozens of times.
This search answers in milliseconds when it finds one, in about 3 s when it does not (then the
answer is no: a heuristic answer, as CBC's was after a node limit); the integer program of
`lowering.slr` starts from its placement for the fewest crossing bits.

Start: the nodes ordered along the wire graph (the eigenvector of least eigenvalue of its
Laplacian, with each node's HBM bits on the diagonal: wired nodes close, HBM-heavy ones at the
SLR0 end), cut into one run per SLR of equal dominant resource share. Then a tabu search over
moves of one node and swaps of two, by weighted overflow (each SLR's resources beyond `fill` of
its capacity, each boundary's bits beyond its SLLs, as shares): every step takes the best move
or swap that does not put a node back where it left within a tenure of steps; at a local
minimum, each constraint still over grows in weight by a bump, so the search leaves it. Each of
`TRIES` (bump, tenure) runs `STEPS` steps from the same start until one finds a placement. Every
choice is the first minimum in node order: the same answer on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lowering.resources import RESOURCES, Device, KernelUsage

if TYPE_CHECKING:
    from lowering.slr import Wire

__all__ = ["search"]

STEPS = 400  # GPT-2 medium's and TinyLlama's crowded checks: found in 1-400 steps, ~2 ms each
# (weight bump, tabu tenure) of each try in turn: each finds placements the others miss
TRIES = ((0.5, 10), (0.2, 10), (1.0, 7))


def search(usage: KernelUsage, wires: Sequence[Wire], device: Device, fill: float = 1.0,
           steps: int = STEPS, hint: Mapping[str, int] | None = None,
           tries: Sequence[tuple[float, int]] = TRIES) -> dict[str, int] | None:
    """node -> SLR within `fill` of every SLR's resources and every boundary's SLLs, or None when
    no try (`tries`: `TRIES`) found one in `steps` steps (a wire end that is not a node is the HBM, below SLR0).
    With a `hint` (node -> SLR: a similar design's placement), the first try starts from it."""
    nodes = list(usage.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    cap = np.array([getattr(device.per_slr, r) * fill for r in RESOURCES], dtype=float)
    scale = np.where(cap > 0, cap, 1.0)
    load_of = np.array([[getattr(usage.nodes[v], r) for r in RESOURCES] for v in nodes], dtype=float) / scale
    ends = _Ends(np.array([index[w.a] for w in wires], dtype=int), np.array([index.get(w.b, -1) for w in wires], dtype=int),
                 np.array([w.bits for w in wires], dtype=float) / device.sll, device.slrs)
    spectral = _start(load_of, ends, device.slrs)
    runs = [(np.array([hint[v] for v in nodes], dtype=int), tries[0])] if hint is not None else []
    for start, (bump, tenure) in runs + [(spectral, t) for t in tries]:
        if (slr := _tabu(start, load_of, cap / scale, ends, steps, bump, tenure)) is not None:
            return {v: int(s) for v, s in zip(nodes, slr, strict=True)}
    return None


def _tabu(slr: np.ndarray, load_of: np.ndarray, room: np.ndarray, ends: _Ends, steps: int, bump: float,
          tenure: int) -> np.ndarray | None:
    """One try of the module doc's search from `slr`: the placement, or None after `steps` steps."""
    slrs, resources = ends.cuts.size + 1, load_of.shape[1]
    weight_r, weight_k = np.ones((slrs, resources)), np.ones(slrs - 1)
    tabu = np.zeros((len(load_of), slrs), dtype=int)
    for step in range(steps):
        load = np.zeros((slrs, resources))
        np.add.at(load, slr, load_of)
        boundary = ends.boundary(slr)
        over_r, over_k = np.maximum(load - room, 0), np.maximum(boundary - 1.0, 0)
        if not over_r.any() and not over_k.any():
            return slr
        free = tabu <= step
        moves, swaps = _costs(slr, load, load_of, room, boundary, ends, weight_r, weight_k)
        moves, swaps = np.where(free, moves, np.inf), np.where(_swappable(slr, free), swaps, np.inf)
        v, t = divmod(int(np.argmin(moves)), slrs)
        a, b = divmod(int(np.argmin(swaps)), len(load_of))
        if min(moves[v, t], swaps[a, b]) >= 0:  # a local minimum: weigh what stays over
            weight_r += bump * (over_r > 0)
            weight_k += bump * (over_k > 0)
        slr = slr.copy()
        if swaps[a, b] < moves[v, t]:
            tabu[a, slr[a]] = tabu[b, slr[b]] = step + tenure
            slr[a], slr[b] = slr[b], slr[a]
        elif np.isfinite(moves[v, t]):
            tabu[v, slr[v]] = step + tenure
            slr[v] = t
    return None


class _Ends:
    """The wires as arrays: ends `a`, `b` (-1: the HBM), `bits` as shares of a boundary's SLLs;
    and each wire once from each node end (`node`, `other`, `share`) for the moves' costs."""

    def __init__(self, a: np.ndarray, b: np.ndarray, bits: np.ndarray, slrs: int) -> None:
        self.a, self.b, self.bits, self.cuts = a, b, bits, np.arange(slrs - 1)
        inner = b >= 0
        self.node = np.concatenate([a, b[inner]])
        self.other = np.concatenate([b, a[inner]])
        self.share = np.concatenate([bits, bits[inner]])

    def crossed(self, one: np.ndarray, two: np.ndarray) -> np.ndarray:
        """[..., k]: 1 where a wire between SLRs `one` and `two` (-1: the HBM) crosses boundary k."""
        lo, hi = np.minimum(one, two)[..., None], np.maximum(one, two)[..., None]
        return ((lo <= self.cuts) & (self.cuts < hi)).astype(float)

    def boundary(self, slr: np.ndarray) -> np.ndarray:
        at = np.append(slr, -1)  # index -1: the HBM's level
        return self.bits @ self.crossed(at[self.a], at[self.b])


def _start(load_of: np.ndarray, ends: _Ends, slrs: int) -> np.ndarray:
    """Nodes ordered along the wire graph, cut into `slrs` runs of equal dominant share (module doc)."""
    n = len(load_of)
    inner = ends.b >= 0
    laplacian = np.zeros((n, n))
    np.add.at(laplacian, (ends.a[inner], ends.b[inner]), -ends.bits[inner])
    np.add.at(laplacian, (ends.b[inner], ends.a[inner]), -ends.bits[inner])
    laplacian[np.diag_indices(n)] -= laplacian.sum(axis=1)
    hbm = np.zeros(n)
    np.add.at(hbm, ends.a[~inner], ends.bits[~inner])
    position = np.linalg.eigh(laplacian + np.diag(hbm * 0.3))[1][:, 0]
    position *= -1 if position @ hbm > 0 else 1  # the HBM-heavy end first
    order = np.argsort(position, kind="stable")
    share = load_of.max(axis=1)[order]
    slr = np.empty(n, dtype=int)
    slr[order] = np.minimum((np.cumsum(share) - share / 2) / max(share.sum(), 1e-12) * slrs, slrs - 1)
    return slr


def _costs(slr: np.ndarray, load: np.ndarray, load_of: np.ndarray, room: np.ndarray, boundary: np.ndarray,
           ends: _Ends, weight_r: np.ndarray, weight_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The change of weighted overflow of moving node v to SLR t ([v, t]) and of swapping nodes u
    and v ([u, v]: exact in resources; in boundary bits, the two moves' sum, exact unless u and v
    share a wire)."""
    n, slrs = load_of.shape[0], load.shape[0]
    # a resource no move or swap can take over its room adds exactly 0 to every sum: left out
    live = load.max(axis=0) + load_of.max(axis=0) - room > 0
    load, load_of, room, weight_r = load[:, live], load_of[:, live], room[live], weight_r[:, live]
    over_row = (weight_r * np.maximum(load - room, 0)).sum(axis=1)
    over_sll = (weight_k * np.maximum(boundary - 1.0, 0)).sum()
    left = (weight_r[slr] * np.maximum(load[slr] - load_of - room, 0)).sum(axis=1) - over_row[slr]
    joined = (weight_r * np.maximum(load + load_of[:, None] - room, 0)).sum(axis=2) - over_row
    at = np.append(slr, -1)
    was = ends.crossed(at[ends.node], at[ends.other])
    shift = np.zeros((n, slrs, len(boundary)))
    for t in range(slrs):
        np.add.at(shift[:, t], ends.node, ends.share[:, None] * (ends.crossed(np.full_like(ends.other, t), at[ends.other]) - was))

    def sll(bits: Iterable[np.ndarray]) -> np.ndarray:  # the weighted SLL overflow change of each boundary's bits, added
        total = np.zeros(())
        for k, plane in enumerate(bits):
            total = total + weight_k[k] * np.maximum(boundary[k] + plane - 1.0, 0)
        return total - over_sll

    moves = left[:, None] + joined + sll(shift[..., k] for k in range(len(boundary)))
    moves[np.arange(n), slr] = np.inf
    # [u, v]: v's SLR gains what u holds beyond v, u's SLR loses it; one [n, n] plane a resource,
    # summed in resource order (the same sums as over a [n, n, resources] array, far less memory)
    held, weight = load[slr], weight_r[slr]  # [node, resource]: its SLR's load, that SLR's weights
    gains, loses = np.zeros((n, n)), np.zeros((n, n))
    for r in range(load.shape[1]):
        trade = load_of[:, r, None] - load_of[None, :, r]
        gains += weight[None, :, r] * np.maximum(held[None, :, r] + trade - room[r], 0)
        loses += weight[:, r, None] * np.maximum(held[:, r, None] - trade - room[r], 0)
    crossing = (shift[:, slr, k] for k in range(len(boundary)))  # [u, v]: u moved to v's SLR; transposed: v to u's
    swaps = (gains - over_row[slr][None]) + (loses - over_row[slr][:, None]) + sll(c + c.T for c in crossing)
    return moves, swaps


def _swappable(slr: np.ndarray, free: np.ndarray) -> np.ndarray:
    """[u, v]: u and v sit in different SLRs and neither goes back where tabu forbids."""
    rows = np.arange(len(slr))
    return (slr[:, None] != slr[None]) & free[rows[:, None], slr[None]] & free[rows[None], slr[:, None]]
