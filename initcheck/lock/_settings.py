"""The settings that change initial values without changing any law, and the environment a lock records.

Each :class:`Setting` reads its value in this process, applies another value for the length of a
``with`` block (the lock's cause finding re-derives values under it), lists the values worth trying
blind, and says how a user sets it and why it matters. Which setting changes which keys and values
is measured in ``shared/notes/KEY_DERIVATION.md`` (section 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import jax

from initcheck import _sampler as sampler
from initcheck._document import package_version
from initcheck._version import __version__

PRNG_IMPLS = ("threefry2x32", "threefry4x32", "rbg", "unsafe_rbg", "philox2x32", "philox4x32")
PACKAGES = ("jax", "jaxlib", "flax", "dm-haiku", "equinox", "keras", "numpy")


class Unavailable(Exception):
    """The installed version has no such setting (or does not accept that value)."""


@contextlib.contextmanager
def _jax_value(name: str, value) -> Iterator[None]:
    saved = getattr(jax.config, name)
    try:
        jax.config.update(name, value)
    except (ValueError, AttributeError, KeyError) as exc:
        raise Unavailable(f"the installed jax refuses {name}={value!r} ({exc})") from None
    try:
        yield
    finally:
        jax.config.update(name, saved)


def _jax_read(name: str) -> Callable[[], Any]:
    def read():
        value = getattr(jax.config, name)
        return str(value) if name == "jax_default_prng_impl" else bool(value)

    return read


def _flax_read():
    from flax import config  # lazy: Flax loads only where a lock is used

    if not hasattr(config, "flax_fix_rng_separator"):
        raise Unavailable("the installed flax has no flax_fix_rng_separator flag")
    return bool(config.flax_fix_rng_separator)


@contextlib.contextmanager
def _flax_value(value) -> Iterator[None]:
    from flax import config  # lazy: Flax loads only where a lock is used

    saved = _flax_read()
    config.update("flax_fix_rng_separator", bool(value))
    try:
        yield
    finally:
        config.update("flax_fix_rng_separator", saved)


def _haiku_read():
    try:
        from haiku._src import config  # lazy: Haiku loads only where a lock is used
    except ImportError:
        raise Unavailable("Haiku is not installed") from None
    return int(config.get_config().rng_reserve_size)


@contextlib.contextmanager
def _haiku_value(value) -> Iterator[None]:
    import haiku as hk  # lazy: Haiku loads only where a lock is used

    _haiku_read()
    with hk.config.context(rng_reserve_size=int(value)):
        yield


@dataclasses.dataclass(frozen=True)
class Setting:
    """A process-wide setting that changes initial values: ``read()`` its value now,
    ``apply(value)`` for a block, ``blind(now)`` the other values worth trying, ``how(value)`` the
    Python that sets it, ``history`` what is known about it."""

    name: str
    read: Callable[[], Any]
    apply: Callable[[Any], contextlib.AbstractContextManager]
    blind: Callable[[Any], list]
    how: Callable[[Any], str]
    history: str

    def value(self) -> Any:
        """The value now, or None where the installed packages have no such setting."""
        try:
            return self.read()
        except Unavailable:
            return None


def _jax_setting(name: str, blind: Callable[[Any], list], history: str) -> Setting:
    return Setting(
        name,
        _jax_read(name),
        lambda value: _jax_value(name, value),
        blind,
        lambda value: (
            f"jax.config.update({name!r}, {value!r}) before the first key is drawn "
            f"(or the environment variable {name.upper()}={str(value).lower()})"
        ),
        history,
    )


SETTINGS: tuple[Setting, ...] = (
    _jax_setting(
        "jax_threefry_partitionable",
        lambda now: [not now],
        "it changes the bits of every jax.random draw and the keys of jax.random.split (JAX's default is True "
        "since 0.5.0, False before)",
    ),
    _jax_setting(
        "jax_default_prng_impl",
        lambda now: [impl for impl in PRNG_IMPLS if impl != now],
        "it is the PRNG implementation of every key made from an int seed (jax.random.key, PRNGKey), and each "
        "implementation draws other bits (JAX's default is threefry2x32)",
    ),
    _jax_setting(
        "jax_enable_x64",
        lambda now: [not now],
        "64-bit mode changes default dtypes (jnp.zeros, the draws of an initializer called without a dtype)",
    ),
    Setting(
        "flax_fix_rng_separator",
        _flax_read,
        _flax_value,
        lambda now: [not now],
        lambda value: (
            f"flax.config.update('flax_fix_rng_separator', {value!r}) before the first init "
            f"(or the environment variable FLAX_FIX_RNG_SEPARATOR={str(value).lower()})"
        ),
        "it changes the key of every Flax linen parameter (the path hash gets separators; Flax PR #3095, "
        "default False)",
    ),
    Setting(
        "haiku_rng_reserve_size",
        _haiku_read,
        _haiku_value,
        lambda now: [1] if now != 1 else [],
        lambda value: (
            f"hk.config.set(rng_reserve_size={value!r}) (or with hk.config.context(rng_reserve_size={value!r}))"
        ),
        "it changes Haiku's key sequence: how many keys hk.next_rng_key splits off at once (default 1)",
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}


def current() -> dict[str, Any]:
    """Every setting's value now (those the installed packages lack are left out)."""
    values = {s.name: s.value() for s in SETTINGS}
    return {name: value for name, value in values.items() if value is not None}


@contextlib.contextmanager
def applied(values: dict[str, Any]) -> Iterator[None]:
    """The settings ``values`` in force for the block; the previous values come back after it.
    Raises :class:`Unavailable` when the installed packages lack one."""
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


def environment(seed: int) -> dict[str, Any]:
    """What made a lock's values: versions, settings, XLA's flags (its compiler settings change the
    last bits of some computed values), the device and the seed of the fixed keys."""
    return {
        "versions": versions(),
        "settings": current(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "device": sampler.device_description(),
        "seed": seed,
    }
