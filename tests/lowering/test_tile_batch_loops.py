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
from streamdsl.dialects.dataflow import ITensorType, TaskOp, kernel_of
from toolchain.models import lower_block

MAX_CONTEXT = 32


def _attention_contractions(module) -> list[TaskOp]:
    """The batched contractions (two inputs of rank 3: heads, rows, columns), in program order."""
    return [t for t in module.walk() if isinstance(t, TaskOp) and t.sym_name.data.endswith("_matmul")
            and len(t.inputs) == 2 and all(isinstance(i.type, ITensorType) and len(i.type.element_type.get_shape()) == 3 for i in t.inputs)]


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
    over 2 KV heads: one KV head's 2), the heads their outer loop; without the pass, all heads
    a tile. The design matches PyTorch eager and neither deadlocks nor stalls at its sized FIFOs."""
    for with_pass in (True, False):
        block, lowered = _lowered(family, monkeypatch, with_pass)
        design = sd.compile(lowered.program)
        contractions = _attention_contractions(design.module)
        assert len(contractions) == 2
        heads = block.model.config.num_attention_heads
        for task in contractions:
            for value in task.inputs:
                it = value.type.itensor
                assert it.tile[0] == (group if with_pass else heads), (task.sym_name.data, it)
        inputs = block_invocation(block, 0, MAX_CONTEXT // 2)
        params = [block.layer_params[0][name] for name in lowered.program.params]
        got = design.simulate(*program_inputs(block, lowered.program, inputs), *params)
        for g, w in zip(got, eager_block(block, 0, inputs), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        assert_no_deadlock_no_stall(design)
