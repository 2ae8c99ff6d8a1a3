"""The decoder block of `frontends.block.import_block` (run-time `position`, `cache_len` and
`window`, a KV cache at the maximum context, an i1/i64 mask from an iota) lowered to ONE design:
the functional simulator against the layer in PyTorch eager at cache lengths 1, M/2 and M (rows
beyond the cache length hold garbage), every layer's weights bound by name, and the timed
simulator without deadlock or stall at those lengths."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, eager_block, program_inputs
from xdsl.context import Context
from xdsl.dialects import arith, func, linalg, tensor
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import PassFailedException

import streamdsl as sd
from frontends import hf
from frontends.block import import_block
from lowering.pipeline import lower
from lowering.transforms.form_kernels import FormKernelsPass
from lowering.transforms.integer_tensors import IntegerTensorsPass
from lowering.transforms.tile_linalg import TileLinalgPass
from streamdsl.dialects.dataflow import KernelOp
from streamdsl.scalars import ScalarError
from toolchain.models import lower_block

MAX_CONTEXT = 16
CASES = [("gpt2", "eager", 1), ("llama", "eager", 1), ("gpt2", "eager", 4),
         pytest.param(("qwen2", "eager", 1), marks=pytest.mark.slow),
         pytest.param(("gemma", "eager", 1), marks=pytest.mark.slow),
         pytest.param(("mistral", "default", 1), marks=pytest.mark.slow),
         pytest.param(("phi3", "default", 1), marks=pytest.mark.slow)]


def _id(case) -> str:
    family, attention, seq_len = case
    return f"{family}-{attention}-{'decode' if seq_len == 1 else f'prefill{seq_len}'}"


@pytest.fixture(scope="module", params=CASES, ids=lambda c: _id(c))
def compiled(request):
    family, attention, seq_len = request.param
    model = hf.build(family, "tiny", attention=attention)
    block = import_block(model, seq_len=seq_len, max_context=MAX_CONTEXT)
    lowered = lower_block(block)
    return block, lowered, sd.compile(lowered.program)


def test_one_design_with_run_time_scalars(compiled):
    block, lowered, design = compiled
    assert lowered.kernels == 1
    (kernel,) = [op for op in design.module.walk() if isinstance(op, KernelOp)]
    scalars = {name: most for name, (_, most) in kernel.scalar_args.items()}
    assert "cache_len" in scalars and scalars["cache_len"] == MAX_CONTEXT
    assert set(scalars) <= set(block.scalar_max)
    assert set(lowered.program.input_names) <= {s.name for s in block.program.inputs}


@pytest.mark.parametrize("cache_len", [1, MAX_CONTEXT // 2, MAX_CONTEXT])
def test_design_matches_the_block_at_every_cache_length(compiled, cache_len):
    block, lowered, design = compiled
    for layer in range(block.num_layers):
        inputs = block_invocation(block, layer, cache_len, seed=cache_len + 10 * layer)
        program = lowered.program
        params = {name: block.layer_params[layer][name] for name in program.params}
        got = design.simulate(*program_inputs(block, program, inputs), *params.values())
        want = eager_block(block, layer, inputs)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            assert float(np.abs(g - w).max()) <= 1e-5 * max(1.0, float(np.abs(w).max()))


@pytest.mark.parametrize("cache_len", [1, MAX_CONTEXT // 2, MAX_CONTEXT])
def test_timed_simulation_at_every_cache_length(compiled, cache_len):
    block, _, design = compiled
    assert_no_deadlock_no_stall(design, scalars={**block.scalar_max, "cache_len": cache_len, "position": cache_len})


def _context() -> Context:
    ctx = Context()
    for dialect in (Builtin, arith.Arith, func.Func, linalg.Linalg, tensor.Tensor):
        ctx.load_dialect(dialect)
    return ctx


def _scalar_program(element: str = "i64", maximum: str = "") -> ModuleOp:
    return Parser(_context(), f"""
    func.func @f(%slot: tensor<4x{element}>, %n: tensor<i32> {{torch.name = "cache_len"{maximum}}}) -> tensor<1x4xf32> {{
      %e = tensor.empty() : tensor<1x4xf32>
      %r = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> ()>,
                            affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}}
          ins(%slot, %n : tensor<4x{element}>, tensor<i32>) outs(%e : tensor<1x4xf32>) {{
      ^bb0(%a: {element}, %b: i32, %o: f32):
        %w = arith.extsi %b : i32 to {element}
        %c = arith.cmpi slt, %a, %w : {element}
        %zero = arith.constant 0.0 : f32
        %min = arith.constant -1.0e30 : f32
        %m = arith.select %c, %zero, %min : f32
        linalg.yield %m : f32
      }} -> tensor<1x4xf32>
      func.return %r : tensor<1x4xf32>
    }}""").parse_module()


def _tiled(module: ModuleOp) -> ModuleOp:
    IntegerTensorsPass().apply(Context(), module)
    TileLinalgPass().apply(Context(), module)
    return module


def test_a_scalar_input_without_a_maximum_is_named():
    with pytest.raises(PassFailedException, match=r"rank-0 argument %n \(cache_len\) is a run-time scalar; give its largest "
                                                  r"value .*scalar_max=\{'cache_len': N\}"):
        FormKernelsPass().apply(Context(), _tiled(_scalar_program()))


def test_integer_tensors_read_other_than_by_a_generic_are_refused():
    module = Parser(_context(), """
    func.func @f(%slot: tensor<4xi64>) -> tensor<2xi64> {
      %s = tensor.extract_slice %slot[0] [2] [1] : tensor<4xi64> to tensor<2xi64>
      func.return %s : tensor<2xi64>
    }""").parse_module()
    with pytest.raises(PassFailedException, match=r"%slot \(tensor<4xi64>\) is used by tensor.extract_slice; tensors of this "
                                                  "element type stream as i32"):
        IntegerTensorsPass().apply(Context(), module)


def test_an_i64_constant_beyond_i32_is_refused():
    imported = SimpleNamespace(module=_scalar_program(maximum=", scalar_max = 4 : i64"),
                               inputs=[SimpleNamespace(name="cache_len")],
                               params={"slot": np.array([0, 1, 2, 2**40])})
    with pytest.raises(ValueError, match=r"the integer tensor 'slot' holds values beyond i32"):
        lower(imported)


def test_a_cache_length_beyond_the_maximum_is_a_scalar_error(compiled):
    block, lowered, design = compiled
    inputs = program_inputs(block, lowered.program, block_invocation(block, 0, MAX_CONTEXT))
    at = lowered.program.input_names.index("cache_len")
    inputs[at] = np.asarray(MAX_CONTEXT + 1, np.int32)
    with pytest.raises(ScalarError, match=rf"scalar cache_len = {MAX_CONTEXT + 1} is outside \[0, {MAX_CONTEXT}\]"):
        design.simulate(*inputs)
