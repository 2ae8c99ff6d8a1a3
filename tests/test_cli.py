"""The command line: conventions (--help, exit codes, quiet) and the built-in examples."""

import re
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


def _help_blocks(text: str) -> dict[str, str]:
    """docs/cli.md: each `## streamdsl ...` heading's ```text block."""
    return dict(re.findall(r"^## (streamdsl[\w ]*)\n\n```text\n(.*?)\n```$", text, re.S | re.M))


def test_the_cli_reference_is_what_help_prints(capsys, monkeypatch):
    """docs/cli.md documents every command with the help it prints (at 100 columns): each
    argument's name, metavar, choices and help text."""
    from toolchain.cli import COMMANDS

    monkeypatch.setenv("COLUMNS", "100")
    documented = _help_blocks((Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text())
    assert list(documented) == ["streamdsl", *(f"streamdsl {c}" for c in COMMANDS)]
    for title, text in documented.items():
        with pytest.raises(SystemExit) as exit_:
            main([*title.split()[1:], "--help"])
        assert exit_.value.code == 0
        assert capsys.readouterr().out.rstrip() == text, title


@pytest.mark.parametrize(("argv", "want"), [
    # the defaults the help names (docs/cli.md)
    (["compile"], dict(program=None, size="small", seed=0, max_context=1024, tile=None, csim=False, quant="none",
                       group_size=None, clock=None, dse=False, narrow_splits=False, plan=None, force=False, fifo_tradeoff=False,
                       kv_cache="f32")),
    (["import", "gpt2"], dict(family="gpt2", size="tiny", layers=None, prefill=False, past=8, tokens=8, out=None)),
    (["generate", "gpt2"], dict(model="gpt2", size="tiny", attention="default", prompt_len=8, tokens=16, max_context=1024,
                                prefill_len=8, runner="numpy", seed=0, check=False, quant="none")),
    (["build", "d"], dict(dir="d", ray=None, workers=None)),
    # values as the types the commands compute with; --quant alone is w4a8
    (["compile", "llama", "--seed", "3", "--max-context", "64", "--tile", "32", "--clock", "250.5", "--quant",
      "--group-size", "32", "--csim", "--dse", "--fifo-tradeoff", "--force", "--plan", "p.json", "--replace", "r.py",
      "--kv-cache", "f16"],
     dict(program="llama", seed=3, max_context=64, tile=32, clock=250.5, quant="w4a8", group_size=32, csim=True, dse=True,
          fifo_tradeoff=True, force=True, plan="p.json", replace="r.py", kv_cache="f16")),
    (["import", "qwen2", "--layers", "2", "--past", "3", "--tokens", "5", "--prefill", "--weights", "w", "--out", "o"],
     dict(layers=2, past=3, tokens=5, prefill=True, weights="w", out="o")),
    (["generate", "--model-dir", "m", "--layers", "1", "--prompt-len", "2", "--tokens", "3", "--max-context", "9",
      "--prefill-len", "1", "--seed", "4", "--check", "--attention", "sdpa", "--quant", "w8a8"],
     dict(model=None, model_dir="m", layers=1, prompt_len=2, tokens=3, max_context=9, prefill_len=1, seed=4, check=True,
          attention="sdpa", quant="w8a8")),
    (["build", "d", "--ray", "h:1", "--workers", "2"], dict(ray="h:1", workers=2)),
    (["-q", "models"], dict(command="models", quiet=True, verbose=False)),
    (["--verbose", "itensor"], dict(command="itensor", quiet=False, verbose=True)),
])
def test_each_command_parses_its_arguments_to_the_documented_values(argv, want):
    from toolchain.cli import build_parser

    args = vars(build_parser().parse_args(argv))
    got = {k: args[k] for k in want}
    assert got == want and [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize(("argv", "message"), [
    (["compile", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["compile", "--max-context", "0"], "argument --max-context: must be >= 1, got 0"),
    (["compile", "--tile", "-4"], "argument --tile: must be >= 1, got -4"),
    (["compile", "--clock", "0"], "argument --clock: must be > 0, got 0"),
    (["compile", "--clock", "nan"], "argument --clock: must be > 0, got nan"),
    (["compile", "--clock", "fast"], "argument --clock: not a number: 'fast'"),
    (["compile", "--group-size", "0"], "argument --group-size: must be >= 1, got 0"),
    (["compile", "--size", "huge"], "argument --size: invalid choice: 'huge'"),
    (["generate", "gpt2", "--layers", "0"], "argument --layers: must be >= 1, got 0"),
    (["generate", "gpt2", "--prompt-len", "0"], "argument --prompt-len: must be >= 1, got 0"),
    (["generate", "gpt2", "--tokens", "0"], "argument --tokens: must be >= 1, got 0"),
    (["generate", "gpt2", "--max-context", "0"], "argument --max-context: must be >= 1, got 0"),
    (["generate", "gpt2", "--prefill-len", "0"], "argument --prefill-len: must be >= 1, got 0"),
    (["generate", "gpt2", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["generate", "gpt2", "--attention", "flash"], "argument --attention: invalid choice: 'flash'"),
    (["import", "gpt2", "--past", "many"], "argument --past: invalid int value: 'many'"),
    (["build", "d", "--workers", "two"], "argument --workers: invalid int value: 'two'"),
    (["-q", "-v", "models"], "argument -v/--verbose: not allowed with argument -q/--quiet"),
    ([], "the following arguments are required: COMMAND"),
])
def test_an_argument_out_of_its_range_is_a_usage_error(argv, message, capsys):
    """argparse rejects it before any work: exit code 2 and a message naming the argument."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: streamdsl") and f"error: {message}" in err


def test_import_prefill_imports_the_prompt_step(tmp_path, capsys):
    """`--prefill --tokens 3` imports the step that reads a 3-token prompt (not a decode step) and
    checks it against eager; `--past` (the decode step's cache) does not apply to it."""
    out = tmp_path / "imp"
    argv = ["-q", "import", "gpt2", "--layers", "1", "--prefill", "--tokens", "3", "--past", "0", "--out", str(out)]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert line.startswith("gpt2-tiny prefill") and "(ok," in line, line
    assert "tensor<1x3x64xf32>" in (out / "imported.mlir").read_text()


@pytest.mark.parametrize("verbose", [True, False])
def test_the_traceback_of_an_error_only_with_verbose(verbose, capsys):
    assert main([*(["-v"] if verbose else []), "import", "gpt3"]) == 2
    err = capsys.readouterr().err
    assert "unknown model family 'gpt3'" in err and ("Traceback (most recent call last)" in err) == verbose
