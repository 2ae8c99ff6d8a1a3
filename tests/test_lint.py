"""ruff over the whole checkout (pyproject.toml's [tool.ruff]: pycodestyle, pyflakes, import order)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_reports_nothing() -> None:
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"ruff check . (exit {run.returncode}):\n{run.stdout}{run.stderr}"



def _ours() -> set[str]:
    """The project's top-level packages (pyproject.toml's package list) and the tests' helper modules."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include} | {p.stem for p in (ROOT / "tests").rglob("*") if p.suffix == ".py" or p.is_dir()}


def _catches_import_errors(handler: ast.ExceptHandler) -> bool:
    names = {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(handler.type) if isinstance(n, ast.Name | ast.Attribute)} \
        if handler.type is not None else {"BaseException"}
    return bool(names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == name]


def test_no_test_skips_itself_when_a_module_of_the_project_is_missing() -> None:
    """A renamed or broken module of ours must fail the tests that use it, never skip them: no
    `pytest.importorskip` of our modules, no skip in a handler of a failed import."""
    ours, found = _ours(), []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "importorskip"):
            module = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else None
            if module is None or str(module).split(".")[0] in ours:
                found.append(f"{path.relative_to(ROOT)}:{call.lineno}: importorskip({module!r})")
        for handler in (n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)):
            if _catches_import_errors(handler) and any(_calls(stmt, "skip") for stmt in handler.body):
                found.append(f"{path.relative_to(ROOT)}:{handler.lineno}: skips when an import fails")
    assert not found, "tests that would skip instead of failing:\n" + "\n".join(found)
