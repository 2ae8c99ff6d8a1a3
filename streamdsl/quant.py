"""Quantization schemes (docs/quantization.md), literally, in numpy: the reference every kernel,
the fake-quantized PyTorch model and every backend follow bit for bit.

Weights are quantized once, offline, from a float checkpoint (`quantize_weight`,
`quantize_checkpoint`); activations per token on chip (`quantize_activations`); `int_matmul` is the
exact integer part of a quantized linear layer and `linear` its float result, summed in the
hardware's order. `pack_int4` / `unpack_int4` give the stored int4 format (128 per 512-bit beat).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from streamdsl.errors import QuantError

__all__ = [
    "SCHEMES",
    "QuantError",
    "QuantizedWeight",
    "Scheme",
    "activation_scale",
    "check_float_checkpoint",
    "dequantize",
    "int_matmul",
    "linear",
    "pack_int4",
    "quantize",
    "quantize_activations",
    "quantize_checkpoint",
    "quantize_weight",
    "scheme",
    "unpack_int4",
]

ACTIVATION_BITS = 8


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme: `weight_bits`-bit weights in groups of `group` input channels
    (None: one group per output channel), int8 activations per token."""

    name: str
    weight_bits: int
    group: int | None

    def group_size(self, in_features: int) -> int:
        return self.group or in_features


SCHEMES: Mapping[str, Scheme | None] = {
    "w4a8": Scheme("w4a8", 4, 128),
    "w8a8": Scheme("w8a8", 8, None),
    "none": None,
}


def scheme(name: str, group: int | None = None) -> Scheme | None:
    """The scheme called `name` (None for `none`, the float path); `group` replaces w4a8's group
    size of 128 (models narrower than 128 channels, such as the `tiny` zoo sizes, need one)."""
    if name not in SCHEMES:
        raise QuantError(f"unsupported quantization scheme {name!r}: choose one of {', '.join(SCHEMES)} "
                         "(docs/quantization.md)")
    sch = SCHEMES[name]
    if group is None:
        return sch
    if sch is None or sch.group is None:
        raise QuantError(f"a group size applies to w4a8 only; {name} has "
                         f"{'no quantization' if sch is None else 'one group per output channel'}")
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise QuantError(f"group size {group!r}: give a positive number of input channels per weight scale")
    return replace(sch, group=group)


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def storage_dtype(bits: int) -> np.dtype:
    return np.dtype(np.int8) if bits <= 8 else np.dtype(np.int32)


# ---------------------------------------------------------------------------------------------
# quantize / dequantize
# ---------------------------------------------------------------------------------------------


def quantize(x: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    """`clamp(round(x / scale), -qmax, qmax)` (ties to even; 0 where `scale == 0`) as integers;
    `scale` broadcasts against `x` and is read as float32."""
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    zero = s == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(np.rint(x / np.where(zero, np.float32(1), s)), -qmax(bits), qmax(bits))
    return np.where(zero, 0, q).astype(storage_dtype(bits))


def dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """`float32(q) * float32(scale)`."""
    return np.asarray(q).astype(np.float32) * np.asarray(scale, dtype=np.float32)


def activation_scale(x: np.ndarray) -> np.ndarray:
    """The per-token scale `max|x| / 127` of an `(..., K)` activation, keepdims (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return np.max(np.abs(x), axis=-1, keepdims=True) / np.float32(qmax(ACTIVATION_BITS))


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 per-token scales) of an `(..., K)` activation."""
    s = activation_scale(x)
    return quantize(x, s, ACTIVATION_BITS), s


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizedWeight:
    """A linear layer's `(N, K)` weight: integer `values` (int8 storage), f16 `scales` `(N, K/group)`."""

    values: np.ndarray
    scales: np.ndarray
    bits: int
    group: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def dequantized(self) -> np.ndarray:
        """`Wq * s`, float32, `(N, K)`: the weight the fake-quantized model uses."""
        n, k = self.shape
        groups = self.values.reshape(n, k // self.group, self.group)
        return dequantize(groups, self.scales[:, :, None]).reshape(n, k)

    def packed(self) -> np.ndarray:
        """The stored bytes of the values: int4 two per byte (`pack_int4`), int8 one per byte."""
        flat = self.values.reshape(-1)
        return pack_int4(flat) if self.bits == 4 else flat.view(np.uint8).copy()

    @property
    def nbytes(self) -> int:
        """Bytes the host loads: packed values and f16 scales."""
        return self.packed().nbytes + self.scales.nbytes


def quantize_weight(weight: np.ndarray, sch: Scheme, name: str = "weight") -> QuantizedWeight:
    """Quantize an `(N, K)` float weight per output channel in groups (docs/quantization.md)."""
    w = np.asarray(weight)
    if w.ndim != 2:
        raise QuantError(f"{name}: a linear layer's weight is 2-d (out_features, in_features), got shape {list(w.shape)}")
    if not np.issubdtype(w.dtype, np.floating):
        raise QuantError(f"{name}: weight of dtype {w.dtype} is not a float tensor; quantize from a float checkpoint")
    w = w.astype(np.float32)
    n, k = w.shape
    group = sch.group_size(k)
    if k % group:
        raise QuantError(f"{name}: input size {k} is not a multiple of the {sch.name} group size {group}; "
                         f"keep this layer in float (--quant none) or use w8a8 (one group per output channel)")
    if not np.all(np.isfinite(w)):
        raise QuantError(f"{name}: the weight holds non-finite values (inf or nan); fix the checkpoint")
    groups = w.reshape(n, k // group, group)
    with np.errstate(over="ignore"):
        scales = (np.max(np.abs(groups), axis=-1) / np.float32(qmax(sch.weight_bits))).astype(np.float16)
    if np.any(np.isinf(scales)):
        raise QuantError(f"{name}: weights up to {float(np.abs(w).max()):.4g} need a scale above f16's 65504; "
                         "rescale the layer or keep it in float")
    values = quantize(groups, scales[:, :, None], sch.weight_bits).reshape(n, k)
    return QuantizedWeight(values, scales, sch.weight_bits, group)


# Tensor names and dtypes of quantized checkpoints we do not read (GPTQ/AWQ, bitsandbytes, fp8).
_FOREIGN_SUFFIXES = {
    ".qweight": "GPTQ/AWQ", ".qzeros": "GPTQ/AWQ", ".g_idx": "GPTQ", ".scales": "GPTQ/AWQ",
    ".SCB": "bitsandbytes int8", ".absmax": "bitsandbytes 4-bit", ".quant_map": "bitsandbytes 4-bit",
    ".quant_state.bitsandbytes__nf4": "bitsandbytes 4-bit", ".quant_state.bitsandbytes__fp4": "bitsandbytes 4-bit",
    ".weight_scale": "fp8/compressed-tensors", ".input_scale": "fp8/compressed-tensors",
    ".weight_packed": "compressed-tensors",
}  # fmt: skip


def check_float_checkpoint(source: str, tensors: Iterable[tuple[str, str]], config: Mapping | None = None) -> None:
    """Refuse a checkpoint already quantized in a format we do not read. `tensors` gives (name,
    dtype name) pairs; `config` is its config.json. `source` names it in the message."""
    advice = "streamdsl quantizes float checkpoints itself (--quant w4a8|w8a8): give the float (unquantized) checkpoint"
    method = (config or {}).get("quantization_config")
    if method is not None:
        kind = method.get("quant_method", "unknown") if isinstance(method, Mapping) else method
        raise QuantError(f"{source}: config.json declares quantization_config (quant_method {kind!r}), a quantized "
                         f"checkpoint; {advice}")
    for name, dtype in tensors:
        fmt = next((f for suffix, f in _FOREIGN_SUFFIXES.items() if name.endswith(suffix)), None)
        if fmt is None and name.endswith(".weight") and not _is_float_dtype(dtype):
            fmt = f"{dtype} weights"
        if fmt is not None:
            raise QuantError(f"{source}: tensor {name!r} ({dtype}) is from a quantized checkpoint ({fmt}), a format "
                             f"streamdsl does not read; {advice}")


def _is_float_dtype(name: str) -> bool:
    """float16/bfloat16/float32/float64 in numpy, torch or safetensors spelling (not float8)."""
    short = name.lower().removeprefix("torch.")
    return short in ("float16", "bfloat16", "float32", "float64", "half", "float", "double", "f16", "bf16", "f32", "f64")


def quantize_checkpoint(weights: Mapping[str, np.ndarray], sch: Scheme, linear: Iterable[str],
                        source: str = "checkpoint") -> dict[str, QuantizedWeight]:
    """Quantize the `(N, K)` weights named in `linear` (the linear layers; everything else stays
    float). Refuses an already-quantized checkpoint first."""
    check_float_checkpoint(source, ((k, str(np.asarray(v).dtype)) for k, v in weights.items()))
    out = {}
    for name in linear:
        if name not in weights:
            raise QuantError(f"{source}: no tensor {name!r} (a linear layer's weight) in the checkpoint")
        out[name] = quantize_weight(weights[name], sch, name)
    return out


# ---------------------------------------------------------------------------------------------
# int4 storage: two per byte, 128 per 512-bit beat
# ---------------------------------------------------------------------------------------------


def pack_int4(values: np.ndarray) -> np.ndarray:
    """int4 values in [-8, 7] (any shape, read row-major) as bytes: element 2j in the low nibble
    of byte j, 2j+1 in the high nibble (element i of a 512-bit beat in bits [4i, 4i+4))."""
    flat = np.asarray(values).reshape(-1).astype(np.int16)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise QuantError(f"pack_int4: values must lie in [-8, 7], got [{int(flat.min())}, {int(flat.max())}]")
    nibbles = (flat & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """The first `count` int4 values (int8 storage) of bytes made by `pack_int4`."""
    b = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if count > 2 * b.size:
        raise QuantError(f"unpack_int4: {b.size} bytes hold at most {2 * b.size} values, asked for {count}")
    nibbles = np.stack([b & 0xF, b >> 4], axis=-1).reshape(-1)[:count].astype(np.int8)
    return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# the quantized linear layer
# ---------------------------------------------------------------------------------------------


def int_matmul(xq: np.ndarray, wq: np.ndarray, group: int) -> np.ndarray:
    """`acc[m, n, g] = sum_{k in group g} int32(xq[m, k]) * int32(wq[n, k])`, int32 `(M, N, K/group)`."""
    m, k = xq.shape
    n = wq.shape[0]
    xg = np.asarray(xq).astype(np.int64).reshape(m, k // group, group)
    wg = np.asarray(wq).astype(np.int64).reshape(n, k // group, group)
    return np.einsum("mgk,ngk->mng", xg, wg).astype(np.int32)


def linear(x: np.ndarray, weight: QuantizedWeight, bias: np.ndarray | None = None) -> np.ndarray:
    """A quantized linear layer on an `(M, K)` float activation, in the hardware's order:
    `y = s_x * (sum_g float32(acc[:, :, g]) * s_w[:, g]) + b`, groups summed from 0.0 in order."""
    xq, sx = quantize_activations(x)
    acc = int_matmul(xq, weight.values, weight.group)
    sw = weight.scales.astype(np.float32)
    total = np.zeros(acc.shape[:2], np.float32)
    for g in range(acc.shape[2]):
        total = total + acc[:, :, g].astype(np.float32) * sw[None, :, g]
    y = sx * total
    return y if bias is None else y + np.asarray(bias, dtype=np.float32)
