"""Write a Vitis project directory for one kernel (docs/hls.md has the layout).

    kernel.cpp  sd_support.h  sd_io.h   the kernel (Vitis HLS C++) and its helpers
    tb.cpp                               csim testbench: data/<input>.bin -> kernel -> <dir>/<output>.bin
    include/hls_stream.h                 our stream class, for g++ csim only (never for synthesis)
    host.cpp                             XRT native host program (same binary files)
    link.cfg  Makefile                   v++ -c / v++ -l for the U55C, csim targets
    manifest.json  data/                 arguments (shapes, dtypes), streams, bound weights
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hls_backend.emit import Arg, KernelSource, emit_kernel
from streamdsl.output import atomic_output_dir

__all__ = ["PLATFORM", "emit_project", "manifest_of", "write_test_data"]

PLATFORM = "xilinx_u55c_gen3x16_xdma_3_202210_1"
HBM_CHANNELS = 32
_INCLUDE = Path(__file__).parent / "include"


def emit_project(design_or_module: Any, out_dir: Path | str, depths: dict[str, int] | None = None) -> Path:
    """Emit the project for a sized design (`sd.compile(prog)`) into `out_dir`, atomically
    (a failure leaves `out_dir` as it was). `depths` overrides FIFO depths by stream name."""
    kernel = emit_kernel(design_or_module, depths)
    params = _params(design_or_module, kernel)
    if len(kernel.args) > HBM_CHANNELS:
        raise ValueError(f"kernel {kernel.top} has {len(kernel.args)} HBM arguments; the U55C has {HBM_CHANNELS} pseudo-channels")
    with atomic_output_dir(out_dir) as stage:
        (stage / "include").mkdir()
        (stage / "data").mkdir()
        shutil.copy(_INCLUDE / "hls_stream.h", stage / "include" / "hls_stream.h")
        shutil.copy(_INCLUDE / "sd_support.h", stage / "sd_support.h")
        shutil.copy(_INCLUDE / "sd_io.h", stage / "sd_io.h")
        (stage / "kernel.cpp").write_text(kernel.code)
        (stage / "tb.cpp").write_text(testbench(kernel))
        (stage / "host.cpp").write_text(host_program(kernel))
        (stage / "link.cfg").write_text(link_config(kernel))
        (stage / "Makefile").write_text(makefile(kernel))
        for name, array in params.items():
            np.ascontiguousarray(array).tofile(stage / "data" / f"{name}.bin")
        (stage / "manifest.json").write_text(json.dumps(manifest_of(kernel, sorted(params)), indent=2) + "\n")
    return Path(out_dir).resolve()


def write_test_data(project_dir: Path | str, arrays: Sequence[np.ndarray], outputs: Any) -> None:
    """Store a test case in the project: the inputs `arrays` (in argument order; bound weights
    are already there) as data/<input>.bin, so `make csim` and `streamdsl build` run as is, and the
    expected `outputs` (the functional simulator's) as data/reference/<output>.bin."""
    project = Path(project_dir)
    manifest = json.loads((project / "manifest.json").read_text())
    for spec, array in zip(manifest["inputs"], arrays):
        np.ascontiguousarray(array, dtype=spec["dtype"]).reshape(spec["shape"]).tofile(project / "data" / f"{spec['name']}.bin")
    (project / "data" / "reference").mkdir(exist_ok=True)
    for spec, array in zip(manifest["outputs"], outputs if isinstance(outputs, tuple | list) else (outputs,)):
        np.ascontiguousarray(array, dtype=spec["dtype"]).tofile(project / "data" / "reference" / f"{spec['name']}.bin")


def manifest_of(kernel: KernelSource, params: list[str]) -> dict[str, Any]:
    def arg(a: Arg) -> dict[str, Any]:
        return {"name": a.name, "shape": list(a.shape), "dtype": a.dtype, "ctype": a.ctype, "scalar": a.scalar}

    return {
        "top": kernel.top,
        "platform": PLATFORM,
        "inputs": [arg(a) for a in kernel.inputs],
        "outputs": [arg(a) for a in kernel.outputs],
        "params": params,  # inputs whose data/<name>.bin holds bound weights
        "streams": [{"name": s.name, "var": s.var, "depth": s.depth, "producer": s.producer, "consumer": s.consumer}
                    for s in kernel.streams],
        "processes": kernel.processes,
    }


def _params(design_or_module: Any, kernel: KernelSource) -> dict[str, np.ndarray]:
    """Bound weights of a DSL program (trailing arguments), by C argument name."""
    program = getattr(design_or_module, "program", design_or_module)
    params = list(getattr(program, "params", {}).values())
    if not params:
        return {}
    return {a.name: np.asarray(p, dtype=a.dtype) for a, p in zip(kernel.inputs[-len(params) :], params)}


# -- the generated files ---------------------------------------------------------------------------


def _decl(kernel: KernelSource) -> str:
    params = [a.param for a in kernel.args]
    return f'extern "C" void {kernel.top}({", ".join(params)});'


def testbench(kernel: KernelSource) -> str:
    lines = [
        f"// C simulation testbench of `{kernel.top}` (generated by streamdsl's hls_backend).",
        "// Usage: tb DIR  -- reads DIR/<input>.bin (raw little-endian, row-major), writes DIR/<output>.bin.",
        "#include <cstdint>",
        "#include <string>",
        "#include <vector>",
        "",
        '#include "sd_io.h"',
        "",
        _decl(kernel),
        "",
        "int main(int argc, char** argv) {",
        '  const std::string dir = argc > 1 ? argv[1] : "data";',
    ]
    for a in kernel.inputs:
        lines.append(f'  const std::vector<{a.ctype}> {a.name} = sd_io::load<{a.ctype}>(dir + "/{a.name}.bin", {a.numel});')
    for a in kernel.outputs:
        lines.append(f"  std::vector<{a.ctype}> {a.name}({a.numel});")
    lines.append(f"  {kernel.top}({', '.join(_call_arg(a) for a in kernel.args)});")
    for a in kernel.outputs:
        lines.append(f'  sd_io::save(dir + "/{a.name}.bin", {a.name});')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def _call_arg(a: Arg, prefix: str = "") -> str:
    """A run-time scalar is passed by value (its .bin file holds one value), a tensor by pointer."""
    return f"{a.name}[0]" if a.scalar else f"{prefix}{a.name}" if prefix else f"{a.name}.data()"


def host_program(kernel: KernelSource) -> str:
    lines = [
        f"// XRT host program for `{kernel.top}` on the U55C (generated by streamdsl's hls_backend).",
        f"// Usage: host {kernel.top}.xclbin DIR  -- same binary files as the csim testbench (tb.cpp).",
        "#include <cstdint>",
        "#include <cstdio>",
        "#include <string>",
        "#include <vector>",
        "",
        "#include <xrt/xrt_bo.h>",
        "#include <xrt/xrt_device.h>",
        "#include <xrt/xrt_kernel.h>",
        "",
        '#include "sd_io.h"',
        "",
        "int main(int argc, char** argv) {",
        f'  const std::string xclbin = argc > 1 ? argv[1] : "{kernel.top}.xclbin";',
        '  const std::string dir = argc > 2 ? argv[2] : "data";',
        "  xrt::device device(0);",
        "  const auto uuid = device.load_xclbin(xclbin);",
        f'  xrt::kernel kernel(device, uuid, "{kernel.top}");',
        "",
        "  // one buffer per argument, in the HBM bank the link step chose for it (link.cfg)",
    ]
    for k, a in enumerate(kernel.args):
        if a.scalar:
            continue
        size = f"{a.numel} * sizeof({a.ctype})"
        lines.append(f"  xrt::bo bo_{a.name}(device, {size}, kernel.group_id({k}));")
    for a in kernel.inputs:
        lines.append(f'  const std::vector<{a.ctype}> {a.name} = sd_io::load<{a.ctype}>(dir + "/{a.name}.bin", {a.numel});')
        if not a.scalar:
            lines += [f"  bo_{a.name}.write({a.name}.data());", f"  bo_{a.name}.sync(XCL_BO_SYNC_BO_TO_DEVICE);"]
    lines += ["", f"  auto run = kernel({', '.join(_call_arg(a, 'bo_') for a in kernel.args)});", "  run.wait();", ""]
    for a in kernel.outputs:
        lines += [
            f"  std::vector<{a.ctype}> {a.name}({a.numel});",
            f"  bo_{a.name}.sync(XCL_BO_SYNC_BO_FROM_DEVICE);",
            f"  bo_{a.name}.read({a.name}.data());",
            f'  sd_io::save(dir + "/{a.name}.bin", {a.name});',
        ]
    lines += [f'  std::printf("{kernel.top}: done, outputs written to %s\\n", dir.c_str());', "  return 0;", "}"]
    return "\n".join(lines) + "\n"


def link_config(kernel: KernelSource) -> str:
    """One HBM pseudo-channel per argument (distinct channels: no two arguments share a port)."""
    lines = ["[connectivity]", f"nk={kernel.top}:1:{kernel.top}_1"]
    lines += [f"sp={kernel.top}_1.{a.name}:HBM[{k}]" for k, a in enumerate(a for a in kernel.args if not a.scalar)]
    return "\n".join(lines) + "\n"


def makefile(kernel: KernelSource) -> str:
    top = kernel.top
    return f"""# Build `{top}` for the Alveo U55C with Vitis 2024.1 (generated by streamdsl's hls_backend).
#   make xclbin   v++ -c (HLS synthesis) then v++ -l (link against the platform)   hours
#   make host     the XRT host program (needs XILINX_XRT)
#   make csim     g++ C simulation, sequential like Vitis csim; make csim-threaded: bounded FIFOs
TOP      := {top}
PLATFORM ?= {PLATFORM}
TARGET   ?= hw
FREQ_MHZ ?= 300
CXX      ?= g++
CSIM_FLAGS := -std=c++17 -O1 -pthread -I include -I .

.PHONY: all xclbin host csim csim-threaded clean

all: xclbin host

xclbin: $(TOP).xclbin

$(TOP).xo: kernel.cpp sd_support.h
\tv++ -c -t $(TARGET) --platform $(PLATFORM) -k $(TOP) --kernel_frequency $(FREQ_MHZ) -o $@ kernel.cpp

$(TOP).xclbin: $(TOP).xo link.cfg
\tv++ -l -t $(TARGET) --platform $(PLATFORM) --config link.cfg -o $@ $<

host: host.cpp sd_io.h
\t$(CXX) -std=c++17 -O2 -I$(XILINX_XRT)/include -L$(XILINX_XRT)/lib host.cpp -o host -lxrt_coreutil -pthread

csim/tb_seq: kernel.cpp tb.cpp sd_support.h sd_io.h include/hls_stream.h
\tmkdir -p csim && $(CXX) $(CSIM_FLAGS) kernel.cpp tb.cpp -o $@

csim/tb_thr: kernel.cpp tb.cpp sd_support.h sd_io.h include/hls_stream.h
\tmkdir -p csim && $(CXX) $(CSIM_FLAGS) -DSD_CSIM_THREADED kernel.cpp tb.cpp -o $@

csim: csim/tb_seq
\t./csim/tb_seq data

csim-threaded: csim/tb_thr
\t./csim/tb_thr data

clean:
\trm -rf csim host *.xo *.xclbin _x .Xil *.log *.link_summary *.compile_summary
"""
