"""The emitted C++ asks Vitis for full-rate data movers: every innermost loop of a DMA, fork,
router or converter is pipelined at II=1 (one element per cycle), read off the kernel text."""

from __future__ import annotations

import re

import pytest

import streamdsl as sd
from hls_backend import emit_kernel

from .cases import CASES

FUNCTION = re.compile(r"^static void (\w+)\(")


def innermost_loops(code: str) -> list[tuple[str, str, str]]:
    """(function, loop header, first line of its body) of every loop with no loop inside."""
    lines = code.splitlines()
    indent = [len(line) - len(line.lstrip()) for line in lines]
    out, function = [], ""
    for i, line in enumerate(lines):
        if m := FUNCTION.match(line):
            function = m.group(1)
        if not line.lstrip().startswith("for ("):
            continue
        end = next(j for j in range(i + 1, len(lines)) if indent[j] <= indent[i] and lines[j].strip())
        if not any(lines[j].lstrip().startswith("for (") for j in range(i + 1, end)):
            out.append((function, line.strip(), lines[i + 1].strip()))
    return out


@pytest.mark.parametrize(
    "name", ["regrid_planned", "transpose_planned", "held_regrid_planned", "fork_join", "ffn_block", "tutorial03_attention"])
def test_every_data_mover_loop_is_pipelined_at_ii_1(name: str) -> None:
    code = emit_kernel(sd.compile(CASES[name]().program)).code
    movers = [loop for loop in innermost_loops(code) if not loop[0].startswith("task_")]
    kinds = {function.split("_")[0] for function, _, _ in movers}
    assert "dma" in kinds and ("converter" in kinds or not name.endswith("_planned")), kinds
    for function, header, first in movers:
        if function.startswith("dma_") and header.startswith("for (int l = 0;"):
            continue  # the lanes of one 512-bit word, unrolled inside the pipelined loop over words (below)
        assert first == "#pragma HLS pipeline II=1", f"{function}: `{header}` starts with `{first}`"
    dmas = len(re.findall(r"^static void dma_", code, re.M))
    words = re.findall(r"for \(int i = 0; i < \d+; \+\+i\) \{  // word i of the burst[^\n]*\n#pragma HLS pipeline II=1\n", code)
    assert len(words) == dmas, "every DMA is one loop over its words, pipelined at II=1"
