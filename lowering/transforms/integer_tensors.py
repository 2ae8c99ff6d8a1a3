"""`integer-tensors`: integer tensors that streams do not carry are passed as i32.

An imported decoder block computes its attention mask from small integer tensors the importer
folded into constant arguments: an iota of the key slots (i64) and boolean masks of it (i1).
Streams carry f32/f16/bf16/i4/i8/i32 tiles (`streamdsl.dtypes.DTYPES`), so each function argument
of element type i1, i16 or i64 becomes an i32 tensor, and every `linalg.generic` that reads it
converts the element back in its body (`arith.trunci` to i1, `arith.extsi` to i16/i64: wires, no
logic), so the body computes exactly what it did. The caller passes i32 arrays (the simulators
convert on binding; `lowering.pipeline.lower` checks that folded i64 constants fit in i32).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, linalg
from xdsl.dialects.builtin import FunctionType, IntegerType, ModuleOp, TensorType, i32
from xdsl.ir import BlockArgument
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import PassFailedException

__all__ = ["IntegerTensorsPass", "NARROWED", "pass_integers_as_i32"]

NARROWED = (1, 16, 64)  # integer widths of tensors that no stream carries


def _carried_as_i32(arg: BlockArgument) -> bool:
    t = arg.type
    return isinstance(t, TensorType) and bool(t.get_shape()) and isinstance(t.element_type, IntegerType) \
        and t.element_type.width.data in NARROWED


def _convert_in_body(generic: linalg.ops.GenericOp, index: int, wanted: IntegerType) -> None:
    """Input `index` of `generic` now holds i32 elements: its body converts them to `wanted`."""
    block = generic.body.block
    arg = Rewriter.replace_value_with_new_type(block.args[index], i32)
    cast = arith.TruncIOp(arg, wanted) if wanted.width.data < 32 else arith.ExtSIOp(arg, wanted)
    block.insert_op_before(cast, block.first_op)  # type: ignore[arg-type]
    arg.replace_uses_with_if(cast.result, lambda use: use.operation is not cast)


def pass_integers_as_i32(fn: func.FuncOp) -> list[str]:
    """Retype `fn`'s i1/i16/i64 tensor arguments to i32; returns the names of those changed."""
    changed = []
    for arg in list(fn.body.block.args):
        if not _carried_as_i32(arg):
            continue
        assert isinstance(arg.type, TensorType)
        wanted = arg.type.element_type
        for use in arg.uses:
            user = use.operation
            if not isinstance(user, linalg.ops.GenericOp) or use.index >= len(user.inputs):
                raise PassFailedException(f"integer-tensors: %{arg.name_hint} ({arg.type}) is used by {user.name}; "
                                          "tensors of this element type stream as i32 and may only be read by linalg.generic inputs")
        for use in list(arg.uses):
            _convert_in_body(use.operation, use.index, wanted)  # type: ignore[arg-type]
        Rewriter.replace_value_with_new_type(arg, TensorType(i32, arg.type.get_shape()))
        changed.append(arg.name_hint or f"#{arg.index}")
    fn.function_type = FunctionType.from_lists([a.type for a in fn.body.block.args], list(fn.function_type.outputs))
    return changed


@dataclass(frozen=True)
class IntegerTensorsPass(ModulePass):
    """i1/i16/i64 tensor arguments become i32 tensors, converted back inside the generics."""

    name = "integer-tensors"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            pass_integers_as_i32(fn)
