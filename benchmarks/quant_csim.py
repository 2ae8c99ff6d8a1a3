"""C simulation of one quantized block invocation for every family, size and scheme of the
quantization issue: `streamdsl compile FAMILY --size SIZE --quant SCHEME --csim` (lowered,
FIFO-sized, emitted, built with g++ and run sequentially and threaded; tiny w4a8 in groups of 32,
as tiny layers are 64 wide), then report.json's verification: the largest difference between
csim's outputs and the functional simulator's, relative to the outputs' largest magnitude (the
check `compile --csim` fails above 1e-5), and the simulator against PyTorch eager.

    python benchmarks/quant_csim.py [--family llama ...] [--size tiny ...] [--scheme w4a8 ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from frontends import hf
from toolchain.cli import main as streamdsl


def measure(family: str, size: str, scheme: str, out: Path) -> dict:
    start = time.perf_counter()
    groups = ["--group-size", "32"] if size == "tiny" and scheme == "w4a8" else []  # tiny layers are 64 wide, w4a8's groups 128
    code = streamdsl(["-q", "compile", family, "--size", size, "--quant", scheme, *groups, "--max-context", "16", "--csim",
                      "--out", str(out)])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return {"exit": code, "verification": report.get("verification", {}), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--size", action="append", choices=["tiny", "small"])
    parser.add_argument("--scheme", action="append", choices=["w4a8", "w8a8"])
    args = parser.parse_args()
    print(f"{'family':7s} {'size':6s} {'scheme':6s} {'exit':>4s} {'csim vs sim (rel)':>18s} {'sim vs torch (rel)':>19s} {'s':>5s}")
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.family or hf.FAMILIES:
            for size in args.size or ["tiny", "small"]:
                for scheme in args.scheme or ["w4a8", "w8a8"]:
                    m = measure(family, size, scheme, Path(tmp) / f"{family}-{size}-{scheme}")
                    v, scale = m["verification"], max(m["verification"].get("torch_max_abs", 0.0), 1e-30)
                    csim = v.get("csim_vs_sim_max_abs")
                    sim = v.get("sim_vs_torch_max_abs")
                    print(f"{family:7s} {size:6s} {scheme:6s} {m['exit']:4d} "
                          f"{'-' if csim is None else f'{csim / scale:.2e}':>18s} {'-' if sim is None else f'{sim / scale:.2e}':>19s} "
                          f"{m['seconds']:5.0f}", flush=True)


if __name__ == "__main__":
    main()
