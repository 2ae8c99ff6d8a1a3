"""Errors users see. Each names the culprit (file:line, op, task, stream) and what to do."""

from __future__ import annotations

__all__ = ["DSLError", "DeadlockError", "StreamError"]


class DSLError(Exception):
    """A kernel or dataflow function uses Python the DSL does not support, or is ill-typed.

    The message starts with `file:line:col:` of the offending source.
    """

    def __init__(self, message: str, filename: str | None = None, lineno: int | None = None, col: int | None = None):
        self.filename, self.lineno, self.col, self.reason = filename, lineno, col, message
        where = f"{filename}:{lineno}:{col if col is not None else 0}: " if filename is not None and lineno is not None else ""
        super().__init__(f"{where}{message}")


class StreamError(RuntimeError):
    """A stream was used inconsistently at run time (read past its end, tokens left unread, a
    converter asked to hold more than its buffer)."""


class DeadlockError(RuntimeError):
    """Every remaining task is blocked. `blocked` maps task name -> (stream name, "empty"|"full",
    occupancy, depth); `cycle` is the wait-for cycle as a list of task names (may be empty when the
    wait-for graph is a chain ending in a finished or missing producer)."""

    def __init__(self, message: str, blocked: dict[str, tuple[str, str, int, int]] | None = None, cycle: list[str] | None = None):
        self.blocked = blocked or {}
        self.cycle = cycle or []
        super().__init__(message)
