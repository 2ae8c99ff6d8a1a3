"""`tile-batch-loops` on imported decoder blocks: attention streams one head (or one KV head's group
of query heads) a tile through both contractions, checked end to end (the kernels' itensor types),
against PyTorch eager and the timed simulator (models and sizes the pass's filecheck test does not
name: GPT-2 with 4 heads, Llama with 2 query heads per KV head).

The cycles it saves are measured where the cache is long and the heads many, on the paper blocks
(benchmarks/roofline.py, docs/lowering.md); these tiny heads are shorter than `MIN_BATCH_BEATS`
(the per-head tiles cost more than they save), so the test plans them regardless."""

from __future__ import annotations

import numpy as np
import pytest
from lowering_helpers import assert_no_deadlock_no_stall, block_invocation, eager_block, program_inputs
from xdsl.dialects import func

import streamdsl as sd
from frontends import hf
from frontends.block import import_block
from lowering.transforms.split_matvecs import split_tasks, weight_chains
from lowering.transforms.tile_batch_loops import TileBatchLoopsPass, plan_batch_loops
from streamdsl.dialects.dataflow import ITensorConverterOp, ITensorType, TaskOp, kernel_of
from toolchain.models import lower_block

MAX_CONTEXT = 32


def _attention_contractions(module) -> list[TaskOp]:
    """The contractions that read the cache (a stream with its rows, the new one included), in program order."""
    return [t for t in module.walk() if isinstance(t, TaskOp) and t.sym_name.data.endswith("_matmul")
            and any(isinstance(i.type, ITensorType) and MAX_CONTEXT + 1 in i.type.itensor.shape for i in t.inputs)]


def _query_heads_a_tile(it, heads: int, kv_heads: int) -> int | None:
    """The query heads one tile of a contraction's input serves: a multi-head stream is (heads, rows,
    columns); grouped-query attention's contractions read the cache as (1, KV heads, rows, columns),
    each KV head serving its group, and the query side as (1, KV heads, group, rows, columns)
    (fuse-elementwise folds the repeat of the KV heads into them). None: no head dim (cos, sin)."""
    shape, tile = it.shape, it.tile
    if len(shape) == 3:
        return tile[0]
    if len(shape) == 4 and shape[1] == kv_heads:
        return tile[1] * heads // kv_heads
    if len(shape) == 5:
        return tile[1] * tile[2]
    return None


def _plan_all(self, ctx, op) -> None:  # noqa: ANN001
    for f in op.ops:
        if isinstance(f, func.FuncOp):
            plan_batch_loops(f, self.default_tile)  # every batch, however short (MIN_BATCH_BEATS)


def _lowered(family: str, monkeypatch, with_pass: bool):
    """The tiny block lowered with or without the pass; GPT-2's query-key-value matvec in 3 parts
    (as the exploration splits it at the paper size), so that its heads' rows leave side by side."""
    model = hf.build(family, "tiny", attention="eager")
    block = import_block(model, seq_len=1, max_context=MAX_CONTEXT)
    with monkeypatch.context() as m:
        m.setattr(TileBatchLoopsPass, "apply", _plan_all if with_pass else lambda self, ctx, op: None)
        lowered = lower_block(block, tile=16)
    kernel = kernel_of(lowered.program.module)
    if family == "gpt2":
        qkv = next(iter(weight_chains(kernel).values()))
        split_tasks(kernel, dict.fromkeys(qkv, 3))
    return block, lowered


@pytest.mark.parametrize(("family", "group"), [("gpt2", 1), ("llama", 2)])
def test_attention_streams_one_head_or_kv_group_a_tile(family, group, monkeypatch):
    """Both contractions stream `group` query heads a tile (GPT-2: one; Llama's 4 query heads
    over 2 KV heads: one KV head's 2), the heads their outer loop, and so does the softmax between
    them (no converter gathers every head); without the pass, all heads a tile. The design
    matches PyTorch eager and neither deadlocks nor stalls at its sized FIFOs."""
    for with_pass in (True, False):
        block, lowered = _lowered(family, monkeypatch, with_pass)
        design = sd.compile(lowered.program)
        contractions = _attention_contractions(design.module)
        assert len(contractions) == 2
        heads, kv_heads = block.model.config.num_attention_heads, getattr(block.model.config, "num_key_value_heads", None)
        for task in contractions:
            served = {_query_heads_a_tile(v.type.itensor, heads, kv_heads or heads) for v in task.inputs} - {None}
            assert served == {group if with_pass else heads}, (task.sym_name.data, [str(v.type.itensor) for v in task.inputs])
        if with_pass:  # the softmax between the contractions takes a group a tile too: no converter gathers every head's scores
            gathered = [str(it) for op in design.module.walk() if isinstance(op, ITensorConverterOp)
                        and MAX_CONTEXT + 1 in (it := op.result.type.itensor).shape and it.tile[1] == heads]
            assert not gathered, gathered
        inputs = block_invocation(block, 0, MAX_CONTEXT // 2)
        params = [block.layer_params[0][name] for name in lowered.program.params]
        got = design.simulate(*program_inputs(block, lowered.program, inputs), *params)
        for g, w in zip(got, eager_block(block, 0, inputs), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        assert_no_deadlock_no_stall(design)
