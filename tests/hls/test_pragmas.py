"""The emitted C++ asks Vitis for full-rate data movers: a DMA, fork, router or converter is one
loop over beats pipelined at an explicit II with its lanes unrolled, read off the kernel text."""

from __future__ import annotations

import re

import pytest

import streamdsl as sd
from hls_backend import emit_kernel

from .cases import CASES

FUNCTION = re.compile(r"^static void (\w+)\(")


def loops(code: str) -> list[tuple[str, str, str, bool]]:
    """(function, loop header, first line of its body, whether it sits in another loop) of every loop."""
    lines = code.splitlines()
    out, function, depth = [], "", []
    for i, line in enumerate(lines):
        if m := FUNCTION.match(line):
            function, depth = m.group(1), []
        indent = len(line) - len(line.lstrip())
        while depth and indent <= depth[-1] and line.strip():
            depth.pop()
        if line.lstrip().startswith("for ("):
            out.append((function, line.strip(), lines[i + 1].strip(), bool(depth)))
            depth.append(indent)
    return out


@pytest.mark.parametrize(
    "name", ["regrid_planned", "transpose_planned", "held_regrid_planned", "fork_join", "ffn_block", "tutorial03_attention"])
def test_every_data_mover_is_one_pipelined_loop_over_beats(name: str) -> None:
    """A DMA, fork, router or converter is one loop pipelined at an explicit II (1, or for a DMA
    its share of an HBM pseudo-channel per 1,024-bit beat) with its lanes unrolled inside."""
    code = emit_kernel(sd.compile(CASES[name]().program)).code
    movers = [loop for loop in loops(code) if not loop[0].startswith("task_")]
    kinds = {function.split("_")[0] for function, *_ in movers}
    assert "dma" in kinds and ("converter" in kinds or not name.endswith("_planned")), kinds
    for function, header, first, nested in movers:
        if nested:
            assert first == "#pragma HLS unroll", f"{function}: `{header}` starts with `{first}`"
        else:
            want = r"#pragma HLS pipeline II=(\d+)  // depth \d+"
            assert (m := re.fullmatch(want, first)), f"{function}: `{header}` starts with `{first}`"
            assert m[1] == "1" or function.startswith("dma_"), f"{function}: II={m[1]}"
