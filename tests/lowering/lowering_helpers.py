"""Decoder blocks of zoo models, their invocations and PyTorch eager references (test helpers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from frontends.block import Block, DecoderBlock


def block_invocation(block: Block, layer: int, cache_len: int, seed: int = 0) -> list[np.ndarray]:
    """Inputs of one invocation of `block` for `layer` (`block.inputs` order): random hidden state
    and a random cache at the maximum context, garbage beyond `cache_len` included."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((1, block.seq_len, block.model.config.hidden_size)).astype(np.float32)
    kv = block.program.inputs[1].shape
    keys, values = (rng.standard_normal(kv).astype(np.float32) for _ in range(2))
    return block.inputs(layer, hidden, keys, values, position=cache_len, cache_len=cache_len)


def eager_block(block: Block, layer: int, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Decoder layer `layer` of the block's model in PyTorch eager on the same inputs."""
    module = DecoderBlock(block.model, layer, block.seq_len, block.max_context, block.windowed).eval()
    with torch.no_grad():
        return [t.numpy() for t in module(*[torch.as_tensor(np.asarray(a)) for a in inputs])]


def program_inputs(block: Block, program, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """`inputs` in the lowered program's order (inputs the design does not read dropped)."""
    named = dict(zip((s.name for s in block.program.inputs), inputs))
    return [named[name] for name in program.input_names]


def assert_no_deadlock_no_stall(design, scalars=None):
    """The timed simulator with the sized FIFOs (at these run-time scalar values): no deadlock,
    and the makespan of unbounded FIFOs. Returns the run."""
    sized = design.timed_simulation(scalars=scalars)
    unbounded = design.timed_simulation(dict.fromkeys(design.depths), scalars=scalars)
    assert sized.deadlock is None
    assert sized.makespan == unbounded.makespan
    return sized


def filecheck_module(name: str, text: str | None = None):  # noqa: ANN201 - an xDSL ModuleOp
    """The module of tests/filecheck/lowering/NAME.mlir (or `text`, an edited copy of it), parsed
    with the dialects a lowered task uses."""
    from pathlib import Path

    from xdsl.context import Context
    from xdsl.dialects import arith, builtin, func, linalg, math, scf, tensor
    from xdsl.parser import Parser

    from streamdsl.dialects.dataflow import DATAFLOW

    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, scf.Scf, tensor.Tensor, linalg.Linalg, math.Math, DATAFLOW):
        ctx.load_dialect(dialect)
    source = Path(__file__).parent.parent / "filecheck" / "lowering" / f"{name}.mlir"
    return Parser(ctx, text or source.read_text()).parse_module()


def tasks_by_name(module) -> dict:  # noqa: ANN001
    """Every `dataflow.task` of `module` by its name."""
    from streamdsl.dialects.dataflow import TaskOp

    return {op.sym_name.data: op for op in module.walk() if isinstance(op, TaskOp)}


def assert_csim_as_modeled(design, project, inputs, timeout: int = 900) -> None:  # noqa: ANN001
    """g++ csim of the emitted `project`, sequential and threaded, equals the functional simulation
    of `design` on `inputs`; every process's busy cycles and the makespan it counts are within 1.2x
    of the timing model."""
    from hls_backend import csim_cycles, model_cycles
    from tests.hls.cases import INT4_WARNINGS, csim_modes

    want = design.simulate(*inputs)
    for mode, got in csim_modes(project, *inputs, flags=INT4_WARNINGS, timeout=timeout):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * float(np.abs(w).max()), err_msg=f"{mode} csim")
    counted, model = csim_cycles(project, *inputs, timeout=timeout), model_cycles(design)
    off = {n: (c["busy"], model[n]) for n, c in counted["processes"].items() if not 1 / 1.2 <= c["busy"] / max(1, model[n]) <= 1.2}
    assert not off, off
    makespan = design.timed_simulation().makespan
    assert 1 / 1.2 <= counted["makespan"] / makespan <= 1.2, (counted["makespan"], makespan)


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """The benchmark script `benchmarks/<name>.py`, imported from its file (benchmarks are no package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
