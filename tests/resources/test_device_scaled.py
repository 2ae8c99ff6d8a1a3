"""The what-if device of `benchmarks/roofline.py --device-scale` (`lowering.resources.device_scaled`:
the U55C's resources times K) holds while the study runs, the memory count's capacities with it,
and the U55C comes back after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lowering import memory
from lowering.resources import U55C_DEVICE, device_scaled

# a FIFO of 286,720 words of 1,024 bits: 1,050 URAM (15 wide, 70 deep) or 8,400 BRAM36, on twice the U55C only
FIFO = [("f", 1024, 4096 * 70)]
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "roofline.py"


def test_the_device_and_the_memory_count_scale_together_and_come_back() -> None:
    with pytest.raises(RuntimeError, match="inside"), device_scaled(2):
        assert (U55C_DEVICE.total.BRAM36, U55C_DEVICE.total.DSP, U55C_DEVICE.sll) == (4032, 18048, 46080)
        assert memory.count(FIFO, [])["capacity"] == {"BRAM36": 4032, "URAM": 1920, "LUTRAM": 1179648}
        assert memory.count(FIFO, [])["fits"]
        raise RuntimeError("inside")
    assert (U55C_DEVICE.total.BRAM36, U55C_DEVICE.total.DSP, U55C_DEVICE.sll) == (2016, 9024, 23040)
    assert memory.CAPACITY == {"BRAM36": 2016, "URAM": 960, "LUTRAM": 589824}
    assert not memory.count(FIFO, [])["fits"]


def test_a_factor_that_is_not_positive_is_refused() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--device-scale", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--device-scale 0: give a positive factor" in done.stderr
