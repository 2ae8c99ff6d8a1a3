"""Weight bytes per decoder layer of the paper's Table 7 models at W4A8 and W8A8 against float32
(docs/quantization.md): packed integer weights plus their f16 scales for every linear layer; norms,
biases and embeddings in float32. Computed from shapes (the models are built on the meta device,
no weights are allocated), so it also covers the LM head and embeddings (`other`).

    python benchmarks/quant_weight_bytes.py [--family gpt2 ...]
"""

from __future__ import annotations

import argparse

import torch

from frontends import hf
from frontends.quant import weight_bytes


def measure(family: str) -> dict[str, dict[str, int]]:
    cls, cfg = hf.config(family, "paper")
    with torch.device("meta"):
        model = cls(cfg)
    return {scheme: weight_bytes(model, scheme) for scheme in ("none", "w8a8", "w4a8")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    args = parser.parse_args()
    print(f"{'model':<8} {'f32 MiB/layer':>14} {'w8a8':>8} {'ratio':>6} {'w4a8':>8} {'ratio':>6} "
          f"{'w4a8 whole model':>17}")
    for family in args.family or hf.FAMILIES:
        sizes = measure(family)
        layer = {s: b["layers.0"] / 2**20 for s, b in sizes.items()}
        total = {s: sum(b.values()) / 2**20 for s, b in sizes.items()}
        print(f"{family:<8} {layer['none']:>14.2f} {layer['w8a8']:>8.2f} {layer['w8a8'] / layer['none']:>6.3f} "
              f"{layer['w4a8']:>8.2f} {layer['w4a8'] / layer['none']:>6.3f} "
              f"{total['w4a8']:>8.1f} of {total['none']:.1f} MiB")


if __name__ == "__main__":
    main()
