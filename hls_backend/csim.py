"""C simulation of an emitted project with g++: sequential (what Vitis csim does) or threaded
(one thread per dataflow process, FIFOs bounded by their depth, deadlock watchdog)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamdsl.errors import StreamdslError, VerificationError

__all__ = [
    "CXX_FLAGS", "CsimDeadlock", "CsimError", "build_csim", "csim_cycles", "csim_verification", "cxx_compiler", "model_cycles",
    "run_csim",
]  # fmt: skip

CXX_FLAGS = ["-std=c++17", "-O1", "-pthread", "-I", "include", "-isystem", "include/ap_types", "-I", "."]
_SOURCES = ["kernel.cpp", "tb.cpp", "sd_support.h", "sd_io.h", "sd_hbm.h", "sd_fp16.h", "include/hls_stream.h"]
DEADLOCK_EXIT = 3
SCHEDULE_SEEDS = (1, 2, 3, 4)  # threaded csim runs these perturbed schedules too (csim_verification)


class CsimError(StreamdslError, RuntimeError):
    """Compiling or running the C simulation failed; the message holds the compiler/program output."""


class CsimDeadlock(CsimError, VerificationError):
    """The threaded C simulation deadlocked; `report` is the watchdog's list of blocked streams."""

    def __init__(self, message: str, report: str):
        super().__init__(message)
        self.report = report


def cxx_compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise CsimError(f"C simulation needs a C++17 compiler: {cxx!r} is not on PATH (set CXX or install g++)")
    return cxx


def build_csim(project_dir: Path | str, threaded: bool, extra_flags: list[str] | None = None) -> Path:
    """Compile the testbench (once per mode; rebuilt when a source is newer, or when `extra_flags`
    differ from the build's, which project_dir/csim/<binary>.cmd records) into project_dir/csim."""
    project = Path(project_dir)
    exe = project / "csim" / ("tb_thr" if threaded else "tb_seq")
    sources = [project / s for s in _SOURCES]
    compile_with = [cxx_compiler(), *CXX_FLAGS, *(["-DSD_CSIM_THREADED"] if threaded else []), *(extra_flags or [])]
    command = exe.with_name(f"{exe.name}.cmd")
    if exe.exists() and all(s.stat().st_mtime <= exe.stat().st_mtime for s in sources) and (
            not extra_flags or command.exists() and command.read_text() == " ".join(compile_with)):
        return exe
    exe.parent.mkdir(exist_ok=True)
    staged = exe.with_name(f".{exe.name}.{os.getpid()}")  # concurrent builds never see half a binary
    cached = _cache_entry(project, compile_with, sources)
    if cached is not None and cached.exists():
        shutil.copy2(cached, staged)
    else:
        cmd = [*compile_with, "tb.cpp", "-o", str(staged.relative_to(project))]  # tb.cpp includes kernel.cpp
        proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
        if proc.returncode:
            staged.unlink(missing_ok=True)
            raise CsimError(f"g++ failed on {project} ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staged, f"{cached}.{os.getpid()}")
            os.replace(f"{cached}.{os.getpid()}", cached)
    os.replace(staged, exe)
    command.write_text(" ".join(compile_with))
    return exe


def _cache_entry(project: Path, command: list[str], sources: list[Path]) -> Path | None:
    """Where $STREAMDSL_CSIM_CACHE keeps the binary of this compile (keyed by the command and the
    sources' bytes), or None without that variable. Mutation testing sets it: most mutants of the
    emitter leave most tests' C++ unchanged, and g++ is most of those tests' time."""
    root = os.environ.get("STREAMDSL_CSIM_CACHE")
    if not root:
        return None
    key = hashlib.sha256("\0".join(command).encode())
    for source in sources:
        key.update(source.relative_to(project).as_posix().encode() + b"\0" + source.read_bytes())
    return Path(root) / key.hexdigest()


def run_csim(
    project_dir: Path | str, *arrays: np.ndarray, threaded: bool = False, seed: int | None = None, timeout: float = 300.0
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Run the kernel in C simulation on `arrays` (the inputs in argument order; bound weights
    the project stores in data/ may be left out) and return its output(s) as numpy arrays.
    `seed` (threaded mode): perturb the schedule of the processes, pausing them at stream
    accesses on a pattern drawn from the seed, to explore other interleavings (hls_stream.h).

    Raises CsimDeadlock (threaded mode) naming the blocked processes and streams, CsimError if
    the build or the run fails."""
    return _run(Path(project_dir), arrays, threaded, seed, timeout)[0]


def csim_cycles(project_dir: Path | str, *arrays: np.ndarray, timeout: float = 300.0) -> dict[str, Any]:
    """Sequential csim's cycle estimate (the counters of sd_support.h): `{"processes": {node:
    {"busy", "finish"}}, "beats": {stream: beats written}, "makespan"}`, processes and streams
    named as the simulators name them (manifest.json). `busy` is a process's own cycles (II per
    pipelined iteration, the pipeline depth per loop entry); `finish` and `makespan` also wait for
    data, as with infinite FIFOs."""
    project = Path(project_dir)
    manifest = json.loads((project / "manifest.json").read_text())
    _, cycles = _run(project, arrays, False, None, timeout, cycles=True)
    nodes = manifest["nodes"]
    streams = {s["var"]: s["name"] for s in manifest["streams"]}
    return {
        "processes": {nodes[fn]: clock for fn, clock in cycles["processes"].items()},
        "beats": {streams.get(var, var): n for var, n in cycles["beats"].items()},
        "makespan": cycles["makespan"],
    }


def model_cycles(design: Any) -> dict[str, int]:
    """Per kernel node of a compiled design, the timing model's latency, to set against
    `csim_cycles`' `busy`."""
    return {name: int(task.latency or 0) for name, task in design.graph.tasks.items()}


def _run(
    project: Path, arrays: tuple[np.ndarray, ...], threaded: bool, seed: int | None, timeout: float, cycles: bool = False
) -> tuple[np.ndarray | tuple[np.ndarray, ...], dict[str, Any]]:
    manifest = json.loads((project / "manifest.json").read_text())
    inputs, params = manifest["inputs"], manifest["params"]
    if seed is not None and not threaded:
        raise ValueError("run_csim: a schedule seed needs threaded=True (sequential csim has one schedule)")
    if not len(inputs) - len(params) <= len(arrays) <= len(inputs):
        raise ValueError(f"run_csim: {manifest['top']} takes {len(inputs)} inputs ({len(params)} bound in data/), got {len(arrays)}")
    exe = build_csim(project, threaded)
    work = Path(tempfile.mkdtemp(prefix="run_", dir=project / "csim"))
    try:
        for k, spec in enumerate(inputs):
            path = work / f"{spec['name']}.bin"
            if k < len(arrays):
                array = np.asarray(arrays[k]).reshape(spec["shape"]) if spec.get("scalar") else np.asarray(arrays[k])
                if tuple(array.shape) != tuple(spec["shape"]):
                    raise ValueError(f"run_csim: input {spec['name']} has shape {array.shape}, expected {tuple(spec['shape'])}")
                np.ascontiguousarray(array, dtype=spec["dtype"]).tofile(path)
            else:
                shutil.copy(project / "data" / f"{spec['name']}.bin", path)
        try:
            env = {**os.environ, **({"SD_CSIM_SEED": str(seed)} if seed is not None else {})}
            if cycles:
                env["SD_CYCLES_OUT"] = str(work / "cycles.json")
            proc = subprocess.run([str(exe.resolve()), str(work)], capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise CsimError(f"csim of {manifest['top']} did not finish in {timeout:.0f} s (raise `timeout` for large designs)") from None
        if proc.returncode == DEADLOCK_EXIT:
            raise CsimDeadlock(f"threaded csim of {manifest['top']} deadlocked:\n{proc.stderr.strip()}", proc.stderr)
        if proc.returncode:
            raise CsimError(f"csim of {manifest['top']} exited with {proc.returncode}:\n{proc.stderr.strip()[-4000:]}")
        outs = [np.fromfile(work / f"{s['name']}.bin", dtype=s["dtype"]).reshape(s["shape"]) for s in manifest["outputs"]]
        counted = json.loads((work / "cycles.json").read_text()) if cycles else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return (outs[0] if len(outs) == 1 else tuple(outs)), counted


def csim_verification(
    design: Any, project_dir: Path | str, *arrays: np.ndarray, expected: Any = None, seeds: tuple[int, ...] = SCHEDULE_SEEDS
) -> dict[str, Any]:
    """Both csim modes against the functional simulator of `design` (with its depths), for
    report.json's `verification`: `csim_vs_sim_max_abs` (largest difference over the runs that
    finished), `deadlock_free` (threaded csim finished), the watchdog's report if it did not, and
    seconds per mode (build included). Threaded csim runs once as scheduled by the OS and once
    per schedule seed in `seeds` (mode `threaded_seeded`: other interleavings, see run_csim).
    `expected`: the simulator's outputs, if already computed."""
    want = design.simulate(*arrays) if expected is None else expected
    want_t = want if isinstance(want, tuple) else (want,)
    record: dict[str, Any] = {"csim_vs_sim_max_abs": None, "deadlock_free": True, "csim_seconds": {}, "csim_seeds": list(seeds)}
    runs = [("sequential", False, None), ("threaded", True, None), *(("threaded_seeded", True, seed) for seed in seeds)]
    for mode, threaded, seed in runs:
        start = time.perf_counter()
        try:
            got = run_csim(project_dir, *arrays, threaded=threaded, seed=seed)
        except CsimDeadlock as err:
            record["deadlock_free"], record["deadlock_report"] = False, err.report
            break
        finally:
            record["csim_seconds"][mode] = record["csim_seconds"].get(mode, 0.0) + time.perf_counter() - start
        got_t = got if isinstance(got, tuple) else (got,)
        diff = max(float(np.max(np.abs(np.asarray(g, np.float64) - np.asarray(w, np.float64)), initial=0.0)) for g, w in zip(got_t, want_t))
        record["csim_vs_sim_max_abs"] = max(diff, record["csim_vs_sim_max_abs"] or 0.0)
    return record
