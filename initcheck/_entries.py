"""A catalog entry and the dtype sets the catalog's entries are checked in (shared by the built-in
frameworks' catalog and the optional ones')."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from initcheck import laws
from initcheck._defects import KnownDefect

NO_16BIT_QR = "the QR decomposition has no 16-bit kernels (NotImplementedError: Unsupported dtype)"
NO_COMPLEX_SAMPLER = "jax.random.uniform and truncated_normal have no complex dtypes (ValueError)"


def real_dtypes() -> tuple[str, ...]:
    """float32, bfloat16, float16, and float64 when JAX's x64 mode is on."""

    return ("float32", "bfloat16", "float16") + (("float64",) if jax.config.jax_enable_x64 else ())


def complex_dtypes() -> tuple[str, ...]:
    return ("complex64",) + (("complex128",) if jax.config.jax_enable_x64 else ())


def wide_dtypes() -> tuple[str, ...]:
    """The dtypes that have a QR decomposition: float32 (and float64 under x64)."""
    return tuple(d for d in real_dtypes() if d in ("float32", "float64"))


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One initializer of a framework, configured, with the law it promises, the dtypes it is
    checked in, the known defects it shows there and, for builders, a Hypothesis strategy of
    ``(label, init, law)`` configurations (``configurations``; None for parameterless ones)."""

    id: str
    framework: str
    init: Callable
    law: laws.Law
    dtypes: tuple[str, ...] = ("float32",)
    same_as: str | None = None
    defects: tuple[KnownDefect, ...] = ()
    configurations: Any = None
    notes: str = ""
    shapes: Any = None  # a Hypothesis strategy of the shapes it is checked on (default: the law's)
