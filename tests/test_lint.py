"""ruff over the whole checkout (pyproject.toml's [tool.ruff]: pycodestyle, pyflakes, import order)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_reports_nothing() -> None:
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"ruff check . (exit {run.returncode}):\n{run.stdout}{run.stderr}"
