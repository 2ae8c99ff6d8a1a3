"""`streamdsl`: the command line. Exit codes: 0 success, 1 verification failed, 2 usage or input error,
3 internal error (a bug: `-v` shows its traceback)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from xdsl.utils.exceptions import DiagnosticException, ParseError

from streamdsl.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, StreamdslError
from toolchain.progress import Progress

__all__ = ["main", "positive_float", "report_errors"]

EXIT_OK = 0


def cmd_itensor(args: argparse.Namespace, console: Progress) -> int:
    """Print the paper's Fig. 5 itensor layouts as IR types with their token order."""
    import streamdsl as sd

    layouts = {
        "(a) row-major 2x2 tiles": sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(2, 2)),
        "(b) 4x2 tiles, column of tiles at a time": sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2), order=(1, 0)),
        "(c) as (b), each column streamed twice": sd.itensor(
            sd.f32, tile=(4, 2), trips=(4, 2, 2), steps=(2, 1, 4), map="(d0, d1, d2) -> (d2, d0)"
        ),
    }
    for title, it in layouts.items():
        console.step(f"layout {title}")
        print(f"// {title}: {it.num_tokens} tokens, shape {list(it.shape)}, regular={it.is_regular}")
        print(it.to_ir())
        order = " ".join(f"({o[0]},{o[1]})" for o in it.tokens())
        print(f"// token offsets: {order}\n")
    return EXIT_OK


SIZES = {"tiny": (128, 512, 32), "small": (768, 3072, 64), "paper": (1024, 4096, 64)}  # hidden, ffn, tile


def cmd_compile(args: argparse.Namespace, console: Progress) -> int:
    """Compile a built-in program end to end with its verification; write DIR/report.json and report.html."""
    from frontends.hf import FAMILIES
    from streamdsl.errors import UsageError
    from streamdsl.output import check_output_dir
    from toolchain.driver import compile_example
    from toolchain.examples import EXAMPLES

    if args.model_dir is not None and args.program is not None:
        raise UsageError(f"give a program or model ({args.program}) or --model-dir DIR, not both")
    args.program = args.program or ("checkpoint" if args.model_dir else "ffn-block")
    if args.model_dir is None and args.program not in EXAMPLES and args.program not in FAMILIES:
        raise UsageError(f"unknown program {args.program!r}; built-in programs: {', '.join(EXAMPLES)}; Hugging Face "
                         f"model families: {', '.join(FAMILIES)}")
    out = Path(args.out or f"out/{args.program}-{Path(args.model_dir).name if args.model_dir else args.size}")
    check_output_dir(out, args.force)  # before any work: a bad --out costs nothing
    if args.csim:
        from hls_backend import cxx_compiler

        cxx_compiler()
    if args.program in FAMILIES or args.model_dir is not None:
        result = _compile_model(args, out, console)
    elif args.dse or args.plan or args.clock is not None:
        raise UsageError(f"--dse, --plan and --clock apply to model families ({', '.join(FAMILIES)}), not to the built-in "
                         f"program {args.program!r}")
    elif args.quant != "none" or args.group_size is not None or args.replace is not None or args.kv_cache != "f32":
        raise UsageError(f"--quant, --group-size, --kv-cache and --replace apply to model families ({', '.join(FAMILIES)}), "
                         f"not to the built-in program {args.program!r}")
    else:
        hidden, ffn, tile = SIZES[args.size]
        example = EXAMPLES[args.program](hidden, ffn, tile)
        result = compile_example(example, out, console, seed=args.seed, csim=args.csim, force=args.force,
                                 fifo_tradeoff=args.fifo_tradeoff)
    print(_summary(result.report, out))
    for failure in result.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED


def _compile_model(args: argparse.Namespace, out: Path, console: Progress):
    """A decoder block of a zoo model: import, lower (fusion under the on-chip budget), size, verify
    against eager (not at `paper` size, where the block is emitted as HLS instead)."""
    from frontends.block import decoder_layers
    from frontends.quant import weight_figures
    from lowering.dse import load_plan, set_clock
    from lowering.timing import U55C
    from streamdsl import quant
    from streamdsl.dialects.dataflow import kernel_of
    from streamdsl.errors import UsageError
    from toolchain.driver import compile_example
    from toolchain.estimate import host_seconds
    from toolchain.models import load_replacement, model_block, plan_design, quantization_figures

    replacement = None if args.replace is None else load_replacement(args.replace)  # before any work
    max_context = args.max_context
    if args.dse and args.plan:
        raise UsageError("give --dse (explore a plan) or --plan FILE (build one), not both")
    for flag, given in (("--narrow-splits", args.narrow_splits), ("--share-hbm-ports", args.share_hbm_ports),
                        ("--flatten-loops", args.flatten_loops), ("--engines", args.engines)):
        if given and not args.dse:
            raise UsageError(f"{flag} is a choice of the exploration: give it with --dse")
    plan = load_plan(args.plan) if args.plan else None  # before any work: a bad plan file costs nothing
    if plan is not None and args.tile is not None and args.tile != plan.tile:
        raise UsageError(f"--tile {args.tile} and the plan's tile {plan.tile} ({args.plan}) disagree; give one of them")
    if plan is not None and args.clock is not None and args.clock != plan.clock_mhz:
        raise UsageError(f"--clock {args.clock:g} and the plan's clock {plan.clock_mhz:g} MHz ({args.plan}) disagree; give one "
                         "of them")
    tile = plan.tile if plan is not None else args.tile or 64
    scheme = quant.scheme(args.quant, args.group_size)  # before any work: a bad scheme costs nothing
    what = args.model_dir or f"{args.program} ({args.size})"
    console.step(f"building, importing and lowering one {what} decoder layer at cache length {max_context}"
                 f"{'' if scheme is None else f', linear layers at {scheme.name}'}"
                 f"{'' if args.kv_cache == 'f32' else f', KV cache in {args.kv_cache}'}")
    block = model_block(args.program, args.size, max_context, tile, seed=args.seed, model_dir=args.model_dir,
                        quant=scheme, replacement=replacement, kv_cache=args.kv_cache)
    lowered = block.lowered
    if lowered.kernels != 1:
        costly = sorted(lowered.fusion.edge_costs.items(), key=lambda kv: -kv[1])[:3]
        edges = ", ".join(f"{p.sym_name.data}->{n.sym_name.data} ({cost / 2**20:.1f} MiB)" for (p, n), cost in costly)
        raise UsageError(f"{args.program}-{args.size}: the block does not fit one design: fusion under the U55C's on-chip "
                         f"budget left {lowered.kernels} kernels; the largest converter edges: {edges}; try a smaller "
                         "--max-context or --tile")
    if args.dse or plan is not None:  # its splits, clock, lanes and HBM allocation, before FIFO sizing
        plan = plan_design(lowered.program.module, tile, plan, args.clock or U55C.clock_mhz, args.seed, progress=console.step,
                           narrow_splits=args.narrow_splits, shared_ports=args.share_hbm_ports, flat_loops=args.flatten_loops,
                           engines=args.engines)
    elif args.clock is not None:
        set_clock(kernel_of(lowered.program.module), args.clock)
    fused, unfused = lowered.fused_intermediate_bytes, lowered.unfused_intermediate_bytes
    figures = {
        "cache_length": max_context,
        "intermediate_bytes": {"unfused": unfused, "fused": fused, "fused_over_unfused": round(fused / max(unfused, 1), 4)},
        "compile_seconds": block.seconds,
        "weight_bytes_per_layer": weight_figures(decoder_layers(block.model)[0]),
        "layers": block.example.config["layers_in_model"],
        "host_seconds": host_seconds(block.model),
    }
    if plan is not None:
        figures["plan"] = plan.to_json()
    if scheme is not None:
        console.step("lowering the float32 block too: the modeled latency without quantization")
        figures["quantization"] = quantization_figures(block, scheme)
    verify = args.size != "paper"
    return compile_example(block.example, out, console, seed=args.seed, csim=args.csim, force=args.force, verify=verify,
                           emit_hls=not verify, model=figures, fifo_tradeoff=args.fifo_tradeoff)


def _model_lines(report: dict) -> list[str]:
    figures = report["model_figures"]
    inter = figures["intermediate_bytes"]
    lines = [f"  block at cache length {figures['cache_length']}: {figures['cycles_per_block_invocation']} cycles per "
             f"invocation; intermediates on chip {inter['fused']} B fused vs {inter['unfused']} B unfused "
             f"({inter['fused_over_unfused']:.1%})"]
    if "estimate" in report:
        est = report["estimate"]
        lines.append(f"  modeled: {est['ms_per_token']:.3f} ms/token ({est['tokens_per_second']:.1f} tokens/s) = "
                     f"{est['layers']} layers x {est['block_ms']:.3f} ms at {est['clock_mhz']:g} MHz + host "
                     f"{est['host_ms_per_token']:.3f} ms; HBM roofline {est['roofline_ms_per_token']:.3f} ms/token "
                     f"(the device at {est['device_vs_roofline']:.1%} of it)")
    return lines


def _summary(report: dict, out: object) -> str:
    sizing, verification, timed = report["fifo_sizing"], report["verification"], report["timed_simulation"]
    converter_bytes = sum(c["bytes"] for c in report["converters"])
    lines = [
        f"{report['model']} {report['config']}: {len(report['kernels'][0]['tasks'])} tasks, "
        f"{len(report['streams'])} FIFOs, {len(report['converters'])} converters ({converter_bytes} B), {len(report['dmas'])} DMAs",
        f"  FIFO sizing ({sizing['mode']}, {sizing['seconds']:.3f} s): {sizing['total_bits']} bits "
        f"vs {sizing['naive_bits']} naive ({sizing['total_bits'] / max(sizing['naive_bits'], 1):.1%}), "
        f"simulated peak {sizing['sim_peak_bits']}, every intermediate tensor {sizing['tensor_deep_bits']}",
        f"  on chip: {report['on_chip']['total_bits'] / 8 / 2**20:.2f} MiB of the U55C's "
        f"{report['on_chip']['device_bits'] / 8 / 2**20:.1f} MiB (FIFOs, converter and task-local buffers)",
        (f"  functional simulation vs torch: max abs error {verification['sim_vs_torch_max_abs']:.3g} "
         f"(max |y| {verification['torch_max_abs']:.3g})" if verification["sim_vs_torch_max_abs"] is not None
         else "  functional simulation: skipped (paper size; the HLS project is emitted instead)"),
        *(_model_lines(report) if "model_figures" in report else []),
        f"  timed simulation: {timed['makespan_cycles']} cycles (unbounded FIFOs: {timed['unbounded_makespan_cycles']}), "
        f"deadlock-free: {verification['deadlock_free']}",
        *[f"  FIFO trade-off: slack {p['slack']:.0%}: {p['makespan_cycles']} cycles, {p['total_bits']} bits"
          for p in report.get("fifo_tradeoff", [])],
        *([f"  C simulation (g++, sequential and threaded) vs functional simulation: max abs error "
           f"{verification['csim_vs_sim_max_abs']:.3g}"] if verification["csim_vs_sim_max_abs"] is not None else []),
        f"  wrote {out}/report.html, report.json, program.mlir, dataflow.dot/.svg"
        + (", hls/" if verification["csim_vs_sim_max_abs"] is not None else ""),
    ]
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace, console: Progress) -> int:
    """Run the jobs of an emitted project (csynth per task with Vitis HLS, else csim and timed
    simulation variants) on a local process pool or a Ray cluster; results go to report.json."""
    from toolchain.build import BuildError, build, plan_jobs

    try:
        jobs = plan_jobs(args.dir)
    except BuildError as err:
        print(f"streamdsl build: {err}", file=sys.stderr)
        return EXIT_USAGE
    where = f"the Ray cluster at {args.ray}" if args.ray else "a local process pool"
    console.step(f"running {len(jobs)} jobs ({', '.join(j.name for j in jobs)}) on {where}")
    try:
        with console.bar("build", len(jobs)) as advance:
            section = build(args.dir, ray_address=args.ray, workers=args.workers, jobs=jobs, advance=advance)
    except BuildError as err:
        print(f"streamdsl build: {err}", file=sys.stderr)
        return EXIT_USAGE
    for job in section["jobs"]:
        status = "ok" if job["ok"] else f"FAILED (log: {Path(args.dir) / job['log']})"
        print(f"{job['name']:<28} {job['seconds']:8.2f} s  {status}")
    for name in section["failed"]:
        log = Path(args.dir) / "build" / f"{name}.log"
        print(f"FAILED: {name}; its log ({log}) ends:\n" + "\n".join(log.read_text().splitlines()[-15:]), file=sys.stderr)
    return EXIT_FAILED if section["failed"] else EXIT_OK


def _add_build_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a compile output directory (with hls/, from `compile --csim`)")
    parser.add_argument("--ray", metavar="ADDRESS", help="run the jobs on the Ray cluster at ADDRESS (host:port; needs streamdsl[cluster])")
    parser.add_argument("--workers", type=int, help="local pool size (default: one per job, at most the CPU count)")


def cmd_models(args: argparse.Namespace, console: Progress) -> int:
    """List what `compile` and `import` accept."""
    from frontends.hf import FAMILIES
    from frontends.hf import SIZES as MODEL_SIZES
    from toolchain.examples import EXAMPLES

    print(f"built-in programs (streamdsl compile): {', '.join(EXAMPLES)}; sizes {', '.join(SIZES)}")
    print(f"Hugging Face families (streamdsl import): {', '.join(FAMILIES)}; sizes {', '.join(MODEL_SIZES)}")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace, console: Progress) -> int:
    """Greedy generation with one decoder-block design run once per layer and step (the host does
    the embedding, the head, sampling and the KV cache); --check compares with PyTorch."""
    import time
    import warnings

    import numpy as np

    from frontends import ModelError, hf
    from frontends.host import RUNNERS, Generator, torch_generate
    from frontends.quant import fake_quantize, quantize_model
    from streamdsl import quant

    warnings.filterwarnings("ignore")  # torch.export's deprecation chatter
    if (args.model is None) == (args.model_dir is None):
        raise ModelError("give a zoo MODEL (see `streamdsl models`) or --model-dir DIR, not both")
    from toolchain.models import DesignRunner

    runners = {**RUNNERS, "design": DesignRunner()}  # design: the one compiled design per block, simulated
    if args.runner not in runners:
        raise ModelError(f"--runner {args.runner}: choose one of {', '.join(sorted(runners))}")
    if args.prompt_len + args.tokens - 1 > args.max_context:
        raise ModelError(f"--prompt-len {args.prompt_len} and --tokens {args.tokens} need a cache of "
                         f"{args.prompt_len + args.tokens - 1} rows; raise --max-context ({args.max_context})")
    scheme = quant.scheme(args.quant, args.group_size)
    name = args.model_dir or f"{args.model}-{args.size}"
    console.step(f"building {name}" + ("" if args.model_dir else " from its config with random weights"))
    if args.model_dir:
        model = hf.from_dir(args.model_dir, num_layers=args.layers, attention=args.attention)
    else:
        model = hf.build(args.model, args.size, num_layers=args.layers, seed=args.seed, attention=args.attention)
    console.step(f"importing the decode and prefill ({args.prefill_len} tokens) block designs, the embedding and "
                 f"the head (max context {args.max_context})")
    start = time.perf_counter()
    gen = Generator(quantize_model(model, scheme), max_context=args.max_context, prefill_len=args.prefill_len,
                    block_runner=runners[args.runner])
    imported = time.perf_counter() - start
    prompt = np.random.default_rng(args.seed).integers(0, model.config.vocab_size, args.prompt_len).tolist()
    console.step(f"generating {args.tokens} tokens: {gen.num_layers} layers per step through the {args.runner} "
                 "block runner")
    start = time.perf_counter()
    out = gen.generate(prompt, args.tokens)
    seconds = time.perf_counter() - start
    print(f"prompt: {' '.join(map(str, prompt))}")
    print(f"tokens: {' '.join(map(str, out.tokens))}")
    console.detail(f"import {imported:.2f} s, generation {seconds:.2f} s ({seconds / args.tokens * 1e3:.1f} ms/token)")
    if not args.check:
        return EXIT_OK
    console.step(f"generating with PyTorch (model.generate, greedy{'' if scheme is None else ', fake-quantized model'})")
    want = torch_generate(fake_quantize(model, scheme), prompt, args.tokens)
    error = max(float(np.abs(g - w).max() / np.abs(w).max()) for g, w in zip(out.logits, want.logits))
    # quantized: float32 rounding differences may move an activation across a rounding boundary,
    # one int8 step (1/127 of its token's max), so the logits agree to about 1e-2, not 1e-4
    tolerance = 1e-4 if scheme is None else 2e-2
    same = out.tokens == want.tokens and error <= tolerance
    print(f"torch:  {' '.join(map(str, want.tokens))}\n{'same tokens' if out.tokens == want.tokens else 'DIFFERENT tokens'}"
          f", logits within {error:.2g} of max |logit| ({'ok' if same else 'FAILED'}, tolerance {tolerance:g})")
    return EXIT_OK if same else EXIT_FAILED


def _add_generate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="zoo family (see `streamdsl models`); or give --model-dir")
    parser.add_argument("--model-dir", metavar="DIR", help="a local Hugging Face checkpoint: config.json + *.safetensors")
    parser.add_argument("--size", default="tiny", help="tiny (default), small or paper")
    parser.add_argument("--layers", type=positive_int, help="keep only the first N decoder layers")
    parser.add_argument("--attention", default="default", choices=("default", "eager", "sdpa"),
                        help="attention implementation (default: transformers' choice, as a user builds the model)")
    parser.add_argument("--prompt-len", type=positive_int, default=8, help="random prompt tokens (default 8)")
    parser.add_argument("--tokens", type=positive_int, default=16, help="tokens to generate (default 16)")
    parser.add_argument("--max-context", type=positive_int, default=1024, help="the designs' cache rows (default 1024)")
    parser.add_argument("--prefill-len", type=positive_int, default=8,
                        help="prompt tokens per prefill invocation (default 8; 1: the prompt through the decode design)")
    parser.add_argument("--runner", default="numpy", help="what runs the block: numpy (default; the imported IR "
                        "interpreted) or design (the block lowered to one dataflow design, in the functional simulator)")
    parser.add_argument("--seed", type=_natural, default=0, help="seed of the weights and the prompt")
    parser.add_argument("--check", action="store_true", help="compare tokens and logits with PyTorch's model.generate "
                        "(of the fake-quantized model with --quant)")
    _add_quant_args(parser)


def cmd_import(args: argparse.Namespace, console: Progress) -> int:
    """Import a zoo model through torch.export and check the IR on numpy against PyTorch eager."""
    import json
    import warnings

    import numpy as np
    import torch

    from frontends import from_torch, hf
    from streamdsl.output import atomic_output_dir, check_output_dir

    if args.out:
        check_output_dir(args.out, args.force)  # before any work
    warnings.filterwarnings("ignore")  # torch.export's deprecation chatter
    steps = {"seq_len": args.tokens} if args.prefill else {"past_len": args.past}
    hf.check_steps(hf.config(args.family, args.size, num_layers=args.layers)[1], **steps)  # before building
    console.step(f"building {args.family} ({args.size}) from its config with random weights")
    model = hf.build(args.family, args.size, num_layers=args.layers, weights=args.weights)
    module, inputs = hf.prefill(model, args.tokens) if args.prefill else hf.decode_step(model, args.past)
    console.step("exporting, decomposing to core ATen and importing to linalg")
    prog = from_torch(module, *inputs)
    console.step("running the imported IR on numpy and the model in PyTorch eager")
    with torch.no_grad():
        expected = [t.numpy() for t in module(*inputs)]
    got = prog.reference(*[t.numpy() for t in inputs])
    got = list(got) if isinstance(got, tuple | list) else [got]
    error = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected))
    scale = float(np.max(np.abs(expected[0])))
    passed = error <= 1e-4 * scale
    print(f"{args.family}-{args.size} {'prefill' if args.prefill else 'decode'}: max abs error {error:.3g} "
          f"vs max |logit| {scale:.3g} ({'ok' if passed else 'FAILED'}, tolerance 1e-4 relative)")
    if args.out:
        with atomic_output_dir(args.out, args.force) as staging:
            (staging / "imported.mlir").write_text(str(prog.module) + "\n")
            summary = {"model": args.family, "size": args.size, "max_abs_error": error, "max_abs_logit": scale}
            (staging / "import.json").write_text(json.dumps(summary, indent=2) + "\n")
        console.step(f"wrote {Path(args.out) / 'imported.mlir'}")
    return EXIT_OK if passed else EXIT_FAILED


def _add_import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("family", help="gpt2, llama, qwen2 or gemma (see `streamdsl models`)")
    parser.add_argument("--size", default="tiny", help="tiny (default), small or paper")
    parser.add_argument("--layers", type=int, help="keep only the first N decoder layers")
    parser.add_argument("--weights", metavar="DIR", help="load *.safetensors from DIR instead of random weights")
    parser.add_argument("--prefill", action="store_true", help="import the prompt (prefill) step, not a decode step")
    parser.add_argument("--past", type=int, default=8, help="cached tokens of the decode step (default 8)")
    parser.add_argument("--tokens", type=int, default=8, help="prompt length of the prefill step (default 8)")
    parser.add_argument("--out", metavar="DIR", help="write DIR/imported.mlir and DIR/import.json")
    _add_force_arg(parser)


def _add_force_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace the output directory even if streamdsl did not write it (it holds no "
                        ".streamdsl-output marker); everything in it is lost")


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (`--layers`, `--max-context`; the benchmarks' too)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number above 0 (`--clock`; the benchmarks' `--device-scale`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Progress], int], str]] = {
    "compile": (cmd_compile, "compile a built-in program or a model's decoder block end to end with its verification"),
    "build": (cmd_build, "run an emitted project's HLS synthesis or csim jobs on a process pool or a Ray cluster"),
    "import": (cmd_import, "import a Hugging Face model to linalg and check it against PyTorch"),
    "generate": (cmd_generate, "generate tokens greedily with a model's decoder-block design, layer by layer"),
    "itensor": (cmd_itensor, "print the paper's Fig. 5 itensor layouts with their stream order"),
    "models": (cmd_models, "list the built-in programs and the importable model families"),
}


def _add_compile_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", nargs="?", help="built-in program (default: ffn-block) or model family (`streamdsl "
                        "models`)")
    parser.add_argument("--model-dir", metavar="DIR", help="a local Hugging Face checkpoint (config.json + *.safetensors; "
                        "never pickles) instead of a zoo model: its decoder block")
    parser.add_argument("--size", choices=SIZES, default="small", help="tiny, small (GPT-2, default) or paper (GPT-2 medium)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: out/PROGRAM-SIZE)")
    parser.add_argument("--seed", type=_natural, default=0, help="seed of the random inputs and weights")
    parser.add_argument("--max-context", type=positive_int, default=1024,
                        help="models: the cache length the decode block is compiled at (default 1024)")
    parser.add_argument("--tile", type=positive_int, help="models: the default tile size of every loop (default 64)")
    parser.add_argument("--csim", action="store_true",
                        help="also emit the Vitis HLS project (DIR/hls) and check its g++ C simulation")
    parser.add_argument("--replace", metavar="FILE.py",
                        help="models: compute torch functions of the block with others, say every attention with a DSL "
                             "kernel: FILE defines REPLACE = {torch function: function} and optionally "
                             "prepare_model(model) (tutorials/07_kernel_in_a_model.py); docs/frontends.md")
    parser.add_argument("--fifo-tradeoff", action="store_true",
                        help="also report the makespan / FIFO-bits curve: min-bits at makespan slacks of 0 to 100%%")
    parser.add_argument("--clock", type=positive_float, metavar="MHZ",
                        help="models: the kernel clock the timing model runs at (default 300; the paper ran at 250)")
    parser.add_argument("--dse", action="store_true",
                        help="models: explore lanes per task and HBM striping for decode speed within the resources "
                             "(lowering/dse.py); the plan goes into report.json and DIR/plan.json")
    parser.add_argument("--narrow-splits", action="store_true",
                        help="models, with --dse: judge the matvec splits with the DMA ports narrowed (more parts, fewer "
                             "lanes: faster on GPT-2 medium, slower on TinyLlama; docs/lowering.md)")
    parser.add_argument("--share-hbm-ports", action="store_true",
                        help="models, with --dse: the split matvec parts that run one after the other stream their weights "
                             "through shared HBM ports (share-hbm-ports; docs/lowering.md)")
    parser.add_argument("--flatten-loops", action="store_true",
                        help="models, with --dse: flatten the tasks' perfect loop nests first (flatten-loop-nests: attention "
                             "without a pipeline fill per head; docs/lowering.md)")
    parser.add_argument("--engines", action="store_true",
                        help="models, with --dse: the split parts of matvecs that run one after the other compute in shared "
                             "engines (form-engines: one body, one set of multipliers; docs/lowering.md)")
    parser.add_argument("--plan", metavar="FILE", help="models: build the design a plan.json describes (from --dse)")
    parser.add_argument("--kv-cache", choices=("f32", "f16"), default="f32",  # frontends.block.KV_DTYPES, without torch
                        help="models: hold the KV cache in f32 (default) or f16, which halves the bits the attention "
                             "streams; the new keys and values are rounded as they are stored (docs/quantization.md)")
    _add_quant_args(parser)
    _add_force_arg(parser)


def _add_quant_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quant", nargs="?", const="w4a8", default="none", metavar="SCHEME",
                        help="models: quantize every linear layer: w4a8 (the value when SCHEME is left out), w8a8 or "
                             "none (the default: float32); docs/quantization.md")
    parser.add_argument("--group-size", type=positive_int, metavar="G",
                        help="models at w4a8: input channels per weight scale (default 128; the tiny sizes need 32 or 64)")


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "generate": _add_generate_args,
    "compile": _add_compile_args, "import": _add_import_args, "build": _add_build_args,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamdsl",
        description="Compile LLM inference into stream dataflow accelerators for the AMD Alveo U55C.",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print details of every step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        ARGUMENTS.get(name, lambda _: None)(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Progress(0 if args.quiet else 2 if args.verbose else 1)
    handler, _ = COMMANDS[args.command]
    return report_errors(f"streamdsl {args.command}", lambda: handler(args, console), args.verbose, "-v")


def report_errors(prog: str, body: Callable[[], int], verbose: bool, traceback_flag: str) -> int:
    """Run `body`; turn what escapes into one message on stderr and the exit code: a user error
    (StreamdslError, or xDSL's parse and verify errors on an input file) 2, a failed verification
    1, anything else 3 as an internal error. The traceback only with `verbose`."""
    try:
        return body()
    except BrokenPipeError:  # `streamdsl ... | head` closed our stdout: not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (StreamdslError, ParseError, DiagnosticException) as err:
        error, code = err, getattr(err, "exit_code", EXIT_USAGE)
        print(f"{prog}: {'verification failed: ' if code == EXIT_FAILED else 'error: '}{err}".rstrip(), file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - the last resort: say it is our bug, not the user's
        error, code = err, EXIT_INTERNAL
        print(f"{prog}: internal error: {type(err).__name__}: {err}\nThis is a bug in streamdsl; run again with "
              f"{traceback_flag} for the traceback and report it.", file=sys.stderr)
    if verbose:
        traceback.print_exception(error)
    return code


if __name__ == "__main__":
    sys.exit(main())
