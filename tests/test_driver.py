"""The main job end to end: `streamdsl compile` builds, sizes, verifies and reports."""

import json
from pathlib import Path

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
        assert stream.keys() == {"name", "producer", "consumer", "tokens", "token_bits", "depth", "lag", "delay", "beats", "depth_beats",
                                 "beat_bits"}
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


def test_design_that_does_not_fit_fails_naming_the_largest_memories(tmp_path, monkeypatch, capsys):
    import lowering.memory as memory

    monkeypatch.setitem(memory.CAPACITY, "BRAM36", 3)  # a device far smaller than the design
    monkeypatch.setitem(memory.CAPACITY, "URAM", 1)
    assert main(["-q", "compile", "--size", "tiny", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "FAILED: the design does not fit the U55C counted by memory shape" in err and "Traceback" not in err
    assert "of 3" in err and "largest memories: " in err and "fifo_sizing='conservative'" in err


def test_report_counts_memory_by_shape(tmp_path):
    """report.json's `memory`: BRAM36, URAM and LUTRAM totals that add up its memories, within the
    U55C's capacities, each memory bound by the documented rule."""
    from lowering.memory import bind

    assert main(["-q", "compile", "--size", "tiny", "--out", str(tmp_path / "out")]) == 0
    memory = json.loads((tmp_path / "out" / "report.json").read_text())["memory"]
    assert memory["capacity"] == {"BRAM36": 2016, "URAM": 960, "LUTRAM": 589824} and memory["fits"]
    for kind in ("BRAM36", "URAM", "LUTRAM"):
        assert memory[kind] == sum(m["count"] for m in memory["memories"] if m["resource"] == kind) <= memory["capacity"][kind]
    for m in memory["memories"]:
        resource, count = bind(m["width"], m["depth"], m["kind"] == "fifo")  # each of its copies (a converter's partitions)
        assert m["width"] <= 1024 and (m["resource"], m["count"]) == (resource, count * m.get("copies", 1))
    assert {m["kind"] for m in memory["memories"]} >= {"fifo"}


def test_report_counts_resources_per_node(tmp_path):
    """report.json's `resources` (lowering/resources.py): the memories of `memory`, an 8-BRAM36
    m_axi data buffer per DMA among them, within the device; the largest users are named."""
    assert main(["-q", "compile", "--size", "tiny", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    resources, memory = report["resources"], report["memory"]
    assert resources["fits"] and resources["capacity"]["DSP"] == 9024
    assert resources["total"]["BRAM36"] == memory["BRAM36"]
    maxi = [m for m in memory["memories"] if m["kind"] == "maxi"]
    assert len(maxi) == len(report["dmas"]) and {(m["resource"], m["count"]) for m in maxi} == {("BRAM36", 8)}
    assert resources["total"]["URAM"] == memory["URAM"] and resources["total"]["LUTRAM"] == memory["LUTRAM"]
    assert resources["total"]["DSP"] > 0 and resources["largest"]["DSP"][0]["amount"] > 0
    placement = report["slr_placement"]  # the tiny block fits SLR0, next to the HBM
    assert set(placement["slr_of"].values()) == {0} and placement["crossing_bits"] == 0
    assert [s["DSP"] for s in resources["slrs"]] == [resources["total"]["DSP"], 0, 0] and all(s["fits"] for s in resources["slrs"])
    assert placement["makespan_cycles"] == report["timed_simulation"]["makespan_cycles"]


def test_fifo_tradeoff_curve_in_the_report(tmp_path, capsys):
    """`--fifo-tradeoff`: min-bits at makespan slacks of 0 to 100%; the first point is the design's
    own sizing, each run within its slack, the longest run needs no more bits than the fastest."""
    assert main(["-q", "compile", "--size", "tiny", "--fifo-tradeoff", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    curve, base = report["fifo_tradeoff"], report["timed_simulation"]["unbounded_makespan_cycles"]
    assert [p["slack"] for p in curve] == [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]
    assert curve[0]["makespan_cycles"] == base and curve[0]["total_bits"] == report["fifo_sizing"]["total_bits"]
    assert all(p["makespan_cycles"] <= base * (1 + p["slack"]) for p in curve)
    assert curve[-1]["total_bits"] < curve[0]["total_bits"]
    assert "FIFO trade-off: slack 100%" in capsys.readouterr().out


def test_task_local_buffers_count_toward_the_on_chip_check():
    """A 1 GiB tensor computed inside a task is an on-chip array in the emitted C++."""
    from xdsl.context import Context
    from xdsl.dialects import arith, builtin, func, linalg, scf, tensor
    from xdsl.parser import Parser

    from lowering.memory import Buffer, count, local_tensors
    from streamdsl.dialects.dataflow import DATAFLOW, kernel_of

    source = (Path(__file__).parent / "filecheck" / "dialect" / "structure.mlir").read_text()
    start = source.index("\nfunc.func @double") + 1
    text = '!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>\n' + source[start:source.index("\n}\n", start) + 3]
    big = text.replace("%d = tensor.empty() : tensor<1x4xf32>",
                       "%d = tensor.empty() : tensor<1x4xf32>\n        %big0 = tensor.empty() : tensor<16384x16384xf32>\n"
                       "        %zero = arith.constant 0.0 : f32\n"
                       "        %big = linalg.fill ins(%zero : f32) outs(%big0 : tensor<16384x16384xf32>) -> tensor<16384x16384xf32>")
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, scf.Scf, tensor.Tensor, linalg.Linalg, DATAFLOW):
        ctx.load_dialect(dialect)
    kernels = [kernel_of(Parser(ctx, t).parse_module()) for t in (text, big)]
    small, large = (local_tensors(k) for k in kernels)
    assert [bits for _, _, bits in small] == [4 * 32] * 2  # the tile read and the sum (the add never reads its empty init)
    assert sorted(set(large) - set(small)) == [("twice", "big", 16384 * 16384 * 32)]  # 1 GiB
    assert count([], [Buffer.of_bits(f"{t}: {n}", "local", b) for t, n, b in small])["memories"] == []  # tiles are registers
    memory = count([], [Buffer.of_bits(f"{t}: {n}", "local", b) for t, n, b in large])
    assert not memory["fits"] and memory["memories"][0]["name"] == "twice: big"


def test_a_bad_program_is_one_message_and_exit_2(tmp_path, monkeypatch, capsys):
    import streamdsl as sd
    import toolchain.examples as examples

    def bad(hidden, ffn, tile):
        raise sd.DSLError("kernel uses `while`, which the DSL does not support", "prog.py", 12, 4)

    monkeypatch.setitem(examples.EXAMPLES, "bad", bad)
    assert main(["-q", "compile", "bad", "--size", "tiny", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamdsl compile: error: prog.py:12:4: kernel uses `while`") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_verbose_adds_the_traceback_of_a_user_error(tmp_path, capsys):
    assert main(["-v", "compile", "gpt3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown program 'gpt3'" in err and "Traceback" in err
