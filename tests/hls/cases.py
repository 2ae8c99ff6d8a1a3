"""The programs the HLS tests compile: DSL programs from tests/dsl/programs.py and the tutorials."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from dsl import programs as P
from xdsl.context import Context

import streamdsl as sd
from hls_backend import build_csim, run_csim
from hls_backend.project import write_test_data
from lowering.transforms.insert_converters import InsertConvertersPass
from streamdsl.compiler import Design
from streamdsl.dialects.dataflow import DmaLoadOp

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas"]  # `#pragma HLS` is for Vitis, not g++
# The vendor ap_private's default constructor clears the unused bits of a value it has not set yet
# (inlined from the ap_types headers, so -isystem does not hide it): GCC 12 reports it as a
# maybe-uninitialized read of 4-bit ap_int values, or, where it inlines deeper (a design with packed
# MACs, docs/hls.md), an uninitialized one. The bits it reads are overwritten right after.
INT4_WARNINGS = [*WARNINGS, "-Wno-maybe-uninitialized", "-Wno-uninitialized"]


def tutorial(name: str):  # noqa: ANN201 - a module
    spec = importlib.util.spec_from_file_location(f"hls_tutorial_{name}", TUTORIALS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tutorial_matvec(which: str) -> P.Case:
    t = tutorial("02_matvec_reuse")
    k, n, tile = 64, 96, 32
    return P.Case(t.build(k, n, tile)[which], P.inputs(P.rand(1, k), P.rand(k, n)), lambda x, w: t.reference(which, x, w))


def _tutorial_elementwise() -> P.Case:
    t = tutorial("01_elementwise")
    return P.Case(t.build(2, 128, 32), P.inputs(P.rand(2, 128)), t.reference)


def _tutorial_attention() -> P.Case:
    t = tutorial("03_streaming_attention")
    h, cache, dh, rows = 2, 32, 16, 8
    return P.Case(t.build(h, cache, dh, rows), P.inputs(P.rand(h, dh), P.rand(h, cache, dh), P.rand(h, cache, dh)), t.reference)


def planned(case: P.Case) -> P.Case:
    """The case with its converters planned (bank shape, shared loops), as `streamdsl compile` does."""
    InsertConvertersPass().apply(Context(), case.program.module)
    return case


def regrid(r: int = 4, d: int = 64, src_tile: tuple[int, int] = (1, 16)) -> P.Case:
    """(1, 16) tiles (or `src_tile`) re-cut into (2, 8) tiles: the planned converter shares the
    row-pair loop, so it cycles through two banks (ping-pong) of one row pair each."""
    src = sd.itensor.tiled(sd.f32, shape=(r, d), tile=src_tile)
    dst = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(2, 8))

    @sd.kernel
    def pre(x: src) -> src:
        for i in range(src.num_tokens):
            yield x.read() * 3.0

    @sd.kernel
    def post(y: dst) -> dst:
        for i in range(dst.num_tokens):
            yield y.read() + 1.0

    @sd.dataflow
    def regrid_prog(x: sd.Tensor[sd.f32, (r, d)]):
        return post(pre(x))

    return planned(P.Case(regrid_prog, P.inputs(P.rand(r, d)), lambda x: x * 3.0 + 1.0))


def held_regrid(r: int = 4, d: int = 64) -> P.Case:
    """A reconvergent pair behind a two-bank converter: one branch holds a row pair before
    emitting it, the other goes straight to the join (its FIFO must hold a row pair)."""
    src = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(1, 16))
    dst = sd.itensor.tiled(sd.f32, shape=(r, d), tile=(2, 8))
    per_pair = dst.num_tokens // (r // 2)

    @sd.kernel
    def pre(x: src) -> src:
        for i in range(src.num_tokens):
            yield x.read() * 3.0

    @sd.kernel
    def hold(y: dst) -> dst:
        for i in range(r // 2):
            buf = sd.zeros((per_pair, 2, 8))
            for j in range(per_pair):
                buf[j] = y.read()
            for j in range(per_pair):
                yield buf[j] + 1.0

    @sd.kernel
    def mul(a: dst, b: dst) -> dst:
        for i in range(dst.num_tokens):
            yield a.read() * b.read()

    @sd.dataflow
    def held(x: sd.Tensor[sd.f32, (r, d)]):
        y = pre(x)
        return mul(hold(y), y)

    return planned(P.Case(held, P.inputs(P.rand(r, d)), lambda x: (3.0 * x + 1.0) * (3.0 * x)))


def ffn_block() -> P.Case:
    """The main job's default program (toolchain/examples.py), small, converters planned."""
    from toolchain.examples import ffn_block as example

    ex = example(64, 256, 32)
    return planned(P.Case(ex.program, lambda rng: ex.make_inputs(int(rng.integers(1 << 16))), ex.reference))


CASES: dict[str, Callable[[], P.Case]] = {
    "elementwise_chain": lambda: P.elementwise_chain(2, 64, 16),
    "row_stats": lambda: P.row_stats(4, 64, 16),
    "layernorm": lambda: P.layernorm(2, 64, 16),
    "rmsnorm": lambda: P.rmsnorm(2, 64, 16),
    "softmax": lambda: P.softmax(2, 64, 16),
    "matvec": lambda: P.matvec(64, 128, 32),
    "matmul": lambda: P.matmul(16, 16, 32, 8),
    "transpose": lambda: P.transpose(32, 64, 16),
    "transpose_planned": lambda: planned(P.transpose(32, 64, 16)),
    "regrid_planned": regrid,
    "held_regrid_planned": held_regrid,
    "fork_join": lambda: P.fork_join(2, 64, 16),
    "diamond": lambda: P.diamond(2, 64, 16),
    "gelu_mlp": lambda: P.gelu_mlp(32, 64, 16),
    "silu_mlp": lambda: P.silu_mlp(32, 32, 16),
    "matvec_cached": lambda: P.matvec_cached(48, 16, 16),
    "split_sign": lambda: P.split_sign(2, 64, 16),
    "ffn_block": ffn_block,
    "tutorial01_elementwise": _tutorial_elementwise,
    "tutorial02_replay": lambda: _tutorial_matvec("replay"),
    "tutorial02_buffered": lambda: _tutorial_matvec("buffered"),
    "tutorial02_converted": lambda: planned(_tutorial_matvec("converted")),
    "tutorial03_attention": _tutorial_attention,
}


def as_tuple(value: object) -> tuple[np.ndarray, ...]:
    return value if isinstance(value, tuple) else (value,)  # type: ignore[return-value]


def assert_close(got: object, want: object, rtol: float, what: str) -> None:
    """Every output within `rtol` of the reference, relative to the output's scale (sums over
    tiles may be ordered differently, so single near-zero elements get an absolute floor)."""
    got_t, want_t = as_tuple(got), as_tuple(want)
    assert len(got_t) == len(want_t), f"{what}: {len(got_t)} outputs, expected {len(want_t)}"
    for i, (g, w) in enumerate(zip(got_t, want_t)):
        w = np.asarray(w, dtype=np.float64)
        assert g.shape == w.shape, f"{what}: output {i} has shape {g.shape}, expected {w.shape}"
        scale = max(float(np.abs(w).max()), 1e-30)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, err_msg=f"{what}: output {i}")


def dumped_hbm(project: Path, design: Design, xs: tuple[np.ndarray, ...]) -> Path:
    """Run the csim testbench on `xs` with SD_DUMP_HBM=1: DIR/<port>.hbm holds the bytes it packed
    for each port, DIR/<input>.bin each input; returns DIR."""
    write_test_data(project, xs, design.simulate(*xs))
    data = project / "data"
    done = subprocess.run([str(build_csim(project, False)), str(data)], check=False, env={**os.environ, "SD_DUMP_HBM": "1"},
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return data


def loaded_input(design: Design, data: Path, name: str) -> tuple[sd.itensor, np.ndarray]:
    """The stream of the DMA that loads input `name`, and the input's values in DIR/<name>.bin."""
    load = next(op for op in design.kernel.body.block.ops if isinstance(op, DmaLoadOp) and op.source.name_hint == name)
    it = load.result.type.itensor
    return it, np.fromfile(data / f"{name}.bin", dtype=it.dtype.storage).reshape(it.shape)


def assert_csim_as_simulated(case: P.Case, design: Design, project: Path, seed: int, what: str) -> None:
    """csim of `project`, sequential and threaded (FIFOs at their sized depths), computes what the
    functional simulator computes on the case's inputs for `seed`."""
    xs = case.inputs(np.random.default_rng(seed))
    want = design.simulate(*xs)
    for mode, got in csim_modes(project, *xs):
        assert_close(got, want, 1e-5, f"{what} {mode} csim")


def csim_modes(project: Path, *args: object, flags: list[str] = WARNINGS, timeout: float = 300.0) -> Iterator[tuple[str, Any]]:
    """Build `project`'s testbench with `flags` (every g++ warning an error) and run it on `args`, first
    sequential, then threaded (a thread per process, FIFOs bounded at their sized depths, so an
    undersized one deadlocks): (mode, outputs) of each."""
    for threaded in (False, True):
        build_csim(project, threaded, extra_flags=flags)
        yield ("threaded" if threaded else "sequential"), run_csim(project, *args, threaded=threaded, timeout=timeout)
