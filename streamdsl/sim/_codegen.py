"""Compile op bodies to Python source once, then `exec` it.

A task body becomes a generator function (it yields when a FIFO blocks it), a `linalg` body a
plain function over numpy arrays. Each SSA value is a Python local; loops are Python `for`
loops; every op is a line of numpy code or a call of a closure prepared at compile time, so no
xDSL attribute is looked up while the simulation runs.
"""

from __future__ import annotations

import itertools
import linecache
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    ShapedType,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from streamdsl.dtypes import i4, numpy_dtype, wrap_int
from streamdsl.errors import StreamdslError
from streamdsl.opinfo import NUMPY_HELPERS, OPS, OpInfo, template

__all__ = ["CompileError", "Emitter", "round_bf16", "wrap_i4"]

I4 = i4.ir()


class CompileError(StreamdslError, ValueError):
    """An op the functional simulator cannot execute; the message names the op and the task."""


# ---------------------------------------------------------------------------------------------
# Types and runtime helpers (bound into the generated code's globals)
# ---------------------------------------------------------------------------------------------


def element_type(type_: Attribute) -> Attribute:
    return type_.get_element_type() if isinstance(type_, ShapedType) else type_


def round_bf16(x: Any) -> Any:
    """Round float32 values to bf16 precision (nearest even), keeping float32 storage."""
    arr = np.asarray(x, dtype=np.float32)
    bits = arr.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return out if out.ndim else np.float32(out)


def wrap_i4(x: Any) -> Any:
    """i4 results (int8 storage) wrapped to 4-bit two's complement, as the hardware holds them."""
    return wrap_int(x, 4)


HELPERS: dict[str, object] = {**NUMPY_HELPERS, "_bf16": round_bf16, "_i4": wrap_i4}

PASS_THROUGH = {"tensor.cast", "bufferization.to_tensor"}
RESHAPES = {"tensor.expand_shape", "tensor.collapse_shape", "tensor.reshape"}


def _static_shape(type_: Attribute) -> tuple[int, ...]:
    assert isinstance(type_, ShapedType)
    return tuple(type_.get_shape())


def constant_value(attr: Attribute, type_: Attribute) -> Any:
    """The Python/numpy value of an `arith.constant`'s attribute."""
    if isinstance(attr, DenseIntOrFPElementsAttr):
        dtype = numpy_dtype(attr.get_element_type())
        values = np.asarray(attr.get_values(), dtype=dtype)
        shape = _static_shape(type_)
        array = np.broadcast_to(values, shape).copy() if values.size == 1 else values.reshape(shape)
        if isinstance(attr.get_element_type(), BFloat16Type):
            array = round_bf16(array)
        array.setflags(write=False)
        return array
    if isinstance(attr, IntegerAttr):
        value = attr.value.data
        if isinstance(type_, IndexType):
            return int(value)
        dtype = numpy_dtype(type_)
        return dtype.type(bool(value)) if dtype == np.bool_ else dtype.type(value)
    if isinstance(attr, FloatAttr):
        value = numpy_dtype(type_).type(attr.value.data)
        return round_bf16(value) if isinstance(type_, BFloat16Type) else value
    raise CompileError(f"arith.constant: cannot simulate a constant {attr}")


def _empty_tensor(type_: TensorType) -> np.ndarray:
    """`tensor.empty`: NaN for floats so reading an unwritten destination shows in the results. A
    read-only broadcast of one element: no memory, as most empties are only destinations."""
    dtype = numpy_dtype(type_.get_element_type())
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    return np.broadcast_to(np.array(fill, dtype=dtype), _static_shape(type_))


_IDENT = re.compile(r"[^0-9a-zA-Z_]")
_COUNTER = itertools.count()
_CODE: dict[str, Any] = {}  # compiled code objects by source text


class Emitter:
    """Turns a block of ops into Python source lines.

    Subclasses add the ops of their context (ports of a task, `linalg.index` in a linalg body).
    `ports` maps SSA values that stand for streams to a port number: they never hold data.
    """

    def __init__(self, label: str):
        self.label = label
        self.lines: list[str] = []
        self.globals: dict[str, object] = dict(HELPERS)
        self.names: dict[SSAValue, str] = {}
        self.ports: dict[SSAValue, int] = {}
        self.line_ops: dict[int, Operation] = {}
        self._count = 0

    # -- names ----------------------------------------------------------------------------------

    def define(self, value: SSAValue) -> str:
        self._count += 1
        hint = _IDENT.sub("_", value.name_hint or "")
        name = f"v{self._count}_{hint}" if hint else f"v{self._count}"
        self.names[value] = name
        return name

    def use(self, value: SSAValue) -> str:
        try:
            return self.names[value]
        except KeyError:
            raise CompileError(f"{self.label}: value {value.name_hint or value} is used but not defined in this body") from None

    def bind(self, obj: object, hint: str = "k") -> str:
        self._count += 1
        name = f"_{_IDENT.sub('_', hint)}{self._count}"
        self.globals[name] = obj
        return name

    def emit(self, indent: int, text: str, op: Operation | None = None) -> None:
        self.lines.append("    " * indent + text)
        if op is not None:
            self.line_ops[len(self.lines)] = op

    # -- ops --------------------------------------------------------------------------------------

    def block(self, block: Block, indent: int) -> None:
        for op in block.ops:
            self.op(op, indent)

    def op(self, op: Operation, indent: int) -> None:
        name = op.name
        if name == "arith.constant":
            self._constant(op, indent)
        elif (info := OPS.get(name)) is not None:
            self._scalar(op, info, indent)
        elif name.startswith(("tensor.", "bufferization.")):
            self._tensor_op(op, indent)
        elif name == "scf.for":
            self._for(op, indent)
        elif name == "scf.if":
            self._if(op, indent)
        elif name.startswith("linalg."):
            self._linalg(op, indent)
        else:
            self.unsupported(op)

    def unsupported(self, op: Operation) -> None:
        raise CompileError(f"{self.label}: the functional simulator does not support `{op.name}`")

    def _result(self, op: Operation, expr: str, indent: int) -> None:
        (result,) = op.results
        if isinstance(element_type(result.type), BFloat16Type):
            expr = f"_bf16({expr})"
        elif element_type(result.type) == I4:
            expr = f"_i4({expr})"
        self.emit(indent, f"{self.define(result)} = {expr}", op)

    def _scalar(self, op: Operation, info: OpInfo, indent: int) -> None:
        text = template(info, "numpy", op)
        operands = [self.use(v) for v in op.operands]
        if "{dtype}" in text:  # a cast: the text names the result type
            target = element_type(op.results[0].type)
            dtype = self.bind(numpy_dtype(target), "dt")
            self._result(op, text.format(*operands, dtype=dtype, index=isinstance(target, IndexType)), indent)
        else:
            self._result(op, text.format(*operands), indent)

    def _constant(self, op: Operation, indent: int) -> None:
        value = constant_value(op.value, op.results[0].type)  # type: ignore[attr-defined]
        text = repr(value) if isinstance(value, int | bool) else self.bind(value, "c")
        self.emit(indent, f"{self.define(op.results[0])} = {text}", op)

    def _tensor_op(self, op: Operation, indent: int) -> None:
        if op.name in PASS_THROUGH:
            self.names[op.results[0]] = self.use(op.operands[0])
        elif op.name in ("tensor.insert_slice", "tensor.insert"):
            self._insert(op, indent)
        elif (expr := self._tensor_expr(op)) is not None:
            self.emit(indent, f"{self.define(op.results[0])} = {expr}", op)
        else:
            self.unsupported(op)

    def _tensor_expr(self, op: Any) -> str | None:
        """The numpy expression of a tensor op with one result (None if unsupported)."""
        name, res = op.name, op.results[0] if op.results else None
        if res is None:
            return None
        shape = _static_shape(res.type) if isinstance(res.type, ShapedType) else ()
        if name == "tensor.empty":
            return self.bind(_empty_tensor(res.type), "empty")
        if name in RESHAPES:
            return f"np.reshape({self.use(op.operands[0])}, {shape})"
        if name == "tensor.extract_slice":
            return f"np.reshape({self.use(op.source)}[{self._slice_index(op)}], {shape})"
        if name == "tensor.extract":
            return f"{self.use(op.tensor)}[{self._point(op.indices)}]"
        if name in ("tensor.splat", "tensor.from_elements"):
            dtype = self.bind(numpy_dtype(element_type(res.type)), "dt")
            items = ", ".join(self.use(v) for v in op.operands)
            return f"np.full({shape}, {items}, {dtype})" if name == "tensor.splat" else f"np.array([{items}], {dtype}).reshape({shape})"
        if name == "tensor.dim":
            return f"{_static_shape(op.operands[0].type)}[{self.use(op.operands[1])}]"
        if name == "tensor.concat":
            return f"np.concatenate(({', '.join(self.use(v) for v in op.operands)},), axis={op.dim.value.data})"
        return None

    def _insert(self, op: Any, indent: int) -> None:
        """Values are immutable: inserting copies the destination (a local buffer) first."""
        out = self.define(op.results[0])
        self.emit(indent, f"{out} = {self.use(op.dest)}.copy()", op)
        if op.name == "tensor.insert":
            self.emit(indent, f"{out}[{self._point(op.indices)}] = {self.use(op.scalar)}", op)
        else:
            self.emit(indent, f"{out}[{self._slice_index(op)}] = np.reshape({self.use(op.source)}, {self._slice_shape(op)})", op)

    def _point(self, indices: Any) -> str:
        names = [self.use(v) for v in indices]
        return f"{', '.join(names)}," if names else "()"

    def _index_list(self, static: tuple[int, ...], dynamic: Any) -> list[str]:
        values = iter(dynamic)
        return [self.use(next(values)) if s == DYNAMIC_INDEX else str(s) for s in static]

    def _slice_index(self, op: Any) -> str:
        offsets = self._index_list(op.static_offsets.get_values(), op.offsets)
        sizes = self._index_list(op.static_sizes.get_values(), op.sizes)
        strides = self._index_list(op.static_strides.get_values(), op.strides)
        parts = []
        for off, size, stride in zip(offsets, sizes, strides):
            end = str(int(off) + int(size)) if off.isdigit() and size.isdigit() else f"{off}+{size}"
            parts.append(f"{off}:{end}" if stride == "1" else f"{off}:{off}+({size}-1)*{stride}+1:{stride}")
        return ", ".join(parts) if parts else "()"

    def _slice_shape(self, op: Any) -> tuple[int, ...]:
        sizes = op.static_sizes.get_values()
        if DYNAMIC_INDEX in sizes:
            raise CompileError(f"{self.label}: {op.name} with dynamic sizes is not supported (sizes must be static)")
        return tuple(sizes)

    def _for(self, op: Any, indent: int) -> None:
        body = op.body.block
        iv, carried = body.args[0], body.args[1:]
        data = []  # (init, block arg, result) of the loop-carried values that hold data
        for init, arg, res in zip(op.iter_args, carried, op.res):
            if init in self.ports:
                self.ports[arg] = self.ports[res] = self.ports[init]
            else:
                data.append((init, arg, res))
        for init, arg, _ in data:
            self.emit(indent, f"{self.define(arg)} = {self.use(init)}", op)
        bounds = f"{self.use(op.lb)}, {self.use(op.ub)}, {self.use(op.step)}"
        self.emit(indent, f"for {self.define(iv)} in range({bounds}):", op)
        self.emit(indent + 1, "pass")
        for inner in body.ops:
            if inner.name == "scf.yield":
                self._carry(inner.operands, [arg for arg in carried], indent + 1)
            else:
                self.op(inner, indent + 1)
        for _, arg, res in data:
            self.names[res] = self.names[arg]

    def _carry(self, values: Any, targets: list[SSAValue], indent: int) -> None:
        """Assign yielded values to loop-carried / result variables, checking stream chains."""
        lhs, rhs = [], []
        for value, target in zip(values, targets):
            if target in self.ports:
                if self.ports.get(value) != self.ports[target]:
                    raise CompileError(f"{self.label}: scf.yield passes a different stream than the loop carries")
                continue
            lhs.append(self.names.get(target) or self.define(target))
            rhs.append(self.use(value))
        if lhs:
            self.emit(indent, f"{', '.join(lhs)}, = {', '.join(rhs)},")

    def _if(self, op: Any, indent: int) -> None:
        if any(r in self.ports for r in op.output):
            raise CompileError(f"{self.label}: scf.if must not yield streams; write in both branches and yield nothing")
        names = [self.define(r) for r in op.output]
        self.emit(indent, f"if {self.use(op.cond)}:", op)
        for region in (op.true_region, op.false_region):
            if region.blocks:
                self.emit(indent + 1, "pass")
                for inner in region.block.ops:
                    if inner.name == "scf.yield":
                        if names:
                            self.emit(indent + 1, f"{', '.join(names)}, = {', '.join(self.use(v) for v in inner.operands)},")
                    else:
                        self.op(inner, indent + 1)
            if region is op.true_region:
                self.emit(indent, "else:")
                if not op.false_region.blocks:
                    self.emit(indent + 1, "pass")

    def _linalg(self, op: Operation, indent: int) -> None:
        from streamdsl.sim._linalg import compile_linalg

        captures: list[tuple[SSAValue, dict[str, object], str]] = []
        fn = self.bind(compile_linalg(op, self.label, captures), op.name.replace(".", "_"))
        for value, namespace, name in captures:  # values the body reads from outside the op
            self.emit(indent, f"{self.bind(namespace, 'ns')}[{name!r}] = {self.use(value)}", op)
        args = ", ".join(self.use(v) for v in op.operands)
        outs = ", ".join(self.define(r) for r in op.results)
        if outs:
            self.emit(indent, f"{outs}, = {fn}({args})", op)

    # -- compilation ---------------------------------------------------------------------------------

    def compile(self, header: str, fn_name: str) -> Callable[..., Any]:
        source = "\n".join([header, *self.lines, ""])
        code = _CODE.get(source)
        if code is None:  # many bodies are the same text (names are numbered per body)
            if len(_CODE) > 20_000:
                _CODE.clear()
            filename = f"<streamdsl-sim {self.label} #{next(_COUNTER)}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            code = _CODE[source] = compile(source, filename, "exec")
        namespace = self.globals
        exec(code, namespace)  # noqa: S102 - our own generated code
        fn = namespace[fn_name]
        fn.__streamdsl_source__ = source  # type: ignore[attr-defined]
        fn.__streamdsl_lines__ = self.line_ops  # type: ignore[attr-defined]
        return fn  # type: ignore[return-value]
