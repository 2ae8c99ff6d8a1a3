"""The command line: conventions (--help, exit codes, quiet) and the built-in examples."""

import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.cli import main

BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "streamdsl"), *args], capture_output=True, text=True)


def test_help_lists_commands():
    proc = run("--help")
    assert proc.returncode == 0
    assert "itensor" in proc.stdout


def test_unknown_command_is_usage_error():
    proc = run("no-such-command")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_itensor_prints_fig5_orders(capsys):
    assert main(["-q", "itensor"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # --quiet: no progress
    assert "!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>" in out
    assert "// token offsets: (0,0) (4,0) (0,2) (4,2) (0,4) (4,4) (0,6) (4,6)" in out


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_verbose_reports_progress(flag, capsys):
    assert main([flag, "itensor"]) == 0
    assert "layout (b)" in capsys.readouterr().err


def test_models_lists_programs_and_families(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "ffn-block" in out and "gpt2, llama, qwen2, gemma" in out


def test_import_checks_the_model_against_eager(tmp_path, capsys):
    out = tmp_path / "imp"
    assert main(["-q", "import", "qwen2", "--layers", "1", "--past", "3", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("qwen2-tiny decode: max abs error") and "(ok," in line
    assert "linalg." in (out / "imported.mlir").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["import", "gpt3"], "unknown model family 'gpt3'"),
    (["import", "gpt2", "--size", "huge"], "unknown size 'huge'"),
])
def test_import_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
