"""Design-space exploration (lowering/dse.py): deterministic for a seed, never slower than where it
started, within the resource model, and a plan that builds the same design again (also through
`streamdsl compile --dse` / `--plan FILE`)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from xdsl.dialects import scf

import streamdsl as sd
from lowering.dse import MAX_LANES, Plan, PlanError, _channel_choice, _Splits, explore, load_plan
from lowering.resources import U55C_COSTS, U55C_DEVICE, Usage, task_usage
from lowering.timing import HBM_CHANNELS_ATTR, HBM_WORD_ATTR, kernel_graph
from streamdsl.dialects.dataflow import DmaLoadOp, TaskOp, kernel_of
from streamdsl.sim.timed import simulate_unbounded
from toolchain.cli import main as streamdsl
from toolchain.examples import ffn_block
from toolchain.models import plan_design


def _module():
    return ffn_block(256, 1024, 64).program.module.clone()


@functools.cache
def _lowered(family: str, size: str, max_context: int, tile: int):  # noqa: ANN202 - a ModuleOp
    from toolchain.models import model_block

    return model_block(family, size, max_context, tile, seed=0, quant=sd.quant.scheme("w4a8", 32)).lowered.program.module


def _block(family: str, size: str, max_context: int, tile: int):  # noqa: ANN202 - a ModuleOp
    """A fresh copy of the block's W4A8 (groups of 32) lowering, lowered once for the module's tests."""
    return _lowered(family, size, max_context, tile).clone()


def _makespan(module) -> int:  # noqa: ANN001
    return simulate_unbounded(kernel_graph(kernel_of(module))[0]).makespan


def test_exploration_is_deterministic_for_a_seed_and_never_slower() -> None:
    start = _makespan(_module())
    plans = [explore(lambda _: _module(), (64,), 250.0, seed=3) for _ in range(2)]
    assert plans[0] == plans[1]
    plan = plans[0]
    assert max(plan.lanes.values()) > 64 and all(1 <= v <= MAX_LANES for v in plan.lanes.values())  # the FFN's matvecs got lanes
    module = _module()
    plan.apply(kernel_of(module))
    assert _makespan(module) == plan.figures["unbounded_makespan_cycles"] < start
    tasks = [op for op in kernel_of(module).body.block.ops if isinstance(op, TaskOp)]
    compute = Usage.total(task_usage(t, U55C_COSTS) for t in tasks)
    assert not compute.over(U55C_DEVICE.total * 0.8)  # the default fill


@pytest.fixture(scope="module")
def tiny_llama() -> tuple[Plan, list[str]]:
    """The exploration of the tiny Llama W4A8 block (groups of 32, cache length 64) at 250 MHz:
    its plan and its progress messages. Without the HBM floor (`_hbm_floor`, tested on its own):
    this block's is 24 cycles, which no task's latency is within, so level 1a would trim nothing,
    and then the gate and up projections are never the one bound the twin steps below are about."""
    from lowering import dse

    said: list[str] = []
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(dse, "_hbm_floor", lambda kernel, table: 1 << 40)
        plan = explore(lambda _: _block("llama", "tiny", 64, 64), (64,), 250.0, progress=said.append)
    return plan, said


def test_the_lanes_level_tries_again_the_tasks_another_task_bounded(tiny_llama: tuple[Plan, list[str]]) -> None:
    """On the tiny Llama W4A8 block (gate and up projections multiplied: each bounds the product
    while the other is slow), a pass drops tasks that got faster but did not cut the makespan; the
    next pass, after the steps that followed, keeps steps among them."""
    _, said = tiny_llama
    passes, kept = 0, 0  # the passes after the first, and the steps they kept
    for message in said:
        if message.startswith("lanes: again"):
            passes += 1
        elif message.startswith("channels:"):  # a lanes run ends: its next pass is the next run's first
            passes = 0
        elif passes and message.startswith("lanes: k"):
            kept += 1
    assert kept > 0


def test_twin_projections_double_their_lanes_together(tiny_llama: tuple[Plan, list[str]]) -> None:
    """Gemma 3's and Llama's gate and up projections have one shape and stream side by side into
    one product: either alone at twice its lanes ends no sooner, so the lanes level doubles them
    in one step (on the tiny Llama W4A8 block, split in 2 parts: 64 to 128 lanes, 1,441 cycles;
    then each grows on its own, to 256 and 512). A task merely as slow that runs at another time is
    not its twin."""
    plan, said = tiny_llama
    joint = [m for m in said if " + " in m]
    assert joint and all(m.startswith("lanes: k45_reduce + k48_reduce (all parts) x") for m in joint), joint
    assert plan.splits["k45_reduce"] == plan.splits["k48_reduce"] == 2
    assert min(plan.lanes["k45_reduce_p0"], plan.lanes["k48_reduce_p0"]) > 64


def test_when_the_grown_design_does_not_fit_the_tasks_no_step_grew_give_up_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Level 3b: when the design with every lanes step does not fit once FIFO-sized, the tasks no
    step grew and no split cut are trimmed within `TRIM_SLACK` before the fit (level 4). On the
    tiny Llama W4A8 block, on a device of 55% of the U55C's DSPs, LUTs and FFs with the whole of it
    for the tasks' compute, without level 3b no prefix of the 23 steps fits (the design keeps its
    lanes and does not fit); with it the norms' maps and a dequantizing matmul give up half their
    lanes or more and the fit keeps all 23. (At 60% the fit without it kept 14 of 23 steps while the
    MACs were bound weighing the logic alone; weighing the memories too, all 23 fit there.)
    Its streams keep their beats: narrowed (narrow-streams), its FIFOs take so few LUTs that the
    grown design fits there without level 3b."""
    from dataclasses import replace

    from lowering import dse
    from lowering.resources import Device

    per = U55C_DEVICE.per_slr
    device = Device("small", 3, replace(per, DSP=per.DSP * 0.55, LUT=per.LUT * 0.55, FF=per.FF * 0.55), U55C_DEVICE.sll)

    def explored() -> tuple[Plan, list[str]]:
        said: list[str] = []
        plan = explore(lambda _: _block("llama", "tiny", 64, 64), (64,), 250.0, fill=1.0, device=device, progress=said.append)
        return plan, said

    monkeypatch.setattr(dse, "_hbm_floor", lambda kernel, table: 1 << 40)  # as in `tiny_llama`
    monkeypatch.setattr(dse, "narrow_streams", lambda *_: {})
    plan, said = explored()
    with monkeypatch.context() as patched:
        patched.setattr(dse, "_trim_grown", lambda design, tasks, start, *_: dict(start))
        without, _ = explored()
    assert plan.figures["lanes_steps_kept"] == plan.figures["lanes_steps"] == 23
    assert plan.figures["fits"] and not without.figures["fits"]
    first = said.index("lanes: the grown design does not fit once FIFO-sized; trimming the tasks no step grew")
    trims = [m for m in said[first:] if "gives up lanes" in m]
    grown = {m.split()[1] for m in said if re.match(r"lanes: \S+( \+ \S+)*( \(all parts\))? x\d+: ", m)}
    assert trims
    for message in trims:
        name, lanes, was = re.match(r"lanes: (\S+) gives up lanes .*: x(\d+) \(was x(\d+)\)", message).groups()
        assert name not in grown and "_p" not in name and plan.lanes[name] == int(lanes) < int(was), message
    runs = [int(found[1]) for m in said if (found := re.search(r"with its lanes: (\d+) cycles", m))]
    assert int(trims[-1].split(", ")[-1].split()[0]) <= max(runs) * (1 + dse.TRIM_SLACK)


def test_a_task_with_time_to_spare_gives_up_lanes() -> None:
    """The FFN's residual add reads one tile of the down projection's output every few hundred
    cycles: at 16 lanes it is still done with each tile before the next arrives, so the trim level
    (1a) takes it from 64 to 16 lanes while the block's makespan holds within the gain (0.2%),
    then further within `TRIM_SLACK` (test_a_slack_lets_the_critical_path_give_up_lanes_within_it)."""
    said: list[str] = []
    plan = explore(lambda _: _module(), (64,), 250.0, seed=0, progress=said.append)
    assert plan.lanes["residual"] < 64
    assert any(m.startswith("lanes: residual ") and "(was x64)" in m for m in said)
    at_64, trimmed = _module(), _module()
    plan.apply(kernel_of(trimmed))
    plan.apply(kernel_of(at_64))
    next(t for t in kernel_of(at_64).body.block.ops if isinstance(t, TaskOp) and t.sym_name.data == "residual").attributes.pop("unroll")
    assert _makespan(trimmed) <= _makespan(at_64) * 1.002


def test_a_slack_lets_the_critical_path_give_up_lanes_within_it() -> None:
    """Level 1a with a slack: after the tasks with time to spare, a task's lanes are halved while
    the block's makespan stays within the slack of the makespan before the level. On the FFN
    block at 250 MHz (26,818 cycles unbounded) no slack trims the residual add alone; 1% also
    takes the norm and the GELU, which sit on the critical path, and ends at 27,081 cycles, within
    26,818 x 1.01 = 27,086."""
    from lowering.dse import _CachedTiming, _Design, _trim_lanes
    from lowering.timing import U55C, unroll_lanes
    from lowering.transforms.split_matvecs import weight_chains

    def trimmed(slack: float) -> tuple[int, int, dict[str, int | None], list[str]]:
        kernel = kernel_of(_module())
        design = _Design(kernel, _CachedTiming(U55C.at_clock(250)))
        before, said = design.run(), []
        _trim_lanes(design, weight_chains(kernel), 0.002, said.append, slack=slack)
        return before, design.run(), {t.sym_name.data: unroll_lanes(t) for t in kernel.body.block.ops if isinstance(t, TaskOp)}, said

    before, after, lanes, said = trimmed(0.0)
    assert after == before == 26818 and lanes["residual"] == 16 and lanes["layernorm"] is None and lanes["gelu"] is None
    before, after, lanes, said = trimmed(0.01)
    assert before < after <= before * 1.01
    assert lanes["layernorm"] == 2 and lanes["gelu"] == 2  # at 1 lane the norm alone would take 1,598 cycles, past the floor
    assert any(m.startswith("lanes: gelu gives up lanes within the 1.0% slack") for m in said)


def test_the_blocks_hbm_floor_is_every_loaded_byte_at_the_whole_hbm_rate() -> None:
    """By hand: the FFN block (d 256, hidden 1,024, f32) loads x, attn, the norm's gain and bias
    (256 floats, 1,024 bytes each) and two 256 x 1,024 weights (1,048,576 bytes each): 2,101,248
    bytes = 16,809,984 bits over 32 channels of 425 bits a cycle at 250 MHz (425 GB/s): 1,237."""
    from lowering.dse import _hbm_floor
    from lowering.timing import U55C

    assert U55C.at_clock(250).hbm_bits_per_cycle == 425
    assert _hbm_floor(kernel_of(_module()), U55C.at_clock(250)) == -(-(4 * 1024 + 2 * 1048576) * 8 // (32 * 425)) == 1237


def test_no_trim_takes_a_task_past_the_blocks_hbm_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """With any slack (here the whole makespan), level 1a halves a task's lanes only while the
    task alone stays within the floor: at a floor of 300 cycles the norm stops at 16 lanes (218
    cycles; 8 would take 310) and the GELU at 8 (227; 4 would take 411), where the real floor
    (1,237) lets both go to 2."""
    from lowering import dse
    from lowering.dse import _CachedTiming, _Design, _trim_lanes
    from lowering.timing import U55C, unroll_lanes
    from lowering.transforms.split_matvecs import weight_chains

    monkeypatch.setattr(dse, "_hbm_floor", lambda kernel, table: 300)
    kernel = kernel_of(_module())
    design = _Design(kernel, _CachedTiming(U55C.at_clock(250)))
    _trim_lanes(design, weight_chains(kernel), 0.002, lambda _: None, slack=1.0)
    tasks = {t.sym_name.data: t for t in kernel.body.block.ops if isinstance(t, TaskOp)}
    assert {n: unroll_lanes(t) for n, t in tasks.items() if unroll_lanes(t)} == {"residual": 1, "layernorm": 16, "gelu": 8, "residual_1": 1}
    for name, lanes, own, halved in (("layernorm", 16, 218, 310), ("gelu", 8, 227, 411)):
        assert design.set_lanes(tasks[name], lanes) == own <= 300 < halved == design.set_lanes(tasks[name], lanes // 2)


def test_narrowed_split_judgement_counts_the_ports_the_design_will_have() -> None:
    """`_fits_sized(narrowed=True)` (`explore(narrow_splits=True)`) judges the design with the
    ports `narrow_ports` will give it. The FFN block narrows its norm's weight and bias to 128
    bits: each burst buffer 2 BRAM36 instead of 8, so 165 BRAM36 sized instead of 177 on a device
    of 60 BRAM36 an SLR (180 in all), where the 512-bit judgement refuses the design (no SLR
    placement holds its 8-BRAM36 buffers) and the narrowed one takes it."""
    from dataclasses import replace

    from lowering.dse import _CachedTiming, _Design, _fits_sized, _sized_usage
    from lowering.hbm_channels import allocate_kernel
    from lowering.resources import Device
    from lowering.timing import U55C

    timing = _CachedTiming(U55C.at_clock(250))
    small = Device("small", 3, replace(U55C_DEVICE.per_slr, BRAM36=60), U55C_DEVICE.sll)
    module = _module()
    allocate_kernel(kernel_of(module))
    assert not _fits_sized(module, timing, small) and _fits_sized(module, timing, small, narrowed=True)
    wide, narrowed = _Design(kernel_of(_module()), timing), _Design(kernel_of(module), timing)
    allocate_kernel(wide.kernel)
    wide.rebuild()
    assert narrowed.narrow_ports() == {"dma_load(ln_g)": 128, "dma_load(ln_b)": 128}
    assert (_sized_usage(wide, small).total.BRAM36, _sized_usage(narrowed, small).total.BRAM36) == (177, 165)


def test_narrowed_split_judgement_is_recorded_and_deterministic() -> None:
    plans = [explore(lambda _: _module(), (64,), 250.0, seed=3, narrow_splits=True) for _ in range(2)]
    assert plans[0] == plans[1] and plans[0].figures["narrow_splits"] is True
    assert explore(lambda _: _module(), (64,), 250.0, seed=3).figures["narrow_splits"] is False


def _gpt2_small():  # noqa: ANN202 - at cache 16 and tile 16 its attention's key transpose is one perfect nest
    return _block("gpt2", "small", 16, 16)


def test_a_flat_loops_plan_flattens_before_it_splits_and_builds_the_explored_design() -> None:
    """`explore(flat_loops=True)` judges GPT-2 small's block with its perfect nests flattened
    (`flatten-loop-nests`: at cache 16 and tile 16, attention's key transpose over heads x key
    tiles); the plan records it, survives JSON, and
    applying it to a fresh block flattens them again (before its splits: the weight chains keep
    their outer loop) and gives the makespan the exploration measured. An older plan without the
    key keeps the nests."""
    from lowering.transforms.flatten_loop_nests import perfect_inner_loop
    from lowering.transforms.split_matvecs import weight_chains

    def perfect_nests(module) -> int:  # noqa: ANN001 - outside the weight chains, which keep their nests
        kernel = kernel_of(module)
        keep = {name for chain in weight_chains(kernel).values() for name in chain}
        return sum(perfect_inner_loop(loop, keep) is not None for loop in kernel.walk() if isinstance(loop, scf.ForOp))

    plan = explore(lambda _: _gpt2_small(), (16,), 250.0, seed=0, flat_loops=True)
    assert plan.flat_loops and plan.figures["flat_loops"] is True
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    nested = Plan.from_json({k: v for k, v in plan.to_json().items() if k != "flat_loops"})
    assert not nested.flat_loops
    module = _gpt2_small()
    assert perfect_nests(module) == 1
    plan.apply(kernel_of(module))
    assert perfect_nests(module) == 0
    assert _makespan(module) == plan.figures["unbounded_makespan_cycles"]
    module = _gpt2_small()
    nested.apply(kernel_of(module))
    assert perfect_nests(module) == 1


def test_the_explored_design_is_flattened_at_the_end_only_where_that_is_faster_once_sized() -> None:
    """Level 6 (`_flatten_level`) flattens the explored design's perfect nests and keeps the copy
    only when its FIFO-sized makespan is shorter and it still fits. GPT-2 small's attention is off
    its critical path (37,053 cycles sized either way at cache 16, tile 16), so the plan stays
    nested and the level returns nothing for the design it built; the FFN block has no perfect
    nest. GPT-2 medium's design is kept flattened (tests/hls/test_dse_design.py)."""
    from lowering.dse import _CachedTiming, _Design, _flatten_level
    from lowering.timing import U55C

    said: list[str] = []
    plan = explore(lambda _: _gpt2_small(), (16,), 250.0, seed=0, progress=said.append)
    assert not plan.flat_loops and plan.figures["flat_loops"] is False
    (tried,) = [m for line in said if (m := re.fullmatch(r"loops: flattened, (\d+) cycles FIFO-sized against (\d+)", line))]
    assert tried[1] == tried[2]  # no faster: kept nested
    module = _gpt2_small()
    plan.apply(kernel_of(module))
    assert _flatten_level(_Design(kernel_of(module), _CachedTiming(U55C.at_clock(250))), U55C_DEVICE, 0.002, said.append) is None
    said.clear()
    explore(lambda _: _module(), (64,), 250.0, seed=0, progress=said.append)
    assert not any("loops" in line for line in said)


def test_plan_json_round_trip_and_errors(tmp_path: Path) -> None:
    plan = explore(lambda _: _module(), (64,), 250.0, seed=0)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()))
    assert load_plan(str(path)) == plan
    path.write_text(json.dumps({**plan.to_json(), "version": 99}))
    with pytest.raises(PlanError, match="plan.json: not a version-1 design plan"):
        load_plan(str(path))
    path.write_text("{")
    with pytest.raises(PlanError, match="plan.json:1: not JSON"):
        load_plan(str(path))
    with pytest.raises(PlanError, match="lanes in 1..1024"):
        Plan.from_json({**plan.to_json(), "lanes": {"x": 4096}})
    wrong = Plan(lanes={"no_such_task": 128})
    with pytest.raises(PlanError, match="tasks the design does not have: no_such_task"):
        wrong.apply(kernel_of(_module()))


def test_the_plan_records_and_applies_its_narrowed_ports() -> None:
    """The exploration narrows the loads that keep pace (lowering.hbm_channels.narrow_ports) after
    its last lanes step; the plan lists them and applying it writes the same words, at the same
    unbounded makespan; a word outside 128/256 or a DMA the design lacks is refused."""
    plan = explore(lambda _: _module(), (64,), 250.0, seed=0)
    assert plan.ports and set(plan.ports.values()) <= {128, 256}
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))).ports == plan.ports
    module = _module()
    plan.apply(kernel_of(module))
    words = {op.source.name_hint: op.attributes[HBM_WORD_ATTR].value.data
             for op in kernel_of(module).body.block.ops if isinstance(op, DmaLoadOp) and HBM_WORD_ATTR in op.attributes}
    assert len(words) == len(plan.ports)
    assert _makespan(module) == plan.figures["unbounded_makespan_cycles"]
    with pytest.raises(PlanError, match="a narrowed port's word is one of 128, 256 bits"):
        Plan.from_json({**plan.to_json(), "ports": {"dma_load(x)": 64}})
    with pytest.raises(PlanError, match="narrows ports of DMAs the design does not have: dma_load[(]nothing[)]"):
        Plan(ports={"dma_load(nothing)": 128}).apply(kernel_of(_module()))


def test_plan_applies_its_clock_lanes_and_channels() -> None:
    plan = Plan(tile=64, clock_mhz=250.0, hbm_striping=False, lanes={})
    module = _module()
    kernel = kernel_of(module)
    plan.apply(kernel)
    loads = [op for op in kernel.body.block.ops if isinstance(op, DmaLoadOp)]
    assert all(len(op.attributes[HBM_CHANNELS_ATTR].get_values()) == 1 for op in loads)  # no striping
    design = sd.compile(module)
    assert design.kernel.attributes["clock_mhz"].value.data == 250.0


def test_plan_design_explores_a_copy_and_builds_what_the_plan_builds() -> None:
    """`plan_design` (the one path of `--dse`, `--plan`, `planned_block` and roofline.py): without a
    plan it explores (as `explore` does) and leaves the module exactly as applying the plan to a
    fresh one does (`--plan FILE`)."""
    explored = _module()
    plan = plan_design(explored, 64, clock_mhz=250.0, seed=3)
    assert plan == explore(lambda _: _module(), (64,), 250.0, seed=3)
    rebuilt = _module()
    assert plan_design(rebuilt, 64, plan) is plan
    assert str(explored) == str(rebuilt) != str(_module())


@pytest.mark.slow
def test_cli_plan_round_trip(tmp_path: Path) -> None:
    """`--dse` writes plan.json; `--plan` builds the same design: same plan, same cycles."""
    args = ["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "32"]
    assert streamdsl([*args, "--dse", "--clock", "250", "--out", str(tmp_path / "a")]) == 0
    first = json.loads((tmp_path / "a" / "report.json").read_text())
    assert first["plan"] == json.loads((tmp_path / "a" / "plan.json").read_text())
    assert first["estimate"]["clock_mhz"] == 250.0
    assert streamdsl([*args, "--plan", str(tmp_path / "a" / "plan.json"), "--out", str(tmp_path / "b")]) == 0
    second = json.loads((tmp_path / "b" / "report.json").read_text())
    assert second["plan"] == first["plan"]
    assert second["timed_simulation"] == first["timed_simulation"]
    assert second["fifo_sizing"]["total_bits"] == first["fifo_sizing"]["total_bits"]


def test_cli_refuses_plans_where_they_do_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert streamdsl(["compile", "ffn-block", "--dse", "--out", str(tmp_path / "x")]) == 2
    assert "--dse, --plan and --clock apply to model families" in capsys.readouterr().err
    assert streamdsl(["compile", "gpt2", "--dse", "--plan", "p.json", "--out", str(tmp_path / "y")]) == 2
    assert "not both" in capsys.readouterr().err
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(Plan(clock_mhz=250.0).to_json()))
    assert streamdsl(["compile", "gpt2", "--plan", str(plan), "--clock", "300", "--out", str(tmp_path / "z")]) == 2
    assert "--clock 300 and the plan's clock 250 MHz" in capsys.readouterr().err  # the plan's clock was used silently
    assert streamdsl(["compile", "gpt2", "--plan", str(tmp_path / "missing.json"), "--out", str(tmp_path / "z")]) == 2
    assert "missing.json: cannot read the plan" in capsys.readouterr().err
    assert streamdsl(["compile", "gpt2", "--narrow-splits", "--out", str(tmp_path / "n")]) == 2
    assert "--narrow-splits is a choice of the exploration: give it with --dse" in capsys.readouterr().err
    assert streamdsl(["compile", "gpt2", "--share-hbm-ports", "--out", str(tmp_path / "s")]) == 2
    assert "--share-hbm-ports is a choice of the exploration: give it with --dse" in capsys.readouterr().err
    assert streamdsl(["compile", "gpt2", "--flatten-loops", "--out", str(tmp_path / "f")]) == 2
    assert "--flatten-loops is a choice of the exploration: give it with --dse" in capsys.readouterr().err
    assert streamdsl(["compile", "gpt2", "--engines", "--out", str(tmp_path / "e")]) == 2
    assert "--engines is a choice of the exploration: give it with --dse" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "xyznsf")  # refused before any work: nothing written


def test_cli_dse_with_narrowed_splits_shared_ports_and_flat_loops_records_them(tmp_path: Path) -> None:
    args = ["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "16", "--dse", "--narrow-splits", "--share-hbm-ports",
            "--flatten-loops", "--out", str(tmp_path)]
    assert streamdsl(args) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["figures"]["narrow_splits"] is True and plan["figures"]["shared_ports"] is True
    assert plan["flat_loops"] is True
    assert plan["shared_ports"] == []  # the tiny block's weight slices are smaller than an m_axi buffer: none shared


def test_engines_take_the_ith_matvec_of_each_unit_in_program_order() -> None:
    """Llama's units (matvecs reading one activation) in program order: (q, k, v), (o), (gate,
    up), (down); the largest of each goes to the first engine, the next to the second (v has no
    partner), at every depth of their chains whose tasks are one body: the contractions, the
    scales but down's (another loop nest), the residual adds after o and down."""
    from lowering.dse import _CachedTiming, _Splits
    from lowering.timing import U55C

    space = _Splits(_block("llama", "tiny", 16, 16), _CachedTiming(U55C.at_clock(250.0)), 0.8, engines=True)
    q, k, v, o, gate, up, down = "k10_reduce", "k14_reduce", "k18_reduce", "k37_reduce", "k45_reduce", "k48_reduce", "k54_reduce"
    assert sorted(space.units) == sorted([(q, k, v), (o,), (gate, up), (down,)])
    assert space.engines == [[q, o, gate, down], ["k11_matmul", "k38_matmul", "k46_matmul"], ["k39_map", "k56_map"],
                             [k, up], ["k15_matmul", "k49_matmul"]]


def test_cli_dse_with_engines_builds_the_engines_its_plan_names(tmp_path: Path) -> None:
    """GPT-2's four weight matvecs run one after the other: their parts share engines, the plan
    names them, and `--plan` builds that design again; the verification (functional simulation
    against torch, timed simulation) runs on it."""
    args = ["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "16", "--tile", "16", "--quant", "w4a8", "--group-size", "32",
            "--dse", "--engines"]
    assert streamdsl([*args, "--out", str(tmp_path / "a")]) == 0
    plan = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert plan["figures"]["engines"] is True
    assert ["k8_reduce", "k26_reduce", "k36_reduce", "k43_reduce"] in plan["engines"]  # the four contractions, part by part
    assert '"k8_reduce_engine_p0"' in (tmp_path / "a" / "program.mlir").read_text()
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert streamdsl(["-q", "compile", "gpt2", "--size", "tiny", "--max-context", "16", "--quant", "w4a8", "--group-size", "32",
                      "--plan", str(tmp_path / "a" / "plan.json"), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "report.json").read_text())
    cycles = "cycles_per_block_invocation"
    assert again["model_figures"][cycles] == report["model_figures"][cycles] == plan["figures"]["unbounded_makespan_cycles"]


@pytest.mark.parametrize(("steps", "fitting", "want", "probes"), [
    (9, 9, 9, [9]),  # the whole exploration fits: one sized design judged
    (9, 5, 5, [9, 4, 6, 5]),  # bisection: 4 fits, 6 does not, 5 fits
    (9, 0, 0, [9, 4, 2, 1]),  # only the starting lanes (or nothing) fit
    (0, 0, 0, [0]),
])
def test_the_fit_keeps_the_longest_prefix_of_lanes_steps_that_fits(steps: int, fitting: int, want: int, probes: list[int]) -> None:
    """Hand-computed: with designs fitting up to `fitting` steps of the exploration, the fit keeps
    exactly that many, judging these prefixes in this order."""
    from lowering.dse import longest_prefix

    seen: list[int] = []

    def fits(k: int) -> bool:
        seen.append(k)
        return k <= fitting

    assert longest_prefix(steps, fits) == want
    assert seen == probes


COSTS = [3, 3, 5, 1, 1, 2]  # each lanes step's resources


@pytest.mark.parametrize(("budget", "unplaced", "slower", "want"), [
    # by hand: prefix {0, 1} uses 6 ({0, 1, 2}: 11); then 2 (11) does not fit, 3 (7) does, 4 (8)
    # fits but is not faster, 5 (9) does not fit
    (8, set(), {4}, (0, 1, 3)),
    # sets holding step 1 have no SLR placement: the prefix is halved to {0}; 1 is not placed,
    # 2 fits (8), 3, 4 and 5 would take it to 9 or 10
    (8, {1}, set(), (0, 2)),
    (2, set(), set(), (3, 4)),  # no step of the prefix fits, the two small ones do
    (-1, set(), set(), None),  # not even the starting lanes fit
])
def test_the_fit_keeps_the_prefix_then_each_later_step_that_fits_on_its_own(budget: int, unplaced: set, slower: set,
                                                                             want: tuple | None) -> None:
    """Hand-computed: lanes steps of these resource COSTS, a design fits within `budget`."""
    from lowering.dse import fitting_steps

    within = lambda kept: sum(COSTS[i] for i in kept) <= budget  # noqa: E731
    placed = lambda kept: not unplaced & set(kept)  # noqa: E731
    faster = lambda kept, trial: trial[-1] not in slower  # noqa: E731
    assert fitting_steps(len(COSTS), within, placed, faster) == want


class _SplitSpace:
    """Chains a (8 output tiles), b (6) and c (4); a design's makespan 800/a + 600/b + 100/c cycles."""

    trips = {"a": 8, "b": 6, "c": 4}

    divisor, next_divisor = _Splits.divisor, _Splits.next_divisor  # the space's own, of `trips`

    chains, module, fill = dict.fromkeys(trips), None, 0.8
    largest_first = ["a", "b", "c"]  # by their weights: 800, 600, 100
    units = [("a",), ("b",), ("c",)]  # none reads what another reads

    def trial(self, parts):  # noqa: ANN001, ANN202 - the split module is its parts here
        return 800 // parts["a"] + 600 // parts["b"] + 100 // parts["c"], dict(parts)

    def unsplit(self):  # noqa: ANN202
        return 1500, dict.fromkeys(self.trips, 1)

    def critical_unit(self, parts):  # noqa: ANN001, ANN202 - none: the trade raises the most split chains alone
        return ()


@pytest.mark.parametrize(("most", "want"), [
    # by hand: 2 each (750 cycles, 6 parts), then up to 4 (a 4, b 3, c 4: 425, 11 parts); up to 8
    # (a 8, b 6, c 4: 225) has 18 parts and does not fit: the uniform step stops at 4. Chain by
    # chain: a to 8 (325) and b to 6 (325) do not fit (15, 14 parts); a to 2 (625), b to 1 (825),
    # c to 2 (450) are slower: 425. Then the trade: a (with c, the most parts) to 8, {8,3,4} 325, 15
    # parts; halved to fit: c -> {8,3,2} 350 (13 parts), c -> {8,3,1} 400 (12): faster than 425, kept
    (12, {"a": 8, "b": 3, "c": 1}),
    (99, {"a": 8, "b": 6, "c": 4}),  # everything fits: the fastest, 225
])
def test_split_counts_grow_only_while_the_sized_design_fits(most: int, want: dict) -> None:
    from lowering.dse import _explore_splits

    parts, module = _explore_splits(_SplitSpace(), 20, 0.002, lambda _: None, lambda m: sum(m.values()) <= most)
    assert parts == module == want


class _SiblingSpace(_SplitSpace):
    """Chains a and b (8 output tiles each) read one activation and feed one product (a gate and
    an up projection): the design takes max(800/a, 800/b) cycles; c (4 tiles) costs parts, no time."""

    trips = {"a": 8, "b": 8, "c": 4}
    chains, largest_first, units = dict.fromkeys(trips), ["a", "b", "c"], [("a", "b"), ("c",)]

    def trial(self, parts):  # noqa: ANN001, ANN202
        return max(800 // parts["a"], 800 // parts["b"]), dict(parts)

    def unsplit(self):  # noqa: ANN202
        return 800, dict.fromkeys(self.trips, 1)


def test_chains_that_run_side_by_side_split_together() -> None:
    """By hand, within 18 parts: every chain in 2 parts (400 cycles), then 4 (200 cycles, 12 parts);
    8 would take 20. Either of a and b alone in 8 parts leaves the other at 200 cycles, so one at a
    time the level stops at 200; c gives up parts at no cost (to 2: 10 parts), then a and b double
    together (18 parts, 100 cycles), and c goes down to 1."""
    from lowering.dse import _explore_splits

    parts, module = _explore_splits(_SiblingSpace(), 20, 0.002, lambda _: None, lambda m: sum(m.values()) <= 18)
    assert parts == module == {"a": 8, "b": 8, "c": 1}


@pytest.mark.parametrize(("most", "want", "judged"), [
    # by hand: {8,6,1} 15 parts; halving b -> {8,3,1} 100 + 300, a -> {4,6,1} 300 + 100: a tie, the
    # smaller chain (b) first; then b -> {8,1,1} 800, a -> {4,3,1} 500: a; {4,3,1} is 8 parts
    (9, {"a": 4, "b": 3, "c": 1}, [{"a": 8, "b": 6, "c": 1}, {"a": 8, "b": 3, "c": 1}, {"a": 4, "b": 3, "c": 1}]),
    (15, {"a": 8, "b": 6, "c": 1}, [{"a": 8, "b": 6, "c": 1}]),  # fits as explored: kept
    # nothing fits: halved down to one part each (b: 6 -> 3 -> 1, its largest divisor not above 1), then stops
    (0, {"a": 1, "b": 1, "c": 1}, None),
])
def test_splits_are_halved_one_at_a_time_until_the_sized_design_fits(most: int, want: dict, judged: list | None) -> None:
    """Hand-computed: a design fits when it has at most `most` parts in all; each step halves the
    chain whose halving leaves the shortest makespan (ties: the smaller chain) and judges the fit again."""
    from lowering.dse import back_off_splits

    seen: list[dict[str, int]] = []

    def fits(module) -> bool:  # noqa: ANN001
        seen.append(module)
        return sum(module.values()) <= most

    start = {"a": 8, "b": 6, "c": 1}
    parts, module, _ = back_off_splits(_SplitSpace(), dict(start), dict(start), fits, lambda _: None)
    assert parts == module == want
    if judged is not None:
        assert seen == judged


def test_a_halving_that_costs_nothing_ends_the_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand-computed, a makespan of max(800/a, 600/b, 100/c) (c off the critical path): from
    {8,6,2} (100 cycles, 16 parts; at most 15 fit) the smallest chain is tried first, c -> {8,6,1}
    still takes 100 cycles, so neither b nor a is tried; {8,6,1} fits."""
    from lowering.dse import back_off_splits

    monkeypatch.setenv("STREAMDSL_JOBS", "1")  # one process: every trial is seen here
    tried: list[dict[str, int]] = []

    class Paced(_SplitSpace):
        def trial(self, parts):  # noqa: ANN001, ANN202
            tried.append(dict(parts))
            return max(800 // parts["a"], 600 // parts["b"], 100 // parts["c"]), dict(parts)

    start = {"a": 8, "b": 6, "c": 2}
    parts, _, makespan = back_off_splits(Paced(), dict(start), dict(start), lambda m: sum(m.values()) <= 15, lambda _: None, 100)
    assert (parts, makespan, tried) == ({"a": 8, "b": 6, "c": 1}, 100, [{"a": 8, "b": 6, "c": 1}])


@pytest.mark.parametrize(("most", "want"), [
    # by hand, from {4,3,4} (425 cycles): the chains with the most parts (a and c, 4) one count up: a
    # to 8, c has none above 4; {8,3,4} 325 cycles, 15 parts. Backed off to fit 13: c -> {8,3,2}
    # 350, b -> {8,1,4} 725, a -> {4,3,4} 425: c; 13 parts fit, 350 < 425: traded
    (13, {"a": 8, "b": 3, "c": 2}),
    # to fit 11: then c -> {8,3,1} 400 (12 parts), then a -> {4,3,1} 500 fits, but a is back at 4: kept as it was
    (11, {"a": 4, "b": 3, "c": 4}),
])  # fmt: skip
def test_the_most_split_chains_trade_parts_with_the_others(most: int, want: dict) -> None:
    from lowering.dse import _traded_parts

    start = {"a": 4, "b": 3, "c": 4}
    said: list[str] = []
    parts, module = _traded_parts(_SplitSpace(), dict(start), dict(start), 425, 0.002, said.append, lambda m: sum(m.values()) <= most)
    assert parts == module == want
    assert said[-1] == ("splits: traded, a in 8, c in 2 parts: 350 cycles" if want != start
                        else "splits: a in more parts, backed off to fit (c in 1): 500 cycles, not kept")


def test_the_trade_raises_the_unit_on_the_critical_path_too() -> None:
    """Chains a and b run side by side (8 output tiles each), then c (8): max(800/a, 800/b) + 400/c
    cycles. By hand, from {4,4,8} (250 cycles, 16 parts; at most 20 fit): c has the most parts but
    no count above 8 divides its tiles, so the most split chains alone trade nothing; a and b hold
    200 cycles of the path, c 50: both to 8, {8,8,8} 150 cycles, 24 parts. Backed off: c -> {8,8,4}
    200, a -> {4,8,8} 250, b -> {8,4,8} 250: c; 20 parts fit, 200 < 250: traded."""
    from lowering.dse import _traded_parts

    class Paired(_SplitSpace):
        trips = {"a": 8, "b": 8, "c": 8}
        chains, largest_first, units = dict.fromkeys(trips), ["a", "b", "c"], [("a", "b"), ("c",)]

        def trial(self, parts):  # noqa: ANN001, ANN202
            return max(800 // parts["a"], 800 // parts["b"]) + 400 // parts["c"], dict(parts)

        def critical_unit(self, parts):  # noqa: ANN001, ANN202 - the unit of the longest term
            return ("a", "b") if max(800 // parts["a"], 800 // parts["b"]) >= 400 // parts["c"] else ("c",)

    start = {"a": 4, "b": 4, "c": 8}
    said: list[str] = []
    parts, module = _traded_parts(Paired(), dict(start), dict(start), 250, 0.002, said.append, lambda m: sum(m.values()) <= 20)
    assert parts == module == {"a": 8, "b": 8, "c": 4}
    assert said[-1] == "splits: traded, a in 8, b in 8, c in 4 parts: 200 cycles"


def test_a_trade_the_back_off_cannot_make_fit_is_not_kept() -> None:
    """From {4,3,4} (425 cycles) a to 8 is faster (325), but no halving of it is a design (every
    other trial exceeds the share): the back-off ends with nothing to try, still over the device,
    so the trade is not kept, judged by the fit it had already checked (one check, not two)."""
    from lowering.dse import _traded_parts

    class Stuck(_SplitSpace):
        def trial(self, parts):  # noqa: ANN001, ANN202
            return super().trial(parts) if parts == {"a": 8, "b": 3, "c": 4} else None

    checks: list[dict[str, int]] = []
    start = {"a": 4, "b": 3, "c": 4}
    parts, module = _traded_parts(Stuck(), dict(start), dict(start), 425, 0.002, lambda _: None,
                                  lambda m: checks.append(m) is not None)
    assert parts == module == start and checks == [{"a": 8, "b": 3, "c": 4}]


def test_the_explored_plan_fits_once_its_fifos_are_sized() -> None:
    """The plan's design, FIFO-sized by sd.compile (not the exploration's own sizing), fits the
    U55C by the resource model, in total and placed on the SLRs."""
    from lowering.resources import kernel_usage
    from lowering.slr import kernel_wires, place

    plan = explore(lambda _: _module(), (64,), 250.0, seed=3)
    assert plan.figures["fits"] and plan.figures["lanes_steps_kept"] == plan.figures["lanes_steps"]
    module = _module()
    plan.apply(kernel_of(module))
    design = sd.compile(module)
    usage = kernel_usage(design.kernel, design.graph, design.depths)
    assert not usage.total.over(U55C_DEVICE.total)
    assert usage.total.share(U55C_DEVICE.total) == pytest.approx(plan.figures["busiest_share"], abs=1e-4)
    place(usage, kernel_wires(design.kernel, design.graph))  # raises SlrError when an SLR over-fills


def test_a_plan_that_cannot_fit_at_any_lanes_keeps_its_lanes_and_says_so() -> None:
    """On a device of 50 BRAM36 an SLR (150 in all) the FFN block's sized design, 165 BRAM36 or more at
    any lanes, does not fit: backing off lanes would not help, so the plan keeps them (as on the
    U55C) and says it does not fit (the driver then reports the misfit)."""
    from dataclasses import replace

    from lowering.resources import Device

    small = Device("small", 3, replace(U55C_DEVICE.per_slr, BRAM36=50), U55C_DEVICE.sll)
    plan = explore(lambda _: _module(), (64,), 250.0, seed=3, device=small)
    u55c = explore(lambda _: _module(), (64,), 250.0, seed=3)
    assert plan.figures["fits"] is False and plan.lanes == u55c.lanes and plan.figures["lanes_steps"] > 0
    assert plan.figures["lanes_steps_kept"] == plan.figures["lanes_steps"]


def test_a_task_without_positive_lanes_takes_the_tables_lanes_everywhere() -> None:
    """`unroll = -4` means no lanes of its own to the timing model (its default lanes); the
    exploration and the resource model read it the same way, so the plan names no such lanes and
    round-trips through plan.json."""
    from xdsl.dialects.builtin import IntegerAttr, i64

    module = _module()
    task = next(op for op in kernel_of(module).body.block.ops if isinstance(op, TaskOp))
    assert task_usage(task, U55C_COSTS) == (default := task_usage(task, U55C_COSTS, 64))
    task.attributes["unroll"] = IntegerAttr(-4, i64)
    assert task_usage(task, U55C_COSTS) == default
    plan = explore(lambda _: module.clone(), (64,), 250.0, seed=3)
    assert all(v >= 1 for v in plan.lanes.values())
    assert Plan.from_json(plan.to_json()) == plan


def test_lanes_are_explored_under_both_channel_allocations_and_the_faster_kept() -> None:
    """The allocation decides which tasks their weight stream bounds (their lanes cannot grow), so
    level 2 runs under each; the plan is the faster of the two, and applied to a fresh block it
    times (unbounded, the timed simulator) at what its allocation's run reported."""
    said: list[str] = []
    plan = explore(lambda _: _module(), (64,), 250.0, seed=3, progress=said.append)
    runs = {("striped" in m): int(m.rsplit(": ", 1)[1].split()[0]) for m in said if "with its lanes" in m}
    assert set(runs) == {True, False}
    assert runs[plan.hbm_striping] == min(runs.values())
    module = _module()
    plan.apply(kernel_of(module))
    assert _makespan(module) == min(runs.values()) == plan.figures["unbounded_makespan_cycles"]


@pytest.mark.parametrize(("rows", "want"), [
    ([(18214, 11825, "striped"), (12453, 12453, "one each")], "striped"),  # Qwen2.5: 5% faster unbounded
    ([(121410, 121410, "striped"), (168510, 121333, "one each")], "striped"),  # TinyLlama once: a near-tie, sized
    ([(14118, 14118, "striped"), (16133, 16133, "one each")], "striped"),
    ([(1000, 1000, "striped"), (990, 1005, "one each")], "one each"),  # within 1%: the sized figure decides
    ([(1000, 1000, "striped"), (990, 1011, "one each")], "striped"),
])
def test_the_channel_choice_goes_by_the_unbounded_makespan_and_breaks_near_ties_sized(rows: list, want: str) -> None:
    assert _channel_choice(rows)[2] == want


def test_a_split_trial_judges_the_graph_sd_compile_builds() -> None:
    """The exploration times and sizes the design its plan builds: a split trial's graph (every
    node and FIFO) is the one sd.compile makes of the same splits on a fresh block, the parts'
    converters of one shared input merged as insert-converters merges them (before, each part kept
    its own: GPT-2 tiny split in 2 had 245 nodes judged against 223 built)."""
    from lowering.dse import _CachedTiming, _split_trial
    from lowering.hbm_channels import allocate_kernel
    from lowering.timing import U55C
    from lowering.transforms.split_matvecs import split_tasks, splittable
    from streamdsl import quant
    from streamdsl.scalars import specialise
    from toolchain.models import model_block

    module = specialise(model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w4a8", 16)).lowered.program.module)
    splits = {t.sym_name.data: 2 for t in kernel_of(module).body.block.ops if isinstance(t, TaskOp) and splittable(t, 2)}
    timing = _CachedTiming(U55C)
    _split_trial(module, dict.fromkeys(list(splits)[:3], 2), (), timing, U55C_DEVICE.total)  # fills the cache first
    makespan, trial = _split_trial(module, splits, (), timing, U55C_DEVICE.total)
    built = module.clone()
    split_tasks(kernel_of(built), splits)
    allocate_kernel(kernel_of(built))
    design = sd.compile(built)

    def shape(graph) -> tuple:  # noqa: ANN001
        return sorted(graph.tasks), sorted((e.src, e.dst, e.token_bits, e.beats) for e in graph.edges)

    judged, _ = kernel_graph(kernel_of(trial))
    assert len(splits) > 5 and shape(judged) == shape(design.graph)
    # schedules the cache shares between copies (by structure, not SSA identity) are the table's own
    assert makespan == simulate_unbounded(judged).makespan == simulate_unbounded(design.graph).makespan


def test_a_lanes_trial_is_counted_at_the_lanes_it_asks_for() -> None:
    """The lanes level asks whether a task at twice its lanes fits: `task_usage` reads the task's
    own `unroll` (its lanes argument is only the default), so the exploration counts the task with
    the trial's lanes set on it, and leaves the task as it was."""
    from xdsl.dialects.builtin import IntegerAttr, i64

    from lowering.dse import _CachedTiming
    from lowering.timing import U55C

    module = _module()
    task = max((op for op in kernel_of(module).body.block.ops if isinstance(op, TaskOp)), key=lambda t: task_usage(t).DSP)
    task.attributes["unroll"] = IntegerAttr(16, i64)
    at_16 = task_usage(task)
    wider = task.clone()
    wider.attributes["unroll"] = IntegerAttr(64, i64)
    timing = _CachedTiming(U55C)
    assert timing.usage(task, 64) == task_usage(wider) != at_16 and task_usage(wider).DSP > at_16.DSP
    assert timing.usage(task) == at_16 and task.attributes["unroll"] == IntegerAttr(16, i64)
    del task.attributes["unroll"]
    assert timing.usage(task, 16) == at_16 and "unroll" not in task.attributes


@pytest.mark.parametrize(("slow", "want"), [({}, None), ({"k39_map": 1}, {"k8_reduce": 3, "k36_reduce": 1})])
def test_at_the_grown_lanes_a_chain_gives_up_parts_its_reader_cannot_use(slow: dict, want: dict | None) -> None:
    """Level 2b on GPT-2 tiny W4A8 with c_attn in 3 parts and c_fc in 2: at the starting lanes
    each halving is slower (none kept); with the GELU after c_fc at 1 lane, the GELU paces c_fc's
    output and c_fc in one part holds the makespan (the unbounded run: 1,767 cycles, against
    1,774 in 2 parts), so it is kept, and the module returned is the one with those parts."""
    from lowering.dse import _CachedTiming, _Design, _fewer_parts, _Splits, set_clock
    from lowering.hbm_channels import allocate_kernel
    from lowering.timing import U55C, unroll_lanes
    from streamdsl.scalars import specialise

    module = specialise(_block("gpt2", "tiny", 16, 64))
    timing = _CachedTiming(U55C.at_clock(250))
    space = _Splits(module, timing, 1.0)
    parts = {"k8_reduce": 3, "k36_reduce": 2}
    kernel = kernel_of(space.trial(parts)[1])
    set_clock(kernel, 250)
    allocate_kernel(kernel, striping=True)
    design = _Design(kernel, timing)
    lanes = {**{t.sym_name.data: v for t in kernel.body.block.ops if isinstance(t, TaskOp) and (v := unroll_lanes(t))}, **slow}
    design.apply_lanes(lanes)
    before = design.run()
    said: list[str] = []
    fewer = _fewer_parts(space, parts, design, lanes, True, 250, said.append)
    if want is None:
        assert fewer is None and not said
        return
    assert fewer[0] == want and said == [f"splits: at the grown lanes, k36_reduce in 1 parts: 1767 cycles (was {before})"]
    assert before == 1774
    names = {t.sym_name.data for t in kernel_of(fewer[1]).body.block.ops if isinstance(t, TaskOp)}
    assert "k36_reduce" in names and "k36_reduce_p0" not in names and {"k8_reduce_p0", "k8_reduce_p2"} <= names


def test_a_split_trial_is_checked_against_the_device_explore_was_given() -> None:
    """GPT-2 tiny W4A8, c_attn in 3 parts: its compute fits the U55C, not a device of a
    thousandth of it (the split level used to check the U55C whatever `explore`'s device)."""
    from lowering.dse import _CachedTiming, _Splits
    from lowering.resources import U55C_DEVICE, Device
    from lowering.timing import U55C
    from streamdsl.scalars import specialise

    module = specialise(_block("gpt2", "tiny", 16, 64))
    timing = _CachedTiming(U55C.at_clock(250))
    tiny = Device("a thousandth of the U55C", 3, U55C_DEVICE.per_slr * 0.001, U55C_DEVICE.sll)
    assert _Splits(module, timing, 1.0).trial({"k8_reduce": 3}) is not None
    assert _Splits(module, timing, 1.0, device=tiny).trial({"k8_reduce": 3}) is None


def test_the_split_level_takes_the_largest_weights_first() -> None:
    """Llama small W4A8 (hidden 768, MLP 3,072, 4 KV heads of 64; weight tiles 64 rows x 32
    columns): gate and up (48 trips x 24 tiles) and down (12 x 96) stream 1,152 tiles each, the
    query and output projections 12 x 24 = 288, key and value 4 x 24 = 96. By outer trips the down
    projection came after the query projection (12 trips each, by name)."""
    from lowering.dse import _CachedTiming, _Splits
    from lowering.timing import U55C
    from streamdsl.scalars import specialise

    module = specialise(_block("llama", "small", 16, 64))
    space = _Splits(module, _CachedTiming(U55C.at_clock(250)), 1.0)
    assert space.trips == {"k45_reduce": 48, "k48_reduce": 48, "k54_reduce": 12, "k10_reduce": 12, "k37_reduce": 12,
                           "k14_reduce": 4, "k18_reduce": 4}
    assert space.largest_first == ["k45_reduce", "k48_reduce", "k54_reduce", "k10_reduce", "k37_reduce", "k14_reduce", "k18_reduce"]
    # gate and up read the normed activation, query, key and value the other: each set steps together too
    assert space.units == [("k45_reduce", "k48_reduce"), ("k54_reduce",), ("k10_reduce", "k14_reduce", "k18_reduce"), ("k37_reduce",)]


@pytest.mark.parametrize(("entries", "want"), [
    # (unbounded, FIFO-sized, fits) of the design as it was, then with the attention in parts
    ([(13_330, 12_931, True), (13_190, 17_120, True)], 0),  # GPT-2 medium's: faster unbounded, slower sized
    ([(13_330, 12_931, True), (13_190, 12_800, True)], 1),
    ([(13_330, 12_931, False), (13_400, 14_000, True)], 1),  # the one that fits first
    ([(13_330, None, True), (13_400, 14_000, True)], 1),  # no sizing (a deadlock) loses
])  # fmt: skip
def test_level_2c_keeps_the_finished_design_that_fits_and_is_faster_once_sized(entries: list, want: int,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Level 2c finishes the design as it was and the one with the attention in parts by heads,
    and keeps one: it compared their unbounded makespans, which a candidate wins where its FIFOs,
    sized within the memory left, cannot prefetch (GPT-2 medium's: 13,190 unbounded, 17,120 sized)."""
    from types import SimpleNamespace

    from lowering import dse

    designs = [object() for _ in entries]
    sized = {id(d): s for d, (_, s, _) in zip(designs, entries)}
    monkeypatch.setattr(dse, "_sizing", lambda design, device: SimpleNamespace(makespan=sized[id(design)]))
    finished = [(unbounded, {}, {"fits": fits}, {}, None, d, {}) for d, (unbounded, _, fits) in zip(designs, entries)]
    said: list[str] = []
    assert dse._fastest_finished(finished, U55C_DEVICE, said.append) is finished[want]
    assert len(said) == 2 and said[0].startswith("attention: as it was: ") and said[1].startswith("attention: in parts by heads: ")
    assert dse._fastest_finished(finished[:1], U55C_DEVICE, said.append) is finished[0] and len(said) == 2  # one design: no sizing


@pytest.mark.parametrize("fitting", [False, True])
def test_level_2c_tries_no_other_pool_once_a_head_counts_faster_candidate_does_not_fit(fitting: bool) -> None:
    """GPT-2 small W4A8 (groups of 32) at cache 64, unsplit at its starting lanes: the attention
    in 2 and in 4 parts by heads is faster on the first early pool (16 channels). Where its sized
    design does not fit, that head count tries no other pool (one split trial, not three: the
    parts are the same on every pool); where it fits, every pool is tried and the fastest kept."""
    from lowering.dse import EARLY_CHANNELS, HEAD_PARTS, _attention_level, _CachedTiming, _Design, _Splits, set_clock
    from lowering.hbm_channels import allocate_kernel
    from lowering.timing import U55C, unroll_lanes
    from streamdsl.scalars import specialise

    module = specialise(_block("gpt2", "small", 64, 64))
    space = _Splits(module, _CachedTiming(U55C.at_clock(250)), 1.0)
    kernel = kernel_of(space.unsplit()[1])
    set_clock(kernel, 250)
    allocate_kernel(kernel, striping=True)
    lanes = {t.sym_name.data: v for t in kernel.body.block.ops if isinstance(t, TaskOp) and (v := unroll_lanes(t))}
    trials, said = [], []
    trial = space.trial
    space.trial = lambda parts: trials.append(dict(space.heads)) or trial(parts)  # type: ignore[method-assign]
    kept = _attention_level(space, dict.fromkeys(space.chains, 1), _Design(kernel, space.timing), lanes, True, 250, 0.002,
                            said.append, lambda _: fitting)
    if fitting:
        assert kept is not None and len(trials) == len(HEAD_PARTS) * len(EARLY_CHANNELS) and space.heads
        return
    assert kept is None and len(trials) == len(HEAD_PARTS) and not space.heads
    assert [re.sub(r"\d+ cycles", "N cycles", line) for line in said] == [
        f"attention: {heads} parts by heads: N cycles on 16 channels, but the sized design does not fit; no other pool tried"
        for heads in HEAD_PARTS]
