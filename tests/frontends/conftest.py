"""Fixtures of the frontend tests (no __init__.py here: a `tests/frontends` package would shadow
the real `frontends`)."""

from __future__ import annotations

import warnings

import pytest
from frontend_helpers import SMALL_TEST_LAYERS

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def zoo():
    """Cached zoo models: zoo(family, size)."""
    from frontends import hf

    cache: dict = {}

    def get(family: str, size: str = "tiny"):
        if (family, size) not in cache:
            layers = SMALL_TEST_LAYERS if size == "small" else None
            cache[family, size] = hf.build(family, size, num_layers=layers)
        return cache[family, size]

    return get
