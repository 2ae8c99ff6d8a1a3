"""The fake-quantized PyTorch reference of docs/quantization.md.

`fake_quantize(model, "w4a8")` returns a copy of a model whose linear layers (`nn.Linear` and
GPT-2's `Conv1D`) are `FakeQuantLinear`s: the weight is quantized once, offline, by
`streamdsl.quant.quantize_weight` and held dequantized (`Wq * s`); the input is quantized and
dequantized per token in PyTorch with the same rounding (ties to even) before the float linear.
Everything else (norms, softmax, activations, residuals, embeddings) is unchanged float32.

`check_checkpoint(directory)` refuses a checkpoint already quantized in a format we do not read;
`weight_bytes(model, scheme)` gives the bytes the host loads per decoder layer.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import torch
from torch import nn

from streamdsl import quant
from streamdsl.quant import QuantError, QuantizedWeight, Scheme

__all__ = [
    "FakeQuantLinear",
    "check_checkpoint",
    "fake_quantize",
    "linear_layers",
    "quantize_activations",
    "weight_bytes",
    "weight_figures",
]


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer values as float32, per-token scales) of `x`: `clamp(round(x / s), -127, 127)`,
    `s = max|x| / 127` over the last dim, 0 where `s == 0` (docs/quantization.md)."""
    s = x.abs().amax(dim=-1, keepdim=True) / torch.tensor(127.0, dtype=x.dtype)
    zero = s == 0
    q = torch.clamp(torch.round(x / torch.where(zero, torch.ones_like(s), s)), -127, 127)
    return torch.where(zero, torch.zeros_like(q), q), s


class FakeQuantLinear(nn.Module):
    """`y = (xq * s_x) @ (Wq * s_w).T + b`: a linear layer as the fake-quantized reference runs it.
    `quantized` keeps the integer weight and its f16 scales (what the host loads)."""

    def __init__(self, quantized: QuantizedWeight, bias: torch.Tensor | None):
        super().__init__()
        self.quantized = quantized
        self.register_buffer("weight", torch.from_numpy(quantized.dequantized()))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    @property
    def in_features(self) -> int:
        return self.quantized.shape[1]

    @property
    def out_features(self) -> int:
        return self.quantized.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, s = quantize_activations(x)
        return nn.functional.linear(q * s, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int{self.quantized.bits}, group={self.quantized.group}"


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
    sch = quant.scheme(scheme) if isinstance(scheme, str) else scheme
    if sch is None:
        return model
    out = copy.deepcopy(model)
    for name, layer in linear_layers(out).items():
        weight = _weight_of(layer).detach().to(torch.float32).numpy()  # type: ignore[union-attr]
        fq = FakeQuantLinear(quant.quantize_weight(weight, sch, f"{name}.weight"), layer.bias)
        parent_name, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, attr, fq)
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
