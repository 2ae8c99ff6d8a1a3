"""Narrow multiply-accumulates packed two output rows to a DSP48E2 (docs/hls.md, "Packed MACs"):
the resource model charges what the emitter writes, and the emitted C++, compiled with g++, is
bit-exact against the functional simulator and numpy, at the extremes of int8 x int4 too."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

import streamdsl as sd
from hls_backend import emit_project
from lowering.resources import (
    MAC_IMPL,
    U55C_COSTS,
    U55C_DEVICE,
    Device,
    PackedMacs,
    Usage,
    bind_macs,
    kernel_usage,
    logic_usage,
    op_cost,
    packed_macs,
    task_usage,
)
from streamdsl.dialects.dataflow import TaskOp

from .cases import INT4_WARNINGS, csim_modes


def int_matvec(k: int, n: int, tn: int, weights: sd.DType = sd.i4) -> sd.Kernel:
    X = sd.itensor.tiled(sd.i8, shape=(1, k), tile=(1, k))
    W = sd.itensor.tiled(weights, shape=(k, n), tile=(k, tn), order=(1, 0))
    ACC = sd.itensor.tiled(sd.i32, shape=(1, n), tile=(1, tn))

    @sd.kernel(name=f"matvec_{k}x{n}_{weights.name}")
    def matvec(x: X, w: W, acc: sd.Out[ACC]):
        v = x.read()
        for j in range(n // tn):
            acc.write(v @ w.read())

    return matvec


def _task(design) -> TaskOp:  # noqa: ANN001 - an sd.compile design
    return next(op for op in design.module.walk() if isinstance(op, TaskOp))


def _tile_op(design):  # noqa: ANN001, ANN202
    return next(op for op in _task(design).walk() if op.name == "linalg.generic")


def test_an_int4_matvec_packs_its_rows_and_an_int8_one_over_a_long_sum_does_not() -> None:
    assert packed_macs(_tile_op(sd.compile(int_matvec(64, 32, 8).program))) == PackedMacs(row=1, reduced=2, shared=0, packed_bits=4)
    # 128 terms of up to 128 x 8 reach 2^17: the low field would overflow
    assert packed_macs(_tile_op(sd.compile(int_matvec(128, 32, 8).program))) is None
    # int8 x int8: 2^14 a product, so only sums of fewer than 8 terms fit a field
    assert packed_macs(_tile_op(sd.compile(int_matvec(64, 32, 8, sd.i8).program))) is None


def test_a_packed_mac_costs_half_a_dsp_and_its_add_is_in_the_slice() -> None:
    op = _tile_op(sd.compile(int_matvec(64, 32, 8).program))
    extensions = Usage.total(U55C_COSTS.core(inner).usage() for inner in op.regions[0].block.ops if inner.name == "arith.extsi")
    # by hand: 1/2 DSP48E2 and the unpacking's share, 2 LUTs and 2 FFs
    assert op_cost(op) == extensions + Usage(DSP=0.5, LUT=2, FF=2)
    # in LUTs: the multiplier (24 LUTs, 16 FFs) and the 32-bit adder (32 and 32)
    assert op_cost(op, fabric=True) == extensions + Usage(LUT=24 + 32, FF=16 + 32)
    # outside a pipelined loop the emitter does not pack: a whole slice a multiply and the adder
    assert op_cost(op, pipelined=False) == extensions + Usage(DSP=1, LUT=(8 + 4) / 2 + 32, FF=12 + 32)


def test_an_int8_mac_the_emitter_does_not_pack_takes_a_whole_slice() -> None:
    op = _tile_op(sd.compile(int_matvec(64, 32, 8, sd.i8).program))  # W8A8: a field would overflow
    extensions = Usage.total(U55C_COSTS.core(inner).usage() for inner in op.regions[0].block.ops if inner.name == "arith.extsi")
    assert op_cost(op) == extensions + Usage(DSP=1, LUT=(8 + 8) / 2 + 32, FF=16 + 32)


def test_bind_macs_moves_a_task_to_luts_only_when_that_relieves_the_busier_resource() -> None:
    task = _task(sd.compile(int_matvec(64, 32, 8).program))
    packed = task_usage(task)
    task.attributes[MAC_IMPL] = StringAttr("fabric")
    fabric = task_usage(task)
    assert fabric.DSP < packed.DSP and fabric.LUT > packed.LUT
    few_dsps = Device("few DSPs", 1, Usage(DSP=packed.DSP, LUT=100 * fabric.LUT, FF=10**9), 0)
    assert bind_macs([task], task_usage, device=few_dsps) == fabric
    assert task.attributes[MAC_IMPL] == StringAttr("fabric")
    assert bind_macs([task], task_usage, device=U55C_DEVICE) == packed  # the U55C has DSPs to spare for one
    assert MAC_IMPL not in task.attributes


def test_the_memories_luts_count_when_the_macs_are_bound() -> None:
    """On a device whose DSPs the packed MACs fill exactly, and whose LUTs hold the MACs in fabric
    with the logic, but not with the memories too: the logic alone moves the task to LUTs, while
    `kernel_usage`, which counts the FIFOs' and buffers' LUTRAM (LUTs the MACs compete for) in the
    binding, keeps it packed, the LUTs then no less busy than the DSPs were. Its binding is the one
    the emitter follows (the driver counts the design with `kernel_usage` before emitting it)."""
    design = sd.compile(int_matvec(64, 32, 8).program)
    kernel, task = design.kernel, _task(design)
    logic = Usage.total(logic_usage(kernel).values())  # on the U55C the task stays packed
    assert MAC_IMPL not in task.attributes
    packed = task_usage(task)
    task.attributes[MAC_IMPL] = StringAttr("fabric")
    fabric = task_usage(task)
    task.attributes.pop(MAC_IMPL)
    memories = kernel_usage(kernel, design.graph, design.depths).total + logic * -1
    assert memories.LUT > 0 and memories.DSP == 0
    luts = logic.LUT - packed.LUT + fabric.LUT + memories.LUT  # with the task in LUTs and the memories: exactly full
    tight = Usage(DSP=logic.DSP, LUT=luts, FF=10**9, BRAM36=10**6, URAM=10**6, LUTRAM=10**9)
    u55c = U55C_DEVICE.per_slr
    object.__setattr__(U55C_DEVICE, "per_slr", tight * (1 / U55C_DEVICE.slrs))  # the default device bind_macs took
    try:
        logic_usage(kernel)
        assert task.attributes[MAC_IMPL] == StringAttr("fabric")  # 100% of the DSPs against less than 100% of the LUTs
        usage = kernel_usage(kernel, design.graph, design.depths)
    finally:
        object.__setattr__(U55C_DEVICE, "per_slr", u55c)
    assert MAC_IMPL not in task.attributes  # in LUTs, 100% of them: not less busy than the DSPs packed
    assert usage.total.LUT == pytest.approx(logic.LUT + memories.LUT) and usage.total.DSP == pytest.approx(logic.DSP)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("values", ["extremes", "random"])
def test_packed_matvec_csim_is_bit_exact(values: str, tmp_path) -> None:  # noqa: ANN001
    k, n, tn = 64, 32, 8
    rng = np.random.default_rng(7)
    if values == "extremes":  # each field at its largest sum (64 x -128 x -8 = 2^16) or its smallest (64 x -128 x 7)
        x = np.full((1, k), -128, np.int8)
        w = np.tile(np.array([-8, 7, 7, -8], np.int8), (k, n // 4))
    else:
        x = rng.integers(-128, 128, (1, k), dtype=np.int8)
        w = rng.integers(-8, 8, (k, n), dtype=np.int8)
    design = sd.compile(int_matvec(k, n, tn).program)
    (acc,) = design.simulate(x, w)
    np.testing.assert_array_equal(acc.reshape(1, n), x.astype(np.int64) @ w.astype(np.int64))
    project = emit_project(design, tmp_path / "matvec")
    assert "packed two output rows to a DSP48E2" in (project / "kernel.cpp").read_text()
    for _, (got,) in csim_modes(project, x, w, flags=INT4_WARNINGS):
        np.testing.assert_array_equal(got, acc)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_a_task_bound_to_luts_keeps_its_multiplies_and_binds_them_to_the_fabric(tmp_path) -> None:  # noqa: ANN001
    k, n, tn = 64, 32, 8
    rng = np.random.default_rng(8)
    x, w = rng.integers(-128, 128, (1, k), dtype=np.int8), rng.integers(-8, 8, (k, n), dtype=np.int8)
    design = sd.compile(int_matvec(k, n, tn).program)
    _task(design).attributes[MAC_IMPL] = StringAttr("fabric")
    (acc,) = design.simulate(x, w)
    code = (emit_project(design, tmp_path / "matvec") / "kernel.cpp").read_text()
    assert "op=mul impl=fabric" in code and "packed two output rows" not in code
    for _, (got,) in csim_modes(tmp_path / "matvec", x, w, flags=INT4_WARNINGS):
        np.testing.assert_array_equal(got, acc)
