"""streamdsl.quant against independent arithmetic: round trips, int4 packing, the integer matvec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streamdsl import quant
from streamdsl.quant import QuantError

W4A8, W8A8 = quant.SCHEMES["w4a8"], quant.SCHEMES["w8a8"]
finite = st.floats(-1e4, 1e4, width=32, allow_subnormal=False)


def int_arrays(lo: int, hi: int, shape: st.SearchStrategy) -> st.SearchStrategy:
    """Integers in [lo, hi], with the extremes drawn often."""
    elements = st.one_of(st.sampled_from([lo, hi, 0, -1]), st.integers(lo, hi))
    return hnp.arrays(np.int8, shape, elements=elements)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=finite))
def test_activation_round_trip_within_half_a_step(x: np.ndarray) -> None:
    q, s = quant.quantize_activations(x)
    assert q.dtype == np.int8 and q.min() >= -127 and q.max() <= 127
    back = quant.dequantize(q, s)
    # every element within half a quantization step (plus float32 rounding of x / s)
    assert np.all(np.abs(back - x) <= s * np.float32(0.5 + 1e-5) + 1e-30)
    # the largest element of each row maps to +-127 exactly
    rows = np.nonzero(s[:, 0] > 0)[0]
    assert np.all(np.abs(q[rows]).max(axis=1) == 127)
    # quantizing the dequantized values again is the identity (the grid is stable)
    np.testing.assert_array_equal(quant.quantize(back, s, 8), q)


def test_rounding_is_ties_to_even_and_zero_scale_gives_zero() -> None:
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, 127.0]], np.float32)
    q, s = quant.quantize_activations(x)
    assert s[0, 0] == 1.0
    assert q.tolist() == [[0, 2, 2, 0, -2, 127]]
    q, s = quant.quantize_activations(np.zeros((2, 8), np.float32))
    assert not q.any() and not s.any()
    assert quant.quantize(np.array([300.0, -300.0]), np.float32(1.0), 8).tolist() == [127, -127]  # clamped
    assert quant.quantize(np.array([9.0, -9.0]), np.float32(1.0), 4).tolist() == [7, -7]


@given(st.sampled_from([W4A8, W8A8]), st.integers(1, 6), st.integers(1, 3), st.data())
def test_weight_round_trip(sch: quant.Scheme, n: int, groups: int, data: st.DataObject) -> None:
    k = groups * 128
    w = data.draw(hnp.arrays(np.float32, (n, k), elements=finite))
    qw = quant.quantize_weight(w, sch, "w")
    qm = 7 if sch.weight_bits == 4 else 127
    assert qw.values.dtype == np.int8 and np.abs(qw.values).max() <= qm
    assert qw.scales.dtype == np.float16 and qw.scales.shape == (n, k // qw.group)
    # the scale is f16(max|group| / qmax) and each weight sits within half a step of its value
    g = w.reshape(n, k // qw.group, qw.group)
    np.testing.assert_array_equal(qw.scales, (np.abs(g).max(-1) / np.float32(qm)).astype(np.float16))
    step = np.repeat(qw.scales.astype(np.float32), qw.group, axis=1)
    normal = step >= 2.0**-14  # a subnormal f16 scale is coarse: the clamp may cut the largest weights
    assert np.all((np.abs(qw.dequantized() - w) <= step * np.float32(0.5 + 1e-3))[normal])
    # again: the dequantized weight is on the grid
    again = quant.quantize_weight(qw.dequantized(), sch, "w")
    np.testing.assert_array_equal(again.values[step > 0], qw.values[step > 0])


@given(int_arrays(-8, 7, hnp.array_shapes(max_dims=2, max_side=60)))
def test_int4_pack_unpack(values: np.ndarray) -> None:
    packed = quant.pack_int4(values)
    assert packed.dtype == np.uint8 and packed.size == -(-values.size // 2)
    np.testing.assert_array_equal(quant.unpack_int4(packed, values.size), values.reshape(-1))
    # the layout: element i of the flat array in bits [4i, 4i+4) of the little-endian byte string
    as_int = int.from_bytes(packed.tobytes(), "little")
    nibbles = [(as_int >> (4 * i)) & 0xF for i in range(values.size)]
    assert nibbles == [int(v) & 0xF for v in values.reshape(-1)]


def test_int4_beat_holds_128_values_and_range_is_checked() -> None:
    values = np.arange(256) % 16 - 8
    packed = quant.pack_int4(values)
    assert packed.size * 8 == 2 * 512  # two 512-bit beats of 128 values each
    beat1 = int.from_bytes(packed[64:].tobytes(), "little")
    assert [(beat1 >> (4 * i)) & 0xF for i in range(128)] == [int(v) & 0xF for v in values[128:]]
    with pytest.raises(QuantError, match=r"\[-8, 7\], got \[-8, 8\]"):
        quant.pack_int4(np.array([-8, 8]))
    with pytest.raises(QuantError, match="at most 4 values"):
        quant.unpack_int4(np.zeros(2, np.uint8), 5)


@given(st.integers(1, 4), st.integers(1, 9), st.sampled_from([1, 4, 128]), st.integers(1, 3), st.data())
def test_int_matmul_against_numpy(m: int, n: int, group: int, groups: int, data: st.DataObject) -> None:
    k = group * groups
    xq = data.draw(int_arrays(-128, 127, (m, k)))
    wq = data.draw(int_arrays(-8, 7, (n, k)))
    acc = quant.int_matmul(xq, wq, group)
    assert acc.dtype == np.int32 and acc.shape == (m, n, groups)
    # independent: python ints, element by element
    for i, j, g in np.ndindex(*acc.shape):
        lo = g * group
        assert acc[i, j, g] == sum(int(xq[i, t]) * int(wq[j, t]) for t in range(lo, lo + group))


def test_int_matmul_extremes_do_not_overflow() -> None:
    xq = np.full((1, 4096), -128, np.int8)
    wq = np.full((3, 4096), -8, np.int8)
    assert quant.int_matmul(xq, wq, 4096)[0, 0, 0] == 4096 * 1024
    w8 = np.full((1, 4096), -128, np.int8)
    assert quant.int_matmul(xq, w8, 4096)[0, 0, 0] == 4096 * 16384


@given(st.sampled_from([W4A8, W8A8]), st.integers(1, 3), st.integers(1, 5), st.integers(1, 3), st.data())
def test_linear_is_the_dequantized_product(sch: quant.Scheme, m: int, n: int, groups: int, data: st.DataObject) -> None:
    k = 128 * groups
    x = data.draw(hnp.arrays(np.float32, (m, k), elements=finite))
    w = data.draw(hnp.arrays(np.float32, (n, k), elements=finite))
    qw = quant.quantize_weight(w, sch)
    y = quant.linear(x, qw)
    xq, sx = quant.quantize_activations(x)
    want = (xq.astype(np.float64) * sx) @ qw.dequantized().astype(np.float64).T
    scale = max(float(np.abs(want).max()), 1e-30)
    np.testing.assert_allclose(y, want, rtol=0, atol=4e-6 * scale * groups)


def test_weight_bytes_at_w4a8() -> None:
    qw = quant.quantize_weight(np.ones((256, 1024), np.float32), W4A8)
    assert qw.nbytes == 256 * 1024 // 2 + 2 * 256 * 8
    assert qw.nbytes / (4 * 256 * 1024) <= 0.13


# -- bad input -----------------------------------------------------------------------------------


def test_unsupported_scheme() -> None:
    with pytest.raises(QuantError, match=r"unsupported quantization scheme 'w4a16': choose one of w4a8, w8a8, none"):
        quant.scheme("w4a16")
    assert quant.scheme("none") is None


def test_input_size_not_a_multiple_of_the_group() -> None:
    with pytest.raises(QuantError, match=r"mlp.fc1.weight: input size 200 is not a multiple of the w4a8 group size 128"):
        quant.quantize_weight(np.ones((4, 200), np.float32), W4A8, "mlp.fc1.weight")
    assert quant.quantize_weight(np.ones((4, 200), np.float32), W8A8).group == 200  # one group per channel


def test_bad_weights() -> None:
    with pytest.raises(QuantError, match="non-finite"):
        quant.quantize_weight(np.full((1, 128), np.inf, np.float32), W4A8, "w")
    with pytest.raises(QuantError, match="above f16's 65504"):
        quant.quantize_weight(np.full((1, 128), 1e6, np.float32), W4A8, "w")
    with pytest.raises(QuantError, match="not a float tensor"):
        quant.quantize_weight(np.ones((1, 128), np.int8), W4A8, "w")


@pytest.mark.parametrize(("name", "dtype", "fmt"), [
    ("model.layers.0.self_attn.q_proj.qweight", "I32", "GPTQ/AWQ"),
    ("model.layers.0.mlp.up_proj.scales", "F16", "GPTQ/AWQ"),
    ("model.layers.0.mlp.up_proj.weight.absmax", "F32", "bitsandbytes 4-bit"),
    ("model.layers.0.mlp.up_proj.SCB", "F32", "bitsandbytes int8"),
    ("model.layers.0.mlp.up_proj.weight", "F8_E4M3", "F8_E4M3 weights"),
    ("model.layers.0.mlp.up_proj.weight", "int8", "int8 weights"),
])  # fmt: skip
def test_already_quantized_checkpoint(name: str, dtype: str, fmt: str) -> None:
    with pytest.raises(QuantError, match=f"tensor '{name}' .* quantized checkpoint \\({fmt}\\).*give the float"):
        quant.check_float_checkpoint("ckpt/model.safetensors", [("model.embed.weight", "BF16"), (name, dtype)])


def test_config_declares_quantization() -> None:
    with pytest.raises(QuantError, match=r"config.json declares quantization_config \(quant_method 'awq'\)"):
        quant.check_float_checkpoint("ckpt/config.json", [], {"quantization_config": {"quant_method": "awq", "bits": 4}})
    quant.check_float_checkpoint("ckpt", [("a.weight", "F32"), ("b.weight", "BF16"), ("c.bias", "F16")], {})
    with pytest.raises(QuantError, match="int32 weights"):
        quant.quantize_checkpoint({"fc.weight": np.ones((2, 128), np.int32)}, W4A8, ["fc.weight"])
