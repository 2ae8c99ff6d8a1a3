"""The Vitis project files agree with the kernel: link.cfg, Makefile, host program, manifest."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import HlsEmitError, emit_project, run_csim
from hls_backend.project import PLATFORM, write_test_data

from .cases import CASES

STUB = Path(__file__).parent / "xrt_stub"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    design = sd.compile(CASES["gelu_mlp"]().program)
    return emit_project(design, tmp_path_factory.mktemp("gelu") / "proj")


def _top_params(kernel_cpp: str) -> list[str]:
    params = re.search(r'extern "C" void \w+\(([^)]*)\)', kernel_cpp).group(1)
    return [p.split()[-1].lstrip("*") for p in params.split(",")]


def test_layout(project: Path) -> None:
    names = {p.name for p in project.iterdir()}
    expected = {"kernel.cpp", "sd_support.h", "sd_io.h", "tb.cpp", "host.cpp", "link.cfg", "Makefile", "manifest.json", "include", "data"}
    assert expected <= names
    assert (project / "include" / "hls_stream.h").exists()
    assert not (project / "hls_stream.h").exists()  # our header is for g++ only: Vitis must use its own


def test_link_config_maps_every_port_to_its_own_hbm_channel(project: Path) -> None:
    manifest = json.loads((project / "manifest.json").read_text())
    top = manifest["top"]
    args = [p["name"] for p in manifest["ports"]]
    assert sorted({p["tensor"] for p in manifest["ports"]}) == sorted(a["name"] for a in manifest["inputs"] + manifest["outputs"])
    assert args == _top_params((project / "kernel.cpp").read_text())
    lines = (project / "link.cfg").read_text().splitlines()
    assert lines[:2] == ["[connectivity]", f"nk={top}:1:{top}_1"]
    sp = dict(re.fullmatch(rf"sp={top}_1\.(\w+):HBM\[(\d+)\]", line).groups() for line in lines[2:])
    assert sorted(sp) == sorted(args)
    assert len(set(sp.values())) == len(args) and all(0 <= int(k) < 32 for k in sp.values())


def test_makefile_targets(project: Path) -> None:
    top = json.loads((project / "manifest.json").read_text())["top"]
    run = subprocess.run(["make", "-n", "-B", "xclbin", "host"], cwd=project, capture_output=True, text=True,
                         env={"XILINX_XRT": "/opt/xilinx/xrt", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    commands = run.stdout
    assert f"v++ -c -t hw --platform {PLATFORM} -k {top} --freqhz=300MHz" in commands
    assert f"v++ -l -t hw --platform {PLATFORM} --freqhz=300MHz --config link.cfg -o {top}.xclbin {top}.xo" in commands
    slower = subprocess.run(["make", "-n", "-B", "xclbin", "FREQ_MHZ=250"], cwd=project, capture_output=True, text=True)
    assert slower.stdout.count("--freqhz=250MHz") == 2  # the clock reaches both the compile and the link step
    assert "-lxrt_coreutil" in commands


def test_host_compiles_against_the_xrt_api(project: Path) -> None:
    host = (project / "host.cpp").read_text()
    manifest = json.loads((project / "manifest.json").read_text())
    for k, port in enumerate(manifest["ports"]):
        assert f"kernel.group_id({k})" in host and f"bo_{port['name']}" in host
    proc = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(STUB), "-I", ".", "host.cpp"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_make_csim_runs_the_testbench(project: Path) -> None:
    rng = np.random.default_rng(3)
    manifest = json.loads((project / "manifest.json").read_text())
    xs = [rng.standard_normal(a["shape"]).astype(np.float32) for a in manifest["inputs"]]
    for a, x in zip(manifest["inputs"], xs):
        x.tofile(project / "data" / f"{a['name']}.bin")
    proc = subprocess.run(["make", "-s", "csim"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = np.fromfile(project / "data" / "out.bin", dtype=np.float32).reshape(manifest["outputs"][0]["shape"])
    np.testing.assert_allclose(got, run_csim(project, *xs), rtol=0, atol=0)


def test_testbench_checks_its_outputs(project: Path) -> None:
    """With the expected outputs in data/reference (write_test_data), the testbench exits 0 when
    they match and 4 naming the output when they do not (a deliberately wrong expected output)."""
    manifest = json.loads((project / "manifest.json").read_text())
    case = CASES["gelu_mlp"]()
    xs = case.inputs(np.random.default_rng(5))
    want = sd.compile(case.program).simulate(*xs)
    write_test_data(project, xs, want)
    ok = subprocess.run(["make", "-s", "csim"], cwd=project, capture_output=True, text=True)
    assert ok.returncode == 0 and "PASS out" in ok.stdout, ok.stdout + ok.stderr
    wrong = np.array(want, copy=True)
    wrong.flat[3] += 0.5  # one element off
    write_test_data(project, xs, wrong)
    bad = subprocess.run(["./csim/tb_seq", "data"], cwd=project, capture_output=True, text=True)
    assert bad.returncode == 4, bad.stdout + bad.stderr
    assert "MISMATCH out: 1 of" in bad.stderr and "at flat index 3" in bad.stderr
    assert manifest["outputs"][0]["name"] == "out"
    (project / "data" / "reference" / "out.bin").unlink()  # no reference: nothing to compare
    assert subprocess.run(["./csim/tb_seq", "data"], cwd=project, capture_output=True, text=True).returncode == 0


def test_host_checks_the_run_and_the_outputs(project: Path) -> None:
    host = (project / "host.cpp").read_text()
    assert "const ert_cmd_state state = run.wait();" in host and "state != ERT_CMD_STATE_COMPLETED" in host
    assert 'sd_io::check("out", out, dir + "/reference/out.bin", SD_RTOL_OUT)' in host
    assert "return sd_ok ? 0 : sd_io::MISMATCH_EXIT;" in host


def test_bound_weights_are_written_to_data(tmp_path: Path) -> None:
    case = CASES["layernorm"]()
    prog = case.program
    xs = case.inputs(np.random.default_rng(0))
    bound = sd.compile(prog)
    bound.program.params = {"g": xs[1], "b": xs[2]}  # as a frontend binds weights: trailing arguments
    project = emit_project(bound, tmp_path / "p")
    assert json.loads((project / "manifest.json").read_text())["params"] == ["b", "g"]
    np.testing.assert_array_equal(np.fromfile(project / "data" / "g.bin", dtype=np.float32), xs[1].ravel())
    np.testing.assert_allclose(run_csim(project, xs[0]), run_csim(project, *xs), rtol=0, atol=0)


def test_failed_emit_leaves_the_old_project(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep"
    design = sd.compile(CASES["softmax"]().program)
    emit_project(design, target)
    before = (target / "kernel.cpp").read_text()
    with pytest.raises(HlsEmitError, match="no stream named 'nope'"):
        emit_project(design, target, depths={"nope": 4})
    assert (target / "kernel.cpp").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]  # no staging directory left behind
