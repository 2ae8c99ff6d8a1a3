"""`streamdsl compile MODEL`: a zoo model's decoder block through the whole main job."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from toolchain.cli import main


@pytest.fixture(scope="session")
def gpt2_tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt2") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["compile", "gpt2", "--size", "tiny", "--max-context", "8", "--clock", "250", "--out", str(out)])
    return code, json.loads((out / "report.json").read_text()), out, printed.getvalue()


def test_compile_model_passes_and_reports_model_figures(gpt2_tiny_report):
    code, report, out, printed = gpt2_tiny_report
    assert code == 0
    assert report["estimate"]["clock_mhz"] == 250  # --clock without a plan
    wrote = next(line for line in printed.splitlines() if line.strip().startswith("wrote "))
    assert "report.json" in wrote and "hls/" not in wrote  # no --csim: no HLS project
    assert report["verification"]["passed"] and report["verification"]["deadlock_free"]
    figures = report["model_figures"]
    assert figures["cache_length"] == 8
    assert figures["cycles_per_block_invocation"] == report["timed_simulation"]["makespan_cycles"] > 0
    inter = figures["intermediate_bytes"]
    assert 0 < inter["fused"] < inter["unfused"]
    assert figures["fifo_bits"]["chosen"] <= figures["fifo_bits"]["naive"]
    weights = figures["weight_bytes_per_layer"]  # hidden 64: w4a8's groups of 128 do not fit
    assert weights["w8a8"] < weights["float32"] and weights["w4a8"] is None
    for stage in ("build_model", "build", "import", "fuse_elementwise", "tiling", "kernel_formation", "kernel_fusion",
                  "fifo_sizing", "timed_sim"):
        assert figures["compile_seconds"][stage] >= 0
    assert (out / "program.mlir").read_text().count("dataflow.kernel") == 1


def test_compile_model_reports_the_whole_model_estimate(gpt2_tiny_report):
    _, report, _, _ = gpt2_tiny_report
    est, cycles = report["estimate"], report["model_figures"]["cycles_per_block_invocation"]
    assert est["layers"] == report["config"]["layers_in_model"] > 1
    assert est["device_ms_per_token"] == pytest.approx(est["layers"] * cycles / (est["clock_mhz"] * 1e3), abs=5e-5)  # 4 decimals
    assert est["host_ms_per_token"] > 0 and "host CPU" in est["host_part"]
    assert est["ms_per_token"] == pytest.approx(est["device_ms_per_token"] + est["host_ms_per_token"], abs=1e-3)
    # tokens/s comes from the unrounded time: the rounded 4 decimals of a tiny block's 0.04 ms are off by up to 0.12%
    assert 1e3 / est["tokens_per_second"] == pytest.approx(est["ms_per_token"], abs=6e-5)
    assert est["prefill"]["cycles_per_prompt_token_per_block"] == cycles
    assert est["prefill"]["ms_per_prompt_token"] == est["device_ms_per_token"]
    hbm = sum(d["bytes"] for d in report["dmas"])
    assert est["hbm_bytes_per_token"] == est["layers"] * hbm
    roofline = est["layers"] * hbm / est["hbm_bytes_per_second"] * 1e3
    assert est["roofline_ms_per_token"] == pytest.approx(roofline, rel=1e-3, abs=1e-4)
    assert est["device_vs_roofline"] == pytest.approx(roofline / est["device_ms_per_token"], rel=1e-2)


def test_compile_model_unknown_name_lists_models(capsys):
    assert main(["compile", "gpt3", "--out", "/nonexistent/never"]) == 2
    err = capsys.readouterr().err
    assert "gpt2" in err and "ffn-block" in err


def test_a_block_that_does_not_fit_names_its_largest_buffers(tmp_path, monkeypatch, capsys):
    import lowering.memory as memory

    monkeypatch.setitem(memory.CAPACITY, "BRAM36", 1)  # a device far smaller than the block
    monkeypatch.setitem(memory.CAPACITY, "URAM", 1)
    code = main(["compile", "llama", "--size", "tiny", "--max-context", "4", "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "does not fit the U55C counted by memory shape" in err and "Traceback" not in err
    assert "largest memories: " in err
    assert "--max-context" in err and "--tile" in err


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_compile_model_csim_of_one_block_invocation(tmp_path, family):
    """The one design's HLS project: g++ C simulation, sequential and threaded (several schedules),
    equals the functional simulator on one invocation (cache length = the maximum context). Llama's
    grouped-query contractions read each KV head's cache once, for its group of query heads
    (fuse-elementwise folds the repeat into them)."""
    out = tmp_path / "out"
    assert main(["compile", family, "--size", "tiny", "--max-context", "8", "--csim", "--out", str(out)]) == 0
    verification = json.loads((out / "report.json").read_text())["verification"]
    assert verification["csim_deadlock_free"] and verification["passed"]
    assert verification["csim_vs_sim_max_abs"] <= 1e-5 * verification["torch_max_abs"]
    top = (out / "hls" / "kernel.cpp").read_text()
    assert "int32_t cache_len) {" in top and "s_axilite port=cache_len" in top  # one run-time scalar argument


def test_compile_model_dir(tmp_path, capsys):
    """A checkpoint as save_pretrained writes it compiles like the zoo model it was saved from."""
    from frontends import hf

    hf.build("llama", "tiny", num_layers=2, seed=1).save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "out"
    assert main(["-q", "compile", "--model-dir", str(tmp_path / "ckpt"), "--max-context", "4", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "llama-ckpt-block" and report["config"]["layers_in_model"] == 2
    assert report["verification"]["passed"] and report["estimate"]["layers"] == 2


@pytest.mark.parametrize(("files", "message"), [
    ({}, "no config.json in it"),
    ({"config.json": '{"model_type": "llama",'}, "config.json: not valid JSON"),
    ({"config.json": None, "model.safetensors": b"\x00" * 16}, "model.safetensors: not a readable safetensors file"),
    ({"config.json": None}, "no *.safetensors file in it"),
    ({"config.json": None, "pytorch_model.bin": b"pickle"}, "pytorch_model.bin is a pickle, which streamdsl never loads"),
])
def test_compile_model_dir_missing_or_corrupt_file(tmp_path, capsys, files, message):
    from frontends import hf

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for name, content in files.items():
        if content is None:  # a valid config of a tiny llama
            hf.build("llama", "tiny", num_layers=1).config.save_pretrained(ckpt)
        elif isinstance(content, bytes):
            (ckpt / name).write_bytes(content)
        else:
            (ckpt / name).write_text(content)
    code = main(["compile", "--model-dir", str(ckpt), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_compile_model_dir_and_a_model_is_a_usage_error(tmp_path, capsys):
    assert main(["compile", "gpt2", "--model-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "or --model-dir DIR, not both" in capsys.readouterr().err


@pytest.mark.slow
def test_tinyllama_at_paper_size_fits_with_its_dma_prefetch_limited(tmp_path):
    """TinyLlama's block needed 104.7 MiB when every DMA streamed from cycle 0; sources now wait for
    their readers and the prefetch is limited until the design fits (docs/timing.md)."""
    out = tmp_path / "llama"
    assert main(["-q", "compile", "llama", "--size", "paper", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["memory"]["fits"] and report["verification"]["deadlock_free"] and report["verification"]["passed"]
    timed, sizing = report["timed_simulation"], report["fifo_sizing"]
    assert timed["makespan_cycles"] == timed["prefetch_limited_makespan_cycles"] > timed["unbounded_makespan_cycles"]
    assert sizing["prefetch_tokens"] >= 2 and sizing["total_bits"] < sizing["naive_bits"]
    # the converters together hold less than one KV head's cache (1,025 rows of 64 floats): since
    # the KV heads' repeat folds into the contractions the unfused tensors hold no repeated cache
    # either, so the fused/unfused ratio (0.5% with it) no longer measures the converters
    assert report["model_figures"]["intermediate_bytes"]["fused"] < 1025 * 64 * 4
    assert {"ms_per_token", "tokens_per_second", "host_ms_per_token", "roofline_ms_per_token", "device_vs_roofline",
            "prefill"} <= set(report["estimate"])
    assert {"import", "kernel_fusion", "fifo_sizing", "hls_emit"} <= set(report["model_figures"]["compile_seconds"])
    assert (out / "hls").is_dir()
