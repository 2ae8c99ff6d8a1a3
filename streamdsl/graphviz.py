"""Draw a dataflow graph with graphviz: tasks, DMAs, forks and converters as nodes, FIFOs as
edges labelled with their name, token count and depth. Names are the ones reports use."""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from streamdsl.graph import Graph

__all__ = ["graph_to_dot", "render", "share_colour", "summary_html", "svg"]

# node kinds by name prefix (streamdsl.wiring.node_name): tasks keep their sym_name
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


def graph_to_dot(
    graph: Graph, depths: Mapping[str, int | None] | None = None, title: str = "dataflow", fill: Mapping[str, str] | None = None,
    rankdir: str = "LR",
) -> str:
    """The graphviz source of `graph`; `depths` (default: the edges' own) label the FIFOs with
    their depth and bits; `fill` overrides the fill colour of named nodes. In the SVG, each node
    and edge has the id `node:NAME` / `edge:NAME`. An edge into a task listed before its source
    (a feedback stream, read above the task that writes it) is dashed."""
    depths = graph.depths() if depths is None else depths
    fill = fill or {}
    order = {name: i for i, name in enumerate(graph.tasks)}
    ids = {name: f"n{i}" for name, i in order.items()}
    lines = [f"digraph {_quote(title)} {{", f"  rankdir={rankdir}; node [fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];"]
    for name in graph.tasks:
        colour = f", fillcolor={_quote(fill[name])}" if name in fill else ""
        lines.append(f"  {ids[name]} [label={_quote(name)}, {_style(name)}{colour}, id={_quote('node:' + name)}];")
    for edge in graph.edges:
        depth = depths.get(edge.name)
        label = f"{edge.name}\n{graph.tokens(edge)} tokens x {edge.token_bits} b"
        label += f", depth {depth} ({_bits(depth * edge.token_bits)})" if depth else ""
        back = ", style=dashed" if order[edge.dst] <= order[edge.src] else ""
        lines.append(f"  {ids[edge.src]} -> {ids[edge.dst]} [label={_quote(label)}{back}, id={_quote('edge:' + edge.name)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_RAMP = ((0xFF, 0xF7, 0xD6), (0xFD, 0xAE, 0x61), (0xD7, 0x30, 0x27))  # idle -> half busy -> always busy


def share_colour(share: float) -> str:
    """The fill of a node busy `share` (0..1) of the makespan: pale yellow through orange to red."""
    x = min(max(share, 0.0), 1.0) * (len(_RAMP) - 1)
    lo = min(int(x), len(_RAMP) - 2)
    mix = [round(a + (b - a) * (x - lo)) for a, b in zip(_RAMP[lo], _RAMP[lo + 1])]
    return "#" + "".join(f"{c:02x}" for c in mix)


def summary_html(title: str, figures: Mapping[str, object], graph: Graph, depths: Mapping[str, int | None],
                 shares: Mapping[str, float]) -> str:
    """A compact HTML block (Jupyter's `_repr_html_`): `figures` as a table beside the graph, its
    nodes coloured by `shares` (busy share of the makespan per node)."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in figures.items())
    fill = {name: share_colour(share) for name, share in shares.items()}
    try:
        drawing = svg(graph_to_dot(graph, depths, title, fill, rankdir="TB"))
    except FileNotFoundError as err:
        drawing = f"<i>{html.escape(str(err))}</i>"
    return (
        f'<div style="display:flex;gap:16px;align-items:flex-start;font-family:sans-serif">'
        f'<div><b>{html.escape(title)}</b><table style="font-size:12px">{rows}</table></div>'
        f'<div style="max-width:640px;max-height:520px;overflow:auto">{drawing}</div></div>'
    )


def _bits(bits: int) -> str:
    for unit, scale in (("Mib", 2**20), ("Kib", 2**10)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits} b"


def svg(dot_source: str) -> str:
    """graphviz's SVG of `dot_source`, as a string to inline in HTML (no XML prolog)."""
    if shutil.which("dot") is None:
        raise FileNotFoundError("graphviz's `dot` is not on PATH (Debian: apt-get install graphviz)")
    proc = subprocess.run(["dot", "-Tsvg"], input=dot_source, check=True, capture_output=True, text=True)
    return proc.stdout[proc.stdout.index("<svg"):]


def render(dot_source: str, path: Path) -> Path | None:
    """Write `path` (.dot) and, when graphviz's `dot` is installed, the .svg beside it (returned)."""
    path.write_text(dot_source)
    if shutil.which("dot") is None:
        return None
    out = path.with_suffix(".svg")
    out.write_text(svg(dot_source))
    return out
