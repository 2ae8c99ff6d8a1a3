"""Progress: step lines on stderr, a bar only on a terminal, nothing at all with -q."""

from __future__ import annotations

import io

from toolchain.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal_and_cleared_after():
    out = Terminal()
    progress = Progress(1, out)
    with progress.bar("csim", 3) as advance:
        for _ in range(3):
            advance()
    text = out.getvalue()
    assert "csim [" in text and "0/3" in text and "3/3" in text and "#" * 30 in text
    assert text.endswith("\r\x1b[K")  # the line is cleared for what follows
    progress.step("done")
    assert out.getvalue().endswith("] done\n")


def test_a_step_during_a_bar_starts_on_a_clean_line():
    out = Terminal()
    progress = Progress(1, out)
    with progress.bar("jobs", 2) as advance:
        advance()
        progress.step("job csim-sequential failed")
    lines = out.getvalue().split("\r\x1b[K")
    assert lines[1].startswith("[") and "job csim-sequential failed\n" in lines[1]
    assert lines[1].endswith("jobs [" + "#" * 15 + "." * 15 + "] 1/2")  # the bar is redrawn below the line


def test_no_bar_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(1, out)
    with progress.bar("csim", 2) as advance:
        advance()
        advance()
    progress.step("sizing")
    assert "\r" not in out.getvalue() and out.getvalue().count("\n") == 1


def test_quiet_prints_nothing():
    out = Terminal()
    progress = Progress(0, out)
    with progress.bar("csim", 2) as advance:
        advance()
    progress.step("sizing")
    progress.detail("more")
    assert out.getvalue() == ""
