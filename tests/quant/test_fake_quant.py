"""The fake-quantized PyTorch reference (frontends.quant) against the numpy reference (streamdsl.quant)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from frontends import hf
from frontends import quant as fq
from streamdsl import quant
from streamdsl.quant import QuantError


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, max_side=50),
                  elements=st.floats(-1e4, 1e4, width=32)))
def test_torch_activation_quantization_is_bit_identical(x: np.ndarray) -> None:
    q, s = fq.quantize_activations(torch.from_numpy(x))
    want_q, want_s = quant.quantize_activations(x)
    np.testing.assert_array_equal(s.numpy(), want_s)
    np.testing.assert_array_equal(q.numpy().astype(np.int8), want_q)


@pytest.fixture(scope="module")
def llama_small() -> torch.nn.Module:
    return hf.build("llama", "small", num_layers=1)


@pytest.mark.parametrize(("family", "size", "scheme"), [("llama", "small", "w4a8"), ("gpt2", "tiny", "w8a8"),
                                                        ("qwen2", "tiny", "w8a8")])
def test_fake_quantized_layers_match_the_numpy_reference(family: str, size: str, scheme: str,
                                                         llama_small: torch.nn.Module) -> None:
    model = llama_small if (family, size) == ("llama", "small") else hf.build(family, size)
    fake = fq.fake_quantize(model, scheme)
    layers = {name: m for name, m in fake.named_modules() if isinstance(m, fq.FakeQuantLinear)}
    assert set(layers) == set(fq.linear_layers(model))  # every linear layer, the LM head included
    assert not any(isinstance(m, fq.FakeQuantLinear) for m in model.modules())  # the original is untouched
    rng = np.random.default_rng(1)
    for name, layer in list(layers.items())[:3] + list(layers.items())[-1:]:
        x = rng.standard_normal((3, layer.in_features)).astype(np.float32)
        bias = None if layer.bias is None else layer.bias.numpy()
        want = quant.linear(x, layer.quantized, bias)  # the hardware's order
        got = layer(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(want).max(), err_msg=name)
        # the integer weight is what the offline quantization of the float weight gives
        weight = dict(model.named_modules())[name]
        w = weight.weight.detach().numpy()
        w = w.T if type(weight).__name__ == "Conv1D" else w
        np.testing.assert_array_equal(layer.quantized.values, quant.quantize_weight(w, quant.scheme(scheme)).values)


def test_fake_quantized_model_runs_close_to_float(llama_small: torch.nn.Module) -> None:
    model = llama_small
    ids = torch.randint(0, 1000, (1, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(ids).logits
        errors = {s: float((fq.fake_quantize(model, s)(ids).logits - ref).abs().max()) for s in ("w8a8", "w4a8")}
    scale = float(ref.abs().max())
    assert 0 < errors["w8a8"] < errors["w4a8"] < 0.5 * scale  # coarser weights, larger error; never garbage
    assert fq.fake_quantize(model, "none") is model


def test_group_size_error_names_the_layer() -> None:
    model = hf.build("gpt2", "tiny")  # hidden 64: not a multiple of 128
    with pytest.raises(QuantError, match=r"transformer\.h\.0\.attn\.c_attn\.weight: input size 64 is not a multiple of "
                                         r"the w4a8 group size 128"):
        fq.fake_quantize(model, "w4a8")
    assert isinstance(fq.fake_quantize(model, "w8a8").transformer.h[0].attn.c_attn, fq.FakeQuantLinear)
    with pytest.raises(QuantError, match="unsupported quantization scheme 'int4'"):
        fq.fake_quantize(model, "int4")


def test_already_quantized_checkpoints_are_refused(tmp_path) -> None:  # noqa: ANN001
    from safetensors.numpy import save_file

    gptq = tmp_path / "gptq"
    gptq.mkdir()
    save_file({"model.layers.0.mlp.up_proj.qweight": np.zeros((8, 16), np.int32),
               "model.embed_tokens.weight": np.zeros((4, 4), np.float16)}, str(gptq / "model.safetensors"))
    with pytest.raises(QuantError, match=r"model.safetensors: tensor 'model.layers.0.mlp.up_proj.qweight' \(I32\) is from "
                                         r"a quantized checkpoint \(GPTQ/AWQ\)"):
        fq.check_checkpoint(gptq)
    awq = tmp_path / "awq"
    awq.mkdir()
    (awq / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "awq"}}))
    with pytest.raises(QuantError, match=r"config.json declares quantization_config \(quant_method 'awq'\)"):
        fq.check_checkpoint(awq)
    good = tmp_path / "float"
    hf.save_weights(hf.build("llama", "tiny"), good)
    fq.check_checkpoint(good)  # a float checkpoint passes


def test_weight_bytes_per_layer_at_paper_sizes() -> None:
    """W4A8 weight bytes per decoder layer are at most 0.14x of float32 (scales, norms and biases
    included) for every paper configuration; the shapes come from a model on the meta device."""
    for family in hf.FAMILIES:
        cls, cfg = hf.config(family, "paper", num_layers=2)
        with torch.device("meta"):
            model = cls(cfg)
        w4, f32 = fq.weight_bytes(model, "w4a8"), fq.weight_bytes(model, "none")
        assert set(w4) == {"layers.0", "layers.1", "other"}
        ratio = w4["layers.0"] / f32["layers.0"]
        assert 0.125 < ratio <= 0.14, (family, ratio)


def test_weight_figures_of_one_layer() -> None:
    """report.json's `weight_bytes_per_layer` (streamdsl compile MODEL): a paper layer at W4A8 is at
    most 0.14x of float32; at tiny size (hidden 64) W4A8 cannot group by 128 and says so."""
    cls, cfg = hf.config("qwen2", "paper", num_layers=1)
    with torch.device("meta"):
        layer = cls(cfg).model.layers[0]
    figures = fq.weight_figures(layer)
    assert figures["float32"] == 4 * sum(p.numel() for p in layer.parameters())
    assert figures["w4a8"] < figures["w8a8"] < figures["float32"]
    assert figures["w4a8_over_float32"] <= 0.14
    tiny = fq.weight_figures(hf.build("gpt2", "tiny").transformer.h[0])
    assert tiny["w4a8"] is None and "not a multiple of the w4a8 group size 128" in tiny["w4a8_unsupported"]
    assert tiny["w8a8"] > 0
