"""`fit-lanes` leaves room for the memories FIFO sizing cannot remove."""

from __future__ import annotations

import pytest

import streamdsl as sd
from lowering.resources import U55C_DEVICE, Usage, kernel_usage, logic_usage
from lowering.transforms.fit_lanes import COMPUTE, least_memories
from streamdsl import quant
from toolchain.models import model_block


@pytest.mark.slow
def test_default_lanes_leave_room_for_the_least_memories() -> None:
    """Gemma 3 small W4A8 (max context 16): its logic alone fits the U55C at 64 lanes a task, but
    its FIFOs, converter banks and buffers take 163,787 LUTs as shift registers and LUTRAM, and the
    sized design was 1,307,544 LUTs of 1,303,680. fit-lanes now counts the least of those memories
    (every FIFO one token deep) beside the logic: the lowered design's logic plus those memories is
    within the device, and so is the sized design (its memories take at most 1% more LUTs than
    them: a deeper FIFO may leave LUTRAM for BRAM, 4% fewer since unroll-short-loops)."""
    mb = model_block("gemma", "small", 16, 64, quant=quant.scheme("w4a8"))
    design = sd.compile(mb.lowered.program)
    kernel = design.kernel
    floor = least_memories(kernel)
    logic = Usage.total(logic_usage(kernel).values())
    assert floor.LUT > 100_000  # the shift-register FIFOs and LUTRAM banks
    for resource in COMPUTE:
        assert getattr(logic + floor, resource) <= getattr(U55C_DEVICE.total, resource), resource
    sized = kernel_usage(kernel, design.graph, design.depths).total
    assert sized.LUT - logic.LUT <= 1.01 * floor.LUT
    assert not sized.over(U55C_DEVICE.total)
