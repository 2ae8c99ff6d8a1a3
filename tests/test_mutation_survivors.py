"""mutation/survivors.py puts known bugs back into the code to check that their tests still
kill them; each bug is written against the current code, so a rewrite must carry it over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "mutation"))
from survivors import BUGS  # noqa: E402


@pytest.mark.parametrize("name", BUGS)
def test_every_known_bug_can_still_be_put_back(name: str) -> None:
    bug = BUGS[name]
    found = (ROOT / bug.path).read_text().count(bug.original)
    assert found == 1, (f"mutation/survivors.py: the code bug {name!r} changes ({bug.original!r}) is found {found} times in "
                        f"{bug.path}; write the same bug ({bug.why}) into the new code there")
    for test in bug.tests:
        path, _, function = test.partition("::")
        function = function.split("[")[0]  # a parametrized test's case: its function
        assert (ROOT / path).is_file() and f"def {function}(" in (ROOT / path).read_text(), f"{name}: no test {test}"
