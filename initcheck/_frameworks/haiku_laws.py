"""Haiku's initializers (``hk.initializers``): the one law table of its classes, read from an
object's attributes, for the catalog and the audit alike; Haiku's form ``init(shape, dtype)`` run
as ``(key, shape, dtype)``; the code objects the audit watches for; and Haiku's setting that
changes its key sequence.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

from initcheck import _property_registry as groups
from initcheck import laws
from initcheck._defects import KnownDefect
from initcheck._frameworks import jax_laws
from initcheck._frameworks._protocol import Setting, Unavailable

CLASSES = (
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "UniformScaling",
    "Orthogonal",
    "Identity",
)


def law_of(init) -> laws.Law | None:
    """The law of an ``hk.initializers`` object, by its class and attributes, or None."""
    if not type(init).__module__.startswith("haiku."):
        return None
    name = type(init).__name__
    if name == "Constant":
        return laws.Constant(float(init.constant))
    if name == "RandomNormal":
        return laws.Normal(float(init.stddev), float(init.mean))
    if name == "RandomUniform":
        return laws.Uniform(float(init.minval), float(init.maxval))
    if name == "TruncatedNormal":
        return laws.TruncatedNormal(float(init.stddev), float(init.lower), float(init.upper), float(init.mean))
    if name == "VarianceScaling":
        return laws.VarianceScaling(
            float(init.scale), init.mode, init.distribution, fans="haiku", fan_in_axes=init.fan_in_axes
        )
    if name == "UniformScaling":
        return laws.VarianceScaling(float(init.scale) ** 2, "fan_in", "uniform", fans="haiku_input_size")
    if name == "Orthogonal":
        return laws.Orthogonal(float(init.scale), init.axis)
    if name == "Identity":
        return laws.Identity(float(init.gain))
    return None


def initializers():
    """``hk.initializers``."""
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    return hk.initializers


def run_as_key_shape_dtype(init: Callable, describe: str) -> Callable:
    """``f(key, shape, dtype) = hk.transform(lambda: init(shape, dtype)).apply({}, key)``: a Haiku
    initializer (which calls ``hk.next_rng_key()``) in canonical form; jit- and vmap-compatible."""
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    def canonical(key, shape, dtype):
        shape = tuple(shape)
        return hk.transform(lambda: init(shape, dtype)).apply({}, key)

    canonical.__initcheck_name__ = describe  # type: ignore[attr-defined]
    return canonical


def known_codes() -> dict:
    """code object -> reader(frame locals) -> (law, re-runnable init, name), for the ``__call__``
    of every ``hk.initializers`` class."""
    hi = initializers()
    return {
        getattr(hi, name).__call__.__code__: lambda loc: (law_of(loc["self"]), loc["self"], repr(loc["self"]))
        for name in CLASSES
    }


def _reserve_read():
    try:
        from haiku._src import config  # lazy: Haiku loads only where a lock is used
    except ImportError:
        raise Unavailable("Haiku is not installed") from None
    return int(config.get_config().rng_reserve_size)


@contextlib.contextmanager
def _reserve_value(value) -> Iterator[None]:
    import haiku as hk  # lazy: Haiku loads only where a lock is used

    _reserve_read()
    with hk.config.context(rng_reserve_size=int(value)):
        yield


RESERVE_SIZE = Setting(
    "haiku_rng_reserve_size",
    _reserve_read,
    _reserve_value,
    lambda now: [1] if now != 1 else [],
    lambda value: f"hk.config.set(rng_reserve_size={value!r}) (or with hk.config.context(rng_reserve_size={value!r}))",
    "it changes Haiku's key sequence: how many keys hk.next_rng_key splits off at once (default 1)",
)


HAIKU_LOW_PRECISION_SAMPLING = dataclasses.replace(
    jax_laws.LOW_PRECISION_SAMPLING,
    name="haiku-low-precision-sampling",
    summary="Haiku's initializers call jax.random in the requested dtype and inherit its 16-bit "
    "coarseness: " + jax_laws.LOW_PRECISION_SAMPLING.summary,
)
HAIKU_COMPLEX_TRUNCATED_NORMAL = KnownDefect(
    "haiku-complex-truncated-normal-variance",
    "dm-haiku",
    "0.0.17",
    groups.WRONG_SCALE,
    ("complex64", "complex128"),
    "complex VarianceScaling with distribution='truncated_normal' draws the real and imaginary parts "
    "each with the full target variance: E|z|^2 is twice scale / n",
    "https://github.com/google-deepmind/dm-haiku/blob/v0.0.17/haiku/_src/initializers.py "
    "(VarianceScaling -> TruncatedNormal on shape [2, *shape])",
)
HAIKU_COMPLEX_UNIFORM = KnownDefect(
    "haiku-complex-uniform-raises",
    "dm-haiku",
    "0.0.17",
    groups.RAISES,
    ("complex64", "complex128"),
    "complex VarianceScaling with distribution='uniform' raises ValueError (jax.random.uniform has "
    "no complex dtypes) although its normal and truncated-normal siblings accept complex dtypes",
    "https://github.com/google-deepmind/dm-haiku/blob/v0.0.17/haiku/_src/initializers.py "
    "(VarianceScaling -> RandomUniform)",
)
SAMPLING_DEFECTS = (HAIKU_LOW_PRECISION_SAMPLING,)


def owns(module: str) -> bool:
    """An initializer defined in ``module`` is Haiku's."""
    return module.startswith("haiku")
