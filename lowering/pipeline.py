"""The whole-model lowering pipeline: linalg on tensors (from `frontends.from_torch`) to one
FIFO-sized dataflow design (docs/lowering.md).

    integer-tensors -> fuse-elementwise -> order-loops -> tile-quant-groups -> tile-batch-loops -> tile-linalg -> form-kernels
    -> fuse-kernels -> insert-converters -> partial-reductions -> unroll-short-loops
    -> allocate-hbm-channels -> fit-lanes
    -> (sd.compile: size-fifos) -> simulators / HLS emission

`lower(imported)` runs the passes on a copy of the imported module and returns a `Lowered`: the
dataflow `Program` (its parameters bound by name, so `program.simulate(*inputs)` and
`sd.compile(program)` work as for a DSL program), the fusion plan, on-chip bytes of the
intermediates with and without fusion, and the seconds of each stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, IntegerAttr, ModuleOp, i64

from lowering.converters import plan
from lowering.transforms.allocate_hbm_channels import AllocateHbmChannelsPass
from lowering.transforms.fit_lanes import FitLanesPass
from lowering.transforms.form_kernels import SCALAR_MAX, FormKernelsPass
from lowering.transforms.fuse_elementwise import FuseElementwisePass
from lowering.transforms.fuse_kernels import FusionPlan, fuse_kernels
from lowering.transforms.insert_converters import InsertConvertersPass
from lowering.transforms.integer_tensors import pass_integers_as_i32
from lowering.transforms.order_loops import OrderLoopsPass
from lowering.transforms.partial_reductions import PartialReductionsPass
from lowering.transforms.tile_batch_loops import TileBatchLoopsPass
from lowering.transforms.tile_linalg import TileLinalgPass, is_scalar_tensor
from lowering.transforms.tile_quant_groups import TileQuantGroupsPass
from lowering.transforms.unroll_short_loops import UnrollShortLoopsPass
from streamdsl.dialects.dataflow import ITensorConverterOp, ITensorType, KernelOp
from streamdsl.program import Program

__all__ = ["DEFAULT_TILE", "Lowered", "lower"]

DEFAULT_TILE = 64


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


def _mark_scalars(fn: func.FuncOp, names: Sequence[str], scalar_max: Mapping[str, int]) -> list[str]:
    """Drop the rank-0 inputs nothing reads (GPT-2 takes its positions on the host) and give the
    others their `scalar_max`; returns the names of the inputs kept."""
    kept = []
    for arg, name in reversed(list(zip(fn.body.block.args, names))):
        if not is_scalar_tensor(arg):
            kept.append(name)
        elif not arg.uses:
            index = arg.index
            fn.body.block.erase_arg(arg)
            if fn.arg_attrs is not None:
                fn.arg_attrs = ArrayAttr([a for i, a in enumerate(fn.arg_attrs.data) if i != index])
        elif name in scalar_max:
            kept.append(name)
            attrs = list(fn.arg_attrs.data) if fn.arg_attrs is not None else [DictionaryAttr({})] * len(fn.body.block.args)
            attrs[arg.index] = DictionaryAttr({**attrs[arg.index].data, SCALAR_MAX: IntegerAttr(scalar_max[name], i64)})
            fn.arg_attrs = ArrayAttr(attrs)
        else:
            kept.append(name)  # form-kernels names it and asks for its maximum
    fn.function_type = FunctionType.from_lists([a.type for a in fn.body.block.args], list(fn.function_type.outputs))
    return kept[::-1]


def _i32_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params, integer tensors that integer-tensors retyped converted to i32 (refusing values
    an i32 cannot hold)."""
    out = {}
    for name, value in params.items():
        array = np.asarray(value)
        if array.dtype.kind in "biu" and array.dtype != np.int32 and array.ndim:
            if array.size and array.dtype.kind != "b" and (array.min() < -2**31 or array.max() >= 2**31):
                raise ValueError(f"lower: the integer tensor {name!r} holds values beyond i32 "
                                 f"([{array.min()}, {array.max()}]); streams carry i32")
            array = array.astype(np.int32)
        out[name] = array
    return out


def lower(imported: Any, default_tile: int = DEFAULT_TILE, budget: float | None = None,
          tile_plan: Callable[[Any], None] | None = None, scalar_max: Mapping[str, int] | None = None,
          hbm_striping: bool = True) -> Lowered:
    """Lower an `ImportedProgram` (or anything with `module`, `func`, `inputs`, `params`) to a
    dataflow Program. `tile_plan(module)` may set `tile_sizes` attributes on generics after
    element-wise fusion (a given tiling plan); the rest get `default_tile`. `scalar_max` gives
    the largest value of each rank-0 integer input (a run-time scalar: a cache length, a
    position); rank-0 inputs the program does not read are dropped from the lowered program.
    Every DMA is then striped over HBM pseudo-channels (`allocate-hbm-channels`; `hbm_striping`
    False: one stripe each, the channels still balanced by bytes), and tasks whose compute would
    over-fill the device get fewer lanes (`fit-lanes`)."""
    ctx = Context()
    module = imported.module.clone()
    seconds: dict[str, float] = {}
    fn = next(op for op in module.ops if isinstance(op, func.FuncOp))
    input_names = _mark_scalars(fn, [s.name for s in imported.inputs], scalar_max or {})
    pass_integers_as_i32(fn)
    with _stage(seconds, "fuse_elementwise"):
        FuseElementwisePass().apply(ctx, module)
    with _stage(seconds, "loop_order"):
        OrderLoopsPass().apply(ctx, module)
    TileQuantGroupsPass(default_tile=default_tile).apply(ctx, module)  # a plan: quantized layers' groups one at a time
    TileBatchLoopsPass(default_tile=default_tile).apply(ctx, module)  # a plan: attention one head at a time
    if tile_plan is not None:
        tile_plan(module)
    with _stage(seconds, "tiling"):
        TileLinalgPass(default_tile=default_tile).apply(ctx, module)
    with _stage(seconds, "kernel_formation"):
        FormKernelsPass().apply(ctx, module)
    unfused = _intermediate_bytes(fn)
    with _stage(seconds, "kernel_fusion"):
        fusion = fuse_kernels(fn, budget)
    with _stage(seconds, "converters"):
        InsertConvertersPass().apply(ctx, module)
    with _stage(seconds, "partial_reductions"):
        PartialReductionsPass().apply(ctx, module)
    with _stage(seconds, "unroll_short_loops"):
        UnrollShortLoopsPass().apply(ctx, module)
    with _stage(seconds, "hbm_channels"):
        AllocateHbmChannelsPass(striping=hbm_striping).apply(ctx, module)
    with _stage(seconds, "fit_lanes"):
        FitLanesPass().apply(ctx, module)
    module.verify()
    kernels = sum(isinstance(op, KernelOp) for op in fn.body.block.ops)
    program = Program(module, fn.sym_name.data, input_names, _i32_params(imported.params))
    return Lowered(program, fusion, kernels, unfused, converter_bytes(module), seconds)
