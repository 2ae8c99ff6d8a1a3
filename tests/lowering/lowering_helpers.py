"""One decoder layer of a zoo model as a decode step at a fixed cache length (test helper)."""

from __future__ import annotations

import torch

from frontends import hf
from toolchain.models import LayerStep


def layer_step(family: str, past_len: int, seed: int = 0):
    """(module, example inputs) of layer 0 of `family` at size tiny after `past_len` cached tokens."""
    model = hf.build(family, "tiny", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    (kv,) = hf.kv_shapes(model, past_len)[:1]
    hidden = torch.randn(1, 1, model.config.hidden_size, generator=gen)
    return LayerStep(model, 0, past_len).eval(), (hidden, torch.randn(kv, generator=gen), torch.randn(kv, generator=gen))


def assert_no_deadlock_no_stall(design, scalars=None):
    """The timed simulator with the sized FIFOs (at these run-time scalar values): no deadlock,
    and the makespan of unbounded FIFOs. Returns the run."""
    sized = design.timed_simulation(scalars=scalars)
    unbounded = design.timed_simulation(dict.fromkeys(design.depths), scalars=scalars)
    assert sized.deadlock is None
    assert sized.makespan == unbounded.makespan
    return sized
