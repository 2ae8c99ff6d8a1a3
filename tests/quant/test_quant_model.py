"""Quantized models through the whole stack: `frontends.quant.quantize_model` imports linear
layers in their integer form, the lowering carries the i4/i8/i32/f16 types, and the functional
simulator is bit-exact on the integers (against `streamdsl.quant`) and agrees with the
fake-quantized PyTorch model (the reference) on the floats and on generated tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import streamdsl as sd
from frontends import from_torch, hf
from frontends.block import DecoderBlock, import_block
from frontends.host import Generator, torch_generate
from frontends.quant import FakeQuantLinear, QuantLinear, fake_quantize, quantize_model
from lowering.pipeline import lower
from streamdsl import quant
from toolchain.models import DesignRunner, model_block, run_block

SCHEMES = {"w4a8": quant.scheme("w4a8", 32), "w8a8": quant.scheme("w8a8"), "w4a8-128": quant.scheme("w4a8")}


class IntegerPart(torch.nn.Module):
    """A quantized layer's int32 group sums and per-token scales, as outputs."""

    def __init__(self, layer: QuantLinear):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer.integer_part(x)


def extreme_weight(n: int, k: int, sch: quant.Scheme, rng: np.random.Generator) -> quant.QuantizedWeight:
    """A stored weight over the whole two's complement range (-8 / -128 included, which the
    quantizer never produces but the format and the integer matmul accept)."""
    lo, hi = -(1 << (sch.weight_bits - 1)), (1 << (sch.weight_bits - 1)) - 1
    values = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    values[0, :] = lo
    values[-1, :] = hi
    group = sch.group_size(k)
    scales = rng.uniform(1e-3, 1e-1, (n, k // group)).astype(np.float16)
    return quant.QuantizedWeight(values, scales, sch.weight_bits, group)


def lowered_design(module: torch.nn.Module, *args: np.ndarray):
    prog = from_torch(module, *[torch.from_numpy(a) for a in args])
    return prog, sd.compile(lower(prog).program)


@pytest.mark.parametrize(("scheme", "m", "k", "n"), [("w4a8", 1, 128, 96), ("w4a8-128", 3, 256, 64),
                                                     ("w8a8", 2, 192, 48)])
def test_quantized_linear_lowers_bit_exact(scheme: str, m: int, k: int, n: int) -> None:
    sch = SCHEMES[scheme]
    rng = np.random.default_rng(k + n)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10, (m, 1))).astype(np.float32)
    if m > 2:
        x[1] = 0.0  # a zero token: scale 0, all-zero integers
    bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
    for qw in (quant.quantize_weight((rng.standard_normal((n, k)) * 0.05).astype(np.float32), sch),
               extreme_weight(n, k, sch, rng)):
        layer = QuantLinear(qw, bias)
        prog, design = lowered_design(layer, x)
        weight, scales = (a.type for a in prog.module.ops.first.body.block.args[1:3])
        assert (str(weight.element_type), str(scales.element_type)) == (f"i{sch.weight_bits}", "f16")
        # floats: the hardware's order of docs/quantization.md, bit for bit
        np.testing.assert_array_equal(design.simulate(x), quant.linear(x, qw, bias.numpy()))
        # integers: the int32 group sums and the scales, bit for bit
        _, int_design = lowered_design(IntegerPart(layer), x)
        acc, s = int_design.simulate(x)
        xq, want_s = quant.quantize_activations(x)
        assert acc.dtype == np.int32
        np.testing.assert_array_equal(acc, quant.int_matmul(xq, qw.values, qw.group))
        np.testing.assert_array_equal(s, want_s)
        # the fake-quantized reference multiplies in the hardware's order: the same bits
        with torch.no_grad():
            np.testing.assert_array_equal(design.simulate(x), FakeQuantLinear(qw, bias)(torch.from_numpy(x)).numpy())


def test_integer_parameters_narrow_the_weight_stream() -> None:
    """An int4 weight moves in an eighth of the float32 bits (the timing model's DMA tokens), a
    tile of one group at a time (tile-quant-groups): 64 x 64 weights like float32's, int32 sums
    streamed group by group into the group sum without a converter."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((64, 512)) * 0.05).astype(np.float32)
    x = rng.standard_normal((1, 512)).astype(np.float32)
    bits, tiles = {}, {}
    for name, sch in (("w4a8", SCHEMES["w4a8-128"]), ("w8a8", SCHEMES["w8a8"])):
        _, design = lowered_design(QuantLinear(quant.quantize_weight(w, sch), None), x)
        weights = [s for s in design.streams if s.name.startswith("dma_load(p_weight)")]
        bits[name] = sum(s.tokens * s.token_bits for s in weights)
        tiles[name] = {s.token_bits for s in weights}
        # the group sum reads the integer matmul's stream directly: 64 int32 sums a token, a group each
        sums = [s for s in design.streams if s.consumer == next(t.consumer for t in design.streams if "p_scales" in t.name)
                and "p_scales" not in s.name]
        assert [(s.producer.endswith("_reduce"), s.token_bits, s.tokens) for s in sums] == [(True, 64 * 32, 512 // sch.group_size(512))]
    _, design = lowered_design(torch.nn.Linear(512, 64, bias=False), x)
    bits["float32"] = sum(s.tokens * s.token_bits for s in design.streams if s.name.startswith("dma_load(p_weight)"))
    assert bits == {"float32": 64 * 512 * 32, "w8a8": 64 * 512 * 8, "w4a8": 64 * 512 * 4}
    assert tiles == {"w4a8": {64 * 64 * 4}, "w8a8": {64 * 64 * 8}}


def test_layers_reading_one_tensor_share_its_quantization() -> None:
    """q, k and v (and gate and up) read one tensor: the imported block quantizes it once (4
    activation quantizations in a Llama layer: q/k/v, o, gate/up, down), and an in-place change of
    a tensor quantizes it again."""
    block = import_block(quantize_model(hf.build("llama", "tiny"), SCHEMES["w4a8"]), seq_len=1, max_context=8)
    assert sum(op.name == "math.roundeven" for op in block.program.module.walk()) == 4
    rng = np.random.default_rng(3)
    a, b = (QuantLinear(quant.quantize_weight(rng.standard_normal((16, 64)).astype(np.float32), SCHEMES["w4a8"]), None)
            for _ in range(2))
    x = torch.from_numpy(rng.standard_normal((2, 64)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_array_equal(a(x).numpy(), quant.linear(x.numpy(), a.quantized))
        x.mul_(3)  # the same tensor object, changed in place
        np.testing.assert_array_equal(b(x).numpy(), quant.linear(x.numpy(), b.quantized))


BLOCK_CASES = [("llama", "w4a8"), ("gpt2", "w8a8")]
SLOW_BLOCK_CASES = [(f, s) for f in hf.FAMILIES for s in ("w4a8", "w8a8") if (f, s) not in BLOCK_CASES]


@pytest.mark.parametrize(("family", "scheme"), BLOCK_CASES + [pytest.param(*c, marks=pytest.mark.slow) for c in SLOW_BLOCK_CASES])
def test_block_design_equals_the_integer_form(family: str, scheme: str) -> None:
    """The decode block of `frontends.block` at tiny size, imported from the quantized model and
    lowered to one design: the simulator equals the block's integer form in PyTorch and is within
    1e-5 of the fake-quantized block (the reference), at a full and a partial cache."""
    sch = SCHEMES[scheme]
    mb = model_block(family, "tiny", 8, 64, quant=sch)
    design = sd.compile(mb.lowered.program)
    integer = DecoderBlock(quantize_model(mb.model, sch), 0, 1, 8, mb.block.windowed).eval()
    names = mb.lowered.program.input_names
    for args in (mb.example.make_inputs(3), mb.example.make_inputs(4)):
        named = dict(zip(names, args))
        if "cache_len" in named:
            named["cache_len"] = np.asarray(5, named["cache_len"].dtype)  # 5 of the 8 rows hold tokens
        args = [named[n] for n in names]
        got = design.simulate(*args)
        want = run_block(integer, mb.block, names, args)
        ref = mb.example.reference(*args)
        for g, w, r in zip(got, want, ref, strict=True):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6 * float(np.abs(w).max()))
            assert float(np.abs(g - r).max()) <= 1e-5 * float(np.abs(r).max())


# int4 at small size: w4a8's own groups of 128 (hidden 768, FFN 3072)
SMALL_SCHEMES = {"w4a8": quant.scheme("w4a8"), "w8a8": quant.scheme("w8a8")}


def assert_same_generation(ours, want, logit_tolerance: float) -> None:  # noqa: ANN001
    """Step by step, logits within `logit_tolerance` of the reference's largest and the same token;
    the two may part only at a near tie, where our token's reference logit is within the tolerance
    of the reference's best (float32 rounding outside the bit-exact linear layers can move an int8
    activation a step, and such a tie then flips; the texts after it are not comparable)."""
    assert len(ours.tokens) == len(want.tokens)
    for step, (got, ref, token, expected) in enumerate(zip(ours.logits, want.logits, ours.tokens, want.tokens, strict=True)):
        scale = float(np.abs(ref).max())
        assert float(np.abs(got - ref).max()) <= logit_tolerance * scale, f"step {step}: logits"
        if token != expected:
            ref = np.asarray(ref).reshape(-1)
            assert ref[expected] - ref[token] <= logit_tolerance * scale, f"step {step}: {token} instead of {expected}, not a tie"
            return


def _small(family: str, scheme: str):
    return pytest.param(family, "small", scheme, marks=pytest.mark.slow)


@pytest.mark.parametrize(("family", "scheme"), [(f, s) for f in hf.FAMILIES for s in ("w4a8", "w8a8")])
def test_quantized_generation_through_the_imported_blocks(family: str, scheme: str) -> None:
    """16 tokens after an 8-token prompt: the host loop over the imported quantized block designs
    (prefill and decode, interpreted) and the quantized LM head equal the fake-quantized model's
    `generate` (2 layers). At small size the compiled designs are checked instead (below)."""
    model = hf.lively(hf.build(family, "tiny", num_layers=2))
    prompt = torch.randint(0, model.config.vocab_size, (8,), generator=torch.Generator().manual_seed(2)).tolist()
    ours = Generator(quantize_model(model, SCHEMES[scheme]), max_context=32).generate(prompt, 16)
    assert_same_generation(ours, torch_generate(fake_quantize(model, SCHEMES[scheme]), prompt, 16), 1e-4)


GENERATION_CASES = [("llama", "tiny", "w4a8"), ("gpt2", "tiny", "w8a8")]


SMALL_GENERATION_CASES = [(f, ("w8a8", "w4a8")[i % 2]) for i, f in enumerate(hf.FAMILIES)]  # at small the schemes in turn


@pytest.mark.parametrize(("family", "size", "scheme"), GENERATION_CASES + [
    pytest.param(f, "tiny", s, marks=pytest.mark.slow) for f, s in SLOW_BLOCK_CASES
    if (f, "tiny", s) not in GENERATION_CASES and (f, s) not in SMALL_GENERATION_CASES]
    + [_small(f, s) for f, s in SMALL_GENERATION_CASES])  # every pair once: at small, else at tiny
def test_quantized_generation_through_compiled_designs(family: str, size: str, scheme: str) -> None:
    """16 tokens after an 8-token prompt through the compiled quantized designs (prefill and decode,
    one each, lowered and FIFO-sized) in the functional simulator, with the quantized head on the
    host: the fake-quantized model's tokens (small: 2 layers, w4a8's own groups of 128)."""
    model = hf.lively(hf.build(family, size, num_layers=2)) if size == "small" else hf.lively(hf.build(family, size))
    sch = (SCHEMES if size == "tiny" else SMALL_SCHEMES)[scheme]
    prompt = torch.randint(0, model.config.vocab_size, (8,), generator=torch.Generator().manual_seed(4)).tolist()
    runner = DesignRunner()
    ours = Generator(quantize_model(model, sch), max_context=32, block_runner=runner).generate(prompt, 16)
    want = torch_generate(fake_quantize(model, sch), prompt, 16)
    assert len(runner.designs) == 2  # one prefill and one decode design serve every step
    # The linear layers are bit-identical to the reference's. Measured at small: logits within
    # 2.5e-7 of max, except where float32 rounding outside them (norms, softmax: numpy's order vs
    # PyTorch's) moved one int8 step of an activation: 2.4e-2 for gpt2 w8a8, 2.9e-2 for llama w8a8.
    assert_same_generation(ours, want, 2e-2 if size == "tiny" else 5e-2)
