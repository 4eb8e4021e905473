"""The frameworks initcheck covers: one vocabulary of their names (``FRAMEWORKS``) and the one
validation of a ``frameworks`` argument that the catalog, the strategies, the CLI, the plugin and
the lock share. One module per framework in this folder holds everything initcheck knows of it
(``registry`` lists them; ``_protocol`` says what each provides).

Equinox and Keras are optional (the extras ``equinox`` and ``keras``: ``pip install -e '.[equinox]'``
in a checkout, or the package itself, ``pip install equinox``): by
default only the installed frameworks are chosen; naming one that is not installed is an error that
says how to install it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

FRAMEWORKS = ("jax", "flax", "haiku", "initcheck", "equinox", "keras")
OPTIONAL = {"equinox": "Equinox", "keras": "Keras 3"}  # framework: its name in messages


class FrameworkUnavailable(ImportError):
    """An optional framework that was asked for cannot be used here; the message says how to fix it."""


def installed(framework: str) -> bool:
    """The framework's package can be imported (the required ones always can)."""
    if framework not in OPTIONAL:
        return True
    try:
        return importlib.util.find_spec(framework) is not None
    except (ImportError, ValueError):  # a module blocked with sys.modules[name] = None
        return False


def missing_reason(framework: str) -> str | None:
    """Why ``framework`` cannot be used here, with the fix; None when it can."""
    if installed(framework):
        return None
    return (
        f"{OPTIONAL[framework]} is not installed: pip install {framework} (in an initcheck checkout, "
        f"pip install -e '.[{framework}]' installs the versions it supports), or leave {framework} out of frameworks"
    )


def parse(value: str | Iterable[str] | None) -> list[str]:
    """``value`` as a list of names: ``None`` is every installed framework, a string is comma-separated."""
    if value is None:
        return [f for f in FRAMEWORKS if installed(f)]
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    return list(value)


def valid(chosen: list[str]) -> bool:
    """``chosen`` names at least one framework, and only frameworks."""
    return bool(chosen) and all(f in FRAMEWORKS for f in chosen)


def require(chosen: Iterable[str]) -> None:
    """Raise FrameworkUnavailable naming the first of ``chosen`` that is not installed and how to install it."""
    for framework in chosen:
        if reason := missing_reason(framework):
            raise FrameworkUnavailable(f"frameworks: {framework}: {reason}")
