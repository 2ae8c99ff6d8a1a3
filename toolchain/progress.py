"""Progress on stderr (stdout stays clean for IR and tables): a line per step, and a bar for work
of known size. `-q` (verbosity 0) silences both; bars are drawn only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, verbosity: int = 1, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.drawn = False  # a bar is on the current line
        self.active: list | None = None  # [label, done, total] of the bar in progress

    @property
    def draws(self) -> bool:
        return self.verbosity >= 1 and self.stream.isatty()

    def step(self, message: str) -> None:
        if self.verbosity >= 1:
            self._line(f"[{time.perf_counter() - self.start:7.2f}s] {message}")

    def detail(self, message: str) -> None:
        if self.verbosity >= 2:
            self._line(f"          {message}")

    def _line(self, text: str) -> None:
        """A line above the bar, which is redrawn below it."""
        self._clear()
        print(text, file=self.stream, flush=True)
        if self.active is not None and self.draws:
            self._draw(*self.active)

    @contextmanager
    def bar(self, label: str, total: int) -> Iterator[Callable[[], None]]:
        """`with progress.bar("csim", 4) as advance:` ... `advance()` once per unit done."""
        self.active = state = [label, 0, total]
        last = 0.0

        def advance() -> None:
            nonlocal last
            state[1] += 1
            now = time.perf_counter()
            if self.draws and (now - last > 0.1 or state[1] == total):
                last = now
                self._draw(*state)

        if self.draws:
            self._draw(*state)
        try:
            yield advance
        finally:
            self.active = None
            self._clear()

    def _draw(self, label: str, done: int, total: int, width: int = 30) -> None:
        filled = width * done // max(total, 1)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{time.perf_counter() - self.start:7.2f}s] {label} [{bar}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
