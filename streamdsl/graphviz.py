"""Draw a `dataflow.kernel` as a graphviz graph: tasks, DMAs, forks and converters as nodes,
streams as edges labelled with their token count and FIFO depth."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from xdsl.ir import Operation, SSAValue

from streamdsl.dialects.dataflow import (
    DmaLoadOp,
    DmaStoreOp,
    ITensorConverterOp,
    ITensorEmptyOp,
    ITensorType,
    KernelOp,
    TaskOp,
    YieldOp,
)

__all__ = ["kernel_to_dot", "render"]

_STYLE: dict[type[Operation], str] = {
    TaskOp: 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    DmaLoadOp: 'shape=cds, style=filled, fillcolor="#fde2c8"',
    DmaStoreOp: 'shape=cds, style=filled, fillcolor="#fde2c8"',
    ITensorConverterOp: 'shape=box3d, style=filled, fillcolor="#f6d5d5"',
}


def _label(op: Operation) -> str:
    if isinstance(op, TaskOp):
        return op.sym_name.data
    if isinstance(op, ITensorConverterOp) and op.buffer_shape is not None:
        return f"converter\\nbuffer {list(op.buffer_shape.get_values())}"
    return op.name.removeprefix("dataflow.")


def _stream_label(value: SSAValue, depths: Mapping[str, int]) -> str:
    assert isinstance(value.type, ITensorType)
    it = value.type.itensor
    name = value.name_hint or ""
    tile = "x".join(map(str, it.tile))
    depth = f", depth {depths[name]}" if name in depths else ""
    return f"{name}\\n{it.num_tokens} x {tile}{depth}"


def kernel_to_dot(kernel: KernelOp, depths: Mapping[str, int] | None = None) -> str:
    """The graphviz source of one kernel; `depths` maps stream names to FIFO depths."""
    depths = depths or {}
    ids: dict[Operation, str] = {}
    lines = [f'digraph "{kernel.sym_name.data}" {{', "  rankdir=LR; node [fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];"]
    for op in kernel.body.block.ops:
        if isinstance(op, ITensorEmptyOp | YieldOp):
            continue
        ids[op] = f"n{len(ids)}"
        style = _STYLE.get(type(op), "shape=ellipse")
        lines.append(f'  {ids[op]} [label="{_label(op)}", {style}];')
    for op, node in ids.items():
        for result in op.results:
            if not isinstance(result.type, ITensorType):
                continue
            for use in result.uses:
                if use.operation in ids:
                    lines.append(f'  {node} -> {ids[use.operation]} [label="{_stream_label(result, depths)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, path: Path) -> Path | None:
    """Write `path` (.dot) and, when graphviz's `dot` is installed, `path` with .svg; returns the svg."""
    path.write_text(dot_source)
    if shutil.which("dot") is None:
        return None
    svg = path.with_suffix(".svg")
    subprocess.run(["dot", "-Tsvg", str(path), "-o", str(svg)], check=True, capture_output=True)
    return svg
