"""`form-engines` on imported W4A8 blocks: part p of the matvecs of a group computes in one task, its
later phases' activations fed back; the design computes exactly what the design without engines
computes (functional simulator and both csim modes), matches the PyTorch reference, and csim's
cycle count is the timing model's. Plans carry their engines through JSON."""

from __future__ import annotations

import numpy as np
import pytest

import streamdsl as sd
from hls_backend import csim_cycles, emit_project, run_csim
from lowering.dse import Plan, PlanError
from lowering.engine_phases import engine_phases, phases_alike
from lowering.memory import task_tensors
from lowering.resources import U55C_COSTS, Usage, task_usage
from lowering.transforms.form_engines import EngineError, form_engines
from lowering.transforms.split_matvecs import split_tasks, weight_chains
from streamdsl import quant
from streamdsl.dialects.dataflow import ITensorFeedbackOp, TaskOp, kernel_of
from toolchain.models import model_block, planned_block

SCHEME = quant.scheme("w4a8", 32)


def _heads(family: str) -> dict[str, list[str]]:
    block = model_block(family, "tiny", 16, 16, quant=SCHEME)
    return weight_chains(kernel_of(block.lowered.program.module))


def _design(family: str, parts: dict[str, int], engines: tuple[tuple[str, ...], ...]) -> tuple[object, object]:
    chains = _heads(family)
    splits = {task: parts.get(head, 2) for head, chain in chains.items() for task in chain}
    block, _ = planned_block(family, "tiny", 16, SCHEME, plan=Plan(tile=16, clock_mhz=250.0, splits=splits, engines=engines))
    return block, sd.compile(block.example.program)


# the weight matvecs in order: GPT-2 c_attn, attn c_proj, c_fc, mlp c_proj; Llama q, k, v, o, gate, up, down
CASES = {
    "gpt2 attention and mlp": ("gpt2", {}, (("k8_reduce", "k26_reduce"), ("k36_reduce", "k43_reduce"))),
    "gpt2 all four": ("gpt2", {}, (("k8_reduce", "k26_reduce", "k36_reduce", "k43_reduce"),)),
    "llama q o gate down, v up": ("llama", {"k10_reduce": 2, "k37_reduce": 4}, (("k10_reduce", "k37_reduce", "k45_reduce", "k54_reduce"),
                                                                              ("k18_reduce", "k48_reduce"))),
}


@pytest.mark.parametrize("name", CASES)
def test_engines_compute_what_the_parts_computed(name: str, tmp_path) -> None:  # noqa: ANN001
    family, parts, engines = CASES[name]
    block, plain = _design(family, parts, ())
    _, shared = _design(family, parts, engines)
    kernel = shared.kernel
    merged = [t for t in kernel.body.block.ops if isinstance(t, TaskOp) and "engine" in t.attributes]
    assert merged and any(isinstance(op, ITensorFeedbackOp) for op in kernel.body.block.ops)
    assert shared.graph.topological_order() is None  # the engines close cycles
    assert len(shared.graph.tasks) < len(plain.graph.tasks)
    xs = block.example.make_inputs(0)
    want, got = plain.simulate(*xs), shared.simulate(*xs)
    for g, w, r in zip(got, want, block.example.reference(*xs), strict=True):
        np.testing.assert_array_equal(g, w)  # the same arithmetic, in another order of processes
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(np.abs(r).max()))
    if name == "gpt2 all four":
        return
    project = emit_project(shared, tmp_path / "hls")
    cpp = (project / "kernel.cpp").read_text()
    assert "#define SD_CSIM_FEEDBACK" in cpp
    assert sum(cpp.count(f"for (int ph = 0; ph < {n}; ++ph) {{  // the engine's phases, one body") for n in (2, 4)) == len(merged)
    for threaded in (False, True):
        for g, w in zip(run_csim(project, *xs, threaded=threaded, timeout=900), got, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * float(np.abs(w).max()))
    counted = csim_cycles(project, *xs, timeout=900)["makespan"]
    assert abs(counted - shared.sizing.makespan) <= 0.05 * shared.sizing.makespan, (counted, shared.sizing.makespan)


def test_a_matvec_with_fewer_parts_is_in_the_first_engines_only() -> None:
    _, design = _design("llama", {"k10_reduce": 2, "k37_reduce": 4}, (("k10_reduce", "k37_reduce"),))
    tasks = {t.sym_name.data: t for t in design.kernel.body.block.ops if isinstance(t, TaskOp)}
    assert [a.data for a in tasks["k10_reduce_engine_p1"].attributes["engine"].data] == ["k10_reduce_p1", "k37_reduce_p1"]
    assert "k37_reduce_p3" in tasks and "k10_reduce_engine_p3" not in tasks  # o's last parts keep their tasks


def test_plans_carry_engines_and_bad_groups_are_refused() -> None:
    plan = Plan(tile=16, splits={"a": 2}, engines=(("a", "b"),))
    assert Plan.from_json(plan.to_json()) == plan
    assert Plan.from_json({k: v for k, v in plan.to_json().items() if k != "engines"}).engines == ()  # older plans
    with pytest.raises(PlanError, match=r"engines \['a', 'a'\]: an engine computes two or more distinct matvecs"):
        Plan.from_json({**plan.to_json(), "engines": [["a", "a"]]})
    block = model_block("llama", "tiny", 16, 16, quant=SCHEME)
    kernel = kernel_of(block.lowered.program.module)
    with pytest.raises(EngineError, match="an engine computes two matvecs or more"):
        form_engines(kernel, [("k10_reduce",)])
    with pytest.raises(EngineError, match="k10_reduce has no parts .*split it first"):
        form_engines(kernel, [("k10_reduce", "k37_reduce")])
    with pytest.raises(PlanError, match="k10_reduce has no parts"):
        Plan(tile=16, engines=(("k10_reduce", "k37_reduce"),)).apply(kernel)
    lanes = {"k10_reduce_engine_p0": 128, "k10_reduce_engine_p1": 64}  # a plan names the engines' lanes
    Plan(tile=16, splits={"k10_reduce": 2, "k37_reduce": 2}, lanes=lanes, engines=(("k10_reduce", "k37_reduce"),)).apply(kernel)
    tasks = {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    assert {n: tasks[n].attributes["unroll"].value.data for n in lanes} == lanes


def test_an_engine_takes_the_most_lanes_of_its_parts() -> None:
    block = model_block("gpt2", "tiny", 16, 16, quant=SCHEME)
    kernel = kernel_of(block.lowered.program.module)
    Plan(tile=16, splits={"k8_reduce": 2, "k26_reduce": 2}, lanes={"k8_reduce_p0": 32, "k26_reduce_p0": 256}).apply(kernel)
    (engine, _) = form_engines(kernel, [("k8_reduce", "k26_reduce")])
    assert engine.attributes["unroll"].value.data == 256


def test_an_engine_is_charged_its_first_part_once_with_its_ports_and_multiplexers() -> None:
    _, plain = _design("gpt2", {}, ())
    _, merged = _design("gpt2", {}, (("k8_reduce", "k26_reduce"),))
    part = next(t for t in plain.kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data == "k8_reduce_p0")
    engine = next(t for t in merged.kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data == "k8_reduce_engine_p0")
    phases = engine_phases(engine)
    assert phases is not None and phases.count == 2
    assert list(phases.constants.values()) == [[96, 32]]  # the rows of c_attn's part (3 x 64 / 2) and of c_proj's (64 / 2)
    assert len(phases.ports) == 3 and list(phases.trips.values()) == [6]  # two inputs and the output; 96 rows in tiles of 16
    extra_ports = len(engine.body.block.args) - len(part.body.block.args)
    mux_luts = (16 * 8 + 256 * 4) * (2 - 1) / 2  # the activation's and the weights' beats, one extra phase, two bits a LUT6
    assert task_usage(engine) == task_usage(part) + U55C_COSTS.port.usage(extra_ports) + Usage(LUT=mux_luts)
    assert task_tensors(engine) == task_tensors(part)  # one set of tile arrays


def test_parts_that_are_not_one_body_are_refused() -> None:
    block = model_block("llama", "tiny", 16, 16, quant=SCHEME)
    kernel = kernel_of(block.lowered.program.module)
    split_tasks(kernel, {"k12_map": 2, "k39_map": 2})
    tasks = {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    assert not phases_alike([tasks["k12_map_p0"], tasks["k39_map_p0"]])  # the query's rotation beside o's residual add
    assert phases_alike([tasks["k12_map_p0"], tasks["k12_map_p1"]])  # two parts of one task: one body up to constants
    with pytest.raises(EngineError, match="k12_map_p0, k39_map_p0 are not one body up to integer constants and streams"):
        form_engines(kernel, [("k12_map", "k39_map")])
