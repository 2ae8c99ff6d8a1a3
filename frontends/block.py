"""One decoder layer of a Hugging Face causal LM as the unit of compilation.

As in the StreamTensor paper, one transformer-block design serves the whole model: it is invoked
once per layer with that layer's weights and KV cache, and once per step with the position and
the cache length as run-time inputs, so the same design serves every step up to `max_context`.

`import_block(model, seq_len=1, max_context=1024)` imports the block of `seq_len` new tokens
(1: a decode step; more: a chunk of a prompt streamed together, the prefill design):

- runtime inputs, in this order: `hidden` (1, S, H) f32; `past_key`, `past_value`
  (1, kv_heads, max_context, head_dim), the layer's cache laid out at the maximum context, in the
  cache's dtype (`kv_dtype`: float32, or float16 to halve the bits the attention streams);
  `position` (i32, rank 0), the position of the first new token; `cache_len` (i32, rank 0), how
  many cache rows hold tokens (they are the `cache_len` tokens just before the new ones); and,
  only for models with sliding-window layers, `window` (i32, rank 0; the host passes the layer's
  window, or `max_context + S` for a global layer);
- params: the layer's weights, named `layer.<name in the decoder layer>`, and the rotary
  embedding's inverse frequencies `rope.<...>` (per layer data: Gemma 3's local and global layers
  differ only there and in the window), then folded constants;
- outputs: the new hidden state (1, S, H) and the new key and value rows (1, kv_heads, S,
  head_dim) in the cache's dtype; the host writes them into the cache at rows `cache_len ..`.
  With a float16 cache the new rows are rounded to it as they are stored, so the attention of
  every token, this one's included, reads keys and values as the cache holds them.

Masking: the keys are the cache's `max_context` rows followed by the S new ones, and an additive
mask (0 or the dtype's minimum) computed in the program from `cache_len` (and `window`) against
an iota of the key slots lets query `t` see cache row `j` iff `j < cache_len` and new token `u`
iff `u <= t`, both within the window. The design therefore has static shapes and is correct for
every cache length 1..max_context; a run-time loop bound over the cache would skip the masked
rows' work, but torch.export cannot express a tensor whose extent is a run-time value, so that
is for the lowering to derive from the mask (the rows masked out are exactly `j >= cache_len`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import transformers

from frontends.errors import ModelError
from frontends.program import ImportedProgram

DEFAULT_MAX_CONTEXT = 1024
# Rank-0 run-time scalars of the block: the i32 of the DSL's run-time scalars.
SCALAR_DTYPE = torch.int32
KV_DTYPES = {"f32": torch.float32, "f16": torch.float16}  # what a KV cache can be held in, by name
_CACHE_KWARGS = ("cache", "layer_past", "past_key_values", "past_key_value")


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's list of decoder layers: the ModuleList of `num_hidden_layers` entries."""
    count = model.config.num_hidden_layers
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count]
    if not lists:
        raise ModelError(f"{type(model).__name__}: no list of {count} decoder layers found; a block import needs "
                         "a decoder-only model whose layers form one torch.nn.ModuleList")
    return lists[0]


def layer_types(model: torch.nn.Module) -> list[str]:
    """Each layer's attention type ('full_attention' or 'sliding_attention')."""
    cfg = model.config
    types = getattr(cfg, "layer_types", None)
    if types:
        return list(types[: cfg.num_hidden_layers])
    window = getattr(cfg, "sliding_window", None)
    return ["sliding_attention" if window else "full_attention"] * cfg.num_hidden_layers


def layer_window(model: torch.nn.Module, index: int) -> int | None:
    """Tokens a query of layer `index` sees (itself included), None for unlimited."""
    if layer_types(model)[index] != "sliding_attention":
        return None
    window = getattr(model.config, "sliding_window", None)
    return int(window) if window else None


def attention_mask(cache_len: torch.Tensor, window: torch.Tensor | None, seq_len: int, max_context: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """(1, 1, S, max_context + S) additive mask of S queries over the cache rows then the new
    tokens: cache row j holds the token `cache_len - j` before the first new one."""
    slot = torch.arange(max_context + seq_len)
    query = torch.arange(seq_len).unsqueeze(1)
    is_new = slot >= max_context
    # How far back from query t each key is: cache row j is t + cache_len - j back, new token u t - u.
    back = torch.where(is_new, query - (slot - max_context), query + cache_len - slot)
    allowed = (back >= 0) & (is_new | (slot < cache_len))
    if window is not None:
        allowed = allowed & (back < window)
    zero = torch.zeros((), dtype=dtype)
    return torch.where(allowed, zero, torch.finfo(dtype).min).reshape(1, 1, seq_len, max_context + seq_len)


class _LayerRope(torch.nn.Module):
    """The model's rotary embedding with its inverse frequencies as parameters: they are
    per-layer data (Gemma 3's local and global layers use different bases), so that one block
    design serves every layer. `layer_type` is passed when the embedding is typed."""

    def __init__(self, rotary: torch.nn.Module, layer_type: str | None):
        super().__init__()
        rope = copy.copy(rotary)
        rope._parameters, rope._buffers = dict(rope._parameters), dict(rope._buffers)
        rope._non_persistent_buffers_set = set(rope._non_persistent_buffers_set)
        name = f"{layer_type}_inv_freq" if layer_type else "inv_freq"
        if name in rope._buffers:
            rope._parameters[name] = torch.nn.Parameter(rope._buffers.pop(name), requires_grad=False)
            rope._non_persistent_buffers_set.discard(name)
        self.rotary = rope
        self.layer_type = layer_type

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor):
        if self.layer_type is None:
            return self.rotary(x, position_ids)
        return self.rotary(x, position_ids, self.layer_type)


def _rotary(model: torch.nn.Module) -> torch.nn.Module | None:
    return getattr(model.base_model, "rotary_emb", None)


def _typed(rotary: torch.nn.Module) -> bool:
    return "layer_type" in inspect.signature(rotary.forward).parameters


_RUNNING: list[dict[str, torch.Tensor | None]] = []  # the run-time scalars of the blocks running


def runtime_scalars() -> dict[str, torch.Tensor | None]:
    """While a `DecoderBlock` runs its layer (also while `import_block` exports it), its run-time
    scalar inputs by name (`position`, `cache_len`, `window`: rank-0 tensors, window None when the
    block has none): what a `replace` substitute inside the layer (say an attention computed by a
    DSL kernel over the valid cache rows, tutorials/07_kernel_in_a_model.py) may need."""
    if not _RUNNING:
        raise ModelError("runtime_scalars() is only defined while a decoder block (frontends.block) runs its layer")
    return _RUNNING[-1]


class _StoredCache(transformers.DynamicCache):
    """A `DynamicCache` whose rows are held in `dtype`: new keys and values are rounded to it as
    they are stored, and the layer reads the whole cache back in its own dtype, `compute`."""

    def __init__(self, dtype: torch.dtype, compute: torch.dtype):
        super().__init__()
        self.dtype, self.compute = dtype, compute

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        keys, values = super().update(key_states.to(self.dtype), value_states.to(self.dtype), layer_idx, *args, **kwargs)
        return keys.to(self.compute), values.to(self.compute)


class DecoderBlock(torch.nn.Module):
    """Decoder layer `index` of `model` over `seq_len` new tokens after a cache of `max_context`
    rows held in `kv_dtype` (see the module docstring for its inputs and outputs)."""

    def __init__(self, model: torch.nn.Module, index: int, seq_len: int, max_context: int, windowed: bool,
                 kv_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.kv_dtype = kv_dtype
        self.layer = decoder_layers(model)[index]
        self.seq_len, self.max_context, self.windowed = seq_len, max_context, windowed
        rotary = _rotary(model)
        self.rope = None if rotary is None else _LayerRope(rotary, layer_types(model)[index] if _typed(rotary) else None)
        params = inspect.signature(self.layer.forward).parameters
        self.cache_kwarg = next((k for k in _CACHE_KWARGS if k in params), None)
        if self.cache_kwarg is None:
            raise ModelError(f"{type(self.layer).__name__}.forward takes no KV cache argument (one of "
                             f"{', '.join(_CACHE_KWARGS)}); the block import needs it to read and extend the cache")
        if getattr(model.config, "alibi", False):
            raise ModelError(f"{type(model).__name__} with alibi=True: ALiBi position biases are not supported by the "
                             "block import; build the model with rotary positions (alibi=False)")
        self.extra = {"alibi": None} if "alibi" in params else {}  # Falcon's layers take it (None: rotary)
        self.layer_idx = index
        self.input_names = ["hidden", "past_key", "past_value", "position", "cache_len"] + (["window"] * windowed)

    def forward(self, hidden, past_key, past_value, position, cache_len, window=None):
        positions = (position + torch.arange(self.seq_len, dtype=position.dtype)).reshape(1, self.seq_len)
        cache = _StoredCache(self.kv_dtype, hidden.dtype)
        for i in range(self.layer_idx + 1):  # the layer writes its own slot of the cache
            cache.update(past_key, past_value, i)
        kwargs = {**self.extra, self.cache_kwarg: cache, "use_cache": True, "position_ids": positions,
                  "attention_mask": attention_mask(cache_len, window, self.seq_len, self.max_context, hidden.dtype)}
        if self.rope is not None:
            kwargs["position_embeddings"] = self.rope(hidden, positions)
        _RUNNING.append({"position": position, "cache_len": cache_len, "window": window})
        try:
            out = self.layer(hidden, **kwargs)
        finally:
            _RUNNING.pop()
        out = out[0] if isinstance(out, tuple) else out
        layer = cache.layers[self.layer_idx]
        return out, layer.keys[:, :, self.max_context:], layer.values[:, :, self.max_context:]


@dataclass
class Block:
    """An imported decoder block and how to feed it every layer of its model."""

    program: ImportedProgram
    model: torch.nn.Module = field(repr=False)
    seq_len: int
    max_context: int
    kv_dtype: torch.dtype = torch.float32  # the cache's dtype (`past_key`, `past_value` and the new rows)

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def cache_dtype(self) -> np.dtype:
        """The numpy dtype of the cache's arrays (`kv_dtype`'s)."""
        return torch.empty((), dtype=self.kv_dtype).numpy().dtype

    @property
    def windowed(self) -> bool:
        return any(i.name == "window" for i in self.program.inputs)

    @cached_property
    def layer_params(self) -> list[dict[str, np.ndarray]]:
        """Per layer: the program's params (name -> array) holding that layer's data."""
        return [self._params_of(i) for i in range(self.num_layers)]

    def _params_of(self, index: int) -> dict[str, np.ndarray]:
        ref = dict(DecoderBlock(self.model, 0, self.seq_len, self.max_context, self.windowed).named_parameters())
        own = list(DecoderBlock(self.model, index, self.seq_len, self.max_context, self.windowed).named_parameters())
        position = {name: k for k, name in enumerate(ref)}
        out = {}
        for name, value in self.program.params.items():
            if self.program.param_kinds[name] != "parameter":
                out[name] = value  # folded constants: the same for every layer
                continue
            other_name, other = own[position[name]]
            if tuple(other.shape) != value.shape:
                raise ModelError(f"layer {index} differs from layer 0: {other_name} has shape {list(other.shape)}, "
                                 f"layer 0's {name} {list(value.shape)}; a block design serves identical layers only")
            out[name] = other.detach().numpy()
        return out

    @property
    def scalar_max(self) -> dict[str, int]:
        """The largest value of each run-time scalar input (what a lowering compiles for)."""
        return {"position": self.max_context, "cache_len": self.max_context, "window": self.max_context + self.seq_len}

    def window(self, index: int) -> int:
        """The `window` input for layer `index` (unlimited: every key slot)."""
        every = self.max_context + self.seq_len  # a wider window sees every key slot too
        return min(layer_window(self.model, index) or every, every)

    def inputs(self, index: int, hidden: np.ndarray, past_key: np.ndarray, past_value: np.ndarray,
               position: int, cache_len: int) -> list[np.ndarray]:
        """The runtime inputs of an invocation for layer `index`, in the program's order."""
        scalar = torch.empty((), dtype=SCALAR_DTYPE).numpy().dtype
        values = {"hidden": hidden, "past_key": past_key, "past_value": past_value,
                  "position": np.asarray(position, scalar), "cache_len": np.asarray(cache_len, scalar),
                  "window": np.asarray(self.window(index), scalar)}
        return [values[spec.name] for spec in self.program.inputs]


def kv_shape(model: torch.nn.Module, max_context: int) -> tuple[int, ...]:
    """(1, kv_heads, max_context, head_dim): one layer's key (= value) cache."""
    from frontends.hf import kv_shapes

    return kv_shapes(model, max_context)[0]


def check_rope_scaling(model: torch.nn.Module) -> None:
    """Typed rotary embeddings must scale cos/sin alike: the factor is folded into the design."""
    rotary = _rotary(model)
    if rotary is None or not _typed(rotary):
        return
    scales = {t: getattr(rotary, f"{t}_attention_scaling", 1.0) for t in set(layer_types(model))}
    if len(set(scales.values())) > 1:
        raise ModelError(f"{type(model).__name__}: the layer types scale RoPE differently ({scales}); one block "
                         "design cannot serve them all")


def import_block(model: torch.nn.Module, *, seq_len: int = 1, max_context: int = DEFAULT_MAX_CONTEXT,
                 kv: tuple[int, ...] | None = None, replace: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
                 kv_dtype: torch.dtype = torch.float32) -> Block:
    """Imports decoder layer 0 of `model` as the block design of `seq_len` new tokens. `kv`: the
    cache shape if known (else a one-token run of the model finds it); `replace`: as for
    `from_torch` (say every attention computed by a DSL kernel, frontends/replace.py); `kv_dtype`:
    what the cache is held in (`KV_DTYPES`)."""
    from frontends.torch_import import from_torch

    for option, value in (("seq_len", seq_len), ("max_context", max_context)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(f"import_block: {option} must be a positive integer, got {value!r}")
    check_rope_scaling(model)
    windowed = any(layer_window(model, i) for i in range(model.config.num_hidden_layers))
    if kv_dtype not in KV_DTYPES.values():
        raise ModelError(f"import_block: a KV cache in {kv_dtype} is not supported; hold it in one of "
                         f"{', '.join(map(str, KV_DTYPES.values()))}")
    module = DecoderBlock(model, 0, seq_len, max_context, windowed, kv_dtype)
    hidden_size = model.config.hidden_size
    kv = kv or kv_shape(model, max_context)
    gen = torch.Generator().manual_seed(0)
    example = [torch.randn(1, seq_len, hidden_size, generator=gen), torch.randn(kv, generator=gen).to(kv_dtype),
               torch.randn(kv, generator=gen).to(kv_dtype), torch.tensor(max_context // 2, dtype=SCALAR_DTYPE),
               torch.tensor(max_context // 2, dtype=SCALAR_DTYPE)]
    if windowed:
        example.append(torch.tensor(max_context + seq_len, dtype=SCALAR_DTYPE))
    prog = from_torch(module, *example, name="block", replace=replace)
    return Block(prog, model, seq_len, max_context, kv_dtype)
