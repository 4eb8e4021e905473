"""``initcheck.lock``: a lock file of the exact initial values, compared on later runs.

A correct initializer can change its values while keeping its law: a new default of
``jax_threefry_partitionable`` (JAX 0.5.0), ``flax_fix_rng_separator``, Haiku's
``rng_reserve_size``, another PRNG implementation, a framework upgrade. The lock records a digest
(SHA-256 over the bytes) of every value a declared initializer makes on canonical cases and fixed
keys, and of every value a declared model's init makes, with the environment that made them, per
backend. A later run that makes other values names them and the likely cause, found by re-deriving
the values under the alternative settings (``initcheck lock``, ``pytest --initcheck
--initcheck-lock=initcheck.lock``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from initcheck.lock._compare import (
    BACKEND,
    CHANGED,
    MATCHED,
    NEW,
    STATUSES,
    UNREPRODUCIBLE,
    UPDATED,
    Outcome,
    check_target,
    find_cause,
)
from initcheck.lock._file import Lock, LockError, Section
from initcheck.lock._record import REMOVED, merged, removed, section
from initcheck.lock._settings import SETTINGS, Setting, applied, backend, current, environment
from initcheck.lock._values import digests, initializer_cases, initializer_values, model_values

DEFAULT_PATH = "initcheck.lock"
"""The lock file's default path, beside `pyproject.toml`."""


def initializer_digests(init: Callable, law, *, shapes=None, dtypes=None, seed: int = 0) -> Callable[[], dict]:
    """A function that computes ``init``'s digests on its canonical cases (``shapes``/``dtypes``:
    its declared cases, as for ``check``) under the settings in force when it is called."""
    cases = initializer_cases(law, shapes, dtypes)
    return lambda: digests(initializer_values(init, cases, seed))


def model_digests(factory: Callable[[], Any], *, seed: int = 0) -> Callable[[], dict]:
    """A function that builds ``factory()`` (``(model, *inputs)`` or an ``initcheck.Model``) and
    computes the digests of its whole init at the audit's rng (``seed`` unless the Model says its
    own), under the settings in force when it is called."""
    from initcheck._record import Model

    return lambda: digests(model_values(Model.of(factory(), rng=seed)))


def target_digests(kind: str, thing: Any, *, seed: int = 0) -> Callable[[], dict]:
    """The digests of a ``pytest --initcheck`` target: a catalog entry, a declared
    (``@initcheck.expects``) initializer or a model factory."""
    if kind == "catalog":
        return initializer_digests(thing.init, thing.law, shapes=thing.shapes, dtypes=thing.dtypes, seed=seed)
    if kind == "initializer":
        cases = getattr(thing, "__initcheck_cases__", None) or {}
        return initializer_digests(
            thing, thing.__initcheck_law__, shapes=cases.get("shapes"), dtypes=cases.get("dtypes"), seed=seed
        )
    if kind == "model":
        return model_digests(thing, seed=seed)
    raise ValueError(f"kind={kind!r}: a lock covers catalog entries, declared initializers and models")


__all__ = [
    "BACKEND",
    "CHANGED",
    "DEFAULT_PATH",
    "MATCHED",
    "NEW",
    "REMOVED",
    "SETTINGS",
    "STATUSES",
    "UNREPRODUCIBLE",
    "UPDATED",
    "Lock",
    "LockError",
    "Outcome",
    "Section",
    "Setting",
    "applied",
    "backend",
    "check_target",
    "current",
    "environment",
    "find_cause",
    "initializer_digests",
    "merged",
    "model_digests",
    "removed",
    "section",
    "target_digests",
]
