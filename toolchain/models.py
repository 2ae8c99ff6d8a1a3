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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

from frontends import hf
from frontends.block import Block, DecoderBlock, import_block
from lowering.pipeline import Lowered, lower
from toolchain.examples import Example

__all__ = ["DesignRunner", "ModelBlock", "lower_block", "model_block"]


@dataclass
class ModelBlock:
    example: Example
    lowered: Lowered
    block: Block
    module: torch.nn.Module  # the decoder block in PyTorch (layer 0), the reference
    seconds: dict[str, float]
    model: torch.nn.Module | None = None  # the built model (its embedding and head are the host part)


def lower_block(block: Block, tile: int = 64) -> Lowered:
    """The one design of `block` (its run-time scalars at most `block.scalar_max`)."""
    return lower(block.program, default_tile=tile, scalar_max=block.scalar_max)


def _program_inputs(block: Block, program: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The block's invocation inputs (`block.inputs(...)`) in the lowered program's order (rank-0
    inputs the design does not read are dropped)."""
    named = dict(zip((s.name for s in block.program.inputs), inputs))
    return [named[name] for name in program.input_names]


def model_block(family: str, size: str, max_context: int, tile: int, seed: int = 0,
                model_dir: str | None = None) -> ModelBlock:
    """Build, import and lower the decode block of a zoo model (layer 0's weights), or of the
    checkpoint in `model_dir` (`hf.from_dir`: its errors name the file); the design is verified at
    the cache length `max_context` (its worst case, the one FIFOs are sized for)."""
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
    seconds["build"] = round(time.perf_counter() - start, 4)
    start = time.perf_counter()
    block = import_block(model, seq_len=1, max_context=max_context)
    seconds["import"] = round(time.perf_counter() - start, 4)
    lowered = lower_block(block, tile)
    seconds.update(lowered.seconds)
    module = DecoderBlock(model, 0, 1, max_context, block.windowed).eval()
    names = [s.name for s in block.program.inputs]

    def make_inputs(s: int) -> list[np.ndarray]:
        rng = np.random.default_rng(s)
        kv = block.program.inputs[1].shape
        hidden = rng.standard_normal((1, 1, model.config.hidden_size)).astype(np.float32)
        keys, values = (rng.standard_normal(kv).astype(np.float32) for _ in range(2))
        inputs = block.inputs(0, hidden, keys, values, position=max_context, cache_len=max_context)
        return _program_inputs(block, lowered.program, inputs)

    def reference(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        given = dict(zip(lowered.program.input_names, arrays))
        given.setdefault("position", given["cache_len"])  # a position the design does not read (GPT-2's)
        with torch.no_grad():
            return tuple(t.numpy() for t in module(*[torch.as_tensor(np.asarray(given[n])) for n in names]))

    cfg = model.config
    kv = block.program.inputs[1].shape
    config = {"hidden": cfg.hidden_size, "layers_in_model": total,
              "heads": cfg.num_attention_heads, "kv_heads": kv[1], "head_dim": kv[3], "max_context": max_context,
              "tile": tile}
    example = Example(f"{family}-{size}-block", config, lowered.program, make_inputs, reference)
    return ModelBlock(example, lowered, block, module, seconds, model)


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
