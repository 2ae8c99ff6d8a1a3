"""benchmarks/roofline.py's rows beside the searched one: every clock and cache length explored at
the options the search chose, and the time to first token from the prefill design."""

from __future__ import annotations

import sys

import pytest

import streamdsl as sd
from lowering.dse import Plan
from streamdsl import quant
from tests.lowering.lowering_helpers import benchmark
from toolchain import models
from toolchain.models import model_block, plan_design


def test_the_ttft_is_the_prefill_designs_cycles_per_prompt_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPT-2 tiny at W8A8: the search at 250 MHz and cache length 8, then the prefill design of 2
    tokens at the options it chose; that design's plan, given back to a block of 2 tokens, times
    the same. (Every exploration gives the default plan at its clock: the rows, not the search, are
    tested here; tests/lowering/test_dse.py tests the search.)"""
    def default_plan(build, tiles, clock_mhz, seed, **_):  # noqa: ANN001, ANN202 - `explore`'s signature
        return Plan(tile=tiles[0], clock_mhz=clock_mhz, seed=seed, figures={"unbounded_makespan_cycles": 0, "evaluations": 0})

    monkeypatch.setattr(models, "explore", default_plan)
    roofline = benchmark("roofline")
    searched = roofline.measure("gpt2", "w8a8", 250.0, 8, 0, tile=16, fills=(1.0,), split_ports=("narrow",),
                                hbm_ports=("own",), loops=("nested",), size="tiny")
    (row,) = roofline.also("gpt2", "w8a8", searched, (250.0,), (8,), 2, 0, tile=16, size="tiny")
    assert row["cycles"] == searched["cycles"] and row["prefill_len"] == 2
    prefill = row["prefill"]
    assert row["ttft_ms"] == pytest.approx(row["layers"] * prefill["cycles"] / 2 / 250e3)
    block = model_block("gpt2", "tiny", 8, 16, quant=quant.scheme("w8a8"), seq_len=2)
    assert block.example.make_inputs(0)[0].shape[1] == 2
    plan_design(block.lowered.program.module, 16, Plan.from_json(prefill["plan"]))
    assert sd.compile(block.example.program).timed_simulation().makespan == prefill["cycles"] != row["cycles"]


@pytest.mark.parametrize("flag", ["--prefill-len", "--max-context", "--clock"])
def test_a_count_below_one_or_a_clock_of_zero_is_refused(flag: str, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["roofline.py", flag, "0"])
    with pytest.raises(SystemExit) as done:
        benchmark("roofline").main()
    assert done.value.code == 2
    assert f"argument {flag}: must be {'> 0' if flag == '--clock' else '>= 1'}, got 0" in capsys.readouterr().err


def test_a_design_beside_the_search_that_does_not_fit_is_explored_again_at_smaller_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 250 MHz the prefill design at the searched share 1.0 places on no SLR split, at 0.9 it does
    (kept); at 300 MHz it fits at no share and is as large at 0.9 as at 1.0 (its memory is over):
    the ladder stops there and the TTFT is the decode design's, the prompt a token at a time."""
    roofline = benchmark("roofline")
    tried = []

    def at_fill(block, label, tile, clock, seed, fill, **options):  # noqa: ANN001, ANN202 - `_at_fill`'s signature
        tried.append((label, fill))
        fits = "prefill" not in label or fill < 1.0 and clock == 250.0
        return {"cycles": 1000 + int(100 * fill), "fill": fill, "fits": True, "fits_slrs": fits, "resources": 1.2}

    monkeypatch.setattr(roofline, "_at_fill", at_fill)
    monkeypatch.setattr(models, "model_block", lambda *args, **kwargs: None)
    searched = {"cycles": 500, "fill": 1.0, "options": {}, "kv_cache": "f32", "layers": 2, "weight_bytes": 10, "block": None}
    rows = roofline.also("gpt2", "w8a8", searched, (250.0, 300.0), (8,), 4, 0)
    assert tried == [("gpt2 250 MHz cache 8 prefill 4", 1.0), ("gpt2 250 MHz cache 8 prefill 4", 0.9),
                     ("gpt2 300 MHz cache 8", 1.0), ("gpt2 300 MHz cache 8 prefill 4", 1.0), ("gpt2 300 MHz cache 8 prefill 4", 0.9)]
    assert [r["cycles"] for r in rows] == [500, 1100]
    assert [(r["prefill_len"], r["prefill"]["cycles"]) for r in rows] == [(4, 1090), (1, 1100)]
    assert rows[0]["ttft_ms"] == pytest.approx(2 * 1090 / 4 / 250e3)
    assert rows[1]["ttft_ms"] == pytest.approx(rows[1]["ms"]) == pytest.approx(2 * 1100 / 300e3)


def test_the_table_has_a_row_per_clock_and_cache_length_with_its_ttft(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    roofline = benchmark("roofline")
    base = {"fill": 1.0, "design_kind": "narrow splits", "plan": {}, "cycles": 1000, "unbounded": 1000, "dse_s": 1.0,
            "evaluations": 9, "splits": {}, "deadlock": False, "resources": 0.9, "fits": True, "fits_slrs": True,
            "by_resource": {"LUT": 0.9}, "slrs": [0.9, 0.8, 0.7], "largest": {}, "options": {}}
    monkeypatch.setattr(roofline, "measure", lambda family, *a, **k: roofline._figures(base, family, 250.0, 128, "f32", 24, 2**20))

    def also(family, scheme, searched, clocks, contexts, prefill_len, seed):  # noqa: ANN001, ANN202
        prefill = {**base, "cycles": 4000}
        return [{**roofline._figures(base, family, c, n, "f32", 24, 2**20), "ttft_ms": 0.1, "prefill_len": p, "prefill": prefill}
                for c in clocks for n, p in zip(contexts, (prefill_len, 1))]

    monkeypatch.setattr(roofline, "also", also)
    monkeypatch.setattr(sys, "argv", ["roofline.py", "--family", "gpt2", "--clock", "250", "--clock", "300"])
    roofline.main()
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gpt2 ")]
    assert [line.split()[1:3] for line in table[:4]] == [["250", "128"], ["250", "1024"], ["300", "128"], ["300", "1024"]]
    assert "TTFT: prefill design of 8 tokens, 4000 cycles, fill 100%" in table[0]
    assert "TTFT: the prompt through the decode design (the prefill design of 8 tokens fits no SLR placement)" in table[1]
