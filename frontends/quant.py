"""The fake-quantized PyTorch reference of docs/quantization.md.

`fake_quantize(model, "w4a8")` returns a copy of a model whose linear layers (`nn.Linear` and
GPT-2's `Conv1D`) are `FakeQuantLinear`s: the weight is quantized once, offline, by
`streamdsl.quant.quantize_weight`; the input is quantized per token in PyTorch with the same
rounding (ties to even), and the layer multiplies and sums in the hardware's order, so its output
has the design's bits.
Everything else (norms, softmax, activations, residuals, embeddings) is unchanged float32.

`check_checkpoint(directory)` refuses a checkpoint already quantized in a format we do not read;
`weight_bytes(model, scheme)` gives the bytes the host loads per decoder layer.
"""

from __future__ import annotations

import copy
import json
import re
import weakref
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamdsl import quant
from streamdsl.quant import QuantError, QuantizedWeight, Scheme

__all__ = [
    "FakeQuantLinear",
    "QuantLinear",
    "check_checkpoint",
    "fake_quantize",
    "linear_layers",
    "quantize_activations",
    "quantize_model",
    "weight_bytes",
    "weight_figures",
]


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer values as float32, per-token scales) of `x`: `clamp(round(x / s), -127, 127)`,
    `s = max|x| / 127` over the last dim, 0 where `s == 0` (docs/quantization.md: then every
    `x` is zero, so dividing by 1 instead gives the zeros and no mask tensor is needed)."""
    s = x.abs().amax(dim=-1, keepdim=True) / torch.tensor(127.0, dtype=x.dtype)
    q = torch.clamp(torch.round(x / torch.where(s == 0, torch.ones_like(s), s)), -127, 127)
    return q, s


class _QuantizedLayer(nn.Module):
    """What both forms of a quantized linear layer share: `quantized`, the offline quantization."""

    quantized: QuantizedWeight

    @property
    def in_features(self) -> int:
        return self.quantized.shape[1]

    @property
    def out_features(self) -> int:
        return self.quantized.shape[0]

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int{self.quantized.bits}, group={self.quantized.group}"


class FakeQuantLinear(_QuantizedLayer):
    """A linear layer as the fake-quantized reference runs it: `xq * s_x` and `Wq * s_w` in float,
    multiplied in the hardware's order (docs/quantization.md) so that it gives the design's bits:
    each group's dot product of the integer values exactly (in float64, where every partial sum of
    at most 2^53 is exact), rounded once to float32, times its f16 weight scale, the groups summed
    from 0.0 in increasing order, times `s_x`, plus the bias. `quantized` keeps the integer weight
    and its f16 scales (what the host loads)."""

    def __init__(self, quantized: QuantizedWeight, bias: torch.Tensor | None):
        super().__init__()
        n, k = quantized.shape
        self.quantized = quantized
        self.register_buffer("weight", torch.from_numpy(quantized.values.astype(np.float64).reshape(n, -1, quantized.group)))
        self.register_buffer("scales", torch.from_numpy(quantized.scales.astype(np.float32).T.copy()))  # (K/G, N)
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, k = x.shape
        q, s = quantize_activations(x.reshape(-1, k))
        groups = q.to(torch.float64).reshape(q.shape[0], -1, self.quantized.group)
        acc = torch.einsum("mgk,ngk->gmn", groups, self.weight).to(torch.float32)  # exact, then rounded once
        total = torch.zeros_like(acc[0])
        for g in range(acc.shape[0]):
            total = total + acc[g] * self.scales[g]
        y = s * total
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)


class QuantLinear(_QuantizedLayer):
    """A quantized linear layer in the hardware's integer form (docs/quantization.md), written in
    torch ops that import as integer IR: the input quantized per token to int8, the int32 group
    sums as a broadcast integer product summed over each group's input channels (imported and
    fused, one integer matmul whose loops run output channel, then group, then the channels of the
    group), each group dequantized with its f16 scale and the groups summed in float32 in
    increasing order, one multiply by the activation scale, then the bias.

    Parameters (what the host loads, in the stored format): `weight` the integer values `Wq` as
    `(N, K/G, G)` (row-major `(N, K)` grouped; int8 storage, `int_bits` 4 marks it as `i4` for the
    importer), `scales` f16 `(N, K/G)`, `bias` float32 or None."""

    def __init__(self, quantized: QuantizedWeight, bias: torch.Tensor | None):
        super().__init__()
        n, _ = quantized.shape
        self.quantized = quantized
        self.weight = nn.Parameter(torch.from_numpy(quantized.values.reshape(n, -1, quantized.group)), requires_grad=False)
        self.scales = nn.Parameter(torch.from_numpy(quantized.scales.copy()), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(torch.float32).clone(), requires_grad=False)
        self._tag_weight()

    def _tag_weight(self) -> None:
        """The importer types a parameter with `int_bits` as that many bits (torch has no int4)."""
        self.weight.int_bits = self.quantized.bits  # type: ignore[attr-defined]

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._tag_weight()  # copy.deepcopy makes new Parameters without their attributes

    def integer_part(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The int32 group sums `acc` `(..., N, K/G)` of float activations `(..., K)` and their
        per-token scales `(..., 1)`: `streamdsl.quant.int_matmul` and `activation_scale`."""
        _, groups, group = self.weight.shape
        xq, s = _quantize_once(x)
        xq = xq.reshape(*x.shape[:-1], 1, groups, group)
        return (xq.to(torch.int32) * self.weight.to(torch.int32)).sum(-1, dtype=torch.int32), s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc, s = self.integer_part(x)
        y = s * (acc.to(torch.float32) * self.scales.to(torch.float32)).sum(-1)
        return y if self.bias is None else y + self.bias


class _QuantizeOnce:
    """`quantize_activations` as int8, computed once for layers that read the same tensor one after
    the other (q, k and v; gate and up): the hardware quantizes a tensor once and forks the int8
    tiles and the scale, and the importer sees one quantization. The tensor last quantized is
    recognised by identity and version (an in-place change quantizes again)."""

    def __init__(self) -> None:
        self._last: tuple[weakref.ref, int, tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._last is not None:
            ref, version, result = self._last
            if ref() is x and x._version == version:
                return result
        q, s = quantize_activations(x)
        result = (q.to(torch.int8), s)
        self._last = (weakref.ref(x), x._version, result)
        return result


_quantize_once = _QuantizeOnce()


def _weight_of(module: nn.Module) -> torch.Tensor | None:
    """The `(out, in)` weight of a linear layer (`Conv1D` stores it transposed), else None."""
    if isinstance(module, nn.Linear):
        return module.weight
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        return module.weight.t()
    return None


def linear_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's linear layers by qualified name (`nn.Linear` and GPT-2's `Conv1D`)."""
    return {name: m for name, m in model.named_modules() if _weight_of(m) is not None}


def fake_quantize(model: nn.Module, scheme: str | Scheme | None) -> nn.Module:
    """A copy of `model` with every linear layer fake-quantized (the model for `none`)."""
    return _replace_linears(model, scheme, FakeQuantLinear)


def quantize_model(model: nn.Module, scheme: str | Scheme | None) -> nn.Module:
    """A copy of `model` with every linear layer in the hardware's integer form (`QuantLinear`),
    from the same offline quantization as `fake_quantize` (the model itself for `none`). Imported
    with `from_torch`, its layers are integer IR: int8 activations quantized per token on chip,
    `sd.i4` / `sd.i8` weight parameters with f16 scales, int32 sums, float dequantization."""
    return _replace_linears(model, scheme, QuantLinear)


def _replace_linears(model: nn.Module, scheme: str | Scheme | None, make) -> nn.Module:  # noqa: ANN001
    sch = quant.scheme(scheme) if isinstance(scheme, str) else scheme
    if sch is None:
        return model
    out = copy.deepcopy(model)
    for name, layer in linear_layers(out).items():
        weight = _weight_of(layer).detach().to(torch.float32).numpy()  # type: ignore[union-attr]
        replacement = make(quant.quantize_weight(weight, sch, f"{name}.weight"), layer.bias)
        parent_name, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, attr, replacement)
    return out


def weight_bytes(model: nn.Module, scheme: str | Scheme | None) -> dict[str, int]:
    """Bytes the host loads per decoder layer (`layers.N`, from the layer's qualified name) and
    `other` (embeddings, final norm, LM head): linear weights at `scheme` (packed values and f16
    scales), every other parameter and every bias in float32. Computed from shapes: a model on the
    meta device works."""
    sch = quant.scheme(scheme) if isinstance(scheme, str) else scheme
    linears = {f"{name}.weight": _weight_of(m) for name, m in linear_layers(model).items()}
    linear_ids = {id(m.weight) for m in linear_layers(model).values()}
    totals: dict[str, int] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if name in linears:
            n, k = linears[name].shape  # type: ignore[union-attr]
            size = 4 * n * k if sch is None else _quantized_bytes(n, k, sch, name)
        elif id(p) in seen or id(p) in linear_ids:
            continue  # a tied copy (the embedding the LM head shares) counts once, as itself
        else:
            size = 4 * p.numel()
        seen.add(id(p))
        match = re.search(r"\.(?:h|layers)\.(\d+)\.", f".{name}")
        key = f"layers.{match.group(1)}" if match else "other"
        totals[key] = totals.get(key, 0) + size
    return totals


def weight_figures(module: nn.Module) -> dict[str, object]:
    """report.json's weight bytes of `module` (one decoder layer) in float32, W8A8 and W4A8, and
    W4A8's share of float32; a scheme whose group does not divide some layer's input size is
    null, with the reason."""
    figures: dict[str, object] = {}
    for name, key in (("none", "float32"), ("w8a8", "w8a8"), ("w4a8", "w4a8")):
        try:
            figures[key] = sum(weight_bytes(module, name).values())
        except QuantError as err:
            figures[key], figures[f"{key}_unsupported"] = None, str(err)
    w4 = figures["w4a8"]
    figures["w4a8_over_float32"] = None if w4 is None else round(w4 / figures["float32"], 4)  # type: ignore[operator]
    return figures


def _quantized_bytes(n: int, k: int, sch: Scheme, name: str) -> int:
    group = sch.group_size(k)
    if k % group:
        raise QuantError(f"{name}: input size {k} is not a multiple of the {sch.name} group size {group}")
    return -(-n * k * sch.weight_bits // 8) + 2 * n * (k // group)


def check_checkpoint(directory: str | Path) -> None:
    """Refuse a checkpoint directory already quantized in a format we do not read: its config.json
    declares `quantization_config`, or its safetensors hold GPTQ/AWQ/bitsandbytes/fp8 tensors or
    integer weights. Reads headers only."""
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else None
    quant.check_float_checkpoint(str(config_path), (), config)
    for path in sorted(directory.glob("*.safetensors")):
        try:
            with safe_open(path, framework="numpy") as f:
                tensors = [(k, f.get_slice(k).get_dtype()) for k in f.keys()]
        except (SafetensorError, OSError) as err:
            raise QuantError(f"{path}: not a readable safetensors file ({err}); re-save the checkpoint") from None
        quant.check_float_checkpoint(str(path), tensors)
