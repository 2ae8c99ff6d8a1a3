"""Work for a second CPU (lowering/forked.py): a child computes what this process would, changes
nothing here, and an exploration gives the same plan, progress and count of timed simulations with
one process or two."""

from __future__ import annotations

import os
import time

import pytest

import streamdsl as sd
from lowering.dse import explore
from lowering.forked import Forked, jobs


def test_a_child_computes_beside_and_changes_nothing_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDSL_JOBS", "2")
    touched: list[int] = []

    def compute() -> tuple[int, int]:
        touched.append(1)
        return os.getpid(), 6 * 7

    child = Forked(compute)
    pid, value = child.result()
    assert value == 42 and pid != os.getpid() and touched == []


def test_with_one_job_the_work_is_done_here_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDSL_JOBS", "1")
    order: list[str] = []
    eager = Forked(lambda: order.append("forked") or os.getpid())
    order.append("after")
    assert eager.result() == os.getpid() and order == ["forked", "after"]  # in the order it was asked for
    assert jobs() == 1


def test_a_failing_child_is_computed_again_here_and_raises_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDSL_JOBS", "2")

    def fails() -> int:
        raise ValueError("from the computation")

    child = Forked(fails)
    with pytest.raises(ValueError, match="from the computation"):
        child.result()


def test_a_cancelled_child_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDSL_JOBS", "2")
    child = Forked(lambda: time.sleep(60))
    pid = child.pid
    start = time.perf_counter()
    child.cancel()
    assert time.perf_counter() - start < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # reaped: no zombie left behind


def test_a_child_whose_result_is_never_asked_for_is_stopped_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDSL_JOBS", "2")
    child = Forked(lambda: time.sleep(60))
    pid = child.pid
    del child  # as when the work beside it raises
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)


def _explored(monkeypatch: pytest.MonkeyPatch, processes: str) -> tuple[object, list[str], int]:
    """The exploration of the tiny GPT-2 W4A8 block with `processes`: its plan, progress and the
    computations it gave a child."""
    from lowering import dse
    from toolchain.models import model_block

    module = model_block("gpt2", "tiny", 64, 64, seed=0, quant=sd.quant.scheme("w4a8", 32)).lowered.program.module
    monkeypatch.setenv("STREAMDSL_JOBS", processes)
    forked: list[Forked] = []
    monkeypatch.setattr(dse, "Forked", lambda compute: forked.append(Forked(compute)) or forked[-1])
    said: list[str] = []
    plan = explore(lambda _: module.clone(), (64,), 250.0, seed=3, progress=said.append)
    return plan, said, sum(f.pid is not None or not hasattr(f, "value") for f in forked)


def test_an_exploration_is_the_same_with_one_process_or_two(monkeypatch: pytest.MonkeyPatch) -> None:
    one, said_one, _ = _explored(monkeypatch, "1")
    two, said_two, children = _explored(monkeypatch, "2")
    assert children >= 2  # the lanes level under one channel choice, a split trial
    assert one == two and said_one == said_two
    assert one.figures["evaluations"] == two.figures["evaluations"]  # the child's timed simulations are counted
