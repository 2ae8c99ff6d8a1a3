"""Errors users see. Each names the culprit (file:line, op, task, stream) and what to do.

Every error a user can cause derives from `StreamdslError`; its `exit_code` is what the command
line returns for it: 2 for bad input (a bad file, option, weights, model or unsupported
construct), 1 for a `VerificationError` (the design was built but a check of it failed). Anything
else that escapes is an internal error (exit 3). The older classes keep their builtin bases
(`ValueError`, `RuntimeError`) so existing `except` clauses still catch them.
"""

from __future__ import annotations

__all__ = [
    "DSLError", "DeadlockError", "LimitError", "OutputError", "QuantError", "StreamError", "StreamdslError", "UsageError",
    "VerificationError",
]  # fmt: skip

EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


class StreamdslError(Exception):
    """Base of every user-facing error: the message says what is wrong and what to do."""

    exit_code = EXIT_USAGE


class VerificationError(StreamdslError):
    """A built design failed a check (deadlock, wrong results, does not fit on chip)."""

    exit_code = EXIT_FAILED


class LimitError(StreamdslError, ValueError):
    """A size past a documented limit (tokens enumerated, simulated events, int64 range); the
    message names the type, loop or task and the limit."""


class UsageError(StreamdslError, ValueError):
    """A bad command-line option or input file (missing, not text, an unknown pass)."""


class QuantError(StreamdslError, ValueError):
    """A model or checkpoint that cannot be quantized as asked (an unsupported scheme, a layer
    whose input size is not a multiple of the group size, an already-quantized checkpoint)."""


class OutputError(StreamdslError):
    """An output path cannot be written, or holds something streamdsl did not write."""


class DSLError(StreamdslError):
    """A kernel or dataflow function uses Python the DSL does not support, or is ill-typed.

    The message starts with `file:line:col:` of the offending source.
    """

    def __init__(self, message: str, filename: str | None = None, lineno: int | None = None, col: int | None = None):
        self.filename, self.lineno, self.col, self.reason = filename, lineno, col, message
        where = f"{filename}:{lineno}:{col if col is not None else 0}: " if filename is not None and lineno is not None else ""
        super().__init__(f"{where}{message}")


class StreamError(StreamdslError, RuntimeError):
    """A stream was used inconsistently at run time (read past its end, tokens left unread, a
    converter asked to hold more than its buffer)."""


class DeadlockError(VerificationError, RuntimeError):
    """Every remaining task is blocked. `blocked` maps task name -> (stream name, "empty"|"full",
    occupancy, depth); `cycle` is the wait-for cycle as a list of task names (may be empty when the
    wait-for graph is a chain ending in a finished or missing producer)."""

    def __init__(self, message: str, blocked: dict[str, tuple[str, str, int, int]] | None = None, cycle: list[str] | None = None):
        self.blocked = blocked or {}
        self.cycle = cycle or []
        super().__init__(message)
