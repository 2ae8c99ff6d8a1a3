"""The host side of generation: embedding, final norm, LM head, greedy sampling and the loops.

One decoder-block design (`frontends.block`) runs every layer of every step; the host does the
rest, in numpy:

- the **embedding** (token table, learned positions, scale) and the **head** (final norm, LM head,
  logit post-processing such as soft-capping) are imported from the model itself with the same
  importer (its decoder layers stubbed out while they are exported) and run on the numpy
  interpreter of linalg, so every family's own code defines them;
- **greedy sampling** is an argmax over the last token's logits;
- the **layer loop** invokes the block once per layer with that layer's weights and KV cache, and
  the **KV-cache update** writes the block's new key/value rows at rows `cache_len ..` of the
  layer's cache (laid out at the design's `max_context`).

The prompt goes through a second design that takes `prefill_len` tokens at a time (the last chunk
padded; padded rows are computed and dropped: causality keeps them out of the real rows), so the
weights are streamed once per chunk instead of once per prompt token.

`block_runner(block, layer, inputs)` runs one invocation and returns (hidden, new_key,
new_value): `run_numpy` interprets the imported block; a compiled design in the functional
simulator plugs in the same way.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import transformers

from frontends.block import DEFAULT_MAX_CONTEXT, Block, decoder_layers, import_block
from frontends.errors import ModelError
from frontends.program import ImportedProgram

BlockRunner = Callable[[Block, int, Sequence[np.ndarray]], Sequence[np.ndarray]]
DEFAULT_PREFILL_LEN = 8


def run_numpy(block: Block, layer: int, inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Runs the imported block on the numpy interpreter of linalg with layer `layer`'s params."""
    return block.program.compiled(*inputs, *block.layer_params[layer].values())


class _Stub(torch.nn.Module):
    """Stands in for the decoder layers while a host part is exported: `fn` maps the hidden
    state the model passes in to the one the next stage sees."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], returns_tuple: bool):
        super().__init__()
        self.fn, self.returns_tuple = fn, returns_tuple

    def forward(self, hidden_states, *args, **kwargs):
        out = self.fn(hidden_states)
        return (out,) if self.returns_tuple else out


@contextmanager
def _stubbed(model: torch.nn.Module, stub: _Stub):
    layers = decoder_layers(model)
    saved = layers._modules
    layers._modules = {"0": stub}
    try:
        yield
    finally:
        layers._modules = saved


def _probe(model: torch.nn.Module, max_context: int) -> tuple[bool, tuple[int, ...]]:
    """One token through the model: whether its decoder layers return a tuple (hidden first) or
    the hidden state, and the shape of one layer's KV cache at `max_context` rows."""
    seen, cache = [], transformers.DynamicCache()
    hook = decoder_layers(model)[0].register_forward_hook(lambda _m, _a, out: seen.append(isinstance(out, tuple)))
    try:
        with torch.no_grad():
            model(input_ids=torch.zeros(1, 1, dtype=torch.long), cache=cache, use_cache=True)
    finally:
        hook.remove()
    keys = cache.layers[0].keys
    return seen[0], (*keys.shape[:2], max_context, *keys.shape[3:])


def _model_kwargs(model: torch.nn.Module, positions: torch.Tensor) -> dict:
    accepts = inspect.signature(model.forward).parameters
    return {"position_ids": positions} if "position_ids" in accepts else {}


class _Embed(torch.nn.Module):
    """input_ids, position_ids (1, 1) -> the hidden state the first decoder layer receives."""

    def __init__(self, model: torch.nn.Module, returns_tuple: bool):
        super().__init__()
        self.model, self.returns_tuple = model, returns_tuple
        self.input_names = ["input_ids", "position_ids"]

    def forward(self, input_ids, position_ids):
        seen = []
        with _stubbed(self.model, _Stub(lambda h: seen.append(h) or h, self.returns_tuple)):
            self.model(input_ids=input_ids, use_cache=False, **_model_kwargs(self.model, position_ids))
        return seen[0]


class _Head(torch.nn.Module):
    """hidden (1, S, H) after the last decoder layer -> logits (1, S, vocab)."""

    def __init__(self, model: torch.nn.Module, returns_tuple: bool):
        super().__init__()
        self.model, self.returns_tuple = model, returns_tuple
        self.input_names = ["hidden"]

    def forward(self, hidden):
        ids = torch.zeros(hidden.shape[:2], dtype=torch.long)
        with _stubbed(self.model, _Stub(lambda _h: hidden, self.returns_tuple)):
            return self.model(input_ids=ids, use_cache=False).logits


@dataclass
class Generation:
    """Generated token ids and, per step, the logits they were sampled from."""

    tokens: list[int]
    logits: list[np.ndarray] = field(repr=False)


class Generator:
    """A causal LM split into host parts and block designs, ready to generate greedily."""

    def __init__(self, model: torch.nn.Module, *, max_context: int = DEFAULT_MAX_CONTEXT,
                 prefill_len: int = DEFAULT_PREFILL_LEN, block_runner: BlockRunner = run_numpy,
                 replace: Mapping[Callable[..., Any], Callable[..., Any]] | None = None):
        """`replace`: torch functions the decoder blocks compute with others (`from_torch`'s
        `replace`, say every attention by a DSL kernel)."""
        from frontends.torch_import import from_torch

        self.model, self.max_context, self.block_runner = model, max_context, block_runner
        self.seconds: dict[str, float] = {}  # import seconds of each part
        start = time.perf_counter()
        returns_tuple, self.kv_shape = _probe(model, max_context)
        self.decode = import_block(model, seq_len=1, max_context=max_context, kv=self.kv_shape, replace=replace)
        self.seconds["decode_block"] = time.perf_counter() - start
        start = time.perf_counter()
        self.prefill = import_block(model, seq_len=prefill_len, max_context=max_context, kv=self.kv_shape,
                                    replace=replace) if prefill_len > 1 else None
        self.seconds["prefill_block"] = time.perf_counter() - start
        start = time.perf_counter()
        one = (torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.long))  # two tensors: not aliased
        self.embed: ImportedProgram = from_torch(_Embed(model, returns_tuple), *one, name="embed")
        hidden = torch.zeros(1, 1, model.config.hidden_size)
        self.head: ImportedProgram = from_torch(_Head(model, returns_tuple), hidden, name="head")
        self.seconds["host"] = time.perf_counter() - start

    @property
    def num_layers(self) -> int:
        return self.decode.num_layers

    def generate(self, prompt: Sequence[int], n_tokens: int) -> Generation:
        """Greedy decoding of `n_tokens` after `prompt` (token ids)."""
        prompt = [int(t) for t in prompt]
        if not prompt:
            raise ModelError("generate: the prompt needs at least one token")
        if len(prompt) + n_tokens - 1 > self.max_context:
            raise ModelError(f"generate: a prompt of {len(prompt)} tokens and {n_tokens} new tokens need a cache of "
                             f"{len(prompt) + n_tokens - 1} rows; the design holds max_context={self.max_context}")
        held = self.decode.cache_dtype
        caches = [(np.zeros(self.kv_shape, held), np.zeros(self.kv_shape, held)) for _ in range(self.num_layers)]
        length, logits, tokens = 0, [], []
        prompt_block = self.prefill or self.decode
        for start in range(0, len(prompt), prompt_block.seq_len):
            chunk = prompt[start:start + prompt_block.seq_len]
            hidden = self.step(prompt_block, chunk, length, caches)
            length += len(chunk)
        logits.append(self.logits(hidden))
        tokens.append(int(np.argmax(logits[-1])))
        while len(tokens) < n_tokens:
            hidden = self.step(self.decode, tokens[-1:], length, caches)
            length += 1
            logits.append(self.logits(hidden))
            tokens.append(int(np.argmax(logits[-1])))
        return Generation(tokens, logits)

    def step(self, block: Block, ids: list[int], length: int, caches, write: bool = True) -> np.ndarray:
        """Runs `ids` (at most the block's tokens, padded) through every layer after `length`
        cached tokens, writes their keys and values into `caches` (per layer, (keys, values) at
        the design's max_context) unless `write` is false, and returns the last real token's
        hidden state (1, 1, H)."""
        n, size = len(ids), block.seq_len
        padded = np.array([ids + [0] * (size - n)], dtype=np.int64)  # the embedding runs token by token
        hidden = np.concatenate([self.embed.reference(padded[:, [t]], np.array([[length + t]]))[0]
                                 for t in range(size)], axis=1)
        for layer, (keys, values) in enumerate(caches):
            inputs = block.inputs(layer, hidden, keys, values, position=length, cache_len=length)
            hidden, new_key, new_value = self.block_runner(block, layer, inputs)
            if not write:
                continue
            keys[:, :, length:length + n] = new_key[:, :, :n]
            values[:, :, length:length + n] = new_value[:, :, :n]
        return hidden[:, n - 1:n]

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        """The head on the last token's hidden state: logits (vocab,)."""
        return self.head.reference(hidden)[0][0, -1]


RUNNERS: dict[str, BlockRunner] = {"numpy": run_numpy}  # by name, for `streamdsl generate --runner`


def torch_generate(model: torch.nn.Module, prompt: Sequence[int], n_tokens: int) -> Generation:
    """The reference: Hugging Face greedy `model.generate` in PyTorch eager, exactly `n_tokens`
    new tokens (a design does not stop at the end-of-sequence token), with each step's logits."""
    config = model.generation_config
    eos, config.eos_token_id = config.eos_token_id, None
    ids = torch.tensor([list(prompt)])
    try:
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=n_tokens, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True, pad_token_id=0)
    finally:
        config.eos_token_id = eos
    return Generation(out.sequences[0, ids.shape[1]:].tolist(), [t[0].numpy() for t in out.logits])


def generate(model_family: str | torch.nn.Module, size: str = "tiny", prompt: Sequence[int] = (), n_tokens: int = 16,
             block_runner: BlockRunner = run_numpy, *, num_layers: int | None = None,
             max_context: int = DEFAULT_MAX_CONTEXT, prefill_len: int = DEFAULT_PREFILL_LEN) -> Generation:
    """Greedy generation of `n_tokens` after `prompt` with a zoo model (`model_family`, `size`)
    or a given causal LM, each decoder layer run by `block_runner`."""
    from frontends import hf

    model = model_family if isinstance(model_family, torch.nn.Module) else hf.build(model_family, size,
                                                                                   num_layers=num_layers)
    gen = Generator(model, max_context=max_context, prefill_len=prefill_len, block_runner=block_runner)
    return gen.generate(prompt, n_tokens)
