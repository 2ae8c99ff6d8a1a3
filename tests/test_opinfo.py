"""The op vocabulary (streamdsl/opinfo.py): every scalar op the DSL and the importer can emit has an
entry, and every entry is complete for every target (numpy, C++, latency with its source)."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import arith, math
from xdsl.irdl import IRDLOperation

from lowering.timing import U55C
from streamdsl.opinfo import LATENCY_SOURCES, NOT_IN_VOCABULARY, NUMPY_HELPERS, OPS

ROOT = Path(__file__).resolve().parents[1]
EMITTERS = [
    ROOT / "streamdsl" / "irbuild.py",
    *sorted((ROOT / "streamdsl" / "dsl").glob("*.py")),
    *sorted((ROOT / "frontends").rglob("*.py")),
]
DIALECTS = {"arith": arith, "math": math}


def _emitted_ops(path: Path) -> set[str]:
    """Names of the arith/math op classes a module refers to (`arith.AddfOp`, `mathd.ExpOp`)."""
    tree = ast.parse(path.read_text())
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "xdsl.dialects":
            aliases |= {a.asname or a.name: a.name for a in node.names if a.name in DIALECTS}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            cls = getattr(DIALECTS[aliases[node.value.id]], node.attr, None)
            if isinstance(cls, type) and issubclass(cls, IRDLOperation):
                names.add(cls.name)
    return names


def test_the_scan_finds_the_ops_each_front_end_emits() -> None:
    dsl = _emitted_ops(ROOT / "streamdsl" / "dsl" / "ops.py")
    importer = _emitted_ops(ROOT / "frontends" / "ops" / "elementwise.py")
    assert {"math.exp", "arith.maximumf", "arith.divf", "math.erf"} <= dsl
    assert {"arith.cmpf", "arith.cmpi", "arith.select", "math.powf", "arith.floordivsi"} <= importer


@pytest.mark.parametrize("path", EMITTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_op_a_front_end_emits_is_in_the_vocabulary(path: Path) -> None:
    missing = sorted(_emitted_ops(path) - set(OPS))
    assert not missing, f"{path.relative_to(ROOT)} emits ops without an entry in streamdsl/opinfo.py: {missing}"


def test_the_vocabulary_holds_every_arith_and_math_op_but_the_listed_ones() -> None:
    ops = {op.name for dialect in (arith.Arith, math.Math) for op in dialect.operations}
    assert set(OPS) == ops - NOT_IN_VOCABULARY


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_entry_serves_every_target(name: str) -> None:
    info = OPS[name]
    dialect, _, _ = name.partition(".")
    assert name in {op.name for op in getattr(DIALECTS[dialect], dialect.capitalize()).operations}
    # latency: a figure with a documented source, read by the timing model
    assert info.source in LATENCY_SOURCES
    assert info.latency >= 0 and U55C.op_latency[name] == info.latency
    if info.source == "chain":
        assert info.chain and info.latency == sum(OPS[n].latency for n in info.chain)
    if name == "arith.constant":
        return  # its value is an attribute: each target spells constants itself
    texts = [(info.numpy, info.cxx)] if isinstance(info.numpy, str) else list(zip(info.numpy, info.cxx, strict=True))
    fields = {"dtype": "np.float32", "index": "False", "ctype": "float"}
    for numpy_text, cxx_text in texts:
        arity = {f for _, f, _, _ in string.Formatter().parse(numpy_text) if f and f.isdigit()}
        assert arity == {f for _, f, _, _ in string.Formatter().parse(cxx_text) if f and f.isdigit()}, (numpy_text, cxx_text)
        args = [f"a{i}" for i in range(len(arity))]
        compile(numpy_text.format(*args, **fields), name, "eval")  # valid Python
        assert all(h in NUMPY_HELPERS for h in _called_helpers(numpy_text.format(*args, **fields)))


def _called_helpers(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source, mode="eval")) if isinstance(n, ast.Name) and n.id.startswith(("_", "np"))}


def test_aten_origins_agree_with_the_importers_lowerings() -> None:
    from frontends.ops import elementwise

    checked = 0
    for targets, ops in elementwise._ARITH.items():
        for cls in filter(None, ops):
            for target in targets:
                assert f"{target._opname}.{target._overloadname}" in OPS[cls.name].aten, (target, cls.name)
                checked += 1
    assert checked >= 20


@pytest.mark.parametrize("name", sorted(n for n, i in OPS.items() if i.combiner is not None))
def test_combiners_are_associative_and_commutative(name: str) -> None:
    rng = np.random.default_rng(0)
    ufunc = OPS[name].combiner
    a, b, c = (rng.integers(-50, 50, 16) for _ in range(3))
    np.testing.assert_array_equal(ufunc(ufunc(a, b), c), ufunc(a, ufunc(b, c)))
    np.testing.assert_array_equal(ufunc(a, b), ufunc(b, a))


def test_no_op_silently_defaults_in_the_timing_model() -> None:
    from xdsl.dialects.builtin import i32
    from xdsl.ir import Block

    from lowering.timing import TimingError

    block = Block(arg_types=[i32])
    op = arith.IndexCastOp(block.args[0], i32)
    assert U55C.latency_of(op) == 0
    table = type(U55C)(op_latency={})
    with pytest.raises(TimingError, match="no latency for `arith.index_cast`.*opinfo.py"):
        table.latency_of(op)
