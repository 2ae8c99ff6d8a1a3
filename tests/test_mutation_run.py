"""mutation/run.py's bookkeeping, on a made-up module: a sampled run leaves reviewed equivalent
mutants out of mutmut's work and out of the score, and still reports how many the sample held."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "mutation"))
import run  # noqa: E402

NAMES = [f"lowering.timing.x_f__mutmut_{i}" for i in range(1, 9)]


def _module(tmp_path, monkeypatch, codes: dict[str, int | None], equivalent: list[str]) -> None:
    monkeypatch.setattr(run, "SCRATCH", tmp_path)
    (tmp_path / "equivalent.txt").write_text("".join(f"{n}  # made up\n" for n in equivalent))
    monkeypatch.setattr(run, "EQUIVALENT", tmp_path / "equivalent.txt")
    meta = tmp_path / "timing" / "mutants" / "lowering" / "timing.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}))


def test_a_sample_runs_only_its_non_equivalent_mutants_and_scores_them(tmp_path, monkeypatch):
    sample, equivalent = NAMES[:6], [NAMES[1], NAMES[7]]  # NAMES[7] is outside the sample
    ran = []
    _module(tmp_path, monkeypatch, dict.fromkeys(NAMES), equivalent)
    monkeypatch.setattr(run, "prepare", lambda module: tmp_path / module)

    def sample_of(module, work, size, seed):
        (work / "sample.json").write_text(json.dumps(sample))
        return sample, 2.0

    def mutmut(work, *args):  # mutants 1 and 3 killed, 4 timed out, 5 and 6 survive
        ran.extend(a for a in args if a.startswith("lowering."))
        meta = next((work / "mutants").rglob("*.meta"))
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        codes.update({NAMES[0]: 1, NAMES[2]: 1, NAMES[3]: 36, NAMES[4]: 0, NAMES[5]: 0})
        meta.write_text(json.dumps({"exit_code_by_key": codes}))
        return 0, "", 3.0

    monkeypatch.setattr(run, "sample_of", sample_of)
    monkeypatch.setattr(run, "mutmut", mutmut)
    result = run.run("timing", children=1, sample=6)
    assert ran == [n for n in sample if n != NAMES[1]]
    assert (result["judged"], result["killed"], result["equivalent"], result["unchecked"]) == (5, 3, 1, 2)
    assert result["score"] == 3 / 5 and result["cpu_seconds"] == 5.0 and "failed" not in result
    assert list(result["survivors"]) == [NAMES[4], NAMES[5]]


def test_without_a_sample_equivalents_that_ran_are_counted_once(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, {NAMES[0]: 1, NAMES[1]: 0, NAMES[2]: 0, NAMES[3]: None}, [NAMES[1]])
    result = run.collect("timing")
    assert (result["judged"], result["killed"], result["equivalent"], result["unchecked"]) == (2, 1, 1, 1)
