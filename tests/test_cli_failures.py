"""Every verification failure of the command line exits 1 (a usage error exits 2): the imported
IR disagreeing with PyTorch, the compiled design disagreeing with its reference or stalling."""

from __future__ import annotations

import torch

import frontends
from toolchain.cli import main


def test_import_exits_1_when_the_imported_ir_disagrees_with_pytorch(tmp_path, monkeypatch, capsys) -> None:
    """The weights change after the export: eager PyTorch now computes something else than the
    imported IR, which is what a wrong op lowering looks like from outside."""
    real = frontends.from_torch

    def then_perturb(module, *inputs, **kwargs):
        program = real(module, *inputs, **kwargs)
        with torch.no_grad():
            for p in module.parameters():
                p.data = p.data * 1.5 + 0.01  # new storage: views the IR may hold keep the old values
        return program

    monkeypatch.setattr(frontends, "from_torch", then_perturb)
    out = tmp_path / "imp"
    assert main(["-q", "import", "gpt2", "--layers", "1", "--past", "2", "--out", str(out)]) == 1
    line = capsys.readouterr().out
    assert line.startswith("gpt2-tiny decode: max abs error") and "(FAILED," in line


def _compile(tmp_path, *flags: str) -> int:
    return main(["-q", "compile", "--size", "tiny", *flags, "--out", str(tmp_path / "out")])


def test_compile_exits_1_when_the_simulated_design_disagrees_with_its_reference(tmp_path, monkeypatch, capsys) -> None:
    import dataclasses

    from toolchain import examples

    real = examples.EXAMPLES["ffn-block"]

    def off_by_one(*args):
        example = real(*args)
        return dataclasses.replace(example, reference=lambda *xs: example.reference(*xs) + 1.0)

    monkeypatch.setitem(examples.EXAMPLES, "ffn-block", off_by_one)
    assert _compile(tmp_path) == 1
    assert "FAILED: functional simulation differs from torch by 1" in capsys.readouterr().err


def test_compile_exits_1_when_the_sized_fifos_stall(tmp_path, monkeypatch, capsys) -> None:
    """Vitis' default depth (2) everywhere instead of the LP's: the timed simulation stalls."""
    import streamdsl as sd

    real = sd.compile
    monkeypatch.setattr(sd, "compile", lambda program, fifo_sizing="lp": real(program, "default"))
    assert _compile(tmp_path) == 1
    err = capsys.readouterr().err
    assert "FAILED: sized FIFOs stall" in err or "FAILED: timed simulation deadlocks" in err


def test_compile_exits_1_when_csim_disagrees_with_the_simulator(tmp_path, monkeypatch, capsys) -> None:
    import hls_backend

    def wrong(design, project, *arrays, expected=None):
        return {"csim_vs_sim_max_abs": 0.5, "deadlock_free": True, "csim_seconds": {"sequential": 0.1, "threaded": 0.1}}

    monkeypatch.setattr(hls_backend, "csim_verification", wrong)
    assert _compile(tmp_path, "--csim") == 1
    assert "FAILED: C simulation differs from the functional simulator by 0.5" in capsys.readouterr().err


def test_generate_exits_1_when_the_design_and_pytorch_generate_differently(monkeypatch, capsys) -> None:
    """PyTorch generates with other weights than the design was imported from (what a wrong
    lowering looks like from outside): `generate --check` fails."""
    from frontends import host

    real = host.torch_generate

    def with_other_weights(model, prompt, n_tokens):
        with torch.no_grad():
            for p in model.parameters():
                p.data = p.data * 1.5 + 0.01
        return real(model, prompt, n_tokens)

    monkeypatch.setattr(host, "torch_generate", with_other_weights)
    argv = ["-q", "generate", "gpt2", "--layers", "1", "--prompt-len", "3", "--tokens", "2", "--max-context", "8",
            "--prefill-len", "3", "--check"]
    assert main(argv) == 1
    assert "(FAILED, tolerance 0.0001)" in capsys.readouterr().out


def test_a_deadlock_raised_by_a_check_exits_1(tmp_path, monkeypatch, capsys) -> None:
    """The reconvergent diamond at Vitis' default depths: the functional simulation itself
    deadlocks (a DeadlockError, not a failure in the report), and that is a failed check too."""
    import numpy as np
    from dsl import programs as P

    import streamdsl as sd
    from toolchain import examples

    case = P.diamond(2, 64, 16)
    diamond = examples.Example("diamond", {}, case.program, lambda seed: list(case.inputs(np.random.default_rng(seed))),
                               case.reference)
    monkeypatch.setitem(examples.EXAMPLES, "ffn-block", lambda *sizes: diamond)
    real = sd.compile
    monkeypatch.setattr(sd, "compile", lambda program, fifo_sizing="lp": real(program, "default"))
    assert _compile(tmp_path) == 1
    err = capsys.readouterr().err
    assert "streamdsl compile: verification failed: " in err and "fork(copy)->mul" in err
