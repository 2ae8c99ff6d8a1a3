"""The whole-model lowering pipeline: linalg on tensors (from `frontends.from_torch`) to one
FIFO-sized dataflow design (docs/lowering.md).

    fuse-elementwise -> tile-linalg -> form-kernels -> fuse-kernels -> insert-converters
    -> (sd.compile: size-fifos) -> simulators / HLS emission

`lower(imported)` runs the passes on a copy of the imported module and returns a `Lowered`: the
dataflow `Program` (its parameters bound by name, so `program.simulate(*inputs)` and
`sd.compile(program)` work as for a DSL program), the fusion plan, on-chip bytes of the
intermediates with and without fusion, and the seconds of each stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from lowering.converters import plan
from lowering.transforms.form_kernels import FormKernelsPass
from lowering.transforms.fuse_elementwise import FuseElementwisePass
from lowering.transforms.fuse_kernels import FuseKernelsPass, FusionPlan, fuse_kernels
from lowering.transforms.insert_converters import InsertConvertersPass
from lowering.transforms.tile_linalg import TileLinalgPass
from streamdsl.dialects.dataflow import ITensorConverterOp, ITensorType, KernelOp
from streamdsl.program import Program

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TILE", "Lowered", "lower"]

DEFAULT_TILE = 64
DEFAULT_BUDGET = FuseKernelsPass.budget


@dataclass
class Lowered:
    program: Program
    fusion: FusionPlan
    kernels: int  # dataflow.kernel ops left after fusion (1: the whole graph is one design)
    unfused_intermediate_bytes: int  # every kernel-to-kernel tensor buffered whole on chip
    fused_intermediate_bytes: int  # converter buffers left inside the fused kernels
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _stage(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - start, 4)


def _intermediate_bytes(fn: func.FuncOp) -> int:
    """Bytes of the tensors that kernels pass to kernels (through HBM before fusion)."""
    total = 0
    for kernel in [op for op in fn.body.block.ops if isinstance(op, KernelOp)]:
        if any(isinstance(use.operation, KernelOp) or use.operation.name.startswith("tensor.")
               for r in kernel.outputs for use in r.uses):
            for r in kernel.outputs:
                total += math.prod(r.type.get_shape()) * r.type.element_type.bitwidth // 8
    return total


def converter_bytes(module: ModuleOp) -> int:
    total = 0
    for op in module.walk():
        if isinstance(op, ITensorConverterOp):
            assert isinstance(op.source.type, ITensorType) and isinstance(op.result.type, ITensorType)
            total += plan(op.source.type.itensor, op.result.type.itensor).bytes
    return total


def lower(imported: Any, default_tile: int = DEFAULT_TILE, budget: float = DEFAULT_BUDGET,
          tile_plan: Callable[[Any], None] | None = None) -> Lowered:
    """Lower an `ImportedProgram` (or anything with `module`, `func`, `inputs`, `params`) to a
    dataflow Program. `tile_plan(module)` may set `tile_sizes` attributes on generics after
    element-wise fusion (a given tiling plan); the rest get `default_tile`."""
    ctx = Context()
    module = imported.module.clone()
    seconds: dict[str, float] = {}
    with _stage(seconds, "fuse_elementwise"):
        FuseElementwisePass().apply(ctx, module)
    if tile_plan is not None:
        tile_plan(module)
    with _stage(seconds, "tiling"):
        TileLinalgPass(default_tile=default_tile).apply(ctx, module)
    with _stage(seconds, "kernel_formation"):
        FormKernelsPass().apply(ctx, module)
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    unfused = _intermediate_bytes(fn)
    with _stage(seconds, "kernel_fusion"):
        fusion = fuse_kernels(fn, budget)
    with _stage(seconds, "converters"):
        InsertConvertersPass().apply(ctx, module)
    module.verify()
    kernels = sum(isinstance(op, KernelOp) for op in fn.body.block.ops)
    program = Program(module, fn.sym_name.data, [s.name for s in imported.inputs], dict(imported.params))
    return Lowered(program, fusion, kernels, unfused, converter_bytes(module), seconds)
