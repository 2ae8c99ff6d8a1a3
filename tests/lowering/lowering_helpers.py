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
