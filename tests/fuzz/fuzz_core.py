"""Hypothesis fuzzing of the language core's inputs: itensor constructors and IR text, valid and
mutated (huge, negative and zero numbers, broken syntax).

The oracle accepts only two outcomes: a clean error (a `StreamdslError`, or xDSL's `ParseError` /
`VerifyException` for IR text) or a correct result, checked against an independent pure-Python
evaluation of the itensor semantics and an IR print/parse round trip. Run it with `run()` (the
test runs it in a subprocess under a memory limit; `benchmarks/fuzz_profile.py` runs it deep).
Every example runs under a wall-clock limit (`signal.setitimer`).
"""

from __future__ import annotations

import functools
import itertools
import math
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import hypothesis
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

import streamdsl as sd
from streamdsl.dialects.dataflow import DATAFLOW
from streamdsl.sim.functional import simulate

CLEAN = (sd.StreamdslError, ParseError, VerifyException)
CHECKED_TOKENS = 2000  # results with at most this many tokens are checked token by token
EXAMPLE_SECONDS = 10.0

SPECIAL = [0, -1, 2**20, 2**28, 10**12, 2**31, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63)]
small = st.integers(1, 6)
number = st.one_of(small, small, small, st.sampled_from(SPECIAL), st.integers(-(2**70), 2**70))
step = st.one_of(st.integers(0, 8), st.integers(0, 8), st.sampled_from(SPECIAL))
constant = st.one_of(st.integers(-3, 70), st.sampled_from(SPECIAL))
DTYPES = [sd.f32, sd.f16, sd.bf16, sd.i8, sd.i32]


@functools.cache  # building a recursive strategy is costly: once per loop count
def expr_text(dims: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.integers(0, max(dims - 1, 0)).map(lambda i: f"d{i}"), constant.map(str))

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.sampled_from(["+", "*", "mod", "floordiv", "ceildiv"])
        return st.one_of(
            st.tuples(inner, binary, constant).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.just("+"), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(["*", "mod"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),  # often not affine
        )

    return st.recursive(leaf, grow, max_leaves=5)


@st.composite
def itensor_args(draw: st.DrawFn) -> dict:
    rank = draw(st.integers(1, 3))
    loops = draw(st.integers(1, 3))
    tile = draw(st.lists(number, min_size=rank, max_size=rank))
    trips = draw(st.lists(number, min_size=loops, max_size=loops))
    steps = draw(st.lists(step, min_size=loops, max_size=loops))
    if draw(st.booleans()):  # the common, mostly valid case: a permutation of the loops
        map_ = f"({', '.join(f'd{i}' for i in range(loops))}) -> ({', '.join(f'd{i % loops}' for i in range(rank))})"
    else:
        results = draw(st.lists(expr_text(loops), min_size=rank, max_size=rank))
        if draw(st.integers(0, 9)) == 0:  # a wrong number of results
            results = results[:-1] or results * 2
        map_ = f"({', '.join(f'd{i}' for i in range(loops))}) -> ({', '.join(results)})"
    return {"dtype": draw(st.sampled_from(DTYPES)), "tile": tile, "trips": trips, "steps": steps, "map": map_}


def type_text(args: dict) -> str:
    tile = "x".join(str(t) for t in args["tile"])
    trips, steps = ", ".join(map(str, args["trips"])), ", ".join(map(str, args["steps"]))
    return f"!dataflow.itensor<{tile}x{args['dtype'].name}, [{trips}] * [{steps}], {args['map']}>"


KERNEL = """func.func @k(%x: tensor<SHAPE>) -> tensor<SHAPE> {
  %y = dataflow.kernel "k"(%x) : (tensor<SHAPE>) -> tensor<SHAPE> {
  ^bb0(%xa: tensor<SHAPE>):
    %s = dataflow.dma_load %xa {depth = DEPTH : i64} : tensor<SHAPE> -> TYPE
    %o = dataflow.dma_store %s : TYPE -> tensor<SHAPE>
    dataflow.yield %o : tensor<SHAPE>
  }
  func.return %y : tensor<SHAPE>
}"""


@st.composite
def ir_text(draw: st.DrawFn) -> str:
    args = draw(itensor_args())
    kind = draw(st.sampled_from(["type", "stream", "kernel"]))
    if kind == "type":
        text = f'"test.op"() : () -> {type_text(args)}'
    elif kind == "stream":
        text = f'"test.op"() : () -> !dataflow.stream<tensor<4xf32>, depth = {draw(number)}>'
    else:
        shape = "x".join(str(s) for s in draw(st.lists(number, min_size=1, max_size=3))) + "xf32"
        text = KERNEL.replace("SHAPE", shape).replace("TYPE", type_text(args)).replace("DEPTH", str(draw(number)))
    for _ in range(draw(st.integers(0, 3))):
        text = draw(mutation(text))
    return text


@st.composite
def mutation(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    end = draw(st.integers(at, min(len(text), at + 8)))
    how = draw(st.sampled_from(["delete", "insert", "number", "duplicate"]))
    if how == "delete":
        return text[:at] + text[end:]
    if how == "insert":
        return text[:at] + draw(st.sampled_from(["(", ")", "<", ">", ",", "-", "x", "0", "*", "mod 0", "%s", " "])) + text[at:]
    if how == "number":
        return text[:at] + str(draw(number)) + text[end:]
    return text[:at] + text[at:end] * 2 + text[end:]


# -- the oracle ---------------------------------------------------------------------------------


def reference_offsets(it: sd.itensor) -> list[tuple[int, ...]]:
    """Token offsets by the normative semantics, in plain Python integers."""
    out = []
    for iv in itertools.product(*(range(t) for t in it.trips)):
        point = [i * s for i, s in zip(iv, it.steps)]
        out.append(tuple(_eval(e, point) for e in it.map.results))
    return out


def _eval(expr: AffineExpr, point: list[int]) -> int:
    match expr:
        case AffineDimExpr(position=pos):
            return point[pos]
        case AffineConstantExpr(value=value):
            return value
        case AffineBinaryOpExpr(kind=kind, lhs=lhs, rhs=rhs):
            a, b = _eval(lhs, point), _eval(rhs, point)
            return {
                AffineBinaryOpKind.Add: lambda: a + b,
                AffineBinaryOpKind.Mul: lambda: a * b,
                AffineBinaryOpKind.Mod: lambda: a % b,
                AffineBinaryOpKind.FloorDiv: lambda: a // b,
                AffineBinaryOpKind.CeilDiv: lambda: -(-a // b),
            }[kind]()
    raise AssertionError(f"unexpected affine expression {expr}")


def check_itensor(it: sd.itensor, args: dict | None = None) -> None:
    """The itensor's derived facts agree with the semantics evaluated independently."""
    assert it.num_tokens == math.prod(it.trips)
    assert all(0 <= d < 2**63 for d in it.shape)
    assert it.to_ir().itensor == it
    if it.num_tokens > CHECKED_TOKENS:
        return
    offsets = reference_offsets(it)
    assert it.tokens() == offsets
    assert it.shape == tuple(max(o[d] for o in offsets) + it.tile[d] for d in range(it.rank))
    assert min(min(o) for o in offsets) >= 0
    if it.is_regular and not it.has_reuse and it.num_elements <= 4096:
        array = np.arange(it.num_elements, dtype=np.float32).reshape(it.shape)
        np.testing.assert_array_equal(it.from_stream(it.reference_stream(array)), array)


def context() -> Context:
    ctx = Context(allow_unregistered=True)
    for dialect in (builtin.Builtin, func.Func, arith.Arith, DATAFLOW):
        ctx.load_dialect(dialect)
    return ctx


def check_ir(text: str) -> None:
    try:
        module = Parser(context(), text).parse_module()
    except ValueError as err:  # xDSL's check of an SSA/block name, which streamdsl-opt reports as a usage error
        if "name format" not in str(err):
            raise
        raise sd.UsageError(" ".join(map(str, err.args))) from None
    module.verify()
    kernels = [op for op in module.walk() if op.name == "dataflow.kernel"]
    if kernels:
        shape = kernels[0].inputs[0].type.get_shape()
        if math.prod(shape) <= 1 << 16:
            x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
            np.testing.assert_array_equal(simulate(module, x), x)
    for op in module.walk():
        for result in op.results:
            if hasattr(result.type, "itensor"):
                check_itensor(result.type.itensor)


# -- running under limits -------------------------------------------------------------------------


class ExampleTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise ExampleTimeout(f"example ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Stats:
    examples: int = 0
    outcomes: Counter = field(default_factory=Counter)
    worst_seconds: float = 0.0
    worst_example: str = ""


def _outcome(stats: Stats, label: str, what: str, body: Callable[[], None]) -> None:
    start = time.perf_counter()
    try:
        with time_limit(EXAMPLE_SECONDS):
            body()
        stats.outcomes[f"{label}: ok"] += 1
    except CLEAN as err:
        stats.outcomes[f"{label}: {type(err).__name__}"] += 1
    finally:
        seconds = time.perf_counter() - start
        stats.examples += 1
        if seconds > stats.worst_seconds:
            stats.worst_seconds, stats.worst_example = seconds, what


def run(examples: int, seed: int | None = 0, stats: Stats | None = None) -> Stats:
    """Run `examples` itensor-constructor examples and as many IR-text examples (repeatably for a
    given `seed`, randomly for None), adding to `stats`; a non-clean error or a wrong result
    propagates (with Hypothesis' shrunk example)."""
    stats = Stats() if stats is None else stats
    common = dict(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True,
    )
    seeded = (lambda test: test) if seed is None else hypothesis.seed(seed)

    @seeded
    @settings(**common)
    @given(itensor_args())
    def constructors(args: dict) -> None:
        def body() -> None:
            check_itensor(sd.itensor(args["dtype"], tile=args["tile"], trips=args["trips"], steps=args["steps"], map=args["map"]))

        _outcome(stats, "itensor", repr(args), body)

    @seeded
    @settings(**common)
    @given(ir_text())
    def texts(text: str) -> None:
        _outcome(stats, "ir", text, lambda: check_ir(text))

    constructors()
    texts()
    return stats
