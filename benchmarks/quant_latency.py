"""Modeled decode latency of the paper's Table 7 models with and without quantization: for each
family, `streamdsl compile FAMILY --size paper --quant SCHEME` (one decoder layer at the maximum
context, lowered, FIFO-sized and timed; the float32 block is lowered and timed alongside), then the
figures of its report.json: weight bytes per layer, cycles per block invocation and modeled
milliseconds per token of the decoder blocks (layers x cycles at 300 MHz), quantized vs float32.
A block that does not fit the U55C is reported as such (its cycles are still the timing model's).

    python benchmarks/quant_latency.py [--family gpt2 ...] [--scheme w4a8] [--max-context 1024]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from frontends import hf
from toolchain.cli import main as streamdsl


def measure(family: str, scheme: str, max_context: int, out: Path) -> dict:
    code = streamdsl(["-q", "compile", family, "--size", "paper", "--quant", scheme, "--max-context", str(max_context),
                      "--out", str(out)])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return {"exit": code, "report": report}


def _fit(report: dict) -> str:
    """Whether the block fits the U55C by the memory-shape count and by the resource model (the
    driver fails a design over either), with the BRAM36 the resource model counts."""
    resources = report.get("resources", {})
    fits = report["memory"]["fits"] and resources.get("fits", True)
    used, capacity = resources.get("total", {}).get("BRAM36"), resources.get("capacity", {}).get("BRAM36")
    return f"{'yes' if fits else 'no'} ({used:,} BRAM36 of {capacity:,})" if used is not None else str(fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--scheme", default="w4a8", choices=("w4a8", "w8a8"))
    parser.add_argument("--max-context", type=int, default=1024)
    args = parser.parse_args()
    print(f"{'model':<7} {'weights/layer':>14} {'ratio':>6} {'cycles f32':>11} {f'cycles {args.scheme}':>12} "
          f"{'ms/token f32':>13} {f'ms/token {args.scheme}':>14} {'speedup':>8}  fits")
    for family in args.family or hf.FAMILIES:
        with tempfile.TemporaryDirectory() as tmp:
            result = measure(family, args.scheme, args.max_context, Path(tmp) / "out")
        report = result["report"]
        if report is None:
            print(f"{family:<7} compile stopped (exit {result['exit']}): see `streamdsl compile {family} --size paper "
                  f"--quant {args.scheme}`")
            continue
        figures = report["model_figures"]
        q = figures["quantization"]
        w = q["weight_bytes_per_layer"]
        f32, qc = q["float32_cycles_per_block_invocation"], figures["cycles_per_block_invocation"]
        print(f"{family:<7} {w[args.scheme] / 2**20:>10.2f} MiB {w[args.scheme] / w['float32']:>6.3f} {f32:>11} {qc:>12} "
              f"{q['float32_device_ms_per_token']:>13.2f} {report['estimate']['device_ms_per_token']:>14.2f} {f32 / qc:>7.2f}x  "
              f"{_fit(report)}")


if __name__ == "__main__":
    main()
