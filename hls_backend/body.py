"""Translate a `dataflow.task` body (scf / linalg / tensor / arith / math on tiles) to C++.

Value model: every tensor SSA value is a struct (`t_1x64_f32 { float v[64]; }`, row-major flat
array) so copies are assignments; scalars are C++ locals; integer/float constants are inlined as
literals; stream values (ports, and their `itensor_write` / `iter_args` chain) are the
`hls::stream` parameter they stand for. Tensor values are immutable in the IR, so an op writing
into a value copies it first, except `tensor.insert_slice` into a value with no other use, which
updates that buffer in place (the usual local-buffer pattern of the DSL).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xdsl.dialects.builtin import DYNAMIC_INDEX, DenseIntOrFPElementsAttr, FloatAttr, IntegerAttr, ShapedType
from xdsl.dialects.linalg.abstract_ops import LinalgStructuredOperation
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.dialects.linalg.ops import BroadcastOp, FillOp, ReduceOp, TransposeOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap

from hls_backend.cxx import HlsEmitError, affine_c, beats_read, beats_write, c_literal, c_scalar, flat_index, ident, struct_name
from lowering.engine_phases import EnginePhases
from lowering.memory import word_memory
from lowering.resources import FIELD_BITS, PackedMacs, is_narrow_multiply, packed_macs
from lowering.timing import (
    ACCUMULATORS,
    U55C,
    LanePartials,
    LoopTiming,
    TaskTiming,
    accumulator,
    lane_partials,
    once_reader,
    streams_through,
)
from streamdsl.opinfo import OPS, OpInfo, template
from streamdsl.scalars import MAX_TRIPS

__all__ = ["BodyEmitter"]

RESHAPES = {"tensor.reshape", "tensor.expand_shape", "tensor.collapse_shape", "tensor.cast"}


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, ShapedType)
    return tuple(value.type.get_shape())


def _numel(value: SSAValue) -> int:
    n = 1
    for s in _shape(value):
        n *= s
    return n


def _elem(value: SSAValue):  # noqa: ANN202 - an xDSL attribute
    return value.type.get_element_type() if isinstance(value.type, ShapedType) else value.type


class BodyEmitter:
    """C++ lines for the ops of a task body. `structs` collects the tensor types used."""

    def __init__(self, label: str, structs: dict[str, ShapedType], ii: int = 1, timing: TaskTiming | None = None):
        self.label = label
        self.ii = ii  # the task's `ii` hint: every pipelined loop of its body starts this often
        # the timing model's view of the task (None if it cannot schedule it): which loops are
        # pipelined at which II, each tile op's depth, the lanes of tile ops outside them
        self.timing = timing
        self.lanes = timing.lanes if timing is not None else U55C.lanes
        self.unrolled = 0  # > 0 inside a pipelined loop: every loop in it is unrolled
        self.combiners: dict[SSAValue, str] = {}  # interleaved accumulators: their combiner's C++
        self.folding: tuple[Operation, SSAValue, str] | None = None  # a lane reduction's fold (_lane_reduction)
        self.structs = structs
        self.lines: list[str] = []
        self.names: dict[SSAValue, str] = {}
        self.ports: dict[SSAValue, str] = {}
        self.lazy_empty: set[SSAValue] = set()  # tensor.empty values not declared (yet)
        self.fabric = False  # narrow multiplies bound to LUTs (the task's `mac_impl`, lowering.resources.bind_macs)
        self.trips: dict[Operation, int] = {}  # a shared engine's loops whose trips differ by phase: the most
        self._count = 0

    # -- helpers --------------------------------------------------------------------------------

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("  " * indent + text)

    def fresh(self, hint: str = "") -> str:
        self._count += 1
        return f"v{self._count}_{ident(hint)}" if hint else f"v{self._count}"

    def define(self, value: SSAValue) -> str:
        name = self.fresh(value.name_hint or "")
        self.names[value] = name
        return name

    def struct(self, value: SSAValue) -> str:
        assert isinstance(value.type, ShapedType)
        name = struct_name(value.type)
        self.structs.setdefault(name, value.type)
        return name

    def use(self, value: SSAValue, indent: int = 0) -> str:
        if value in self.lazy_empty:  # an empty tensor read after all: declare it zeroed
            self.lazy_empty.discard(value)
            self.emit(indent, f"{self.struct(value)} {self.names[value]} = {{}};  // tensor.empty")
        try:
            return self.names[value]
        except KeyError:
            raise HlsEmitError(f"{self.label}: value {value.name_hint or value.type} is used before it is defined") from None

    def error(self, op: Operation, why: str = "") -> HlsEmitError:
        return HlsEmitError(
            f"{self.label}: the HLS backend does not translate `{op.name}`{': ' + why if why else ''}; "
            "express it with linalg.generic / arith / math, or extend hls_backend/body.py"
        )

    # -- dispatch -------------------------------------------------------------------------------

    def block(self, block: Block, indent: int) -> None:
        for op in block.ops:
            self.op(op, indent)

    def phases(self, shared: EnginePhases, indent: int) -> None:
        """An engine's phases as one body in a loop over them (lowering/engine_phases.py): each
        constant that differs a table indexed by the phase, each stream that differs the phase's."""
        for k, (value, values) in enumerate(shared.constants.items()):
            table = f"ph_c{k}"
            self.emit(indent, f"const {c_scalar(value.type)} {table}[{shared.count}] = {{{', '.join(map(str, values))}}};")
            self.names[value] = f"{table}[ph]"
        for arg, args in shared.ports.items():
            self.ports[arg] = tuple(self.ports[a] for a in args)
        self.trips = shared.trips
        self.emit(indent, f"for (int ph = 0; ph < {shared.count}; ++ph) {{  // the engine's phases, one body")
        for op in shared.body:
            self.op(op, indent + 1)
        self.emit(indent, "}")

    def op(self, op: Operation, indent: int) -> None:  # noqa: C901 - one branch per op family
        name = op.name
        if name == "arith.constant":
            self._constant(op, indent)
        elif (info := OPS.get(name)) is not None:
            self._scalar(op, info, indent)
        elif name == "dataflow.itensor_read":
            value = op.results[0]
            port = self.ports[op.operands[0]]
            # v7_in0: a token of in0, assembled from its beats (an unused token is still read)
            name = None
            if value.uses:
                name = self.names[value] = self.fresh(value.name_hint or (port if isinstance(port, str) else port[0]))
                self.emit(indent, f"{self.struct(value)} {name};")
                if self.unrolled and streams_through(value, self.lanes):
                    self.emit(indent, f"#pragma HLS array_partition variable={name}.v type=complete  "
                                      "// streamed through: each beat feeds its MACs as it arrives")
                elif (memory := self._word_memory(value)) is not None:
                    factor, impl = memory
                    self.emit(indent, f"#pragma HLS array_reshape variable={name}.v type=cyclic factor={factor}")
                    self.emit(indent, f"#pragma HLS bind_storage variable={name}.v type=ram_s2p impl={impl}")
            self.lines += beats_read(op.operands[0].type.itensor, self.structs, port, name, indent, self.unrolled > 0)
        elif name == "dataflow.itensor_write":
            tile = self.use(op.operands[0], indent)
            port = self.ports[op.operands[1]]
            self.lines += beats_write(op.operands[1].type.itensor, self.structs, port, tile, indent, self.unrolled > 0)
            self.ports[op.results[0]] = self.ports[op.operands[1]]
        elif name == "dataflow.yield":
            pass  # the task's output streams: nothing to return
        elif name == "scf.for":
            self._for(op, indent)
        elif name == "scf.if":
            self._if(op, indent)
        elif name == "tensor.empty":
            self.define(op.results[0])
            self.struct(op.results[0])
            self.lazy_empty.add(op.results[0])
        elif name in ("tensor.extract_slice", "tensor.insert_slice"):
            self._slice(op, indent)
        elif name in RESHAPES:
            self._reshape(op, indent)
        elif name in ("tensor.splat", "tensor.from_elements"):
            self._elements(op, indent)
        elif name == "tensor.concat":
            self._concat(op, indent)
        elif name == "tensor.extract":
            idx = flat_index([self.use(v) for v in op.operands[1:]], _shape(op.operands[0]))
            self.emit(indent, f"const {c_scalar(op.results[0].type)} {self.define(op.results[0])} = {self.use(op.operands[0])}.v[{idx}];")
        elif name == "tensor.insert":
            out = self._copy_or_reuse(op.operands[1], op.results[0], indent)
            idx = flat_index([self.use(v) for v in op.operands[2:]], _shape(op.results[0]))
            self.emit(indent, f"{out}.v[{idx}] = {self.use(op.operands[0])};")
        elif isinstance(op, FillOp):
            self._fill(op, indent)
        elif isinstance(op, TransposeOp):
            self._transpose(op, indent)
        elif isinstance(op, ReduceOp | BroadcastOp):
            self._reduce_or_broadcast(op, indent)
        elif isinstance(op, LinalgStructuredOperation):
            self._structured(op, indent)
        else:
            raise self.error(op)

    def _word_memory(self, token: SSAValue) -> tuple[int, str] | None:
        """A token's tile built as the memory lowering/memory.py counts it (words of up to 1,024
        bits, `word_memory`): its elements per word and storage, when that memory keeps the loop's
        II. It does when the token is read in a pipelined loop (whose II is at least the token's
        beats, one word each, as the port's reads span them) and its one reader, an op of that
        loop's body, reads each element once (`once_reader`): one write and one read a cycle, a
        simple dual-port RAM. Else None: the tile stays cut into the lanes' partitions."""
        memory = word_memory(token.type)  # type: ignore[arg-type]
        return memory if memory is not None and self.unrolled and once_reader(token) is not None else None

    # -- scalars ----------------------------------------------------------------------------------

    def _constant(self, op: Operation, indent: int) -> None:
        attr, result = op.value, op.results[0]  # type: ignore[attr-defined]
        if result in self.names:  # a shared engine's table (phases)
            return
        if isinstance(attr, IntegerAttr | FloatAttr):
            self.names[result] = c_literal(attr.value.data, result.type)
            return
        if isinstance(attr, DenseIntOrFPElementsAttr):
            if all(use.operation.name == "tensor.reshape" for use in result.uses):
                self.names[result] = "/* shape */"  # a reshape's shape operand: static, unused
                return
            values = [c_literal(v, attr.get_element_type()) for v in attr.get_values()]
            name = self.define(result)
            n = _numel(result)
            if len(values) == 1:
                self.emit(indent, f"{self.struct(result)} {name};")
                self._loop(indent, n, lambda i, k: self.emit(i, f"{name}.v[{k}] = {values[0]};"))
            else:
                self.emit(indent, f"const {self.struct(result)} {name} = {{{{{', '.join(values)}}}}};")
            return
        raise self.error(op, f"constant {attr}")

    def _scalar(self, op: Operation, info: OpInfo, indent: int) -> None:
        (result,) = op.results
        text = template(info, "cxx", op).replace("{ctype}", c_scalar(_elem(result)))
        if not isinstance(result.type, ShapedType):
            expr = text.format(*(self.use(v) for v in op.operands))
            name = self.define(result)
            self.emit(indent, f"const {c_scalar(result.type)} {name} = {expr};")
            if self.fabric and is_narrow_multiply(op):
                self.emit(indent, f"#pragma HLS BIND_OP variable={name} op=mul impl=fabric")
            return
        # arith/math on whole tensors (same shapes, as the ops require): element by element
        for v in op.operands:
            if isinstance(v.type, ShapedType) and _shape(v) != _shape(result):
                raise self.error(op, f"operand shape {list(_shape(v))} differs from the result's {list(_shape(result))}")
        args = [self.use(v, indent) for v in op.operands]
        out = self.define(result)
        self.emit(indent, f"{self.struct(result)} {out};  // {op.name} element-wise")

        def body(inner: int, k: str) -> None:
            items = [f"{a}.v[{k}]" if isinstance(v.type, ShapedType) else a for a, v in zip(args, op.operands)]
            self.emit(inner, f"{out}.v[{k}] = {text.format(*items)};")

        self._loop(indent, _numel(result), body, depth=info.latency)

    # -- loops --------------------------------------------------------------------------------------

    def _loop(self, indent: int, n: int, body: Callable[[int, str], None], hint: str = "k", depth: int | None = None) -> None:
        """`body(indent, k)` for k in [0, n), as `_nest` runs it."""
        var = self.fresh(hint) if n > 1 else "0"
        self._nest(indent, [var], [n], lambda i: body(i, var), depth)

    def _depth(self, op: Operation) -> int | None:
        return self.timing.op_depth.get(op) if self.timing is not None else None

    def _loop_timing(self, op: Operation) -> LoopTiming | None:
        """The model's II and depth of a pipelined loop (without a model: every innermost loop at the hinted II)."""
        if self.timing is not None:
            return self.timing.loops.get(op)  # type: ignore[arg-type]
        inner = any(o.name == "scf.for" for o in op.body.block.ops)  # type: ignore[attr-defined]
        return None if inner else LoopTiming(self.ii, 1, self.lanes)

    def _for(self, op: Operation, indent: int) -> None:
        body = op.body.block  # type: ignore[attr-defined]
        iv, carried = body.args[0], list(body.args[1:])
        data = []
        for init, arg, res in zip(op.iter_args, carried, op.res):  # type: ignore[attr-defined]
            if init in self.ports:
                self.ports[arg] = self.ports[res] = self.ports[init]
            else:
                data.append((init, arg, res))
        timing = self._loop_timing(op)
        partials = dict(timing.partials) if timing is not None else {}
        for init, arg, _ in data:
            if arg in partials:
                continue  # declared below, once the loop index is named
            if isinstance(arg.type, ShapedType) and init.has_one_use() and init not in self.lazy_empty:
                self.names[arg] = self.use(init)  # the loop takes over a buffer nothing else reads
                continue
            ctype = self.struct(arg) if isinstance(arg.type, ShapedType) else c_scalar(arg.type)
            self.emit(indent, f"{ctype} {self.define(arg)} = {self.use(init, indent)};")
        lb, ub, step = (self.use(v) for v in (op.lb, op.ub, op.step))  # type: ignore[attr-defined]
        var = self.define(iv)
        trip = var if lb == "0" else f"({var} - {lb})"
        trip = trip if step == "1" else f"{trip} / {step}"
        for init, arg, _ in data:
            if arg in partials:
                self._partials(init, arg, partials[arg], f"{trip} % {partials[arg]}", indent)
        incr = f"++{var}" if step == "1" else f"{var} += {step}"
        self.emit(indent, f"for (int {var} = {lb}; {var} < {ub}; {incr}) {{")
        # the model's pipelined loops (innermost scf.for): one iteration every II cycles, all of
        # the iteration's work spread over them, so every loop inside is unrolled
        if timing is not None:
            self.emit(indent + 1, f"#pragma HLS pipeline II={timing.ii}  // depth {timing.depth}")
            for arg, k in partials.items():  # partial i % K is updated again K iterations later
                self.emit(indent + 1, f"#pragma HLS dependence variable={self.names[arg].split('[')[0]} type=inter distance={k} true")
            self.unrolled += 1
        if (most := op.attributes.get(MAX_TRIPS)) is not None:  # a run-time trip count (docs/ir.md)
            self.emit(indent + 1, f"#pragma HLS loop_tripcount max={most.value.data}")  # type: ignore[attr-defined]
        elif op in self.trips:  # a shared engine's loop: its phases' most trips
            self.emit(indent + 1, f"#pragma HLS loop_tripcount max={self.trips[op]}")
        for inner in body.ops:
            if inner.name == "scf.yield":
                targets = [arg for _, arg, _ in data]
                values = [v for v in inner.operands if v not in self.ports]
                self._assign(targets, values, indent + 1)
            else:
                self.op(inner, indent + 1)
        if timing is not None:
            self.unrolled -= 1
        self.emit(indent, "}")
        for _, arg, res in data:
            if arg in partials:
                self._combine(arg, res, partials[arg], indent)
            else:
                self.names[res] = self.names[arg]
        if partials and not self.unrolled:
            self.emit(indent, f"SD_DEPTH({timing.combine});  // the partials' trees")  # type: ignore[union-attr]

    def _partials(self, init: SSAValue, arg: SSAValue, k: int, slot: str, indent: int) -> None:
        """An accumulator (lowering.timing.accumulator) as `k` interleaved partial results:
        partial 0 starts at the initial value, the others at the combiner's identity; iteration i
        updates partial `slot` = i % k."""
        acc = accumulator(arg)  # type: ignore[arg-type]
        assert acc is not None
        combiner = next(o for o in acc.regions[0].block.ops if o.name != "linalg.yield")
        elem = _elem(arg)
        name = self.fresh((arg.name_hint or "acc") + "_partials")
        n = _numel(arg)
        self.emit(indent, f"{self.struct(arg)} {name}[{k}];")
        self.emit(indent, f"#pragma HLS array_partition variable={name} type=complete dim=0")  # the partials and their lanes
        self.emit(indent, f"{name}[0] = {self.use(init, indent)};")
        identity = c_literal(ACCUMULATORS[combiner.name], elem)
        for j in range(1, k):
            self._elementwise(indent, n, f"{name}[{j}].v[e] = {identity};")
        self.names[arg] = f"{name}[{slot}]"
        self.combiners[arg] = template(OPS[combiner.name], "cxx", combiner)

    def _elementwise(self, indent: int, n: int, line: str) -> None:
        """`line` for every element e of an n-element tile, all at once (an unrolled loop)."""
        if n == 1:
            self.emit(indent, "{")
            self.emit(indent + 1, "const int e = 0;")
            self.emit(indent + 1, line)
            self.emit(indent, "}")
            return
        self.emit(indent, f"for (int e = 0; e < {n}; ++e) {{")
        self.emit(indent + 1, "#pragma HLS unroll")
        self.emit(indent + 1, line)
        self.emit(indent, "}")

    def _combine(self, arg: SSAValue, res: SSAValue, k: int, indent: int) -> None:
        """After the loop: the partials of `arg` combined pairwise, a tree of ceil(log2 k) levels."""
        base = self.names[arg].split("[")[0]
        level = [f"{base}[{j}]" for j in range(k)]
        text = self.combiners[arg]
        while len(level) > 1:
            nxt = []
            for a, b in zip(level[::2], level[1::2]):
                out = self.fresh("tree")
                self.emit(indent, f"{self.struct(arg)} {out};")
                self._elementwise(indent, _numel(arg), f"{out}.v[e] = {text.format(f'{a}.v[e]', f'{b}.v[e]')};")
                nxt.append(out)
            level = nxt + level[len(nxt) * 2:]
        self.names[res] = level[0]

    def _assign(self, targets: list[SSAValue], values: list[SSAValue], indent: int) -> None:
        """Parallel assignment of yielded values to loop-carried variables."""
        pairs = [(self.names[t], self.use(v, indent), t) for t, v in zip(targets, values)]
        pairs = [(t, v, arg) for t, v, arg in pairs if t != v]
        sources = {v for _, v, _ in pairs}
        if any(t in sources for t, _, _ in pairs):  # a value moves between carried variables: stage it
            staged = []
            for t, v, arg in pairs:
                tmp = self.fresh("next")
                ctype = self.struct(arg) if isinstance(arg.type, ShapedType) else c_scalar(arg.type)
                self.emit(indent, f"const {ctype} {tmp} = {v};")
                staged.append((t, tmp))
            pairs = [(t, tmp, None) for t, tmp in staged]
        for t, v, _ in pairs:
            self.emit(indent, f"{t} = {v};")

    def _if(self, op: Operation, indent: int) -> None:
        outs = list(op.output)  # type: ignore[attr-defined]
        for r in outs:
            ctype = self.struct(r) if isinstance(r.type, ShapedType) else c_scalar(r.type)
            self.emit(indent, f"{ctype} {self.define(r)};")
        self.emit(indent, f"if ({self.use(op.cond)}) {{")  # type: ignore[attr-defined]
        for region, opener in ((op.true_region, None), (op.false_region, "} else {")):  # type: ignore[attr-defined]
            if not region.blocks:
                continue
            if opener:
                self.emit(indent, opener)
            for inner in region.block.ops:
                if inner.name == "scf.yield":
                    for r, v in zip(outs, inner.operands):
                        self.emit(indent + 1, f"{self.names[r]} = {self.use(v, indent + 1)};")
                else:
                    self.op(inner, indent + 1)
        self.emit(indent, "}")

    # -- tensors ------------------------------------------------------------------------------------

    def _copy_or_reuse(self, dest: SSAValue, result: SSAValue, indent: int) -> str:
        """The variable that will hold `result` = `dest` with some elements replaced: `dest`'s own
        storage when nothing else reads `dest`, else a copy."""
        if dest.has_one_use() and dest not in self.lazy_empty:
            self.names[result] = self.names[dest]
            return self.names[dest]
        src = self.use(dest, indent)
        name = self.define(result)
        self.emit(indent, f"{self.struct(result)} {name} = {src};")
        return name

    def _slice_dims(self, op: Operation, small: tuple[int, ...]) -> tuple[list[str], list[str], list[int | None]]:
        """Offsets, strides and, per big dim, the small dim it maps to (None: a dropped unit dim)."""

        def values(static: list[int], dynamic: list[SSAValue]) -> list[str]:
            it = iter(dynamic)
            return [self.use(next(it)) if s == DYNAMIC_INDEX else str(s) for s in static]

        offsets = values(op.static_offsets.get_values(), list(op.offsets))  # type: ignore[attr-defined]
        strides = values(op.static_strides.get_values(), list(op.strides))  # type: ignore[attr-defined]
        sizes = op.static_sizes.get_values()  # type: ignore[attr-defined]
        if DYNAMIC_INDEX in sizes:
            raise self.error(op, "slice sizes must be static")
        mapping: list[int | None] = []
        r = 0
        for size in sizes:
            if r < len(small) and small[r] == size and len(sizes) - len(mapping) > len(small) - r - 1:
                mapping.append(r)
                r += 1
            elif size == 1:
                mapping.append(None)
            else:
                raise self.error(op, f"sizes {list(sizes)} do not match the slice shape {list(small)}")
        return offsets, strides, mapping

    def _slice(self, op: Operation, indent: int) -> None:
        extract = op.name == "tensor.extract_slice"
        small_val = op.results[0] if extract else op.operands[0]
        big_val = op.operands[0] if extract else op.operands[1]
        small, big = _shape(small_val), _shape(big_val)
        offsets, strides, mapping = self._slice_dims(op, small)
        if extract:
            src = self.use(big_val, indent)
            dst = self.define(op.results[0])
            self.emit(indent, f"{self.struct(op.results[0])} {dst};")
        else:
            src = self.use(small_val, indent)
            dst = self._copy_or_reuse(big_val, op.results[0], indent)
        loops = self._loop_vars(small, "i")
        big_idx = []
        for off, stride, m in zip(offsets, strides, mapping):
            if m is None or loops[m] == "0":
                big_idx.append(off)
            else:
                term = loops[m] if stride == "1" else f"{loops[m]} * {stride}"
                big_idx.append(term if off == "0" else f"{off} + {term}")
        small_flat, big_flat = flat_index(loops, small), flat_index(big_idx, big)
        copy = f"{dst}.v[{small_flat}] = {src}.v[{big_flat}];" if extract else f"{dst}.v[{big_flat}] = {src}.v[{small_flat}];"
        self._nest(indent, loops, list(small), lambda i: self.emit(i, copy), self._depth(op))

    def _nest(self, indent: int, loops: list[str], ranges: list[int], body: Callable[[int], None], depth: int | None = None,
              ii: int | None = None) -> None:  # fmt: skip
        """`body` over the loops `ranges` (a loop whose variable is "0" has one trip and is left
        out). In a pipelined loop: unrolled. Elsewhere: one pipelined loop over the flattened
        iteration space, `lanes` iterations unrolled per cycle (the model's tile op: issue
        ceil(E / lanes) cycles, then its depth), the loop variables decoded from the flat index."""
        active = [(v, n) for v, n in zip(loops, ranges) if v != "0"]
        if not active:
            body(indent)
            if depth and not self.unrolled:  # one element, outside a pipeline: its latency
                self.emit(indent, f"SD_DEPTH({depth});")
            return
        if self.unrolled:
            for k, (var, n) in enumerate(active):
                self.emit(indent + k, f"for (int {var} = 0; {var} < {n}; ++{var}) {{")
                self.emit(indent + k + 1, "#pragma HLS unroll")
            body(indent + len(active))
            for k in reversed(range(len(active))):
                self.emit(indent + k, "}")
            return
        total = math.prod(n for _, n in active)
        lanes = min(self.lanes, total)
        chunk, lane, flat = self.fresh("c"), self.fresh("l"), self.fresh("f")
        self.emit(indent, f"for (int {chunk} = 0; {chunk} < {-(-total // lanes)}; ++{chunk}) {{")
        self.emit(indent + 1, f"#pragma HLS pipeline II={ii or self.ii}  // depth {depth or 1}")
        self.emit(indent + 1, f"for (int {lane} = 0; {lane} < {lanes}; ++{lane}) {{")
        self.emit(indent + 2, "#pragma HLS unroll")
        self.emit(indent + 2, f"const int {flat} = {chunk} * {lanes} + {lane};")
        inner = indent + 2
        if total % lanes:
            self.emit(inner, f"if ({flat} < {total}) {{")
            inner += 1
        self._decode(inner, flat, active)
        body(inner)
        if total % lanes:
            self.emit(indent + 2, "}")
        self.emit(indent + 1, "}")
        self.emit(indent, "}")

    @staticmethod
    def _decoded(flat: str, active: list[tuple[str, int]]) -> dict[str, str]:
        """Each loop variable of `active` (outermost first) as an expression of a flat row-major index."""
        exprs, stride = {}, math.prod(n for _, n in active)
        for var, n in active:
            stride //= n
            div = flat if stride == 1 else f"{flat} / {stride}"
            exprs[var] = div if var == active[0][0] else f"({div}) % {n}"
        return exprs

    def _decode(self, indent: int, flat: str, active: list[tuple[str, int]]) -> None:
        """The loop variables of `active` (outermost first) declared from a flat row-major index."""
        for var, expr in self._decoded(flat, active).items():
            self.emit(indent, f"const int {var} = {expr};")

    def _loop_vars(self, ranges: list[int] | tuple[int, ...], hint: str) -> list[str]:
        """A fresh variable per loop, "0" for a loop of one trip."""
        return [self.fresh(f"{hint}{i}") if n > 1 else "0" for i, n in enumerate(ranges)]

    def _reshape(self, op: Operation, indent: int) -> None:
        src, result = op.operands[0], op.results[0]
        if _numel(src) != _numel(result):
            raise self.error(op, f"{_shape(src)} and {_shape(result)} have different sizes")
        x = self.use(src, indent)
        out = self.define(result)
        self.emit(indent, f"{self.struct(result)} {out};  // {op.name}: same row-major elements")
        self._loop(indent, _numel(result), lambda i, k: self.emit(i, f"{out}.v[{k}] = {x}.v[{k}];"))

    def _elements(self, op: Operation, indent: int) -> None:
        result = op.results[0]
        values = [self.use(v) for v in op.operands]
        out = self.define(result)
        self.emit(indent, f"{self.struct(result)} {out};  // {op.name}")
        if op.name == "tensor.splat":
            self._loop(indent, _numel(result), lambda i, k: self.emit(i, f"{out}.v[{k}] = {values[0]};"))
        else:
            for k, value in enumerate(values):
                self.emit(indent, f"{out}.v[{k}] = {value};")

    def _concat(self, op: Operation, indent: int) -> None:
        dim, result = op.dim.value.data, op.results[0]  # type: ignore[attr-defined]
        out = self.define(result)
        self.emit(indent, f"{self.struct(result)} {out};  // tensor.concat along dim {dim}")
        offset = 0
        for part in op.operands:
            src, shape = self.use(part, indent), _shape(part)
            loops = self._loop_vars(shape, "i")
            at = [f"{offset} + {v}" if d == dim and offset else v if d != dim or v != "0" else str(offset) for d, v in enumerate(loops)]
            line = f"{out}.v[{flat_index(at, _shape(result))}] = {src}.v[{flat_index(loops, shape)}];"
            self._nest(indent, loops, list(shape), lambda i, line=line: self.emit(i, line), 1)
            offset += shape[dim]

    # -- linalg ------------------------------------------------------------------------------------------

    def _fill(self, op: FillOp, indent: int) -> None:
        value = self.use(op.inputs[0])
        out = self.define(op.results[0])
        self.emit(indent, f"{self.struct(op.results[0])} {out};  // linalg.fill")
        self._loop(indent, _numel(op.results[0]), lambda i, k: self.emit(i, f"{out}.v[{k}] = {value};"))

    def _transpose(self, op: TransposeOp, indent: int) -> None:
        perm = list(op.permutation.get_values())
        src, result = op.inputs[0], op.results[0]
        x = self.use(src, indent)
        out = self.define(result)
        loops = self._loop_vars(_shape(result), "i")
        src_idx = [loops[perm.index(d)] for d in range(len(perm))]
        self.emit(indent, f"{self.struct(result)} {out};  // linalg.transpose {perm}")
        line = f"{out}.v[{flat_index(loops, _shape(result))}] = {x}.v[{flat_index(src_idx, _shape(src))}];"
        self._nest(indent, loops, list(_shape(result)), lambda i: self.emit(i, line), self._depth(op))

    def _structured(self, op: LinalgStructuredOperation, indent: int) -> None:
        """A loop nest over the iteration space; every output is read-modify-written at its map,
        which covers both parallel ops and reductions (the output holds the accumulator)."""
        if not op.results:
            raise self.error(op, "only the tensor form (with results) is translated")
        maps = [m.data for m in op.get_indexing_maps()]
        iterators = [t.data for t in op.get_iterator_types()]
        ranges = self._ranges(op, maps, list(op.operands))
        self._loop_op(op, maps, iterators, ranges, op.body.block, list(op.inputs), list(op.outputs), indent)

    def _reduce_or_broadcast(self, op: Operation, indent: int) -> None:
        """`linalg.reduce` / `linalg.broadcast` as the loop nest of the equivalent generic: the
        input is indexed by every dim of the larger side, the other side by the kept dims."""
        dims = set(op.dimensions.get_values())  # type: ignore[attr-defined]
        reduce = op.name == "linalg.reduce"
        big = _shape(op.operands[0] if reduce else op.results[0])
        n = len(big)
        full = AffineMap.identity(n)
        kept = AffineMap(n, 0, tuple(AffineExpr.dimension(d) for d in range(n) if d not in dims))
        iterators = [IteratorType.REDUCTION if reduce and d in dims else IteratorType.PARALLEL for d in range(n)]
        block = (op.region if reduce else op.hidden_region).block  # type: ignore[attr-defined]
        maps = [full, kept] if reduce else [kept, full]
        self._loop_op(op, maps, iterators, list(big), block, [op.operands[0]], [op.operands[1]], indent)

    def _loop_op(self, op: Operation, maps: list[AffineMap], iterators: list[IteratorType], ranges: list[int],
                 block: Block, ins: list[SSAValue], outs: list[SSAValue], indent: int) -> None:  # fmt: skip
        operands = [*ins, *outs]
        loops = self._loop_vars(ranges, "d")
        results = []
        for out, res, arg in zip(outs, op.results, block.args[len(ins) :]):
            if out in self.lazy_empty and not arg.uses:  # every element is written: no init
                name = self.define(res)
                self.emit(indent, f"{self.struct(res)} {name};")
            elif out.has_one_use() and out not in self.lazy_empty:
                name = self.names[res] = self.use(out)  # update a buffer nothing else reads
            else:
                name = self.define(res)
                self.emit(indent, f"{self.struct(res)} {name} = {self.use(out, indent)};")
            results.append(name)
        sources = [self.use(v, indent) for v in ins]
        if self.unrolled and not self.fabric and (packed := packed_macs(op)) is not None:
            self._packed(packed, maps, ranges, loops, [*ins, *outs], [*sources, *results], indent)
            self.names[op.results[0]] = results[0]
            return

        def body(inner: int) -> None:
            folding = self.folding  # (combiner, its other operand, a name): the out value is a partial's
            for k, (arg, value) in enumerate(zip(block.args, operands)):
                if not arg.uses or (folding and k >= len(ins)):
                    continue
                if k < len(ins) and not isinstance(value.type, ShapedType):
                    self.names[arg] = sources[k]
                    continue
                holder = sources[k] if k < len(ins) else results[k - len(ins)]
                idx = flat_index([affine_c(e, loops) for e in maps[k].results], _shape(value))
                self.emit(inner, f"const {c_scalar(arg.type)} {self.define(arg)} = {holder}.v[{idx}];")
            for inner_op in block.ops:
                if folding and inner_op is folding[0]:  # the element folded in, not yet the fold
                    self.emit(inner, f"const {c_scalar(inner_op.results[0].type)} {folding[2]} = {self.use(folding[1])};")
                elif inner_op.name == "linalg.yield":
                    if folding:
                        continue
                    for j, v in enumerate(inner_op.operands):
                        m = maps[len(ins) + j]
                        idx = flat_index([affine_c(e, loops) for e in m.results], _shape(op.results[j]))
                        self.emit(inner, f"{results[j]}.v[{idx}] = {self.use(v)};")
                elif inner_op.name == "linalg.index":
                    self.names[inner_op.results[0]] = loops[inner_op.dim.value.data]  # type: ignore[attr-defined]
                else:
                    self.op(inner_op, inner)

        reduces = any(i != IteratorType.PARALLEL for i in iterators)
        self.emit(indent, f"// {op.name} over {' x '.join(map(str, ranges)) or 'a point'} ({', '.join(i.value for i in iterators)})")
        depth = self._depth(op)
        if reduces and not self.unrolled and (plan := lane_partials(op, self.lanes)) is not None:
            order = [d for d, i in enumerate(iterators) if i == IteratorType.PARALLEL]
            order += [d for d in range(len(ranges)) if d not in order]  # the reduced dims innermost
            active = [(loops[d], ranges[d]) for d in order if loops[d] != "0"]

            def out_index(flat: str) -> str:  # the output element of the chunk at `flat`
                at = self._decoded(flat, active)
                return flat_index([affine_c(e, [at.get(v, v) for v in loops]) for e in maps[-1].results], _shape(outs[0]))

            self._lane_reduction(plan, active, body, out_index, results[0], depth or 1, indent)
            self.names[op.results[0]] = results[0]
            return
        # outside a pipelined loop, a reduction's lanes add into one accumulator in turn: the next
        # chunk waits for the chain, an II of the body's depth (HLS would infer the same)
        self._nest(indent, loops, ranges, body, depth, ii=depth if reduces and not self.unrolled else None)
        for res, name in zip(op.results, results):
            self.names[res] = name

    def _packed(self, packed: PackedMacs, maps: list[AffineMap], ranges: list[int], loops: list[str],
                operands: list[SSAValue], holders: list[str], indent: int) -> None:  # fmt: skip
        """A tile op's multiply-accumulates two output rows to a DSP48E2 (`packed_macs`, docs/hls.md
        "Packed MACs"): per pair of rows, the reduction accumulates (w_hi * 2^18 + w_lo) * a in 48
        bits (the slice's pre-adder, multiplier and accumulator), then the low field, sign-extended,
        is row 2q's sum and the rest, shifted, row 2q + 1's; both exact while |sum| < 2^17."""
        pair, pk, wide, lo = self.fresh("q"), self.fresh("pk"), self.fresh("p"), self.fresh("lo")
        outer = [d for d in range(len(ranges)) if d not in (packed.row, packed.reduced) and ranges[d] > 1]
        self.emit(indent, "// narrow MACs packed two output rows to a DSP48E2 (w_hi * 2^18 + w_lo) * a, the sums exact in 18-bit fields")
        for d in outer:
            self.emit(indent, f"for (int {loops[d]} = 0; {loops[d]} < {ranges[d]}; ++{loops[d]}) {{")
            self.emit(indent + 1, "#pragma HLS unroll")
            indent += 1
        self.emit(indent, f"for (int {pair} = 0; {pair} < {ranges[packed.row] // 2}; ++{pair}) {{")
        self.emit(indent + 1, "#pragma HLS unroll")
        self.emit(indent + 1, f"ap_int<48> {pk} = 0;")
        r = loops[packed.reduced]
        self.emit(indent + 1, f"for (int {r} = 0; {r} < {ranges[packed.reduced]}; ++{r}) {{")
        self.emit(indent + 2, "#pragma HLS unroll")

        def at(k: int, row: str) -> str:
            here = [row if d == packed.row else v for d, v in enumerate(loops)]
            return f"{holders[k]}.v[{flat_index([affine_c(e, here) for e in maps[k].results], _shape(operands[k]))}]"

        shared, weights = packed.shared, 1 - packed.shared
        w = f"ap_int<{packed.packed_bits}>"
        self.emit(indent + 2, f"{pk} += (ap_int<27>({w}({at(weights, f'(2 * {pair} + 1)')})) * {2 ** FIELD_BITS} + "
                              f"ap_int<27>({w}({at(weights, f'(2 * {pair})')}))) * ap_int<18>({at(shared, '0')});")
        self.emit(indent + 1, "}")
        field, sign = 2**FIELD_BITS - 1, 2 ** (FIELD_BITS - 1)
        self.emit(indent + 1, f"const int64_t {wide} = {pk}.to_int64();")
        self.emit(indent + 1, f"const int64_t {lo} = (({wide} & {field:#x}) ^ {sign:#x}) - {sign:#x};  // the low field, sign-extended")
        self.emit(indent + 1, f"{at(2, f'(2 * {pair})')} += int32_t({lo});")
        self.emit(indent + 1, f"{at(2, f'(2 * {pair} + 1)')} += int32_t(({wide} - {lo}) >> {FIELD_BITS});")
        self.emit(indent, "}")
        for _ in outer:
            indent -= 1
            self.emit(indent, "}")

    def _lane_reduction(self, plan: LanePartials, active: list[tuple[str, int]], body: Callable[[int], None],
                        out_index: Callable[[str], str], out: str, depth: int, indent: int) -> None:  # fmt: skip
        """A reduction outside a pipelined loop at II=1 (lowering.timing.lane_partials): lane l of
        chunk c folds its element into partial [(c % chunks) % interleave][l] (the first
        `interleave` chunks of an output start them), and a tree after an output's last chunk folds
        the partials and the output's initial value. One output: the tree follows the loop."""
        lanes, chunks, k = plan.lanes, plan.chunks, plan.interleave
        total = math.prod(n for _, n in active)
        n, outputs = k * lanes, total // (lanes * chunks)
        ctype = c_scalar(plan.combiner.results[0].type)
        fold = template(OPS[plan.combiner.name], "cxx", plan.combiner)
        part, chunk, lane, flat = self.fresh("partials"), self.fresh("c"), self.fresh("l"), self.fresh("f")
        within = chunk if chunks == total // lanes else f"{chunk} % {chunks}"
        slot = "0" if k == 1 else within if k == chunks else f"({within}) % {k}"
        here = f"{part}[{slot} * {lanes} + {lane}]" if slot != "0" else f"{part}[{lane}]"
        self.emit(indent, f"{ctype} {part}[{n}];  // {k} partials per lane")
        self.emit(indent, f"#pragma HLS array_partition variable={part} type=complete dim=0")
        self.emit(indent, f"for (int {chunk} = 0; {chunk} < {total // lanes}; ++{chunk}) {{")
        inside = depth if outputs > 1 else depth - plan.tree  # one output: its tree follows the loop
        self.emit(indent + 1, f"#pragma HLS pipeline II=1  // depth {inside}")
        if k > 1:  # partial s is folded again k chunks later, when the combiner's result is ready
            self.emit(indent + 1, f"#pragma HLS dependence variable={part} type=inter distance={k} true")
        self.emit(indent + 1, f"for (int {lane} = 0; {lane} < {lanes}; ++{lane}) {{")
        self.emit(indent + 2, "#pragma HLS unroll")
        self.emit(indent + 2, f"const int {flat} = {chunk} * {lanes} + {lane};")
        self._decode(indent + 2, flat, active)
        x = self.fresh("x")
        combiner = plan.combiner
        rest = [o for o in combiner.operands if o is not combiner.parent_block().args[-1]]  # type: ignore[union-attr]
        self.folding = (combiner, rest[0], x)
        body(indent + 2)
        self.folding = None
        first = "" if chunks == 1 else f"{within} < {k} ? {x} : "
        self.emit(indent + 2, f"{here} = {first}{fold.format(here, x) if first else x};")
        self.emit(indent + 1, "}")
        if outputs > 1:
            self.emit(indent + 1, f"if ({within} == {chunks - 1}) {{" if chunks > 1 else "{")
            self._tree(part, n, ctype, fold, out, out_index(f"{chunk} * {lanes}"), indent + 2)
            self.emit(indent + 1, "}")
        self.emit(indent, "}")
        if outputs == 1:
            self._tree(part, n, ctype, fold, out, out_index("0"), indent)
            self.emit(indent, f"SD_DEPTH({plan.tree});  // the partials' tree")

    def _tree(self, part: str, n: int, ctype: str, fold: str, out: str, out_index: str, indent: int) -> None:
        """out[out_index] folded with the n partials, combined pairwise (ceil(log2 n) levels)."""
        tree, step, i = self.fresh("tree"), self.fresh("s"), self.fresh("i")
        self.emit(indent, f"{ctype} {tree}[{n}];")
        self.emit(indent, f"#pragma HLS array_partition variable={tree} type=complete dim=0")
        self._elementwise(indent, n, f"{tree}[e] = {part}[e];")
        self.emit(indent, f"for (int {step} = 1; {step} < {n}; {step} *= 2) {{")
        self.emit(indent + 1, "#pragma HLS unroll")
        self.emit(indent + 1, f"for (int {i} = 0; {i} + {step} < {n}; {i} += 2 * {step}) {{")
        self.emit(indent + 2, "#pragma HLS unroll")
        self.emit(indent + 2, f"{tree}[{i}] = {fold.format(f'{tree}[{i}]', f'{tree}[{i} + {step}]')};")
        self.emit(indent + 1, "}")
        self.emit(indent, "}")
        self.emit(indent, f"{out}.v[{out_index}] = {fold.format(f'{out}.v[{out_index}]', f'{tree}[0]')};")

    def _ranges(self, op: Operation, maps: list, operands: list[SSAValue]) -> list[int]:
        n = maps[0].num_dims if maps else 0
        ranges: list[int | None] = [None] * n
        for m, value in zip(maps, operands):
            if isinstance(value.type, ShapedType):
                for expr, size in zip(m.results, value.type.get_shape()):
                    if isinstance(expr, AffineDimExpr) and ranges[expr.position] is None:
                        ranges[expr.position] = size
        if any(r is None for r in ranges):
            raise self.error(op, "cannot infer the loop ranges from the indexing maps")
        return [r for r in ranges if r is not None]

