"""Random DSL programs for the deadlock-verdict property (tests/fifo/test_program_order.py).

A program is a random DAG of small kernels over an (N, T) tensor streamed row by row (X) or in
(2, T/2) tiles (Y, N even): maps, reductions to one row (which hold the whole stream before they
write), two-input zips and broadcasts of a reduced row replayed N times (a one-bank converter),
each reading its two inputs in a drawn order, splits writing two streams, and re-cuts of X into Y
(a planned converter cycling through two banks of one row pair: N / 2 slabs). A value may feed
several kernels (a fork) and reconverge; values no kernel reads are returned. Kernels need their
source in a file, so `build` writes a module and runs it.
"""

from __future__ import annotations

import atexit
import itertools
import runpy
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

_DIR = Path(tempfile.mkdtemp(prefix="sd_random_dags_"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_COUNTER = itertools.count()

T = 4
KERNELS = {
    # kind: (outputs, body lines with {a}/{b} for the inputs in read order); an input is X, or R
    # (a reduced row S replayed N times) when it reads an S value
    "map": ("X", ["for i in range(N):", "    yield {a}.read() * 2.0"]),
    "reduce": ("S", ["acc = sd.zeros((1, T))", "for i in range(N):", "    acc += {a}.read()", "yield acc"]),
    "zip": ("X", ["for i in range(N):", "    u = {a}.read()", "    v = {b}.read()", "    yield u - v"]),
    "bcast": ("X", ["for i in range(N):", "    u = {a}.read()", "    v = {b}.read()", "    yield u * v"]),
    "split": ("XX", ["for i in range(N):", "    u = {a}.read()", "    yield u + 1.0, u * 0.5"]),
    "regrid": ("Y", ["for i in range(N):", "    yield {a}.read() + 1.0"]),
}
PARAM = {"X": "X", "S": "R", "Y": "Y"}  # the port type that reads a value of each kind


@dataclass(frozen=True)
class Node:
    kind: str
    args: tuple[int, ...]  # indices of the values it reads, in read order
    swapped: bool  # the kernel's parameters are declared in the other order


def _outputs(node: Node, kinds: list[str]) -> str:
    """The kinds a node writes: maps and zips over Y tiles write Y tiles."""
    outs = KERNELS[node.kind][0]
    return "Y" if node.kind in ("map", "zip") and kinds[node.args[0]] == "Y" else outs


@dataclass(frozen=True)
class Spec:
    n: int
    nodes: tuple[Node, ...]

    def source(self) -> str:
        """The module text: kernels, then `prog` (a @sd.dataflow over x)."""
        lines = ["import streamdsl as sd", f"N, T = {self.n}, {T}",
                 "X = sd.itensor.tiled(sd.f32, shape=(N, T), tile=(1, T))",
                 "S = sd.itensor.tiled(sd.f32, shape=(1, T), tile=(1, T))", "R = S.repeat(N)",
                 "Y = sd.itensor.tiled(sd.f32, shape=(N, T), tile=(2, T // 2))" if self.n % 2 == 0 else ""]  # fmt: skip
        kinds: list[str] = ["X"]  # value 0 is x
        body = ["@sd.dataflow", "def prog(x: sd.Tensor[sd.f32, (N, T)]):"]
        read: set[int] = set()
        for i, node in enumerate(self.nodes):
            outs, text = _outputs(node, kinds), KERNELS[node.kind][1]
            params = [f"p{j}: {'Y' if node.kind == 'regrid' else PARAM[kinds[a]]}" for j, a in enumerate(node.args)]
            names = [f"p{j}" for j in range(len(node.args))]
            declared = list(reversed(params)) if node.swapped else params
            ret = outs if len(outs) == 1 else f"({', '.join(outs)})"
            lines += ["", "@sd.kernel", f"def k{i}({', '.join(declared)}) -> {ret}:"]
            lines += ["    " + line.format(a=names[0], b=names[-1]) for line in text]
            call = [f"v{a}" for a in node.args]
            call = list(reversed(call)) if node.swapped else call
            targets = [f"v{len(kinds) + j}" for j in range(len(outs))]
            body.append(f"    {', '.join(targets)} = k{i}({', '.join(call)})")
            kinds += list(outs)
            read |= set(node.args)
        unread = [f"v{j}" for j in range(1, len(kinds)) if j not in read]
        body.insert(2, "    v0 = x")
        body.append(f"    return {', '.join(unread)}")
        return "\n".join(lines + ["", *body]) + "\n"


@st.composite
def specs(draw: st.DrawFn, max_nodes: int = 5) -> Spec:
    n = draw(st.sampled_from([2, 3, 4, 6]))  # even N for Y tiles; 6 gives converters three slabs
    kinds = ["X"]
    nodes: list[Node] = []
    first = draw(st.sampled_from(["map", "split"]))  # x itself is a DMA: start with a kernel
    for step in range(draw(st.integers(1, max_nodes))):
        kind = first if step == 0 else draw(st.sampled_from(sorted(KERNELS)))
        rows = [i for i, k in enumerate(kinds) if k == "X" and i] if step else [0]
        sums = [i for i, k in enumerate(kinds) if k == "S"]
        grids = [i for i, k in enumerate(kinds) if k == "Y"]
        if kind == "bcast" and not sums:
            kind = "reduce"
        if kind == "regrid" and n % 2:
            kind = "map"
        if kind in ("zip", "map") and grids and draw(st.booleans()):  # the same kernels over Y tiles
            args = tuple(draw(st.sampled_from(grids)) for _ in range(2 if kind == "zip" else 1))
        elif kind == "zip" and rows:
            args = (draw(st.sampled_from(rows)), draw(st.sampled_from(rows)))
        elif kind == "bcast":
            args = (draw(st.sampled_from(rows)), draw(st.sampled_from(sums)))
            args = args if draw(st.booleans()) else args[::-1]
        else:
            kind = "map" if kind == "zip" else kind
            args = (draw(st.sampled_from(rows)),)
        nodes.append(Node(kind, args, draw(st.booleans())))
        kinds += list(_outputs(nodes[-1], kinds))
    return Spec(n, tuple(nodes))


def build(spec: Spec):  # noqa: ANN201 - an sd.DataflowProgram
    path = _DIR / f"dag_{next(_COUNTER)}.py"
    path.write_text(spec.source())
    return runpy.run_path(str(path))["prog"]  # sd.compile plans its converters
