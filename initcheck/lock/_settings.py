"""The settings that change initial values without changing any law (each framework module names
its own: ``registry.SETTINGS``), and the environment a lock records.

Each `Setting` reads its value in this process, applies another value for the length of a
``with`` block (the lock's cause finding re-derives values under it), lists the values worth trying
blind, and says how a user sets it and why it matters. Which setting changes which keys and values
is measured in ``shared/notes/KEY_DERIVATION.md`` (section 4).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import jax

from initcheck._document import package_version
from initcheck._frameworks import registry
from initcheck._frameworks.registry import Setting, Unavailable
from initcheck._version import __version__

PACKAGES = ("jax", "jaxlib", "flax", "dm-haiku", "equinox", "keras", "numpy")
SETTINGS = registry.SETTINGS
"""Every setting that changes values, of every framework (`initcheck._frameworks.registry`)."""
BY_NAME = {s.name: s for s in SETTINGS}
__all__ = [
    "BY_NAME",
    "PACKAGES",
    "SETTINGS",
    "Setting",
    "Unavailable",
    "applied",
    "backend",
    "current",
    "environment",
    "versions",
]


def current() -> dict[str, Any]:
    """Every setting's value now (those the installed packages lack are left out)."""
    values = {s.name: s.value() for s in SETTINGS}
    return {name: value for name, value in values.items() if value is not None}


@contextlib.contextmanager
def applied(values: dict[str, Any]) -> Iterator[None]:
    """The settings ``values`` in force for the block; the previous values come back after it.
    Raises `Unavailable` when the installed packages lack one."""
    with contextlib.ExitStack() as stack:
        for name, value in values.items():
            stack.enter_context(BY_NAME[name].apply(value))
        yield


def versions() -> dict[str, str]:
    """The versions of initcheck and of the installed packages that make values."""
    found = {package: package_version(package) for package in PACKAGES}
    return {"initcheck": __version__, **{p: v for p, v in found.items() if v is not None}}


def backend() -> str:
    """The lock's section: JAX's default backend (``cpu``, ``gpu``, ``tpu``)."""
    return jax.default_backend()


def _device() -> str:
    """The device's kind, with its platform where the kind does not name it (``cpu``, ``gpu NVIDIA H100``)."""
    device = jax.devices()[0]
    return device.device_kind if device.device_kind == device.platform else f"{device.platform} {device.device_kind}"


def environment(seed: int) -> dict[str, Any]:
    """What made a lock's values: versions, settings, XLA's flags (its compiler settings change the
    last bits of some computed values), the device and the seed of the fixed keys."""
    return {
        "versions": versions(),
        "settings": current(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "device": _device(),
        "seed": seed,
    }
