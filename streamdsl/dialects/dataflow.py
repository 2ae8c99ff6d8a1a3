"""The `dataflow` dialect: itensor values, FIFO streams, kernels, tasks and DMAs.

Three levels share this dialect (docs/ir.md, docs/architecture.md):
- itensor level: immutable stream values (`!dataflow.itensor<...>`) read and written tile by tile;
- stream level: mutable FIFOs with a depth (`!dataflow.stream<...>`) after bufferization;
- structure: `kernel` (a fused accelerator, tensors cross its boundary through DMAs), `task` (one
  hardware process), `yield`, and `dma_load` / `dma_store`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    I64,
    AffineMapAttr,
    ArrayAttr,
    DenseArrayBase,
    IntAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    AttrSizedOperandSegments,
    BaseAttr,
    IRDLOperation,
    ParsePropInAttrDict,
    VarConstraint,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.rewriter import Rewriter
from xdsl.traits import HasParent, IsolatedFromAbove, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from streamdsl.dtypes import DType, dtype_from_ir
from streamdsl.itensor import INT64_MAX, Bound, ITensorError, itensor

__all__ = [
    "DATAFLOW",
    "DMA_OPS",
    "DEFAULT_DEPTH",
    "BoundAttr",
    "BufferOp",
    "DataflowOperation",
    "DmaLoadOp",
    "DmaMember",
    "DmaSequenceOp",
    "DmaStoreOp",
    "ITensorCastOp",
    "ITensorChunkOp",
    "ITensorConcatOp",
    "ITensorConverterOp",
    "ITensorEmptyOp",
    "ITensorFeedbackConnectOp",
    "ITensorFeedbackOp",
    "ITensorForkOp",
    "ITensorJoinOp",
    "ITensorReadOp",
    "ITensorReassociateOp",
    "ITensorType",
    "ITensorWriteOp",
    "KernelOp",
    "MergeOperation",
    "RoutingOperation",
    "SplitOperation",
    "StreamOp",
    "StreamReadOp",
    "StreamType",
    "StreamWriteOp",
    "TaskOp",
    "YieldOp",
    "box_starts",
    "enclosing_task",
    "fifo_depth",
    "kernel_of",
    "set_fifo_depth",
    "value_name",
]

DEFAULT_DEPTH = 2  # a FIFO without a stored depth: the Vitis HLS default for hls::stream


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


def _int_array(values: Sequence[int]) -> ArrayAttr[IntAttr]:
    return ArrayAttr(IntAttr(v) for v in values)


@irdl_attr_definition
class BoundAttr(ParametrizedAttribute):
    """A run-time trip count of one itensor loop (`streamdsl.itensor.Bound`): printed inside the
    itensor type as `2: (d0, d1, d2)[s0] -> (s0 ceildiv 8) ["cache_len"]`, the loop, the count
    as an affine map of the loop indices (outer ones only) and of the named scalar arguments of
    the kernel (one symbol each)."""

    name = "dataflow.bound"

    loop: IntAttr
    map: AffineMapAttr
    scalars: ArrayAttr[StringAttr]

    @staticmethod
    def from_bound(b: Bound) -> BoundAttr:
        return BoundAttr(IntAttr(b.loop), AffineMapAttr(b.map), ArrayAttr(StringAttr(n) for n in b.scalars))

    @property
    def bound(self) -> Bound:
        return Bound(self.loop.data, self.map.data, tuple(n.data for n in self.scalars))


@irdl_attr_definition
class ITensorType(ParametrizedAttribute, TypeAttribute):
    """`!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>`: tile, trips * steps, map,
    and optionally `, bounds [...]`: run-time trip counts (docs/ir.md, "Run-time scalars"), and
    `, beat N`: a stream narrowed to beats of N bits (docs/hls.md, "Stream beats"; 0: the default)."""

    name = "dataflow.itensor"

    element_type: TensorType
    trips: ArrayAttr[IntAttr]
    steps: ArrayAttr[IntAttr]
    map: AffineMapAttr
    bounds: ArrayAttr[BoundAttr]
    beat: IntAttr

    @staticmethod
    def from_itensor(it: itensor) -> ITensorType:
        return ITensorType(
            TensorType(it.dtype.ir(), it.tile),
            _int_array(it.trips),
            _int_array(it.steps),
            AffineMapAttr(it.map),
            ArrayAttr(BoundAttr.from_bound(b) for b in it.bounds),
            IntAttr(it.beat or 0),
        )

    @property
    def dtype(self) -> DType:
        return dtype_from_ir(self.element_type.element_type)

    @property
    def itensor(self) -> itensor:
        # kept on the instance (asked for on every walk; hashing a type to find it is not free), in
        # its __dict__: the dataclass is frozen, and its equality and hash are of its parameters
        found = self.__dict__.get("_itensor")
        if found is None:
            found = self.__dict__["_itensor"] = _itensor_of(self)
        return found

    def verify(self) -> None:
        if not self.element_type.has_static_shape():
            raise VerifyException(f"invalid !dataflow.itensor: tile: {self.element_type} must have a static shape")
        try:
            self.itensor  # noqa: B018 - building it runs every itensor rule
        except ITensorError as err:
            raise VerifyException(f"invalid !dataflow.itensor: {err}") from None

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            shape, elem = parser.parse_ranked_shape()
            parser.parse_punctuation(",")
            trips = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_integer)
            parser.parse_punctuation("*")
            steps = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_integer)
            parser.parse_punctuation(",")
            start = parser.pos
            try:
                map_ = parser.parse_affine_map()
            except (NotImplementedError, ZeroDivisionError) as err:  # `d0 mod d1`, or folding `4 mod 0`
                parser.raise_error(f"invalid itensor map: {err}; mod, floordiv and ceildiv need a positive constant", start)
            bounds: list[BoundAttr] = []
            beat, more = 0, parser.parse_optional_punctuation(",") is not None
            if more and parser.parse_optional_keyword("bounds"):
                bounds = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, lambda: _parse_bound(parser))
                more = parser.parse_optional_punctuation(",") is not None
            if more:
                parser.parse_keyword("beat")
                beat = parser.parse_integer(allow_negative=False)
        return (TensorType(elem, shape), _int_array(trips), _int_array(steps), AffineMapAttr(map_), ArrayAttr(bounds),
                IntAttr(beat))

    def print_parameters(self, printer: Printer) -> None:
        shape = "x".join(str(d) for d in self.element_type.get_shape())
        with printer.in_angle_brackets():
            printer.print_string(f"{shape}x")
            printer.print_attribute(self.element_type.element_type)
            trips = ", ".join(str(t.data) for t in self.trips)
            steps = ", ".join(str(s.data) for s in self.steps)
            printer.print_string(f", [{trips}] * [{steps}], {self.map.data}")
            if self.bounds.data:
                printer.print_string(f", bounds [{', '.join(str(b.bound) for b in self.bounds)}]")
            if self.beat.data:
                printer.print_string(f", beat {self.beat.data}")


def _parse_bound(parser: AttrParser) -> BoundAttr:
    loop = parser.parse_integer(allow_negative=False)
    parser.parse_punctuation(":")
    map_ = parser.parse_affine_map()
    parser.parse_punctuation("[")
    names = [] if parser.parse_optional_punctuation("]") else [parser.parse_str_literal()]
    while names and not parser.parse_optional_punctuation("]"):
        parser.parse_punctuation(",")
        names.append(parser.parse_str_literal())
    return BoundAttr(IntAttr(loop), AffineMapAttr(map_), ArrayAttr(StringAttr(n) for n in names))


@lru_cache(maxsize=4096)
def _itensor_of(attr: ITensorType) -> itensor:
    """Verifiers ask for the same types over and over; attributes are immutable, so cache."""
    try:
        dtype = attr.dtype
    except ValueError as err:
        raise ITensorError(f"dtype: {err}") from None
    return itensor(
        dtype,
        tile=attr.element_type.get_shape(),
        trips=[t.data for t in attr.trips],
        steps=[s.data for s in attr.steps],
        map=attr.map.data,
        bounds=[b.bound for b in attr.bounds],
        beat=attr.beat.data or None,
    )


@irdl_attr_definition
class StreamType(ParametrizedAttribute, TypeAttribute):
    """`!dataflow.stream<tensor<1x64xf32>, depth = 2>`: a FIFO of tokens of one type."""

    name = "dataflow.stream"

    element_type: Attribute
    depth: IntAttr

    def __init__(self, element_type: Attribute, depth: int | IntAttr = DEFAULT_DEPTH):
        super().__init__(element_type, IntAttr(depth) if isinstance(depth, int) else depth)

    def verify(self) -> None:
        if self.depth.data < 1:
            raise VerifyException(f"invalid !dataflow.stream: depth must be >= 1 (a FIFO holds a token), got {self.depth.data}")
        if self.depth.data > INT64_MAX:
            raise VerifyException(f"invalid !dataflow.stream: depth {self.depth.data} does not fit in int64")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            elem = parser.parse_type()
            parser.parse_punctuation(",")
            parser.parse_keyword("depth")
            parser.parse_punctuation("=")
            depth = parser.parse_integer(allow_negative=True)
        return (elem, IntAttr(depth))

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_attribute(self.element_type)
            printer.print_string(f", depth = {self.depth.data}")


# ---------------------------------------------------------------------------------------------
# Abstract bases
# ---------------------------------------------------------------------------------------------


class DataflowOperation(IRDLOperation, ABC):
    """Every dataflow op: each message of its own verification (IRDL's constraints too) starts
    with the op's name, so a diagnostic names the culprit."""

    def verify_first_(self) -> None:
        """Rules checked before IRDL's constraints, which would report them obscurely."""

    def verify(self, verify_nested_ops: bool = True) -> None:
        if verify_nested_ops:
            for region in self.regions:
                region.verify()
        try:
            self.verify_first_()
            super().verify(verify_nested_ops=False)
        except VerifyException as err:
            if not str(err).startswith(self.name):
                err.args = (f"{self.name}: {err}", *err.args[1:])
            raise


class OneToOneOperation(DataflowOperation, ABC):
    """One itensor in, one out, token for token or through a buffer."""

    source = operand_def(ITensorType)
    result = result_def(ITensorType)
    assembly_format = "$source attr-dict `:` type($source) `->` type($result)"

    def __init__(self, source: SSAValue, result_type: Attribute, properties: dict[str, Attribute] | None = None):
        super().__init__(operands=[source], result_types=[result_type], properties=properties or {})


class SplitOperation(DataflowOperation, ABC):
    """One itensor in, several out (fork copies every token, chunk routes each to one part)."""

    source = operand_def(ITensorType)
    outputs = var_result_def(ITensorType)
    assembly_format = "$source attr-dict `:` type($source) `->` type($outputs)"

    @property
    def whole(self) -> SSAValue:
        return self.source

    @property
    def parts(self) -> Sequence[SSAValue]:
        return self.outputs


class MergeOperation(DataflowOperation, ABC):
    """Several itensors in, one out (join round robin, concat by position)."""

    sources = var_operand_def(ITensorType)
    result = result_def(ITensorType)
    assembly_format = "$sources attr-dict `:` type($sources) `->` type($result)"

    @property
    def whole(self) -> SSAValue:
        return self.result

    @property
    def parts(self) -> Sequence[SSAValue]:
        return self.sources


class RoutingOperation(DataflowOperation, ABC):
    """Moves each token of the `whole` stream to (split) or from (merge) exactly one of the
    `parts`, unchanged, keeping order within each part. The one definition of which token goes
    where: the simulators, the timing model and the HLS emitter all call `route()`."""

    @property
    @abstractmethod
    def whole(self) -> SSAValue: ...

    @property
    @abstractmethod
    def parts(self) -> Sequence[SSAValue]: ...

    @property
    def splits(self) -> bool:
        """True when the whole stream is the operand (chunk), False when it is the result."""
        return self.whole in self.operands

    @abstractmethod
    def route(self) -> np.ndarray:
        """`route()[k]`: the index of the part that token k of the whole stream belongs to.
        Raises VerifyException when the parts cannot be routed (a verifier rule)."""


def _route_by_dim(op: RoutingOperation, dim: int) -> np.ndarray:
    """Chunk / concat: a whole token belongs to the part its tile lies in along `dim`; each part
    must stream its tiles in the order the whole visits them (else a converter is needed)."""
    whole, parts = _it(op.whole), [_it(p) for p in op.parts]
    starts = np.cumsum([0] + [p.shape[dim] for p in parts])
    offsets = whole.offsets()
    route = np.searchsorted(starts, offsets[:, dim], side="right") - 1
    for k, offset in enumerate(offsets):
        if offset[dim] + whole.tile[dim] > starts[route[k] + 1]:
            raise VerifyException(
                f"{op.name}: tile at {offset.tolist()} straddles parts {route[k]} and {route[k] + 1} along dim {dim}"
            )
    for i, part in enumerate(parts):
        local = offsets[route == i].copy()
        local[:, dim] -= starts[i]
        if part.tile != whole.tile or not np.array_equal(part.offsets(), local):
            raise VerifyException(
                f"{op.name}: part {i} ({part}) does not stream its tiles in the order of the whole ({whole}); "
                "insert a converter on that part"
            )
    return route


# ---------------------------------------------------------------------------------------------
# itensor-level ops
# ---------------------------------------------------------------------------------------------


def _it(value: SSAValue | Attribute) -> itensor:
    attr = value.type if isinstance(value, SSAValue) else value
    assert isinstance(attr, ITensorType)
    return attr.itensor


@irdl_op_definition
class ITensorEmptyOp(DataflowOperation):
    """A placeholder itensor, the destination a task writes its output stream into."""

    name = "dataflow.itensor_empty"
    result = result_def(ITensorType)
    assembly_format = "attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, type_: ITensorType):
        super().__init__(result_types=[type_])


@irdl_op_definition
class ITensorReadOp(DataflowOperation):
    """Pull the next tile of an itensor."""

    name = "dataflow.itensor_read"
    source = operand_def(ITensorType)
    result = result_def(TensorType)
    assembly_format = "$source attr-dict `:` type($source) `->` type($result)"

    def __init__(self, source: SSAValue):
        assert isinstance(source.type, ITensorType)
        super().__init__(operands=[source], result_types=[source.type.element_type])

    def verify_(self) -> None:
        assert isinstance(self.source.type, ITensorType)
        if self.result.type != self.source.type.element_type:
            raise VerifyException(
                f"{self.name}: result type {self.result.type} must be the tile type {self.source.type.element_type} "
                "of the source itensor"
            )


@irdl_op_definition
class ITensorWriteOp(DataflowOperation):
    """Push one tile into an itensor; returns the updated itensor (destination-passing style)."""

    name = "dataflow.itensor_write"
    T: ClassVar = VarConstraint("T", BaseAttr(ITensorType))
    value = operand_def(TensorType)
    dest = operand_def(T)
    result = result_def(T)
    assembly_format = "$value `,` $dest attr-dict `:` type($value) `->` type($dest)"

    def __init__(self, value: SSAValue, dest: SSAValue):
        super().__init__(operands=[value, dest], result_types=[dest.type])

    def verify_first_(self) -> None:
        if self.result.type != self.dest.type:
            raise VerifyException(
                f"{self.name}: result type {self.result.type} must equal the destination type {self.dest.type}"
            )

    def verify_(self) -> None:
        assert isinstance(self.dest.type, ITensorType)
        if self.value.type != self.dest.type.element_type:
            raise VerifyException(
                f"{self.name}: value type {self.value.type} must be the tile type {self.dest.type.element_type} "
                "of the destination itensor"
            )


def _same_stream(op: IRDLOperation, what: str, src: SSAValue, dst: SSAValue) -> None:
    if _it(src) != _it(dst):
        raise VerifyException(f"{op.name}: {what} type {dst.type} must stream like the source type {src.type}")


@irdl_op_definition
class ITensorForkOp(SplitOperation):
    """Duplicate one stream to several consumers (one producer, many consumers)."""

    name = "dataflow.itensor_fork"

    def __init__(self, source: SSAValue, outputs: int | Sequence[Attribute]):
        """`outputs`: how many copies of the source type, or the result types (each streams alike)."""
        types = [source.type] * outputs if isinstance(outputs, int) else list(outputs)
        super().__init__(operands=[source], result_types=[types])

    def verify_(self) -> None:
        if len(self.outputs) < 2:
            raise VerifyException(f"{self.name}: needs at least two results, got {len(self.outputs)}")
        for out in self.outputs:
            _same_stream(self, "result", self.source, out)


@irdl_op_definition
class ITensorJoinOp(MergeOperation, RoutingOperation):
    """Interleave m lanes round robin: result token k is the next token of source k mod m.

    Each source carries T/m tokens of the result's tile type (T: the result's token count); a
    source's own tensor coordinates do not matter, its tokens land where the result puts them
    (source i supplies result tokens i, i + m, i + 2m, ...). docs/ir.md, "Routing".
    """

    name = "dataflow.itensor_join"

    def __init__(self, sources: Sequence[SSAValue], result_type: Attribute):
        super().__init__(operands=[sources], result_types=[result_type])

    def route(self) -> np.ndarray:
        return np.arange(_it(self.result).num_tokens) % len(self.sources)

    def verify_(self) -> None:
        m, result = len(self.sources), _it(self.result)
        if m < 2:
            raise VerifyException(f"{self.name}: needs at least two sources, got {m}")
        if result.num_tokens % m:
            raise VerifyException(
                f"{self.name}: the result's {result.num_tokens} tokens cannot be taken round robin from {m} sources"
            )
        for i, src in enumerate(self.sources):
            it = _it(src)
            if it.dtype != result.dtype or it.tile != result.tile or it.num_tokens * m != result.num_tokens:
                raise VerifyException(
                    f"{self.name}: source {i} ({src.type}) must carry {result.num_tokens // m} tokens of the result's "
                    f"tile type {self.result.type.element_type}, 1/{m} of the result {self.result.type}"
                )


def _same_tensor(op: IRDLOperation, src: itensor, dst: itensor) -> None:
    if src.dtype != dst.dtype:
        raise VerifyException(f"{op.name}: source dtype {src.dtype.name} differs from result dtype {dst.dtype.name}")
    if src.shape != dst.shape:
        raise VerifyException(f"{op.name}: source shape {list(src.shape)} differs from result shape {list(dst.shape)}")


@irdl_op_definition
class ITensorCastOp(OneToOneOperation):
    """Retype an itensor of the same tensor (dtype and shape) without moving data."""

    name = "dataflow.itensor_cast"
    traits = traits_def(Pure())

    def verify_(self) -> None:
        _same_tensor(self, _it(self.source), _it(self.result))


@irdl_op_definition
class ITensorFeedbackOp(DataflowOperation):
    """A stream read above the op that writes it: the one `itensor_feedback_connect` naming this
    result gives its tokens (a backward edge, as timely dataflow's `feedback` / `connect_loop`).
    A kernel body stays an SSA block; this pair is its only way to a cycle in the stream graph.
    Like a cast it is no process: its reader reads the connected value's FIFO."""

    name = "dataflow.itensor_feedback"
    result = result_def(ITensorType)
    assembly_format = "attr-dict `:` type($result)"
    traits = lazy_traits_def(lambda: (HasParent(KernelOp),))

    def __init__(self, type_: ITensorType):
        super().__init__(result_types=[type_])

    def _connects(self) -> list[ITensorFeedbackConnectOp]:
        return [use.operation for use in self.result.uses
                if isinstance(use.operation, ITensorFeedbackConnectOp) and use.operation.feedback == self.result]

    @property
    def source(self) -> SSAValue | None:
        """The value connected to this stream (None before its connect op is built)."""
        connects = self._connects()
        return connects[0].source if len(connects) == 1 else None

    def verify_(self) -> None:
        if len(connects := self._connects()) != 1:
            raise VerifyException(f"{self.name} {value_name(self.result)}: {len(connects)} dataflow.itensor_feedback_connect "
                                  "name it; exactly one must give the stream its producer")


@irdl_op_definition
class ITensorFeedbackConnectOp(DataflowOperation):
    """`itensor_feedback_connect %v to %fb`: the tokens of `%v` are those `%fb` carries back."""

    name = "dataflow.itensor_feedback_connect"
    T: ClassVar = VarConstraint("T", BaseAttr(ITensorType))
    source = operand_def(T)
    feedback = operand_def(T)
    assembly_format = "$source `to` $feedback attr-dict `:` type($source)"
    traits = lazy_traits_def(lambda: (HasParent(KernelOp),))

    def __init__(self, source: SSAValue, feedback: SSAValue):
        super().__init__(operands=[source, feedback])

    def verify_first_(self) -> None:
        if self.source.type != self.feedback.type:
            raise VerifyException(f"{self.name}: {value_name(self.source)} of type {self.source.type} cannot feed "
                                  f"{value_name(self.feedback)} of type {self.feedback.type}: the types must be equal")

    def verify_(self) -> None:
        if not isinstance(self.feedback.owner, ITensorFeedbackOp):
            raise VerifyException(f"{self.name}: {value_name(self.feedback)} is not a dataflow.itensor_feedback result")
        value = self.source
        while isinstance(value.owner, ITensorCastOp):
            value = value.owner.source
        if value == self.feedback:
            raise VerifyException(f"{self.name}: {value_name(self.feedback)} is connected to itself: a feedback stream "
                                  "needs a producer (a process) on its cycle")


def value_name(value: SSAValue) -> str:
    """A stream as error messages name it: `%x`, or its type when it has no SSA name."""
    return f"%{value.name_hint}" if value.name_hint else f"<{value.type}>"


@irdl_op_definition
class ITensorReassociateOp(OneToOneOperation):
    """Reshape: regroup the tile shape and iteration space; tokens map one to one."""

    name = "dataflow.itensor_reassociate"
    traits = traits_def(Pure())

    def verify_(self) -> None:
        src, dst = _it(self.source), _it(self.result)
        if src.dtype != dst.dtype:
            raise VerifyException(f"{self.name}: source dtype {src.dtype.name} differs from result dtype {dst.dtype.name}")
        if src.token_elements != dst.token_elements or src.num_tokens != dst.num_tokens:
            raise VerifyException(
                f"{self.name}: must keep tokens one to one: source has {src.num_tokens} tokens of "
                f"{src.token_elements} elements, result {dst.num_tokens} of {dst.token_elements}"
            )


def _check_split(op: IRDLOperation, dim: int, whole: itensor, parts: Sequence[itensor]) -> None:
    if not 0 <= dim < whole.rank:
        raise VerifyException(f"{op.name}: dim {dim} is out of range for rank {whole.rank}")
    if len(parts) < 2:
        raise VerifyException(f"{op.name}: needs at least two parts, got {len(parts)}")
    for part in parts:
        if part.dtype != whole.dtype:
            raise VerifyException(f"{op.name}: part dtype {part.dtype.name} differs from {whole.dtype.name}")
        others = [s for d, s in enumerate(part.shape) if d != dim]
        if others != [s for d, s in enumerate(whole.shape) if d != dim]:
            raise VerifyException(
                f"{op.name}: part shape {list(part.shape)} must match {list(whole.shape)} outside dim {dim}"
            )
    total = sum(p.shape[dim] for p in parts)
    if total != whole.shape[dim]:
        raise VerifyException(f"{op.name}: parts add up to {total} along dim {dim}, the whole has {whole.shape[dim]}")


@irdl_op_definition
class ITensorChunkOp(SplitOperation, RoutingOperation):
    """Split an itensor into consecutive pieces along one tensor dim; each token goes to the
    piece its tile lies in."""

    name = "dataflow.itensor_chunk"
    dim = prop_def(IntegerAttr[I64])
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(self, source: SSAValue, dim: int, part_types: Sequence[Attribute]):
        super().__init__(operands=[source], result_types=[part_types], properties={"dim": IntegerAttr(dim, 64)})

    def route(self) -> np.ndarray:
        return _route_by_dim(self, self.dim.value.data)

    def verify_(self) -> None:
        _check_split(self, self.dim.value.data, _it(self.source), [_it(o) for o in self.outputs])
        self.route()


@irdl_op_definition
class ITensorConcatOp(MergeOperation, RoutingOperation):
    """Join itensors into one along a tensor dim (the inverse of chunk): each result token comes
    from the source its tile lies in."""

    name = "dataflow.itensor_concat"
    dim = prop_def(IntegerAttr[I64])
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(self, sources: Sequence[SSAValue], dim: int, result_type: Attribute):
        super().__init__(operands=[sources], result_types=[result_type], properties={"dim": IntegerAttr(dim, 64)})

    def route(self) -> np.ndarray:
        return _route_by_dim(self, self.dim.value.data)

    def verify_(self) -> None:
        _check_split(self, self.dim.value.data, _it(self.result), [_it(s) for s in self.sources])
        self.route()


@irdl_op_definition
class ITensorConverterOp(OneToOneOperation):
    """Reorder a stream through an on-chip ping-pong buffer (layout converter).

    `buffer_shape` is one bank of the buffer; `shared_loops` is how many outer loops source and
    destination share (the buffer is refilled once per iteration of them).
    """

    name = "dataflow.itensor_converter"
    buffer_shape = opt_prop_def(DenseArrayBase[I64])
    shared_loops = opt_prop_def(IntegerAttr[I64])
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(
        self,
        source: SSAValue,
        result_type: Attribute,
        buffer_shape: Sequence[int] | None = None,
        shared_loops: int | None = None,
    ):
        properties: dict[str, Attribute] = {}
        if buffer_shape is not None:
            properties["buffer_shape"] = DenseArrayBase.from_list(i64, buffer_shape)
        if shared_loops is not None:
            properties["shared_loops"] = IntegerAttr(shared_loops, 64)
        super().__init__(source, result_type, properties)

    def verify_(self) -> None:
        src, dst = _it(self.source), _it(self.result)
        _same_tensor(self, src, dst)
        if self.shared_loops is not None:
            shared, most = self.shared_loops.value.data, min(len(src.trips), len(dst.trips))
            if not 0 <= shared <= most:
                raise VerifyException(
                    f"{self.name}: shared_loops {shared} must be between 0 and {most}, the loop count of "
                    "the shallower of source and result"
                )
        if self.buffer_shape is None:
            return
        buffer = list(self.buffer_shape.get_values())
        if len(buffer) != src.rank or any(not 1 <= b <= s for b, s in zip(buffer, src.shape)):
            raise VerifyException(
                f"{self.name}: buffer shape {buffer} must have rank {src.rank} and fit in the tensor {list(src.shape)}"
            )


# ---------------------------------------------------------------------------------------------
# Stream-level ops
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class StreamOp(DataflowOperation):
    """A FIFO. `layout` keeps the itensor type it was bufferized from."""

    name = "dataflow.stream"
    result = result_def(StreamType)
    layout = opt_prop_def(ITensorType)
    assembly_format = "(`layout` $layout^)? attr-dict `:` type($result)"

    def __init__(self, type_: StreamType, layout: ITensorType | None = None):
        super().__init__(result_types=[type_], properties={"layout": layout} if layout is not None else {})

    def verify_(self) -> None:
        assert isinstance(self.result.type, StreamType)
        if self.layout is not None and self.layout.element_type != self.result.type.element_type:
            raise VerifyException(
                f"{self.name}: token type {self.result.type.element_type} differs from the layout's tile "
                f"type {self.layout.element_type}"
            )


def _check_token(op: IRDLOperation, value: SSAValue, stream: SSAValue) -> None:
    assert isinstance(stream.type, StreamType)
    if value.type != stream.type.element_type:
        raise VerifyException(f"{op.name}: value type {value.type} differs from the stream's token type {stream.type.element_type}")


@irdl_op_definition
class StreamReadOp(DataflowOperation):
    name = "dataflow.stream_read"
    stream = operand_def(StreamType)
    result = result_def()
    assembly_format = "$stream attr-dict `:` type($stream) `->` type($result)"

    def __init__(self, stream: SSAValue):
        assert isinstance(stream.type, StreamType)
        super().__init__(operands=[stream], result_types=[stream.type.element_type])

    def verify_(self) -> None:
        _check_token(self, self.result, self.stream)


@irdl_op_definition
class StreamWriteOp(DataflowOperation):
    name = "dataflow.stream_write"
    value = operand_def()
    stream = operand_def(StreamType)
    assembly_format = "$value `,` $stream attr-dict `:` type($value) `->` type($stream)"

    def __init__(self, value: SSAValue, stream: SSAValue):
        super().__init__(operands=[value, stream])

    def verify_(self) -> None:
        _check_token(self, self.value, self.stream)


@irdl_op_definition
class BufferOp(DataflowOperation):
    """On-chip memory with `banks` copies (2 = ping-pong)."""

    name = "dataflow.buffer"
    result = result_def(MemRefType)
    banks = prop_def(IntegerAttr[I64], default_value=IntegerAttr(2, 64))
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type_: MemRefType, banks: int = 2):
        super().__init__(result_types=[type_], properties={"banks": IntegerAttr(banks, 64)})

    def verify_(self) -> None:
        if self.banks.value.data < 1:
            raise VerifyException(f"{self.name}: banks must be >= 1, got {self.banks.value.data}")


# ---------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------


def _types(values: Sequence[SSAValue]) -> str:
    return "(" + ", ".join(str(v.type) for v in values) + ")"


def _check_region_signature(op: IRDLOperation, operands: Sequence[SSAValue], results: Sequence[SSAValue]) -> None:
    block = op.regions[0].block
    if [a.type for a in block.args] != [o.type for o in operands]:
        raise VerifyException(
            f"{op.name} @{op.sym_name.data}: block arguments {_types(block.args)} must have the operand "
            f"types {_types(operands)}"
        )
    last = block.last_op
    if not isinstance(last, YieldOp):
        raise VerifyException(f"{op.name} @{op.sym_name.data}: body must end with dataflow.yield")
    if [v.type for v in last.values] != [r.type for r in results]:
        raise VerifyException(
            f"{op.name} @{op.sym_name.data}: yields {_types(last.values)} but the results are {_types(results)}"
        )


@irdl_op_definition
class KernelOp(DataflowOperation):
    """A fused accelerator: tensors in HBM cross its boundary through dma_load / dma_store.

    Integer operands are run-time scalars (read once per invocation): `scalars` names them in
    operand order and `scalar_max` gives each one's declared maximum; itensor bounds inside the
    kernel refer to them by name (docs/ir.md, "Run-time scalars")."""

    name = "dataflow.kernel"
    sym_name = prop_def(StringAttr)
    inputs = var_operand_def(TensorType | IntegerType)
    outputs = var_result_def(TensorType)
    body = region_def("single_block")
    scalars = opt_prop_def(ArrayAttr[StringAttr])
    scalar_max = opt_prop_def(DenseArrayBase[I64])
    traits = traits_def(IsolatedFromAbove())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$sym_name `(` $inputs `)` attr-dict-with-keyword `:` functional-type($inputs, $outputs) $body"

    def __init__(self, sym_name: str, inputs: Sequence[SSAValue], output_types: Sequence[Attribute], body: Region,
                 scalars: Sequence[tuple[str, int]] = ()):
        properties: dict[str, Attribute] = {"sym_name": StringAttr(sym_name)}
        if scalars:
            properties["scalars"] = ArrayAttr(StringAttr(n) for n, _ in scalars)
            properties["scalar_max"] = DenseArrayBase.from_list(i64, [m for _, m in scalars])
        super().__init__(operands=[inputs], result_types=[output_types], properties=properties, regions=[body])

    def clone_on(self, operands: Sequence[SSAValue]) -> KernelOp:
        """A copy of this kernel (body, scalars) taking `operands` instead of its own."""
        scalars = [(name, most) for name, (_, most) in self.scalar_args.items()]
        return KernelOp(self.sym_name.data, operands, [r.type for r in self.outputs], self.body.clone(), scalars)

    @property
    def tasks(self) -> dict[str, TaskOp]:
        """The kernel's tasks by name, in program order."""
        return {op.sym_name.data: op for op in self.body.block.ops if isinstance(op, TaskOp)}

    @property
    def scalar_args(self) -> dict[str, tuple[SSAValue, int]]:
        """Each run-time scalar by name: its block argument and its declared maximum."""
        if self.scalars is None or self.scalar_max is None:
            return {}
        args = [a for a in self.body.block.args if isinstance(a.type, IntegerType)]
        return {n.data: (a, int(m)) for n, a, m in zip(self.scalars, args, self.scalar_max.get_values())}

    def verify_(self) -> None:
        _check_region_signature(self, self.inputs, self.outputs)
        _check_acyclic(self)
        _check_scalars(self)
        for op in self.body.block.ops:
            _check_depth_attribute(op)


def kernel_of(op: Operation) -> KernelOp:
    """The first `dataflow.kernel` inside `op` (a module, a function): a lowered block's one kernel."""
    kernel = next((o for o in op.walk() if isinstance(o, KernelOp)), None)
    if kernel is None:
        raise ValueError(f"{op.name} holds no dataflow.kernel")
    return kernel


def enclosing_task(op: Operation) -> TaskOp | None:
    """The `dataflow.task` whose body holds `op` (at any depth), None outside every task."""
    while (op := op.parent_op()) is not None:  # type: ignore[assignment]
        if isinstance(op, TaskOp):
            return op
    return None


def _check_scalars(kernel: KernelOp) -> None:
    """Scalars are named once each, with a maximum; every bounded stream names only them and fits
    its maximum stream when they are at their maxima."""
    count = sum(isinstance(v.type, IntegerType) for v in kernel.inputs)
    names = [n.data for n in kernel.scalars] if kernel.scalars is not None else []
    maxima = list(kernel.scalar_max.get_values()) if kernel.scalar_max is not None else []
    where = f"{kernel.name} @{kernel.sym_name.data}"
    if len(names) != count or len(maxima) != count or len(set(names)) != count:
        raise VerifyException(f"{where}: its {count} integer operand(s) are run-time scalars: give `scalars` (distinct "
                              f"names) and `scalar_max` with one entry each, got {names} and {maxima}")
    worst = dict(zip(names, maxima))
    for op in kernel.walk():
        for value in (*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)):
            if isinstance(value.type, ITensorType) and value.type.bounds.data:
                it = value.type.itensor
                if unknown := sorted(it.scalars - worst.keys()):
                    raise VerifyException(f"{where}: {op.name} has a stream bounded by {unknown[0]!r}, which is not a "
                                          f"scalar of the kernel (its scalars: {names})")
                try:
                    it.bind(worst)
                except ITensorError as err:
                    raise VerifyException(f"{where}: {op.name}: at the scalars' maxima {worst}: {err}") from None


def _check_acyclic(kernel: KernelOp) -> None:
    """Every value is defined before it is used: a use of a later value is a cycle in the stream
    graph, which no simulator, sizing model or HLS dataflow region can run."""
    defined = set(kernel.body.block.args)
    for op in kernel.body.block.ops:
        for operand in op.operands:
            if operand not in defined:
                value = f"%{operand.name_hint}" if operand.name_hint else "a value"
                raise VerifyException(
                    f"{kernel.name} @{kernel.sym_name.data}: {op.name} reads {value} before "
                    f"{getattr(operand.owner, 'name', 'its producer')} defines it: a cycle in the kernel's stream "
                    "graph. Kernels must be acyclic (each op uses only values defined above it)"
                )
        defined.update(op.results)


def _check_depth_attribute(op: Operation) -> None:
    """A `depth` attribute (docs/ir.md) is a positive i64, or an array of them, one per result: the
    one meaning the simulators, FIFO sizing and the HLS emitter share."""
    attr = op.attributes.get("depth")
    if attr is None:
        return
    if isinstance(attr, IntegerAttr) and len(op.results) == 1:
        values = [attr.value.data]
    elif isinstance(attr, DenseArrayBase) and isinstance(attr.elt_type, IntegerType):
        values = list(attr.get_values())
    elif isinstance(attr, ArrayAttr) and all(isinstance(a, IntegerAttr) for a in attr.data):
        values = [a.value.data for a in attr.data]
    else:
        values = None
    if values is None or len(values) != len(op.results) or any(not isinstance(v, int) or v < 1 for v in values):
        raise VerifyException(
            f"{op.name}: depth = {attr} must be a positive integer (`depth = 16 : i64`) for an op with one "
            "result, or `array<i64: ...>` with one positive entry per result; a FIFO holds at least one token"
        )


@irdl_op_definition
class TaskOp(DataflowOperation):
    """One hardware process. `outs` are destinations (itensor_empty at the itensor level): the
    results have their types. At the stream level a task has streams as inputs and no results."""

    name = "dataflow.task"
    sym_name = prop_def(StringAttr)
    inputs = var_operand_def()
    inits = var_operand_def()
    outputs = var_result_def()
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), HasParent(KernelOp))
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = (
        "$sym_name `ins` `(` $inputs `:` type($inputs) `)` `outs` `(` $inits `:` type($inits) `)` "
        "attr-dict-with-keyword (`->` type($outputs)^)? $body"
    )

    def __init__(self, sym_name: str, inputs: Sequence[SSAValue], inits: Sequence[SSAValue], body: Region):
        """The results take the types of `inits` (none at the stream level)."""
        super().__init__(
            operands=[inputs, inits],
            result_types=[[i.type for i in inits]],
            properties={"sym_name": StringAttr(sym_name)},
            regions=[body],
        )

    def verify_(self) -> None:
        if [i.type for i in self.inits] != [o.type for o in self.outputs]:
            raise VerifyException(
                f"{self.name} @{self.sym_name.data}: results {_types(self.outputs)} must have the types of the "
                f"outs {_types(self.inits)}"
            )
        _check_region_signature(self, [*self.inputs, *self.inits], self.outputs)


@irdl_op_definition
class YieldOp(DataflowOperation):
    name = "dataflow.yield"
    values = var_operand_def()
    assembly_format = "attr-dict ($values^ `:` type($values))?"
    traits = traits_def(IsTerminator(), HasParent(KernelOp, TaskOp))

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[values])


def _check_dma(op: IRDLOperation, tensor: SSAValue, stream: SSAValue) -> None:
    assert isinstance(tensor.type, TensorType)
    it = _it(stream)
    shape = list(tensor.type.get_shape())
    if shape != list(it.shape) or tensor.type.element_type != it.dtype.ir():
        raise VerifyException(
            f"{op.name}: tensor {tensor.type} must have the shape {list(it.shape)} and dtype {it.dtype.name} of {stream.type}"
        )


@irdl_op_definition
class DmaLoadOp(DataflowOperation):
    """Read a tensor from HBM as a stream in the consumer's itensor order. With `offsets`, the
    stream covers the box of the itensor's shape at those offsets (a slice of the tensor): the
    stream's coordinates are relative to the box, and the box lies inside the tensor."""

    name = "dataflow.dma_load"
    source = operand_def(TensorType)
    result = result_def(ITensorType)
    offsets = opt_prop_def(DenseArrayBase[I64])
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$source attr-dict `:` type($source) `->` type($result)"

    def __init__(self, source: SSAValue, result_type: Attribute, offsets: Sequence[int] | None = None):
        properties = {"offsets": DenseArrayBase.from_list(i64, list(offsets))} if offsets is not None else {}
        super().__init__(operands=[source], result_types=[result_type], properties=properties)

    @property
    def box(self) -> tuple[slice, ...]:
        """The region of the source tensor the stream reads (numpy index)."""
        return _box(self.result, self.offsets)

    def verify_(self) -> None:
        _check_box(self, self.source, self.result, self.offsets)


def _box(stream: SSAValue, offsets: DenseArrayBase | None) -> tuple[slice, ...]:
    it = _it(stream)
    starts = offsets.get_values() if offsets is not None else (0,) * len(it.shape)
    return tuple(slice(int(o), int(o) + n) for o, n in zip(starts, it.shape))


def box_starts(box: Sequence[slice]) -> tuple[int, ...]:
    """Where a DMA's box lies in its tensor: its offsets, () for a box at the origin."""
    starts = tuple(int(s.start) for s in box)
    return starts if any(starts) else ()


def _check_box(op: IRDLOperation, tensor: SSAValue, stream: SSAValue, offsets: DenseArrayBase | None) -> None:
    """A DMA of the whole `tensor` (no offsets), or of a box of it that lies inside it."""
    if offsets is None:
        _check_dma(op, tensor, stream)
        return
    assert isinstance(tensor.type, TensorType)
    it, shape, starts = _it(stream), list(tensor.type.get_shape()), list(offsets.get_values())
    if tensor.type.element_type != it.dtype.ir() or len(starts) != len(shape) or len(it.shape) != len(shape):
        raise VerifyException(f"{op.name}: tensor {tensor.type}, offsets {starts} and {stream.type} "
                              "need one rank and one dtype")
    if any(o < 0 or o + n > s for o, n, s in zip(starts, it.shape, shape)):
        raise VerifyException(f"{op.name}: the box {list(it.shape)} at offsets {starts} does not lie inside the "
                              f"tensor {tensor.type}")


@dataclass(frozen=True)
class DmaMember:
    """One load of a `dma_sequence`: its tensor, its stream and the box of the tensor it reads."""

    source: SSAValue
    result: SSAValue
    box: tuple[slice, ...]


@irdl_op_definition
class DmaSequenceOp(DataflowOperation):
    """Read several tensors from HBM one after the other through one set of ports (docs/ir.md):
    member k streams as its own `dma_load` would, starting once member k-1's last token is out.
    Loads whose readers run one after the other share ports this way instead of each owning
    some that sit idle while the others run (lowering/transforms/share_hbm_ports.py). `offsets`
    gives each member's box as a `dma_load`'s does (an empty array: the whole tensor)."""

    name = "dataflow.dma_sequence"
    sources = var_operand_def(TensorType)
    outputs = var_result_def(ITensorType)
    offsets = prop_def(ArrayAttr[DenseArrayBase[I64]])
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$sources attr-dict `:` type($sources) `->` type($outputs)"

    def __init__(self, loads: Sequence[DmaLoadOp]):
        """The sequence of `loads` (their sources, types and boxes), in their order."""
        offsets = [load.offsets or DenseArrayBase.from_list(i64, []) for load in loads]
        super().__init__(operands=[[load.source for load in loads]], result_types=[[load.result.type for load in loads]],
                         properties={"offsets": ArrayAttr(offsets)})

    def _offsets(self, k: int) -> DenseArrayBase | None:
        attr = self.offsets.data[k]
        return attr if len(attr.get_values()) else None

    @property
    def members(self) -> list[DmaMember]:
        return [DmaMember(s, r, _box(r, self._offsets(k))) for k, (s, r) in enumerate(zip(self.sources, self.outputs))]

    def verify_(self) -> None:
        if not self.sources or len(self.sources) != len(self.outputs) or len(self.offsets.data) != len(self.sources):
            raise VerifyException(f"{self.name}: {len(self.sources)} tensors, {len(self.outputs)} streams and "
                                  f"{len(self.offsets.data)} offsets; give each member one of each")
        for k, (source, result) in enumerate(zip(self.sources, self.outputs)):
            _check_box(self, source, result, self._offsets(k))


@irdl_op_definition
class DmaStoreOp(DataflowOperation):
    """Write a stream to a tensor in HBM."""

    name = "dataflow.dma_store"
    source = operand_def(ITensorType)
    result = result_def(TensorType)
    assembly_format = "$source attr-dict `:` type($source) `->` type($result)"

    def __init__(self, source: SSAValue):
        """The result is the whole tensor of the source stream, in HBM."""
        it = _it(source)
        super().__init__(operands=[source], result_types=[TensorType(it.dtype.ir(), it.shape)])

    def verify_(self) -> None:
        _check_dma(self, self.result, self.source)


DMA_OPS = (DmaLoadOp, DmaSequenceOp, DmaStoreOp)  # the nodes that move tensors between HBM and streams

DATAFLOW_OPS: list[type[IRDLOperation]] = [
    ITensorEmptyOp,
    ITensorReadOp,
    ITensorWriteOp,
    ITensorForkOp,
    ITensorJoinOp,
    ITensorCastOp,
    ITensorFeedbackOp,
    ITensorFeedbackConnectOp,
    ITensorReassociateOp,
    ITensorChunkOp,
    ITensorConcatOp,
    ITensorConverterOp,
    StreamOp,
    StreamReadOp,
    StreamWriteOp,
    BufferOp,
    KernelOp,
    TaskOp,
    YieldOp,
    DmaLoadOp,
    DmaSequenceOp,
    DmaStoreOp,
]
# ---------------------------------------------------------------------------------------------
# FIFO depths (docs/ir.md, "FIFO depths")
# ---------------------------------------------------------------------------------------------


def fifo_depth(value: SSAValue) -> int | None:
    """The depth stored for the FIFO of `value`, None when none is: the `!dataflow.stream` depth
    at the stream level; at the itensor level the producing op's `depth` attribute (an integer for
    one result, one entry per result otherwise)."""
    if isinstance(value.type, StreamType):
        return value.type.depth.data
    owner = value.owner
    attr = owner.attributes.get("depth") if isinstance(owner, Operation) else None
    index = getattr(value, "index", 0)
    if isinstance(attr, IntegerAttr):
        return attr.value.data
    if isinstance(attr, DenseArrayBase):
        return int(attr.get_values()[index])
    if isinstance(attr, ArrayAttr) and isinstance(attr.data[index], IntegerAttr):
        return attr.data[index].value.data  # type: ignore[union-attr]
    return None


def set_fifo_depth(value: SSAValue, depth: int) -> None:
    """Store `depth` where `fifo_depth` reads it. A stream is retyped, with the task block
    arguments that receive it; an op's other results keep their depths (DEFAULT_DEPTH if unset)."""
    if isinstance(value.type, StreamType):
        new_type = StreamType(value.type.element_type, depth)
        users = [(use.operation, use.index) for use in value.uses]
        Rewriter.replace_value_with_new_type(value, new_type)
        for op, index in users:  # a task's block argument has the type of its operand
            if isinstance(op, TaskOp):
                Rewriter.replace_value_with_new_type(op.body.block.args[index], new_type)
        return
    op = value.owner
    assert isinstance(op, Operation), f"a FIFO depth belongs to an op's result, not to {value}"
    if len(op.results) == 1:
        op.attributes["depth"] = IntegerAttr(depth, i64)
        return
    entries = [fifo_depth(r) or DEFAULT_DEPTH for r in op.results]
    entries[op.results.index(value)] = depth
    op.attributes["depth"] = DenseArrayBase.from_list(i64, entries)


DATAFLOW = Dialect("dataflow", DATAFLOW_OPS, [ITensorType, StreamType, BoundAttr])
