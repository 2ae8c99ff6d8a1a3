"""Vitis HLS C++ backend: emit a Vitis project from a sized dataflow kernel and check it with
g++ C simulation (sequential like Vitis csim, and threaded with bounded FIFOs). docs/hls.md."""

from hls_backend.csim import (
    CsimDeadlock,
    CsimError,
    build_csim,
    csim_cycles,
    csim_verification,
    cxx_compiler,
    model_cycles,
    run_csim,
)
from hls_backend.cxx import HlsEmitError
from hls_backend.emit import KernelSource, emit_kernel
from hls_backend.project import emit_project

__all__ = [
    "CsimDeadlock", "CsimError", "HlsEmitError", "KernelSource", "build_csim", "csim_cycles", "csim_verification", "cxx_compiler",
    "emit_kernel", "emit_project", "model_cycles", "run_csim",
]  # fmt: skip
