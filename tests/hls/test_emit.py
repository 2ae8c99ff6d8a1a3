"""The kernel text: streams carry the sized depths under the simulator's names, interfaces, and
the output is deterministic."""

from __future__ import annotations

import re

import pytest

import streamdsl as sd
from hls_backend import emit_kernel

from .cases import CASES


@pytest.fixture(scope="module")
def design() -> sd.Design:
    return sd.compile(CASES["diamond"]().program)


def test_every_fifo_has_its_sized_depth(design: sd.Design) -> None:
    kernel = emit_kernel(design)
    assert {s.name: s.depth for s in kernel.streams} == design.depths
    for s in kernel.streams:
        assert f'hls::stream<{s.token}, {s.depth}> {s.var}("{s.name}");' in kernel.code
        assert f"#pragma HLS stream variable={s.var} depth={s.depth}" in kernel.code
    records = {r.name: (r.producer, r.consumer) for r in design.streams}
    assert {s.name: (s.producer, s.consumer) for s in kernel.streams}.keys() == records.keys()


def test_depth_override_and_default(design: sd.Design) -> None:
    kernel = emit_kernel(design, depths={"softmax->mul": 7})
    assert {s.name: s.depth for s in kernel.streams}["softmax->mul"] == 7
    unsized = emit_kernel(CASES["diamond"]().program)  # no depth attributes: the Vitis default
    assert {s.depth for s in unsized.streams} == {2}


def test_top_interfaces(design: sd.Design) -> None:
    code = emit_kernel(design).code
    assert 'extern "C" void reconverge(const ap_uint<512>* x, ap_uint<512>* out) {' in code
    # 2 x 64 floats in (1, 16) tiles: 8 tokens of one 512-bit word each
    assert "#pragma HLS interface m_axi port=x bundle=gmem0 offset=slave depth=8 max_read_burst_length=64" in code
    assert "#pragma HLS interface m_axi port=out bundle=gmem1 offset=slave depth=8 max_write_burst_length=64" in code
    assert "#pragma HLS interface s_axilite port=return" in code and "#pragma HLS dataflow" in code
    calls = re.findall(r"SD_DATAFLOW_PROCESS\((\w+),", code)
    assert calls == ["dma_load_x", "task_copy", "fork_copy", "task_softmax", "task_mul", "dma_store_mul"]


def test_output_is_deterministic() -> None:
    first = emit_kernel(sd.compile(CASES["tutorial03_attention"]().program)).code
    assert emit_kernel(sd.compile(CASES["tutorial03_attention"]().program)).code == first


def test_names_that_clash_with_the_c_library_are_renamed(tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    from hls_backend import emit_project, run_csim

    X = sd.itensor.tiled(sd.f32, shape=(2, 8), tile=(1, 4))

    @sd.kernel
    def sqrt(x: X) -> X:  # a task named like a <cmath> function
        for i in range(X.num_tokens):
            yield x.read() + 1.0

    @sd.dataflow
    def exp(log: sd.Tensor[sd.f32, (2, 8)]):  # top and argument named like <cmath> functions
        return sqrt(log)

    kernel = emit_kernel(sd.compile(exp))
    assert kernel.top == "exp_kernel" and [a.name for a in kernel.inputs] == ["log_"]
    x = np.arange(16, dtype=np.float32).reshape(2, 8)
    np.testing.assert_array_equal(run_csim(emit_project(sd.compile(exp), tmp_path / "p"), x), x + 1.0)
