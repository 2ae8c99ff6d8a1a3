"""The emitted C++ asks Vitis for full-rate data movers: a DMA, fork, router or converter is one
loop over beats pipelined at an explicit II with its lanes unrolled, read off the kernel text."""

from __future__ import annotations

import math
import re

import pytest

import streamdsl as sd
from hls_backend import emit_kernel
from hls_backend.lint import FADD_LATENCY
from lowering.timing import task_timing
from streamdsl.dialects.dataflow import TaskOp
from streamdsl.opinfo import OPS

from .cases import CASES

FUNCTION = re.compile(r"^static void (\w+)\(")


def loops(code: str) -> list[tuple[str, str, str, bool]]:
    """(function, loop header, first line of its body, whether it sits in another loop) of every loop."""
    lines = code.splitlines()
    out, function, depth = [], "", []
    for i, line in enumerate(lines):
        if m := FUNCTION.match(line):
            function, depth = m.group(1), []
        indent = len(line) - len(line.lstrip())
        while depth and indent <= depth[-1] and line.strip():
            depth.pop()
        if line.lstrip().startswith("for ("):
            out.append((function, line.strip(), lines[i + 1].strip(), bool(depth)))
            depth.append(indent)
    return out


@pytest.mark.parametrize(
    "name", ["regrid_planned", "transpose_planned", "held_regrid_planned", "fork_join", "ffn_block", "tutorial03_attention"])
def test_every_data_mover_is_one_pipelined_loop_over_beats(name: str) -> None:
    """A DMA, fork, router or converter is one loop pipelined at II=1 (a DMA: a 512-bit word per
    cycle, a router or converter: a beat per cycle) with its lanes unrolled inside."""
    code = emit_kernel(sd.compile(CASES[name]().program)).code
    movers = [loop for loop in loops(code) if not loop[0].startswith("task_")]
    kinds = {function.split("_")[0] for function, *_ in movers}
    assert "dma" in kinds and ("converter" in kinds or not name.endswith("_planned")), kinds
    for function, header, first, nested in movers:
        if nested:
            assert first == "#pragma HLS unroll", f"{function}: `{header}` starts with `{first}`"
        else:
            want = r"#pragma HLS pipeline II=(\d+)  // depth \d+"
            assert (m := re.fullmatch(want, first)), f"{function}: `{header}` starts with `{first}`"
            assert m[1] == "1", f"{function}: II={m[1]}"


@pytest.mark.parametrize("name", ["layernorm", "ffn_block", "softmax"])
def test_float_accumulators_become_interleaved_partials(name: str) -> None:
    """A tile a pipelined loop accumulates (a running sum, max or min) whose chain is longer than
    the loop's II is K interleaved partials in the model and in the code: the loop keeps its II,
    partial i % K is updated again K iterations later, and a tree after the loop combines them."""
    design = sd.compile(CASES[name]().program)
    code = emit_kernel(design).code
    timed = [t for op in design.kernel.body.block.ops if isinstance(op, TaskOp) for t in task_timing(op).loops.values()]
    interleaved = [t for t in timed if t.partials]
    emitted = [int(k) for k in re.findall(r"#pragma HLS dependence variable=\w+_partials type=inter distance=(\d+) true", code)]
    assert sorted(emitted) == sorted(k for t in interleaved for k in t.partials.values())
    for t in interleaved:
        (k,) = set(t.partials.values())  # these loops' accumulators are alike (adds, or a max)
        latency = t.combine // math.ceil(math.log2(k))  # the combiner's: a tree level
        assert latency in (FADD_LATENCY, OPS["arith.maximumf"].latency)
        assert t.ii * k >= latency > t.ii * (k - 1)  # the fewest partials that cover its chain
    assert len(re.findall(r"\w+_tree\.v\[e\] = ", code)) == sum(k - 1 for t in interleaved for k in t.partials.values())
    if name != "softmax":  # layernorm's running sums
        assert interleaved


@pytest.mark.parametrize("name", ["ffn_block", "tutorial03_attention", "regrid_planned", "fork_join"])
def test_every_fifo_is_bound_to_the_primitive_the_memory_count_charges(name: str) -> None:
    """report.json's on-chip count puts each FIFO in SRL, LUTRAM, BRAM36 or URAM by its shape;
    the emitted `bind_storage` asks Vitis for that primitive (Vitis alone never picks URAM for a
    FIFO), so the device that is built holds what the fit check counted."""
    _check_bind_storage(sd.compile(CASES[name]().program))


def test_fifos_the_count_moves_to_uram_are_bound_to_uram(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a device of 90 BRAM36 and 60 URAM the ffn-block's 116 (by shape) do not fit: the count moves its
    two deepest BRAM FIFOs, the weight prefetches dma_load(w_down)->fc_down and dma_load(w_up)->fc_up
    (1,024 bits x 160 and x 64: 15 BRAM36 or 15 URAM each), to URAM (86 BRAM36, 30 URAM), and the
    emitted C++ binds those FIFOs, and only them, to URAM. (131 BRAM36 and one FIFO moved while the
    timing model let a converter's two sides move independently: the w_up prefetch was 32 deep;
    146 while the converters' banks were counted as 1,024-bit words, not as their partitions.)"""
    from lowering import memory

    design = sd.compile(CASES["ffn_block"]().program)
    assert memory.design_memory(design)["BRAM36"] == 116
    monkeypatch.setitem(memory.CAPACITY, memory.BRAM36, 90)
    monkeypatch.setitem(memory.CAPACITY, memory.URAM, 60)  # fewer than BRAM36, so the shape rule still picks BRAM36
    counted = memory.design_memory(design)
    assert (counted["BRAM36"], counted["URAM"], counted["fits"]) == (86, 30, True)
    assert [m["name"] for m in counted["memories"] if m.get("moved")] == ["dma_load(w_down)->fc_down", "dma_load(w_up)->fc_up"]
    assert list(_check_bind_storage(design).values()).count("uram") == 2


def _check_bind_storage(design: object) -> dict[str, str]:
    """Each emitted FIFO's `bind_storage` impl is the primitive design_memory counts it in."""
    from lowering.memory import design_memory

    code = emit_kernel(design).code
    impl = dict(re.findall(r"#pragma HLS bind_storage variable=(\w+) type=fifo impl=(\w+)", code))
    declared = dict(re.findall(r'hls::stream<\w+, \d+> (\w+)\("([^"]+)"\)', code))
    assert set(impl) == set(declared)
    counted = {m["name"]: m for m in design_memory(design)["memories"] if m["kind"] == "fifo"}
    assert set(counted) == set(declared.values())
    for var, stream in declared.items():
        memory = counted[stream]
        want = {"BRAM36": "bram", "URAM": "uram"}.get(memory["resource"]) or ("srl" if memory["depth"] <= 32 else "lutram")
        assert impl[var] == want, (stream, memory, impl[var])
    banks = sorted(re.findall(r"#pragma HLS bind_storage variable=bank type=ram_s2p impl=(\w+)", code))
    converters = [m["resource"] for m in design_memory(design)["memories"] if m["kind"] == "converter"]
    assert banks == sorted({"BRAM36": "bram", "URAM": "uram", "LUTRAM": "lutram"}[r] for r in converters)
    return impl


@pytest.mark.parametrize(("bits", "depth", "impl"), [(1024, 2, "srl"), (16, 48, "lutram"), (64, 64, "bram"), (1024, 4096, "uram")])
def test_a_fifo_storage_follows_its_shape(bits: int, depth: int, impl: str) -> None:
    """SRL up to 32 deep, LUTRAM up to 1,024 bits, then BRAM36 or URAM by the smaller device
    share: 1,024 x 4,096 is 120 BRAM36 (6.0%) or 15 URAM (1.6%)."""
    from lowering.memory import fifo_storage

    assert fifo_storage(bits, depth) == impl


def test_the_memory_count_holds_the_arrays_a_task_declares() -> None:
    """lowering.memory counts a task's tile arrays as the emitted C++ declares them: an empty init
    the op never reads is no array, nor a result that updates its init in place (element-wise
    tasks: exactly as many arrays, named by the IR's tensors)."""
    from lowering.memory import task_tensors

    design = sd.compile(CASES["ffn_block"]().program)
    code = emit_kernel(design).code
    for name in ("residual", "gelu", "residual_1"):
        body = re.search(rf"^static void task_{name}\(.*?^}}$", code, re.S | re.M)
        assert body is not None
        declared = re.findall(r"^\s*t_\w+ (\w+)\s*(?:=[^;]*)?;", body.group(0), re.M)
        task = next(t for t in design.kernel.body.block.ops if isinstance(t, TaskOp) and t.sym_name.data == name)
        assert len(declared) == len(task_tensors(task)) > 0, (name, declared, task_tensors(task))


@pytest.mark.parametrize("name", ["matvec", "ffn_block", "gelu_mlp", "matvec_cached", "tutorial03_attention"])
def test_a_tile_array_the_count_takes_as_words_is_built_as_those_words(name: str) -> None:
    """A token's tile that lowering/memory.py counts as a memory of 1,024-bit words (a 32 x 32
    f32 weight tile: 32 words, 15 BRAM36) is declared as that memory, reshaped into words of
    whole elements and bound where the count puts it, not cut into one partition per lane: each
    reshaped array is one of the task's counted memories, of the same words and primitive, and
    its loop's II leaves a cycle for each word (one read and one write a cycle)."""
    from lowering.memory import design_memory

    design = sd.compile(CASES[name]().program)
    code = emit_kernel(design).code
    counted = [m for m in design_memory(design)["memories"] if m["kind"] == "local"]
    reshaped = re.findall(r"^\s*(t_\w+) (\w+);\n\s*#pragma HLS array_reshape variable=\2\.v type=cyclic factor=(\d+)\n"
                          r"\s*#pragma HLS bind_storage variable=\2\.v type=ram_s2p impl=(\w+)\n", code, re.M)
    assert len(reshaped) == len(re.findall("array_reshape", code))
    assert reshaped or name == "tutorial03_attention"  # its tiles are registers
    shapes = {(m["width"], m["depth"], {"BRAM36": "bram", "URAM": "uram", "LUTRAM": "lutram"}[m["resource"]]) for m in counted}
    for struct, var, factor, impl in reshaped:
        elements = math.prod(int(n) for n in re.findall(r"\d+", struct.rsplit("_", 1)[0]))
        bits = int(re.search(r"(\d+)$", struct).group(1))
        words = elements // int(factor)
        assert (int(factor) * bits, words, impl) in shapes, (var, struct, factor, impl, shapes)
        assert f"array_partition variable={var}.v" not in code
        loop = code[: code.index(f"{struct} {var};")].rsplit("#pragma HLS pipeline II=", 1)[1]
        assert words <= int(loop.split()[0]), (var, words, loop.split()[0])


def test_a_tile_read_twice_stays_cut_into_lanes() -> None:
    """Only a tile whose one reader reads each element once becomes a memory of words: a tile read
    twice (the loop would need two reads of a word a cycle) keeps its lanes' partitions; a tile
    of at most 4,096 bits is registers, and one whose words would split an element is not reshaped."""
    from xdsl.dialects.builtin import TensorType, f32

    from lowering.memory import word_memory

    tiles = sd.itensor.tiled(sd.f32, shape=(64, 32), tile=(32, 32))

    @sd.kernel
    def square_plus(x: tiles) -> tiles:
        for _ in range(2):
            t = x.read()
            yield t * t + t

    @sd.dataflow
    def program(x: sd.Tensor[sd.f32, (64, 32)]):
        return square_plus(x)

    code = emit_kernel(sd.compile(program)).code
    assert "array_reshape" not in code
    assert re.search(r"t_32x32_f32 \w+_in0;\n\s*#pragma HLS array_partition variable=\w+_in0\.v type=cyclic", code)
    assert word_memory(TensorType(f32, [32, 32])) == (32, "bram")  # 32 words of 32 floats
    assert word_memory(TensorType(f32, [8, 16])) is None  # 4,096 bits: registers
    assert word_memory(TensorType(f32, [43, 64])) == (32, "bram")  # 86 words
    assert word_memory(TensorType(f32, [1, 344])) is None  # 11 words would split a float
