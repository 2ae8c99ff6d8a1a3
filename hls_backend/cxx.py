"""C++ spellings of IR types, constants and affine expressions (shared by the emitters)."""

from __future__ import annotations

import math
import re

import numpy as np
from xdsl.dialects.builtin import IndexType, ShapedType, TensorType
from xdsl.ir import Attribute
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr, AffineSymExpr

from streamdsl.dtypes import TENSOR_DTYPES, dtype_from_ir, numpy_dtype
from streamdsl.errors import StreamdslError
from streamdsl.itensor import itensor

__all__ = [
    "HlsEmitError", "affine_c", "beat_struct", "beats_read", "beats_write", "c_literal", "c_scalar", "count_cycles", "decode", "flat_index",
    "ident", "io_scalar", "np_dtype", "partition_arrays", "struct_name",
]  # fmt: skip


class HlsEmitError(StreamdslError, ValueError):
    """The HLS backend cannot translate something; the message names the op and what to do."""


# element types the backend emits; f16 / bf16 are sd_f16 / sd_bf16 (include/sd_fp16.h): 16 bits
# stored, float computed, every result rounded to nearest even where it is stored
_SUPPORTED = ("f32", "f64", "f16", "bf16", "i1", "i4", "i8", "i16", "i32", "i64", "index")
_FP16 = {"f16": "sd_f16", "bf16": "sd_bf16"}


def _key(elem: Attribute) -> str:
    key = "index" if isinstance(elem, IndexType) else str(elem)
    if key not in _SUPPORTED:
        raise HlsEmitError(
            f"element type {elem} is not supported by the HLS backend ({', '.join(_SUPPORTED[:-1])} are)"
        )
    return key


def c_scalar(elem: Attribute) -> str:
    """The C++ type of a scalar IR type."""
    key = _key(elem)
    if key == "index":
        return "int"
    return _FP16.get(key) or dtype_from_ir(elem, TENSOR_DTYPES).cpp


def io_scalar(elem: Attribute) -> str:
    """The C++ type of an element in the tensor files the testbench and host read and write: the
    numpy storage of the simulators (float for bf16, int8_t for i4)."""
    return {"bf16": "float", "i4": "int8_t"}.get(_key(elem)) or c_scalar(elem)


def np_dtype(elem: Attribute) -> np.dtype:
    _key(elem)
    return numpy_dtype(elem)


def struct_name(type_: ShapedType) -> str:
    """The struct holding one tensor value (a tile or a local buffer), e.g. `t_1x64_f32`."""
    shape = "x".join(str(s) for s in type_.get_shape()) or "scalar"
    return f"t_{shape}_{_key(type_.get_element_type())}"


def beat_struct(it: itensor, structs: dict[str, ShapedType]) -> str:
    """The struct of one stream beat of `it` (`itensor.beats`), e.g. `beat_32_f32`; registered in `structs`."""
    elem = it.dtype.ir()
    name = f"beat_{it.beat_lanes}_{_key(elem)}"
    structs.setdefault(name, TensorType(elem, [it.beat_lanes]))
    return name


def _beat_loop(it: itensor, indent: int, unrolled: bool) -> tuple[list[str], str, str, int]:
    """The loop over a token's beats (a plain scope for one beat), pipelined at a beat per cycle or
    `unrolled` (inside a pipelined loop): its opening lines, the lane variable, the tile element
    index of the lane and the body's indent."""
    lanes, beats = it.beat_lanes, it.beats
    lane = "l" if lanes > 1 else "0"
    element = lane if beats == 1 else "b" if lanes == 1 else f"b * {lanes} + l"
    pad = "  " * indent
    if beats == 1:  # a scope for the beat variable
        return [pad + "{"], lane, element, indent + 1
    pragma = "#pragma HLS unroll" if unrolled else "#pragma HLS pipeline II=1"
    return [pad + f"for (int b = 0; b < {beats}; ++b) {{", pad + "  " + pragma], lane, element, indent + 1


def _lanes(it: itensor, indent: int, element: str, statement: str) -> list[str]:
    """The unrolled lane loop of one beat (a guard for the padded last beat)."""
    pad = "  " * indent
    guard = f"if ({element} < {it.token_elements}) " if it.beats * it.beat_lanes != it.token_elements else ""
    if it.beat_lanes == 1:
        return [pad + guard + statement]
    return [pad + f"for (int l = 0; l < {it.beat_lanes}; ++l) {{", pad + "  #pragma HLS unroll", pad + "  " + guard + statement, pad + "}"]


Stream = str | tuple[str, ...]  # a stream variable, or one per phase of a shared engine (variable `ph`)


def stream_read(stream: Stream) -> str:
    """The expression reading one beat of `stream` (of the current phase's stream)."""
    if isinstance(stream, str):
        return f"{stream}.read()"
    *rest, last = stream
    return "".join(f"ph == {k} ? {s}.read() : " for k, s in enumerate(rest)) + f"{last}.read()"


def stream_write(stream: Stream, value: str) -> str:
    """The statement writing `value` to `stream` (to the current phase's stream)."""
    if isinstance(stream, str):
        return f"{stream}.write({value});"
    *rest, last = stream
    return "".join(f"if (ph == {k}) {s}.write({value}); else " for k, s in enumerate(rest)) + f"{last}.write({value});"


def beats_write(it: itensor, structs: dict[str, ShapedType], stream: Stream, tile: str, indent: int, unrolled: bool = False) -> list[str]:
    """Write tile `tile` (a struct with row-major `v`) to `stream` as its beats."""
    beat = beat_struct(it, structs)
    lines, lane, element, inner = _beat_loop(it, indent, unrolled)
    pad = "  " * inner
    copy = _lanes(it, inner, element, f"w.v[{lane}] = {tile}.v[{element}];")
    lines += [pad + f"{beat} w = {{}};", *copy, pad + stream_write(stream, "w")]
    return lines + (["  " * indent + "}"] if inner > indent else [])


def beats_read(
    it: itensor, structs: dict[str, ShapedType], stream: Stream, tile: str | None, indent: int, unrolled: bool = False
) -> list[str]:
    """Read the beats of one token from `stream` into tile `tile` (declared by the caller; None:
    the token is consumed, its data unused)."""
    beat = beat_struct(it, structs)
    lines, lane, element, inner = _beat_loop(it, indent, unrolled)
    pad = "  " * inner
    if tile is None:
        lines.append(pad + f"{stream_read(stream)};  // token skipped")
    else:
        lines += [pad + f"const {beat} w = {stream_read(stream)};", *_lanes(it, inner, element, f"{tile}.v[{element}] = w.v[{lane}];")]
    return lines + (["  " * indent + "}"] if inner > indent else [])


def c_literal(value: float | int | bool, elem: Attribute) -> str:
    """A C++ literal of `value` with the exact precision of `elem`."""
    key = _key(elem)
    if key == "i1":
        return "true" if value else "false"
    if key in ("f32", "f64", "f16", "bf16"):
        ctype = "double" if key == "f64" else "float"
        v = float(value) if key == "f64" else _rounded(float(value), key)
        if math.isnan(v):
            return f"std::numeric_limits<{ctype}>::quiet_NaN()"
        if math.isinf(v):
            sign = "-" if v < 0 else ""
            return f"{sign}std::numeric_limits<{ctype}>::infinity()"
        text = repr(v)  # shortest repr that round-trips the double (float32 values are exact)
        if "e" not in text and "." not in text:
            text += ".0"
        return text + ("" if key == "f64" else "f")
    v = int(value)
    if key == "i64":
        return f"INT64_C({v})"
    return str(v)


def _rounded(value: float, key: str) -> float:
    """`value` at the precision of f32, f16 or bf16 (nearest even, as the simulators round constants)."""
    if key == "f16":
        return float(np.float16(value))
    f32 = np.float32(value)
    if key == "bf16" and not math.isnan(f32):
        bits = int(np.array(f32).view(np.uint32))
        return float(np.array(((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16, dtype=np.uint32).view(np.float32))
    return float(f32)


_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def ident(text: str) -> str:
    """A C identifier made from a name such as `fork(copy)->mul`."""
    out = _IDENT.sub("_", text).strip("_") or "v"
    return out if not out[0].isdigit() else f"_{out}"


_NONNEGATIVE = {AffineBinaryOpKind.Mod: "({a} % {b})", AffineBinaryOpKind.FloorDiv: "({a} / {b})",
                AffineBinaryOpKind.CeilDiv: "(({a} + {b} - 1) / {b})"}
_SIGNED = {AffineBinaryOpKind.Mod: "({a} - {b} * sd_floordiv({a}, {b}))", AffineBinaryOpKind.FloorDiv: "sd_floordiv({a}, {b})",
           AffineBinaryOpKind.CeilDiv: "(-sd_floordiv(-({a}), {b}))"}


def affine_c(expr: AffineExpr, dims: list[str], symbols: list[str] | None = None) -> str:
    """C++ for an affine expression over `dims` (and `symbols`). Offsets are >= 0, so / and % are
    floordiv and mod; with `symbols` (a run-time trip count, docs/ir.md "Run-time scalars") the
    value may be negative and divisions floor explicitly."""
    match expr:
        case AffineDimExpr(position=pos):
            return dims[pos]
        case AffineSymExpr(position=pos) if symbols is not None:
            return symbols[pos]
        case AffineConstantExpr(value=value):
            return str(value)
        case AffineBinaryOpExpr(kind=kind, lhs=lhs, rhs=rhs):
            a, b = affine_c(lhs, dims, symbols), affine_c(rhs, dims, symbols)
            if kind == AffineBinaryOpKind.Add:
                return f"({a} + {b})"
            if kind == AffineBinaryOpKind.Mul:
                return f"({a} * {b})"
            return (_NONNEGATIVE if symbols is None else _SIGNED)[kind].format(a=a, b=b)
    raise HlsEmitError(f"affine expression {expr} is not supported")


def flat_index(indices: list[str], shape: list[int] | tuple[int, ...]) -> str:
    """Row-major flat index of a multi-index (constant terms folded where trivial)."""
    if not shape:
        return "0"
    terms: list[str] = []
    stride = 1
    for idx, size in reversed(list(zip(indices, shape))):
        if size != 1 and idx != "0":
            compound = idx if idx.isidentifier() or idx.isdigit() or idx.startswith("(") and idx.endswith(")") else f"({idx})"
            terms.append(idx if stride == 1 else f"{compound} * {stride}")
        stride *= size
    return " + ".join(reversed(terms)) if terms else "0"


def decode(flat: str, shape: tuple[int, ...] | list[int]) -> list[str]:
    """C++ expressions of the row-major coordinates of flat index `flat` in `shape`."""
    out, stride = [], math.prod(shape)
    for k, n in enumerate(shape):
        stride //= n
        if n == 1:
            out.append("0")
            continue
        div = flat if stride == 1 else f"{flat} / {stride}"
        out.append(div if k == 0 or math.prod(shape[:k]) == 1 else f"({div}) % {n}")
    return out


_PIPELINE = re.compile(r"#pragma HLS pipeline II=(\d+)(?:\s*// depth (\d+))?")
DEFAULT_DEPTH = 2  # a pipelined loop without a `// depth d` note: read, then register the result


def count_cycles(lines: list[str]) -> list[str]:
    """Add the csim cycle counters (sd_support.h) to a process body: `SD_II(n)` at the top of each
    iteration of a loop pipelined at II=n, `SD_DEPTH(d - n)` after it (d, the pipeline depth, from
    the pragma's `// depth d` note: N iterations take (N - 1) * II + d cycles) and `SD_LAG(d - n)`
    around it (its beats are written at the end of their iteration), `SD_LOOP_ENTRY()` in
    each iteration of a loop that is neither pipelined nor inside a pipelined loop (HLS unrolls
    those). Unrolled loops cost nothing of their own."""
    out: list[str] = []
    opened: list[str | None] = []  # per open brace: the line to add after its closing brace
    pipelined = 0  # open pipelined loops
    for k, line in enumerate(lines):
        text = line.strip()
        pad = line[: len(line) - len(line.lstrip())]
        if text.startswith("}") and opened:
            after = opened.pop()
            out.append(line)
            if after is not None:
                pipelined -= 1
                out += [after, pad + "SD_LAG(0);"]
            if not text.endswith("{"):
                continue
            opened.append(None)
            continue
        out.append(line)
        if (m := _PIPELINE.match(text)) is not None:
            out.append(pad + f"SD_II({m[1]});")
            continue
        text = text.split("  //")[0]  # a trailing comment
        if not text.endswith("{"):
            continue
        nxt = lines[k + 1].strip() if k + 1 < len(lines) else ""
        is_loop = text.startswith(("for (", "while ("))
        if is_loop and (m := _PIPELINE.match(nxt)) is not None:
            # N iterations take (N - 1) * II + depth: the last one's II is inside its depth; a
            # beat written in an iteration leaves at its end, depth - II after the next iteration's start
            drain = max(0, int(m[2] or DEFAULT_DEPTH) - int(m[1]))
            out.insert(len(out) - 1, pad + f"SD_LAG({drain});")
            opened.append(pad + f"SD_DEPTH({drain});")
            pipelined += 1
            continue
        opened.append(None)
        if is_loop and not pipelined and not nxt.startswith("#pragma HLS unroll"):
            out.append(pad + "  SD_LOOP_ENTRY();")
    return out


_DECLARATION = re.compile(r"^(\s*)(?:static |const )*((?:t|beat)_\w+) (\w+)\s*(?:=.*)?;")


def partition_arrays(lines: list[str], structs: dict[str, ShapedType], lanes: int) -> list[str]:
    """After each local tile or beat variable, the partition its lane-parallel accesses need: a
    beat's lanes are all accessed at once (complete); a tile's elements `lanes` at a time (cyclic
    by `lanes`, complete when it holds no more). A tile the body builds as one memory of words
    (its `array_reshape` follows it) or streams through (its complete partition follows it) keeps that."""
    out = []
    for k, line in enumerate(lines):
        out.append(line)
        m = _DECLARATION.match(line)
        following = lines[k + 1] if k + 1 < len(lines) else ""
        if m is None or m[2] not in structs or re.search(rf"array_(reshape|partition) variable={m[3]}\.v ", following):
            continue
        size = math.prod(structs[m[2]].get_shape())  # one element too: lint sees an unrolled loop index it
        kind = "type=complete" if m[2].startswith("beat_") or size <= lanes else f"type=cyclic factor={lanes}"
        out.append(f"{m[1]}#pragma HLS array_partition variable={m[3]}.v {kind}")
    return out
