"""The data movers the other emitter tests build no kernel of: chunk, concat and reassociate, a
round-robin join of two-beat tokens after a two-beat fork, a DMA of run-time length into a task
that takes the run-time scalar. Each kernel is built once (sequential csim, g++ -O0: the cheapest
build) and checked against numpy. Then what the kernel text must say without a build: converters
without a plan, names (ports, FIFOs, processes), the `ii` hint, and what the emitter refuses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sim import programs as SP

import streamdsl as sd
from hls_backend import HlsEmitError, build_csim, emit_kernel, emit_project, run_csim
from streamdsl.dialects.dataflow import DmaLoadOp, ITensorForkOp, kernel_of
from tests.dsl.test_hints import build as hinted_matmul
from tests.dsl.test_scalars import MAXN, summed

from .cases import WARNINGS
from .test_pragmas import loops


def _csim(design_or_module: object, path: Path) -> Path:
    project = emit_project(design_or_module, path)
    build_csim(project, False, extra_flags=[*WARNINGS, "-O0"])
    return project


def test_chunk_concat_and_reassociate_move_every_element(tmp_path: Path) -> None:
    """split_concat: the left half of each row negated, the right half squared, the (2, 8) result
    regrouped into (2, 2) tiles of an (8, 2) tensor: the same elements row-major."""
    x = np.arange(16, dtype=np.float32).reshape(2, 8) - 5
    want = np.concatenate([-x[:, :4], x[:, 4:] ** 2], axis=1).reshape(8, 2)
    project = _csim(SP.split_concat(), tmp_path / "p")
    np.testing.assert_array_equal(run_csim(project, x), want)
    for function, _, first, nested in loops((project / "kernel.cpp").read_text()):  # full-rate data movers
        if not function.startswith("task_"):
            assert re.fullmatch("#pragma HLS unroll" if nested else r"#pragma HLS pipeline II=1  // depth \d+", first), function
    # csim's cycle counts and the reports name each FIFO's writer and reader by the manifest, as the IR wires them
    manifest = json.loads((project / "manifest.json").read_text())
    ends = {s["name"]: (manifest["nodes"][s["producer"]], manifest["nodes"][s["consumer"]]) for s in manifest["streams"]}
    concat, reassociate = "concat(lo2, hi2)", "reassociate(cat)"
    assert ends == {"xs": ("dma_load(x)", "chunk(xs)"), "lo": ("chunk(xs)", "neg"), "hi": ("chunk(xs)", "sq"),
                    "lo2": ("neg", concat), "hi2": ("sq", concat), "cat": (concat, reassociate), "re": (reassociate, "dma_store(re)")}


def test_a_join_interleaves_two_beat_tokens_round_robin(tmp_path: Path) -> None:
    """Tiles of 64 floats (2,048 bits: two beats) forked to two lanes; even tiles come back
    doubled, odd ones tripled."""
    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    want = x.reshape(4, 64) * np.array([[2.0], [3.0], [2.0], [3.0]], np.float32)
    np.testing.assert_array_equal(run_csim(_csim(SP.round_robin_join(4, 64), tmp_path / "p"), x), want.reshape(1, 256))


def test_a_run_time_length_streams_only_the_live_tiles(tmp_path: Path) -> None:
    """The prefix sums of tests/dsl/test_scalars.py: one kernel for every n up to its maximum, the
    DMA moving ceil(n / 8) tiles of each row."""
    x = np.random.default_rng(1).standard_normal((3, MAXN)).astype(np.float32)
    project = _csim(sd.compile(summed), tmp_path / "p")
    for n in (0, 9, MAXN):
        np.testing.assert_allclose(run_csim(project, x, n), x[:, :n].sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)


def test_a_converter_without_a_plan_holds_the_whole_tensor() -> None:
    """SP.converters: a (4, 6) tensor in (2, 2) tiles turned from row-major to column-major tile
    order and back shares no loop (its 24 elements in one bank); the planned converter keeps its
    two banks of a 2 x 6 slab."""
    kernel = emit_kernel(SP.converters())
    assert re.findall(r"static float bank\[(\d+)\]\[(\d+)\];", kernel.code) == [("1", "24"), ("1", "24"), ("2", "12")]
    assert sorted(kernel.nodes.values()) == sorted(
        ["dma_load(x)", "inc", "converter(a)", "dbl", "converter(c)", "converter(d)", "dma_store(e)"])


def test_each_dma_of_a_tensor_has_a_port_of_its_own() -> None:
    """x read by three kernels: three DMAs, ports x, x_1 and x_2."""
    X = sd.itensor.tiled(sd.f32, shape=(2, 8), tile=(1, 8))

    @sd.kernel
    def inc(x: X) -> X:
        for i in range(2):
            yield x.read() + 1.0

    @sd.dataflow
    def three(x: sd.Tensor[sd.f32, (2, 8)]):
        return inc(x), inc(x), inc(x)

    kernel = emit_kernel(three)
    assert [(p.name, p.tensor.name) for p in kernel.ports if not p.tensor.is_output] == [("x", "x"), ("x_1", "x"), ("x_2", "x")]


def test_fifos_whose_names_spell_one_identifier_get_two_variables() -> None:
    """`f->g_h` and `f_g->h` are both `f_g_h` as C identifiers."""
    X = sd.itensor.tiled(sd.f32, shape=(2, 8), tile=(1, 8))

    def inc(name: str):  # noqa: ANN202 - a kernel
        def body(x: X) -> X:
            for i in range(2):
                yield x.read() + 1.0

        body.__name__ = body.__qualname__ = name
        return sd.kernel(body)

    f, g_h, f_g, h = (inc(n) for n in ("f", "g_h", "f_g", "h"))

    @sd.dataflow
    def chain(x: sd.Tensor[sd.f32, (2, 8)]):
        return h(f_g(g_h(f(x))))

    streams = emit_kernel(chain).streams
    assert {"f->g_h", "f_g->h"} <= {s.name for s in streams}
    names = [s.var for s in streams]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z_]\w*", v) for v in names), names


def test_the_ii_hint_is_the_least_ii_of_the_tasks_loops() -> None:
    """docs/ir.md: `ii = M` on a task is the least initiation interval of its pipelined loops. The
    hinted matmul's loops that run faster without the hint (its accumulator's fill) run at II=3."""

    def iis(ii: int | None) -> list[int]:
        code = emit_kernel(hinted_matmul(ii=ii)).code
        task = code[code.index("static void task_mm(") :]
        return [int(v) for v in re.findall(r"#pragma HLS pipeline II=(\d+)  // depth", task[: task.index("\n}\n")])]

    plain, hinted = iis(None), iis(3)
    assert len(plain) == len(hinted) and any(p < 3 for p in plain)
    assert hinted == [max(p, 3) for p in plain]


def test_a_module_with_two_kernels_is_refused() -> None:
    module = SP.split_concat()
    kernel = kernel_of(module)
    kernel.parent_block().insert_op_before(kernel.clone(), kernel)
    with pytest.raises(HlsEmitError, match=r"exactly one dataflow.kernel \(found 1 functions and 2 kernels\)"):
        emit_kernel(module)


def test_a_port_past_one_hbm_pseudo_channel_is_refused() -> None:
    """A (1, 1024) float tile replayed 2^17 + 1 times is stored 2^17 + 1 times: 4 KiB more than a
    pseudo-channel's 512 MiB."""
    replays = 2**17 + 1
    X = sd.itensor(sd.f32, tile=(1, 1024), trips=[replays], steps=[1], map=lambda i: (0, 0))

    @sd.kernel
    def total(x: X) -> sd.itensor.tiled(sd.f32, shape=(1, 1), tile=(1, 1)):
        acc = sd.zeros((1, 1))
        for i in range(replays):
            acc += sd.sum(x.read(), axis=1)
        yield acc

    @sd.dataflow
    def replayed(x: sd.Tensor[sd.f32, (1, 1024)]):
        return total(x)

    with pytest.raises(HlsEmitError, match=r"^dma_load\(x\): x .* takes 512.0 MiB a stripe, more than one HBM pseudo-channel's 512 MiB;"):
        emit_kernel(replayed)


def test_int4_ports_pack_two_elements_a_byte(tmp_path: Path) -> None:
    """An int4 tensor is two elements a byte in HBM (the testbench packs and unpacks it with
    sd_hbm.h): two (1, 64) tiles, each in its own 512-bit word, come back with their halves swapped."""
    IO = sd.itensor.tiled(sd.i4, shape=(2, 64), tile=(1, 64))

    @sd.kernel
    def swap(x: IO) -> IO:
        for r in range(2):
            v = x.read()
            yield sd.concat([v[:, 32:], v[:, :32]], axis=1)

    @sd.dataflow
    def swapped(x: sd.Tensor[sd.i4, (2, 64)]):
        return swap(x)

    x = np.random.default_rng(3).integers(-8, 7, (2, 64), endpoint=True).astype(np.int8)
    np.testing.assert_array_equal(run_csim(_csim(sd.compile(swapped), tmp_path / "p"), x), np.roll(x, 32, axis=1))


def test_a_fork_of_a_run_time_length_is_refused() -> None:
    """Only tasks, DMAs and reassociates take run-time lengths: the prefix sums' load forked (to
    one output) before its task is named and refused."""
    module = sd.compile(summed).module.clone()
    load = next(op for op in module.walk() if isinstance(op, DmaLoadOp))
    use = next(iter(load.result.uses))
    fork = ITensorForkOp(load.result, 1)
    load.parent_block().insert_op_after(fork, load)
    use.operation.operands[use.index] = fork.results[0]
    with pytest.raises(HlsEmitError, match=r"^fork\(0\): `dataflow.itensor_fork` of a stream with a run-time length .* has no HLS"):
        emit_kernel(module)
