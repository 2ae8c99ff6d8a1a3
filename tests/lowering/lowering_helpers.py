"""Decoder blocks of zoo models, their invocations and PyTorch eager references (test helpers)."""

from __future__ import annotations

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
