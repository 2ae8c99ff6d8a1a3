"""Whole-model figures of a compiled decoder block: report.json's `estimate` and the per-model
parts of `model_figures` (docs/report.md, "Model figures").

The block design is invoked once per layer per token, so the modeled time of one decoded token is
`layers x` the block's timed-simulation makespan at the kernel clock, plus the host part:
embedding, final norm, LM head and greedy argmax run on the host CPU (as `frontends.host` does),
timed here in PyTorch eager on the model itself. Prefill is modeled as the prompt streamed through
the same design a token per invocation (the host part runs once, for the last prompt token). Kernel launches are not counted (XRT is not
here to measure them). The HBM roofline is the same design with every byte its DMAs move
streamed at the U55C's full HBM bandwidth (32 pseudo-channels).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import torch

from lowering.timing import U55C, TimingTable

__all__ = ["HBM_CHANNELS", "hbm_bytes_per_second", "host_seconds", "model_estimate"]

HBM_CHANNELS = 32  # U55C: 2 HBM2 stacks of 16 pseudo-channels


def hbm_bytes_per_second(table: TimingTable = U55C) -> float:
    """Every pseudo-channel at the timing model's rate (14.4 GB/s each, 460 GB/s in all)."""
    return HBM_CHANNELS * table.hbm_bits_per_cycle / 8 * table.clock_mhz * 1e6


def host_seconds(model: torch.nn.Module, repeats: int = 5) -> float:
    """Seconds of one token's host part on this machine, the fastest of `repeats` runs (the least
    disturbed by other work): embedding lookup, final norm, LM head and argmax, in PyTorch eager
    (the decoder layers are the device's)."""
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    norm = next((getattr(model.base_model, name) for name in ("norm", "ln_f", "final_layernorm", "final_layer_norm")
                 if hasattr(model.base_model, name)), torch.nn.Identity())
    token = torch.zeros(1, 1, dtype=torch.long)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            int(torch.argmax(head(norm(embed(token)))[0, -1]))
            times.append(time.perf_counter() - start)
    return min(times)


def model_estimate(cycles: int, layers: int, dmas: Sequence[Mapping[str, object]], host: float,
                   table: TimingTable = U55C) -> dict[str, object]:
    """report.json's `estimate` for a block of `cycles` per invocation, `layers` invocations per
    token, the block's `dmas` (report.json's) and `host` seconds of host part per token."""
    block_ms = cycles / (table.clock_mhz * 1e3)
    hbm_bytes = sum(int(d["bytes"]) for d in dmas)
    roofline_block_ms = hbm_bytes / hbm_bytes_per_second(table) * 1e3
    device_ms = layers * block_ms
    ms = device_ms + host * 1e3
    return {
        "clock_mhz": table.clock_mhz,
        "layers": layers,
        "block_ms": round(block_ms, 6),
        "device_ms_per_token": round(device_ms, 4),
        "host_ms_per_token": round(host * 1e3, 4),
        "host_part": "embedding, final norm, LM head and greedy argmax on the host CPU, timed in PyTorch eager on "
                     "this machine; kernel launches (one per layer) not counted",
        "ms_per_token": round(ms, 4),
        # the prompt through the same design, a token per invocation: the cache is streamed at its
        # maximum length, masked, so an invocation takes the same cycles at every cache length
        "prefill": {"design": "decode", "cycles_per_prompt_token_per_block": cycles,
                    "ms_per_prompt_token": round(device_ms, 4)},
        "tokens_per_second": round(1e3 / ms, 3),
        "hbm_bytes_per_token": layers * hbm_bytes,
        "hbm_bytes_per_second": hbm_bytes_per_second(table),
        "roofline_ms_per_token": round(layers * roofline_block_ms, 4),
        "device_vs_roofline": round(layers * roofline_block_ms / device_ms, 4) if device_ms else None,
    }
