"""`streamdsl compile MODEL --quant`: the quantized block through the main job, report.json's
quantization figures, and the bad inputs (an unsupported scheme, a group that does not divide a
layer, a group size without w4a8, --quant on a built-in program, an already-quantized checkpoint)."""

from __future__ import annotations

import json
import shutil

import pytest

from frontends import hf
from toolchain.cli import main


@pytest.fixture(scope="module")
def qwen2_w4a8_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("qwen2") / "out"
    code = main(["compile", "qwen2", "--size", "tiny", "--max-context", "8", "--quant", "--group-size", "32", "--out", str(out)])
    return code, json.loads((out / "report.json").read_text())


def test_compile_quantized_block_reports_scheme_bytes_and_both_latencies(qwen2_w4a8_report):
    code, report = qwen2_w4a8_report
    assert code == 0 and report["verification"]["passed"]
    assert report["verification"]["sim_vs_torch_max_abs"] <= 1e-5 * report["verification"]["torch_max_abs"]
    assert report["config"]["quant"] == "w4a8" and report["config"]["quant_group"] == 32
    figures = report["model_figures"]
    q = figures["quantization"]
    assert (q["scheme"], q["group"], q["weight_bits"]) == ("w4a8", 32, 4)
    weights = q["weight_bytes_per_layer"]
    assert 0.13 * weights["float32"] < weights["w4a8"] < 0.2 * weights["float32"]  # norms, biases stay float32
    assert all(0 < e < 0.5 for e in q["reference_vs_float_max_rel"].values())  # quantized (int4 at tiny: ~10%), not garbage
    assert q["float32_cycles_per_block_invocation"] > 0 and figures["cycles_per_block_invocation"] > 0
    layers = report["config"]["layers_in_model"]
    assert report["estimate"]["device_ms_per_token"] == round(figures["cycles_per_block_invocation"] * layers / 300e3, 4)
    assert q["float32_device_ms_per_token"] == round(q["float32_cycles_per_block_invocation"] * layers / 300e3, 4)
    weight = next(d for d in report["dmas"] if d["tensor"].endswith("q_proj_weight"))
    assert weight["bytes"] * 2 == weight["shape"][0] * weight["shape"][1] * weight["shape"][2]  # int4: two a byte


@pytest.mark.parametrize(("argv", "message"), [
    (["llama", "--quant", "w3a8"], "unsupported quantization scheme 'w3a8': choose one of w4a8, w8a8, none"),
    (["gpt2", "--quant", "w4a8"],
     r"transformer.h.0.attn.c_attn.weight: input size 64 is not a multiple of the w4a8 group size 128"),
    (["llama", "--quant", "w4a8", "--group-size", "48"], "input size 64 is not a multiple of the w4a8 group size 48"),
    (["llama", "--quant", "w8a8", "--group-size", "32"], "a group size applies to w4a8 only; w8a8 has one group per output"),
    (["ffn-block", "--quant", "w4a8"], "--quant, --group-size, --kv-cache and --replace apply to model families"),
])
def test_bad_quantization_arguments(argv, message, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["compile", *argv, "--size", "tiny", "--max-context", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_an_already_quantized_checkpoint_is_refused(tmp_path, capsys):
    model = hf.build("llama", "tiny", num_layers=1)
    model.save_pretrained(tmp_path / "gptq")
    config = json.loads((tmp_path / "gptq" / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    (tmp_path / "gptq" / "config.json").write_text(json.dumps(config))
    assert main(["generate", "--model-dir", str(tmp_path / "gptq"), "--tokens", "1", "--prompt-len", "1"]) == 2
    err = capsys.readouterr().err
    assert "config.json declares quantization_config (quant_method 'gptq')" in err
    assert "give the float (unquantized) checkpoint" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("family, scheme", [(family, ("w4a8", "w8a8")[i % 2]) for i, family in enumerate(hf.FAMILIES)])
def test_quantized_block_csim(family, scheme, tmp_path):
    """C simulation of one quantized block invocation (sequential, then threaded with the sized
    FIFOs) against the functional simulator, every family at tiny, the schemes in turn (each
    scheme quantizes every family's linear layers alike; tests/hls/test_quant_csim.py checks both
    schemes bit-exact on their own); `small` is measured by benchmarks/quant_csim.py (2-3 minutes
    each)."""
    out = tmp_path / "o"
    groups = ["--group-size", "32"] if scheme == "w4a8" else []  # tiny layers are 64 wide
    assert main(["compile", family, "--size", "tiny", "--max-context", "8", "--quant", scheme, *groups, "--csim",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    verification = report["verification"]
    assert report["config"]["quant"] == scheme and verification["csim_deadlock_free"]
    assert verification["csim_vs_sim_max_abs"] <= 1e-5 * verification["torch_max_abs"]


def test_generate_quantized_checks_against_the_fake_quantized_model(capsys):
    argv = ["generate", "llama", "--quant", "--group-size", "32", "--check", "--max-context", "32", "--tokens", "4",
            "--prompt-len", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "same tokens" in out and "(ok, tolerance 0.02)" in out
    assert main(["generate", "llama", "--quant", "int3"]) == 2
    assert "unsupported quantization scheme 'int3'" in capsys.readouterr().err
