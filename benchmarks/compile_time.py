"""Compile time of the paper's Table 7 models (random weights), per stage, in seconds.

The unit of compilation is one decoder block, the decode design at --max-context: import
(torch.export, our linalg import), the lowering passes (`lowering.pipeline.lower`: element-wise
fusion, tiling, kernel formation, kernel fusion, converters), FIFO sizing (`sd.compile`:
converter planning, the timing model, min-bits within the on-chip budget), the resource model
and the SLR placement ILP (`lowering/resources.py`, `lowering/slr.py`) and the Vitis HLS
project (`hls_backend.emit_project`, its lint included), as `streamdsl compile MODEL --size paper`
runs them, without the verification (simulators, report). Building the model (random weights) is
not part of the compile and is printed apart.

    python benchmarks/compile_time.py [--family gpt2 ...] [--max-context 1024] [--profile N]

`--profile N` prints the N functions with the most cumulative time of each compile (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
import warnings
from pathlib import Path

from frontends import hf


def compile_block(family: str, max_context: int, tile: int, out: Path) -> dict[str, float]:
    """{stage: seconds} of one paper configuration, from the model build to the HLS project."""
    import hls_backend
    import streamdsl as sd
    from lowering.resources import kernel_usage
    from lowering.slr import kernel_wires, place
    from toolchain.models import model_block

    block = model_block(family, "paper", max_context, tile)
    stages = dict(block.seconds)
    start = time.perf_counter()
    design = sd.compile(block.lowered.program)
    stages["fifo_sizing"] = time.perf_counter() - start
    start = time.perf_counter()
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    place(usage, kernel_wires(design.kernel, design.graph))
    stages["resources_slr"] = time.perf_counter() - start
    start = time.perf_counter()
    hls_backend.emit_project(design, out)
    stages["hls_emit"] = time.perf_counter() - start
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--max-context", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N hottest functions (cProfile)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"paper configs, one decoder block, max context {args.max_context}, tile {args.tile}; seconds "
          "(build_model: random weights for the model, not part of the compile)", flush=True)
    for family in args.family or hf.FAMILIES:
        profile = cProfile.Profile() if args.profile else None
        with tempfile.TemporaryDirectory() as tmp:
            if profile:
                profile.enable()
            stages = compile_block(family, args.max_context, args.tile, Path(tmp) / "hls")
            if profile:
                profile.disable()
        total = sum(v for k, v in stages.items() if k != "build_model")
        print(f"{family:6} " + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()) + f"  | compile total {total:.2f}",
              flush=True)
        if profile:
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(args.profile)
            print(text.getvalue(), flush=True)


if __name__ == "__main__":
    main()
