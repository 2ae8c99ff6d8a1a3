"""Prints the imported IR of small named cases: `python -m frontends.dump softmax cat`.

The filecheck tests under tests/filecheck/frontends use it to show the linalg each
representative op becomes. `python -m frontends.dump --list` lists the cases; a zoo model is
`FAMILY-SIZE-decode` or `FAMILY-SIZE-prefill` (e.g. `python -m frontends.dump gemma-tiny-decode`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from frontends.torch_import import from_torch


class _Fn(nn.Module):
    """Wraps a function of tensors; parameters (if any) are registered so they stay named."""

    input_names = ("x", "y", "z")

    def __init__(self, fn: Callable, **params: torch.Tensor):
        super().__init__()
        self.fn = fn
        for name, p in params.items():
            self.register_parameter(name, nn.Parameter(p))

    def forward(self, *args):
        return self.fn(self, *args)


def _rms_norm(m, x):
    var = x.pow(2).mean(-1, keepdim=True)
    return m.weight * (x * torch.rsqrt(var + 1e-6))


class _Rope(nn.Module):
    """Rotary embedding with the table computed in forward from fixed positions: the importer
    folds cos/sin into named constants, leaving the rotate-half and the multiply-adds."""

    input_names = ("q",)

    def __init__(self, seq: int = 3, dim: int = 8):
        super().__init__()
        self.seq = seq
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim), persistent=False)

    def forward(self, q):
        freqs = torch.outer(torch.arange(self.seq).float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        half = q.shape[-1] // 2
        rotated = torch.cat((-q[..., half:], q[..., :half]), dim=-1)
        return q * emb.cos() + rotated * emb.sin()


def _case(fn: Callable, *shapes, **params) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return _Fn(fn, **{k: torch.randn(s) for k, s in params.items()}), tuple(torch.randn(s) for s in shapes)


CASES: dict[str, Callable[[], tuple[nn.Module, tuple]]] = {
    "mm": lambda: _case(lambda m, x: x @ m.weight, (4, 8), weight=(8, 16)),
    "addmm": lambda: (nn.Linear(8, 16).eval(), (torch.randn(4, 8),)),
    "bmm": lambda: _case(lambda m, a, b: torch.bmm(a, b), (2, 4, 8), (2, 8, 3)),
    "softmax": lambda: _case(lambda m, x: torch.softmax(x, dim=-1), (2, 4, 8)),
    "layer_norm": lambda: (nn.LayerNorm(8).eval(), (torch.randn(2, 8),)),
    "rms_norm": lambda: _case(_rms_norm, (2, 8), weight=(8,)),
    "rope": lambda: (_Rope(), (torch.randn(1, 2, 3, 8),)),
    "gelu": lambda: _case(lambda m, x: F.gelu(x, approximate="tanh"), (2, 8)),
    "gelu_erf": lambda: _case(lambda m, x: F.gelu(x), (2, 8)),
    "silu": lambda: _case(lambda m, x: F.silu(x), (2, 8)),
    "embedding": lambda: (nn.Embedding(16, 8).eval(), (torch.tensor([[3, 1, 4]]),)),
    "cat": lambda: _case(lambda m, a, b: torch.cat((a, b), dim=1), (2, 3, 4), (2, 5, 4)),
}


def _zoo_case(name: str) -> Callable[[], tuple[nn.Module, tuple]] | None:
    """`family-size-decode` / `family-size-prefill` (e.g. `llama-tiny-decode`): a zoo model's
    decode step after 4 cached tokens, or a 4-token prefill."""
    parts = name.split("-")
    if len(parts) != 3 or parts[2] not in ("decode", "prefill"):
        return None
    from frontends import hf

    if parts[0] not in hf.FAMILIES or parts[1] not in hf.SIZES:
        return None
    step = hf.decode_step if parts[2] == "decode" else hf.prefill
    return lambda: step(hf.build(parts[0], parts[1]), 4)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print("usage: python -m frontends.dump CASE [CASE ...]; cases:", " ".join(CASES),
              "or a zoo model FAMILY-SIZE-decode|prefill (e.g. llama-tiny-decode)")
        return 0 if argv else 2
    cases = {c: CASES.get(c) or _zoo_case(c) for c in argv}
    if unknown := [c for c, make in cases.items() if make is None]:
        print(f"unknown case(s) {', '.join(unknown)}; cases: {' '.join(CASES)} or FAMILY-SIZE-decode|prefill",
              file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")  # torch.export's deprecation chatter
    for case, make in cases.items():
        module, inputs = make()
        print(f"// case: {case}")
        print(from_torch(module, *inputs).module)
    return 0


if __name__ == "__main__":
    sys.exit(main())
