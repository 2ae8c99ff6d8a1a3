"""The U55C resource model (lowering/resources.py) against hand-computed counts: cores per op and
lanes, packed integer MACs, the m_axi adapter, FIFO memories attributed to their consumer, the
fit check naming the largest users, and calibration on a stored csynth report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import streamdsl as sd
from hls_backend.csynth import parse_csynth_xml
from lowering.resources import U55C_COSTS, U55C_DEVICE, Device, ResourceError, Usage, calibrated, kernel_usage, resources_report, task_usage
from streamdsl.dialects.dataflow import TaskOp

CSYNTH = Path(__file__).parent / "data" / "task_add_csynth.xml"


def _add_program(tile: int = 16, lanes: int | None = None):
    X = sd.itensor.tiled(sd.f32, shape=(4, tile), tile=(1, tile))

    @sd.kernel(lanes=lanes)
    def add(a: X, b: X) -> X:
        for i in range(4):
            yield a.read() + b.read()

    @sd.dataflow
    def prog(a: sd.Tensor[sd.f32, (4, tile)], b: sd.Tensor[sd.f32, (4, tile)]):
        return add(a, b)

    return sd.compile(prog)


def _task(design, name: str) -> TaskOp:
    return next(op for op in design.kernel.walk() if isinstance(op, TaskOp) and op.sym_name.data == name)


def test_a_task_costs_its_cores_times_lanes_plus_control_and_registers() -> None:
    design = _add_program()
    # 16 lanes of an f32 adder (2 DSP, 214 LUT, 227 FF each); control 150 LUT / 120 FF; 3 ports of
    # 12 LUT / 4 FF; registers for the two tiles read and the sum: 3 x 512 bits (the empty init is
    # no array: the add writes every element without reading it, hls_backend/body.py)
    assert task_usage(_task(design, "add")).as_dict() == {
        "DSP": 32, "LUT": 16 * 214 + 150 + 3 * 12, "FF": 16 * 227 + 120 + 3 * 4 + 3 * 512, "BRAM36": 0, "URAM": 0, "LUTRAM": 0}


def test_lanes_cap_the_copies_at_the_work_and_the_lanes_hint() -> None:
    # 256 f32 a token = 8 beats of 1,024 bits, so the loop's II is 8 (a token per port per 8 cycles):
    # HLS shares each adder over the 8 cycles, 256 / 8 = 32 adders (not the 64 lanes)
    wide = _add_program(tile=256)
    assert task_usage(_task(wide, "add")).DSP == 32 * 2
    narrow = _add_program(tile=256, lanes=8)  # 8 lanes: 32 cycles an add, II 32, 8 adders
    assert task_usage(_task(narrow, "add")).DSP == 8 * 2


def test_kernel_usage_attributes_fifos_to_consumers_and_counts_dma_adapters() -> None:
    design = _add_program()
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    # each FIFO is 512 bits wide and 1 deep: an SRL of 512 LUTs, held by its consumer
    # each DMA's m_axi buffer (lowering.memory.kernel_buffers) is held by the DMA
    assert usage.memories == {"dma_load(a)->add": "add", "dma_load(b)->add": "add", "add->dma_store(add)": "dma_store(add)",
                              **{f"{dma}: m_axi0": dma for dma in ("dma_load(a)", "dma_load(b)", "dma_store(add)")}}
    assert usage.nodes["add"] == task_usage(_task(design, "add")) + Usage(LUT=1024, LUTRAM=1024)
    # an m_axi adapter: 1,600 LUT, 2,600 FF and a buffer of 8 outstanding bursts of 64 words of
    # 512 bits: BRAM36 ceil(512/72) x ceil(512/512) = 8 (URAM would be 8 of 960, a larger share than 8 of 2,016)
    assert usage.nodes["dma_load(a)"].as_dict() == {"DSP": 0, "LUT": 1600, "FF": 2600, "BRAM36": 8, "URAM": 0, "LUTRAM": 0}
    assert usage.nodes["dma_store(add)"].as_dict()["LUTRAM"] == 512
    report = resources_report(usage, placement={name: 0 for name in usage.nodes})
    assert report["fits"] and report["total"]["BRAM36"] == 24 and report["total"]["DSP"] == 32
    assert [s["BRAM36"] for s in report["slrs"]] == [24, 0, 0]
    assert report["largest"]["BRAM36"][0] == {"node": "dma_load(a)", "amount": 8}


def test_an_integer_multiply_takes_the_slices_its_product_needs() -> None:
    # one product, as the emitter writes it: two narrow ones share a slice only where they are
    # packed (`packed_macs`, tests/hls/test_packed_macs.py), not by their widths alone
    assert U55C_COSTS.multiplier(8, 4).dsp == 1
    assert U55C_COSTS.multiplier(8, 8).dsp == 1
    assert U55C_COSTS.multiplier(16, 16).dsp == 1  # one 27 x 18 multiplier
    assert U55C_COSTS.multiplier(32, 32).dsp == 4  # ceil(32/27) x ceil(32/18) slices
    assert Usage(DSP=0.5).as_dict()["DSP"] == 1  # a half-used slice is still a slice


def _small_device(dsp_per_slr: int) -> Device:
    return replace(U55C_DEVICE, name="test-part", per_slr=replace(U55C_DEVICE.per_slr, DSP=dsp_per_slr))


def test_a_design_over_the_device_names_its_largest_users() -> None:
    X = sd.itensor.tiled(sd.f32, shape=(4, 16), tile=(1, 16))

    def adder(name: str, lanes: int) -> sd.Kernel:
        @sd.kernel(name=name, lanes=lanes)
        def add(a: X, b: X) -> X:
            for i in range(4):
                yield a.read() + b.read()

        return add

    big, small = adder("big", 16), adder("small", 4)  # 16 and 4 adders (II 1 and 4): 32 + 8 DSPs

    @sd.dataflow
    def prog(a: sd.Tensor[sd.f32, (4, 16)], b: sd.Tensor[sd.f32, (4, 16)], c: sd.Tensor[sd.f32, (4, 16)]):
        return small(big(a, b), c)

    design = sd.compile(prog)
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    usage.check()  # the U55C holds it
    with pytest.raises(ResourceError, match=r"fit the test-part by the resource model: DSP 40 of 30 \(largest: big 32, small 8\)"):
        usage.check(_small_device(10))
    assert not resources_report(usage, _small_device(10))["fits"]


def test_per_slr_fit_is_judged_against_one_die() -> None:
    design = _add_program()  # 32 DSPs: fits a device of 3 x 20, not one of its SLRs
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    device = _small_device(20)
    usage.check(device)
    report = resources_report(usage, device, placement=dict.fromkeys(usage.nodes, 1))
    assert report["slrs"][1]["DSP"] == 32 and not report["slrs"][1]["fits"] and not report["fits"]
    assert report["available"]["DSP"] == 20
    assert U55C_DEVICE.total.as_dict() == {"DSP": 9024, "LUT": 1303680, "FF": 2607360, "BRAM36": 2016, "URAM": 960, "LUTRAM": 589824}


def test_calibration_scales_the_table_to_a_csynth_report() -> None:
    design = _add_program()
    modeled = {"add": task_usage(_task(design, "add"))}
    measured = {"add": parse_csynth_xml(CSYNTH)["resources"]}
    assert measured["add"] == {"BRAM_18K": 0, "DSP": 32, "FF": 4370, "LUT": 3195, "URAM": 0}
    table = calibrated(U55C_COSTS, modeled, measured)
    again = task_usage(_task(design, "add"), table)
    assert again.as_dict()["DSP"] == 32 and round(again.LUT) == 3195 and round(again.FF) == 4370
    assert table.scale["LUT"] == pytest.approx(3195 / modeled["add"].LUT)
    with pytest.raises(KeyError, match=r"no modeled usage for the reported tasks \['other'\]"):
        calibrated(U55C_COSTS, modeled, {"other": measured["add"]})
