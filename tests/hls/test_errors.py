"""Error paths: each error names the culprit and says what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import ModuleOp, f32, i32
from xdsl.rewriter import Rewriter

import streamdsl as sd
from hls_backend import CsimError, HlsEmitError, emit_kernel, emit_project, run_csim

from .cases import CASES


@pytest.fixture(scope="module")
def chain() -> sd.Design:
    return sd.compile(CASES["elementwise_chain"]().program)


def test_unknown_depth_name_lists_the_streams(chain: sd.Design) -> None:
    with pytest.raises(HlsEmitError, match=r"no stream named 'x->y'; the streams are .*scale_shift->activate"):
        emit_kernel(chain, depths={"x->y": 3})


def test_unsupported_op_is_named(chain: sd.Design) -> None:
    module = chain.module.clone()
    tanh = next(op for op in module.walk() if op.name == "math.tanh")
    bits = arith.BitcastOp(tanh.operands[0], i32)
    count = math.CtPopOp(bits.result)
    Rewriter.replace_op(tanh, [bits, count, arith.BitcastOp(count.result, f32)])
    with pytest.raises(HlsEmitError, match=r"task activate: the HLS backend does not translate `math.ctpop`"):
        emit_kernel(module)


def test_module_without_a_kernel() -> None:
    with pytest.raises(HlsEmitError, match="exactly one dataflow.kernel"):
        emit_kernel(ModuleOp([]))
    with pytest.raises(TypeError, match="expected a Design"):
        emit_kernel(42)


def test_run_csim_checks_its_inputs(chain: sd.Design, tmp_path: Path) -> None:
    project = emit_project(chain, tmp_path / "p")
    with pytest.raises(ValueError, match=r"input x has shape \(3, 64\), expected \(2, 64\)"):
        run_csim(project, np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match="takes 1 inputs"):
        run_csim(project)


def test_compile_errors_carry_the_compiler_output(chain: sd.Design, tmp_path: Path) -> None:
    project = emit_project(chain, tmp_path / "p")
    kernel = project / "kernel.cpp"
    code, n = kernel.read_text().replace("out.write(beat);", "out.write(beat)"), kernel.read_text().count("out.write(beat);")
    assert n >= 1, "the DMA's stream write was not found in the emitted code"
    kernel.write_text(code)
    with pytest.raises(CsimError, match=r"(?s)g\+\+ failed.*out.write\(beat\)\n"):
        run_csim(project, np.zeros((2, 64), np.float32))


def test_depth_must_be_positive(chain: sd.Design) -> None:
    with pytest.raises(HlsEmitError, match="stream scale_shift->activate: depth must be >= 1, got 0"):
        emit_kernel(chain, depths={"scale_shift->activate": 0})


def test_a_stream_with_two_readers_is_refused() -> None:
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func
    from xdsl.parser import Parser

    from streamdsl.dialects.dataflow import DATAFLOW

    t = "!dataflow.itensor<1x64xf32, [4] * [64], (d0) -> (0, d0)>"
    text = f"""
func.func @f(%x: tensor<1x256xf32>) -> (tensor<1x256xf32>, tensor<1x256xf32>) {{
  %y, %z = dataflow.kernel "k"(%x) : (tensor<1x256xf32>) -> (tensor<1x256xf32>, tensor<1x256xf32>) {{
  ^bb0(%xa: tensor<1x256xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x256xf32> -> {t}
    %s1 = dataflow.dma_store %xs : {t} -> tensor<1x256xf32>
    %s2 = dataflow.dma_store %xs : {t} -> tensor<1x256xf32>
    dataflow.yield %s1, %s2 : tensor<1x256xf32>, tensor<1x256xf32>
  }}
  func.return %y, %z : tensor<1x256xf32>, tensor<1x256xf32>
}}"""
    ctx = Context()
    for dialect in (Builtin, Func, DATAFLOW):
        ctx.load_dialect(dialect)
    module = Parser(ctx, text).parse_module()
    with pytest.raises(HlsEmitError, match=r"kernel @k: stream %xs is read by dma_store\(xs\) and dma_store\(xs\)#2; fork it first"):
        emit_kernel(module)
