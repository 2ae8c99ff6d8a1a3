"""16-bit floats and integers through the HLS backend: sd_fp16.h's conversions agree with numpy
(f16) and the simulators' bf16 rounding on every half and on ties; f16 / bf16 / i8 / i32 ports
and tiles run in csim and match the functional simulator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import emit_project, run_csim
from hls_backend.csim import cxx_compiler
from hls_backend.hbm import pack
from streamdsl.sim._codegen import round_bf16

from .cases import csim_modes

INCLUDE = Path(__file__).resolve().parents[2] / "hls_backend" / "include"
R = 4

CONVERT = r"""
#include <cstdio>
#include "sd_fp16.h"
int main() {
  unsigned u;  // float32 bits in, f16 bits, bf16 bits and the f16 value's float32 bits out
  while (std::scanf("%x", &u) == 1) {
    const float f = sd_f32_from_bits(u);
    std::printf("%x %x %x\n", sd_f16_bits(f), sd_bf16_bits(f), sd_f32_bits(sd_f16_value(sd_f16_bits(f))));
  }
}
"""


def test_fp16_conversions_match_numpy(tmp_path: Path) -> None:
    (tmp_path / "c.cpp").write_text(CONVERT)
    exe = tmp_path / "c"
    subprocess.run([cxx_compiler(), "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(INCLUDE), "c.cpp", "-o", "c"],
                   cwd=tmp_path, check=True)
    rng = np.random.default_rng(0)
    halves = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)  # every finite positive half
    with np.errstate(over="ignore"):
        values = np.concatenate([
            (rng.standard_normal(5000) * 10.0 ** rng.integers(-9, 6, 5000)).astype(np.float32),
            halves.astype(np.float32), -halves.astype(np.float32),
            ((halves[:-1] + halves[1:]) / 2).astype(np.float32),  # ties: nearest even
            np.array([65519, 65520, 1e6, 2**-25, 3 * 2**-26, 1e-30, np.inf, -np.inf, np.nan], np.float32),
        ])  # fmt: skip
        out = subprocess.run([str(exe)], input="\n".join(f"{b:x}" for b in values.view(np.uint32)), capture_output=True,
                             text=True, check=True).stdout.split()
        f16 = np.array([int(v, 16) for v in out[0::3]], np.uint16)
        bf16 = np.array([int(v, 16) for v in out[1::3]], np.uint32) << 16
        back = np.array([int(v, 16) for v in out[2::3]], np.uint32).view(np.float32)
        nan = np.isnan(values)
        np.testing.assert_array_equal(f16[~nan], values[~nan].astype(np.float16).view(np.uint16))
        np.testing.assert_array_equal(bf16.view(np.float32)[~nan], round_bf16(values[~nan]))
        np.testing.assert_array_equal(back[~nan], values[~nan].astype(np.float16).astype(np.float32))
    assert np.isnan(f16.view(np.float16)[nan]).all() and np.isnan(bf16.view(np.float32)[nan]).all()


def _float_program(dt: sd.DType):  # noqa: ANN202 - a DSL program
    """An element-wise chain and a row sum (a reduction carried in the 16-bit type)."""
    IO = sd.itensor.tiled(dt, shape=(R, 64), tile=(1, 16))
    S = sd.itensor.tiled(dt, shape=(R, 16), tile=(1, 16))

    @sd.kernel
    def act(x: IO) -> IO:
        for i in range(R * 4):
            v = x.read()
            yield sd.exp(v) * 0.5 + v * v - 1.25

    @sd.kernel
    def fold(x: IO) -> S:
        for r in range(R):
            acc = sd.zeros((1, 16), dt)
            for c in range(4):
                acc = acc + x.read()
            yield acc

    @sd.dataflow
    def prog(x: sd.Tensor[dt, (R, 64)]):
        return fold(act(x))

    return prog


@pytest.mark.parametrize("dt", [sd.f16, sd.bf16], ids=lambda d: d.name)
def test_16_bit_float_ports_and_tiles_match_the_simulator(dt: sd.DType, tmp_path: Path) -> None:
    x = np.random.default_rng(3).standard_normal((R, 64)).astype(dt.storage)
    x = round_bf16(x) if dt.name == "bf16" else x  # HBM holds bf16: give the simulator the same values
    design = sd.compile(_float_program(dt))
    want = design.simulate(x)
    project = emit_project(design, tmp_path / dt.name)
    assert "sd_" + dt.name in (project / "kernel.cpp").read_text()
    for mode, got in csim_modes(project, x):
        assert got.dtype == want.dtype == dt.storage
        np.testing.assert_array_equal(got, want, err_msg=f"{mode} csim")  # the same roundings, op for op
    load = design.kernel.body.block.first_op.result.type.itensor
    assert pack(x, load).size == load.num_tokens * 64  # a (1, 16) tile of 16-bit lanes fills half of its 64-byte word


@pytest.mark.parametrize("dt", [sd.i4, sd.i8, sd.i32], ids=lambda d: d.name)
def test_integer_ports_and_tiles_match_the_simulator(dt: sd.DType, tmp_path: Path) -> None:
    IO = sd.itensor.tiled(dt, shape=(R, 64), tile=(1, 64))

    @sd.kernel
    def swap(x: IO) -> IO:
        for r in range(R):
            v = x.read()
            yield sd.concat([v[:, 40:], v[:, :40]], axis=1)

    @sd.dataflow
    def prog(x: sd.Tensor[dt, (R, 64)]):
        return swap(x)

    low, high = (-8, 7) if dt.bits == 4 else (np.iinfo(dt.storage).min, np.iinfo(dt.storage).max)
    x = np.random.default_rng(4).integers(low, high, (R, 64), endpoint=True).astype(dt.storage)
    design = sd.compile(prog)
    project = emit_project(design, tmp_path / dt.name)
    got = run_csim(project, x)
    assert got.dtype == dt.storage
    np.testing.assert_array_equal(got, design.simulate(x))
    np.testing.assert_array_equal(got, np.concatenate([x[:, 40:], x[:, :40]], axis=1))
