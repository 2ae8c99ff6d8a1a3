"""The main job end to end: `streamdsl compile` builds, sizes, verifies and reports."""

import json

import pytest

from toolchain.cli import main

REPORT_KEYS = {"model", "config", "kernels", "streams", "converters", "dmas", "fifo_sizing", "verification", "timing"}


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compile") / "ffn"
    assert main(["-q", "compile", "--size", "tiny", "--csim", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_report_follows_the_contract(tiny_report):
    out, report = tiny_report
    assert REPORT_KEYS <= report.keys()
    assert report["config"] == {"hidden": 128, "ffn": 512, "tile": 32}
    for stream in report["streams"]:
        assert stream.keys() == {"name", "producer", "consumer", "tokens", "token_bits", "depth", "lag", "delay"}
        assert stream["depth"] >= 1 and stream["tokens"] >= 1
    assert {c["name"] for c in report["converters"]} == {"converter(layernorm)", "converter(gelu)"}
    assert report["fifo_sizing"].keys() >= {"seconds", "total_bits", "naive_bits", "sim_peak_bits"}
    assert report["verification"].keys() >= {"sim_vs_torch_max_abs", "csim_vs_sim_max_abs", "deadlock_free"}
    assert (out / "program.mlir").read_text().count("dataflow.task") == 6
    for name in ("kernel.cpp", "tb.cpp", "host.cpp", "link.cfg", "Makefile", "include/hls_stream.h"):
        assert (out / "hls" / name).is_file(), name


def test_design_is_verified(tiny_report):
    _, report = tiny_report
    verification = report["verification"]
    assert verification["deadlock_free"] is True
    assert verification["sim_vs_torch_max_abs"] <= 1e-5 * max(verification["torch_max_abs"], 1.0)
    # the emitted C++ under g++, as Vitis csim runs it and threaded with bounded FIFOs
    assert {"csim_sequential", "csim_threaded"} <= report["timing"].keys() and verification["csim_deadlock_free"]
    assert verification["csim_vs_sim_max_abs"] <= 1e-5 * max(verification["torch_max_abs"], 1.0)
    timed = report["timed_simulation"]
    assert timed["makespan_cycles"] == timed["unbounded_makespan_cycles"]  # min-bits keeps the makespan
    sizing = report["fifo_sizing"]
    assert sizing["mode"] == "min-bits" and sizing["makespan"] == timed["unbounded_makespan_cycles"]
    assert sizing["total_bits"] <= sizing["naive_bits"] and sizing["simulations"] > 0


def test_unknown_program_is_a_usage_error(tmp_path, capsys):
    assert main(["compile", "gpt3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown program 'gpt3'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_failed_stage_leaves_no_output_and_is_an_internal_error(tmp_path, monkeypatch, capsys):
    import toolchain.driver as driver

    def broken(*_args, **_kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(driver, "graph_to_dot", broken)
    out = tmp_path / "out"
    assert main(["-q", "compile", "--size", "tiny", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: solver crashed" in err and "run again with -v" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_csim_deadlock_fails_the_job_with_exit_1(tmp_path, monkeypatch, capsys):
    import hls_backend

    def deadlocked(design, project, *arrays, expected=None):
        return {"csim_vs_sim_max_abs": None, "deadlock_free": False, "deadlock_report": "fork->mul full 2/2",
                "csim_seconds": {"sequential": 0.1, "threaded": 1.0}}

    monkeypatch.setattr(hls_backend, "csim_verification", deadlocked)
    out = tmp_path / "out"
    assert main(["-q", "compile", "--size", "tiny", "--csim", "--out", str(out)]) == 1
    assert "FAILED: threaded C simulation deadlocks: fork->mul full 2/2" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())  # the evidence is kept for inspection
    assert report["verification"]["deadlock_free"] is False


def test_design_that_does_not_fit_fails_naming_the_largest_fifos(tmp_path, monkeypatch, capsys):
    import toolchain.driver as driver

    monkeypatch.setattr(driver, "DEVICE_ON_CHIP_BITS", 100_000)  # a device far smaller than the design
    assert main(["-q", "compile", "--size", "tiny", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "FAILED: the design needs" in err and "on chip, the U55C has 0.0 MiB" in err
    assert "largest FIFOs: dma_load(w_down)->fc_down" in err and "fifo_sizing='conservative'" in err
