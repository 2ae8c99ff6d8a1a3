"""Import time of the paper's Table 7 models (random weights): torch.export, core-ATen
decomposition and our linalg import, in seconds, for the decode step (and prefill with --prefill).
The decomposition is skipped (about 0 s) when every exported op has a lowering; model building
and the one-token run that sizes the KV cache are not timed.

    python benchmarks/import_time.py [--family gpt2 ...] [--past-len 64] [--prefill 32]
"""

from __future__ import annotations

import argparse
import time
import warnings

from frontends import from_torch, hf


def measure(family: str, past_len: int, prefill: int | None) -> dict[str, float]:
    t0 = time.perf_counter()
    model = hf.build(family, "paper")
    build = time.perf_counter() - t0
    module, inputs = hf.prefill(model, prefill) if prefill else hf.decode_step(model, past_len)
    prog = from_torch(module, *inputs)
    ops = sum(1 for _ in prog.func.body.walk()) - 1
    return {"build": build, **prog.timings, "ops": ops, "params": len(prog.params)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--past-len", type=int, default=64)
    parser.add_argument("--prefill", type=int, default=None, help="import a prefill of this length instead")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    step = f"prefill {args.prefill}" if args.prefill else f"decode step, past_len {args.past_len}"
    print(f"paper configs, {step}; seconds (model build with random weights is not part of the import)")
    print(f"{'model':8} {'build':>7} {'export':>7} {'decomp':>7} {'import':>7} {'total':>7} {'ops':>7}")
    for family in args.family or hf.FAMILIES:
        r = measure(family, args.past_len, args.prefill)
        total = r["export"] + r["decompose"] + r["import"]
        print(f"{family:8} {r['build']:7.2f} {r['export']:7.2f} {r['decompose']:7.2f} {r['import']:7.2f} "
              f"{total:7.2f} {r['ops']:7d}", flush=True)


if __name__ == "__main__":
    main()
