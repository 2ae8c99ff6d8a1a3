"""Runs every lit/filecheck test under tests/filecheck as one pytest item per file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent / "filecheck"
FILES = sorted(p for p in ROOT.rglob("*.mlir") if "Output" not in p.parts)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_filecheck(path: Path) -> None:
    env = {**os.environ, "STREAMDSL_PYTHON": sys.executable}
    lit = Path(sys.executable).with_name("lit")
    proc = subprocess.run([str(lit), "-v", str(path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
