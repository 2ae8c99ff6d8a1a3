"""`streamdsl build`: the jobs of the default design's project on a local process pool and on a
local Ray instance started here give the same results; a failed job comes back with its log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from toolchain.build import Job, build, compiled_graph, plan_jobs
from toolchain.cli import main


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "ffn"
    assert main(["-q", "compile", "--size", "tiny", "--csim", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def ray_address():
    """A light Ray head on this machine (2 CPUs, 100 MB object store, no dashboard), ended by its
    process group when the tests are done."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip("Ray is not installed (pip install 'streamdsl[cluster]'; make setup does)")
    port, *others = (_free_port() for _ in range(3))
    # every listening port of its own, so that heads started by concurrent test runs never collide
    fixed = [f"--{flag}={p}" for flag, p in zip(("dashboard-port", "dashboard-agent-listen-port"), others)]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--object-store-memory=100000000",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1", *fixed],
        stdout=subprocess.DEVNULL, stderr=(Path(temp) / "head.log").open("w"), start_new_session=True,
    )
    try:
        _wait_for_port(port, head, Path(temp) / "head.log")
        yield f"127.0.0.1:{port}"
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=3)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        time.sleep(1)
        try:
            os.killpg(head.pid, signal.SIGKILL)  # the raylet's workers, if any outlived it
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, head: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until Ray's GCS accepts connections (ray.init aborts the process if it never comes up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"`ray start --head` exited with {head.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"Ray's head did not listen on port {port} within {timeout:.0f} s")


def _outcome(section):
    return [(j["name"], j["kind"], j["ok"], j["result"]) for j in section["jobs"]]


def test_pool_and_ray_agree(compiled, ray_address):
    report = json.loads((compiled / "report.json").read_text())
    local = build(compiled, workers=2)
    assert local["failed"] == [] and local["executor"] == "local process pool"
    results = {j["name"]: j["result"] for j in local["jobs"]}
    assert set(results) == {"csim-sequential", "csim-threaded", "timed-sim-sized", "timed-sim-unbounded", "timed-sim-vitis-default"}
    scale = max(report["verification"]["torch_max_abs"], 1.0)
    for mode in ("sequential", "threaded"):
        assert max(results[f"csim-{mode}"]["max_abs_vs_simulator"].values()) <= 1e-5 * scale
    _, depths = compiled_graph(compiled)
    assert depths == {s["name"]: s["depth"] for s in report["streams"]}  # the sized variant runs the IR's depths
    assert results["timed-sim-sized"]["makespan_cycles"] == report["timed_simulation"]["makespan_cycles"]
    assert results["timed-sim-unbounded"]["makespan_cycles"] == report["timed_simulation"]["unbounded_makespan_cycles"]
    default = results["timed-sim-vitis-default"]
    assert default["deadlock"] or default["makespan_cycles"] > report["timed_simulation"]["makespan_cycles"]

    assert main(["-q", "build", str(compiled), "--ray", ray_address]) == 0
    on_ray = json.loads((compiled / "report.json").read_text())["build"]
    assert on_ray["executor"] == f"ray {ray_address}"
    assert _outcome(on_ray) == _outcome(local)
    page = (compiled / "report.html").read_text()  # written again with the build's results
    assert 'id="build"' in page and "timed-sim-vitis-default" in page and 'id="gantt"' in page


def test_a_failed_job_keeps_the_others(compiled, ray_address):
    broken = Job("csim-missing-inputs", "csim", {"threaded": False, "data": "no-such-dir"})
    jobs = [*(j for j in plan_jobs(compiled) if j.kind == "timed-sim"), broken]  # no g++ build: quick
    outcomes = []
    for address in (None, ray_address):
        section = build(compiled, jobs=jobs, ray_address=address, workers=2)
        assert section["failed"] == ["csim-missing-inputs"]
        assert all(j["ok"] and j["result"] for j in section["jobs"] if j["name"] != broken.name)
        log = (compiled / "build" / "csim-missing-inputs.log").read_text()
        assert "no-such-dir lacks the input(s) x.bin" in log and "Traceback" in log
        outcomes.append(_outcome(section))
    assert outcomes[0] == outcomes[1]


def test_a_relative_directory_builds(compiled, monkeypatch):
    monkeypatch.chdir(compiled.parent)
    section = build(Path(compiled.name), jobs=[Job("csim-sequential", "csim", {"threaded": False})], workers=1)
    assert section["failed"] == [], (compiled / "build" / "csim-sequential.log").read_text()


def test_build_of_a_directory_without_a_project_is_a_usage_error(tmp_path, capsys):
    assert main(["build", str(tmp_path)]) == 2
    assert "streamdsl compile --csim" in capsys.readouterr().err


def test_build_exits_1_when_a_job_fails(compiled, monkeypatch, capsys):
    import toolchain.build

    broken = Job("csim-missing-inputs", "csim", {"threaded": False, "data": "no-such-dir"})
    monkeypatch.setattr(toolchain.build, "plan_jobs", lambda d: [*(j for j in plan_jobs(d) if j.kind == "timed-sim"), broken])
    assert main(["-q", "build", str(compiled), "--workers", "1"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED: csim-missing-inputs" in err and "no-such-dir lacks the input(s) x.bin" in err
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert rows["csim-missing-inputs"].endswith(f"FAILED (log: {compiled / 'build' / 'csim-missing-inputs.log'})")
    assert all(row.endswith(" ok") for name, row in rows.items() if name != "csim-missing-inputs")


def test_a_build_the_executor_refuses_exits_2_naming_why(compiled, monkeypatch, capsys):
    import toolchain.build

    def refuse(directory, ray_address=None, workers=None, jobs=(), advance=None):
        raise toolchain.build.BuildError("no Ray cluster answers at head:6379")

    monkeypatch.setattr(toolchain.build, "build", refuse)
    assert main(["build", str(compiled), "--ray", "head:6379"]) == 2
    out, err = capsys.readouterr()
    names = ", ".join(j.name for j in plan_jobs(compiled))
    assert f"running {len(plan_jobs(compiled))} jobs ({names}) on the Ray cluster at head:6379" in out + err
    assert "streamdsl build: no Ray cluster answers at head:6379" in err


def test_build_hands_the_ray_address_and_workers_to_the_executor(compiled, monkeypatch, capsys):
    import toolchain.build

    seen = {}

    def executor(directory, ray_address=None, workers=None, jobs=(), advance=None):
        seen.update(directory=str(directory), ray_address=ray_address, workers=workers, jobs=[j.name for j in jobs])
        return {"jobs": [], "failed": []}

    monkeypatch.setattr(toolchain.build, "build", executor)
    assert main(["-q", "build", str(compiled), "--ray", "head:6379", "--workers", "3"]) == 0
    assert seen == {"directory": str(compiled), "ray_address": "head:6379", "workers": 3,
                    "jobs": [j.name for j in plan_jobs(compiled)]}
