"""Hypothesis profiles for the suite: derandomized (same examples every run), no deadline (the first
JAX compile of a shape exceeds any sensible deadline), no example database.

XLA compiles without LLVM optimization here, as the command line does (see initcheck/_xla.py): the
suite's cost is compiles; the verdicts do not depend on it."""

import os

from hypothesis import HealthCheck, settings

from initcheck import _xla

_xla.prefer_fast_compiles()

settings.register_profile(
    "default", derandomize=True, deadline=None, database=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
pytest_plugins = ["pytester"]
