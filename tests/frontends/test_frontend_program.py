"""The imported program object: IR validity and round trip, named weights (not inlined), constant
folding, argument order and attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xdsl.context import Context
from xdsl.parser import Parser

from frontends import from_torch, hf
from streamdsl.dtypes import f32, i64


@pytest.fixture(scope="module")
def llama_decode(zoo):
    model = zoo("llama")
    module, inputs = hf.decode_step(model, 6)
    return model, from_torch(module, *inputs)


def _context() -> Context:
    from toolchain.opt import StreamdslOptMain

    return StreamdslOptMain(args=[]).ctx


def test_module_verifies_and_round_trips(llama_decode):
    _, prog = llama_decode
    prog.module.verify()
    text = str(prog.module)
    parsed = Parser(_context(), text).parse_module()
    parsed.verify()
    assert str(parsed) == text


def test_weights_are_named_arguments_not_constants(llama_decode):
    model, prog = llama_decode
    text = str(prog.module)
    assert "dense<" not in text  # nothing is inlined
    params = {f"model.{k}": v for k, v in model.named_parameters()}
    named = {k for k, kind in prog.param_kinds.items() if kind == "parameter"}
    assert named == set(params)
    for name in named:  # the very tensors of the model (zero-copy views)
        assert np.shares_memory(prog.params[name], params[name].detach().numpy())
    # Arguments: runtime inputs first, then parameters, each with its torch name and kind.
    attrs = [(d.data["torch.name"].data, d.data["torch.kind"].data) for d in prog.func.arg_attrs]
    kinds = [k for _, k in attrs]
    assert kinds == sorted(kinds, key=lambda k: k != "input")
    assert [n for n, k in attrs if k == "input"] == [s.name for s in prog.inputs]
    assert [n for n, k in attrs if k != "input"] == list(prog.params)


def test_input_independent_subgraphs_are_folded(llama_decode):
    """Masks and RoPE tables depend on no input: no trig, compare or iota is left in the IR; the
    tables are named constant arguments."""
    _, prog = llama_decode
    text = str(prog.module)
    for op in ("math.cos", "math.sin", "arith.cmpi", "arith.sitofp"):
        assert op not in text, op
    folded = [k for k, kind in prog.param_kinds.items() if kind == "constant"]
    assert folded and all(k.startswith("folded.") for k in folded)
    shapes = {prog.params[k].shape for k in folded}
    assert (1, 1, 1, 16) in shapes  # cos/sin for the one new position, head_dim 16


def test_program_output_specs(llama_decode):
    model, prog = llama_decode
    assert prog.outputs[0].shape == (1, 1, 256) and prog.outputs[0].dtype is f32
    assert [s.shape for s in prog.outputs[1:]] == [(1, 2, 7, 16)] * 4
    assert prog.inputs[0].dtype is i64 and prog.inputs[0].name == "input_ids"


def test_timings_are_recorded(llama_decode):
    _, prog = llama_decode
    assert set(prog.timings) == {"export", "decompose", "import"}
    assert all(t > 0 for t in prog.timings.values())


def test_repr_is_a_summary(llama_decode):
    _, prog = llama_decode
    assert repr(prog).startswith("<ImportedProgram @forward: 5 inputs, ")
    assert len(repr(prog)) < 200


def test_dump_cli(capsys):
    from frontends.dump import main

    assert main(["cat", "gpt2-tiny-decode"]) == 0
    out = capsys.readouterr().out
    assert out.count("func.func @forward") == 2
    assert '%past_key.0: tensor<1x4x4x16xf32> {torch.name = "past_key_0", torch.kind = "input"}' in out
    assert 'torch.name = "model.lm_head.weight", torch.kind = "parameter"' in out  # tied: once
    assert main(["nonsense"]) == 2
    assert "unknown case(s) nonsense" in capsys.readouterr().err


def test_example_inputs_sharing_memory_stay_separate_inputs():
    """torch.export merges example inputs that share memory into one placeholder; the importer
    copies such inputs so that the program still reads each input on its own."""

    class AddTwice(torch.nn.Module):
        def forward(self, a, b):
            return a * 2 + b

    t = torch.ones(3)
    prog = from_torch(AddTwice(), t, t)
    (out,) = prog.reference(np.ones(3, np.float32), np.zeros(3, np.float32))
    np.testing.assert_array_equal(out, np.full(3, 2.0, np.float32))
