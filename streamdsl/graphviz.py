"""Draw a dataflow graph with graphviz: tasks, DMAs, forks and converters as nodes, FIFOs as
edges labelled with their name, token count and depth. Names are the ones reports use."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from streamdsl.graph import Graph

__all__ = ["graph_to_dot", "render"]

# node kinds by name prefix (streamdsl.graph.node_name): tasks keep their sym_name
_STYLE = {
    "dma_": 'shape=cds, style=filled, fillcolor="#fde2c8"',
    "converter(": 'shape=box3d, style=filled, fillcolor="#f6d5d5"',
    "fork(": "shape=triangle, orientation=270",
    "join(": "shape=invtriangle, orientation=270",
}
_TASK = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'


def _style(name: str) -> str:
    return next((style for prefix, style in _STYLE.items() if name.startswith(prefix)), _TASK)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_to_dot(graph: Graph, depths: Mapping[str, int | None] | None = None, title: str = "dataflow") -> str:
    """The graphviz source of `graph`; `depths` (default: the edges' own) label the FIFOs."""
    depths = graph.depths() if depths is None else depths
    ids = {name: f"n{i}" for i, name in enumerate(graph.tasks)}
    lines = [f"digraph {_quote(title)} {{", "  rankdir=LR; node [fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];"]
    lines += [f"  {ids[name]} [label={_quote(name)}, {_style(name)}];" for name in graph.tasks]
    for edge in graph.edges:
        depth = depths.get(edge.name)
        label = f"{edge.name}\n{graph.tokens(edge)} tokens x {edge.token_bits} b" + (f", depth {depth}" if depth else "")
        lines.append(f"  {ids[edge.src]} -> {ids[edge.dst]} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, path: Path) -> Path | None:
    """Write `path` (.dot) and, when graphviz's `dot` is installed, the .svg beside it (returned)."""
    path.write_text(dot_source)
    if shutil.which("dot") is None:
        return None
    svg = path.with_suffix(".svg")
    subprocess.run(["dot", "-Tsvg", str(path), "-o", str(svg)], check=True, capture_output=True)
    return svg
