"""`linalg` ops as numpy closures, prepared once per op.

Named ops with an obvious numpy form (fill, matmul, transpose, broadcast, reduce) get it; every
other structured op (`linalg.generic`, the elementwise named ops, matmul with other maps, convs)
is evaluated from its indexing maps and body: each operand is laid out over the iteration space
(a broadcasting view when its map is a projected permutation, a gather otherwise), the scalar
body runs once on whole arrays, and reductions use the ufunc of the combiner the body yields.
Bodies whose reduction is not a plain combiner run sequentially over the reduction indices.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import BFloat16Type, ShapedType
from xdsl.dialects.linalg.abstract_ops import LinalgStructuredOperation
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.dialects.linalg.ops import (
    BroadcastOp,
    FillOp,
    MatmulOp,
    ReduceOp,
    TransposeOp,
)
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.ir.affine import (
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from streamdsl.dtypes import numpy_dtype
from streamdsl.itensor import eval_affine
from streamdsl.opinfo import OPS
from streamdsl.sim._codegen import I4, CompileError, Emitter, element_type, round_bf16, wrap_i4

__all__ = ["compile_linalg"]

Kernel = Callable[..., tuple[Any, ...]]

# associative, commutative combiners: a reduction over them is `ufunc.reduce`
COMBINERS: dict[str, np.ufunc] = {name: info.combiner for name, info in OPS.items() if info.combiner is not None}

_DEFAULT_MATMUL_MAPS = (
    AffineMap.from_callable(lambda i, _, k: (i, k)),
    AffineMap.from_callable(lambda _, j, k: (k, j)),
    AffineMap.from_callable(lambda i, j, _: (i, j)),
)


# A value a body uses but does not define (e.g. the table a `tensor.extract` gathers from): the
# body reads it as the global `name` of `namespace`, which the caller sets before each call.
Capture = tuple[SSAValue, dict[str, object], str]


def compile_linalg(op: Operation, label: str, captures: list[Capture] | None = None) -> Kernel:
    """A function of the op's operands (ins then outs) returning the tuple of its results. Values
    the body uses from outside the op are appended to `captures`."""
    captures = [] if captures is None else captures
    if isinstance(op, FillOp):
        return _fill(op)
    if isinstance(op, MatmulOp) and tuple(m.data for m in op.indexing_maps) == _DEFAULT_MATMUL_MAPS:
        return _matmul(op)
    if isinstance(op, TransposeOp):
        perm = tuple(op.permutation.get_values())
        return lambda x, _out: (np.transpose(x, perm),)
    if isinstance(op, BroadcastOp):
        return _broadcast(op)
    if isinstance(op, ReduceOp):
        return _reduce(op, label, captures)
    if isinstance(op, LinalgStructuredOperation):
        return _Structured(op, label, captures).kernel()
    raise CompileError(f"{label}: the functional simulator does not support `{op.name}`")


def _finish(op: Operation) -> Callable[[Any], Any]:
    if not op.results:
        raise CompileError(f"{op.name}: only the tensor form (with results) is simulated, not the memref form")
    return _finish_result(op.results[0])


def _fill(op: FillOp) -> Kernel:
    finish = _finish(op)
    return lambda value, out: (finish(np.full(out.shape, value, dtype=out.dtype)),)


def _matmul(op: MatmulOp) -> Kernel:
    finish = _finish(op)
    return lambda a, b, out: (finish(out + np.matmul(a, b)),)


def _broadcast(op: BroadcastOp) -> Kernel:
    dims = tuple(op.dimensions.get_values())
    finish = _finish(op)
    return lambda x, out: (finish(np.broadcast_to(np.expand_dims(x, dims), out.shape)),)


def _reduce(op: ReduceOp, label: str, captures: list[Capture]) -> Kernel:
    dims = tuple(op.dimensions.get_values())
    finish = _finish(op)
    block = op.region.block
    ufunc = _combiner(block, block.args[0], block.args[1])
    if ufunc is not None:
        return lambda x, init: (finish(ufunc(init, ufunc.reduce(x, axis=dims))),)
    body = _compile_body(block, label, captures)

    def sequential(x: np.ndarray, init: np.ndarray) -> tuple[Any, ...]:
        moved = np.moveaxis(x, dims, tuple(range(len(dims))))
        acc = init
        for index in itertools.product(*(range(s) for s in moved.shape[: len(dims)])):
            (acc,) = body(moved[index], acc)
        return (finish(acc),)

    return sequential


def _combiner(block: Block, element: SSAValue, acc: SSAValue) -> np.ufunc | None:
    """The ufunc if the block is `yield combine(element, acc)` (either operand order)."""
    ops = list(block.ops)
    if len(ops) != 2 or ops[0].name not in COMBINERS:
        return None
    combine, yield_ = ops
    if list(yield_.operands) != [combine.results[0]] or set(combine.operands) != {element, acc}:
        return None
    return COMBINERS[combine.name]


class _BodyEmitter(Emitter):
    """A linalg body: `linalg.index` reads an index-grid argument, `linalg.yield` returns."""

    def __init__(self, label: str, yield_override: dict[int, SSAValue]):
        super().__init__(label)
        self.yield_override = yield_override  # yield these values instead (reduction contributions)
        self.free: list[tuple[SSAValue, str]] = []

    def use(self, value: SSAValue) -> str:
        if value not in self.names:  # defined outside the op (the body defines its own first)
            self.names[value] = name = f"_free{len(self.free)}"
            self.free.append((value, name))
        return super().use(value)

    def op(self, op: Operation, indent: int) -> None:
        if op.name == "linalg.index":
            self.names[op.results[0]] = f"idx[{op.dim.value.data}]"  # type: ignore[attr-defined]
        elif op.name == "linalg.yield":
            values = [self.yield_override.get(i, v) for i, v in enumerate(op.operands)]
            self.emit(indent, f"return ({''.join(self.use(v) + ', ' for v in values)})", op)
        else:
            super().op(op, indent)


def _compile_body(block: Block, label: str, captures: list[Capture], override: dict[int, SSAValue] | None = None) -> Kernel:
    """The body as `body(*block_args, idx=index_grids) -> tuple of yielded values`."""
    emitter = _BodyEmitter(label, override or {})
    params = [emitter.define(arg) for arg in block.args]
    emitter.block(block, 1)
    signature = ", ".join([*params, "idx=()"])
    body = emitter.compile(f"def body({signature}):", "body")
    captures.extend((value, emitter.globals, name) for value, name in emitter.free)
    return body


# ---------------------------------------------------------------------------------------------
# Structured ops from indexing maps
# ---------------------------------------------------------------------------------------------


def _eval_affine(expr: AffineExpr, grids: Sequence[np.ndarray]) -> Any:
    try:
        return eval_affine(expr, grids)
    except ValueError as err:
        raise CompileError(str(err)) from None


def _projection(map_: AffineMap) -> tuple[list[int], list[tuple[int, int]]] | None:
    """(dim positions of the non-constant results, (axis, constant) pairs), or None if the map
    is not a projected permutation with constants."""
    dims, consts = [], []
    for axis, expr in enumerate(map_.results):
        match expr:
            case AffineDimExpr(position=pos) if pos not in dims:
                dims.append(pos)
            case AffineConstantExpr(value=value):
                consts.append((axis, value))
            case _:
                return None
    return dims, consts


class _Structured:
    """Evaluates one structured op (generic or named) over its whole iteration space."""

    def __init__(self, op: LinalgStructuredOperation, label: str, captures: list[Capture]):
        self.op, self.label, self.captures = op, label, captures
        self.maps = [m.data for m in op.get_indexing_maps()]
        self.n = self.maps[0].num_dims if self.maps else 0
        self.reduction = [i for i, t in enumerate(op.get_iterator_types()) if t.data != IteratorType.PARALLEL]
        self.ranges = self._loop_ranges()
        self.num_in = len(op.inputs)
        self.finish = [_finish_result(r) for r in op.results]
        self.gathers = [self._gather(m, v) for m, v in zip(self.maps, op.operands)]
        self.index = tuple(
            np.arange(r).reshape([r if d == i else 1 for d in range(self.n)]) for i, r in enumerate(self.ranges)
        )
        par_shape = [1 if d in self.reduction else r for d, r in enumerate(self.ranges)]
        self.par_shape = tuple(par_shape)
        self.scatters = [self._scatter(m, v) for m, v in zip(self.maps[self.num_in :], op.outputs)]

    def _loop_ranges(self) -> tuple[int, ...]:
        ranges: list[int | None] = [None] * self.n
        for map_, value in zip(self.maps, self.op.operands):
            if not isinstance(value.type, ShapedType):
                continue
            for expr, size in zip(map_.results, value.type.get_shape()):
                if isinstance(expr, AffineDimExpr) and ranges[expr.position] is None:
                    ranges[expr.position] = size
        if any(r is None for r in ranges):
            raise CompileError(f"{self.label}: {self.op.name}: cannot infer the loop ranges from the indexing maps")
        return tuple(r for r in ranges if r is not None)

    def _gather(self, map_: AffineMap, value: SSAValue) -> Callable[[Any], Any]:
        """A function laying an operand out over the iteration space (broadcastable)."""
        if not isinstance(value.type, ShapedType):
            return _same
        proj = _projection(map_)
        if proj is None:
            grids = np.indices(self.ranges, sparse=True)
            index = tuple(np.broadcast_arrays(*(_eval_affine(e, grids) for e in map_.results)))
            return lambda x: x[index]
        dims, consts = proj
        if not consts and dims == list(range(self.n)):
            return _same
        fixed = dict(consts)
        take = tuple(fixed.get(axis, slice(None)) for axis in range(len(map_.results)))
        order = sorted(range(len(dims)), key=dims.__getitem__)
        sizes = {d: size for d, size in zip(dims, (s for a, s in enumerate(value.type.get_shape()) if a not in fixed))}
        shape = [sizes.get(d, 1) for d in range(self.n)]
        return lambda x: np.reshape(np.transpose(x[take], order), shape)

    def _scatter(self, map_: AffineMap, out: SSAValue) -> Callable[[Any, np.ndarray], Any]:
        """A function writing a value over the parallel iteration space into the out tensor."""
        assert isinstance(out.type, ShapedType)
        out_shape = tuple(out.type.get_shape())
        par_shape = self.par_shape
        proj = _projection(map_)
        if proj is not None and not proj[1]:
            dims = proj[0]
            rest = [d for d in range(self.n) if d not in dims]
            last = tuple(slice(-1, None) if d in rest else slice(None) for d in range(self.n))
            perm = [*dims, *rest]
            identity = perm == list(range(self.n)) and all(par_shape[d] == 1 for d in rest)
            if identity:

                def same_layout(v: Any, _out: np.ndarray) -> Any:
                    if type(v) is np.ndarray and v.shape == out_shape:
                        return v
                    return np.reshape(np.broadcast_to(v, par_shape), out_shape)

                return same_layout
            return lambda v, _out: np.reshape(np.transpose(np.broadcast_to(v, par_shape)[last], perm), out_shape)
        grids = np.indices(par_shape, sparse=True)
        index = tuple(np.broadcast_arrays(*(_eval_affine(e, grids) for e in map_.results)))

        def scatter(v: Any, out_value: np.ndarray) -> np.ndarray:
            res = np.array(out_value, copy=True)
            res[index] = np.broadcast_to(v, par_shape)
            return res

        return scatter

    # -- evaluation ---------------------------------------------------------------------------

    def kernel(self) -> Kernel:
        block = self.op.body.block
        if not self.reduction:
            return self._parallel(_compile_body(block, self.label, self.captures))
        if (subscripts := self._contraction(block)) is not None:
            finish = self.finish[0]
            return lambda a, b, init: (finish(init + np.einsum(subscripts, a, b)),)
        contributions = self._contributions(block)
        if contributions is not None:
            ufuncs, override = contributions
            return self._reduced(_compile_body(block, self.label, self.captures, override), ufuncs)
        return self._sequential(_compile_body(block, self.label, self.captures))

    def _contraction(self, block: Block) -> str | None:
        """The np.einsum subscripts of `yield acc + a * b` (floats) over maps that are plain
        projections (no constants), else None."""
        ops = list(block.ops)
        if self.num_in != 2 or len(ops) != 3 or len(self.maps) != 3:
            return None
        mul, add, yield_ = ops
        a, b, acc = block.args
        if mul.name != "arith.mulf" or add.name != "arith.addf" or yield_.name != "linalg.yield":
            return None
        if set(mul.operands) != {a, b} or set(add.operands) != {acc, mul.results[0]} or yield_.operands[0] != add.results[0]:
            return None
        projections = [_projection(m) for m in self.maps]
        if any(p is None or p[1] or len(p[0]) != len(m.results) for p, m in zip(projections, self.maps)):
            return None
        a_sub, b_sub, out_sub = ("".join(string.ascii_letters[d] for d in p[0]) for p in projections)  # type: ignore[index]
        if not set(out_sub) <= set(a_sub + b_sub):
            return None
        return f"{a_sub},{b_sub}->{out_sub}"

    def _contributions(self, block: Block) -> tuple[list[np.ufunc], dict[int, SSAValue]] | None:
        """For `yield combine(out_arg, f(ins))` on every output: the ufuncs and the f values."""
        out_args = list(block.args[self.num_in :])
        (yield_,) = [o for o in block.ops if o.name == "linalg.yield"]
        ufuncs, override = [], {}
        for i, (value, acc) in enumerate(zip(yield_.operands, out_args)):
            op = value.owner
            if not isinstance(op, Operation) or op.name not in COMBINERS or len(op.operands) != 2:
                return None
            others = [v for v in op.operands if v is not acc]
            if len(others) != 1 or _depends_on(others[0], set(out_args)):
                return None
            ufuncs.append(COMBINERS[op.name])
            override[i] = others[0]
        return ufuncs, override

    def _parallel(self, body: Kernel) -> Kernel:
        gathers, scatters, finish, index, num_in = self.gathers, self.scatters, self.finish, self.index, self.num_in

        if len(scatters) == 1:
            (scatter,), (fin,) = scatters, finish

            def run_one(*operands: Any) -> tuple[Any, ...]:
                (value,) = body(*[g(x) for g, x in zip(gathers, operands)], idx=index)
                return (fin(scatter(value, operands[num_in])),)

            def run_one_direct(*operands: Any) -> tuple[Any, ...]:
                (value,) = body(*operands, idx=index)
                return (fin(scatter(value, operands[num_in])),)

            return run_one_direct if all(g is _same for g in gathers) else run_one

        def run(*operands: Any) -> tuple[Any, ...]:
            values = body(*[g(x) for g, x in zip(gathers, operands)], idx=index)
            return tuple(f(s(v, o)) for f, s, v, o in zip(finish, scatters, values, operands[num_in:]))

        return run

    def _reduced(self, body: Kernel, ufuncs: list[np.ufunc]) -> Kernel:
        gathers, scatters, finish, index = self.gathers, self.scatters, self.finish, self.index
        axes, full, num_in = tuple(self.reduction), self.ranges, self.num_in

        def run(*operands: Any) -> tuple[Any, ...]:
            args = [g(x) for g, x in zip(gathers, operands)]
            values = body(*args, idx=index)
            results = []
            for i, (ufunc, value) in enumerate(zip(ufuncs, values)):
                reduced = ufunc.reduce(np.broadcast_to(value, full), axis=axes, keepdims=True)
                init = args[num_in + i]
                results.append(finish[i](scatters[i](ufunc(init, reduced), operands[num_in + i])))
            return tuple(results)

        return run

    def _sequential(self, body: Kernel) -> Kernel:
        gathers, scatters, finish = self.gathers, self.scatters, self.finish
        red, num_in, n = self.reduction, self.num_in, self.n
        red_ranges = [self.ranges[d] for d in red]
        par_index = [a if d not in red else None for d, a in enumerate(self.index)]

        def at(x: Any, point: dict[int, int]) -> Any:
            if not isinstance(x, np.ndarray) or x.ndim != n:
                return x
            return x[tuple(slice(point[d], point[d] + 1) if d in point and x.shape[d] > 1 else slice(None) for d in range(n))]

        def run(*operands: Any) -> tuple[Any, ...]:
            args = [g(x) for g, x in zip(gathers, operands)]
            accs = args[num_in:]
            for values in itertools.product(*(range(r) for r in red_ranges)):
                point = dict(zip(red, values))
                idx = tuple(a if a is not None else point[d] for d, a in enumerate(par_index))
                accs = list(body(*(at(a, point) for a in args[:num_in]), *accs, idx=idx))
            outs = operands[num_in:]
            return tuple(f(s(v, o)) for f, s, v, o in zip(finish, scatters, accs, outs))

        return run


def _same(x: Any) -> Any:
    """The gather of an operand already laid out over the iteration space."""
    return x


def _finish_result(result: SSAValue) -> Callable[[Any], Any]:
    elem = element_type(result.type)
    dtype = numpy_dtype(elem)
    if isinstance(elem, BFloat16Type):
        return lambda v: round_bf16(np.asarray(v, dtype=dtype))
    if elem == I4:
        return lambda v: wrap_i4(np.asarray(v).astype(dtype))

    def finish(v: Any) -> Any:
        if type(v) is np.ndarray and v.dtype == dtype:
            return v
        return np.asarray(v).astype(dtype)

    return finish


def _depends_on(value: SSAValue, targets: set[SSAValue]) -> bool:
    seen: set[SSAValue] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if v in targets:
            return True
        if v in seen or isinstance(v, BlockArgument):
            continue
        seen.add(v)
        if isinstance(v.owner, Operation):
            stack.extend(v.owner.operands)
    return False
