"""benchmarks/block_phases.py: each weight matvec's span, bytes and the share of its HBM rate and of
its weight streams' limit (a part's stream takes at most one beat a cycle), on a planned block."""

from __future__ import annotations

from lowering.dse import Plan
from lowering.timing import U55C
from lowering.transforms.split_matvecs import weight_chains
from streamdsl import quant
from streamdsl.dialects.dataflow import kernel_of
from tests.lowering.lowering_helpers import benchmark
from toolchain.models import model_block


def test_a_matvec_never_moves_more_than_its_streams_carry() -> None:
    """GPT-2 tiny W4A8 (groups of 16), c_attn in 3 parts: its weight matvecs in the order they
    start, c_attn's bytes its 3 weight slices (its 64 x 192 int4 weights), and every matvec's rate
    within its weight streams' beats a cycle (a reader takes one beat a cycle) and above 0."""
    plan = Plan(splits={"k8_reduce": 3, "k9_matmul": 3, "k10_map": 3})
    block = model_block("gpt2", "tiny", 16, plan.tile, quant=quant.scheme("w4a8", 16))
    heads = set(weight_chains(kernel_of(block.lowered.program.module)))
    makespan, rows, path, rates = benchmark("block_phases").planned_phases(block, plan)
    assert makespan > max(r["end"] for r in rows)
    # every DMA's rate: within what its stripes' channels deliver (a measured channel's bits a cycle each), above 0
    channel = U55C.at_clock(plan.clock_mhz).hbm_bits_per_cycle
    assert len(rates) >= 6 and all(0 < bits <= stripes * channel and beat > 0 for stripes, bits, beat in rates.values()), rates
    assert "dma_load(p_layer_attn_c_attn_weight)#3" in rates and any(n.startswith("dma_store(") for n in rates), sorted(rates)
    assert path[-1].end == makespan and all(a.end <= b.start for a, b in zip(path, path[1:]))  # the critical path
    assert sorted(r["matvec"] for r in rows) == sorted(heads) and len(rows) >= 2
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    (qkv,) = [r for r in rows if r["matvec"] == "k8_reduce"]
    assert qkv["parts"] == 3 and qkv["MiB"] * 2**20 == 64 * 192 // 2
    assert all(0 < r["stream_share"] <= 1.0 and 0 < r["hbm_share"] for r in rows), rows
