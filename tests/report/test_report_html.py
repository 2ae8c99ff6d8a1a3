"""report.html opened in headless Chromium: no console error, every section present and visible,
the graph clickable, the FIFO table sortable; the screenshot is saved next to the report."""

from __future__ import annotations

import json
import struct

import pytest
from dsl import programs as P

import streamdsl as sd
from streamdsl.graphviz import share_colour
from toolchain.cli import main
from toolchain.report_html import OPTIONAL, SECTIONS, report_html

from .chromium import Page

VISIBLE = """(id) => { const s = document.getElementById(id); if (!s) return null;
  const r = s.getBoundingClientRect(), st = getComputedStyle(s);
  return r.width > 100 && r.height > 40 && st.display !== 'none' && st.visibility === 'visible'; }"""


def _png_size(path):
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "ffn"
    assert main(["-q", "compile", "--size", "tiny", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_report_in_chromium(compiled):
    out, report = compiled
    with Page() as page:
        page.open(out / "report.html")
        for key in SECTIONS:
            visible = page.evaluate(f"({VISIBLE})({json.dumps(key)})")
            assert visible is (True if key not in OPTIONAL or key in report else None), key  # a compile reports `resources`
        nodes = page.evaluate("Array.from(document.querySelectorAll('#graph-svg g.node')).map(n => n.id)")
        # every process of the timing graph is drawn: a converter as its filling and draining tasks
        assert {n.removeprefix("node:") for n in nodes} == _graph_nodes(report)
        assert len(nodes) == len(set(nodes))
        # a click on a node shows its timed-simulation figures
        shown = page.evaluate("""(() => { const n = document.getElementById('node:fc_down');
            n.dispatchEvent(new MouseEvent('click', {bubbles: true}));
            return document.getElementById('details').innerText; })()""")
        assert "fc_down" in shown and "busy cycles" in shown and "stalled on input" in shown
        # a click on the depth header sorts the FIFO table, a second click reverses it
        depths = """(() => { const th = Array.from(document.querySelectorAll('#fifo-table th')).find(h => h.textContent === 'depth');
            th.click(); const col = th.cellIndex;
            return Array.from(document.querySelectorAll('#fifo-table tbody tr')).map(r => Number(r.cells[col].dataset.v)); })()"""
        ascending, descending = page.evaluate(depths), page.evaluate(depths)
        assert ascending == sorted(s["depth"] for s in report["streams"]) and descending == ascending[::-1]
        bars = page.evaluate("document.querySelectorAll('#gantt svg path, #gantt svg rect').length")
        assert bars > len(report["streams"])
        # the critical path's segments, in order, within the makespan
        spans = page.evaluate("""Array.from(document.querySelectorAll('#critical-path tbody tr'))
            .map(r => [Number(r.cells[1].dataset.v), Number(r.cells[2].dataset.v)])""")
        assert spans and all(a <= b <= c for (a, b), (c, _) in zip(spans, spans[1:]))
        assert spans[-1][1] <= report["fifo_sizing"]["makespan"]
        assert page.console_errors() == []
        shot = page.screenshot(out / "report.png")
    width, height = _png_size(shot)
    assert width == 1400 and height > 2000


def _graph_nodes(report):
    return {s["producer"] for s in report["streams"]} | {s["consumer"] for s in report["streams"]}


def test_optional_sections_appear_with_their_figures(tmp_path):
    design = sd.compile(P.elementwise_chain(2, 64, 32).program)
    report = {
        "model": "chain", **design.report(),
        "roofline": {"peak_gflops": 460.0, "hbm_gbps": 460.0, "points": [{"name": "chain", "intensity": 0.25, "gflops": 80.0}]},
        "resources": {"slrs": [{"name": f"SLR{i}", "LUT": 1000 * (i + 1), "DSP": 10} for i in range(3)],
                      "available": {"LUT": 434000, "DSP": 3008}},
        "build": {"executor": "local process pool", "jobs": [
            {"name": "csim-sequential", "kind": "csim", "ok": True, "seconds": 1.5, "result": {"max_abs_vs_simulator": {"y": 0.0}}},
            {"name": "csim-threaded", "kind": "csim", "ok": False, "seconds": 0.2, "result": None}]},
    }
    page_html = report_html(report, design)
    (tmp_path / "report.html").write_text(page_html)
    assert "SLR2" in page_html and "0%" in page_html and "FAILED" in page_html
    with Page() as page:
        page.open(tmp_path / "report.html")
        for key in OPTIONAL:
            assert page.evaluate(f"({VISIBLE})({json.dumps(key)})") is True, key
        assert page.console_errors() == []


def test_a_deadlocked_run_is_shown(tmp_path):
    design = sd.compile(P.diamond(2, 64, 16).program)
    stuck = design.timed_simulation(dict.fromkeys(design.depths, 1))
    assert stuck.deadlock is not None
    page_html = report_html({"model": "diamond", **design.report()}, design, stuck)
    assert "deadlock" in page_html and 'class="bad"' in page_html


def test_jupyter_summaries_show_figures_and_the_coloured_graph(compiled):
    design = sd.compile(P.diamond(2, 64, 16).program)
    shown = design._repr_html_()
    makespan = design.timed_simulation().makespan
    assert f"{makespan:,} cycles" in shown and "<svg" in shown and shown.count('class="node"') == len(design.graph.tasks)
    busiest = share_colour(1.0)
    assert share_colour(0.0) != busiest and all(share_colour(x).startswith("#") for x in (0.25, 0.5, 0.75))
    out, report = compiled
    from toolchain.driver import compile_example
    from toolchain.examples import EXAMPLES

    result = compile_example(EXAMPLES["ffn-block"](128, 512, 32), out.parent / "again")
    shown = result._repr_html_()
    assert "FIFO memory" in shown and "<svg" in shown and f"{report['timed_simulation']['makespan_cycles']:,} cycles" in shown
