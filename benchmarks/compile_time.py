"""Compile time of the paper's Table 7 models (random weights), per stage, in seconds.

The unit of compilation is one decoder block: the decode design (one token after a cache of
--max-context rows) is imported (torch.export, core-ATen decomposition when needed, our linalg
import), then the prefill design (--prefill-len tokens) and the host parts (embedding and head),
and the decode design goes through the lowering pipeline (`lowering.pipeline.lower`: element-wise
fusion, tiling, kernel formation, kernel fusion, converters), whose stages print as it reports
them; a pipeline that cannot lower the block yet prints why instead. Building the model (random
weights for the whole model) is not part of the compile and is printed apart.

    python benchmarks/compile_time.py [--family gpt2 ...] [--max-context 1024] [--no-lower]
"""

from __future__ import annotations

import argparse
import time
import warnings

from frontends import hf
from frontends.host import Generator


def measure(family: str, max_context: int, prefill_len: int, lower_block: bool) -> tuple[dict[str, float], str]:
    """({stage: seconds}, note) for one paper configuration."""
    start = time.perf_counter()
    model = hf.build(family, "paper")
    stages = {"build": time.perf_counter() - start}
    gen = Generator(model, max_context=max_context, prefill_len=prefill_len)
    stages.update({f"block {k}": v for k, v in gen.decode.program.timings.items()})
    stages.update({"prefill block": gen.seconds["prefill_block"], "host parts": gen.seconds["host"]})
    note = ""
    if lower_block:
        from lowering.pipeline import lower

        try:
            stages.update(lower(gen.decode.program, scalar_max=gen.decode.scalar_max).seconds)
        except Exception as err:  # noqa: BLE001 - a benchmark reports what the pipeline cannot do yet
            note = f"lowering stopped: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    return stages, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--max-context", type=int, default=1024)
    parser.add_argument("--prefill-len", type=int, default=8)
    parser.add_argument("--no-lower", action="store_true", help="time the import stages only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"paper configs, one decoder block, max context {args.max_context}, prefill {args.prefill_len}; seconds "
          "(build: random weights for the whole model, not part of the compile)")
    for family in args.family or hf.FAMILIES:
        stages, note = measure(family, args.max_context, args.prefill_len, not args.no_lower)
        total = sum(v for k, v in stages.items() if k != "build")
        print(f"{family:6} " + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()) + f"  | compile total {total:.2f}",
              flush=True)
        if note:
            print(f"       {note}", flush=True)


if __name__ == "__main__":
    main()
