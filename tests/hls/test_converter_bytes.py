"""report.json's converter bytes are what the emitted C++ allocates: one bank where a converter
has a single slab (shared_loops = 0), two ping-pong banks otherwise."""

from __future__ import annotations

import re

import pytest
from dsl import polybench as PB

import streamdsl as sd
from hls_backend import emit_project
from streamdsl.dtypes import TENSOR_DTYPES

from .cases import CASES, planned

PROGRAMS = {**CASES, **{f"polybench_{name}": (lambda name=name: planned(PB.cases(32, 8)[name])) for name in ("3mm", "gemver", "atax")}}
BANK = re.compile(r"static (\w+) bank\[(\d+)\]\[(\d+)\];")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_report_converter_bytes_equal_the_emitted_allocation(name: str, tmp_path) -> None:  # noqa: ANN001
    design = sd.compile(PROGRAMS[name]().program)
    cpp = (emit_project(design, tmp_path / "p") / "kernel.cpp").read_text()
    sizes = {d.cpp: max(1, d.bits // 8) for d in TENSOR_DTYPES.values()}
    emitted = [sizes[c] * int(banks) * int(n) for c, banks, n in BANK.findall(cpp)]
    reported = [row["bytes"] for row in design.report()["converters"]]  # report.json's converters
    assert sorted(emitted) == sorted(reported)
