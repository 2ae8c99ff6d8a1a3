"""The emitted C++ against the timing model, in cycles.

For each design, sequential csim counts cycles with the counters the emitter puts in the code
(II per pipelined iteration, the pipeline depth per loop entry, hls_backend/include/sd_support.h):
per process its own cycles (`busy`), and a makespan in which reads wait for their beats (infinite
FIFOs). The timing model gives each process's latency (a converter: the span of its filling and
draining halves in the timed simulation) and the timed simulator the makespan with the sized FIFOs. Printed: both figures
and the ratio csim / model per process and for the makespan; the target is within 1.2x.

Every ratio off by more than 1.2x either way is flagged, and the exit status is 1 if any is.

Run: `python benchmarks/hls_cycles.py [--only NAME ...] [--quick]` (--quick skips the paper-size designs).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from xdsl.context import Context

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import streamdsl as sd  # noqa: E402
from hls_backend import csim_cycles, emit_project, model_cycles  # noqa: E402
from lowering.transforms.insert_converters import InsertConvertersPass  # noqa: E402
from streamdsl import quant  # noqa: E402
from toolchain.cli import SIZES  # noqa: E402
from toolchain.examples import ffn_block  # noqa: E402
from toolchain.models import load_replacement, model_block, planned_block  # noqa: E402

TARGET = 1.2


def _tutorial(name: str):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "tutorials" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def designs() -> dict[str, Callable[[], tuple[object, list[np.ndarray]]]]:
    """name -> () -> (program, inputs). The default designs: `make run`'s GPT-2 tiny decoder block
    (cache length 64, tile 64) and `streamdsl compile`'s FFN block (small); the DSE's GPT-2 W4A8
    designs at 250 MHz (the plan explored, lanes and HBM striping applied), and the Gemma 3 and
    TinyLlama designs with shared ports."""
    rng = np.random.default_rng(0)

    def ffn(size: str) -> tuple[object, list[np.ndarray]]:
        ex = ffn_block(*SIZES[size])
        InsertConvertersPass().apply(Context(), ex.program.module)  # as `streamdsl compile` plans them
        return ex.program, ex.make_inputs(0)

    def block(family: str, replace: str | None = None) -> Callable[[], tuple[object, list[np.ndarray]]]:
        def build() -> tuple[object, list[np.ndarray]]:  # lowered with its converters planned
            replacement = None if replace is None else load_replacement(ROOT / "tutorials" / replace)
            ex = model_block(family, "tiny", max_context=64, tile=64, replacement=replacement).example
            return ex.program, ex.make_inputs(0)

        return build

    def dse(size: str, max_context: int, group: int | None, fill: float = 0.8, narrow_splits: bool = False,
            family: str = "gpt2", shared_ports: bool = False, flat_loops: bool = False,
            kv_cache: str = "f32") -> Callable[[], tuple[object, list[np.ndarray]]]:
        def build() -> tuple[object, list[np.ndarray]]:  # `streamdsl compile gpt2 --quant w4a8 --dse --clock 250`
            block, _ = planned_block(family, size, max_context, quant.scheme("w4a8", group), clock_mhz=250.0, fill=fill,
                                     narrow_splits=narrow_splits, shared_ports=shared_ports, flat_loops=flat_loops,
                                     kv_cache=kv_cache)
            return block.example.program, block.example.make_inputs(0)

        return build

    def t01() -> tuple[object, list[np.ndarray]]:  # the tutorials as they are written (default sizes)
        return _tutorial("01_elementwise").build(), [_rand(rng, 4, 256)]

    def t02(which: str) -> Callable[[], tuple[object, list[np.ndarray]]]:
        return lambda: (_tutorial("02_matvec_reuse").build()[which], [_rand(rng, 1, 128), _rand(rng, 128, 256)])

    def t03() -> tuple[object, list[np.ndarray]]:
        return _tutorial("03_streaming_attention").build(), [_rand(rng, 4, 32), _rand(rng, 4, 64, 32), _rand(rng, 4, 64, 32)]

    def t04() -> tuple[object, list[np.ndarray]]:  # one program for every cache length: timed at the longest
        m, sizes = _tutorial("04_flash_decoding"), (8, 2, 64, 16, 8, 2)
        return m.build(*sizes), [*m.inputs(*sizes), np.int32(sizes[2])]

    def t05() -> tuple[object, list[np.ndarray]]:  # one program for every prompt length: the longest
        m = _tutorial("05_rope_prefill")
        return m.build(4, 2, 32, 16, 8), [*m.inputs(4, 2, 32, 16), np.int32(32)]

    def t06() -> tuple[object, list[np.ndarray]]:
        m = _tutorial("06_w4a8_matvec")
        x, qw = m.inputs(3, 384, 128)
        return m.build(3, 384, 128, 64)["linear"], list(m.device_arrays(x, qw))

    def planned(build: Callable[[], tuple[object, list[np.ndarray]]]) -> Callable[[], tuple[object, list[np.ndarray]]]:
        def run() -> tuple[object, list[np.ndarray]]:
            program, inputs = build()
            InsertConvertersPass().apply(Context(), program.module)  # as `streamdsl compile` plans them
            return program, inputs

        return run

    tutorials = {

        "tutorial 01 elementwise": t01,
        "tutorial 02 replay": t02("replay"),
        "tutorial 02 buffered": t02("buffered"),
        "tutorial 02 converted": t02("converted"),
        "tutorial 03 attention": t03,
        "tutorial 04 flash decoding": t04,
        "tutorial 05 rope prefill": t05,
        "tutorial 06 w4a8": t06,
    }
    return {
        "default (gpt2 tiny block)": block("gpt2"),
        "default (ffn small)": lambda: ffn("small"),
        **{name: planned(build) for name, build in tutorials.items()},
        # `streamdsl compile llama --max-context 64 --replace tutorials/07_kernel_in_a_model.py`
        "tutorial 07 flash kernel in a llama block": block("llama", "07_kernel_in_a_model.py"),
        "ffn tiny": lambda: ffn("tiny"),
        "ffn paper": lambda: ffn("paper"),
        # issue 15's chosen design (benchmarks/roofline.py): GPT-2 medium, W4A8, 250 MHz, cache length 128
        "gpt2 tiny w4a8 dse (cache 16)": dse("tiny", 16, 32),
        "gpt2 paper w4a8 dse (cache 128)": dse("paper", 128, None),  # `--dse`: share 0.8, splits judged with 512-bit ports
        # the plan benchmarks/roofline.py reports: share 1.0, splits judged with narrowed ports
        "gpt2 paper w4a8 dse, narrowed splits (cache 128)": dse("paper", 128, None, 1.0, narrow_splits=True),
        # ... with attention's loop nests flattened (`flat_loops`)
        "gpt2 paper w4a8 dse, narrowed splits, flat loops (cache 128)": dse("paper", 128, None, 1.0, narrow_splits=True,
                                                                            flat_loops=True),
        # ... with its KV cache in f16 (`--kv-cache f16`: benchmarks/roofline.py --kv-cache f16 reports it)
        "gpt2 paper w4a8 dse, narrowed splits, flat loops, KV f16 (cache 128)": dse("paper", 128, None, 1.0, narrow_splits=True,
                                                                                     flat_loops=True, kv_cache="f16"),
        # the designs benchmarks/roofline.py reports for Gemma 3 and TinyLlama: their parts' weights on shared ports
        "gemma paper w4a8 dse, shared ports (cache 128)": dse("paper", 128, None, 1.0, True, "gemma", shared_ports=True),
        "llama paper w4a8 dse, shared ports (cache 128)": dse("paper", 128, None, 1.0, True, "llama", shared_ports=True),
    }


def measure(name: str, build: Callable[[], tuple[object, list[np.ndarray]]], workdir: Path) -> dict[str, float]:
    program, inputs = build()
    design = sd.compile(program)
    project = emit_project(design, workdir / name.replace(" ", "_").replace("(", "").replace(")", ""))
    counted = csim_cycles(project, *inputs)
    model = model_cycles(design)
    makespan = design.timed_simulation().makespan
    print(f"\n{name}: {len(model)} processes")
    print(f"  {'process':34s} {'csim':>10s} {'model':>10s} {'ratio':>6s}")
    worst = 1.0
    off = []
    rows = [(node, clock["busy"], model[node]) for node, clock in counted["processes"].items()]
    for node, csim, modeled in [*rows, ("makespan", counted["makespan"], makespan)]:
        ratio = csim / max(1, modeled)
        spread = max(ratio, 1 / ratio if ratio else float("inf"))
        if node != "makespan":
            worst = max(worst, spread)
        if spread > TARGET:
            off.append(node)
        print(f"  {node:34s} {csim:10d} {modeled:10d} {ratio:6.2f}{'  <- off (target 1.2x)' if spread > TARGET else ''}")
    return {"makespan_ratio": counted["makespan"] / makespan, "worst_process_ratio": worst, "off": off}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="designs whose name contains one of these words")
    parser.add_argument("--quick", action="store_true", help="skip the paper-size designs")
    args = parser.parse_args(argv)
    summary = {}
    with tempfile.TemporaryDirectory(prefix="hls_cycles_") as tmp:
        for name, build in designs().items():
            if args.only and not any(word in name for word in args.only):
                continue
            if args.quick and "paper" in name:
                continue
            summary[name] = measure(name, build, Path(tmp))
    print(f"\nsummary (target: every ratio within {TARGET}x)")
    for name, figures in summary.items():
        flag = f"  <- off: {', '.join(figures['off'])}" if figures["off"] else ""
        print(f"  {name:28s} makespan {figures['makespan_ratio']:5.2f}x   worst process {figures['worst_process_ratio']:5.2f}x{flag}")
    return 1 if any(figures["off"] for figures in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
