"""`allocate-hbm-channels`: stripe every DMA of every kernel over HBM pseudo-channels, balanced by
bytes, and write the choice on the DMAs (`hbm_channels`, `hbm_share`; lowering/hbm_channels.py)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from lowering.hbm_channels import CHANNELS, allocate_kernel
from streamdsl.dialects.dataflow import KernelOp

__all__ = ["AllocateHbmChannelsPass"]


@dataclass(frozen=True)
class AllocateHbmChannelsPass(ModulePass):
    """Stripe every DMA over HBM pseudo-channels (`channels` of them; `striping=false`: one stripe each)."""

    name = "allocate-hbm-channels"

    channels: int = CHANNELS
    striping: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not 1 <= self.channels <= CHANNELS:
            raise PassFailedException(f"allocate-hbm-channels: channels={self.channels}; the U55C has 1 to {CHANNELS}")
        for kernel in [k for k in op.walk() if isinstance(k, KernelOp)]:
            try:
                allocate_kernel(kernel, self.channels, self.striping)
            except ValueError as err:
                raise PassFailedException(f"allocate-hbm-channels: kernel {kernel.sym_name.data}: {err}") from None
