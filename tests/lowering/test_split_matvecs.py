"""split-matvecs on whole decoder blocks: the split design computes what the block computes.

Checked against independent references: the block's integer form in PyTorch (the quantized
model's `QuantLinear`s, integer matmuls done by torch) and the fake-quantized block in PyTorch
eager; the split and unsplit designs agree bit for bit; the timed simulator with the sized FIFOs
neither deadlocks nor stalls against unbounded ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.utils.exceptions import PassFailedException

import streamdsl as sd
from frontends.block import DecoderBlock
from frontends.quant import quantize_model
from lowering.dse import Plan, PlanError, explore
from lowering.timing import kernel_graph
from lowering.transforms.split_matvecs import (
    SPLIT_ATTR,
    SplitError,
    SplitMatvecsPass,
    hoist_chunk,
    split_task,
    split_tasks,
    splittable,
    weight_chains,
)
from streamdsl import quant
from streamdsl.dialects.dataflow import DmaLoadOp, ITensorChunkOp, ITensorConcatOp, ITensorForkOp, KernelOp, TaskOp, kernel_of
from streamdsl.sim.timed import simulate_unbounded
from tests.lowering.lowering_helpers import assert_no_deadlock_no_stall
from toolchain.models import model_block, run_block


def _tasks(module) -> dict[str, TaskOp]:
    kernel = kernel_of(module)
    return {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}


@pytest.mark.parametrize(("family", "scheme", "parts"), [("gpt2", quant.scheme("w4a8", 16), 2), ("llama", quant.scheme("w4a8", 16), 4),
                                                         ("qwen2", quant.SCHEMES["w8a8"], 2)])
def test_split_block_equals_the_integer_form_and_the_unsplit_design(family: str, scheme: quant.Scheme, parts: int) -> None:
    mb = model_block(family, "tiny", 8, 16, quant=scheme)
    program = mb.lowered.program
    args = mb.example.make_inputs(1)
    unsplit = sd.compile(program).simulate(*args)
    weights = {n for n, t in _tasks(program.module).items() if splittable(t, parts)}
    SplitMatvecsPass(parts=parts).apply(Context(), program.module)
    program.module.verify()
    tasks = _tasks(program.module)
    assert weights and all(f"{n}_p{p}" in tasks and n not in tasks for n in weights for p in range(parts))
    design = sd.compile(program)
    got = design.simulate(*args)
    integer = DecoderBlock(quantize_model(mb.model, scheme), 0, 1, 8, mb.block.windowed).eval()
    want = run_block(integer, mb.block, program.input_names, args)
    ref = mb.example.reference(*args)
    for g, u, w, r in zip(got, unsplit, want, ref, strict=True):
        assert np.array_equal(g, u)  # the same integer sums, the same float rounding
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6 * float(np.abs(w).max()))
        assert float(np.abs(g - r).max()) <= 1e-5 * float(np.abs(r).max())
    assert_no_deadlock_no_stall(design)


def test_split_parts_read_their_own_weight_boxes() -> None:
    """Each part of a weight contraction loads its own box of the weight (dma_load offsets), and
    the parts' outputs are joined by a concat where an unsplit task reads them."""
    mb = model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    module = mb.lowered.program.module
    task = _tasks(module)["k8_reduce"]  # c_attn's integer matmul: 12 output tiles of 16 channels
    weight = next(v for v in task.inputs if isinstance(v.owner, DmaLoadOp) and v.type.itensor.dtype.bits == 4)
    tensor = weight.owner.source
    parts = split_task(task, 3)
    loads = [v.owner for t in parts for v in t.inputs if isinstance(v.owner, DmaLoadOp) and v.owner.source is tensor]
    assert [tuple(load.offsets.get_values()) for load in loads] == [(0, 0, 0), (64, 0, 0), (128, 0, 0)]
    assert all(load.result.type.itensor.shape == (64, 4, 16) for load in loads)
    concat = next(iter(parts[0].outputs[0].uses)).operation
    assert isinstance(concat, ITensorConcatOp) and [s.owner for s in concat.sources] == parts
    module.verify()


@pytest.mark.parametrize("parts", [3, 6])
def test_qkv_parts_stream_query_keys_and_values_side_by_side(parts: int) -> None:
    """c_attn (query, keys and values in one output, cut apart by a chunk) in 3 or 6 parts: the
    chunk's pieces are runs of the parts (1 or 2 each), so the concat and the chunk fold away and the
    three stream side by side; the design computes what the unsplit one does, bit for bit, and its
    values' first row leaves before its queries' last (4 parts cut a piece inside a part: kept)."""
    mb = model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    program = mb.lowered.program
    args = mb.example.make_inputs(1)
    unsplit = sd.compile(program).simulate(*args)
    kernel = kernel_of(program.module)
    chunks = [op for op in kernel.walk() if isinstance(op, ITensorChunkOp)]
    chain = weight_chains(kernel)["k8_reduce"]
    split_tasks(kernel, dict.fromkeys(chain, parts))
    program.module.verify()
    pieces = [op for op in kernel.walk() if isinstance(op, ITensorChunkOp)]
    assert len(pieces) == len(chunks) - 1  # c_attn's chunk is gone
    assert not any(isinstance(op.source.owner, ITensorConcatOp) for op in pieces)
    design = sd.compile(program)
    for g, u in zip(design.simulate(*args), unsplit, strict=True):
        assert np.array_equal(g, u)
    assert_no_deadlock_no_stall(design)
    timed = design.timed_simulation(dict.fromkeys(design.depths))
    values = [e.name for e in design.graph.edges if e.name.startswith(f"{chain[-1]}_p{2 * parts // 3}->")]  # the values' first part
    assert values and all(timed.read_times[e][0] < timed.finish[f"{chain[-1]}_p0"] for e in values)  # read before the queries end
    kernel4 = kernel_of(model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16)).lowered.program.module)
    split_tasks(kernel4, dict.fromkeys(chain, 4))
    assert any(isinstance(op.source.owner, ITensorConcatOp) for op in kernel4.walk() if isinstance(op, ITensorChunkOp))


def test_split_errors_name_the_task_and_the_reason() -> None:
    mb = model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    tasks = _tasks(mb.lowered.program.module)
    with pytest.raises(SplitError, match=r"task k8_reduce cannot be split into 5 parts: its outer loop has 12 trips, which 5"):
        split_task(tasks["k8_reduce"], 5)
    with pytest.raises(SplitError, match=r"task k1_reduce cannot be split into 2 parts: its outer loop has 1 trips"):
        split_task(tasks["k1_reduce"], 2)
    tasks["k0_map"].attributes[SPLIT_ATTR] = IntegerAttr(2, i64)
    with pytest.raises(PassFailedException, match=r"task k0_map cannot be split into 2 parts"):
        SplitMatvecsPass().apply(Context(), mb.lowered.program.module)
    with pytest.raises(PassFailedException, match=r"parts=1; give 0"):
        SplitMatvecsPass(parts=1).apply(Context(), mb.lowered.program.module)


def test_exploration_splits_weight_matvecs_and_the_plan_rebuilds_it() -> None:
    """The DSE splits the weight matvecs (with the tasks that walk their outputs) when that is
    faster (tests/lowering/test_dse.py checks that a seed gives one plan); the plan applied to a
    fresh lowering gives the makespan it measured, and the split design still computes the block."""
    mb = model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    explored = explore(lambda _: mb.lowered.program.module.clone(), (16,), 250.0, seed=1)
    assert explored.splits
    plan = Plan.from_json(json.loads(json.dumps(explored.to_json())))
    assert plan == explored
    heads = [n for n in plan.splits if n.endswith("_reduce")]
    assert heads and all(plan.splits[n] >= 2 for n in heads)
    program = mb.lowered.program
    kernel = kernel_of(program.module)
    unsplit = _makespan(kernel)
    plan.apply(kernel)
    assert _makespan(kernel) == plan.figures["unbounded_makespan_cycles"] < unsplit
    args = mb.example.make_inputs(2)
    ref = mb.example.reference(*args)
    for g, r in zip(sd.compile(program).simulate(*args), ref, strict=True):
        assert float(np.abs(g - r).max()) <= 1e-5 * float(np.abs(r).max())
    with pytest.raises(PlanError, match="splits tasks the design does not have: k10_map"):
        plan.apply(kernel)  # already split: its tasks are the parts now
    with pytest.raises(PlanError, match="a task splits into 2 or more parts"):
        Plan.from_json({**plan.to_json(), "splits": {"k8_reduce": 1}})


def _makespan(kernel: KernelOp) -> int:
    return simulate_unbounded(kernel_graph(kernel)[0]).makespan


@pytest.mark.slow
def test_split_design_emits_passes_lint_and_csim_and_its_plan_rebuilds_it(tmp_path) -> None:  # noqa: ANN001
    """A W4A8 block with a weight matvec split by its plan (the first matvec chain, c_attn, in 3 parts; `--dse`
    no longer splits the tiny block since unroll-short-loops pipelines its matvecs, so the plan
    names the split): the emitted project passes the HLS lint and g++ csim (sequential and
    threaded) equals the functional simulation; every part's weight DMA is an m_axi port of its
    own on a pseudo-channel of its own (link.cfg); `--plan` with the plan it wrote rebuilds it."""
    from toolchain.cli import main as streamdsl

    args = ["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "16", "--quant", "w4a8", "--group-size", "16"]
    plan = {"version": 1, "tile": 64, "clock_mhz": 250.0, "hbm_striping": True, "lanes": {},
            "splits": {"k8_reduce": 3, "k9_matmul": 3, "k10_map": 3}}
    (tmp_path / "split.json").write_text(json.dumps(plan))
    assert streamdsl([*args, "--plan", str(tmp_path / "split.json"), "--csim", "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    splits = report["plan"]["splits"]
    assert splits == plan["splits"] and report["verification"]["deadlock_free"]
    assert report["verification"]["csim_vs_sim_max_abs"] <= 1e-5 * report["verification"]["torch_max_abs"]
    link = (tmp_path / "a" / "hls" / "link.cfg").read_text()
    head = next(n for n in splits if n.endswith("_reduce"))
    weight_ports = [line for line in link.splitlines() if "_weight" in line and "sp=" in line]
    channels = [line.rsplit("HBM[", 1)[1] for line in weight_ports]
    assert len(weight_ports) >= 4 + splits[head] - 1 and len(set(channels)) == len(channels)  # each part its own channel
    assert streamdsl([*args, "--plan", str(tmp_path / "a" / "plan.json"), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "report.json").read_text())
    assert again["plan"] == report["plan"] and again["timed_simulation"] == report["timed_simulation"]


def test_chunks_move_up_to_where_each_part_has_sources_of_its_own() -> None:
    """Split in 2, the tiny Llama block keeps only chunks that `hoist_chunk` cannot move (a
    converter whose ranges would be other boxes, a fork with an unsplit reader: hoisting would
    add a fork per part and a concat for that reader); the design computes what the unsplit one
    does (test_split_block_equals_the_integer_form_and_the_unsplit_design)."""
    mb = model_block("llama", "tiny", 8, 16, quant=quant.scheme("w4a8", 16))
    kernel = kernel_of(mb.lowered.program.module)
    SplitMatvecsPass(parts=2).apply(Context(), mb.lowered.program.module)
    chunks = [op for op in kernel.body.block.ops if isinstance(op, ITensorChunkOp)
              and any(isinstance(u.operation, TaskOp) and "_p" in u.operation.sym_name.data for out in op.outputs for u in out.uses)]
    assert chunks and all(hoist_chunk(c) is None for c in chunks)
    forks = [fork for c in chunks if isinstance(fork := c.source.owner, ITensorForkOp)]
    assert forks and all(not all(isinstance(u.operation, ITensorChunkOp) for out in f.outputs for u in out.uses) for f in forks)
