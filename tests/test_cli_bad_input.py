"""Every hostile probe of the command lines, as a table: each ends in one message naming the
culprit and the documented exit code (2 bad input, 1 failed verification), never a traceback,
and leaves the user's files as they were."""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from toolchain import cli, opt

KERNEL = """func.func @k(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = dataflow.kernel "k"(%x) : (tensor<64x64xf32>) -> tensor<64x64xf32> {
  ^bb0(%xa: tensor<64x64xf32>):
    BODY
    dataflow.yield %o : tensor<64x64xf32>
  }
  func.return %y : tensor<64x64xf32>
}
"""
R = "!dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>"
T = "!dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d1, d0)>"
PLAN = '{"version": 1, "tile": 32, "clock_mhz": 250, "hbm_striping": false, "lanes": {}}'  # a design plan as `compile --dse` writes it
HUGE = "!dataflow.itensor<16x16xf32, [1000000, 1000000, 4, 4] * [0, 0, 16, 16], (d0, d1, d2, d3) -> (d2, d3)>"


def kernel(body: str) -> str:
    return KERNEL.replace("BODY", body)


def copy(stream: str, depth: str = "", load: str = R) -> str:
    return kernel(f"""%s = dataflow.dma_load %xa {depth} : tensor<64x64xf32> -> {load}
    %o = dataflow.dma_store %s : {load} -> tensor<64x64xf32>""")


@dataclass
class Probe:
    tool: str  # "opt" (streamdsl-opt) or "cli" (streamdsl)
    argv: list[str]  # {tmp} is the test's directory
    code: int
    message: str  # a substring of stderr
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    unchanged: tuple[str, ...] = ()  # files that must keep their content


PROBES: dict[str, Probe] = {
    # -- streamdsl-opt: files -------------------------------------------------------------------
    "opt-missing-file": Probe("opt", ["{tmp}/nope.mlir"], 2, "cannot read"),
    "opt-empty-file": Probe("opt", ["{tmp}/e.mlir"], 2, "is empty", {"e.mlir": ""}),
    "opt-blank-file": Probe("opt", ["{tmp}/e.mlir"], 2, "is empty", {"e.mlir": "\n  \n"}),
    "opt-binary-file": Probe("opt", ["{tmp}/b.mlir"], 2, "is not UTF-8 text", {"b.mlir": bytes(range(128, 256))}),
    "opt-malformed": Probe("opt", ["{tmp}/m.mlir"], 2, "Expected argument or type", {"m.mlir": "func.func @f( {"}),
    "opt-bad-block-name": Probe("opt", ["{tmp}/n.mlir"], 2, "Invalid Block name format",
                                {"n.mlir": "builtin.module {\n^0(%a : i32):\n}\n"}),
    "opt-directory": Probe("opt", ["{tmp}"], 2, "Is a directory"),
    "opt-extension": Probe("opt", ["{tmp}/p.txt"], 2, "Unrecognized file extension", {"p.txt": "builtin.module {}"}),
    "opt-unknown-op": Probe("opt", ["{tmp}/u.mlir"], 2, "foo.bar is not registered", {"u.mlir": '"foo.bar"() : () -> ()'}),
    "opt-stray-quote": Probe("opt", ["{tmp}/q.mlir"], 2, "closing string literal",
                             {"q.mlir": 'test.op"() : () -> !dataflow.itensor<1xf32, [1] * [0], (d0) -> (d0, d0)>'}),
    # -- streamdsl-opt: passes and options --------------------------------------------------------
    "opt-unknown-pass": Probe("opt", ["{tmp}/k.mlir", "-p", "no-such-pass"], 2, "Unrecognized passes",
                              {"k.mlir": copy(R)}),
    "opt-bad-pass-option": Probe("opt", ["{tmp}/k.mlir", "-p", "insert-converters{bogus=1}"], 2,
                                 "not found in expected arguments", {"k.mlir": copy(R)}),
    "opt-bad-pass-value": Probe("opt", ["{tmp}/k.mlir", "-p", "size-fifos{mode=zzz}"], 2, "mode 'zzz' is unknown",
                                {"k.mlir": copy(R)}),
    "opt-unknown-flag": Probe("opt", ["{tmp}/k.mlir", "--no-such-flag"], 2, "unrecognized arguments",
                              {"k.mlir": copy(R)}),
    # -- streamdsl-opt: -o ------------------------------------------------------------------------
    "opt-o-failing-pass-keeps-input": Probe(
        "opt", ["{tmp}/k.mlir", "-p", "size-fifos{mode=zzz}", "-o", "{tmp}/k.mlir"], 2, "mode 'zzz'",
        {"k.mlir": copy(R)}, unchanged=("k.mlir",)),
    "opt-o-failing-pass-keeps-output": Probe(
        "opt", ["{tmp}/k.mlir", "-p", "no-such-pass", "-o", "{tmp}/old.mlir"], 2, "Unrecognized passes",
        {"k.mlir": copy(R), "old.mlir": "previous"}, unchanged=("old.mlir",)),
    "opt-o-missing-directory": Probe("opt", ["{tmp}/k.mlir", "-o", "{tmp}/no/x.mlir"], 2, "does not exist",
                                     {"k.mlir": copy(R)}),
    "opt-o-is-directory": Probe("opt", ["{tmp}/k.mlir", "-o", "{tmp}"], 2, "is a directory", {"k.mlir": copy(R)}),
    # -- streamdsl-opt: IR the core must refuse ---------------------------------------------------
    "ir-2^28-trips-mod-map": Probe("opt", ["{tmp}/t.mlir"], 2, "limit is 1048576",
                                   {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [268435456] * [1], (d0) -> (d0 mod 64)>'}),
    "ir-trips-past-int64": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "< 2^63",
                                 {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [18446744073709551616] * [1], (d0) -> (d0)>'}),
    "ir-offsets-wrap": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "offsets past 2^63",
                             {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [3] * [4611686018427387904], (d0) -> (d0)>'}),
    "ir-mod-0": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "divides by 0",
                      {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [4] * [1], (d0) -> (d0 mod 0)>'}),
    "ir-floordiv-0-folded": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "positive constant",
                                  {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [1] * [1], (d0) -> ((3 floordiv 0))>'}),
    "ir-semi-affine": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "positive constant",
                            {"t.mlir": '"test.op"() : () -> !dataflow.itensor<1xf32, [4] * [1], (d0) -> (d0 mod d0)>'}),
    "ir-stream-depth-0": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "depth must be >= 1",
                               {"t.mlir": '"test.op"() : () -> !dataflow.stream<tensor<4xf32>, depth = 0>'}),
    "ir-stream-depth-past-int64": Probe("opt", ["{tmp}/t.mlir", "--allow-unregistered-dialect"], 2, "does not fit in int64",
                                       {"t.mlir": '"test.op"() : () -> !dataflow.stream<tensor<4xf32>, depth = 9223372036854775808>'}),
    "ir-depth-attribute-0": Probe("opt", ["{tmp}/k.mlir"], 2, "must be a positive integer",
                                  {"k.mlir": copy(R, "{depth = 0 : i64}")}),
    "ir-depth-attribute-malformed": Probe("opt", ["{tmp}/k.mlir"], 2, "must be a positive integer",
                                          {"k.mlir": copy(R, '{depth = "deep"}')}),
    "ir-cycle": Probe("opt", ["{tmp}/k.mlir"], 2, "a cycle in the kernel's stream graph", {"k.mlir": kernel(
        f"""%a:2 = dataflow.itensor_fork %b#0 : {R} -> {R}, {R}
    %b:2 = dataflow.itensor_fork %a#0 : {R} -> {R}, {R}
    %o = dataflow.dma_store %b#1 : {R} -> tensor<64x64xf32>""")}),
    "ir-reordering-cast-sized": Probe("opt", ["{tmp}/k.mlir", "-p", "size-fifos"], 2, "insert a converter", {"k.mlir": kernel(
        f"""%s = dataflow.dma_load %xa : tensor<64x64xf32> -> {R}
    %t = dataflow.itensor_cast %s : {R} -> {T}
    %o = dataflow.dma_store %t : {T} -> tensor<64x64xf32>""")}),
    "ir-10^12-tokens-sized": Probe("opt", ["{tmp}/k.mlir", "-p", "size-fifos"], 2, "timing model's limit",
                                   {"k.mlir": copy(R, load=HUGE)}),
    "ir-dma-shape-mismatch": Probe("opt", ["{tmp}/k.mlir"], 2, "must have the shape [64, 64]", {"k.mlir": kernel(
        f"""%s = dataflow.dma_load %xa : tensor<64x64xf32> -> {R}
    %h = "dataflow.dma_store"(%s) : ({R}) -> tensor<64x32xf32>
    %o = dataflow.dma_store %s : {R} -> tensor<64x64xf32>""")}),
    # -- streamdsl compile --------------------------------------------------------------------------
    "compile-unknown-program": Probe("cli", ["compile", "gpt3", "--out", "{tmp}/o"], 2, "unknown program 'gpt3'"),
    "compile-unknown-size": Probe("cli", ["compile", "--size", "huge"], 2, "invalid choice: 'huge'"),
    "compile-negative-seed": Probe("cli", ["compile", "--seed", "-1"], 2, "must be >= 0"),
    "compile-seed-not-a-number": Probe("cli", ["compile", "--seed", "x"], 2, "invalid _natural value"),
    "compile-out-is-a-file": Probe("cli", ["compile", "--size", "tiny", "--out", "{tmp}/f.txt"], 2, "is a file",
                                   {"f.txt": "data"}, unchanged=("f.txt",)),
    "compile-out-foreign-directory": Probe("cli", ["compile", "--size", "tiny", "--out", "{tmp}/d"], 2, "--force",
                                           {"d/thesis.tex": "precious"}, unchanged=("d/thesis.tex",)),
    "compile-out-parent-of-cwd": Probe("cli", ["compile", "--size", "tiny", "--out", ".."], 2,
                                       "contains the current directory", {"inner/.keep": "", "notes.txt": "keep"},
                                       cwd="inner", unchanged=("notes.txt",)),
    "compile-out-under-a-file": Probe("cli", ["compile", "--size", "tiny", "--out", "{tmp}/f.txt/o"], 2, "is a file",
                                      {"f.txt": "data"}, unchanged=("f.txt",)),
    "compile-csim-without-compiler": Probe("cli", ["compile", "--size", "tiny", "--csim", "--out", "{tmp}/o"], 2,
                                           "needs a C++17 compiler", env={"CXX": "no-such-g++"}),
    "compile-dse-and-plan": Probe("cli", ["compile", "gpt2", "--dse", "--plan", "{tmp}/p.json"], 2,
                                  "give --dse (explore a plan) or --plan FILE (build one), not both", {"p.json": PLAN}),
    "compile-plan-and-another-tile": Probe("cli", ["compile", "gpt2", "--plan", "{tmp}/p.json", "--tile", "16"], 2,
                                           "--tile 16 and the plan's tile 32", {"p.json": PLAN}),
    "compile-plan-and-another-clock": Probe("cli", ["compile", "gpt2", "--plan", "p.json", "--clock", "300"], 2,
                                            "--clock 300 and the plan's clock 250 MHz (p.json) disagree; give one of them",
                                            {"p.json": PLAN}, cwd="."),
    "compile-group-size-of-a-dsl-program": Probe("cli", ["compile", "ffn-block", "--group-size", "32"], 2,
                                                 "--quant, --group-size, --kv-cache and --replace apply to model families"),
    "compile-kv-cache-of-a-dsl-program": Probe("cli", ["compile", "ffn-block", "--kv-cache", "f16"], 2,
                                               "--quant, --group-size, --kv-cache and --replace apply to model families"),
    "compile-kv-cache-in-bf16": Probe("cli", ["compile", "gpt2", "--kv-cache", "bf16"], 2,
                                      "argument --kv-cache: invalid choice: 'bf16'"),
    "generate-model-and-model-dir": Probe("cli", ["generate", "gpt2", "--model-dir", "{tmp}"], 2,
                                          "give a zoo MODEL (see `streamdsl models`) or --model-dir DIR, not both"),
    "generate-unknown-runner": Probe("cli", ["generate", "gpt2", "--runner", "fpga"], 2,
                                     "--runner fpga: choose one of design, numpy"),
    "generate-cache-one-row-short": Probe("cli", ["generate", "gpt2", "--prompt-len", "4", "--tokens", "6", "--max-context", "8"],
                                          2, "--prompt-len 4 and --tokens 6 need a cache of 9 rows; raise --max-context (8)"),
    "no-command": Probe("cli", [], 2, "required: COMMAND"),
    "unknown-command": Probe("cli", ["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    # -- streamdsl import ---------------------------------------------------------------------------
    "import-unknown-family": Probe("cli", ["import", "gpt3"], 2, "unknown model family 'gpt3'"),
    "import-unknown-size": Probe("cli", ["import", "gpt2", "--size", "huge"], 2, "unknown size 'huge'"),
    "import-layers-0": Probe("cli", ["import", "gpt2", "--layers", "0"], 2, "--layers 0: gpt2-tiny has 2 decoder layers"),
    "import-layers-negative": Probe("cli", ["import", "gpt2", "--layers", "-1"], 2, "--layers -1"),
    "import-layers-too-many": Probe("cli", ["import", "llama", "--layers", "7"], 2, "keep between 1 and 2"),
    "import-past-negative": Probe("cli", ["import", "gpt2", "--past", "-5"], 2, "--past -5: decode_step needs past_len >= 1"),
    "import-past-too-long": Probe("cli", ["import", "gpt2", "--past", "1000000000"], 2, "positions; give at most"),
    "import-tokens-0": Probe("cli", ["import", "gpt2", "--prefill", "--tokens", "0"], 2, "--tokens 0: prefill needs"),
    "import-weights-missing": Probe("cli", ["import", "gpt2", "--weights", "{tmp}/none"], 2, "not a directory"),
    "import-weights-empty-dir": Probe("cli", ["import", "gpt2", "--weights", "{tmp}/w"], 2, "no *.safetensors file",
                                      {"w/readme.txt": "x"}),
    "import-weights-corrupt": Probe("cli", ["import", "gpt2", "--weights", "{tmp}/w"], 2,
                                    "not a readable safetensors file", {"w/model.safetensors": b"\x00\x01garbage"}),
    "import-out-is-a-file": Probe("cli", ["import", "gpt2", "--out", "{tmp}/f.txt"], 2, "is a file", {"f.txt": "x"},
                                  unchanged=("f.txt",)),
    "import-out-foreign-directory": Probe("cli", ["import", "gpt2", "--out", "{tmp}/d"], 2, "not empty",
                                          {"d/a": "a"}, unchanged=("d/a",)),
}


def _prepare(probe: Probe, tmp: Path) -> tuple[list[str], dict[str, bytes]]:
    for name, content in probe.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = {name: (tmp / name).read_bytes() for name in probe.unchanged}
    return [a.replace("{tmp}", str(tmp)) for a in probe.argv], before


def _call(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse
        return int(exit_.code or 0)


@functools.cache
def _warm_import() -> None:
    """Time each probe, not the first import of torch and of transformers' model code (~8 s)."""
    from frontends import hf

    for family in ("gpt2", "llama"):
        hf.config(family)


@pytest.mark.parametrize("name", PROBES)
def test_bad_input(name, tmp_path, monkeypatch, capsys):
    probe = PROBES[name]
    argv, before = _prepare(probe, tmp_path)
    for key, value in probe.env.items():
        monkeypatch.setenv(key, value)
    if probe.cwd:
        monkeypatch.chdir(tmp_path / probe.cwd)
    if probe.argv[:1] == ["import"]:
        _warm_import()
    start = time.perf_counter()
    code = _call(opt.main if probe.tool == "opt" else cli.main, argv)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert (code, probe.message in err, "Traceback" in err) == (probe.code, True, False), err
    assert seconds < 10, f"{name} took {seconds:.1f} s"
    for file, content in before.items():
        assert (tmp_path / file).read_bytes() == content, f"{file} was changed"
    assert not [p for p in tmp_path.rglob(".*") if ".staging-" in p.name or ".tmp-" in p.name]


def test_the_table_covers_enough_probes():
    assert len(PROBES) >= 40


MEMORY_LIMIT = 1 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT + (512 << 20), MEMORY_LIMIT + (512 << 20)))


@pytest.mark.parametrize("name", ["ir-2^28-trips-mod-map", "ir-10^12-tokens-sized", "opt-stray-quote"])
def test_the_resource_probes_stay_within_1_gb_and_10_s_as_console_scripts(name, tmp_path):
    """The installed console script, under an address-space limit (1 GiB of work on top of the
    interpreter's own 512 MiB of mappings) and a 10 s timeout."""
    probe = PROBES[name]
    argv, _ = _prepare(probe, tmp_path)
    script = Path(sys.executable).with_name("streamdsl-opt")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=10, preexec_fn=_limited, env=env)
    assert (proc.returncode, probe.message in proc.stderr, "Traceback" in proc.stderr) == (2, True, False), proc.stderr
