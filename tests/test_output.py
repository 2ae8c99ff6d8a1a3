"""atomic_output_dir: a failure never leaves a half-written or missing output directory."""

import pytest

from streamdsl.output import atomic_output_dir, write_json


def test_success_replaces_target_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old run")
    with atomic_output_dir(target) as staging:
        write_json(staging / "report.json", {"a": (1, 2)})
    assert sorted(p.name for p in target.iterdir()) == ["report.json"]
    assert (target / "report.json").read_text().split() == ["{", '"a":', "[", "1,", "2", "]", "}"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_failure_keeps_previous_output_and_cleans_staging(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "report.json").write_text("previous")
    with pytest.raises(RuntimeError, match="boom"), atomic_output_dir(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert (target / "report.json").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_without_previous_output_leaves_nothing(tmp_path):
    with pytest.raises(KeyError), atomic_output_dir(tmp_path / "new") as staging:
        (staging / "x").write_text("x")
        raise KeyError("x")
    assert list(tmp_path.iterdir()) == []
