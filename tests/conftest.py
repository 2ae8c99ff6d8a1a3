"""Shared pytest set-up: Hypothesis profiles.

`ci` (the default, and what CI uses) is derandomised so a run is repeatable; `deep` is for long
fuzzing campaigns: `HYPOTHESIS_PROFILE=deep python -m pytest ...`; `mutation` (mutation/run.py)
runs each property on fewer examples, since it runs the tests once per mutant.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    deadline=None,
    max_examples=20_000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "mutation",
    derandomize=True,
    deadline=None,
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
