"""atomic_output_dir: a failure never leaves a half-written or missing output directory."""

import multiprocessing
import os
import stat
import subprocess
import sys

import pytest

from streamdsl.errors import OutputError
from streamdsl.output import MARKER, atomic_output_dir, atomic_output_file, check_output_dir, write_json


def test_success_replaces_target_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / MARKER).write_text("{}")
    (target / "stale.txt").write_text("old run")
    with atomic_output_dir(target) as staging:
        write_json(staging / "report.json", {"a": (1, 2)})
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "report.json"]
    assert (target / "report.json").read_text().split() == ["{", '"a":', "[", "1,", "2", "]", "}"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_failure_keeps_previous_output_and_cleans_staging(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / MARKER).write_text("{}")
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


# -- never destroy what streamdsl did not write (issue: --out deleted user data) ---------------


def test_refuses_a_directory_streamdsl_did_not_write(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match=r"not empty \(1 entries: thesis.tex\).*--force"), atomic_output_dir(target):
        pytest.fail("the body must not run")
    assert (target / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_refuses_the_parent_of_the_working_directory(tmp_path, monkeypatch):
    inner = tmp_path / "sandbox" / "inner"
    inner.mkdir(parents=True)
    (tmp_path / "sandbox" / "notes.txt").write_text("keep")
    monkeypatch.chdir(inner)
    with pytest.raises(OutputError, match="contains the current directory"):
        check_output_dir("..", force=True)
    assert (tmp_path / "sandbox" / "notes.txt").read_text() == "keep"


def test_refuses_a_file_and_leaves_it_alone(tmp_path):
    target = tmp_path / "some_file.txt"
    target.write_text("data")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output_dir(target, force=True)
    assert target.read_text() == "data"
    assert [p.name for p in tmp_path.iterdir()] == ["some_file.txt"]


def test_replaces_its_own_output_and_an_empty_directory_and_force_replaces_anything(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (tmp_path / "new", empty, tmp_path / "new"):  # the second write to new replaces a marked dir
        with atomic_output_dir(target) as staging:
            (staging / "report.json").write_text(target.name)
        assert sorted(p.name for p in target.iterdir()) == [MARKER, "report.json"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    with atomic_output_dir(foreign, force=True) as staging:
        (staging / "y").write_text("y")
    assert sorted(p.name for p in foreign.iterdir()) == [MARKER, "y"]


def test_unwritable_parent_is_refused_before_any_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(OutputError, match="not writable"):
            check_output_dir(locked / "out")
    finally:
        locked.chmod(0o700)


def test_output_under_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "notes").write_text("x")
    with pytest.raises(OutputError, match="notes is a file"):
        check_output_dir(tmp_path / "notes" / "out")


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "out") as staging:
            (staging / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_interrupt_leaves_no_staging_and_the_previous_output(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target) as staging:
        (staging / "v").write_text("1")
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(target) as staging:
        (staging / "v").write_text("2")
        raise KeyboardInterrupt
    assert (target / "v").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staging_of_a_killed_process_is_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".out.staging-{dead.stdout.strip()}-deadbeef"
    leftover.mkdir()
    with atomic_output_dir(tmp_path / "out") as staging:
        (staging / "v").write_text("1")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _write_many(target: str, writer: int, times: int) -> None:
    for i in range(times):
        with atomic_output_dir(target) as staging:
            for name in ("a", "b", "c"):
                (staging / name).write_text(f"{writer}-{i}")


def test_concurrent_writers_each_replace_the_directory_whole(tmp_path):
    target = str(tmp_path / "out")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_many, args=(target, w, 60)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    contents = {(tmp_path / "out" / name).read_text() for name in ("a", "b", "c")}
    assert len(contents) == 1  # one writer's whole output, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_output_dir(target) as staging:  # and the process can still write afterwards
        (staging / "a").write_text("after")


def test_output_file_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "prog.mlir"
    target.write_text("input")
    with pytest.raises(RuntimeError), atomic_output_file(target) as stream:
        stream.write("half")
        raise RuntimeError("pass failed")
    assert target.read_text() == "input"
    with atomic_output_file(target) as stream:
        stream.write("output")
    assert target.read_text() == "output"
    assert [p.name for p in tmp_path.iterdir()] == ["prog.mlir"]
