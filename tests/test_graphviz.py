"""The kernel drawing names every task and stream and shows depths where known."""

import shutil
from pathlib import Path

import pytest
from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.parser import Parser

from streamdsl.dialects.dataflow import DATAFLOW, KernelOp
from streamdsl.graphviz import kernel_to_dot, render

T = "!dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>"
U = "!dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d1, d0)>"
IR = f"""
func.func @f(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {{
  %y = dataflow.kernel "k"(%x) : (tensor<4x4xf32>) -> tensor<4x4xf32> {{
  ^bb0(%a: tensor<4x4xf32>):
    %s = dataflow.dma_load %a : tensor<4x4xf32> -> {T}
    %c = dataflow.itensor_converter %s : {T} -> {U}
    %e = dataflow.itensor_empty : {U}
    %r = dataflow.task "copy" ins(%c : {U}) outs(%e : {U}) -> {U} {{
    ^bb0(%i: {U}, %o: {U}):
      dataflow.yield %o : {U}
    }}
    %z = dataflow.dma_store %r : {U} -> tensor<4x4xf32>
    dataflow.yield %z : tensor<4x4xf32>
  }}
  func.return %y : tensor<4x4xf32>
}}
"""


@pytest.fixture
def kernel() -> KernelOp:
    ctx = Context()
    for dialect in (Builtin, Func, Arith, DATAFLOW):
        ctx.load_dialect(dialect)
    module = Parser(ctx, IR).parse_module()
    return next(op for op in module.walk() if isinstance(op, KernelOp))


def test_dot_has_every_node_and_stream(kernel):
    dot = kernel_to_dot(kernel, {"c": 3})
    for label in ('label="dma_load"', 'label="copy"', 'label="itensor_converter"', 'label="dma_store"'):
        assert label in dot
    assert dot.count(" -> ") == 3
    assert 'label="c\\n4 x 2x2, depth 3"' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
def test_render_writes_svg(kernel, tmp_path: Path):
    svg = render(kernel_to_dot(kernel), tmp_path / "k.dot")
    assert svg is not None and svg.read_text().lstrip().startswith(("<?xml", "<svg"))
