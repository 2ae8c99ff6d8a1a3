"""The layers hold in the source, not only at import time (docs/architecture.md, "Layers").

`streamdsl` (the language core) imports none of the packages built on it; `frontends`, `lowering`
and `hls_backend` do not import the tool chain. Every import counts: module level, inside a
function (deferred), under `TYPE_CHECKING`, and `importlib.import_module` / `__import__` with a
literal name.
"""

import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLCHAIN = "toolchain"
MIDDLE = ("frontends", "lowering", "hls_backend")
FORBIDDEN = {"streamdsl": {*MIDDLE, TOOLCHAIN}, **{package: {TOOLCHAIN} for package in MIDDLE}}
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `tree`, wherever it sits."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_IMPORTS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def imports_in(package: str, forbidden: Callable[[str], bool]) -> list[str]:
    """`file:line imports module` for each import of `package` that `forbidden(module)` flags."""
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imported_modules(ast.parse(path.read_text(), str(path)))
        if forbidden(module)
    ]


def upward_imports(package: str, forbidden: set[str]) -> list[str]:
    """The imports of `package` that reach a forbidden package."""
    return imports_in(package, lambda module: module.split(".")[0] in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_import_in_source(package):
    assert upward_imports(package, FORBIDDEN[package]) == []


# The simulators' own runtime (converter buffers, processes, code generation) is no API: what the
# converter planner, the timing model, FIFO sizing and the emitter share with them lives in the
# core (`streamdsl.layout`, `streamdsl.wiring`, `streamdsl.graph`); they call the simulators only
# through their entry points (`simulate`, `simulate_timed`, ...).
SIM_INTERNALS = ("streamdsl.sim.converter", "streamdsl.sim._")


@pytest.mark.parametrize("package", ["lowering", "hls_backend"])
def test_no_simulator_internals_below_the_tool_chain(package):
    assert imports_in(package, lambda module: module.startswith(SIM_INTERNALS)) == []


def test_scanner_sees_deferred_and_dynamic_imports():
    source = '''
import os
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from lowering.timing import U55C
def f():
    import hls_backend.emit
    from toolchain import cli
    importlib.import_module("frontends.hf")
    return __import__("lowering")
from . import sibling
'''
    modules = sorted(module for _, module in imported_modules(ast.parse(source)))
    assert modules == ["frontends.hf", "hls_backend.emit", "lowering", "lowering.timing", "os", "toolchain", "typing"]


CHECK = """
import importlib, pkgutil, sys
import streamdsl
for info in pkgutil.walk_packages(streamdsl.__path__, "streamdsl."):
    importlib.import_module(info.name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"frontends", "lowering", "hls_backend", "toolchain"})
print(",".join(loaded))
"""


def test_importing_streamdsl_loads_nothing_built_on_it():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
