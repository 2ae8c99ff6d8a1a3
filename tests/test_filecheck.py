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


def test_filecheck_runs_the_checkouts_code_not_an_installed_one(tmp_path: Path) -> None:
    """An interpreter whose installed `streamdsl` / `frontends` / `streamdsl-opt` are decoys (an
    older copy in site-packages): the RUN lines still execute this checkout's code."""
    decoy, bin_dir = tmp_path / "site", tmp_path / "bin"
    for package in ("streamdsl", "frontends"):
        (decoy / package).mkdir(parents=True)
        (decoy / package / "__init__.py").write_text("raise SystemExit('the installed decoy ran')\n")
    bin_dir.mkdir()
    python = bin_dir / "python"  # site-packages come after PYTHONPATH: the decoy goes last
    python.write_text(f'#!/bin/sh\nexport PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{decoy}"\nexec {sys.executable} "$@"\n')
    (bin_dir / "streamdsl-opt").write_text("#!/bin/sh\necho 'the installed decoy ran' >&2\nexit 1\n")  # an installed console script
    for script in (python, bin_dir / "streamdsl-opt"):
        script.chmod(0o755)
    (bin_dir / "filecheck").symlink_to(Path(sys.executable).with_name("filecheck"))
    opt = next(p for p in FILES if "// RUN: streamdsl-opt" in p.read_text())
    dump = next(p for p in FILES if "%python -m frontends.dump" in p.read_text())
    env = {**os.environ, "STREAMDSL_PYTHON": str(python)}
    lit = Path(sys.executable).with_name("lit")
    proc = subprocess.run([str(lit), "-v", str(opt), str(dump)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "decoy" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
