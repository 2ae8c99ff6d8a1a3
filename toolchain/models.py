"""Hugging Face decoder blocks as programs for the main job: `streamdsl compile gpt2 --size tiny`.

One decoder layer of a zoo model (random weights) runs a decode step after a full cache of
`max_context` tokens, so the design is stated at that cache length (every cached row visible: no
mask; positions fixed, so RoPE tables fold into constants). It is imported with
`frontends.from_torch`, lowered with `lowering.pipeline.lower` and handed to the driver as an
`Example` whose reference is the layer in PyTorch eager.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transformers

from frontends import from_torch, hf
from lowering.pipeline import Lowered, lower
from toolchain.examples import Example

__all__ = ["DesignRunner", "LayerStep", "ModelBlock", "model_block"]


class LayerStep(torch.nn.Module):
    """Decoder layer `index` of `model` on one new token after `past_len` cached ones: `hidden`
    (1, 1, H), `past_key`, `past_value` (1, kv_heads, past_len, head_dim) in; the new hidden state
    and the keys and values (past and new concatenated) out."""

    def __init__(self, model: torch.nn.Module, index: int, past_len: int):
        super().__init__()
        count = model.config.num_hidden_layers
        layers = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count)
        self.layer, self.index, self.past_len = layers[index], index, past_len
        self.rotary = getattr(model.base_model, "rotary_emb", None)
        types = getattr(model.config, "layer_types", None)
        self.layer_type = types[index] if types and self.rotary is not None and \
            "layer_type" in inspect.signature(self.rotary.forward).parameters else None
        params = inspect.signature(self.layer.forward).parameters
        self.cache_kwarg = next(k for k in ("cache", "past_key_values", "past_key_value", "layer_past") if k in params)

    def forward(self, hidden, past_key=None, past_value=None):
        cache = transformers.DynamicCache()  # empty for the first token (past_len 0: no past inputs)
        for i in range(self.index + 1 if past_key is not None else 0):
            cache.update(past_key, past_value, i)
        positions = torch.tensor([[self.past_len]])
        kwargs = {"position_ids": positions, "use_cache": True, "attention_mask": None, self.cache_kwarg: cache}
        if self.rotary is not None:
            extra = (self.layer_type,) if self.layer_type else ()
            kwargs["position_embeddings"] = self.rotary(hidden, positions, *extra)
        out = self.layer(hidden, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        layer = cache.layers[self.index]
        return out, layer.keys, layer.values


@dataclass
class ModelBlock:
    example: Example
    lowered: Lowered
    module: torch.nn.Module
    seconds: dict[str, float]


def model_block(family: str, size: str, max_context: int, tile: int, seed: int = 0) -> ModelBlock:
    """Build, import and lower layer 0 of a zoo model at cache length `max_context`."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    layers = 2 if family == "gemma" else 1  # Gemma 3's config needs its local + global pair
    model = hf.build(family, size, num_layers=layers, seed=seed)
    module = LayerStep(model, 0, max_context).eval()
    kv = hf.kv_shapes(model, max_context)[0]
    hidden = model.config.hidden_size
    seconds["build"] = round(time.perf_counter() - start, 4)

    def make_inputs(s: int) -> list[np.ndarray]:
        rng = np.random.default_rng(s)
        return [rng.standard_normal(shape).astype(np.float32) for shape in ((1, 1, hidden), kv, kv)]

    def reference(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.no_grad():
            return tuple(t.numpy() for t in module(*[torch.from_numpy(a) for a in arrays]))

    start = time.perf_counter()
    imported = from_torch(module, *[torch.from_numpy(a) for a in make_inputs(seed)])
    seconds["import"] = round(time.perf_counter() - start, 4)
    lowered = lower(imported, default_tile=tile)
    seconds.update(lowered.seconds)
    cfg = model.config
    config = {"hidden": cfg.hidden_size, "layers_in_model": hf.config(family, size)[1].num_hidden_layers,
              "heads": cfg.num_attention_heads, "kv_heads": kv[1], "head_dim": kv[3], "max_context": max_context,
              "tile": tile}
    example = Example(f"{family}-{size}-block", config, lowered.program, make_inputs, reference)
    return ModelBlock(example, lowered, module, seconds)


class DesignRunner:
    """A block runner for `frontends.host.Generator`: each invocation runs, in the functional
    simulator, the compiled design of layer `layer`'s decode step at the invocation's cache length
    (designs are compiled once per cache length and shared by the layers, whose weights are bound
    per call). Stands in for the run-time cache length until the block's `cache_len` scalar is
    lowered: one design per length instead of one for all."""

    def __init__(self, model: torch.nn.Module, tile: int = 64):
        self.model, self.tile = model, tile
        self.designs: dict[int, Any] = {}

    def design(self, cache_len: int):
        if cache_len not in self.designs:
            import streamdsl as sd

            module = LayerStep(self.model, 0, cache_len).eval()
            hidden = torch.zeros(1, 1, self.model.config.hidden_size)
            kv = torch.zeros(hf.kv_shapes(self.model, cache_len)[0])
            past = (kv, kv.clone()) if cache_len else ()
            lowered = lower(from_torch(module, hidden, *past), default_tile=self.tile)
            self.designs[cache_len] = sd.compile(lowered.program)
        return self.designs[cache_len]

    def __call__(self, block: Any, layer: int, inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        from streamdsl.sim.functional import simulate

        named = dict(zip((s.name for s in block.program.inputs), inputs))
        length = int(named["cache_len"])
        if int(named["position"]) != length or named["hidden"].shape[1] != 1:
            raise ValueError("DesignRunner runs decode steps (one token at position cache_len); use prefill_len=1")
        design = self.design(length)
        own = dict(LayerStep(self.model, layer, length).named_parameters())
        params = {name: own[name].detach().numpy() if name in own else value for name, value in design.program.params.items()}
        program = dataclasses.replace(design.program, module=design.module, params=params)
        keys, values = named["past_key"][:, :, :length], named["past_value"][:, :, :length]
        past = (keys, values) if length else ()
        hidden, new_keys, new_values = simulate(program, named["hidden"], *past)
        return hidden, new_keys[:, :, length:], new_values[:, :, length:]
