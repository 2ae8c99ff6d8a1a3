"""`@sd.kernel`: a Python function over itensor ports, compiled from its AST into a `dataflow.task` body.

The function's source is parsed with `ast` (real file line numbers kept) and walked once:
`for i in range(N)` becomes `scf.for` (tiles and output streams assigned in the body are carried
through `iter_args`), tile expressions become `linalg` ops (see `irbuild`), `x.read()` an
`itensor_read`, `yield v` / `out.write(v)` an `itensor_write` on the output chain. Every other
construct is a `DSLError` at its file:line:col that says what to write instead. Because loops are
static, the compiler counts the tokens each port reads or writes and checks them against the port
type (`num_tokens`).
"""

from __future__ import annotations

import ast
import builtins
import collections
import inspect
import math
import operator
import sys
import textwrap
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from xdsl.dialects import arith, scf
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import IndexType, IntegerAttr
from xdsl.ir import Block, Region, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineDimExpr, AffineExpr, AffineMap, AffineSymExpr

from streamdsl import quant
from streamdsl.dialects.dataflow import ITensorReadOp, ITensorWriteOp, TaskOp, YieldOp
from streamdsl.dsl import hints, ops
from streamdsl.dsl.irbuild import Box, Tile, TileBuilder, broadcast_shapes
from streamdsl.dsl.types import OutSpec, ScalarSpec
from streamdsl.dtypes import DType, i32
from streamdsl.errors import DSLError
from streamdsl.itensor import Bound, ITensorError, itensor
from streamdsl.scalars import MAX_TRIPS

__all__ = ["Kernel", "Port", "kernel"]


@dataclass(frozen=True)
class Port:
    name: str
    type: itensor
    index: int  # position among the inputs or among the outputs


@dataclass(frozen=True)
class InPort:
    port: Port
    value: SSAValue


@dataclass(frozen=True)
class OutPort:
    port: Port


@dataclass(frozen=True)
class Stream:
    """The current SSA value of an output chain (an itensor threaded through writes)."""

    value: SSAValue


@dataclass(frozen=True)
class Index:
    """A loop index, a run-time scalar, or index arithmetic on them, with its static range [lo, hi]
    (hi None: no declared maximum) and, when it is affine, `expr`: dims are the enclosing loops by
    depth, symbols the kernel's scalars in order (the form of itensor bounds)."""

    value: SSAValue
    lo: int
    hi: int | None
    expr: AffineExpr | None = None


@dataclass(frozen=True)
class ScalarParam:
    name: str
    spec: ScalarSpec
    index: int  # position among the scalars


@dataclass(frozen=True)
class _Loop:
    trips: int  # the most it runs
    count: AffineExpr | None  # its run-time trip count (None: static)


def _out_key(i: int) -> str:
    return f"%out{i}"  # not a Python identifier, so it never clashes with a user name


_STATEMENT_HINTS = {
    ast.While: "while loops are not supported: use `for i in range(N)` with a static N",
    ast.Return: "return is not supported in a kernel: emit output tiles with `yield tile` (or `out.write(tile)`); "
    "the kernel ends at the end of its body",
    ast.Break: "break is not supported: loops must run their full static trip count",
    ast.Continue: "continue is not supported: loops must run their full static trip count",
    ast.FunctionDef: "nested functions are not supported in kernels: define the helper at module level "
    "(plain functions are inlined) or make it an @sd.kernel task composed in an @sd.dataflow function",
    ast.With: "with statements are not supported in kernels",
    ast.Try: "try statements are not supported in kernels",
    ast.Import: "imports are not supported inside kernels: import at module level",
    ast.ImportFrom: "imports are not supported inside kernels: import at module level",
    ast.Global: "global statements are not supported: kernels cannot change Python state",
    ast.Nonlocal: "nonlocal statements are not supported: kernels cannot change Python state",
    ast.Delete: "del is not supported in kernels",
    ast.Assert: "assert is not supported in kernels: the static checks run at compile time",
    ast.Raise: "raise is not supported in kernels",
}


@dataclass
class _Counts:
    tokens: int = 0
    site: ast.AST | None = None
    nests: list[tuple[ast.AST, tuple[_Loop, ...]]] = field(default_factory=list)  # the loops around each site


@dataclass
class KernelSignature:
    inputs: list[Port]
    outputs: list[Port]
    yields: bool  # outputs come from the return annotation (yield) rather than Out params
    params: list[str]  # parameter names in order (inputs, scalars and Out ports interleaved)
    scalars: list[ScalarParam] = field(default_factory=list)

    @property
    def arguments(self) -> list[Port | ScalarParam]:
        """What a call passes, in parameter order: input ports and scalars."""
        by_name = {p.name: p for p in [*self.inputs, *self.scalars]}
        return [by_name[n] for n in self.params if n in by_name]


@dataclass
class _Helper:
    """A plain Python function being inlined: its parameters until rebound, and the loop depth at
    its call (a `return` must not sit inside one of its own loops)."""

    fn: Callable[..., Any]
    params: set[str]
    depth: int
    returned: bool = False
    value: Any = None


def _scope(fn: Callable[..., Any]) -> dict[str, Any]:
    """The names a function body can see: its globals and its closure cells."""
    names = dict(fn.__globals__)
    if fn.__closure__:
        names.update({n: c.cell_contents for n, c in zip(fn.__code__.co_freevars, fn.__closure__) if _cell_ok(c)})
    return names


class _Compiler:
    def __init__(self, fn: Callable[..., Any], sig: KernelSignature, tree: ast.FunctionDef, filename: str, col_shift: int,
                 name: str | None = None, scalar_names: dict[str, str] | None = None):
        self.fn, self.sig, self.tree, self.filename, self.col_shift = fn, sig, tree, filename, col_shift
        self.scalar_names = scalar_names or {}  # kernel parameter -> the name its bounds use
        self.loops: list[_Loop] = []
        self.name = name or fn.__name__
        self.globals = _scope(fn)
        self.helpers: list[_Helper] = []
        self.depth = 0  # enclosing for loops
        self.env: dict[str, Any] = {}
        self.loop_only: dict[str, int] = {}
        self.assign_site: dict[str, ast.AST] = {}
        self.trips = 1
        self.later: list[Sequence[ast.stmt]] = []
        self.reads = [_Counts() for _ in sig.inputs]
        self.writes = [_Counts() for _ in sig.outputs]

    # -- errors -----------------------------------------------------------------------------

    def error(self, node: ast.AST, message: str) -> DSLError:
        return DSLError(message, self.filename, getattr(node, "lineno", self.tree.lineno),
                        getattr(node, "col_offset", 0) + 1 + self.col_shift)

    # -- entry ----------------------------------------------------------------------------------

    def compile(self) -> Region:
        in_types = [p.type.to_ir() for p in self.sig.inputs]
        out_types = [p.type.to_ir() for p in self.sig.outputs]
        scalars = self.sig.scalars
        block = Block(arg_types=[*in_types, *[i32.ir()] * len(scalars), *out_types])
        ins = block.args[: len(in_types)]
        for port, arg in zip(self.sig.inputs, ins):
            self.env[port.name] = InPort(port, arg)
        if (star := self.tree.args.vararg) is not None:  # *parts: a static tuple of its ports
            self.env[star.arg] = tuple(v for n, v in self.env.items() if n.startswith(f"{star.arg}."))
        self.builder = TileBuilder(block)
        for param, arg in zip(scalars, block.args[len(in_types):]):
            arg.name_hint = param.name
            value = self.builder.emit(arith.IndexCastOp(arg, IndexType())).results[0]
            self.env[param.name] = Index(value, 0, param.spec.max, AffineExpr.symbol(param.index))
        for port, arg in zip(self.sig.outputs, block.args[len(in_types) + len(scalars):]):
            if not self.sig.yields:
                self.env[port.name] = OutPort(port)
            self.env[_out_key(port.index)] = Stream(arg)
        self.statements(self.tree.body)
        self.check_counts()
        block.add_op(YieldOp(*[self.env[_out_key(p.index)].value for p in self.sig.outputs]))
        return Region(block)

    def check_counts(self) -> None:
        for what, ports, counts in (("reads", self.sig.inputs, self.reads), ("writes", self.sig.outputs, self.writes)):
            for port, count in zip(ports, counts):
                if count.tokens == port.type.unbounded().num_tokens:  # when every run-time loop runs the most
                    continue
                if what == "reads":
                    site = f"{port.name}.read()"
                else:
                    site = "yield" if self.sig.yields else f"{port.name}.write(...)"
                raise self.error(
                    count.site or self.tree,
                    f"kernel {self.name!r} {what} port {port.name!r} {count.tokens} time(s), but its type "
                    f"{port.type} has {port.type.num_tokens} tokens; make the static loops around "
                    f"{site} run {port.type.num_tokens} times in total",
                )

    # -- statements -----------------------------------------------------------------------------

    def statements(self, body: Sequence[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            self.later.append(body[i + 1 :])  # what may run after `stmt`: for loop liveness
            self.statement(stmt)
            self.later.pop()
            if self.helpers and self.helpers[-1].returned:
                return

    def statement(self, node: ast.stmt) -> None:
        match node:
            case ast.Expr(value=ast.Constant(value=str())):
                return  # docstring
            case ast.Pass():
                return
            case ast.Assign(targets=[target], value=value):
                self.assign(target, value, node)
            case ast.Assign():
                raise self.error(node, "chained assignment (a = b = ...) is not supported: assign one name at a time")
            case ast.AnnAssign(target=target, value=value) if value is not None:
                self.assign(target, value, node)
            case ast.AugAssign(target=target, op=op, value=value):
                load = _as_load(target)
                result = self.binop(node, _binop_symbol(self, node, op), self.expr(load), self.expr(value))
                self.store(target, result, node)
            case ast.For():
                self.for_loop(node)
            case ast.If(test=test, body=body, orelse=orelse):
                self.statements(body if self.static_condition(test, "if") else orelse)
            case ast.Return(value=value) if self.helpers:
                self.helper_return(node, value)
            case ast.Expr(value=ast.Yield(value=value)):
                self.emit_yield(node, value)
            case ast.Expr(value=ast.Call(func=ast.Attribute(attr="write") as func, args=args, keywords=[])):
                self.emit_port_write(node, func, args)
            case ast.Expr(value=value):
                raise self.error(node, f"this expression statement ({_describe(value)}) has no effect in a kernel: "
                                 "assign its value, yield it, or write it to an output port")
            case _:
                hint = _STATEMENT_HINTS.get(type(node))
                raise self.error(node, hint or f"{type(node).__name__} statements are not supported in kernels")

    def assign(self, target: ast.expr, value: ast.expr, node: ast.stmt) -> None:
        if isinstance(target, ast.Tuple):
            if not isinstance(value, ast.Tuple) or len(value.elts) != len(target.elts):
                raise self.error(node, "tuple assignment needs a tuple of the same length on the right: a, b = x, y")
            values = [self.expr(v) for v in value.elts]
            for t, v in zip(target.elts, values):
                self.store(t, v, node)
            return
        self.store(target, self.expr(value), node)

    def store(self, target: ast.expr, value: Any, node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, ops.Elementwise | ops.Reduction | InPort | OutPort):
                raise self.error(node, f"cannot assign {_describe_value(value)} to {target.id!r}: use it directly")
            self.env[target.id] = value
            self.assign_site[target.id] = node
            self.loop_only.pop(target.id, None)
            if self.helpers:
                self.helpers[-1].params.discard(target.id)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            if self.helpers and target.value.id in self.helpers[-1].params:
                raise self.error(target, f"helper {self.helpers[-1].fn.__name__!r} stores into its parameter "
                                 f"{target.value.id!r}: in Python that changes the caller's buffer, but kernels pass "
                                 f"values; copy it first or return the new buffer ({target.value.id} = "
                                 f"{self.helpers[-1].fn.__name__}(...))")
            buf = self.lookup(target.value)
            if not isinstance(buf, Tile):
                raise self.error(target, f"{target.value.id!r} is {_describe_value(buf)}; only buffers made with "
                                 "sd.zeros/sd.full can be indexed and assigned")
            box = self.box(target, buf)
            expected = box.shape
            value = self.as_tile(value, node, shape=expected, dtype=buf.dtype)
            if value.shape != expected or value.dtype != buf.dtype:
                raise self.error(node, f"cannot store a {value} into {target.value.id}[...], which holds tiles of shape "
                                 f"{list(expected)} {buf.dtype.name}; make the shapes and dtypes match")
            self.env[target.value.id] = self.builder.insert(buf, box, value)
            self.assign_site[target.value.id] = node
        else:
            raise self.error(target, "only names and buffer elements (buf[i] = tile) can be assigned")

    def for_loop(self, node: ast.For) -> None:
        if node.orelse:
            raise self.error(node, "for ... else is not supported: remove the else clause")
        if not isinstance(node.target, ast.Name):
            raise self.error(node.target, "the loop variable must be a single name: for i in range(N)")
        if not (isinstance(node.iter, ast.Call) and self.expr(node.iter.func) in (range, ops.range)):
            items = self.expr(node.iter)
            if isinstance(items, tuple):  # over *ports (or another static tuple): unrolled
                for item in items:
                    self.env[node.target.id] = item
                    self.statements(node.body)
                return
        start, stop, step, most = self.range_args(node.iter)
        count = None
        if isinstance(stop, Index):  # a run-time trip count, at most `trip`
            trip, count = self.dynamic_trips(node.iter, start, stop, step, most)
        else:
            trip = len(range(start, stop, step))
        if trip == 0:
            raise self.error(node.iter, f"range({start}, {stop}, {step}) runs zero times: kernels need loops that run")
        # iter_args: output streams written in the loop, and tiles it rebinds that are read again
        # (in a later iteration, after the loop, or by an enclosing loop's next iteration)
        live = set().union(*(_exposed(block) for block in (node.body, *self.later)))
        carried = [n for n in sorted(_assigned(node.body, self.env, self.sig))
                   if isinstance(self.env.get(n), Stream) or (isinstance(self.env.get(n), Tile) and n in live)]
        for name in sorted(_assigned(node.body, self.env, self.sig)):
            if isinstance(self.env.get(name), int | float | Index) and name != node.target.id:
                raise self.error(self.first_store(node.body, name), f"{name!r} holds a Python value and is reassigned inside the loop; "
                                 f"loops are not unrolled, so make it a tile (e.g. {name} = sd.full((1, 1), value)) or "
                                 "compute it from the loop index (loop indices may enter tile maths)")
        inits = [self.env[n] for n in carried]
        lb, ub, st = (stop.value if isinstance(v, Index) else self.builder.index(v) for v in (start, stop, step))
        body = Block(arg_types=[IndexType(), *[v.value.type for v in inits]])
        outer_env, outer_builder = dict(self.env), self.builder
        self.env[node.target.id] = Index(body.args[0], start, start + (trip - 1) * step, AffineExpr.dimension(len(self.loops)))
        self.loops.append(_Loop(trip, count))
        for name, arg in zip(carried, body.args[1:]):
            self.env[name] = _rebind(self.env[name], arg)
        self.builder, self.trips = TileBuilder(body), self.trips * trip
        self.later.append(node.body)
        self.depth += 1
        self.statements(node.body)
        self.depth -= 1
        self.later.pop()
        self.loops.pop()
        yielded = []
        for name, init in zip(carried, inits):
            final = self.env[name]
            if isinstance(init, Tile) and (not isinstance(final, Tile) or (final.shape, final.dtype) != (init.shape, init.dtype)):
                raise self.error(self.assign_site.get(name, node), f"{name!r} is carried around the loop as a {init} but "
                                 f"this assignment makes it {_describe_value(final)}; keep its shape and dtype the same "
                                 "in every iteration (or use a new name)")
            yielded.append(final.value)
        body.add_op(scf.YieldOp(*yielded))
        loop = outer_builder.emit(scf.ForOp(lb, ub, st, [v.value for v in inits], body))
        if count is not None:
            loop.attributes[MAX_TRIPS] = IntegerAttr(trip, 64)
        inner_env = self.env
        self.builder, self.trips, self.env = outer_builder, self.trips // trip, outer_env
        for name, result in zip(carried, loop.results):
            self.env[name] = _rebind(outer_env[name], result)
        for name in inner_env.keys() - outer_env.keys():
            self.loop_only[name] = node.lineno

    def first_store(self, body: Sequence[ast.stmt], name: str) -> ast.AST:
        for stmt in body:
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Store):
                    return sub
        return body[0]

    def range_args(self, it: ast.expr) -> tuple[int, int | Index, int, int | None]:
        """start, stop (an int, or a run-time Index for sd.range), step and sd.range's max=."""
        func = self.expr(it.func) if isinstance(it, ast.Call) else None
        if func is not range and func is not ops.range:
            raise self.error(it, "kernels only loop over range(...) with static bounds, or sd.range(n) with a run-time "
                             "n computed from sd.Scalar arguments: for i in range(N)")
        assert isinstance(it, ast.Call)
        most = None
        for kw in it.keywords:
            most = self.expr(kw.value) if kw.arg == "max" and func is ops.range else None
            if not isinstance(most, int) or isinstance(most, bool) or most < 1:
                raise self.error(it, "range takes no keywords; sd.range takes max=N, a positive static int")
        if not 1 <= len(it.args) <= 3:
            raise self.error(it, "range takes 1 to 3 positional arguments")
        values = []
        for i, arg in enumerate(it.args):
            v = self.expr(arg)
            if func is ops.range and i == min(1, len(it.args) - 1) and isinstance(v, Index):
                values.append(v)
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise self.error(arg, f"loop bound must be a static Python int (a literal, a global constant or "
                                 f"x.shape[i]), got {_describe_value(v)}; hardware loops need trip counts known at compile "
                                 "time, or write sd.range(n) for a stop computed from sd.Scalar arguments")
            values.append(v)
        start, stop, step = (0, values[0], 1) if len(values) == 1 else (*values, 1)[:3]
        if step <= 0:
            raise self.error(it, f"range step must be positive, got {step}")
        return start, stop, step, most

    def dynamic_trips(self, node: ast.expr, start: int, stop: Index, step: int, most: int | None) -> tuple[int, AffineExpr]:
        """The most a run-time loop runs (`max=`, else its stop's maximum) and its trip count as
        an affine expression of the scalars and the enclosing loop indices."""
        if stop.expr is None:
            raise self.error(node, "sd.range(n): n must be affine in the sd.Scalar arguments and the enclosing loop "
                             "indices (+, -, * by ints, // by a positive int)")
        if most is None:
            if stop.hi is None:
                raise self.error(node, "sd.range(n): n has no maximum; declare the scalar's (sd.Scalar[sd.i32, 64]) or "
                                 "give one (sd.range(n, max=8))")
            most = len(range(start, stop.hi, step))
        count = stop.expr - start
        return most, count if step == 1 else count.ceil_div(step)

    # -- outputs ----------------------------------------------------------------------------------

    def emit_yield(self, node: ast.stmt, value: ast.expr | None) -> None:
        if not self.sig.yields:
            raise self.error(node, "this kernel declares sd.Out[...] ports: write to them with port.write(tile) "
                             "instead of yield (or give the kernel a return annotation)")
        if value is None:
            raise self.error(node, "yield needs a tile: yield acc")
        n = len(self.sig.outputs)
        elts = value.elts if isinstance(value, ast.Tuple) else [value]
        if len(elts) != n:
            raise self.error(node, f"yield gives {len(elts)} value(s) but the kernel has {n} output(s) "
                             "(its return annotation); yield one tile per output")
        for port, elt in zip(self.sig.outputs, elts):
            self.write(port, elt, node)

    def emit_port_write(self, node: ast.stmt, func: ast.Attribute, args: list[ast.expr]) -> None:
        target = self.expr(func.value)
        if not isinstance(target, OutPort):
            raise self.error(node, f".write(...) is only defined on output ports declared as `name: sd.Out[T]`, "
                             f"not on {_describe_value(target)}")
        if len(args) != 1:
            raise self.error(node, f"{target.port.name}.write takes exactly one tile")
        self.write(target.port, args[0], node)

    def write(self, port: Port, value_node: ast.expr, node: ast.AST) -> None:
        value = self.expr(value_node)
        if not isinstance(value, Tile):
            raise self.error(value_node, f"output {port.name!r} needs a tile of shape {list(port.type.tile)}, got "
                             f"{_describe_value(value)}; build one with sd.full({tuple(port.type.tile)}, value)")
        if value.shape != port.type.tile or value.dtype != port.type.dtype:
            raise self.error(value_node, f"output {port.name!r} has tiles of shape {list(port.type.tile)} "
                             f"{port.type.dtype.name} ({port.type}), but this is a {value}; reshape/reduce the value "
                             "or change the port type")
        key = _out_key(port.index)
        op = self.builder.emit(ITensorWriteOp(value.value, self.env[key].value))
        self.env[key] = Stream(op.results[0])
        self.count(self.writes[port.index], node)

    def count(self, counts: _Counts, node: ast.AST) -> None:
        counts.tokens += self.trips
        counts.site = counts.site or node
        counts.nests.append((node, tuple(self.loops)))

    def bounded_ports(self) -> dict[str, itensor]:
        """The ports accessed inside run-time loops, with their bounded types: each loop of the
        access's nest is matched to the port type's loop with the same trip count and the same
        number of tokens inside it, and a run-time loop bounds that loop."""
        found = {}
        for ports, counts in ((self.sig.inputs, self.reads), (self.sig.outputs, self.writes)):
            for port, count in zip(ports, counts):
                dynamic = [(site, nest) for site, nest in count.nests if any(loop.count is not None for loop in nest)]
                if not dynamic:
                    continue
                if len(count.nests) != 1:
                    raise self.error(dynamic[0][0], f"port {port.name!r} is accessed inside a run-time loop (sd.range) "
                                     f"and at {len(count.nests) - 1} other place(s); access it at exactly one place")
                found[port.name] = self.bound_type(port, *dynamic[0])
        return found

    def bound_type(self, port: Port, site: ast.AST, nest: tuple[_Loop, ...]) -> itensor:
        trips = port.type.trips
        to_loop: dict[int, int] = {}
        limit = len(trips)  # kernel loops map to port loops in the same nesting order, innermost first
        for depth in reversed(range(len(nest))):
            inner = math.prod(inner.trips for inner in nest[depth + 1:])
            match = [i for i, t in enumerate(trips[:limit]) if t == nest[depth].trips and math.prod(trips[i + 1:]) == inner]
            if match:
                to_loop[depth] = limit = match[-1]
        bounds = []
        for depth, loop in enumerate(nest):
            if loop.count is None:
                continue
            used = _expr_dims(loop.count)
            if depth not in to_loop or any(d not in to_loop for d in used):
                raise self.error(site, f"port {port.name!r} is accessed in a run-time loop (sd.range, at most "
                                 f"{loop.trips} times) but its type {port.type} has no loop of {loop.trips} trips with "
                                 f"{math.prod(inner.trips for inner in nest[depth + 1:])} token(s) inside; give the port a loop "
                                 "per kernel loop around the access")
            bounds.append(self.bound(to_loop[depth], loop.count, to_loop, len(trips)))
        try:
            return itensor(port.type.dtype, tile=port.type.tile, trips=trips, steps=port.type.steps, map=port.type.map,
                           bounds=bounds)
        except ITensorError as err:
            raise self.error(site, f"port {port.name!r}: {err}") from None

    def bound(self, loop: int, count: AffineExpr, to_loop: dict[int, int], ndims: int) -> Bound:
        symbols = sorted(_expr_symbols(count))
        names = tuple(self.scalar_names.get(self.sig.scalars[s].name, self.sig.scalars[s].name) for s in symbols)
        dims = [AffineExpr.dimension(to_loop.get(d, 0)) for d in range(max(to_loop, default=0) + 1)]
        syms = [AffineExpr.symbol(symbols.index(s)) if s in symbols else AffineExpr.constant(0)
                for s in range(len(self.sig.scalars))]
        expr = AffineMap(len(dims), len(syms), (count,)).replace_dims_and_symbols(dims, syms, ndims, len(symbols))
        return Bound(loop, expr, names)

    # -- expressions ------------------------------------------------------------------------------

    def expr(self, node: ast.expr) -> Any:
        match node:
            case ast.Constant(value=value) if isinstance(value, int | float | bool | str | None):
                return value
            case ast.Name():
                return self.lookup(node)
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                return tuple(self.expr(e) for e in elts)
            case ast.BinOp(left=left, op=op, right=right):
                return self.binop(node, _binop_symbol(self, node, op), self.expr(left), self.expr(right))
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return self.negate(node, self.expr(operand))
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return self.expr(operand)
            case ast.Attribute():
                return self.attribute(node)
            case ast.Subscript():
                return self.subscript(node)
            case ast.Call():
                return self.call(node)
            case ast.Compare():
                return self.static_compare(node)
            case ast.BoolOp(op=op, values=values):
                return self.static_bool(node, op, values)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self.static_condition(operand, "not")
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return self.expr(body if self.static_condition(test, "... if ... else") else orelse)
            case ast.Yield():
                raise self.error(node, "yield is a statement in kernels: write `yield tile` on its own line")
            case ast.Lambda() | ast.ListComp() | ast.GeneratorExp() | ast.DictComp() | ast.SetComp():
                raise self.error(node, f"{type(node).__name__} is not supported in kernels: write the loop with "
                                 "for i in range(N) and tiles")
            case _:
                raise self.error(node, f"{_describe(node)} is not supported in kernel expressions")

    # -- static conditions ------------------------------------------------------------------------

    def static_condition(self, test: ast.expr, what: str) -> bool:
        """The value of a condition known at compile time (Python values, shapes, loop bounds)."""
        value = self.static_compare(test, what) if isinstance(test, ast.Compare) else self.expr(test)
        if not _is_static(value):
            raise self.error(test, f"`{what}` needs a condition known at compile time, but {_describe(test)} is "
                             f"{_describe_value(value)}; select values per element with sd.where(cond, a, b)")
        return bool(value)

    def static_compare(self, node: ast.Compare, what: str | None = None) -> bool:
        left = self.expr(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.expr(comparator)
            for value in (left, right):
                if not _is_static(value) and what is not None:
                    raise self.error(node, f"`{what}` needs a condition known at compile time, but {_describe(node)} "
                                     f"compares {_describe_value(value)}; select values per element with "
                                     "sd.where(cond, a, b)")
                if not _is_static(value):
                    raise self.error(node, "comparisons are only supported as the condition of sd.where: "
                                     f"sd.where(a > b, a, b) (this one compares {_describe_value(value)}); `if` and "
                                     "`... if ... else` need conditions known at compile time")
            if not _STATIC_CMP[type(op)](left, right):
                return False
            left = right
        return True

    def static_bool(self, node: ast.BoolOp, op: ast.boolop, values: Sequence[ast.expr]) -> bool:
        stop = isinstance(op, ast.Or)  # `or` stops at the first true operand, `and` at the first false
        for value in values:
            if self.static_condition(value, "and" if not stop else "or") == stop:
                return stop
        return not stop

    def lookup(self, node: ast.Name) -> Any:
        name = node.id
        if name in self.env:
            return self.env[name]
        if name in self.loop_only:
            raise self.error(node, f"{name!r} is defined only inside the loop at line {self.loop_only[name]}; to use it "
                             f"after the loop, initialise it before the loop (e.g. {name} = sd.zeros(shape)) so it is carried")
        if name == self.fn.__name__ and name not in self.globals:
            raise self.error(node, f"recursion is not supported: kernel {name!r} cannot call itself; "
                             "write the repetition as a static for loop")
        if name in self.globals:
            return self.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise self.error(node, f"undefined name {name!r}: define it before use (kernels may read tiles, ports, "
                         "loop indices and module-level constants)")

    def attribute(self, node: ast.Attribute) -> Any:
        base = self.expr(node.value)
        if isinstance(base, Tile):
            if node.attr == "T":
                if len(base.shape) != 2:
                    raise self.error(node, f".T transposes 2-d tiles; this is a {base}: use sd.transpose(x, perm)")
                return self.builder.transpose(base, (1, 0))
            if node.attr == "shape":
                return base.shape
            if node.attr == "dtype":
                return base.dtype
            raise self.error(node, f"tiles have no attribute {node.attr!r} in kernels (supported: .T, .shape, .dtype); "
                             "use the sd.* functions, e.g. sd.sum(x, axis=1)")
        if isinstance(base, InPort | OutPort):
            if node.attr == "shape":
                return base.port.type.tile
            raise self.error(node, f"port {base.port.name!r}: use {base.port.name}.read() (input) or "
                             f"{base.port.name}.write(tile) (output); .shape gives the tile shape")
        if isinstance(base, types.ModuleType | DType | itensor | tuple):
            try:
                return getattr(base, node.attr)
            except AttributeError:
                raise self.error(node, f"{_describe_value(base)} has no attribute {node.attr!r}") from None
        raise self.error(node, f"attribute .{node.attr} of {_describe_value(base)} is not supported in kernels")

    def subscript(self, node: ast.Subscript) -> Any:
        base = self.expr(node.value)
        if isinstance(base, tuple):
            idx = self.expr(node.slice)
            if not isinstance(idx, int):
                raise self.error(node.slice, "static tuples (such as x.shape) are indexed with Python ints")
            return base[idx]
        if not isinstance(base, Tile):
            raise self.error(node, f"{_describe_value(base)} cannot be indexed or sliced; tiles and buffers can "
                             "(read a tile with x.read() first)")
        return self.builder.extract(base, self.box(node, base))

    def box(self, node: ast.Subscript, buf: Tile) -> Box:
        """The region `buf[...]` names, numpy's way: an int or a loop index drops its dim, a static
        slice `a:b` keeps it, dims left out are whole. Ranges are checked statically."""
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(elts) > len(buf.shape):
            raise self.error(node, f"a {buf} takes at most {len(buf.shape)} indices or slices, got {len(elts)}")
        offsets: list[SSAValue | int] = []
        sizes, dropped = list(buf.shape), set()
        for dim, elt in enumerate(elts):
            if isinstance(elt, ast.Slice):
                start, stop = self.slice_bounds(elt, buf.shape[dim], dim)
                offsets.append(start)
                sizes[dim] = stop - start
                continue
            idx = self.expr(elt)
            lo, hi = (idx, idx) if _is_num(idx) else (idx.lo, idx.hi) if isinstance(idx, Index) else (None, None)
            if lo is None or not isinstance(lo, int) or hi is None:
                raise self.error(elt, f"an index must be an int or a loop index (or index arithmetic with a known "
                                 f"maximum), got {_describe_value(idx)}")
            if lo < 0 or hi >= buf.shape[dim]:
                raise self.error(elt, f"index range [{lo}, {hi}] is out of bounds for dim {dim} of size {buf.shape[dim]}; "
                                 "make the buffer larger or the loop shorter")
            offsets.append(idx if isinstance(idx, int) else idx.value)
            sizes[dim] = 1
            dropped.add(dim)
        offsets += [0] * (len(buf.shape) - len(elts))
        if len(dropped) == len(buf.shape):
            raise self.error(node, f"a {buf} takes at most {len(buf.shape) - 1} indices (the remaining dims form the "
                             "tile); keep a dim with a slice, e.g. buf[i, 0:1]")
        return Box(tuple(offsets), tuple(sizes), frozenset(dropped))

    def slice_bounds(self, elt: ast.Slice, size: int, dim: int) -> tuple[int, int]:
        values = [None if part is None else self.expr(part) for part in (elt.lower, elt.upper, elt.step)]
        for part, value in zip((elt.lower, elt.upper, elt.step), values):
            if part is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise self.error(part, f"slice bounds must be static Python ints (tile shapes are static), got "
                                 f"{_describe_value(value)}; to pick a tile by a loop index, index a buffer dim instead")
        if values[2] not in (None, 1):
            raise self.error(elt, f"slices take step 1 only, got {values[2]}")
        start = 0 if values[0] is None else values[0] + size * (values[0] < 0)
        stop = size if values[1] is None else values[1] + size * (values[1] < 0)
        if not 0 <= start < stop <= size:
            raise self.error(elt, f"slice {_describe(elt)} selects [{start}, {stop}) of dim {dim}, which has size "
                             f"{size}; slices must be non-empty and inside the tile")
        return start, stop

    # -- operators --------------------------------------------------------------------------------

    def binop(self, node: ast.AST, sym: str, lhs: Any, rhs: Any) -> Any:
        if _is_num(lhs) and _is_num(rhs):
            return _PY_OPS[sym](lhs, rhs)
        if isinstance(lhs, Index | int) and isinstance(rhs, Index | int):
            return self.index_op(node, sym, lhs, rhs)
        if sym == "@":
            return self.matmul(node, lhs, rhs)
        if sym == "**":
            if isinstance(lhs, Tile) and rhs in (1, 2, 3):
                result = lhs
                for _ in range(int(rhs) - 1):
                    result = self.binop(node, "*", result, lhs)
                return result
            raise self.error(node, "tile ** only supports the exponents 1, 2 and 3: write sd.sqrt(x) or x * x")
        if sym not in ops.BINARY_OPERATORS:
            raise self.error(node, f"operator {sym} is not supported on tiles (supported: + - * / @)")
        return self.elementwise(node, ops.BINARY_OPERATORS[sym], [lhs, rhs])

    def index_op(self, node: ast.AST, sym: str, lhs: Index | int, rhs: Index | int) -> Index:
        if sym not in ("+", "-", "*", "//"):
            raise self.error(node, f"index arithmetic supports + - * and // (by a positive int) with loop indices and "
                             f"scalars, not {sym}")
        if sym == "//" and (not isinstance(rhs, int) or rhs <= 0):
            raise self.error(node, f"// of a loop index or a scalar needs a positive static int divisor, got {_describe_value(rhs)}")
        lo_hi = [(v, v) if isinstance(v, int) else (v.lo, v.hi) for v in (lhs, rhs)]
        corners = [_PY_OPS[sym](a, b) for a in lo_hi[0] for b in lo_hi[1] if a is not None and b is not None]
        values = [self.builder.index(v) if isinstance(v, int) else v.value for v in (lhs, rhs)]
        exprs = [AffineExpr.constant(v) if isinstance(v, int) else v.expr for v in (lhs, rhs)]
        expr = None
        if None not in exprs and (sym != "*" or isinstance(lhs, int) or isinstance(rhs, int)):
            expr = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                    "//": lambda a, b: a // b}[sym](*exprs)
        unknown = any(v is None for pair in lo_hi for v in pair)
        lo = None if unknown and sym == "*" else min(corners, default=None)
        hi = None if unknown else max(corners)
        if unknown and sym in ("+", "//") and lo_hi[0][0] is not None and lo_hi[1][0] is not None:
            lo = _PY_OPS[sym](lo_hi[0][0], lo_hi[1][0])
        return Index(self.builder.index_binop(sym, *values), lo if lo is not None else -(2**62), hi, expr)

    def negate(self, node: ast.AST, value: Any) -> Any:
        if _is_num(value):
            return -value
        if isinstance(value, Index):
            return self.index_op(node, "*", value, -1)
        return self.elementwise(node, ops.NEGATE, [value])

    def elementwise(self, node: ast.AST, op: ops.Elementwise, args: Sequence[Any]) -> Tile:
        tiles = [a for a in args if isinstance(a, Tile)]
        if not tiles and all(_is_num(a) for a in args):  # constant folding: sd.exp(2.0)
            return float(op.numpy(*[np.float32(a) for a in args]))
        if any(isinstance(a, Index) for a in args):  # a loop index enters tile maths as a 1-element tile
            dtype = self.common_dtype(node, op.name, tiles) if tiles else ops.f32
            args = [self.builder.index_tile(a.value, dtype) if isinstance(a, Index) else a for a in args]
            tiles = [a for a in args if isinstance(a, Tile)]
        if not tiles:
            raise self.error(node, f"sd.{op.name} needs at least one tile operand, got "
                             f"{', '.join(_describe_value(a) for a in args)}")
        for a in args:
            if not isinstance(a, Tile) and not _is_num(a):
                raise self.error(node, f"{op.name}: operand {_describe_value(a)} is not a tile or a number"
                                 + ("; read a tile with x.read()" if isinstance(a, InPort) else ""))
        dtype = self.common_dtype(node, op.name, tiles, integer_ok=op.name in _INTEGER_OPS)
        if not dtype.is_float:
            if any(isinstance(a, float) for a in args):
                raise self.error(node, f"{op.name}: a float number with a {dtype.name} tile; integer tile math takes "
                                 "int constants (or sd.dequantize the tile first)")
            op = _INTEGER_OPS[op.name]
        shape = broadcast_shapes([t.shape for t in tiles])
        if shape is None:
            raise self.error(node, f"{op.name}: tile shapes {' and '.join(str(list(t.shape)) for t in tiles)} do not "
                             "broadcast; shapes must be equal or 1 in each dim (reduce with keepdims, e.g. sd.sum(x, axis=1))")
        return self.builder.elementwise(tiles, shape, dtype, _with_constants(op.scalar, args))

    def common_dtype(self, node: ast.AST, what: str, tiles: Sequence[Tile], integer_ok: bool = False) -> DType:
        dtypes = {t.dtype for t in tiles}
        if len(dtypes) > 1:
            raise self.error(node, f"{what}: dtype mismatch between {' and '.join(str(t) for t in tiles)}; "
                             "both operands must have the same dtype (convert one with sd.cast)")
        dtype = dtypes.pop()
        if not dtype.is_float and not (integer_ok and not dtype.is_narrow):
            allowed = "+, -, * and @ on i8 / i32 tiles" if integer_ok or what == "@" else "+, -, * and @"
            raise self.error(node, f"{what}: this tile math is supported on float dtypes only, got {dtype.name}; on "
                             f"integer tiles use {allowed} (i4 only in @: sd.cast it to i8 or i32 first), sd.cast, "
                             "sd.dequantize; they can also be stored, sliced, concatenated and written as they are")
        return dtype

    def matmul(self, node: ast.AST, a: Any, b: Any) -> Tile:
        if not (isinstance(a, Tile) and isinstance(b, Tile)):
            raise self.error(node, f"@ needs two tiles, got {_describe_value(a)} and {_describe_value(b)}")
        integer = not a.dtype.is_float and not b.dtype.is_float
        if not integer:
            self.common_dtype(node, "@", [a, b])
        if len(a.shape) < 2 or a.shape[:-2] != b.shape[:-2] or len(a.shape) != len(b.shape) or a.shape[-1] != b.shape[-2]:
            raise self.error(node, f"@: cannot multiply {a} by {b}; both must have the same rank (2, or more with "
                             f"equal leading batch dims) and matching inner dims ({a.shape[-1]} vs "
                             f"{b.shape[-2] if len(b.shape) > 1 else b.shape}): transpose one (x.T, sd.transpose) "
                             "or change the tile shapes")
        if integer:  # sign-extend, multiply and accumulate in i32 (docs/quantization.md)
            return self.builder.batch_matmul(a, b, i32)
        return self.builder.matmul(a, b) if len(a.shape) == 2 else self.builder.batch_matmul(a, b)

    # -- calls ----------------------------------------------------------------------------------

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("read", "write"):
            port = self.expr(func.value)
            if isinstance(port, InPort) and func.attr == "read":
                if node.args or node.keywords:
                    raise self.error(node, f"{port.port.name}.read() takes no arguments")
                self.count(self.reads[port.port.index], node)
                return Tile(self.builder.emit(ITensorReadOp(port.value)).results[0], port.port.type.tile, port.port.type.dtype)
            if isinstance(port, OutPort | InPort):
                raise self.error(node, f"{port.port.name!r} is an {'input' if isinstance(port, InPort) else 'output'} "
                                 f"port: inputs are read with .read(), outputs written with .write(tile) as a statement")
        target = self.expr(func)
        from streamdsl.dsl.dataflow import is_dsl_callable

        if isinstance(target, ops.Elementwise):
            self.no_keywords(node, target.name)
            if len(node.args) != target.arity:
                raise self.error(node, f"sd.{target.name} takes {target.arity} argument(s), got {len(node.args)}")
            return self.elementwise(node, target, [self.expr(a) for a in node.args])
        if isinstance(target, ops.Reduction):
            return self.reduction(node, target)
        if target is len and len(node.args) == 1 and isinstance(value := self.expr(node.args[0]), tuple):
            return len(value)  # of *ports or a shape
        handler = _CALLS.get(target) if isinstance(target, Callable) else None  # type: ignore[arg-type]
        if handler is not None:
            return handler(self, node)
        if target is self.fn or getattr(target, "fn", None) is self.fn:
            raise self.error(node, f"recursion is not supported: kernel {self.fn.__name__!r} cannot call itself; "
                             "write the repetition as a static for loop")
        if is_dsl_callable(target):
            raise self.error(node, "kernels cannot call other kernels: compose them in an @sd.dataflow function")
        if isinstance(target, types.FunctionType):
            return self.inline(node, target)
        name = getattr(target, "__name__", _describe(func))
        raise self.error(node, f"unsupported call to {name!r}: kernels may call the sd tile functions "
                         "(sd.exp, sd.sum, sd.where, sd.zeros, ...), port.read() and plain Python helper "
                         "functions built from them (inlined)")

    # -- helpers ---------------------------------------------------------------------------------

    def inline(self, node: ast.Call, fn: Callable[..., Any]) -> Any:
        """Compile a call to a plain Python function by compiling its body in place (its own names,
        its own globals and closure, errors at its own lines); its `return` value is the call's."""
        if fn is self.fn or any(h.fn is fn for h in self.helpers):
            raise self.error(node, f"recursion is not supported: {fn.__name__!r} is already being inlined; "
                             "write the repetition as a static for loop")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(kw.arg is None for kw in node.keywords):
            raise self.error(node, f"call {fn.__name__!r} with plain positional and keyword arguments (no * or **)")
        args = [self.expr(a) for a in node.args]
        kwargs = {kw.arg: self.expr(kw.value) for kw in node.keywords}
        try:
            bound = inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as err:
            raise self.error(node, f"cannot call helper {fn.__name__!r}: {err}") from None
        bound.apply_defaults()
        fdef, filename, shift = parse_function(fn)
        if generator := next((n for n in ast.walk(fdef) if isinstance(n, ast.Yield | ast.YieldFrom)), None):
            raise DSLError(f"helper {fn.__name__!r} yields: only the kernel itself writes its outputs; return the "
                           "tile and yield it in the kernel", filename, generator.lineno, generator.col_offset + 1 + shift)
        saved = (self.env, self.loop_only, self.assign_site, self.later, self.globals, self.filename, self.col_shift)
        chains = {k: v for k, v in self.env.items() if k.startswith("%out")}  # output streams it may write
        self.env = {**chains, **bound.arguments}
        self.loop_only, self.assign_site = {}, {}
        self.globals, self.filename, self.col_shift = _scope(fn), filename, shift
        helper = _Helper(fn, set(bound.arguments), self.depth)
        self.helpers.append(helper)
        try:
            self.later = []  # the caller's names are not the helper's: liveness starts afresh
            self.statements(fdef.body)
        finally:
            self.helpers.pop()
            inner = self.env
            self.env, self.loop_only, self.assign_site, self.later, self.globals, self.filename, self.col_shift = saved
            self.env.update({k: v for k, v in inner.items() if k.startswith("%out")})
        return helper.value

    def helper_return(self, node: ast.Return, value: ast.expr | None) -> None:
        helper = self.helpers[-1]
        if self.depth != helper.depth:
            raise self.error(node, f"return inside a loop of helper {helper.fn.__name__!r}: loops run their full "
                             "static trip count; carry the value in a variable and return it after the loop")
        helper.value = None if value is None else self.expr(value)
        helper.returned = True

    def no_keywords(self, node: ast.Call, name: str) -> None:
        if node.keywords:
            raise self.error(node, f"sd.{name} takes no keyword arguments")

    def args(self, node: ast.Call, name: str, params: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
        if len(node.args) > len(params):
            raise self.error(node, f"sd.{name} takes at most {len(params)} arguments ({', '.join(params)})")
        values = {p: self.expr(a) for p, a in zip(params, node.args)}
        for kw in node.keywords:
            if kw.arg not in params or kw.arg in values:
                raise self.error(node, f"sd.{name}: unexpected keyword {kw.arg!r} (parameters: {', '.join(params)})")
            values[kw.arg] = self.expr(kw.value)
        for p in params:
            if p not in values:
                if p not in defaults:
                    raise self.error(node, f"sd.{name}: missing argument {p!r}")
                values[p] = defaults[p]
        return values

    def tile_arg(self, node: ast.AST, name: str, value: Any) -> Tile:
        if not isinstance(value, Tile):
            raise self.error(node, f"sd.{name} needs a tile, got {_describe_value(value)}")
        return value

    def reduction(self, node: ast.Call, op: ops.Reduction) -> Tile:
        a = self.args(node, op.name, ["x", "axis"], {"axis": -1})
        x, axis = self.tile_arg(node, op.name, a["x"]), a["axis"]
        self.common_dtype(node, f"sd.{op.name}", [x])
        if not isinstance(axis, int) or not -len(x.shape) <= axis < len(x.shape):
            raise self.error(node, f"sd.{op.name}: axis must be a static int in [-{len(x.shape)}, {len(x.shape)}) for a {x}, got {axis!r}")
        axis %= len(x.shape)
        result = self.builder.reduce(x, axis, op.init, op.combine)
        if op.average:
            n = x.shape[axis]
            result = self.builder.elementwise([result], result.shape, x.dtype, lambda b, v: b.op(arith.DivfOp(v[0], b.const(n))))
        return result

    def construct(self, node: ast.Call, name: str, params: list[str], defaults: dict[str, Any]) -> Tile:
        a = self.args(node, name, params, defaults)
        shape = (a["shape"],) if isinstance(a["shape"], int) else a["shape"]
        if not isinstance(shape, tuple) or not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise self.error(node, f"sd.{name}: shape must be a static tuple of positive ints, got {a['shape']!r}")
        if not isinstance(a["dtype"], DType):
            raise self.error(node, f"sd.{name}: dtype must be an sd dtype such as sd.f32, got {a['dtype']!r}")
        value = a.get("value", 0.0)
        if not _is_num(value):
            raise self.error(node, f"sd.full: value must be a Python number, got {_describe_value(value)}")
        return self.builder.full(shape, a["dtype"], value)

    def where(self, node: ast.Call) -> Tile:
        self.no_keywords(node, "where")
        if len(node.args) != 3:
            raise self.error(node, "sd.where takes (condition, a, b)")
        cond = node.args[0]
        if not (isinstance(cond, ast.Compare) and len(cond.ops) == 1):
            raise self.error(cond, "the condition of sd.where must be one comparison written inline, e.g. sd.where(x > 0.0, x, 0.0)")
        sym = _CMP_SYMBOLS.get(type(cond.ops[0]), "")
        pred = ops.COMPARISONS.get(sym)
        if pred is None:
            raise self.error(cond, "sd.where supports the comparisons < <= > >= == !=")
        args = [self.expr(cond.left), self.expr(cond.comparators[0]), self.expr(node.args[1]), self.expr(node.args[2])]

        def body(b: Any, v: Sequence[SSAValue]) -> SSAValue:
            c = b.op(arith.CmpfOp(v[0], v[1], pred))
            return b.op(arith.SelectOp(c, v[2], v[3]))

        def fused(left: Any, right: Any, a: Any, b: Any) -> Any:
            return ops.where(_PY_CMP[sym](left, right), a, b)

        return self.elementwise(node, ops.Elementwise("where", 4, fused, body), args)

    def transpose(self, node: ast.Call) -> Tile:
        a = self.args(node, "transpose", ["x", "perm"], {"perm": None})
        x = self.tile_arg(node, "transpose", a["x"])
        perm = tuple(reversed(range(len(x.shape)))) if a["perm"] is None else a["perm"]
        if not isinstance(perm, tuple) or sorted(perm) != list(range(len(x.shape))):
            raise self.error(node, f"sd.transpose: perm must be a permutation of 0..{len(x.shape) - 1}, got {perm!r}")
        return self.builder.transpose(x, perm)

    def reshape(self, node: ast.Call) -> Tile:
        a = self.args(node, "reshape", ["x", "shape"], {})
        x, shape = self.tile_arg(node, "reshape", a["x"]), a["shape"]
        if not isinstance(shape, tuple) or any(not isinstance(s, int) or s < 1 for s in shape) or math.prod(shape) != math.prod(x.shape):
            raise self.error(node, f"sd.reshape: cannot reshape a {x} to {shape!r}; the new static shape must have "
                             f"{math.prod(x.shape)} elements")
        return self.builder.reshape(x, shape)

    def iota(self, node: ast.Call) -> Tile:
        a = self.args(node, "iota", ["shape", "axis", "dtype"], {"axis": -1, "dtype": ops.f32})
        shape = (a["shape"],) if isinstance(a["shape"], int) else a["shape"]
        if not isinstance(shape, tuple) or not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise self.error(node, f"sd.iota: shape must be a static tuple of positive ints, got {a['shape']!r}")
        axis, dtype = a["axis"], a["dtype"]
        if not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
            raise self.error(node, f"sd.iota: axis must be a static int in [-{len(shape)}, {len(shape)}), got {axis!r}")
        if not isinstance(dtype, DType) or not dtype.is_float:
            raise self.error(node, f"sd.iota: dtype must be a float sd dtype, got {dtype!r}")
        return self.builder.iota(shape, axis % len(shape), dtype)

    def dtype_arg(self, node: ast.AST, name: str, dtype: Any, kinds: str) -> DType:
        ok = isinstance(dtype, DType) and {"float": dtype.is_float, "int": not dtype.is_float, "any": True}[kinds] \
            if isinstance(dtype, DType) else False
        if not ok:
            want = {"float": "a float sd dtype (sd.f32, sd.f16, sd.bf16)", "int": "an integer sd dtype (sd.i4, sd.i8)",
                    "any": "an sd dtype"}[kinds]
            raise self.error(node, f"sd.{name}: dtype must be {want}, got {dtype!r}")
        return dtype

    def scale_arg(self, node: ast.AST, name: str, scale: Any, shape: tuple[int, ...]) -> Tile | float:
        """A scale: a Python number or a float tile that broadcasts against `shape`."""
        if _is_num(scale):
            return float(scale)
        if not isinstance(scale, Tile) or not scale.dtype.is_float:
            raise self.error(node, f"sd.{name}: the scale must be a float tile or a number, got {_describe_value(scale)}")
        if broadcast_shapes([shape, scale.shape]) != shape:
            raise self.error(node, f"sd.{name}: a scale {scale} does not broadcast to the {list(shape)} tile it scales; "
                             "give it size 1 or the tile's size in each dim")
        return scale

    def cast(self, node: ast.Call) -> Tile:
        a = self.args(node, "cast", ["x", "dtype"], {})
        x = self.tile_arg(node, "cast", a["x"])
        dtype = self.dtype_arg(node, "cast", a["dtype"], "any")
        return self.builder.elementwise([x], x.shape, dtype, lambda b, v: b.cast(v[0], dtype.ir()))

    def quantize(self, node: ast.Call) -> Tile:
        """`clamp(round(x / s), -qmax, qmax)` in f32, ties to even, 0 where `s == 0`."""
        a = self.args(node, "quantize", ["x", "scale", "dtype"], {"dtype": ops.i8})
        x = self.tile_arg(node, "quantize", a["x"])
        if not x.dtype.is_float:
            raise self.error(node, f"sd.quantize: quantizes a float tile, got a {x}")
        dtype = self.dtype_arg(node, "quantize", a["dtype"], "int")
        if dtype.bits > 8:
            raise self.error(node, f"sd.quantize: quantizes to sd.i4 or sd.i8, not {dtype.name}")
        scale = self.scale_arg(node, "quantize", a["scale"], x.shape)
        qmax, f32 = float(quant.qmax(dtype.bits)), ops.f32.ir()

        def body(b: Any, v: Sequence[SSAValue]) -> SSAValue:
            xs = b.cast(v[0], f32)
            s = b.cast(v[1], f32) if isinstance(scale, Tile) else b.const(scale, f32)
            zero = b.op(arith.CmpfOp(s, b.const(0.0, f32), "oeq"))
            safe = b.op(arith.SelectOp(zero, b.const(1.0, f32), s))
            r = b.op(mathd.RoundEvenOp(b.op(arith.DivfOp(xs, safe))))
            clamped = b.op(arith.MinimumfOp(b.op(arith.MaximumfOp(r, b.const(-qmax, f32))), b.const(qmax, f32)))
            return b.op(arith.SelectOp(zero, b.const(0), b.op(arith.FPToSIOp(clamped, dtype.ir()))))

        return self.builder.elementwise([t for t in (x, scale) if isinstance(t, Tile)], x.shape, dtype, body)

    def dequantize(self, node: ast.Call) -> Tile:
        """`float(q) * float(s)` (an f16 scale widens exactly)."""
        a = self.args(node, "dequantize", ["q", "scale", "dtype"], {"dtype": ops.f32})
        q = self.tile_arg(node, "dequantize", a["q"])
        if q.dtype.is_float:
            raise self.error(node, f"sd.dequantize: dequantizes an integer tile, got a {q}")
        dtype = self.dtype_arg(node, "dequantize", a["dtype"], "float")
        scale = self.scale_arg(node, "dequantize", a["scale"], q.shape)
        shape = broadcast_shapes([q.shape] + ([scale.shape] if isinstance(scale, Tile) else []))

        def body(b: Any, v: Sequence[SSAValue]) -> SSAValue:
            s = b.cast(v[1], dtype.ir()) if isinstance(scale, Tile) else b.const(scale)
            return b.op(arith.MulfOp(b.cast(v[0], dtype.ir()), s))

        return self.builder.elementwise([t for t in (q, scale) if isinstance(t, Tile)], shape, dtype, body)

    def hint(self, node: ast.Call) -> Tile:
        a = self.args(node, "hint", ["x", "lanes"], {"lanes": None})
        x, lanes = a["x"], a["lanes"]
        if not isinstance(x, Tile):
            raise self.error(node, f"sd.hint needs a tile, got {_describe_value(x)}")
        if not x.value.owner.name.startswith("linalg."):  # type: ignore[union-attr]
            raise self.error(node, "sd.hint applies to the result of a tile operation (a @ b, sd.exp(x), a + b, ...), "
                             f"not to one made by `{x.value.owner.name}`")  # type: ignore[union-attr]
        problem = hints.Hints(lanes=lanes).check()
        if problem or lanes is None:
            raise self.error(node, f"sd.hint: {problem or 'give lanes=N'}")
        op = x.value.owner
        hints.set_lanes(op, lanes)  # type: ignore[arg-type]
        cost = hints.dsp_cost(op, lanes)  # type: ignore[arg-type]
        if cost > hints.DEVICE_DSPS:
            per_lane = cost // lanes
            raise self.error(node, f"sd.hint: lanes={lanes} on this `{op.name}` needs {cost} DSP slices "  # type: ignore[union-attr]
                             f"({per_lane} per lane); the U55C has {hints.DEVICE_DSPS}: use at most "
                             f"{hints.DEVICE_DSPS // per_lane} lanes")
        return x

    def concat(self, node: ast.Call) -> Tile:
        a = self.args(node, "concat", ["parts", "axis"], {"axis": -1})
        parts, axis = a["parts"], a["axis"]
        if not isinstance(parts, tuple) or len(parts) < 2 or not all(isinstance(p, Tile) for p in parts):
            raise self.error(node, "sd.concat takes a list or tuple of at least two tiles: sd.concat([a, b], axis=1)")
        rank = len(parts[0].shape)
        if not isinstance(axis, int) or not -rank <= axis < rank:
            raise self.error(node, f"sd.concat: axis must be a static int in [-{rank}, {rank}), got {axis!r}")
        axis %= rank
        for p in parts[1:]:
            if p.dtype != parts[0].dtype or len(p.shape) != rank or any(
                    s != t for d, (s, t) in enumerate(zip(p.shape, parts[0].shape)) if d != axis):
                raise self.error(node, f"sd.concat: {p} does not fit {parts[0]} along axis {axis}; parts must have "
                                 "the same dtype and the same sizes outside the axis")
        return self.builder.concat(parts, axis)

    def as_tile(self, value: Any, node: ast.AST, shape: tuple[int, ...], dtype: DType) -> Tile:
        if isinstance(value, Tile):
            return value
        if _is_num(value):
            return self.builder.full(shape, dtype, value)
        raise self.error(node, f"expected a tile, got {_describe_value(value)}")


_CALLS: dict[Any, Callable[[_Compiler, ast.Call], Any]] = {
    ops.zeros: lambda c, n: c.construct(n, "zeros", ["shape", "dtype"], {"dtype": ops.f32}),
    ops.full: lambda c, n: c.construct(n, "full", ["shape", "value", "dtype"], {"dtype": ops.f32}),
    ops.where: _Compiler.where,
    ops.transpose: _Compiler.transpose,
    ops.reshape: _Compiler.reshape,
    ops.concat: _Compiler.concat,
    ops.iota: _Compiler.iota,
    ops.cast: _Compiler.cast,
    ops.quantize: _Compiler.quantize,
    ops.dequantize: _Compiler.dequantize,
    hints.hint: _Compiler.hint,
}

# element-wise ops that also apply to i8 / i32 tiles (two's complement, wrapping), by DSL name
_INTEGER_OPS: dict[str, ops.Elementwise] = {
    "add": ops.Elementwise("add", 2, np.add, lambda b, a: b.op(arith.AddiOp(a[0], a[1]))),
    "sub": ops.Elementwise("sub", 2, np.subtract, lambda b, a: b.op(arith.SubiOp(a[0], a[1]))),
    "mul": ops.Elementwise("mul", 2, np.multiply, lambda b, a: b.op(arith.MuliOp(a[0], a[1]))),
    "neg": ops.Elementwise("neg", 1, np.negative, lambda b, a: b.op(arith.SubiOp(b.const(0), a[0]))),
}

_BINOP_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**",
                  ast.FloorDiv: "//", ast.Mod: "%"}
_CMP_SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_PY_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b, "**": lambda a, b: a**b,
    "@": lambda a, b: a @ b,
}


def _binop_symbol(c: _Compiler, node: ast.AST, op: ast.operator) -> str:
    sym = _BINOP_SYMBOLS.get(type(op))
    if sym is None:
        raise c.error(node, f"operator {type(op).__name__} is not supported in kernels (supported: + - * / @)")
    return sym


_STATIC_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq,
    ast.NotEq: operator.ne, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


def _is_static(v: Any) -> bool:
    """A compile-time Python value (not a tile, a loop index, a port or a stream)."""
    return not isinstance(v, Tile | Index | InPort | OutPort | Stream)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _with_constants(scalar: ops.Scalar, args: Sequence[Any]) -> ops.Scalar:
    """Python numbers become `arith.constant`s inside the generic body; tiles are its inputs."""

    def body(b: Any, tile_args: Sequence[SSAValue]) -> SSAValue:
        it = iter(tile_args)
        return scalar(b, [next(it) if isinstance(a, Tile) else b.const(a) for a in args])

    return body


def _expr_dims(expr: AffineExpr) -> set[int]:
    return {e.position for e in _subexprs(expr) if isinstance(e, AffineDimExpr)}


def _expr_symbols(expr: AffineExpr) -> set[int]:
    return {e.position for e in _subexprs(expr) if isinstance(e, AffineSymExpr)}


def _subexprs(expr: AffineExpr) -> list[AffineExpr]:
    if isinstance(expr, AffineBinaryOpExpr):
        return [expr, *_subexprs(expr.lhs), *_subexprs(expr.rhs)]
    return [expr]


def _rebind(old: Tile | Stream, value: SSAValue) -> Tile | Stream:
    return Tile(value, old.shape, old.dtype) if isinstance(old, Tile) else Stream(value)


def _as_load(target: ast.expr) -> ast.expr:
    load = ast.parse(ast.unparse(target), mode="eval").body
    ast.copy_location(load, target)
    for sub in ast.walk(load):
        ast.copy_location(sub, target)
    return load


def _assigned(body: Sequence[ast.stmt], env: dict[str, Any], sig: KernelSignature) -> set[str]:
    """Names (and output chains) a loop body may rebind: the candidates for iter_args."""
    names: set[str] = set()
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name):
                names.add(node.value.id)
            elif isinstance(node, ast.Yield):
                names.update(_out_key(p.index) for p in sig.outputs)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "write":
                port = env.get(node.func.value.id) if isinstance(node.func.value, ast.Name) else None
                if isinstance(port, OutPort):
                    names.add(_out_key(port.port.index))
    return names


def _exposed(stmts: Sequence[ast.stmt], defined: frozenset[str] = frozenset()) -> set[str]:
    """Names the statements read before (re)binding them: the values they need from earlier.
    `acc += v` and `buf[i] = v` read `acc` and `buf`; loops run at least once, so their bindings count."""
    bound, exposed = set(defined), set()
    for stmt in stmts:
        if isinstance(stmt, ast.For):
            exposed |= _reads(stmt.iter) - bound
            exposed |= _exposed(stmt.body, frozenset(bound | _bound(stmt.target)))
            bound |= set().union(*(_bound(s) for s in stmt.body)) if stmt.body else set()
        else:
            exposed |= _reads(stmt) - bound
            bound |= _bound(stmt)
    return exposed


def _reads(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            names.add(sub.id)
        elif isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
            names.add(sub.target.id)
    return names


def _bound(node: ast.AST) -> set[str]:
    """Names a statement rebinds entirely (a buffer element store only updates the buffer)."""
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}


def _describe(node: ast.AST) -> str:
    try:
        return f"`{ast.unparse(node)}`"
    except Exception:  # noqa: BLE001 - only for messages
        return type(node).__name__


def _describe_value(v: Any) -> str:
    if isinstance(v, Tile):
        return f"a {v}"
    if isinstance(v, Index):
        return f"a loop index or a run-time scalar (range [{v.lo}, {v.hi}])"
    if isinstance(v, InPort):
        return f"the input port {v.port.name!r}"
    if isinstance(v, OutPort):
        return f"the output port {v.port.name!r}"
    if isinstance(v, Stream):
        return "an output stream"
    if isinstance(v, types.ModuleType):
        return f"the module {v.__name__}"
    return f"the Python value {v!r}"


def _cell_ok(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The decorator
# ---------------------------------------------------------------------------------------------


def parse_function(fn: Callable[..., Any]) -> tuple[ast.FunctionDef, str, int]:
    try:
        lines, first = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError) as err:
        raise DSLError(f"cannot read the source of {fn.__name__!r} ({err}); kernels must be defined in a file") from None
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    shift = len(lines[0]) - len(lines[0].lstrip()) - (len(dedented.splitlines()[0]) - len(dedented.splitlines()[0].lstrip()))
    tree = ast.parse(dedented)
    ast.increment_lineno(tree, first - 1)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef):
        raise DSLError(f"@sd.kernel / @sd.dataflow apply to a plain def, not {type(fdef).__name__}", filename, first, 1)
    return fdef, filename, shift


def _signature(fn: Callable[..., Any], fdef: ast.FunctionDef, filename: str, shift: int,
               scope: dict[str, Any] | None, arity: int = 0) -> KernelSignature:
    """`arity`: how many ports a variadic parameter (`*parts: T`) stands for in this compilation."""

    def err(node: ast.AST, msg: str) -> DSLError:
        return DSLError(msg, filename, node.lineno, node.col_offset + 1 + shift)

    a = fdef.args
    if a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
        raise err(fdef, f"kernel {fn.__name__!r}: parameters must be plain names annotated with itensor types, and "
                  "at most one *ports: T (no **kwargs, defaults or keyword-only parameters)")
    try:
        annotations = inspect.get_annotations(fn, locals=scope, eval_str=True)
    except Exception as e:  # noqa: BLE001 - report whatever the annotation raised
        raise err(fdef, f"kernel {fn.__name__!r}: cannot evaluate its annotations ({e}); they may name module "
                  "globals, the function's closure and the locals of the functions that are running when "
                  "the decorator runs") from None
    inputs: list[Port] = []
    outputs: list[Port] = []
    scalars: list[ScalarParam] = []
    for arg in a.args:
        ann = annotations.get(arg.arg)
        if isinstance(ann, itensor):
            inputs.append(Port(arg.arg, ann, len(inputs)))
        elif isinstance(ann, ScalarSpec):
            scalars.append(ScalarParam(arg.arg, ann, len(scalars)))
        elif isinstance(ann, OutSpec):
            outputs.append(Port(arg.arg, ann.type, len(outputs)))
        else:
            raise err(arg, f"parameter {arg.arg!r} of kernel {fn.__name__!r} needs an itensor annotation "
                      f"(x: sd.itensor.tiled(...)), sd.Out[itensor] or sd.Scalar[sd.i32, max], got {ann!r}")
    params = [arg.arg for arg in a.args]
    if a.vararg:
        ann = annotations.get(a.vararg.arg)
        if not isinstance(ann, itensor):
            raise err(a.vararg, f"*{a.vararg.arg} of kernel {fn.__name__!r} needs an itensor annotation: every port it "
                      f"stands for streams that type (*{a.vararg.arg}: T), got {ann!r}")
        for i in range(arity):
            inputs.append(Port(variadic_port(a.vararg.arg, i), ann, len(inputs)))
            params.append(inputs[-1].name)
    ret = annotations.get("return")
    if ret is not None:
        if outputs:
            raise err(fdef, f"kernel {fn.__name__!r} has both sd.Out ports and a return annotation: use one style")
        rets = ret if isinstance(ret, tuple) else (ret,)
        if not rets or not all(isinstance(r, itensor) for r in rets):
            raise err(fdef, f"the return annotation of kernel {fn.__name__!r} must be an itensor or a tuple of them, got {ret!r}")
        outputs = [Port(f"out{i}" if len(rets) > 1 else "out", r, i) for i, r in enumerate(rets)]
    if not outputs:
        raise err(fdef, f"kernel {fn.__name__!r} has no outputs: add a return annotation (-> Y) and yield tiles, "
                  "or sd.Out[Y] parameters")
    return KernelSignature(inputs, outputs, ret is not None, params, scalars)


def variadic_port(name: str, i: int) -> str:
    return f"{name}.{i}"


def annotation_scope(fn: Callable[..., Any], frame: types.FrameType | None) -> collections.ChainMap[str, Any]:
    """The locals string annotations (`from __future__ import annotations`) are evaluated in, in
    front of the function's globals: its closure, then the locals of `frame` (the decorator's
    caller) and of the functions that called it, nearest first. A kernel factory's annotations
    name the factory's locals, which are not in the closure when only an annotation uses them."""
    closure = {n: c.cell_contents for n, c in zip(fn.__code__.co_freevars, fn.__closure__ or ()) if _cell_ok(c)}
    scopes: list[Any] = [closure]
    while frame is not None and frame.f_code.co_name != "<module>":
        scopes.append(frame.f_locals)
        frame = frame.f_back
    return collections.ChainMap(*scopes)


class Kernel:
    """A compiled kernel: one `dataflow.task` body plus the original function (for eager mode)."""

    def __init__(self, fn: Callable[..., Any], scope: Any = None, name: str | None = None,
                 perf: hints.Hints = hints.Hints(), scalars: dict[str, tuple[str, int | None]] | None = None,
                 arity: int | None = None):
        """`scalars` renames the scalar parameters in the port types' bounds (and may give
        maxima the annotations leave out): how a dataflow call binds them to its own scalars.
        A kernel with `*ports: T` is compiled per call for the number of streams passed (`arity`)."""
        self.fn = fn
        self.name = name or fn.__name__
        self.hints = perf
        self.scope = scope
        self._bound: dict[Any, Kernel] = {}
        self._program: Any = None
        fdef, filename, shift = parse_function(fn)
        self.variadic = fdef.args.vararg is not None and arity is None
        signature = _signature(fn, fdef, filename, shift, scope, arity or 0)
        if self.variadic:  # a template: each call compiles it for its number of streams
            self.signature, self.fixed = signature, len(signature.arguments)
            return
        for param in signature.scalars:
            if scalars and param.name in scalars and param.spec.max is None:
                signature.scalars[param.index] = replace(param, spec=replace(param.spec, max=scalars[param.name][1]))
        names = {n: bound for n, (bound, _) in (scalars or {}).items()}
        compiler = _Compiler(fn, signature, fdef, filename, shift, self.name, names)
        self.body = compiler.compile()
        if bounded := compiler.bounded_ports():  # compile again with the ports' run-time lengths in their types
            signature = replace(signature, inputs=[replace(p, type=bounded.get(p.name, p.type)) for p in signature.inputs],
                                outputs=[replace(p, type=bounded.get(p.name, p.type)) for p in signature.outputs])
            self.body = _Compiler(fn, signature, fdef, filename, shift, self.name, names).compile()
        self.signature = signature
        self.check_hints(fdef, filename, shift)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def scalars(self) -> list[ScalarParam]:
        return self.signature.scalars

    def bind_scalars(self, scalars: dict[str, tuple[str, int | None]]) -> Kernel:
        """This kernel with its scalar parameters renamed (`{param: (name, max)}`) in its types."""
        if all(scalars[p.name][0] == p.name and p.spec.max is not None for p in self.scalars):
            return self
        key = tuple(sorted(scalars.items()))
        if key not in self._bound:
            self._bound[key] = Kernel(self.fn, self.scope, self.name, self.hints, scalars, self.arity)
        return self._bound[key]

    @property
    def arity(self) -> int | None:
        """The streams `*ports` stands for in this compilation (None without `*ports`)."""
        star = parse_function(self.fn)[0].args.vararg
        return None if star is None or self.variadic else sum(p.name.startswith(f"{star.arg}.") for p in self.inputs)

    def with_arity(self, count: int) -> Kernel:
        """A variadic kernel compiled for `count` streams in its `*ports`."""
        if count < 1:
            from streamdsl.dsl.dataflow import located

            star = parse_function(self.fn)[0].args.vararg
            raise located(f"kernel {self.name!r} takes {self.fixed} argument(s) and at least one stream for "
                          f"*{star.arg if star else 'ports'}, got {self.fixed + count} argument(s)")
        if ("arity", count) not in self._bound:
            self._bound[("arity", count)] = Kernel(self.fn, self.scope, self.name, self.hints, None, count)
        return self._bound[("arity", count)]

    def check_hints(self, fdef: ast.FunctionDef, filename: str, shift: int) -> None:
        """Hints are positive ints, and the hinted tile ops fit the device's DSP slices."""
        where = (filename, fdef.lineno, fdef.col_offset + 1 + shift)
        if problem := self.hints.check():
            raise DSLError(f"kernel {self.name!r}: {problem}", *where)
        total, costliest = hints.over_budget(self.body.walk(), self.hints.lanes or 0)
        if costliest:
            names = ", ".join(f"`{op.name}` ({cost})" for cost, op in costliest)
            raise DSLError(f"kernel {self.name!r}: its hinted tile ops need {total} DSP slices, the U55C has "
                           f"{hints.DEVICE_DSPS} (costliest: {names}); lower lanes= on the kernel or on those ops "
                           "with sd.hint(x, lanes=N)", *where)

    @property
    def inputs(self) -> list[Port]:
        return self.signature.inputs

    @property
    def outputs(self) -> list[Port]:
        return self.signature.outputs

    def task(self, sym_name: str, inputs: Sequence[SSAValue], inits: Sequence[SSAValue]) -> TaskOp:
        """A fresh `dataflow.task` running this kernel on the given streams (the input ports'
        streams, then the scalars)."""
        task = TaskOp(sym_name, inputs, inits, self.body.clone())
        task.attributes.update(self.hints.attributes())
        return task

    def __call__(self, *args: Any) -> Any:
        from streamdsl.dsl.dataflow import GraphValue, record_call
        from streamdsl.dsl.eager import run_kernel

        if self.variadic:
            return self.with_arity(len(args) - self.fixed)(*args)
        if any(isinstance(a, GraphValue) for a in args):
            return record_call(self, args)
        return run_kernel(self, args)

    @property
    def program(self) -> Any:
        """This kernel alone as a Program (DMAs at its ports), e.g. to simulate it in isolation."""
        if self.variadic:
            raise DSLError(f"kernel {self.name!r} has *ports: call it in an @sd.dataflow function (the number of "
                           "streams passed decides its ports), or use k.with_arity(n).program")
        if self._program is None:
            from streamdsl.dsl.dataflow import kernel_program

            self._program = kernel_program(self)
        return self._program

    @property
    def module(self) -> Any:
        return self.program.module

    def simulate(self, *arrays: Any, **options: Any) -> Any:
        return self.program.simulate(*arrays, **options)

    def __repr__(self) -> str:
        ins = ", ".join(f"{p.name}: {p.type}" for p in self.inputs)
        outs = ", ".join(str(p.type) for p in self.outputs)
        return f"<sd.kernel {self.name}({ins}) -> ({outs})>"


def kernel(fn: Callable[..., Any] | None = None, *, name: str | None = None, lanes: int | None = None,
           ii: int | None = None) -> Any:
    """Compile `fn` into a dataflow task (raises `sd.DSLError` at the offending line).

    `@sd.kernel` or `@sd.kernel(name="q_proj", lanes=16, ii=2)`: `name` names the task (default:
    the function's name), so kernels made by one factory can be told apart; `lanes` is the scalar
    operations per cycle of its tile ops, `ii` the least initiation interval of its pipelined
    loops (performance hints, carried in the IR for the timing model and the HLS emitter)."""
    frame = sys._getframe(1)
    perf = hints.Hints(lanes, ii)
    if fn is None:
        return lambda f: Kernel(f, annotation_scope(f, frame), name, perf)
    return Kernel(fn, annotation_scope(fn, frame), name, perf)

