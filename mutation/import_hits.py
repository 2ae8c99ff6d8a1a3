"""pytest plugin for mutmut's stats run (mutation/run.py, FRESH_IMPORTS): the mutated functions a
test file calls while it is imported (its module-level `@sd.kernel`s compile then) are credited
to every test of that file, not to whichever test happens to run first.

mutmut records the functions each test reaches and later runs only those tests against a
mutant of them. Calls made while pytest collects the files land before the first test and are
credited to it alone, so a mutant of the kernel compiler would be judged by one test of another
file, which never imports the kernels it changes.
"""

from __future__ import annotations

import os

import pytest
from mutmut.state import state

_hits: dict[str, set[str]] = {}  # test file's node id -> functions reached while importing it


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    if not isinstance(collector, pytest.Module) or os.environ.get("MUTANT_UNDER_TEST") != "stats":
        yield
        return
    before = set(state()._stats)
    state()._stats.clear()
    yield
    _hits[collector.nodeid] = set(state()._stats)
    state()._stats.clear()
    state()._stats.update(before)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for function in _hits.get(item.nodeid.split("::")[0], ()):
            state().tests_by_mangled_function_name[function].add(item.nodeid.removeprefix("mutants/"))
