"""Tutorial 07: an expert kernel in an imported model: every attention of a Hugging Face model
replaced by the flash decoding kernel of tutorial 04.

`frontends.from_torch(model, ..., replace={F.scaled_dot_product_attention: attention})` runs
`attention` wherever the model calls `scaled_dot_product_attention` while it is exported, so
the torch code in it is imported with the rest of the model; `frontends.kernel_op(program)`
makes a DSL program callable from that code (a torch op whose import is the program's
`dataflow.kernel`, inlined into the model's function). The decoder-block import
(`frontends.block`) lays the keys out as `max_context` cache rows (the block's `past_key` input,
in HBM), of which the first `cache_len` hold tokens, followed by the new token's row, and masks
the rest; `attention` therefore gives the kernel (tutorial 04's, built with `new_token=True`)

- the new token's key and value rows, which attend besides the cache (a part of their own that
  the combine kernel merges first);
- the cache rows paged round robin over the split kernels: reshapes and slices of `past_key`,
  which the whole-model lowering turns into DMAs reading the cache in the kernel's order, only
  its valid pages (the block's run-time `cache_len`, `frontends.block.runtime_scalars()`, is
  the kernel's scalar), with no converter;
- `gqa_sdpa`, registered as a Hugging Face attention, passes each KV head once (`enable_gqa`):
  Hugging Face repeats the KV heads of a grouped-query model under a mask otherwise.

The model generates the same tokens as PyTorch (greedy decoding, random weights) through the
whole-model lowering's ONE compiled, FIFO-sized design of the decoder block (the functional
simulator runs every layer and cache length on it): `streamdsl compile gpt2 --size tiny
--replace tutorials/07_kernel_in_a_model.py` compiles the same block from the command line.

Run it: `python tutorials/07_kernel_in_a_model.py`.
"""

from __future__ import annotations

import math
import runpy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from frontends import hf, kernel_op
from frontends.block import runtime_scalars
from frontends.host import Generator, torch_generate
from toolchain.models import DesignRunner

FLASH = runpy.run_path(str(Path(__file__).with_name("04_flash_decoding.py")))


def flash_attention(rows: int = 4, splits: int = 2) -> Callable[..., torch.Tensor]:
    """A function with scaled_dot_product_attention's signature, for one decode query of a
    decoder block (frontends.block), computed by tutorial 04's flash decoding program."""
    programs: dict[tuple[int, ...], Callable[..., torch.Tensor]] = {}

    def attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,  # noqa: ANN001, ANN202
                  enable_gqa=False):
        _, heads, queries, dh = query.shape
        _, kv_heads, keys, _ = key.shape
        if queries != 1 or attn_mask is None or is_causal or dropout_p:
            raise ValueError("flash_attention serves decode steps of a decoder block: one query, an additive mask")
        cache = keys - 1  # the cache rows (max_context), then the new token's
        if cache % (rows * splits):
            raise ValueError(f"flash_attention(rows={rows}, splits={splits}) pages a cache of {cache} rows: "
                             f"make the maximum context a multiple of {rows * splits}")
        shape = (heads, kv_heads, cache, dh, rows, splits)
        if shape not in programs:
            programs[shape] = kernel_op(FLASH["build"](*shape, new_token=True))
        length = runtime_scalars()["cache_len"]  # the cache rows that hold tokens
        q = query[0, :, 0]
        if scale is not None and not math.isclose(scale * math.sqrt(dh), 1.0, rel_tol=1e-7):
            q = q * (scale * math.sqrt(dh))  # the kernel scales by 1 / sqrt(dh)

        def pages(x: torch.Tensor) -> list[torch.Tensor]:  # the cache rows, paged round robin: views of HBM
            split = x[:, :, :cache].reshape(kv_heads, cache // (rows * splits), splits, rows, dh)
            return [split[:, :, s].reshape(kv_heads, cache // splits, dh) for s in range(splits)]

        new_k, new_v = (x[:, :, cache:].reshape(kv_heads, dh) for x in (key, value))  # the new token's row
        out = programs[shape](q, new_k, new_v, *pages(key), *pages(value), length)
        return out.reshape(1, heads, 1, dh).to(query.dtype)

    return attention


def gqa_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Hugging Face's "sdpa" attention, but with each KV head passed once (`enable_gqa`) also under
    a mask, where Hugging Face repeats the KV heads for every query head of their group: the
    kernel then reads each KV head's cache from HBM once and replays it on chip."""
    if attention_mask is None or key.shape[1] == query.shape[1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling,
                                         enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register("sdpa_gqa", gqa_sdpa)
REPLACE = {F.scaled_dot_product_attention: flash_attention()}


def prepare_model(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its attention through scaled_dot_product_attention (`gqa_sdpa`), which
    REPLACE computes with the kernel (`streamdsl compile --replace` calls it too)."""
    model.set_attn_implementation("sdpa_gqa")
    return model


def build_model(family: str, **options: object) -> torch.nn.Module:
    return prepare_model(hf.build(family, "tiny", **options))


def main(family: str = "gpt2", prompt: tuple[int, ...] = (31, 41, 59, 26, 53), n_tokens: int = 8) -> None:
    model = hf.lively(build_model(family))
    runner = DesignRunner()  # each decoder layer runs the block's ONE compiled design in the functional simulator
    gen = Generator(model, max_context=16, prefill_len=1, replace=REPLACE, block_runner=runner)
    kernels = [op.sym_name.data for op in gen.decode.program.module.walk() if op.name == "dataflow.kernel"]
    print(gen.decode.program.module)
    print(f"{family}: the imported decoder block holds the DSL kernel(s) {kernels}")
    ours = gen.generate(list(prompt), n_tokens)
    want = torch_generate(model, list(prompt), n_tokens)
    design = runner.design(gen.decode)
    tasks = [op.sym_name.data for op in design.module.walk() if op.name == "dataflow.task"]
    print(f"the compiled block: one dataflow.kernel of {len(tasks)} tasks, {len(design.depths)} sized FIFOs")
    print(f"tokens through the compiled design: {ours.tokens}")
    print(f"tokens of PyTorch:                  {want.tokens}")
    error = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours.logits, want.logits, strict=True))
    print(f"largest logit difference, relative to the largest logit: {error:.1e}")
    assert ours.tokens == want.tokens and error < 1e-4


if __name__ == "__main__":
    for name in ("gpt2", "llama"):
        main(name)
