"""The what-if device of `benchmarks/roofline.py --device-scale` (`lowering.resources.device_scaled`:
the U55C's resources times K) holds while the study runs, the memory count's capacities and kernel
fusion's budget with it, and the U55C comes back after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, tensor
from xdsl.parser import Parser

from lowering import memory
from lowering.memory import onchip_bytes
from lowering.resources import U55C_DEVICE, device_scaled
from lowering.transforms.form_kernels import FormKernelsPass
from lowering.transforms.fuse_kernels import FuseKernelsPass
from lowering.transforms.tile_linalg import TileLinalgPass
from streamdsl.dialects.dataflow import KernelOp
from tests.lowering.lowering_helpers import BENCHMARKS

# a FIFO of 286,720 words of 1,024 bits: 1,050 URAM (15 wide, 70 deep) or 8,400 BRAM36, on twice the U55C only
FIFO = [("f", 1024, 4096 * 70)]
FUSION = Path(__file__).resolve().parents[1] / "filecheck" / "lowering" / "fuse_kernels.mlir"


def test_the_device_and_the_memory_count_scale_together_and_come_back() -> None:
    with pytest.raises(RuntimeError, match="inside"), device_scaled(2):
        assert (U55C_DEVICE.total.BRAM36, U55C_DEVICE.total.DSP, U55C_DEVICE.sll) == (4032, 18048, 46080)
        assert memory.count(FIFO, [])["capacity"] == {"BRAM36": 4032, "URAM": 1920, "LUTRAM": 1179648}
        assert memory.count(FIFO, [])["fits"]
        raise RuntimeError("inside")
    assert (U55C_DEVICE.total.BRAM36, U55C_DEVICE.total.DSP, U55C_DEVICE.sll) == (2016, 9024, 23040)
    assert memory.CAPACITY == {"BRAM36": 2016, "URAM": 960, "LUTRAM": 589824}
    assert not memory.count(FIFO, [])["fits"]


@pytest.mark.parametrize("script", ["roofline.py", "block_phases.py"])
def test_a_factor_that_is_not_positive_is_refused(script: str) -> None:
    required = ["--family", "gpt2", "--plan", "p.json"] if script == "block_phases.py" else []
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--device-scale", "0", *required],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "argument --device-scale: must be > 0, got 0" in done.stderr


def _kernels_after_fusion() -> int:
    """Kernels left when fuse-kernels, at its default budget, fuses the matvec-tanh-matvec program of
    tests/filecheck/lowering/fuse_kernels.mlir (its second edge needs a converter of 128 bytes)."""
    ctx = Context()
    for dialect in (arith.Arith, builtin.Builtin, func.Func, linalg.Linalg, math.Math, tensor.Tensor):
        ctx.load_dialect(dialect)
    module = Parser(ctx, FUSION.read_text()).parse_module()
    TileLinalgPass(default_tile=8).apply(ctx, module)
    FormKernelsPass().apply(ctx, module)
    FuseKernelsPass().apply(ctx, module)
    return sum(isinstance(op, KernelOp) for op in module.walk())


def test_kernel_fusion_budgets_the_devices_memory() -> None:
    assert onchip_bytes() == 2016 * 36 * 1024 // 8 + 960 * 288 * 1024 // 8  # the U55C's BRAM36 and URAM
    assert _kernels_after_fusion() == 1
    with device_scaled(1e-6):  # no BRAM36 or URAM at all: the converter's 128 bytes do not fit
        assert onchip_bytes() == 0
        assert _kernels_after_fusion() == 2
