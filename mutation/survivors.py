"""Known survivors, put back one at a time: small realistic bugs that passed the whole suite
(issue 18's nine) and more of their kinds, each with the tests that now kill it. The bug is
written into a scratch copy of the checkout (build/mutation/survivors/), the named tests run
there, and the bug counts as killed if they fail. Fast enough to run after changing the code
these bugs live in:

    python mutation/survivors.py                 # every known survivor
    python mutation/survivors.py converter_guard # one of them

A bug whose text is no longer found exactly once is reported as stale (the code was rewritten):
write the same bug into the new code here, so the tests keep being checked against it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from run import SCRATCH, copy_checkout


@dataclass(frozen=True)
class Bug:
    why: str  # what goes wrong for a user
    path: str
    original: str
    mutant: str
    tests: tuple[str, ...]


BUGS: dict[str, Bug] = {
    "lp_weights_tokens": Bug(
        "the LP objective weights tokens, not bits: it minimises the wrong quantity",
        "lowering/fifo_sizing.py", "out.append(e.token_bits * len(w) / span)", "out.append(len(w) / span)",
        ("tests/fifo/test_lp_bits.py::test_lp_needs_no_more_bits_than_any_schedule_without_waits",)),
    "repair_minus_lag": Bug(
        "a start the solver left too early is moved by -lag instead of +lag: a read before its write",
        "lowering/fifo_sizing.py", "late = shift[src] + lags", "late = shift[src] - lags",
        ("tests/fifo/test_lp_bits.py::test_a_start_that_breaks_a_lag_is_pushed_to_the_least_schedule_that_keeps_them_all",)),
    "port_span_plus_1": Bug(
        "two accesses to one port per iteration fit one cycle: the timing model is a cycle per iteration fast",
        "lowering/timing.py", "ts[-1] - ts[0] + self.token_cycles(p) for p, ts", "ts[-1] - ts[0] + self.token_cycles(p) - 1 for p, ts",
        ("tests/fifo/test_timing_cycles.py::test_two_accesses_to_one_port_per_iteration_take_two_cycles",)),
    "adder_tree_floor": Bug(
        "a reduction of n elements (n not a power of two) gets a tree one level too shallow",
        "lowering/timing.py", "math.ceil(math.log2(reduced))", "math.floor(math.log2(reduced))",
        ("tests/fifo/test_timing_cycles.py::test_a_reduction_takes_an_adder_tree_of_ceil_log2_levels",)),
    "tile_copy_ii_2": Bug(
        "the DMAs' word loops ask Vitis for II=2: half-rate data movers",
        "hls_backend/emit.py", 'DMA_PIPELINE = f"#pragma HLS pipeline II=1  // depth',
        'DMA_PIPELINE = f"#pragma HLS pipeline II=2  // depth',
        ("tests/hls/test_pragmas.py::test_every_data_mover_is_one_pipelined_loop_over_beats",)),
    "converter_guard": Bug(
        "the converter's bank-reuse guard lets its writer run two slabs ahead, overwriting the bank being read",
        "hls_backend/emit.py", "<= k / {nd} + 1", "<= k / {nd} + 2",
        ("tests/hls/test_converter_guard.py::test_a_converter_slower_out_than_in_keeps_its_banks_apart",
         "tests/hls/test_interleavings.py::test_every_seeded_interleaving_matches_the_simulator")),
    "where_lt_as_le": Bug(
        "sd.where(a < b, ...) compiles to <=: wrong on ties",
        "streamdsl/dsl/ops.py", '"<": "olt"', '"<": "ole"',
        ("tests/dsl/test_edge_inputs.py::test_where_agrees_with_numpy_on_ties",)),
    "stepped_range_end": Bug(
        "a loop index's range ends at stop - 1, not at its last value: wrong bounds checks for steps above 1",
        "streamdsl/dsl/kernel.py", "Index(body.args[0], start, start + (trip - 1) * step,", "Index(body.args[0], start, stop - 1,",
        ("tests/dsl/test_edge_inputs.py::test_a_stepped_loop_indexes_what_pythons_range_yields",
         "tests/dsl/test_edge_inputs.py::test_a_stepped_loop_out_of_bounds_reports_the_range_python_yields")),
    "import_exit_0": Bug(
        "`streamdsl import` exits 0 when the imported IR disagrees with PyTorch",
        "toolchain/cli.py", "    return EXIT_OK if passed else EXIT_FAILED\n", "    return EXIT_OK\n",
        ("tests/test_cli_failures.py::test_import_exits_1_when_the_imported_ir_disagrees_with_pytorch",)),
    "generate_exit_0": Bug(
        "`streamdsl generate --check` exits 0 when the design's tokens or logits differ from PyTorch's",
        "toolchain/cli.py", "    return EXIT_OK if same else EXIT_FAILED\n", "    return EXIT_OK\n",
        ("tests/test_cli_failures.py::test_generate_exits_1_when_the_design_and_pytorch_generate_differently",)),
    "build_exit_0": Bug(
        "`streamdsl build` exits 0 when a job failed",
        "toolchain/cli.py", '    return EXIT_FAILED if section["failed"] else EXIT_OK\n', "    return EXIT_OK\n",
        ("tests/test_build.py::test_build_exits_1_when_a_job_fails",)),
    "verification_error_exit_2": Bug(
        "a failed check raised as an exception (a deadlock in the simulator) exits 2, as a usage error",
        "streamdsl/errors.py", '(deadlock, wrong results, does not fit on chip)."""\n\n    exit_code = EXIT_FAILED',
        '(deadlock, wrong results, does not fit on chip)."""\n\n    exit_code = EXIT_USAGE',
        ("tests/test_cli_failures.py::test_a_deadlock_raised_by_a_check_exits_1",)),
    "filecheck_installed_opt": Bug(
        "the filecheck tests run whatever `streamdsl-opt` is on PATH, not the checkout's",
        "tests/filecheck/lit.cfg", 'config.substitutions.append(("streamdsl-opt", opt))\n', "",
        ("tests/test_filecheck.py::test_filecheck_runs_the_checkouts_code_not_an_installed_one",)),
    "engine_mux_free": Bug(
        "an engine's input multiplexers cost nothing: the model charges less logic than the emitted engine has",
        "lowering/resources.py", "logic = logic + table.phase_mux.usage(_mux_bits(task, shared))", "logic = logic",
        ("tests/lowering/test_form_engines.py::test_an_engine_is_charged_its_first_part_once_with_its_ports_and_multiplexers",)),
    "engine_reads_other_phase": Bug(
        "an engine's phase reads another phase's stream: it computes with the wrong weights and activation",
        "hls_backend/cxx.py", 'f"ph == {k} ? {s}.read() : "', 'f"ph != {k} ? {s}.read() : "',
        ("tests/lowering/test_form_engines.py::test_engines_compute_what_the_parts_computed[gpt2 attention and mlp]",)),
    "engine_first_phase_bounds": Bug(
        "an engine runs every phase with the first phase's trip counts: later phases read too many or too few tiles",
        "hls_backend/body.py", 'self.names[value] = f"{table}[ph]"', "self.names[value] = str(values[0])",
        ("tests/lowering/test_form_engines.py::test_engines_compute_what_the_parts_computed[gpt2 attention and mlp]",)),
    "tile_words_read_twice": Bug(
        "a tile two ops read is built as a memory of words: two reads of a word a cycle from a simple dual-port RAM",
        "lowering/timing.py", "if not isinstance(read, ITensorReadOp) or not token.has_one_use() or not isinstance(loop, scf.ForOp):",
        "if not isinstance(read, ITensorReadOp) or not isinstance(loop, scf.ForOp):",
        ("tests/hls/test_pragmas.py::test_a_tile_read_twice_stays_cut_into_lanes",)),
    "streamed_at_any_pace": Bug(
        "a tile streams through a reader slower than its beats: the beats pile up in registers the count does not hold",
        "lowering/timing.py", "return issue_cycles(reader, lanes) <= _it(token.owner.operands[0]).beats", "return True",
        ("tests/hls/test_streamed_tiles.py::test_any_other_tile_keeps_its_memory",)),
    "streamed_tile_counted_past_itself": Bug(
        "a one-beat tile streamed through is counted as two beats: the count charges registers the emitted C++ never holds",
        "lowering/memory.py", "bits = min(bits, 2 * op.operands[0].type.itensor.beat_bits)",
        "bits = 2 * op.operands[0].type.itensor.beat_bits",
        ("tests/hls/test_streamed_tiles.py::test_a_streamed_tile_is_counted_as_two_beats_at_most",)),
    "streamed_reader_ignores_last_beat": Bug(
        "a streamed tile's reader ends its issue after the first beat, not its latency after the last: the model's loop is too shallow",
        "lowering/timing.py", "finish = max(finish, max(streamed) + finish - start - self.issue(inner) + 1)", "finish = finish",
        ("tests/hls/test_streamed_tiles.py::test_the_reader_starts_at_the_first_beat",)),
    "restream_one_end": Bug(
        "a stream retyped to other beats re-times its writer only: the reader's schedule keeps the old beats",
        "streamdsl/wiring.py", "ends[edge.src], ends[edge.dst] = value.owner, next(iter(value.uses)).operation",
        "ends[edge.src] = value.owner",
        ("tests/lowering/test_narrow_streams.py::test_the_graph_it_is_given_is_left_the_narrowed_kernels",)),
    "prefill_block_one_token": Bug(
        "model_block builds the decode block whatever seq_len asks: roofline.py's TTFT would time one token as a chunk",
        "toolchain/models.py", "block = import_block(quantize_model(model, quant), seq_len=seq_len, max_context=max_context,",
        "block = import_block(quantize_model(model, quant), seq_len=1, max_context=max_context,",
        ("tests/lowering/test_prefill_block.py::test_a_prefill_block_matches_torch_and_the_decode_block_token_by_token",
         "tests/lowering/test_roofline.py::test_the_ttft_is_the_prefill_designs_cycles_per_prompt_token")),
    "channel_choice_sized_first": Bug(
        "the HBM channels are chosen by the sized makespan of grown lanes that do not fit yet: Qwen2.5's slower allocation",
        "lowering/dse.py", "return min(row for row in rows if row[1] <= fastest * (1 + CHANNEL_TIE))", "return min(rows)",
        ("tests/lowering/test_dse.py::test_the_channel_choice_goes_by_the_unbounded_makespan_and_breaks_near_ties_sized",)),
    "narrow_streams_unchecked": Bug(
        "streams are narrowed by their tokens' gaps alone: a narrowed token on the critical path makes the design slower",
        "lowering/transforms/narrow_streams.py", "if timed.makespan is not None and timed.makespan <= (run.makespan or 0):",
        "if timed.makespan is not None:",
        ("tests/lowering/test_narrow_streams.py::test_the_filecheck_kernel_narrows_off_the_critical_path_only",)),
    "fifo_word_ignores_beat": Bug(
        "a narrowed FIFO is counted at the default beat's width: the memory count and the SLR wires miss what narrowing saves",
        "streamdsl/graph.py", "return self.word_bits or min(self.token_bits, BEAT_BITS)", "return min(self.token_bits, BEAT_BITS)",
        ("tests/lowering/test_narrow_streams.py::test_narrowed_streams_compute_time_and_count_what_they_should",)),
}


def pytest(work: Path, tests: Sequence[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(work)})
    # exit 1 is "tests failed"; anything else (a collection error, no such test) says nothing about a bug
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest {' '.join(tests)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def judge(work: Path, bug: Bug) -> tuple[str, float]:
    """'killed', 'SURVIVED' or 'STALE' (its original text is not in the code exactly once)."""
    source = work / bug.path
    text = source.read_text()
    if text.count(bug.original) != 1:
        return "STALE", 0.0
    source.write_text(text.replace(bug.original, bug.mutant))
    start = time.perf_counter()
    try:
        proc = pytest(work, bug.tests)
    finally:
        source.write_text(text)
    return ("killed" if proc.returncode == 1 else "SURVIVED"), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bugs", nargs="*", choices=[[], *BUGS], default=[], metavar="BUG", help=", ".join(BUGS))
    args = parser.parse_args(argv)
    work = copy_checkout(SCRATCH / "survivors")
    names = args.bugs or list(BUGS)
    clean = pytest(work, sorted({t for name in names for t in BUGS[name].tests}))
    if clean.returncode:  # a failure with the bug put in must be the bug's
        raise SystemExit(f"the judging tests fail without any bug put in:\n{clean.stdout[-3000:]}")
    failed = 0
    for name in names:
        bug = BUGS[name]
        verdict, seconds = judge(work, bug)
        failed += verdict != "killed"
        print(f"{verdict:8s} {name:18s} {seconds:6.1f} s  {bug.path}: {bug.why}", flush=True)
        if verdict == "killed":
            print(f"{'':8s} by {', '.join(bug.tests)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
