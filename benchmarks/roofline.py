"""Modeled decode time per token of the paper's models against the HBM roofline of their weights.

For each family: the `paper` decoder block at a quantization scheme (W4A8 by default) and cache
length (128), lowered once (`toolchain.models.model_block`, as `streamdsl compile` does), a design
plan explored (`lowering.dse.explore`: splits of the weight matvecs, lanes per task, HBM
striping; seconds and timed simulations printed) and applied to a copy of the block, as `streamdsl
compile --dse` does (`toolchain.models.plan_design`), the FIFOs sized within the
on-chip budget (`sd.compile`) and the block timed (timed simulator, sized FIFOs) at the clock.
The exploration checks the tasks and DMAs against a share of the device (`--fill`) and backs its
splits off until the FIFO-sized design fits, but a design that fits may still be slowed by FIFOs
sized to fit the memory, so shares 1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.5 are tried in turn, until a design
that fits every SLR by the resource model (an SLR placement exists, lowering/slr.py) is slower
than the best so far; this twice, the split levels judging the DMAs' ports at 512 bits and then
narrowed (`--split-ports`: more parts, fewer lanes; which is faster depends on the model), and
the fastest design that fits is reported. The KV cache is held in f32 unless `--kv-cache f16`
(as `streamdsl compile --kv-cache`: the attention then streams half the bits). Decode time per token = layers x
block cycles / clock (the host part and kernel launches not counted: the device's share).

That search runs at the first `--clock` (default 250 MHz, the paper's) and the first
`--max-context` (default 128); the other clocks (default also 300 MHz) and cache lengths (default
also 1,024: a design compiled for a longer cache streams all of it, masked, at every length) are
each explored once with the options the search chose (share, split judgement, ports, loops,
engines), as is, at each clock and the first cache length, the prefill design of `--prefill-len`
prompt tokens (default 8, as `streamdsl generate`): its cycles per invocation over the tokens is
the time to first token per prompt token (TTFT; `--prefill-len 1`: the prompt through the decode
design). The
roofline is the layer's weight bytes (every weight byte crosses HBM once per token) x layers at
the U55C's nominal 460 GB/s (32 pseudo-channels x 14.375 GB/s); `measured` is the same at the
425 GB/s Shuhai measured (docs/timing.md). The paper's board measurement for GPT-2 medium is
printed beside ours.

`--device-scale K` is a what-if: the whole study on a device of K times the U55C's resources (each
SLR's DSPs, LUTs, FFs, BRAM36, URAM and LUTRAM, the SLLs between SLRs and the memory count's
capacities), everything else (HBM, clock, cost tables) the same. It tells a design bound by the
device's budget (faster on a larger device) from one bound by its structure (no faster): the
ratio it prints is not a U55C figure.

`--engines on` lets the exploration compute the parts of matvecs that run one after the other in
shared engines (`explore`'s `engines`; off by default: on the four families it explored slower
designs, docs/lowering.md "Matvec engines: one body, charged once").

    python benchmarks/roofline.py [--family gpt2 ...] [--quant w4a8] [--clock 250 ...] [--max-context 128 ...]
                                  [--prefill-len 8] [--seed 0] [--fill 0.7 ...] [--kv-cache f32|f16] [--engines off|on ...]
                                  [--plans DIR] [--device-scale K]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from frontends import hf
from frontends.block import KV_DTYPES, decoder_layers
from frontends.host import DEFAULT_PREFILL_LEN
from frontends.quant import weight_figures
from lowering.resources import RESOURCES, U55C_DEVICE, device_scaled, kernel_usage
from lowering.slr import SlrError, kernel_wires, place, slr_hint
from lowering.timing import U55C
from streamdsl import quant
from toolchain.cli import positive_float, positive_int

NOMINAL_BYTES_PER_SECOND = 32 * 14.375e9
MEASURED_BYTES_PER_SECOND = 32 * U55C.hbm_channel_gbps * 1e9
PAPER_GPT2_MS = (4.36, 5.01)  # StreamTensor on the U55C, GPT-2 medium, W4A8, 250 MHz (the paper's Table 7)
PAPER_GPT2_TTFT_MS = (0.96, 1.08)  # its TTFT per prompt token, the same table's rows (TTFT over prompt length)
FILLS = (1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.5)  # shares of the device the exploration may give tasks and DMAs, tried in turn
SPLIT_PORTS = ("wide", "narrow")  # the split levels judge 512-bit ports, or the narrowed ones (`narrow_splits`)
HBM_PORTS = ("own", "shared")  # each split part's loads own their ports, or share them (`shared_ports`)
LOOPS = ("nested", "flat")  # the tasks' perfect loop nests as lowered, or flattened first (`flat_loops`)
ENGINES = ("off", "on")  # the parts of matvecs that run one after the other apart, or in shared engines (`engines`)
CLOCKS = (250.0, U55C.clock_mhz)  # MHz: the paper's, where the options are searched, then the timing table's
CONTEXTS = (128, 1024)  # cache lengths: the first is where the options are searched


def measure(family: str, scheme_name: str, clock: float, max_context: int, seed: int, tile: int = 64,
            fills: tuple[float, ...] = FILLS, split_ports: tuple[str, ...] = SPLIT_PORTS,
            hbm_ports: tuple[str, ...] = HBM_PORTS, loops: tuple[str, ...] = LOOPS, kv_cache: str = "f32",
            engines: tuple[str, ...] = ("off",), size: str = "paper") -> dict[str, object]:
    """The block of `family` at `size` (`paper`: the models the study is about) lowered once, then,
    for each way the split levels judge the ports (`split_ports`: at 512 bits, or narrowed:
    `explore`'s `narrow_splits`), each way the parts' loads take their ports (`hbm_ports`: their
    own, or shared: `shared_ports`), the loop nests as lowered or flattened (`loops`: `explore`'s `flat_loops`) and each exploration fill
    (largest first), a plan explored, applied to a copy, sized and timed; the fastest design that
    fits every SLR by the resource model (an SLR placement exists) is reported, shares being tried
    until one that fits is slower than the best so far under that judgement (a larger share can
    fit yet be slower once its FIFOs are sized: the prefetch limited to fit the memory), else the
    last one tried; the row holds the lowered block under `block` (`also` explores it again)."""
    from toolchain.models import model_block

    scheme = quant.scheme(scheme_name)
    start = time.perf_counter()
    block = model_block(family, size, max_context, tile, seed=seed, quant=scheme, kv_cache=kv_cache)
    lowered_s = time.perf_counter() - start
    layers = int(block.example.config["layers_in_model"])
    weights = int(weight_figures(decoder_layers(block.model)[0])[scheme.name if scheme else "float32"])
    row: dict[str, object] = {}
    fitting: list[dict[str, object]] = []
    for ports, sharing, nests, engined in [(p, h, n, e) for e in engines for n in loops for h in hbm_ports for p in split_ports]:
        best: dict[str, object] | None = None
        for fill in fills:
            row = _at_fill(block, family, tile, clock, seed, fill, ports == "narrow", sharing == "shared", nests == "flat",
                           engined == "on")
            if row["fits_slrs"]:
                if best is not None and row["cycles"] >= best["cycles"]:  # type: ignore[operator]
                    break  # a smaller share that fits is slower: stop
                best = row
        fitting += [best] if best else []
    row = min(fitting, key=lambda r: r["cycles"]) if fitting else row  # type: ignore[arg-type, return-value]
    return _figures(row, family, clock, max_context, kv_cache, layers, weights) | {"lower_s": lowered_s, "block": block}


def _figures(row: dict[str, object], family: str, clock: float, max_context: int, kv_cache: str, layers: int,
             weights: int) -> dict[str, object]:
    """`row` (`_at_fill`'s) with the decode time per token and the HBM roofline of the weights."""
    ms = layers * row["cycles"] / (clock * 1e3)  # type: ignore[operator]
    roofline = layers * weights / NOMINAL_BYTES_PER_SECOND * 1e3
    return {**row, "kv_cache": kv_cache, "family": family, "clock": clock, "max_context": max_context, "layers": layers,
            "weight_bytes": weights, "ms": ms, "roofline_ms": roofline,
            "measured_ms": layers * weights / MEASURED_BYTES_PER_SECOND * 1e3, "ratio": ms / roofline}


def also(family: str, scheme_name: str, searched: dict[str, object], clocks: tuple[float, ...], contexts: tuple[int, ...],
         prefill_len: int, seed: int, tile: int = 64, size: str = "paper") -> list[dict[str, object]]:
    """The rows of `family` beside `searched` (`measure`'s, at the first clock and cache length):
    the decode design at every clock and cache length but that one, each explored once with the
    options `searched` chose, and at each clock its `ttft_ms` per prompt token: the prefill design
    of `prefill_len` tokens at the first cache length explored the same way (1: the decode
    design's own time per token, its row under `prefill`). Each at the share `searched` chose, or,
    where that design does not fit every SLR, the next smaller of `FILLS` that does, until one
    leaves the design no smaller (its memory is over, not its compute: the last tried, marked). A
    prefill design that does not fit gives way to the decode design (`prefill_len` 1 in the row:
    the prompt a token at a time). `size`: the models' (`measure`'s)."""
    from toolchain.models import model_block

    scheme = quant.scheme(scheme_name)
    kv_cache, layers, weights = searched["kv_cache"], searched["layers"], searched["weight_bytes"]
    blocks = {(contexts[0], 1): searched["block"]}  # (cache length, tokens) -> the block, lowered once for every clock

    def explored(clock: float, max_context: int, tokens: int) -> dict[str, object]:
        key = (max_context, tokens)
        if key not in blocks:
            blocks[key] = model_block(family, size, max_context, tile, seed=seed, quant=scheme, kv_cache=kv_cache, seq_len=tokens)
        label = f"{family} {clock:g} MHz cache {max_context}" + (f" prefill {tokens}" if tokens > 1 else "")
        row: dict[str, object] | None = None
        for fill in [searched["fill"], *(f for f in FILLS if f < searched["fill"])]:  # type: ignore[operator]
            before, row = row, _at_fill(blocks[key], label, tile, clock, seed, fill, **searched["options"])  # type: ignore[arg-type]
            if row["fits_slrs"] or before is not None and row["resources"] >= before["resources"]:  # type: ignore[operator]
                break  # fits, or a smaller share leaves the design as large: its memory, not its compute, is over
        return _figures(row, family, clock, max_context, kv_cache, layers, weights)  # type: ignore[arg-type]

    rows = []
    for clock in clocks:
        decode = [searched if (clock, n) == (clocks[0], contexts[0]) else explored(clock, n, 1) for n in contexts]
        prefill = explored(clock, contexts[0], prefill_len) if prefill_len > 1 else decode[0]
        tokens = prefill_len
        if not prefill["fits_slrs"]:  # a design that does not fit serves no prompt: the prompt a token at a time instead
            prefill, tokens = decode[0], 1
        ttft = layers * prefill["cycles"] / tokens / (clock * 1e3)  # type: ignore[operator]
        rows += [{**row, "ttft_ms": ttft, "prefill_len": tokens, "prefill": prefill} for row in decode]
    return rows


def _at_fill(block, family: str, tile: int, clock: float, seed: int, fill: float,  # noqa: ANN001
             narrow_splits: bool, shared_ports: bool = False, flat_loops: bool = False, engines: bool = False) -> dict[str, object]:
    import streamdsl as sd
    from streamdsl.program import Program
    from toolchain.models import plan_design

    program = block.lowered.program
    copy = Program(program.module.clone(), program.name, program.input_names, program.params)  # the block serves every fill
    start = time.perf_counter()
    ports = ("narrow" if narrow_splits else "wide") + (", shared" if shared_ports else "") + (", flat" if flat_loops else "") \
        + (", engines" if engines else "")
    plan = plan_design(copy.module, tile, clock_mhz=clock, seed=seed, fill=fill, narrow_splits=narrow_splits,
                       shared_ports=shared_ports, flat_loops=flat_loops, engines=engines,
                       progress=lambda msg: print(f"    {family} ({ports}, fill {fill:.0%}): {msg}", flush=True))
    dse_s = time.perf_counter() - start
    loops = "flat loops" if flat_loops else "loops flattened at the end" if plan.flat_loops else "nested loops"
    design_kind = f"{'narrow' if narrow_splits else 'wide'} splits, {'shared' if shared_ports else 'own'} ports, {loops}" \
        + (f", engines ({len(plan.engines)} groups)" if plan.engines else "")
    design = sd.compile(copy)
    timed = design.timed_simulation()
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    try:
        placement = place(usage, kernel_wires(design.kernel, design.graph), hint=slr_hint(design.kernel)).slr
        slrs: list[object] = [u.share(U55C_DEVICE.per_slr) for u in usage.per_slr(placement, U55C_DEVICE.slrs)]
    except SlrError as err:
        slrs = [f"no placement: {str(err).splitlines()[0][:80]}"]
    busiest = usage.total.share(U55C_DEVICE.total)
    print(f"    {family} ({ports}, fill {fill:.0%}): {timed.makespan} cycles sized, busiest resource {busiest:.0%}, "
          f"{'fits every SLR' if all(isinstance(v, float) for v in slrs) else 'no SLR placement'}", flush=True)
    return {
        "fill": fill, "design_kind": design_kind, "plan": plan.to_json(), "cycles": timed.makespan,
        "options": {"narrow_splits": narrow_splits, "shared_ports": shared_ports, "flat_loops": flat_loops, "engines": engines},
        "unbounded": plan.figures["unbounded_makespan_cycles"],
        "dse_s": dse_s, "evaluations": plan.figures["evaluations"],
        "lanes": len(plan.lanes), "striping": plan.hbm_striping, "splits": dict(plan.splits), "deadlock": timed.deadlock,
        "resources": usage.total.share(U55C_DEVICE.total), "fits": not usage.total.over(U55C_DEVICE.total),
        "fits_slrs": all(isinstance(v, float) for v in slrs),
        "by_resource": {r: getattr(usage.total, r) / getattr(U55C_DEVICE.total, r) for r in RESOURCES}, "slrs": slrs,
        "largest": {r: usage.largest(r, 4) for r in usage.total.over(U55C_DEVICE.total)},
    }


def _over(row: dict[str, object]) -> str:
    """The table's mark of a design that does not fit: over the device's totals, or placed on no SLR split."""
    return " OVER" if not row["fits"] else "" if row["fits_slrs"] else " NO SLR PLACEMENT"


def _ttft_design(row: dict[str, object], prefill_len: int) -> str:
    """The table's account of the design a row's TTFT comes from."""
    if row["prefill_len"] > 1:  # type: ignore[operator]
        return f"prefill design of {row['prefill_len']} tokens, {row['prefill']['cycles']} cycles, fill {row['prefill']['fill']:.0%}"  # type: ignore[index]
    return "the prompt through the decode design" + (f" (the prefill design of {prefill_len} tokens fits no SLR placement)"
                                                     if prefill_len > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=hf.FAMILIES)
    parser.add_argument("--quant", default="w4a8", choices=("w4a8", "w8a8", "none"))
    parser.add_argument("--clock", type=positive_float, action="append",
                        help="kernel clock in MHz; repeat for several, the first is where the options are searched "
                             f"(default {', '.join(f'{c:g}' for c in CLOCKS)}: the paper's, then the U55C's default)")
    parser.add_argument("--max-context", type=positive_int, action="append",
                        help="cache length the decode design is compiled for; repeat for several, the first is where the "
                             f"options are searched (default {', '.join(map(str, CONTEXTS))})")
    parser.add_argument("--prefill-len", type=positive_int, default=DEFAULT_PREFILL_LEN,
                        help=f"prompt tokens per invocation of the prefill design timed for the TTFT (default {DEFAULT_PREFILL_LEN}; "
                             "1: the prompt through the decode design)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plans", metavar="DIR", help="write the reported decode design's plan of each family to DIR/FAMILY.json "
                        "(`streamdsl compile FAMILY --size paper --quant Q --max-context N --kv-cache KV --plan DIR/FAMILY.json` "
                        "builds it again), and those at the other clocks and cache lengths to DIR/FAMILY-<MHz>mhz-<N>.json")
    parser.add_argument("--fill", type=float, action="append",
                        help="share of the device the exploration gives tasks and DMAs; repeat to try several, largest first "
                             f"(default {', '.join(map(str, FILLS))}: tried until a design that fits every SLR is slower than the "
                             "best so far; the fastest that fits is reported)")
    parser.add_argument("--split-ports", action="append", choices=SPLIT_PORTS,
                        help="how the split levels judge the DMAs' ports: at 512 bits (wide) or narrowed (narrow, `explore`'s "
                             "narrow_splits); repeat to try both (the default), the fastest design that fits is reported")
    parser.add_argument("--hbm-ports", action="append", choices=HBM_PORTS,
                        help="whether the split parts' loads own their HBM ports or share them with the parts that run before "
                             "and after (share-hbm-ports); repeat to try both (the default), the fastest design that fits is reported")
    parser.add_argument("--kv-cache", choices=tuple(KV_DTYPES), default="f32",
                        help="what the KV cache is held in (default f32; f16: the attention streams half the bits)")
    parser.add_argument("--loops", action="append", choices=LOOPS,
                        help="the tasks' perfect loop nests as lowered (nested) or flattened first (flat, flatten-loop-nests); "
                             "repeat to try both (the default), the fastest design that fits is reported")
    parser.add_argument("--engines", action="append", choices=ENGINES,
                        help="the parts of matvecs that run one after the other apart (off, the default) or in shared "
                             "engines (on, form-engines); repeat to try both, the fastest design that fits is reported")
    parser.add_argument("--device-scale", type=positive_float, default=1.0, metavar="K",
                        help="a what-if: explore, size and place on a device of K times the U55C's resources (default 1: "
                             "the U55C); tells a budget-bound design from a structure-bound one")
    args = parser.parse_args()
    families = args.family or ["gpt2", "llama", "qwen2", "gemma"]
    clocks, contexts = tuple(args.clock or CLOCKS), tuple(args.max_context or CONTEXTS)
    rows = []
    with device_scaled(args.device_scale):
        for family in families:
            print(f"  {family}: lowering the paper block, exploring, sizing", flush=True)
            searched = measure(family, args.quant, clocks[0], contexts[0], args.seed,
                               fills=tuple(sorted(args.fill, reverse=True)) if args.fill else FILLS,
                               split_ports=tuple(args.split_ports or SPLIT_PORTS), hbm_ports=tuple(args.hbm_ports or HBM_PORTS),
                               loops=tuple(args.loops or LOOPS), kv_cache=args.kv_cache, engines=tuple(args.engines or ("off",)))
            rows += also(family, args.quant, searched, clocks, contexts, args.prefill_len, args.seed)
    device = "" if args.device_scale == 1 else (f"; WHAT-IF: a device of {args.device_scale:g} x the U55C's resources "
                                                "(resources below: shares of it)")
    print(f"\n{args.quant}; options searched at {clocks[0]:g} MHz, cache length {contexts[0]}; TTFT per prompt token through the "
          f"prefill design of {args.prefill_len} tokens at cache length {contexts[0]}; roofline = weight bytes x layers at 460 GB/s "
          f"(measured: at Shuhai's 425 GB/s){device}")
    print(f"{'model':<7} {'MHz':>4} {'cache':>5} {'weights/layer':>13} {'cycles':>9} {'ms/token':>9} {'tok/s':>7} {'TTFT/tok':>8} "
          f"{'roofline':>9} {'measured':>9} {'ratio':>6} {'DSE s':>6} {'sims':>5} {'resources':>9}")
    for r in rows:
        print(f"{r['family']:<7} {r['clock']:>4g} {r['max_context']:>5} {r['weight_bytes'] / 2**20:>9.2f} MiB {r['cycles']:>9} "
              f"{r['ms']:>9.3f} {1e3 / r['ms']:>7.1f} {r['ttft_ms']:>8.3f} {r['roofline_ms']:>9.3f} {r['measured_ms']:>9.3f} "
              f"{r['ratio']:>5.1f}x {r['dse_s']:>6.1f} {r['evaluations']:>5} {r['resources']:>8.0%}{_over(r)} "
              f"fill {r['fill']:.0%}, {r['design_kind']}, KV {r['kv_cache']}; TTFT: {_ttft_design(r, args.prefill_len)}")
    for r in rows:
        print(f"{r['family']} {r['clock']:g} MHz cache {r['max_context']}: splits {r['splits'] or 'none'}; "
              f"sized FIFOs {'deadlock' if r['deadlock'] else 'deadlock-free'}; "
              "device use " + ", ".join(f"{k} {v:.0%}" for k, v in r["by_resource"].items()) + "; busiest resource per SLR "
              + ", ".join(f"{v:.0%}" if isinstance(v, float) else v for v in r["slrs"]))
        for resource, users in r["largest"].items():
            print(f"  {r['family']} {resource} over the device; largest: " + ", ".join(f"{n} {v:.0f}" for n, v in users))
    if "gpt2" in families:
        print(f"paper (board, GPT-2 medium W4A8 250 MHz): {PAPER_GPT2_MS[0]}-{PAPER_GPT2_MS[1]} ms/token, TTFT "
              f"{PAPER_GPT2_TTFT_MS[0]}-{PAPER_GPT2_TTFT_MS[1]} ms per prompt token")
    if args.plans:
        Path(args.plans).mkdir(parents=True, exist_ok=True)
        for r in rows:
            first = (r["clock"], r["max_context"]) == (clocks[0], contexts[0])
            path = Path(args.plans) / (f"{r['family']}.json" if first else f"{r['family']}-{r['clock']:g}mhz-{r['max_context']}.json")
            path.write_text(json.dumps(r["plan"], indent=1) + "\n")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
