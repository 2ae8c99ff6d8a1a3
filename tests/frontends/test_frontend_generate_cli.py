"""`streamdsl generate`: greedy tokens through the block design, from the zoo or --model-dir."""

from __future__ import annotations

import pytest

from frontends import hf
from toolchain.cli import main


def _tokens(out: str, label: str) -> list[int]:
    line = next(li for li in out.splitlines() if li.startswith(f"{label}:"))
    return [int(t) for t in line.split(":")[1].split()]


def test_generate_checks_against_torch(capsys):
    argv = ["-q", "generate", "gpt2", "--layers", "1", "--prompt-len", "5", "--tokens", "4", "--max-context", "16",
            "--prefill-len", "3", "--check"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(_tokens(out, "prompt")) == 5 and len(_tokens(out, "tokens")) == 4
    assert _tokens(out, "tokens") == _tokens(out, "torch") and "(ok," in out


def test_generate_through_the_compiled_design(capsys):
    """--runner design: the decode and prefill blocks lowered to one design each, simulated."""
    argv = ["-q", "generate", "gpt2", "--layers", "1", "--prompt-len", "5", "--tokens", "4", "--max-context", "16",
            "--prefill-len", "3", "--runner", "design", "--check"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert _tokens(out, "tokens") == _tokens(out, "torch") and "(ok," in out


def test_generate_from_model_dir(tmp_path, capsys):
    """A checkpoint as save_pretrained writes it gives the same tokens as the model it was saved from."""
    hf.build("olmo", "tiny", num_layers=1, attention="default", seed=2).save_pretrained(tmp_path)
    assert main(["-q", "generate", "--model-dir", str(tmp_path), "--tokens", "3", "--max-context", "16", "--check"]) == 0
    assert "same tokens" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["generate"], "give a zoo MODEL (see `streamdsl models`) or --model-dir DIR"),
    (["generate", "gpt2", "--model-dir", "x"], "or --model-dir DIR, not both"),
    (["generate", "gpt2", "--runner", "fpga"], "--runner fpga: choose one of design, numpy"),
    (["generate", "gpt2", "--prompt-len", "10", "--tokens", "8", "--max-context", "16"],
     "need a cache of 17 rows; raise --max-context (16)"),
    (["generate", "mistral", "--size", "paper"], "mistral has no `paper` size"),
])
def test_generate_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
