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

from hls_backend.cxx import HlsEmitError
from hls_backend.emit import Arg, KernelSource, Port, emit_kernel
from hls_backend.lint import lint_cpp
from streamdsl.output import atomic_output_dir

__all__ = ["PLATFORM", "emit_project", "manifest_of", "write_test_data"]

PLATFORM = "xilinx_u55c_gen3x16_xdma_3_202210_1"
HBM_CHANNELS = 32
_INCLUDE = Path(__file__).parent / "include"


def emit_project(design_or_module: Any, out_dir: Path | str, depths: dict[str, int] | None = None) -> Path:
    """Emit the project for a sized design (`sd.compile(prog)`) into `out_dir`, atomically
    (a failure leaves `out_dir` as it was). `depths` overrides FIFO depths by stream name."""
    kernel = emit_kernel(design_or_module, depths)
    if broken := [str(i) for i in lint_cpp(kernel.code)]:
        raise HlsEmitError(f"kernel {kernel.top}: the emitted C++ breaks HLS coding rules (hls_backend/lint.py):\n  "
                           + "\n  ".join(broken[:10]))
    params = _params(design_or_module, kernel)
    if any(p.channel is None for p in kernel.ports) and len(kernel.ports) > HBM_CHANNELS:
        raise HlsEmitError(f"kernel {kernel.top} has {len(kernel.ports)} DMAs, each with its own HBM port; the U55C has "
                           f"{HBM_CHANNELS} pseudo-channels: run the allocate-hbm-channels pass (lowering.pipeline.lower "
                           "does) so that ports share channels")
    with atomic_output_dir(out_dir) as stage:
        (stage / "include").mkdir()
        (stage / "data").mkdir()
        shutil.copy(_INCLUDE / "hls_stream.h", stage / "include" / "hls_stream.h")
        shutil.copytree(_INCLUDE / "ap_types", stage / "include" / "ap_types")  # for g++ only, with its license
        (stage / "sd_hbm.h").write_text(kernel.hbm_code)
        shutil.copy(_INCLUDE / "sd_support.h", stage / "sd_support.h")
        shutil.copy(_INCLUDE / "sd_io.h", stage / "sd_io.h")
        shutil.copy(_INCLUDE / "sd_fp16.h", stage / "sd_fp16.h")
        (stage / "kernel.cpp").write_text(kernel.code)
        (stage / "tb.cpp").write_text(testbench(kernel))
        (stage / "host.cpp").write_text(host_program(kernel))
        (stage / "link.cfg").write_text(link_config(kernel))
        (stage / "Makefile").write_text(makefile(kernel))
        for name, array in params.items():
            np.ascontiguousarray(array).tofile(stage / "data" / f"{name}.bin")
        manifest = manifest_of(kernel, sorted(params))
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
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
        # the top's m_axi arguments: one per DMA, the tensor packed in its stream's order (hls_backend/hbm.py)
        # (a DMA striped over S ports: stripe s holds words s, s + S, ... of the whole buffer)
        "ports": [{"name": p.name, "tensor": p.tensor.name, "itensor": str(p.it), "bytes": p.nbytes,
                   "words": p.words, "word_bits": p.word_bits, "lanes": p.layout.lanes, "stripe": p.stripe, "stripes": p.stripes,
                   "channel": _channel(kernel, p), **({"members": [m.tensor.name for m in p.members]} if p.members else {})}
                  for p in kernel.ports],  # a dma_sequence's port: its members' buffers one after the other
        "processes": kernel.processes,
        "nodes": kernel.nodes,  # process function -> node name (as the simulators name it)
    }


def _params(design_or_module: Any, kernel: KernelSource) -> dict[str, np.ndarray]:
    """Bound weights of a DSL program (trailing arguments), by C argument name."""
    program = getattr(design_or_module, "program", design_or_module)
    params = list(getattr(program, "params", {}).values())
    if not params:
        return {}
    return {a.name: np.asarray(p, dtype=a.dtype) for a, p in zip(kernel.inputs[-len(params) :], params)}


# -- the generated files ---------------------------------------------------------------------------


def _pack_inputs(kernel: KernelSource) -> list[str]:
    """Load every input tensor and pack it into the HBM bytes of each of its ports (sd_hbm.h)."""
    lines = []
    for a in kernel.inputs:
        lines.append(f'  const std::vector<{a.ctype}> {a.name} = sd_io::load<{a.ctype}>(dir + "/{a.name}.bin", {a.numel});')
    for p in kernel.ports:
        if p.tensor.is_output:
            lines.append(f"  std::vector<unsigned char> hbm_{p.name}({p.nbytes});")
            continue
        for m in p.members or (p,):
            if m.stripe == 0:  # the DMA's whole buffer
                lines += [f"  std::vector<unsigned char> hbm_{m.whole}({m.layout.nbytes});",
                          f"  sd_pack_{m.whole}({m.tensor.name}.data(), hbm_{m.whole}.data());"]
            if m.stripes > 1:  # and its stripes, one per port
                lines += [f"  std::vector<unsigned char> hbm_{m.name}({m.nbytes});",
                          f"  sd_stripe(hbm_{m.whole}.data(), {m.layout.words}, {m.stripes}, {m.stripe}, hbm_{m.name}.data());"]
        if p.members:  # a shared port: its members' buffers one after the other
            lines.append(f"  std::vector<unsigned char> hbm_{p.name};")
            lines += [f"  hbm_{p.name}.insert(hbm_{p.name}.end(), hbm_{m.name}.begin(), hbm_{m.name}.end());" for m in p.members]
    return lines


def _unpack_outputs(kernel: KernelSource) -> list[str]:
    lines = []
    for p in kernel.ports:
        if p.tensor.is_output:
            a = p.tensor
            lines += [f"  std::vector<{a.ctype}> {a.name}({a.numel});", f"  sd_unpack_{p.name}(hbm_{p.name}.data(), {a.name}.data());",
                      f'  sd_io::save(dir + "/{a.name}.bin", {a.name});']
    return lines


def testbench(kernel: KernelSource) -> str:
    lines = [
        f"// C simulation testbench of `{kernel.top}` (generated by streamdsl's hls_backend).",
        "// Usage: tb DIR  -- reads DIR/<input>.bin (raw little-endian, row-major), packs each into its ports' HBM",
        "// layout (sd_hbm.h), runs the kernel, unpacks DIR/<output>.bin and compares it with DIR/reference/<output>.bin",
        "// when present: exit 4 (sd_io::MISMATCH_EXIT) if they differ. SD_DUMP_HBM=1 also writes DIR/<port>.hbm.",
        "#include <cstdint>",
        "#include <cstdlib>",
        "#include <cstring>",
        "#include <string>",
        "#include <vector>",
        "",
        "#include <ap_int.h>",
        '#include "sd_hbm.h"',
        '#include "sd_io.h"',
        "",
        "// The kernel is compiled with the testbench, one translation unit (ap_int.h is parsed once).",
        '#include "kernel.cpp"',
        "",
        *_rtol_defines(kernel),
        "",
        "// HBM bytes <-> a port's W-bit words (512, or narrower), 64 bits at a time, little-endian",
        "template <int W>",
        "static std::vector<ap_uint<W>> to_words(const std::vector<unsigned char>& bytes) {",
        "  std::vector<ap_uint<W>> words(bytes.size() / (W / 8));",
        "  for (size_t i = 0; i < words.size(); ++i)",
        "    for (int c = 0; c < W / 64; ++c) {",
        "      uint64_t v;",
        "      std::memcpy(&v, &bytes[i * (W / 8) + c * 8], 8);",
        "      words[i].range(64 * c + 63, 64 * c) = v;",
        "    }",
        "  return words;",
        "}",
        "template <int W>",
        "static void to_bytes(const std::vector<ap_uint<W>>& words, std::vector<unsigned char>& bytes) {",
        "  for (size_t i = 0; i < words.size(); ++i)",
        "    for (int c = 0; c < W / 64; ++c) {",
        "      const uint64_t v = words[i].range(64 * c + 63, 64 * c).to_uint64();",
        "      std::memcpy(&bytes[i * (W / 8) + c * 8], &v, 8);",
        "    }",
        "}",
        "",
        "int main(int argc, char** argv) {",
        '  const std::string dir = argc > 1 ? argv[1] : "data";',
        '  const bool sd_dump = std::getenv("SD_DUMP_HBM") != nullptr;',
        *_pack_inputs(kernel),
    ]
    lines += [f"  std::vector<{p.word}> words_{p.name} = to_words<{p.word_bits}>(hbm_{p.name});" for p in kernel.ports]
    scalars = [f"{a.name}[0]" for a in kernel.inputs if a.scalar]  # run-time scalars by value (a one-value .bin)
    lines.append(f"  {kernel.top}({', '.join([f'words_{p.name}.data()' for p in kernel.ports] + scalars)});")
    for p in kernel.ports:
        if p.tensor.is_output:
            lines.append(f"  to_bytes(words_{p.name}, hbm_{p.name});")
        lines.append(f'  if (sd_dump) sd_io::save(dir + "/{p.name}.hbm", hbm_{p.name});')
    lines += [*_unpack_outputs(kernel), "  bool sd_ok = true;", *_checks(kernel, "  "), "  return sd_ok ? 0 : sd_io::MISMATCH_EXIT;", "}"]
    return "\n".join(lines) + "\n"


def _rtol(dtype: str) -> float:
    """How far an output may be from the functional simulator's, relative to its scale: 0 for
    integers; floats as the project's csim check (reassociated sums), looser for 16-bit floats."""
    kind = np.dtype(dtype)
    if kind.kind != "f":
        return 0.0
    return {2: 1e-2, 4: 1e-5}.get(kind.itemsize, 1e-9)


def _checks(kernel: KernelSource, indent: str) -> list[str]:
    """Compare every output with DIR/reference/<output>.bin (written by write_test_data), if present."""
    return [f'{indent}sd_ok = sd_io::check("{a.name}", {a.name}, dir + "/reference/{a.name}.bin", SD_RTOL_{a.name.upper()}) && sd_ok;'
            for a in kernel.outputs]


def _rtol_defines(kernel: KernelSource) -> list[str]:
    lines = ["// tolerated difference from the expected outputs, relative to their scale (-D to override)"]
    for a in kernel.outputs:
        lines += [f"#ifndef SD_RTOL_{a.name.upper()}", f"#define SD_RTOL_{a.name.upper()} {_rtol(a.dtype)!r}", "#endif"]
    return lines


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
        '#include "sd_hbm.h"',
        '#include "sd_io.h"',
        "",
        *_rtol_defines(kernel),
        "",
        "int main(int argc, char** argv) {",
        f'  const std::string xclbin = argc > 1 ? argv[1] : "{kernel.top}.xclbin";',
        '  const std::string dir = argc > 2 ? argv[2] : "data";',
        "  xrt::device device(0);",
        "  const auto uuid = device.load_xclbin(xclbin);",
        f'  xrt::kernel kernel(device, uuid, "{kernel.top}");',
        "",
        "  // every tensor packed into each of its ports' HBM layout (sd_hbm.h): the order the DMA streams it",
        *_pack_inputs(kernel),
        "  // one buffer per port, in the HBM pseudo-channel the link step gave it (link.cfg)",
    ]
    for k, p in enumerate(kernel.ports):
        lines.append(f"  xrt::bo bo_{p.name}(device, {p.nbytes}, kernel.group_id({k}));")
    for p in kernel.ports:
        if not p.tensor.is_output:
            lines += [f"  bo_{p.name}.write(hbm_{p.name}.data());", f"  bo_{p.name}.sync(XCL_BO_SYNC_BO_TO_DEVICE);"]
    lines += [
        "",
        f"  auto run = kernel({', '.join(['bo_' + p.name for p in kernel.ports] + [f'{a.name}[0]' for a in kernel.inputs if a.scalar])});",
        "  const ert_cmd_state state = run.wait();",
        "  if (state != ERT_CMD_STATE_COMPLETED) {",
        f'    std::fprintf(stderr, "{kernel.top}: the run ended in state %d, not completed (ERT_CMD_STATE_COMPLETED)\\n", int(state));',
        "    return 2;",
        "  }",
        "  bool sd_ok = true;",
        "",
    ]
    for p in kernel.ports:
        if p.tensor.is_output:
            lines += [f"  bo_{p.name}.sync(XCL_BO_SYNC_BO_FROM_DEVICE);", f"  bo_{p.name}.read(hbm_{p.name}.data());"]
    lines += _unpack_outputs(kernel)
    lines += [
        *_checks(kernel, "  "),
        f'  std::printf("{kernel.top}: done, outputs written to %s\\n", dir.c_str());',
        "  return sd_ok ? 0 : sd_io::MISMATCH_EXIT;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _channel(kernel: KernelSource, port: Port) -> int:
    """The port's pseudo-channel: allocate-hbm-channels' choice, else the port's own (its index)."""
    return port.channel if port.channel is not None else kernel.ports.index(port)


def link_config(kernel: KernelSource) -> str:
    """Each port on its pseudo-channel (lowering/hbm_channels.py: a striped DMA's ports on distinct
    channels, channels shared when ports outnumber them); without an allocation every port has a
    channel of its own."""
    lines = ["[connectivity]", f"nk={kernel.top}:1:{kernel.top}_1"]
    lines += [f"sp={kernel.top}_1.{p.name}:HBM[{_channel(kernel, p)}]" for p in kernel.ports]
    return "\n".join(lines) + "\n"


def makefile(kernel: KernelSource) -> str:
    top = kernel.top
    return f"""# Build `{top}` for the Alveo U55C with Vitis 2024.1 (generated by streamdsl's hls_backend).
#   make xclbin   v++ -c (HLS synthesis) then v++ -l (link against the platform)   hours
#   make host     the XRT host program (needs XILINX_XRT)
#   make csim     g++ C simulation, sequential like Vitis csim; make csim-threaded: bounded FIFOs
# The clock (FREQ_MHZ) goes to both steps: --freqhz (Vitis 2023.2 and later) sets the HLS synthesis
# target in v++ -c and the kernel clock the link step connects in v++ -l.
TOP      := {top}
PLATFORM ?= {PLATFORM}
TARGET   ?= hw
FREQ_MHZ ?= 300
CXX      ?= g++
CSIM_FLAGS := -std=c++17 -O1 -pthread -I include -isystem include/ap_types -I .

.PHONY: all xclbin host csim csim-threaded clean

all: xclbin host

xclbin: $(TOP).xclbin

$(TOP).xo: kernel.cpp sd_support.h sd_fp16.h
\tv++ -c -t $(TARGET) --platform $(PLATFORM) -k $(TOP) --freqhz=$(FREQ_MHZ)MHz -o $@ kernel.cpp

$(TOP).xclbin: $(TOP).xo link.cfg
\tv++ -l -t $(TARGET) --platform $(PLATFORM) --freqhz=$(FREQ_MHZ)MHz --config link.cfg -o $@ $<

host: host.cpp sd_io.h sd_hbm.h sd_fp16.h
\t$(CXX) -std=c++17 -O2 -I$(XILINX_XRT)/include -L$(XILINX_XRT)/lib host.cpp -o host -lxrt_coreutil -pthread

csim/tb_seq: kernel.cpp tb.cpp sd_support.h sd_io.h sd_hbm.h sd_fp16.h include/hls_stream.h
\tmkdir -p csim && $(CXX) $(CSIM_FLAGS) tb.cpp -o $@

csim/tb_thr: kernel.cpp tb.cpp sd_support.h sd_io.h sd_hbm.h sd_fp16.h include/hls_stream.h
\tmkdir -p csim && $(CXX) $(CSIM_FLAGS) -DSD_CSIM_THREADED tb.cpp -o $@

csim: csim/tb_seq
\t./csim/tb_seq data

csim-threaded: csim/tb_thr
\t./csim/tb_thr data

clean:
\trm -rf csim host *.xo *.xclbin _x .Xil *.log *.link_summary *.compile_summary
"""
