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


def _itensor_blocks(out: str) -> dict[str, tuple[str, str, list[tuple[int, int]]]]:
    """`streamdsl itensor`'s output per layout title: (header, IR type, token offsets)."""
    blocks = {}
    for block in filter(None, out.strip().split("\n\n")):
        header, ir, offsets = block.strip().split("\n")
        assert header.startswith("// ") and offsets.startswith("// token offsets: ")
        title, _, rest = header[3:].partition(": ")
        tokens = [tuple(int(v) for v in o.strip("()").split(",")) for o in offsets.removeprefix("// token offsets: ").split()]
        blocks[title] = (rest, ir, tokens)
    return blocks


def test_itensor_prints_the_papers_fig5_layouts_in_their_stream_order(capsys):
    """Fig. 5 by hand: (a) 2x2 tiles row by row, (b) 4x2 tiles a column of tiles at a time,
    (c) as (b) with each column of tiles streamed twice; every layout covers the 8x8 tensor, with
    the paper's tile, iteration space and map."""
    assert main(["-q", "itensor"]) == 0
    blocks = _itensor_blocks(capsys.readouterr().out)
    b = [(r, c) for c in range(0, 8, 2) for r in (0, 4)]
    want = {
        "(a) row-major 2x2 tiles": ([(r, c) for r in range(0, 8, 2) for c in range(0, 8, 2)],
                                    "2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)"),
        "(b) 4x2 tiles, column of tiles at a time": (b, "4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)"),
        "(c) as (b), each column streamed twice": ([t for c in range(4) for t in 2 * b[2 * c:2 * c + 2]],
                                                   "4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)"),
    }
    assert list(blocks) == list(want)
    for title, (tokens, paper_type) in want.items():
        header, ir, got = blocks[title]
        assert got == tokens, title
        assert header == f"{len(tokens)} tokens, shape [8, 8], regular=True"
        assert ir == f"!dataflow.itensor<{paper_type}>"


def test_models_lists_what_compile_and_import_accept(capsys):
    from frontends import hf
    from toolchain import examples
    from toolchain.cli import SIZES

    assert main(["models"]) == 0
    programs, families = capsys.readouterr().out.strip().split("\n")

    def listed(line: str, intro: str) -> tuple[list[str], list[str]]:
        names, sizes = line.removeprefix(intro).split("; sizes ")
        return names.split(", "), sizes.split(", ")

    assert listed(programs, "built-in programs (streamdsl compile): ") == (list(examples.EXAMPLES), list(SIZES))
    assert listed(families, "Hugging Face families (streamdsl import): ") == (list(hf.FAMILIES), list(hf.SIZES))


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
