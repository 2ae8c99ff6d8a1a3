"""Hugging Face decoder blocks as programs for the main job (`streamdsl compile gpt2 --size tiny`)
and for generation (`streamdsl generate gpt2 --runner design`).

The block is `frontends.block.import_block`'s: decoder layer 0 over one new token (the decode
design) or a chunk of prompt tokens (the prefill design), its KV cache at `max_context` rows, and
`position`, `cache_len` (and `window`) as run-time scalars. Lowered with
`lowering.pipeline.lower`, ONE design serves every cache length up to `max_context` and every
layer (each invocation binds that layer's weights by name).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from xdsl.dialects.builtin import ModuleOp

from frontends import hf
from frontends.block import KV_DTYPES, Block, DecoderBlock, import_block
from frontends.errors import ModelError
from frontends.quant import fake_quantize, quantize_model, weight_bytes
from lowering.dse import Plan, explore
from lowering.pipeline import Lowered, lower
from lowering.timing import U55C
from streamdsl.dialects.dataflow import kernel_of
from streamdsl.quant import Scheme
from toolchain.estimate import model_estimate
from toolchain.examples import Example

__all__ = ["DesignRunner", "ModelBlock", "Replacement", "load_replacement", "lower_block", "model_block", "plan_design",
           "planned_block", "quantization_figures", "run_block"]


@dataclass
class ModelBlock:
    example: Example
    lowered: Lowered
    block: Block
    module: torch.nn.Module  # the decoder block in PyTorch (layer 0), the reference (fake-quantized with a scheme)
    seconds: dict[str, float]
    model: torch.nn.Module | None = None  # the built float32 model (its embedding and head are the host part)


def lower_block(block: Block, tile: int = 64) -> Lowered:
    """The one design of `block` (its run-time scalars at most `block.scalar_max`)."""
    return lower(block.program, default_tile=tile, scalar_max=block.scalar_max)


def _program_inputs(block: Block, program: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The block's invocation inputs (`block.inputs(...)`) in the lowered program's order (rank-0
    inputs the design does not read are dropped)."""
    named = dict(zip((s.name for s in block.program.inputs), inputs))
    return [named[name] for name in program.input_names]


def model_block(family: str, size: str, max_context: int, tile: int, seed: int = 0,
                model_dir: str | None = None, quant: Scheme | None = None,
                replacement: Replacement | None = None, kv_cache: str = "f32", seq_len: int = 1) -> ModelBlock:
    """Build, import and lower the block of `seq_len` new tokens (1: the decode block; more: the
    prefill design's chunk of prompt tokens) of a zoo model (layer 0's weights), or of the
    checkpoint in `model_dir` (`hf.from_dir`: its errors name the file); the design is verified at
    the cache length `max_context` (its worst case, the one FIFOs are sized for). With a
    quantization scheme the block is imported from the quantized model (its linear layers in
    integer form, `frontends.quant.quantize_model`) and the reference is the fake-quantized block.
    With a `replacement` (`load_replacement`), the block is imported with its torch functions
    replaced (say every attention by a DSL kernel) and the reference is the model's own layer.
    `kv_cache` names what the KV cache is held in (`frontends.block.KV_DTYPES`: f32, or f16)."""
    if kv_cache not in KV_DTYPES:
        raise ModelError(f"unsupported KV cache dtype {kv_cache!r}: choose one of {', '.join(KV_DTYPES)}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    if model_dir is not None:
        model = hf.from_dir(model_dir, num_layers=1)  # the block is layer 0: only its weights are loaded
        total = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True).num_hidden_layers
        family, size = model.config.model_type, Path(model_dir).name
    else:
        layers = 2 if family == "gemma" else 1  # Gemma 3's config needs its local + global pair
        model = hf.build(family, size, num_layers=layers, seed=seed)
        total = hf.config(family, size)[1].num_hidden_layers
    if replacement is not None:
        model = replacement.prepare(model)
    seconds["build_model"] = round(time.perf_counter() - start, 4)
    start = time.perf_counter()
    block = import_block(quantize_model(model, quant), seq_len=seq_len, max_context=max_context,
                         replace=None if replacement is None else replacement.replace, kv_dtype=KV_DTYPES[kv_cache])
    seconds["import"] = round(time.perf_counter() - start, 4)
    lowered = lower_block(block, tile)
    seconds.update(lowered.seconds)
    module = DecoderBlock(fake_quantize(model, quant), 0, seq_len, max_context, block.windowed, block.kv_dtype).eval()

    def make_inputs(s: int) -> list[np.ndarray]:
        rng = np.random.default_rng(s)
        kv = block.program.inputs[1].shape
        hidden = rng.standard_normal((1, seq_len, model.config.hidden_size)).astype(np.float32)
        keys, values = (rng.standard_normal(kv).astype(block.cache_dtype) for _ in range(2))
        inputs = block.inputs(0, hidden, keys, values, position=max_context, cache_len=max_context)
        return _program_inputs(block, lowered.program, inputs)

    def reference(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        return run_block(module, block, lowered.program.input_names, arrays)

    cfg = model.config
    kv = block.program.inputs[1].shape
    config = {"hidden": cfg.hidden_size, "layers_in_model": total,
              "heads": cfg.num_attention_heads, "kv_heads": kv[1], "head_dim": kv[3], "max_context": max_context,
              "seq_len": seq_len, "tile": tile, "quant": "none" if quant is None else quant.name, "kv_cache": kv_cache}
    if quant is not None:
        config["quant_group"] = quant.group  # None: one group per output channel (w8a8)
    if replacement is not None:
        config["replace"] = replacement.name
    example = Example(f"{family}-{size}-block", config, lowered.program, make_inputs, reference)
    return ModelBlock(example, lowered, block, module, seconds, model)


def plan_design(module: ModuleOp, tile: int, plan: Plan | None = None, clock_mhz: float = U55C.clock_mhz, seed: int = 0,
                fill: float = 0.8, progress: Callable[[str], None] | None = None, narrow_splits: bool = False,
                shared_ports: bool = False, flat_loops: bool = False, engines: bool = False) -> Plan:
    """Write a design plan onto the kernel of a lowered block's `module` (before FIFO sizing):
    `plan`, or without one the plan `lowering.dse.explore` finds at `tile` and `clock_mhz` (tasks
    within `fill` of the device, the splits judged with narrowed ports when `narrow_splits`, the
    parts loading through shared ports when `shared_ports`, the loop nests flattened first when
    `flat_loops`, the parts of matvecs that run one after the other in shared engines when `engines`),
    exploring a copy so that `module` gets exactly what the plan says, as `--plan FILE` would
    build it. The one explore-then-apply path of `streamdsl compile --dse`/`--plan`,
    `planned_block` and benchmarks/roofline.py; returns the plan."""
    if plan is None:
        plan = explore(lambda _: module.clone(), (tile,), clock_mhz, seed, fill=fill, progress=progress, narrow_splits=narrow_splits,
                       shared_ports=shared_ports, flat_loops=flat_loops, engines=engines)
    plan.apply(kernel_of(module))
    return plan


def planned_block(family: str, size: str, max_context: int, quant: Scheme | None, plan: Plan | None = None,
                  clock_mhz: float = 250.0, seed: int = 0, fill: float = 0.8, narrow_splits: bool = False,
                  shared_ports: bool = False, flat_loops: bool = False, kv_cache: str = "f32",
                  engines: bool = False) -> tuple[ModelBlock, Plan]:
    """The decode block of `model_block` (its KV cache held in `kv_cache`) with a design plan
    applied (`plan_design`): `plan`, as `streamdsl compile --plan FILE` builds it, or, without one,
    the plan `--dse --clock clock_mhz` explores; returns the block and the plan."""
    tile = 64 if plan is None else plan.tile
    block = model_block(family, size, max_context, tile, seed=seed, quant=quant, kv_cache=kv_cache)
    return block, plan_design(block.lowered.program.module, tile, plan, clock_mhz, seed, fill, narrow_splits=narrow_splits,
                              shared_ports=shared_ports, flat_loops=flat_loops, engines=engines)


@dataclass
class Replacement:
    """Torch functions an imported block computes with others (`from_torch`'s `replace`), from a
    Python file (`streamdsl compile gpt2 --replace FILE`): its `REPLACE` mapping, and its
    `prepare_model(model)` (optional) that readies a built model for it (its attention, say)."""

    name: str
    replace: dict[Any, Any]
    prepare: Callable[[torch.nn.Module], torch.nn.Module] = lambda model: model  # noqa: E731


def load_replacement(path: str | Path) -> Replacement:
    """The `Replacement` a Python file defines (it is run, as `python FILE` would import it)."""
    import runpy

    from streamdsl.errors import UsageError

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--replace {path}: no such file; give a Python file that defines REPLACE = {{torch function: "
                         "function}} (tutorials/07_kernel_in_a_model.py does)")
    names = runpy.run_path(str(path))
    replace, prepare = names.get("REPLACE"), names.get("prepare_model", lambda model: model)
    if not isinstance(replace, dict) or not replace or not all(callable(k) and callable(v) for k, v in replace.items()):
        raise UsageError(f"--replace {path}: the file must define REPLACE, a non-empty dict from torch functions to the "
                         f"functions that compute them (F.scaled_dot_product_attention: my_attention), got {replace!r}")
    if not callable(prepare):
        raise UsageError(f"--replace {path}: prepare_model must be a function of the built model, got {prepare!r}")
    return Replacement(path.name, replace, prepare)


def run_block(module: torch.nn.Module, block: Block, names: Sequence[str], arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """A decoder block in PyTorch on a design's inputs (`arrays`, named `names`)."""
    given = dict(zip(names, arrays))
    given.setdefault("position", given["cache_len"])  # a position the design does not read (GPT-2's)
    with torch.no_grad():
        return tuple(t.numpy() for t in module(*[torch.as_tensor(np.asarray(given[s.name])) for s in block.program.inputs]))


def quantization_figures(mb: ModelBlock, scheme: Scheme) -> dict[str, object]:
    """report.json's `model_figures.quantization` for a block compiled at `scheme`: the scheme,
    the layer's weight bytes, how far the fake-quantized block (the reference) is from the float
    block on the example's inputs, and the float32 block lowered, sized and timed at the same
    maximum context, tile and KV cache (the modeled latency without quantization)."""
    import streamdsl as sd

    max_context = mb.example.config["max_context"]
    float_module = DecoderBlock(mb.model, 0, 1, max_context, mb.block.windowed, mb.block.kv_dtype).eval()
    layer = float_module.layer
    inputs = mb.example.make_inputs(0)
    floats = run_block(float_module, mb.block, mb.lowered.program.input_names, inputs)
    quantized = mb.example.reference(*inputs)
    errors = [float(np.abs(q - f).max() / max(float(np.abs(f).max()), 1e-30)) for q, f in zip(quantized, floats, strict=True)]
    float_block = import_block(mb.model, seq_len=1, max_context=max_context, kv_dtype=mb.block.kv_dtype)  # type: ignore[arg-type]
    cycles = sd.compile(lower_block(float_block, mb.example.config["tile"]).program).timed_simulation().makespan
    return {
        "scheme": scheme.name,
        "group": scheme.group,
        "weight_bits": scheme.weight_bits,
        "weight_bytes_per_layer": {"float32": sum(weight_bytes(layer, None).values()),
                                   scheme.name: sum(weight_bytes(layer, scheme).values())},
        "reference_vs_float_max_rel": {"hidden": errors[0], "keys": errors[1], "values": errors[2]},
        "float32_cycles_per_block_invocation": cycles,
        "float32_device_ms_per_token": model_estimate(cycles, mb.example.config["layers_in_model"], [], 0.0)["device_ms_per_token"],
    }


class DesignRunner:
    """A block runner for `frontends.host.Generator`: each invocation runs, in the functional
    simulator, the ONE compiled design of its block (decode or prefill; lowered and compiled on
    first use) with that layer's weights bound by name and the position and cache length as
    run-time scalars."""

    def __init__(self, tile: int = 64):
        self.tile = tile
        self.designs: dict[int, tuple[Block, Any]] = {}  # id(block) -> (the block, kept alive; its compiled design)

    def design(self, block: Block):
        if id(block) not in self.designs:
            import streamdsl as sd

            self.designs[id(block)] = (block, sd.compile(lower_block(block, self.tile).program))
        return self.designs[id(block)][1]

    def __call__(self, block: Block, layer: int, inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        from streamdsl.sim.functional import simulate

        design = self.design(block)
        own = block.layer_params[layer]
        params = {name: own[name] if block.program.param_kinds[name] == "parameter" else value
                  for name, value in design.program.params.items()}
        program = dataclasses.replace(design.program, module=design.module, params=params)
        return simulate(program, *_program_inputs(block, program, inputs))
