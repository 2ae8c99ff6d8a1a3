"""`report.html`: one self-contained page that shows a compiled design (no network access needed).

It reads report.json and the design: the dataflow graph drawn by graphviz with every task coloured
by its share of the makespan (click a node for its details), a sortable table of the FIFOs and why
each is as deep as it is, a Gantt chart of the timed simulation (per task: busy, stalled on an input,
stalled on an output), the verification results, and, when report.json has them, the roofline,
the resources per SLR and the HLS build results. Plots are matplotlib SVGs inlined in the page.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamdsl.graph import Graph
from streamdsl.graphviz import graph_to_dot, share_colour, svg
from streamdsl.graphviz import summary_html as graph_summary_html
from streamdsl.sim.timed import Activity, TimedResult, activity, critical_path

__all__ = ["SECTIONS", "report_html", "summary_html", "write_report_html"]

# the page's sections, in order: id -> title; the optional ones appear when report.json has the data
SECTIONS = {
    "summary": "Summary",
    "graph": "Dataflow graph",
    "fifos": "FIFOs",
    "gantt": "Timed simulation",
    "verification": "Verification",
    "roofline": "Roofline",
    "resources": "Resources per SLR",
    "build": "HLS build",
    "timing": "Compile time",
}
OPTIONAL = ("roofline", "resources", "build")
GANTT_ROWS = 80  # a whole model has thousands of tasks; the chart shows the busiest
GANTT_COLUMNS = 1000  # resolution of the chart along the cycles
PATH_SHARE = 0.01  # the critical path's segments shown: at least this share of the makespan
COLOURS = {"busy": "#4c78a8", "stalled on input": "#f2a541", "stalled on output": "#d64545"}


def write_report_html(path: Path | str, report: Mapping[str, Any], design: Any, timed: TimedResult | None = None) -> Path:
    """Write `report_html(...)` to `path` and return it."""
    path = Path(path)
    path.write_text(report_html(report, design, timed), encoding="utf-8")
    return path


def report_html(report: Mapping[str, Any], design: Any, timed: TimedResult | None = None) -> str:
    """The page for `report` (report.json's content) and its `design` (a `Design`, or anything with
    its `graph` and `depths`); `timed` is the design's timed simulation if already run."""
    timed = design.timed_simulation() if timed is None else timed
    graph: Graph = design.graph
    acts = activity(graph, timed)
    tasks = task_rows(graph, timed, acts)
    bodies = {
        "summary": _summary(report, timed, tasks),
        "graph": _graph_section(report, design, tasks),
        "fifos": _fifo_section(report, timed),
        "gantt": _gantt_section(graph, timed, acts, tasks),
        "verification": _verification_section(report),
        "roofline": _roofline_section(report.get("roofline")),
        "resources": _resources_section(report.get("resources")),
        "build": _build_section(report.get("build")),
        "timing": _timing_section(report.get("timing", {})),
    }
    sections = "\n".join(
        f'<section id="{key}"><h2>{SECTIONS[key]}</h2>\n{body}\n</section>' for key, body in bodies.items() if body is not None
    )
    title = f"{report.get('model', 'design')} {_config(report)}"
    data = json.dumps({"tasks": tasks}, default=_plain).replace("</", "<\\/")
    return _PAGE.format(title=html.escape(title), css=_CSS, sections=sections, data=data, js=_JS)


def summary_html(report: Mapping[str, Any], design: Any, timed: TimedResult | None = None) -> str:
    """A compact block for Jupyter: the key figures of report.json and the coloured graph."""
    timed = design.timed_simulation() if timed is None else timed
    tasks = task_rows(design.graph, timed, activity(design.graph, timed))
    sizing, verification = report.get("fifo_sizing", {}), report.get("verification", {})
    figures = {
        "config": _config(report),
        "tasks / FIFOs": f"{len(tasks)} / {len(report.get('streams', []))}",
        "makespan": f"{timed.makespan:,} cycles" if timed.makespan is not None else "deadlock",
        "FIFO memory": f"{_bits(sizing.get('total_bits', 0))} ({_bits(sizing.get('naive_bits', 0))} naive)",
        "verification": "passed" if verification.get("passed", True) else "FAILED",
    }
    shares = {name: row["share"] for name, row in tasks.items()}
    return graph_summary_html(str(report.get("model", "design")), figures, design.graph, design.depths, shares)


# ---------------------------------------------------------------------------------------------
# Figures per task
# ---------------------------------------------------------------------------------------------


def task_rows(graph: Graph, timed: TimedResult, acts: Mapping[str, Activity]) -> dict[str, dict[str, Any]]:
    """Per task, what the page shows about it: its timed-simulation figures and its schedule."""
    reads: dict[str, list[str]] = {name: [] for name in graph.tasks}
    writes: dict[str, list[str]] = {name: [] for name in graph.tasks}
    for e in graph.edges:
        reads[e.dst].append(e.name)
        writes[e.src].append(e.name)
    makespan = max(timed.makespan or max((a.end for a in acts.values()), default=0), 1)
    rows = {}
    for name, task in graph.tasks.items():
        act = acts[name]
        rows[name] = {
            "name": name,
            "start": timed.start.get(name),
            "finish": act.end,
            "busy_cycles": act.busy_cycles,
            "stalled_on_input": int(np.diff(act.stalled_input).sum()),
            "stalled_on_output": int(np.diff(act.stalled_output).sum()),
            "share": act.busy_cycles / makespan,
            "first_output": task.delay if task.writes else None,
            "ii": round(task.ii, 3) if task.writes or task.reads else None,
            "latency": task.latency,
            "reads": reads[name],
            "writes": writes[name],
        }
    return rows


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _summary(report: Mapping[str, Any], timed: TimedResult, tasks: Mapping[str, Mapping[str, Any]]) -> str:
    sizing = report.get("fifo_sizing", {})
    verification = report.get("verification", {})
    clock = float(report.get("clock_mhz", 300))
    cards = [
        ("tasks", len(report.get("kernels", [{}])[0].get("tasks", []))),
        ("FIFOs", len(report.get("streams", []))),
        ("makespan", f"{timed.makespan:,} cycles" if timed.makespan is not None else "deadlock"),
        ("at 300 MHz" if clock == 300 else f"at {clock:g} MHz", f"{(timed.makespan or 0) / clock:,.1f} µs"),
        ("FIFO memory",
         f"{_bits(sizing.get('total_bits', 0))}, {sizing.get('total_bits', 0) / max(sizing.get('naive_bits', 1), 1):.0%} of naive"),
        *([("busiest task", f"{busiest['name']}, {busiest['share']:.0%}")] if (busiest := _busiest(tasks)) else []),
        ("verification", "passed" if verification.get("passed", True) else "FAILED"),
    ]
    items = "".join(f'<div class="card"><div class="k">{k}</div><div class="v">{html.escape(str(v))}</div></div>' for k, v in cards)
    return f'<div class="cards">{items}</div>'


def _busiest(tasks: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The bottleneck: the task busy for the largest share of the makespan."""
    return max(tasks.values(), key=lambda row: row["share"], default=None)


def _graph_svg(design: Any, tasks: Mapping[str, Mapping[str, Any]], report: Mapping[str, Any]) -> str:
    fill = {name: share_colour(row["share"]) for name, row in tasks.items()}
    return svg(graph_to_dot(design.graph, design.depths, str(report.get("model", "dataflow")), fill, rankdir="TB"))


def _graph_section(report: Mapping[str, Any], design: Any, tasks: Mapping[str, Mapping[str, Any]]) -> str:
    steps = "".join(f'<span style="background:{share_colour(s)}"></span>' for s in np.linspace(0, 1, 11))
    legend = (f'<div class="legend">busy share of the makespan: 0% <span class="ramp">{steps}</span> 100%; '
              'click a node for its details <button id="zoom">actual size</button></div>')
    details = '<div id="details"><p class="hint">Click a task, DMA, converter or fork in the graph.</p></div>'
    return f'{legend}<div class="graph-row"><div id="graph-svg">{_graph_svg(design, tasks, report)}</div>{details}</div>'


def _fifo_section(report: Mapping[str, Any], timed: TimedResult) -> str:
    headers = ["FIFO", "producer", "consumer", "tokens", "token bits", "depth", "bits", "naive bits", "of naive",
               "lag (cycles)", "delay (cycles)", "peak, sized run"]
    rows = []
    for s in report.get("streams", []):
        name, depth, token_bits, tokens = s["name"], s["depth"], s["token_bits"], s["tokens"]
        rows.append([name, s["producer"], s["consumer"], tokens, token_bits, depth, depth * token_bits,
                     tokens * token_bits, depth / max(tokens, 1), s.get("lag"), s.get("delay"), timed.peak_occupancy.get(name)])
    why = ("<p>Depth is the fewest slots that let the producer run ahead of its consumer by the LP's chosen "
           "<i>delay</i> (at least the <i>lag</i>: the cycles the consumer must start after the producer so it never "
           "waits for a token). Naive sizing makes every FIFO as deep as its token count. Click a header to sort.</p>")
    return why + _table(headers, rows, "fifo-table", sortable=True, formats={8: "{:.1%}"})


def _gantt_section(graph: Graph, timed: TimedResult, acts: Mapping[str, Activity], tasks: Mapping[str, Mapping[str, Any]]) -> str:
    shown = sorted(acts, key=lambda n: -tasks[n]["busy_cycles"])[:GANTT_ROWS]
    order = sorted(shown, key=lambda n: (tasks[n]["start"] or 0, n))
    figure = _gantt_svg(order, acts, timed.makespan)
    note = "" if timed.deadlock is None else f'<pre class="bad">{html.escape(str(timed.deadlock))}</pre>'
    total = sum(a.stall_cycles for a in acts.values())
    rows = f" (the {GANTT_ROWS} busiest of {len(acts)} shown)" if len(acts) > GANTT_ROWS else ""
    return (f"<p>Each task from cycle 0 to its end, with the sized FIFOs{rows}: {total:,} stall cycles in all.</p>{note}{figure}"
            + _critical_path_table(graph, timed))


def _critical_path_table(graph: Graph, timed: TimedResult) -> str:
    """The run's critical path (`critical_path`), its segments of at least `PATH_SHARE` of the
    makespan: what to make faster (nothing else can lower the makespan)."""
    path = critical_path(graph, timed)
    if not path:
        return ""
    floor = PATH_SHARE * (timed.makespan or 0)
    rows = [(s.task, s.start, s.end, s.end - s.start, s.waited_on or "") for s in path if s.end - s.start >= floor]
    return (f"<p>Critical path: the tasks that set the makespan, each from when the stream it waited on delivered "
            f"(segments of {PATH_SHARE:.0%} of the makespan or more; {len(path)} in all).</p>"
            + _table(["task", "from", "to", "cycles", "after waiting on"], rows, "critical-path"))


def _covered(spans: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Cycles of `spans` (sorted, disjoint [from, to) rows) before each cycle of `at`."""
    if not len(spans):
        return np.zeros(len(at))
    starts, lengths = spans[:, 0], spans[:, 1] - spans[:, 0]
    before = np.concatenate(([0], np.cumsum(lengths)))
    k = np.searchsorted(starts, at, side="right")  # spans begun by then; the last may be partial
    last = np.minimum(at - starts[np.maximum(k - 1, 0)], lengths[np.maximum(k - 1, 0)])
    return np.where(k > 0, before[np.maximum(k - 1, 0)] + last, 0)


def _bars(act: Activity, end: int, bins: int) -> dict[str, list[tuple[float, float]]]:
    """Per state, (start, width) bars at the chart's resolution: each of `bins` columns shows what
    the task did most in it, so the chart costs the same for 10^3 or 10^7 cycles."""
    edges = np.linspace(0, end, bins + 1)
    stalled_in = np.diff(_covered(act.stalled_input, edges))
    stalled_out = np.diff(_covered(act.stalled_output, edges))
    busy = np.diff(np.minimum(edges, act.end)) - stalled_in - stalled_out
    state = np.argmax(np.stack([busy, stalled_in, stalled_out]), axis=0)
    state[np.diff(np.minimum(edges, act.end)) <= 0] = -1  # the task has ended
    change = np.flatnonzero(np.diff(state)) + 1
    runs = np.split(np.arange(bins), change)
    out: dict[str, list[tuple[float, float]]] = {kind: [] for kind in COLOURS}
    for run in runs:
        if state[run[0]] >= 0:
            out[list(COLOURS)[state[run[0]]]].append((edges[run[0]], edges[run[-1] + 1] - edges[run[0]]))
    return out


def _gantt_svg(order: Sequence[str], acts: Mapping[str, Activity], makespan: int | None) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    end = max(makespan or 0, max((a.end for a in acts.values()), default=1), 1)
    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.32 * len(order)))
    boxes: dict[str, list[list[tuple[float, float]]]] = {kind: [] for kind in COLOURS}
    for row, name in enumerate(order):
        for kind, bars in _bars(acts[name], end, GANTT_COLUMNS).items():
            lo, hi = row - 0.4, row + 0.4
            boxes[kind] += [[(x, lo), (x + w, lo), (x + w, hi), (x, hi)] for x, w in bars]
    for kind, verts in boxes.items():  # one collection per state: one SVG group, drawn fast
        ax.add_collection(PolyCollection(verts, facecolors=COLOURS[kind], edgecolors="none"))
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(0, end)
    ax.set_xlabel("cycle")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()], loc="upper center",
              bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False, borderaxespad=-1.6)
    return _svg_of(fig, "gantt")


def _verification_section(report: Mapping[str, Any]) -> str:
    verification = dict(report.get("verification", {}))
    failures = verification.pop("failures", [])
    passed = verification.pop("passed", not failures)
    status = '<p class="ok">Every check passed.</p>' if passed else "".join(f'<p class="bad">{html.escape(f)}</p>' for f in failures)
    rows = [[key.replace("_", " "), value] for key, value in verification.items() if not isinstance(value, dict | list)]
    timed = report.get("timed_simulation", {})
    rows += [[f"timed simulation: {key.replace('_', ' ')}", value] for key, value in timed.items()]
    on_chip = report.get("on_chip")
    if on_chip:
        rows.append(["on-chip memory (FIFOs + converters) / device", f"{_bits(on_chip['total_bits'])} / {_bits(on_chip['device_bits'])}"])
    memory = report.get("memory")
    if memory:
        rows.append(["on-chip memory by shape / device (lowering/memory.py)",
                     ", ".join(f"{memory[k]:,} / {cap:,} {k}" for k, cap in memory["capacity"].items())])
    return status + _table(["check", "value"], rows, "verification-table")


def _roofline_section(roofline: Mapping[str, Any] | None) -> str | None:
    """Attainable performance against arithmetic intensity; `roofline` holds `peak_gflops`,
    `hbm_gbps` and `points` ({name, intensity (flop/byte), gflops})."""
    if not roofline:
        return None
    import matplotlib.pyplot as plt

    peak, bandwidth = float(roofline["peak_gflops"]), float(roofline["hbm_gbps"])
    points = roofline.get("points", [])
    xs = [float(p["intensity"]) for p in points] or [peak / bandwidth]
    lo, hi = min(xs + [peak / bandwidth]) / 10, max(xs + [peak / bandwidth]) * 10
    grid = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.loglog(grid, np.minimum(peak, bandwidth * grid), color="#333", label=f"HBM {bandwidth:g} GB/s, compute {peak:g} GFLOP/s")
    for p in points:
        ax.scatter(float(p["intensity"]), float(p["gflops"]), zorder=3)
        ax.annotate(str(p["name"]), (float(p["intensity"]), float(p["gflops"])), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("arithmetic intensity (flop / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _svg_of(fig, "roofline")


def _resources_section(resources: Mapping[str, Any] | None) -> str | None:
    """Resources per SLR: `resources` holds `slrs` ({name, LUT, FF, DSP, BRAM36 or BRAM_18K, URAM,
    LUTRAM}) and `available` per SLR (same keys); docs/resources.md."""
    if not resources or not resources.get("slrs"):
        return None
    kinds = [k for k in ("LUT", "FF", "DSP", "BRAM36", "BRAM_18K", "URAM", "LUTRAM") if any(k in s for s in resources["slrs"])]
    available = resources.get("available", {})
    rows = [[s["name"], *(_used(s.get(k, 0), available.get(k)) for k in kinds)] for s in resources["slrs"]]
    return _table(["SLR", *kinds], rows, "resources-table")


def _used(value: float, available: float | None) -> str:
    return f"{value:,.0f}" + (f" ({value / available:.0%})" if available else "")


def _build_section(build: Mapping[str, Any] | None) -> str | None:
    """`streamdsl build` results: one row per job, csynth figures when Vitis ran."""
    if not build:
        return None
    rows = []
    for job in build.get("jobs", []):
        result = job.get("result") or {}
        figures = ", ".join(f"{k}: {v}" for k, v in _flat(result) if v is not None)
        rows.append([job["name"], job["kind"], "ok" if job["ok"] else "FAILED", job.get("seconds"), figures])
    head = f"<p>{len(rows)} jobs on {html.escape(str(build.get('executor', '?')))}.</p>"
    return head + _table(["job", "kind", "status", "seconds", "result"], rows, "build-table", sortable=True)


def _flat(result: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in result.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def _timing_section(timing: Mapping[str, float]) -> str | None:
    if not timing:
        return None
    return _table(["stage", "seconds"], [[k.replace("_", " "), v] for k, v in timing.items()], "timing-table")


# ---------------------------------------------------------------------------------------------
# HTML pieces
# ---------------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str, *, sortable: bool = False,
           formats: Mapping[int, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            text = formats.get(i, "{:,}" if isinstance(value, int) else "{:.4g}").format(value) if numeric else _text(value)
            sort = f' data-v="{value}"' if numeric else ""
            cells.append(f'<td class="{"num" if numeric else ""}"{sort}>{html.escape(text)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    cls = "sortable" if sortable else ""
    return f'<table id="{table_id}" class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _svg_of(fig: Any, salt: str) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.family": "sans-serif"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _bits(bits: float) -> str:
    for unit, scale in (("MiB", 8 * 2**20), ("KiB", 8 * 2**10)):
        if bits >= scale:
            return f"{bits / scale:.2f} {unit}"
    return f"{bits:.0f} b"


def _config(report: Mapping[str, Any]) -> str:
    config = report.get("config") or {}
    return ", ".join(f"{k} {v}" for k, v in config.items()) if isinstance(config, Mapping) else str(config)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"cannot put {type(value).__name__} in report.html's data")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><header><h1>{title}</h1><nav>streamdsl design report</nav></header>
<main>
{sections}
</main>
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
</body></html>
"""

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d232b; background: #f4f6f9; }
header { background: #1f3a5f; color: #fff; padding: 14px 28px; display: flex; align-items: baseline; gap: 18px; }
header h1 { font-size: 20px; margin: 0; } header nav { opacity: .75; }
main { padding: 18px 28px; max-width: 1500px; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); padding: 12px 20px 18px; margin-bottom: 18px; }
h2 { font-size: 17px; margin: 6px 0 10px; color: #1f3a5f; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #eef3f9; border-radius: 6px; padding: 6px 12px; min-width: 90px; }
.card .k { font-size: 12px; color: #55657a; } .card .v { font-size: 15px; font-weight: 600; }
.graph-row { display: flex; gap: 18px; align-items: flex-start; }
#graph-svg { flex: 1 1 auto; overflow: auto; text-align: center; }
#graph-svg svg { max-width: 100%; max-height: 820px; width: auto; height: auto; }
#graph-svg.actual svg { max-width: none; max-height: none; }
button { font: inherit; font-size: 12px; border: 1px solid #b8c4d3; background: #fff; border-radius: 4px;
  padding: 2px 8px; cursor: pointer; }
#details { position: sticky; top: 10px; }
#graph-svg g.node { cursor: pointer; }
#graph-svg g.node.selected polygon, #graph-svg g.node.selected path { stroke: #1f3a5f; stroke-width: 3; }
#details { flex: 0 0 300px; background: #f7f9fc; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 12px; font-size: 13px; }
#details h3 { margin: 4px 0 6px; font-size: 15px; word-break: break-all; } #details td { padding: 2px 6px; }
.hint { color: #6b7a8c; }
.legend { font-size: 12px; color: #55657a; margin-bottom: 6px; }
.ramp { display: inline-flex; vertical-align: middle; margin: 0 4px; } .ramp span { width: 14px; height: 12px; display: inline-block; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e8ee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #eef3f9; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; } table.sortable th:hover { background: #dfe8f3; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
#fifos { overflow-x: auto; }
.ok { color: #1c7c3a; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; white-space: pre-wrap; }
section svg { max-width: 100%; height: auto; }
#gantt svg { width: 100%; }
#verification table, #timing table { width: auto; min-width: 480px; } #verification td.num, #timing td.num { text-align: left; }
"""

_JS = """
"use strict";
const data = JSON.parse(document.getElementById("report-data").textContent);
const fmt = (v) => v === null || v === undefined ? "\\u2013"
  : (typeof v === "number" ? v.toLocaleString("en-US", {maximumFractionDigits: 3}) : String(v));
function showTask(name, node) {
  const t = data.tasks[name];
  if (!t) return;
  document.querySelectorAll("#graph-svg g.node.selected").forEach((n) => n.classList.remove("selected"));
  node.classList.add("selected");
  const rows = [["start (cycle)", t.start], ["finish (cycle)", t.finish], ["busy cycles", t.busy_cycles],
    ["share of makespan", (100 * t.share).toFixed(1) + "%"], ["stalled on input", t.stalled_on_input],
    ["stalled on output", t.stalled_on_output], ["first output (D)", t.first_output], ["II", t.ii],
    ["latency (L)", t.latency], ["reads", t.reads.join(", ")], ["writes", t.writes.join(", ")]];
  const box = document.getElementById("details");
  box.replaceChildren();
  const h = document.createElement("h3"); h.textContent = name; box.appendChild(h);
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    const tr = table.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = fmt(v);
  }
  box.appendChild(table);
}
document.getElementById("zoom").addEventListener("click", (ev) => {
  const actual = document.getElementById("graph-svg").classList.toggle("actual");
  ev.target.textContent = actual ? "fit to page" : "actual size";
});
document.querySelectorAll("#graph-svg g.node").forEach((node) => {
  const name = node.id.replace(/^node:/, "");
  node.addEventListener("click", () => showTask(name, node));
});
function sortBy(table, col, th) {
  const asc = !th.classList.contains("asc");
  table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
  th.classList.add(asc ? "asc" : "desc");
  const key = (tr) => { const td = tr.cells[col]; return td.dataset.v !== undefined ? Number(td.dataset.v) : td.textContent; };
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => { const x = key(a), y = key(b); const c = x < y ? -1 : x > y ? 1 : 0; return asc ? c : -c; });
  table.tBodies[0].append(...rows);
}
document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => sortBy(table, col, th)));
});
"""
