"""One decoder layer of a Hugging Face model as a decode step at a fixed cache length (test helper).

`LayerStep(model, index, past_len)` takes `hidden` (1, 1, H), `past_key`, `past_value`
(1, kv_heads, past_len, head_dim) and returns the layer's new hidden state and its keys and values
(past and new concatenated). Every cached row is visible (a full cache of `past_len` tokens), so
no mask is needed; positions are fixed, so RoPE tables fold into constants.
"""

from __future__ import annotations

import inspect

import torch
import transformers

from frontends import hf


class LayerStep(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, index: int, past_len: int):
        super().__init__()
        layers = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == model.config.num_hidden_layers][0]
        self.layer, self.index, self.past_len = layers[index], index, past_len
        self.rotary = getattr(model.base_model, "rotary_emb", None)

    def forward(self, hidden, past_key, past_value):
        cache = transformers.DynamicCache()
        for i in range(self.index + 1):
            cache.update(past_key, past_value, i)
        positions = torch.tensor([[self.past_len]])
        kwargs = {"position_ids": positions, "use_cache": True, "attention_mask": None}
        params = inspect.signature(self.layer.forward).parameters
        kwargs[next(k for k in ("cache", "past_key_values", "past_key_value", "layer_past") if k in params)] = cache
        if self.rotary is not None:
            kwargs["position_embeddings"] = self.rotary(hidden, positions)
        out = self.layer(hidden, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        layer = cache.layers[self.index]
        return out, layer.keys, layer.values


def layer_step(family: str, past_len: int, seed: int = 0):
    """(module, example inputs) of layer 0 of `family` at size tiny."""
    model = hf.build(family, "tiny", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    (kv,) = hf.kv_shapes(model, past_len)[:1]
    hidden = torch.randn(1, 1, model.config.hidden_size, generator=gen)
    return LayerStep(model, 0, past_len).eval(), (hidden, torch.randn(kv, generator=gen), torch.randn(kv, generator=gen))
