"""Work for a second CPU: a computation run in a forked child process while this one goes on.

The exploration (lowering/dse.py) is a chain of greedy levels, each step one Python computation
after the other on one core; the 2-core machine it must finish on has a second core idle. Some of
its work does not depend on what is computed beside it: the lanes level under each HBM channel
choice, a split trial the one before may not keep. A `Forked` computation runs in a child
(`os.fork`: it sees this process's memory as it was, changes nothing in it) and hands back its
picklable result through a pipe. Whatever the child computes is what this process would have
computed, so an exploration gives the same plan with one CPU or two; where a child cannot deliver
(no `fork`, one CPU, `STREAMDSL_JOBS=1`) it computes here when made; where the child fails,
`result` computes here, raising what the computation raises.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Forked", "jobs"]

T = TypeVar("T")


def jobs() -> int:
    """The processes an exploration may use: `STREAMDSL_JOBS` if set, else the CPUs this process may
    run on (at most 2: one child at a time beside this process)."""
    if (env := os.environ.get("STREAMDSL_JOBS")) is not None:
        return max(1, int(env))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2, cpus) if hasattr(os, "fork") else 1


class Forked(Generic[T]):
    """`compute()` in a forked child when `jobs()` allows one, else here and now (so that work
    with side effects on this process happens in the order it was asked for)."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self.compute = compute
        self.pid: int | None = None
        if jobs() < 2:
            self.value = compute()
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running anything of the parent's
            os.close(read)
            try:
                payload = pickle.dumps(compute())
            except BaseException:  # noqa: BLE001 - the parent computes it again and raises it there
                payload = b""
            try:
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(payload)
            finally:
                os._exit(0)
        os.close(write)
        self.pid, self.read = pid, read

    def result(self) -> T:
        """The child's result (waiting for it), or `compute()` here when there is none."""
        if self.pid is None:
            return self.value
        with os.fdopen(self.read, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(self.pid, 0)
        self.pid = None
        return pickle.loads(payload) if payload else self.compute()  # noqa: S301 - our own child's bytes

    def cancel(self) -> None:
        """Stop the child: its result is not wanted."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.read)
            self.pid = None

    def __del__(self) -> None:  # dropped unasked (an error in the work beside it): no child left running
        self.cancel()
