"""The attention in parts by heads, and the first phase's loads on an early HBM pool (level 2c of
the exploration, docs/lowering.md).

Checked against independent references: the split design against the unsplit one bit for bit in
the functional simulator (whose outputs the other tests check against PyTorch eager), the sized
FIFOs against the unbounded timed simulation, the allocation against hand-computed channels."""

from __future__ import annotations

import json

import numpy as np
import pytest

import streamdsl as sd
from lowering.dse import Plan, PlanError
from lowering.hbm_channels import CHANNELS, DmaDemand, _pooled, allocate, allocate_kernel, early_pool, set_early_pool
from lowering.timing import HBM_CHANNELS_ATTR
from lowering.transforms.split_matvecs import cache_chains, feeding_chains, outer_trips, split_tasks, weight_chains
from streamdsl import quant
from streamdsl.dialects.dataflow import DMA_OPS, DmaLoadOp, ITensorChunkOp, ITensorForkOp, TaskOp, kernel_of
from tests.lowering.lowering_helpers import assert_csim_as_modeled, assert_no_deadlock_no_stall
from toolchain.models import model_block

# at 256 cached rows a tiny block's head streams 128 beats or more: its attention walks heads (tile-batch-loops)
CONTEXT = 256


def _block(family: str):  # noqa: ANN202 - a ModelBlock
    return model_block(family, "tiny", CONTEXT, 16, quant=quant.scheme("w4a8", 16))


def test_cache_chains_are_the_attention_not_the_norms_nor_the_matvecs() -> None:
    for family, scores, values, heads in (("gpt2", "k15_matmul", "k21_matmul", 4), ("llama", "k26_matmul", "k32_matmul", 2)):
        kernel = kernel_of(_block(family).lowered.program.module)
        (chain,) = cache_chains(kernel)
        weights = {t for links in weight_chains(kernel).values() for t in links}
        assert scores in chain and values in chain and not weights & set(chain)
        tasks = {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
        assert {outer_trips(tasks[t]) for t in chain} == {heads}  # one (KV) head an iteration: 4 heads, 2 KV heads
    short = kernel_of(model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16)).lowered.program.module)
    assert cache_chains(short) == []  # all heads in one tile: no heads loop to split


@pytest.mark.parametrize(("family", "heads", "times"), [("gpt2", 2, 2), ("gpt2", 4, 4), ("llama", 2, 2)])
def test_attention_in_parts_by_heads_equals_the_unsplit_design(family: str, heads: int, times: int) -> None:
    """The attention and the matvecs that feed it split together: each attention part loads its
    own heads' box of each cache (the chunks `split_tasks` puts on its inputs are hoisted to the
    loads), the design computes what the unsplit one does bit for bit, and its sized FIFOs
    neither deadlock nor stall."""
    mb = _block(family)
    program = mb.lowered.program
    args = mb.example.make_inputs(1)
    unsplit = sd.compile(program).simulate(*args)
    kernel = kernel_of(program.module)
    (chain,) = cache_chains(kernel)
    chains = weight_chains(kernel)
    feeding = feeding_chains(kernel, chain)
    assert feeding
    split_tasks(kernel, {**dict.fromkeys(chain, heads), **{t: times * (3 if family == "gpt2" else 1) for n in feeding for t in chains[n]}})
    program.module.verify()
    caches = [op for op in kernel.body.block.ops if isinstance(op, DmaLoadOp) and "past" in (op.source.name_hint or "")]
    assert len(caches) == 2 * heads
    kv_heads = caches[0].source.type.get_shape()[1]
    assert sorted(tuple(op.offsets.get_values()) for op in caches) == sorted(
        (0, h * kv_heads // heads, 0, 0) for h in range(heads) for _ in range(2))
    assert not any(isinstance(op, ITensorChunkOp) and isinstance(op.source.owner, DmaLoadOp) for op in kernel.walk())
    forked = {op.source.owner.sym_name.data for op in kernel.body.block.ops if isinstance(op, ITensorForkOp)
              and isinstance(op.source.owner, TaskOp)}
    assert any(f"{t}_p{heads - 1}" in forked for t in chain)  # a fork hoisted: one per part, both readers split
    design = sd.compile(program)
    for got, want in zip(design.simulate(*args), unsplit, strict=True):
        assert np.array_equal(got, want)
    assert_no_deadlock_no_stall(design)


def test_early_pool_gives_its_tensors_channels_of_their_own() -> None:
    """Hand-computed: the early tensors go on the first channels, balanced there as `allocate`
    would on that many; the others on the rest."""
    demands = [DmaDemand("w1", 100, 2), DmaDemand("cache", 60, 2), DmaDemand("w2", 100, 2), DmaDemand("b", 10)]
    got = _pooled(demands, {"w1", "cache"}, 4, 8)
    assert [a.channels for a in got[:2]] == [a.channels for a in allocate(demands[:2], 4)]
    assert all(c < 4 for a in got[:2] for c in a.channels) and all(c >= 4 for a in got[2:] for c in a.channels)
    assert got[2:] == [type(a)(tuple(c + 4 for c in a.channels), a.share) for a in allocate(demands[2:], 4)]
    assert _pooled(demands, set(), 4, 8) == allocate(demands, 8) == _pooled(demands, {"w1"}, 0, 8)
    kernel = kernel_of(_block("gpt2").lowered.program.module)
    set_early_pool(kernel, {"past_key", "past_value"}, 6)
    assert early_pool(kernel) == (frozenset({"past_key", "past_value"}), 6)
    allocate_kernel(kernel)
    for op in (op for op in kernel.body.block.ops if isinstance(op, DMA_OPS)):
        channels = list(op.attributes[HBM_CHANNELS_ATTR].get_values())
        early = isinstance(op, DmaLoadOp) and op.source.name_hint in ("past_key", "past_value")
        assert all((c < 6) == early for c in channels), (op, channels)
    with pytest.raises(ValueError, match=f"give 1 to {CHANNELS - 1}"):
        set_early_pool(kernel, {"past_key"}, CHANNELS)
    set_early_pool(kernel, (), 6)
    assert early_pool(kernel) == (frozenset(), 0)


def test_plan_keeps_its_early_pool() -> None:
    plan = Plan(16, 250.0, True, {}, 0, {}, {}, (), False, ("past_key", "past_value"), 20)
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    with pytest.raises(PlanError, match="early_channels 40"):
        Plan.from_json({**plan.to_json(), "early_channels": 40})
    kernel = kernel_of(_block("gpt2").lowered.program.module)
    plan.apply(kernel)
    assert early_pool(kernel) == (frozenset({"past_key", "past_value"}), 20)


def _attention_plan() -> Plan:
    """GPT-2 tiny at W4A8, tile 16: c_attn in 6 parts feeding the attention in 2 parts by heads,
    the cache and c_attn's loads on an early pool of 8 channels."""
    mb = _block("gpt2")
    kernel = kernel_of(mb.lowered.program.module)
    (chain,) = cache_chains(kernel)
    feeding = {t: 6 for n in feeding_chains(kernel, chain) for t in weight_chains(kernel)[n]}
    early = ("past_key", "past_value", "p_layer_attn_c_attn_weight", "p_layer_attn_c_attn_scales", "p_layer_attn_c_attn_bias")
    return Plan(16, 250.0, True, {}, 0, {**dict.fromkeys(chain, 2), **feeding}, {}, (), False, early, 8)


@pytest.mark.slow
def test_attention_parts_emit_pass_lint_and_csim_at_the_model_s_cycles(tmp_path) -> None:  # noqa: ANN001
    """The emitted project of that plan passes the HLS lint; g++ csim, sequential and threaded,
    equals the functional simulation; every process's cycles and the makespan are within 1.2x of
    the timing model; the early pool's ports are on its channels (link.cfg) and no other port is."""
    from hls_backend import emit_project
    from hls_backend.lint import lint_cpp
    from toolchain.models import planned_block

    plan = _attention_plan()
    block, _ = planned_block("gpt2", "tiny", CONTEXT, quant.scheme("w4a8", 16), plan=plan)
    design = sd.compile(block.example.program)
    project = emit_project(design, tmp_path / "hls")
    assert lint_cpp((project / "kernel.cpp").read_text()) == []
    ports = [line.split(".", 1)[1].split(":HBM[") for line in (project / "link.cfg").read_text().splitlines() if line.startswith("sp=")]
    early = {port: int(channel.rstrip("]")) < plan.early_channels for port, channel in ports}
    assert all(flag == port.rstrip("_0123456789").startswith(plan.early_tensors) for port, flag in early.items()), early
    assert sum(port.startswith("past_key") for port in early) == 2  # a box of the cache per attention part
    xs = block.example.make_inputs(0)
    assert_csim_as_modeled(design, project, xs)
