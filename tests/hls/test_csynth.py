"""csynth.xml (as Vitis HLS writes it) read back into report.json, and the per-task synthesis jobs of
`streamdsl build` driven through a stand-in `vitis_hls` that writes such a report."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from dsl import programs as P

import streamdsl as sd
from hls_backend import emit_project
from hls_backend.csynth import CsynthReportError, csynth_script, parse_csynth_xml
from toolchain.build import build, plan_jobs

STORED = Path(__file__).parent / "data" / "task_ffn_up_csynth.xml"


def test_stored_report_is_parsed():
    got = parse_csynth_xml(STORED)
    assert got["top"] == "task_ffn_up" and got["part"] == "xcu55c-fsvh2892-2L-e"
    assert got["target_clock_ns"] == pytest.approx(3.33) and got["estimated_clock_ns"] == pytest.approx(2.433)
    assert got["latency_cycles"] == {"best": 198722, "average": 198722, "worst": 198722}
    assert got["interval_cycles"] == {"min": 198723, "max": 198723}
    assert got["resources"] == {"BRAM_18K": 4, "DSP": 5, "FF": 2871, "LUT": 3402, "URAM": 0}
    assert got["available"]["URAM"] == 960


def test_undef_latency_reads_as_none(tmp_path):
    text = (STORED.read_text().replace("<Worst-caseLatency>198722", "<Worst-caseLatency>undef")
            .replace("<Interval-max>198723", "<Interval-max>undef"))
    (tmp_path / "csynth.xml").write_text(text)
    got = parse_csynth_xml(tmp_path / "csynth.xml")
    assert got["latency_cycles"]["worst"] is None and got["interval_cycles"] == {"min": 198723, "max": None}


@pytest.mark.parametrize(("text", "message"), [
    ("<profile><UserAssignments/></profile>", "no <PerformanceEstimates>"),
    ("<profile><UserAssignments>", "not well-formed"),
])
def test_not_a_csynth_report_names_the_file(tmp_path, text, message):
    path = tmp_path / "broken.xml"
    path.write_text(text)
    with pytest.raises(CsynthReportError, match=message) as err:
        parse_csynth_xml(path)
    assert str(path) in str(err.value)


FAKE_VITIS_HLS = """#!{python}
# Stands in for vitis_hls -f SCRIPT: synthesizes nothing, writes the stored report for the script's top.
import re, sys, pathlib
script = pathlib.Path(sys.argv[sys.argv.index("-f") + 1]).read_text()
top = re.search(r"^set_top (\\S+)", script, re.M).group(1)
if "{fail}" and top == "{fail}":
    print("ERROR: [HLS 200-70] Compilation errors found in " + top, file=sys.stderr)
    sys.exit(1)
report = pathlib.Path(top) / "solution" / "syn" / "report"
report.mkdir(parents=True)
text = pathlib.Path("{stored}").read_text().replace("task_ffn_up", top)
(report / "csynth.xml").write_text(text)
print("INFO: [HLS 200-111] Finished Command csynth_design")
"""


def _fake_vitis(bin_dir: Path, monkeypatch, fail: str = "") -> None:
    bin_dir.mkdir()
    exe = bin_dir / "vitis_hls"
    exe.write_text(FAKE_VITIS_HLS.format(python=sys.executable, stored=STORED, fail=fail))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_build_synthesizes_each_task_into_report_json(tmp_path, monkeypatch):
    case = P.elementwise_chain(2, 64, 32)
    emit_project(sd.compile(case.program), tmp_path / "out" / "hls")
    (tmp_path / "out" / "report.json").write_text(json.dumps({"model": "elementwise_chain"}))
    _fake_vitis(tmp_path / "bin", monkeypatch, fail="task_activate")
    jobs = plan_jobs(tmp_path / "out")
    processes = json.loads((tmp_path / "out" / "hls" / "manifest.json").read_text())["processes"]
    assert [j.name for j in jobs] == [f"csynth-{p}" for p in processes] and "task_activate" in processes
    section = build(tmp_path / "out", workers=2)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"] == "elementwise_chain" and report["build"] == section
    assert section["failed"] == ["csynth-task_activate"]
    assert "Compilation errors found in task_activate" in (tmp_path / "out" / "build" / "csynth-task_activate.log").read_text()
    assert set(section["csynth"]) == set(processes) - {"task_activate"}
    for top, figures in section["csynth"].items():
        assert figures["top"] == top and figures["latency_cycles"]["worst"] == 198722 and figures["resources"]["DSP"] == 5


def test_csynth_script_synthesizes_one_task_for_the_u55c():
    tcl = csynth_script("task_gelu")
    assert "set_top task_gelu" in tcl and "set_part {xcu55c-fsvh2892-2L-e}" in tcl and "create_clock -period 300MHz" in tcl
    assert tcl.index("add_files kernel.cpp") < tcl.index("csynth_design")
