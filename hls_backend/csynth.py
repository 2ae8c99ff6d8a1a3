"""Vitis HLS synthesis of one task, and reading back its csynth report.

`csynth_script(manifest, task)` is the Tcl that synthesizes one dataflow process of an emitted
project on its own (`vitis_hls -f`), so the tasks of a design synthesize in parallel.
`parse_csynth_xml(path)` reads the `csynth.xml` Vitis writes under `<solution>/syn/report/`:

    <profile>
      <UserAssignments> Part, TopModelName, TargetClockPeriod (ns) </UserAssignments>
      <PerformanceEstimates>
        <SummaryOfTimingAnalysis> EstimatedClockPeriod (ns) </SummaryOfTimingAnalysis>
        <SummaryOfOverallLatency> Best-/Average-/Worst-caseLatency (cycles), Interval-min/-max </...>
      </PerformanceEstimates>
      <AreaEstimates> <Resources> BRAM_18K DSP FF LUT URAM </Resources> <AvailableResources/> </AreaEstimates>
    </profile>

Latencies of loops with unknown trip counts are written `undef`; they read back as None.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["CSYNTH_PART", "CsynthReportError", "csynth_script", "parse_csynth_xml"]

CSYNTH_PART = "xcu55c-fsvh2892-2L-e"  # the Alveo U55C's device
RESOURCES = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")


class CsynthReportError(ValueError):
    """A csynth.xml that is not one (names the file and the missing element)."""


def csynth_script(top: str, clock_mhz: int = 300, part: str = CSYNTH_PART) -> str:
    """Tcl for `vitis_hls -f`: synthesize function `top` of kernel.cpp into ./<top>/solution."""
    return "\n".join([
        f"open_project -reset {top}",
        f"set_top {top}",
        'add_files kernel.cpp -cflags "-std=c++14 -I."',
        "open_solution -reset solution -flow_target vitis",
        f"set_part {{{part}}}",
        f"create_clock -period {clock_mhz}MHz -name default",
        "csynth_design",
        "exit",
        "",
    ])


def _number(node: ET.Element | None) -> float | int | None:
    if node is None or node.text is None or node.text.strip() in ("", "undef", "-"):
        return None
    text = node.text.strip()
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _required(root: ET.Element, path: str, source: Path) -> ET.Element:
    node = root.find(path)
    if node is None:
        raise CsynthReportError(f"{source}: not a Vitis csynth report, it has no <{path}>")
    return node


def parse_csynth_xml(path: Path | str) -> dict[str, Any]:
    """The figures report.json keeps for one synthesized module: clock, latency and interval in
    cycles (None where Vitis writes undef), resources used and available."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise CsynthReportError(f"{path}: not well-formed XML ({err})") from None
    user = _required(root, "UserAssignments", path)
    perf = _required(root, "PerformanceEstimates", path)
    latency = _required(perf, "SummaryOfOverallLatency", path)
    area = _required(root, "AreaEstimates/Resources", path)
    available = root.find("AreaEstimates/AvailableResources")
    return {
        "top": (user.findtext("TopModelName") or "").strip(),
        "part": (user.findtext("Part") or "").strip(),
        "target_clock_ns": _number(user.find("TargetClockPeriod")),
        "estimated_clock_ns": _number(perf.find("SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        "latency_cycles": {k: _number(latency.find(f"{k.capitalize()}-caseLatency")) for k in ("best", "average", "worst")},
        "interval_cycles": {k: _number(latency.find(f"Interval-{k}")) for k in ("min", "max")},
        "resources": {k: _number(area.find(k)) or 0 for k in RESOURCES},
        "available": {k: _number(available.find(k)) for k in RESOURCES} if available is not None else {},
    }
