"""The op vocabulary: what every scalar and element-wise op the IR can hold means to each target.

One `OpInfo` per op name gives
- `numpy`: a Python expression over the operands `{0}`, `{1}`, ... (numpy arrays or scalars),
  using numpy and the helpers of `NUMPY_HELPERS`; the functional simulator and the importer's
  reference run compile it into their generated code;
- `cxx`: the C++ (Vitis HLS) expression over the same operands; `sd_*` helpers are defined in
  `hls_backend/include/sd_support.h`;
- `latency`: its pipeline latency in cycles on the U55C at 300 MHz, and `source`, the key in
  `LATENCY_SOURCES` saying where that figure comes from (docs/timing.md explains each);
- `aten`: the ATen ops (`torch.ops.aten`, overload included) the importer lowers to it alone;
- `combiner`: for an associative, commutative op, the numpy ufunc whose `reduce` evaluates a
  reduction combining with it.
Comparisons take their text from the predicate: `numpy` / `cxx` are then tuples indexed by the
op's `predicate`. Casts spell their result type: `{dtype}` (numpy dtype), `{index}` (whether it
is `index`) and `{ctype}` (C++ type) are filled in by the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from xdsl.ir import Operation

__all__ = [
    "ARITH_CASTS",
    "CMPI_INFIX",
    "FLOAT_CORES",
    "HLS_MATH_CORE",
    "LATENCY_SOURCES",
    "NOT_IN_VOCABULARY",
    "NUMPY_HELPERS",
    "OPS",
    "OpInfo",
    "op_info",
    "template",
]

# Where each latency figure comes from (all at the U55C's 300 MHz kernel clock, f32 data).
LATENCY_SOURCES: Mapping[str, str] = MappingProxyType({
    "fp-core": "a Floating-Point Operator core as Vitis HLS instantiates it for f32 on UltraScale+ "
               "at 300 MHz; the latency is the number in the core's name in the csynth report "
               "(e.g. fadd_32ns_32ns_32_4_full_dsp_1: 4 cycles)",
    "hls-math": "an hls_math function built from several cores (no single core); an estimate to "
                "calibrate against csynth reports",
    "chain": "a composite: the sum of the latencies of the ops it is built from (`chain` lists them)",
    "dsp48e2": "a 32x32 integer multiply spans cascaded DSP48E2 slices (27x18 multipliers) with "
               "their input, multiplier and output registers: 3 cycles",
    "divider": "the Vitis HLS integer divider (sdiv/udiv/srem/urem_32ns_32ns_32_36): a radix-2 "
               "divider takes width + 4 = 36 cycles for 32 bits",
    "lut": "LUT and carry-chain logic (adders, comparators, muxes, shifters up to 64 bits): fits "
           "one 3.33 ns cycle, registered",
    "wire": "no logic: a constant, a reinterpretation or a change of width (wires and sign bits)",
})  # fmt: skip


# One f32 core of each `fp-core` op as Vitis HLS binds it on UltraScale+ at 300 MHz: (DSP48E2
# slices, LUTs, FFs), full-DSP adders and max-DSP multipliers; estimates to calibrate against
# csynth reports (docs/resources.md, "Per-op table"). `hls-math` functions: `HLS_MATH_CORE`.
FLOAT_CORES: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "arith.addf": (2, 214, 227), "arith.subf": (2, 214, 227), "arith.mulf": (3, 128, 143), "arith.divf": (0, 761, 1068),
    "math.exp": (7, 928, 550), "math.log": (9, 1500, 900), "math.sqrt": (8, 450, 700), "math.rsqrt": (8, 800, 900),
    "math.fma": (5, 350, 370), "arith.extf": (0, 64, 50), "arith.truncf": (0, 64, 50),
    **dict.fromkeys(("arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf", "arith.cmpf"), (0, 66, 34)),
    **dict.fromkeys(("arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui"), (0, 180, 200)),
})  # fmt: skip
HLS_MATH_CORE = (12, 3000, 2500)


@dataclass(frozen=True)
class OpInfo:
    """One op of the vocabulary (see the module docstring)."""

    name: str
    numpy: str | tuple[str, ...]
    cxx: str | tuple[str, ...]
    latency: int
    source: str
    aten: tuple[str, ...] = ()
    combiner: np.ufunc | None = None
    chain: tuple[str, ...] = ()  # for source "chain": the ops whose latencies add up


def template(info: OpInfo, target: str, op: Operation) -> str:
    """The `numpy` or `cxx` text of `op` (picked by predicate for comparisons)."""
    text = getattr(info, target)
    if isinstance(text, tuple):
        return text[op.predicate.value.data]  # type: ignore[attr-defined]
    return text


# ---------------------------------------------------------------------------------------------
# numpy helpers the `numpy` texts call (bound into the generated code's globals)
# ---------------------------------------------------------------------------------------------


def _select(cond: Any, a: Any, b: Any) -> Any:
    if isinstance(cond, bool | np.bool_):
        return a if cond else b
    return np.where(cond, a, b)


def _divsi(a: Any, b: Any) -> Any:
    """Division rounding toward zero (C's `/`)."""
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))


def _remsi(a: Any, b: Any) -> Any:
    return a - _divsi(a, b) * b


def _unsigned(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`fn` on the operands' bits read as unsigned integers, the result stored back signed."""

    def run(a: Any, b: Any) -> Any:
        x, y = np.asarray(a), np.asarray(b)
        if x.dtype.kind != "i":
            return fn(a, b)
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        out = np.asarray(fn(x.astype(unsigned), y.astype(unsigned))).astype(x.dtype)
        if isinstance(a, int):
            return int(out)
        return out if out.ndim else x.dtype.type(out)

    return run


def _ceildiv(a: Any, b: Any) -> Any:
    return -(-a // b)


def _one(a: Any, b: Any) -> Any:
    return (a < b) | (a > b)


def _isnan2(a: Any, b: Any) -> Any:
    return np.isnan(a) | np.isnan(b)


_verf = np.frompyfunc(math.erf, 1, 1)


def _erf(x: Any) -> Any:
    arr = np.asarray(x)
    out = _verf(arr.astype(np.float64)).astype(arr.dtype)
    return out if arr.ndim else arr.dtype.type(out)


def _round_away(x: Any) -> Any:
    return np.copysign(np.floor(np.abs(x) + 0.5), x).astype(np.asarray(x).dtype)


def _ipowi(a: Any, b: Any) -> Any:
    """Integer power; a negative exponent gives 0 except for bases 1 and -1 (as C++'s loop)."""
    x, y = np.asarray(a), np.asarray(b)
    out = np.where(y < 0, np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0)),
                   np.power(x, np.maximum(y, 0)))
    out = out.astype(np.result_type(x, y))
    return int(out) if isinstance(a, int) else (out if out.ndim else out.dtype.type(out))


def _cast(x: Any, dtype: np.dtype, is_index: bool) -> Any:
    if isinstance(x, np.ndarray) and x.ndim:
        return x.astype(dtype)
    return int(x) if is_index else dtype.type(x)


def _bitcast(x: Any, dtype: np.dtype) -> Any:
    return np.asarray(x).view(dtype)


NUMPY_HELPERS: Mapping[str, object] = MappingProxyType({
    "np": np,
    "_select": _select,
    "_divsi": _divsi,
    "_remsi": _remsi,
    "_divui": _unsigned(np.floor_divide),
    "_remui": _unsigned(np.remainder),
    "_ceildivui": _unsigned(_ceildiv),
    "_maxui": _unsigned(np.maximum),
    "_minui": _unsigned(np.minimum),
    "_shrui": _unsigned(np.right_shift),
    "_ult": _unsigned(np.less),
    "_ule": _unsigned(np.less_equal),
    "_ugt": _unsigned(np.greater),
    "_uge": _unsigned(np.greater_equal),
    "_one": _one,
    "_isnan2": _isnan2,
    "_erf": _erf,
    "_round_away": _round_away,
    "_ipowi": _ipowi,
    "_cast": _cast,
    "_bitcast": _bitcast,
    "_not": np.logical_not,
})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

# arith.cmpi predicates (eq, ne, slt, sle, sgt, sge, ult, ule, ugt, uge) as infix expressions over
# `{0}` and `{1}` for signed operands: the same text in Python and C++.
CMPI_INFIX = (
    "({0} == {1})", "({0} != {1})", "({0} < {1})", "({0} <= {1})", "({0} > {1})", "({0} >= {1})",
)  # fmt: skip
_CMPI_NUMPY = (*CMPI_INFIX, "_ult({0}, {1})", "_ule({0}, {1})", "_ugt({0}, {1})", "_uge({0}, {1})")
_CMPI_CXX = (*CMPI_INFIX, "sd_ult({0}, {1})", "sd_ule({0}, {1})", "sd_ugt({0}, {1})", "sd_uge({0}, {1})")

# arith.cmpf predicates: false, oeq, ogt, oge, olt, ole, one, ord, ueq, ugt, uge, ult, ule, une,
# uno, true (o: ordered, false if either is NaN; u: unordered, true if either is NaN).
_CMPF_NUMPY = (
    "False", "({0} == {1})", "({0} > {1})", "({0} >= {1})", "({0} < {1})", "({0} <= {1})",
    "_one({0}, {1})", "_not(_isnan2({0}, {1}))", "_not(_one({0}, {1}))", "_not({0} <= {1})",
    "_not({0} < {1})", "_not({0} >= {1})", "_not({0} > {1})", "({0} != {1})", "_isnan2({0}, {1})",
    "True",
)  # fmt: skip
_CMPF_CXX = (
    "false", "({0} == {1})", "({0} > {1})", "({0} >= {1})", "({0} < {1})", "({0} <= {1})",
    "({0} < {1} || {0} > {1})", "!(std::isnan({0}) || std::isnan({1}))", "!({0} < {1} || {0} > {1})",
    "!({0} <= {1})", "!({0} < {1})", "!({0} >= {1})", "!({0} > {1})", "({0} != {1})",
    "(std::isnan({0}) || std::isnan({1}))", "true",
)  # fmt: skip


def _aten(*names: str) -> tuple[str, ...]:
    return names


_CAST_NUMPY = "_cast({0}, {dtype}, {index})"
_CAST_CXX = "static_cast<{ctype}>({0})"

# name: (numpy, cxx, latency or chain of op names, source, aten, combiner)
_TABLE: dict[str, tuple[Any, ...]] = {
    # floating point
    "arith.addf": ("{0} + {1}", "({0} + {1})", 4, "fp-core", _aten("add.Tensor", "add.Scalar"), np.add),
    "arith.subf": ("{0} - {1}", "({0} - {1})", 4, "fp-core", _aten("sub.Tensor", "sub.Scalar"), None),
    "arith.mulf": ("{0} * {1}", "({0} * {1})", 3, "fp-core", _aten("mul.Tensor", "mul.Scalar"), np.multiply),
    "arith.divf": ("{0} / {1}", "({0} / {1})", 12, "fp-core", _aten("div.Tensor", "div.Scalar"), None),
    "arith.negf": ("-{0}", "(-{0})", 1, "lut", _aten("neg.default"), None),
    "arith.maximumf": ("np.maximum({0}, {1})", "sd_maximum({0}, {1})", 2, "fp-core", _aten("maximum.default"), np.maximum),
    "arith.minimumf": ("np.minimum({0}, {1})", "sd_minimum({0}, {1})", 2, "fp-core", _aten("minimum.default"), np.minimum),
    "arith.maxnumf": ("np.fmax({0}, {1})", "std::fmax({0}, {1})", 2, "fp-core", (), np.fmax),
    "arith.minnumf": ("np.fmin({0}, {1})", "std::fmin({0}, {1})", 2, "fp-core", (), np.fmin),
    "arith.cmpf": (_CMPF_NUMPY, _CMPF_CXX, 2, "fp-core", (), None),
    # integers
    "arith.addi": ("{0} + {1}", "({0} + {1})", 1, "lut", _aten("add.Tensor", "add.Scalar"), np.add),
    "arith.subi": ("{0} - {1}", "({0} - {1})", 1, "lut", _aten("sub.Tensor", "sub.Scalar"), None),
    "arith.muli": ("{0} * {1}", "({0} * {1})", 3, "dsp48e2", _aten("mul.Tensor", "mul.Scalar"), np.multiply),
    "arith.divsi": ("_divsi({0}, {1})", "({0} / {1})", 36, "divider", (), None),
    "arith.divui": ("_divui({0}, {1})", "sd_divui({0}, {1})", 36, "divider", (), None),
    "arith.remsi": ("_remsi({0}, {1})", "({0} % {1})", 36, "divider", (), None),
    "arith.remui": ("_remui({0}, {1})", "sd_remui({0}, {1})", 36, "divider", (), None),
    "arith.floordivsi": ("{0} // {1}", "sd_floordiv({0}, {1})", ("arith.divsi", "arith.subi"), "chain", (), None),
    "arith.ceildivsi": ("-(-{0} // {1})", "(-sd_floordiv(-({0}), {1}))", ("arith.divsi", "arith.subi"), "chain", (), None),
    "arith.ceildivui": ("_ceildivui({0}, {1})", "sd_ceildivui({0}, {1})", ("arith.divui", "arith.addi"), "chain", (), None),
    "arith.maxsi": ("np.maximum({0}, {1})", "(({0}) > ({1}) ? ({0}) : ({1}))", 1, "lut", _aten("maximum.default"), np.maximum),
    "arith.minsi": ("np.minimum({0}, {1})", "(({0}) < ({1}) ? ({0}) : ({1}))", 1, "lut", _aten("minimum.default"), np.minimum),
    "arith.maxui": ("_maxui({0}, {1})", "sd_maxui({0}, {1})", 1, "lut", (), None),
    "arith.minui": ("_minui({0}, {1})", "sd_minui({0}, {1})", 1, "lut", (), None),
    "arith.andi": ("{0} & {1}", "({0} & {1})", 1, "lut",
                   _aten("bitwise_and.Tensor", "__and__.Tensor", "bitwise_and.Scalar", "logical_and.default"), np.bitwise_and),
    "arith.ori": ("{0} | {1}", "({0} | {1})", 1, "lut",
                  _aten("bitwise_or.Tensor", "__or__.Tensor", "bitwise_or.Scalar", "logical_or.default"), np.bitwise_or),
    "arith.xori": ("{0} ^ {1}", "({0} ^ {1})", 1, "lut",
                   _aten("bitwise_xor.Tensor", "__xor__.Tensor", "bitwise_xor.Scalar", "logical_xor.default"), np.bitwise_xor),
    "arith.shli": ("{0} << {1}", "({0} << {1})", 1, "lut", (), None),
    "arith.shrsi": ("{0} >> {1}", "({0} >> {1})", 1, "lut", (), None),
    "arith.shrui": ("_shrui({0}, {1})", "sd_shrui({0}, {1})", 1, "lut", (), None),
    "arith.cmpi": (_CMPI_NUMPY, _CMPI_CXX, 1, "lut", (), None),
    "arith.select": ("_select({0}, {1}, {2})", "({0} ? {1} : {2})", 1, "lut", _aten("where.self"), None),
    "arith.constant": ("", "", 0, "wire", (), None),  # its value is an attribute: targets spell it
    # casts
    "arith.extf": (_CAST_NUMPY, _CAST_CXX, 2, "fp-core", (), None),
    "arith.truncf": (_CAST_NUMPY, _CAST_CXX, 2, "fp-core", (), None),
    "arith.sitofp": (_CAST_NUMPY, _CAST_CXX, 4, "fp-core", (), None),
    "arith.uitofp": (_CAST_NUMPY, _CAST_CXX, 4, "fp-core", (), None),
    "arith.fptosi": (_CAST_NUMPY, _CAST_CXX, 4, "fp-core", (), None),
    "arith.fptoui": (_CAST_NUMPY, _CAST_CXX, 4, "fp-core", (), None),
    "arith.extsi": (_CAST_NUMPY, _CAST_CXX, 0, "wire", (), None),
    "arith.extui": (_CAST_NUMPY, _CAST_CXX, 0, "wire", (), None),
    "arith.trunci": (_CAST_NUMPY, _CAST_CXX, 0, "wire", (), None),
    "arith.index_cast": (_CAST_NUMPY, _CAST_CXX, 0, "wire", (), None),
    "arith.bitcast": ("_bitcast({0}, {dtype})", "sd_bitcast<{ctype}>({0})", 0, "wire", (), None),
    # math
    "math.absf": ("np.abs({0})", "std::fabs({0})", 1, "lut", _aten("abs.default"), None),
    "math.absi": ("np.abs({0})", "std::abs({0})", 1, "lut", (), None),
    "math.copysign": ("np.copysign({0}, {1})", "std::copysign({0}, {1})", 1, "lut", (), None),
    "math.exp": ("np.exp({0})", "std::exp({0})", 10, "fp-core", _aten("exp.default"), None),
    "math.exp2": ("np.exp2({0})", "std::exp2({0})", ("arith.mulf", "math.exp"), "chain", (), None),
    "math.expm1": ("np.expm1({0})", "std::expm1({0})", ("math.exp", "arith.subf"), "chain", (), None),
    "math.log": ("np.log({0})", "std::log({0})", 14, "fp-core", _aten("log.default"), None),
    "math.log2": ("np.log2({0})", "std::log2({0})", ("math.log", "arith.mulf"), "chain", (), None),
    "math.log10": ("np.log10({0})", "std::log10({0})", ("math.log", "arith.mulf"), "chain", (), None),
    "math.log1p": ("np.log1p({0})", "std::log1p({0})", ("arith.addf", "math.log"), "chain", (), None),
    "math.sqrt": ("np.sqrt({0})", "std::sqrt({0})", 12, "fp-core", _aten("sqrt.default"), None),
    "math.rsqrt": ("np.reciprocal(np.sqrt({0}))", "sd_rsqrt({0})", 14, "fp-core", _aten("rsqrt.default"), None),
    "math.cbrt": ("np.cbrt({0})", "std::cbrt({0})", ("math.log", "arith.mulf", "math.exp"), "chain", (), None),
    "math.powf": ("np.power({0}, {1})", "std::pow({0}, {1})", ("math.log", "arith.mulf", "math.exp"), "chain",
                  _aten("pow.Tensor_Tensor", "pow.Scalar"), None),
    "math.fpowi": ("np.power({0}, {1})", "std::pow({0}, {1})", ("math.log", "arith.mulf", "math.exp"), "chain", (), None),
    # x^n by squaring over a 32-bit exponent: five squarings and five multiplies
    "math.ipowi": ("_ipowi({0}, {1})", "sd_ipowi({0}, {1})", ("arith.muli",) * 10, "chain", (), None),
    "math.fma": ("{0} * {1} + {2}", "std::fma({0}, {1}, {2})", 6, "fp-core", (), None),
    "math.tanh": ("np.tanh({0})", "std::tanh({0})", 24, "hls-math", _aten("tanh.default"), None),
    "math.erf": ("_erf({0})", "std::erf({0})", 24, "hls-math", _aten("erf.default"), None),
    "math.sin": ("np.sin({0})", "std::sin({0})", 24, "hls-math", _aten("sin.default"), None),
    "math.cos": ("np.cos({0})", "std::cos({0})", 24, "hls-math", _aten("cos.default"), None),
    "math.tan": ("np.tan({0})", "std::tan({0})", ("math.sin", "arith.divf"), "chain", (), None),
    "math.asin": ("np.arcsin({0})", "std::asin({0})", 24, "hls-math", (), None),
    "math.acos": ("np.arccos({0})", "std::acos({0})", 24, "hls-math", (), None),
    "math.atan": ("np.arctan({0})", "std::atan({0})", 24, "hls-math", (), None),
    "math.atan2": ("np.arctan2({0}, {1})", "std::atan2({0}, {1})", ("arith.divf", "math.atan"), "chain", (), None),
    "math.sinh": ("np.sinh({0})", "std::sinh({0})", ("math.exp", "arith.subf", "arith.mulf"), "chain", (), None),
    "math.cosh": ("np.cosh({0})", "std::cosh({0})", ("math.exp", "arith.addf", "arith.mulf"), "chain", (), None),
    "math.asinh": ("np.arcsinh({0})", "std::asinh({0})",
                   ("arith.mulf", "arith.addf", "math.sqrt", "arith.addf", "math.log"), "chain", (), None),
    "math.acosh": ("np.arccosh({0})", "std::acosh({0})",
                   ("arith.mulf", "arith.subf", "math.sqrt", "arith.addf", "math.log"), "chain", (), None),
    "math.atanh": ("np.arctanh({0})", "std::atanh({0})", ("arith.addf", "arith.divf", "math.log", "arith.mulf"),
                   "chain", (), None),
    # rounding: masks on the mantissa chosen by the exponent, and an increment
    "math.ceil": ("np.ceil({0})", "std::ceil({0})", ("arith.cmpi", "arith.addi"), "chain", (), None),
    "math.floor": ("np.floor({0})", "std::floor({0})", ("arith.cmpi", "arith.addi"), "chain", (), None),
    "math.trunc": ("np.trunc({0})", "std::trunc({0})", ("arith.cmpi", "arith.andi"), "chain", (), None),
    "math.round": ("_round_away({0})", "std::round({0})", ("arith.cmpi", "arith.addi"), "chain", (), None),
    "math.roundeven": ("np.rint({0})", "std::nearbyint({0})", ("arith.cmpi", "arith.addi"), "chain", (), None),
}  # fmt: skip


def _build() -> dict[str, OpInfo]:
    ops: dict[str, OpInfo] = {}

    def latency(name: str) -> int:
        lat = _TABLE[name][2]
        return sum(latency(n) for n in lat) if isinstance(lat, tuple) else lat

    for name, (numpy, cxx, lat, source, aten, combiner) in _TABLE.items():
        chain = lat if isinstance(lat, tuple) else ()
        ops[name] = OpInfo(name, numpy, cxx, latency(name), source, aten, combiner, chain)
    return ops


OPS: Mapping[str, OpInfo] = MappingProxyType(_build())

# arith/math ops of xDSL the vocabulary leaves out: no front end emits them, and the targets
# translate single-result ops only (the *_extended ops have two results)
NOT_IN_VOCABULARY = frozenset({
    "arith.addui_extended", "arith.mulsi_extended", "arith.mului_extended", "math.ctlz", "math.ctpop", "math.cttz",
})  # fmt: skip

# arith ops that only convert a value's type (their result is the operand, cast)
ARITH_CASTS = frozenset(name for name, info in OPS.items() if info.numpy == _CAST_NUMPY)


def op_info(name: str) -> OpInfo | None:
    """The vocabulary entry of an op name, or None for ops that are not scalar/element-wise."""
    return OPS.get(name)
