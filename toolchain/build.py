"""`streamdsl build DIR`: run the jobs of an emitted project through one executor.

Jobs are independent: Vitis HLS synthesis of each task when `vitis_hls` is on the PATH (each task's
csynth latency, II and resources read back into report.json), else the g++ C simulations
(sequential and threaded) and timed-simulation variants of the design. The executor is a local
process pool by default or a Ray cluster (`ray_address`, the `streamdsl[cluster]` extra). Both call
`run_job`, which never raises: a failed job comes back with its log and the others' results stay.
Ray workers get the project as an archive put once in the object store, so they need no shared
file system.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamdsl.graph import Graph
from streamdsl.output import write_json

__all__ = ["BuildError", "Job", "JobResult", "build", "compiled_graph", "plan_jobs", "project_dirs", "run_job", "run_jobs"]

REFERENCE_DIR = "reference"  # data/reference/<output>.bin: the functional simulator's outputs
VARIANTS = {"sized": None, "unbounded": "inf", "vitis-default": 2}  # timed simulation: depth of every FIFO


class BuildError(ValueError):
    """DIR is not an emitted project (names what is missing and how to make one)."""


@dataclass(frozen=True)
class Job:
    name: str
    kind: str  # "csynth", "csim" or "timed-sim"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    name: str
    kind: str
    ok: bool
    result: dict[str, Any] | None
    log: str
    seconds: float


def project_dirs(out_dir: Path | str) -> tuple[Path, Path]:
    """(compile output directory, its HLS project), absolute: DIR may be either."""
    out_dir = Path(out_dir).resolve()
    for root, project in ((out_dir, out_dir / "hls"), (out_dir.parent, out_dir)):
        if (project / "manifest.json").is_file():
            return root, project
    raise BuildError(f"{out_dir}: no emitted HLS project here (no manifest.json in {out_dir} or {out_dir / 'hls'}); "
                     "make one with `streamdsl compile --csim --out DIR`")


def plan_jobs(out_dir: Path | str, vitis: bool | None = None) -> list[Job]:
    """The jobs of DIR: one csynth job per task with Vitis HLS (`vitis` None: when `vitis_hls` is
    on the PATH), else the csim modes and timed-simulation variants."""
    root, project = project_dirs(out_dir)
    manifest = json.loads((project / "manifest.json").read_text())
    if vitis if vitis is not None else shutil.which("vitis_hls") is not None:
        return [Job(f"csynth-{p}", "csynth", {"top": p}) for p in manifest["processes"]]
    jobs = [Job(f"csim-{mode}", "csim", {"threaded": mode == "threaded"}) for mode in ("sequential", "threaded")]
    if (root / "program.mlir").is_file():
        jobs += [Job(f"timed-sim-{v}", "timed-sim", {"variant": v}) for v in VARIANTS]
    return jobs


def run_job(job: Job, root: Path | str) -> JobResult:
    """Run one job on the compile output `root` (its project in root/hls); never raises."""
    log: list[str] = []
    start = time.perf_counter()
    try:
        result = _KINDS[job.kind](job.params, Path(root).resolve(), log)
        ok = True
    except Exception:  # noqa: BLE001 - a job's failure is its result; the others go on
        log.append(traceback.format_exc())
        result, ok = None, False
    return JobResult(job.name, job.kind, ok, result, "\n".join(log), round(time.perf_counter() - start, 3))


def run_jobs(jobs: Sequence[Job], out_dir: Path | str, *, ray_address: str | None = None, workers: int | None = None,
             advance: Callable[[], None] = lambda: None) -> list[JobResult]:
    """Every job, in `jobs` order, on a local process pool or the Ray cluster at `ray_address`."""
    root, _ = project_dirs(out_dir)
    if ray_address is not None:
        return _run_on_ray(jobs, root, ray_address, advance)
    results: dict[str, JobResult] = {}
    with ProcessPoolExecutor(max_workers=workers or min(len(jobs), os.cpu_count() or 1) or 1) as pool:
        futures = {pool.submit(run_job, job, root): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                results[job.name] = future.result()
            except Exception as err:  # noqa: BLE001 - the worker process died (run_job itself never raises)
                results[job.name] = JobResult(job.name, job.kind, False, None, f"the worker running it died: {err!r}", 0.0)
            advance()
    return [results[job.name] for job in jobs]


def build(out_dir: Path | str, *, ray_address: str | None = None, workers: int | None = None, jobs: Sequence[Job] | None = None,
          advance: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Plan (unless `jobs` is given) and run the jobs of DIR; write each log to DIR/build/<job>.log
    and the results to report.json's `build` (csynth figures also under each task's name)."""
    root, _ = project_dirs(out_dir)
    jobs = plan_jobs(root) if jobs is None else list(jobs)
    results = run_jobs(jobs, root, ray_address=ray_address, workers=workers, advance=advance)
    logs = root / "build"
    logs.mkdir(exist_ok=True)
    for r in results:
        (logs / f"{r.name}.log").write_text(r.log + "\n")
    section = {
        "executor": f"ray {ray_address}" if ray_address is not None else "local process pool",
        "jobs": [{**{k: v for k, v in asdict(r).items() if k != "log"}, "log": f"build/{r.name}.log"} for r in results],
        "failed": [r.name for r in results if not r.ok],
        "csynth": {r.result["top"]: r.result for r in results if r.kind == "csynth" and r.ok and r.result},
    }
    report_path = root / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["build"] = section
    write_json(report_path, report)
    if (root / "program.mlir").is_file() and report.get("streams"):
        _rewrite_report_html(root, report)
    return section


def _rewrite_report_html(root: Path, report: dict[str, Any]) -> None:
    """report.html again, now with the build section, from report.json and the compiled IR."""
    from types import SimpleNamespace

    from streamdsl.sim.timed import simulate_timed
    from toolchain.report_html import write_report_html

    graph, depths = compiled_graph(root)
    write_report_html(root / "report.html", report, SimpleNamespace(graph=graph, depths=depths), simulate_timed(graph, depths))


# ---------------------------------------------------------------------------------------------
# The jobs
# ---------------------------------------------------------------------------------------------


def _run(cmd: Sequence[str], cwd: Path, log: list[str], timeout: float = 3600) -> None:
    log.append(f"$ {' '.join(cmd)}  (in {cwd})")
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    log += [text.rstrip() for text in (proc.stdout, proc.stderr) if text.strip()]
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")


def _csynth(params: dict[str, Any], root: Path, log: list[str]) -> dict[str, Any]:
    from hls_backend.csynth import csynth_script, parse_csynth_xml

    top = params["top"]
    with tempfile.TemporaryDirectory(prefix=f"csynth_{top}_") as tmp:
        work = Path(tmp)
        project = root / "hls"
        for name in ("kernel.cpp", "sd_support.h"):
            shutil.copy(project / name, work / name)
        (work / "csynth.tcl").write_text(csynth_script(top))
        _run(["vitis_hls", "-f", "csynth.tcl"], work, log)
        xml = work / top / "solution" / "syn" / "report" / "csynth.xml"
        if not xml.is_file():
            raise FileNotFoundError(f"vitis_hls wrote no {xml.relative_to(work)}")
        return parse_csynth_xml(xml)


def _csim(params: dict[str, Any], root: Path, log: list[str]) -> dict[str, Any]:
    """Build and run the testbench on data/ (inputs and bound weights); compare with data/reference."""
    from hls_backend.csim import build_csim

    project = root / "hls"
    threaded = bool(params["threaded"])
    manifest = json.loads((project / "manifest.json").read_text())
    data = project / params.get("data", "data")
    missing = [f"{s['name']}.bin" for s in manifest["inputs"] if not (data / f"{s['name']}.bin").is_file()]
    if missing:
        raise FileNotFoundError(f"{data} lacks the input(s) {', '.join(missing)} (compile --csim stores them)")
    exe = build_csim(project, threaded)
    log.append(f"built {exe.relative_to(project)}")
    with tempfile.TemporaryDirectory(prefix="csim_", dir=project / "csim") as tmp:
        work = Path(tmp)
        for spec in manifest["inputs"]:
            shutil.copy(data / f"{spec['name']}.bin", work)
        _run([str(exe.resolve()), str(work)], project, log, timeout=params.get("timeout", 600))
        errors = {}
        for spec in manifest["outputs"]:
            got = np.fromfile(work / f"{spec['name']}.bin", dtype=spec["dtype"])
            want = np.fromfile(data / REFERENCE_DIR / f"{spec['name']}.bin", dtype=spec["dtype"])
            errors[spec["name"]] = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
    return {"mode": "threaded" if threaded else "sequential", "max_abs_vs_simulator": errors}


def _timed_sim(params: dict[str, Any], root: Path, log: list[str]) -> dict[str, Any]:
    """The timed simulation of the compiled IR with every FIFO at the variant's depth."""
    from streamdsl.sim.timed import simulate_timed

    graph, sized = compiled_graph(root)
    depth = VARIANTS[params["variant"]]
    depths = sized if depth is None else dict.fromkeys(sized, None if depth == "inf" else depth)
    run = simulate_timed(graph, depths)
    log.append(f"{len(graph.tasks)} tasks, {len(graph.edges)} FIFOs, variant {params['variant']}")
    return {"variant": params["variant"], "makespan_cycles": run.makespan, "stall_cycles": run.total_stall_cycles,
            "deadlock": None if run.deadlock is None else str(run.deadlock).splitlines()[0]}


def compiled_graph(out_dir: Path | str) -> tuple[Graph, dict[str, int | None]]:
    """The timing graph of DIR/program.mlir and the FIFO depths its IR carries."""
    from xdsl.context import Context
    from xdsl.parser import Parser
    from xdsl.universe import Universe

    from lowering.timing import kernel_graph
    from streamdsl.compiler import _kernel
    from streamdsl.dialects.dataflow import fifo_depth

    ctx = Context()
    for name, factory in Universe.get_multiverse().all_dialects.items():
        ctx.register_dialect(name, factory)
    module = Parser(ctx, (Path(out_dir) / "program.mlir").read_text()).parse_module()
    graph, values = kernel_graph(_kernel(module))
    return graph, {name: fifo_depth(value) for name, value in values.items()}


_KINDS: dict[str, Callable[[dict[str, Any], Path, list[str]], dict[str, Any]]] = {
    "csynth": _csynth, "csim": _csim, "timed-sim": _timed_sim,
}


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------


def _archive(root: Path) -> bytes:
    """The compile output without earlier build products (csim binaries, logs)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname=".", filter=lambda info: None if Path(info.name).name in ("csim", "build") else info)
    return buffer.getvalue()


def _run_unpacked(job: Job, archive: bytes) -> JobResult:
    with tempfile.TemporaryDirectory(prefix="streamdsl_build_") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        return run_job(job, tmp)


_RESULT = "streamdsl-build-result "  # marks the dispatcher's result lines


def _run_on_ray(jobs: Sequence[Job], root: Path, address: str, advance: Callable[[], None]) -> list[JobResult]:
    """Dispatch from a fresh interpreter (`python -m toolchain.build`): Ray's core library must be
    loaded before torch's libstdc++ (importing it after torch aborts on a std::regex_error), and
    a caller such as a notebook or a test may have imported torch already."""
    request = json.dumps({"address": address, "root": str(root), "jobs": [asdict(job) for job in jobs]})
    proc = subprocess.Popen([sys.executable, "-m", "toolchain.build"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(request)
    proc.stdin.close()
    results: dict[str, JobResult] = {}
    for line in proc.stdout:  # Ray itself may print here too (raylet notices): only marked lines are results
        if line.startswith(_RESULT):
            result = JobResult(**json.loads(line[len(_RESULT):]))
            results[result.name] = result
            advance()
    error = proc.stderr.read()
    if proc.wait() or len(results) != len(jobs):
        raise BuildError(f"the Ray dispatcher for {address} failed (exit {proc.returncode}):\n{error[-4000:]}")
    return [results[job.name] for job in jobs]


def _dispatch(request: dict[str, Any]) -> None:
    """Run the request's jobs on its Ray cluster; print each result as a JSON line when it is done."""
    try:
        import ray
    except ImportError:
        raise SystemExit("--ray needs Ray: pip install 'streamdsl[cluster]'") from None
    ray.init(address=request["address"], logging_level="ERROR", log_to_driver=False)
    try:
        archive = ray.put(_archive(Path(request["root"])))
        remote = ray.remote(num_cpus=1)(_run_unpacked)
        pending = [remote.remote(Job(**job), archive) for job in request["jobs"]]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            print(_RESULT + json.dumps(asdict(ray.get(done[0]))), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    _dispatch(json.load(sys.stdin))
