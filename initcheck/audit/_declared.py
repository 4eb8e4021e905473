"""The law a model's declared initializer promises.

Known: initializers marked with ``@initcheck.expects`` (and ``initcheck.inits``), the closures of
``jax.nn.initializers`` (which Flax re-exports; their parameters are read from the closure),
``hk.initializers`` objects, ``jnp.zeros``/``jnp.ones`` (Haiku's default bias), nnx's
``modified_orthogonal``; and each of these wrapped by Flax's metadata wrappers
(``nn.with_partitioning``, ``nn.with_logical_partitioning``, nnx's ``with_partitioning`` and
``with_metadata``, which box the value without changing it) or by ``functools.partial`` fixing
only ``dtype``/``out_sharding``. Any other wrapper is unknown: it may change the values.
"""

from __future__ import annotations

import functools
import inspect
import os

import jax
import jax.nn.initializers as jinit
import jax.numpy as jnp
import numpy as np

from initcheck import adapters, laws

_JAX_MODULE = "jax._src.nn.initializers"


def law_of_jax_builder(builder: str, v) -> laws.Law | None:
    """The law of the initializer ``jax.nn.initializers.<builder>(**v)`` (``v``: its arguments, as
    the closure keeps them)."""
    if builder == "variance_scaling":
        return laws.VarianceScaling(
            float(v["scale"]),
            v["mode"],
            v["distribution"],
            in_axis=_axes(v["in_axis"]),
            out_axis=_axes(v["out_axis"]),
            batch_axis=_axes(v["batch_axis"]),
        )
    if builder == "normal":
        return laws.Normal(float(v["stddev"]))
    if builder == "uniform":
        return laws.Uniform(0.0, float(v["scale"]))
    if builder == "truncated_normal":
        return laws.TruncatedNormal(float(v["stddev"]), float(v["lower"]), float(v["upper"]))
    if builder == "constant":
        return laws.Constant(float(v["value"]))
    if builder == "orthogonal":
        return laws.Orthogonal(float(v["scale"]), int(v["column_axis"]))
    if builder == "delta_orthogonal":
        return laws.DeltaOrthogonal(float(v["scale"]), int(v["column_axis"]))
    return None


def _axes(axis):
    """An axis argument as JAX's fan computation reads it: an int, or a tuple of ints (MaxText
    passes numpy ranges)."""
    if isinstance(axis, (int, np.integer)):
        return int(axis)
    return tuple(int(a) for a in axis)


def _jax_law(init) -> laws.Law | None:
    if init is jinit.zeros:
        return laws.Constant(0.0)
    if init is jinit.ones:
        return laws.Constant(1.0)
    if getattr(init, "__module__", None) != _JAX_MODULE:
        return None
    builder = init.__qualname__.split(".<locals>")[0]
    return law_of_jax_builder(builder, inspect.getclosurevars(init).nonlocals)


def _haiku_law(init) -> laws.Law | None:
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


def _flax_wrapper(init) -> bool:
    """A Flax metadata wrapper (its code lives in Flax): it boxes the wrapped initializer's value."""
    import flax  # lazy: Flax loads only when a Flax target is used

    code = getattr(init, "__code__", None)
    return (
        code is not None
        and hasattr(init, "__wrapped__")
        and os.path.abspath(code.co_filename).startswith(os.path.dirname(os.path.abspath(flax.__file__)) + os.sep)
    )


PARTIAL_KEEPS_LAW = {"dtype", "out_sharding"}  # partial(init, **these) draws what init draws


def unwrap(init):
    """The initializer under Flax's metadata wrappers and law-preserving ``functools.partial``."""
    for _ in range(16):
        if _flax_wrapper(init):
            init = init.__wrapped__
        elif isinstance(init, functools.partial) and not init.args and set(init.keywords) <= PARTIAL_KEEPS_LAW:
            init = init.func
        else:
            return init
    return init


def declared_name(init) -> str:
    """A true name for ``init``: a wrapper made with ``functools.wraps`` carries the wrapped
    function's name, so say what wraps what. A call already in words is its own name."""
    if isinstance(init, str):
        return init
    inner = unwrap(init)
    if inner is not init:
        return f"{adapters.describe(inner)} (under {'a Flax metadata wrapper' if _flax_wrapper(init) else 'partial'})"
    wrapped = getattr(init, "__wrapped__", None)
    code = getattr(init, "__code__", None)
    if wrapped is not None and code is not None:
        return (
            f"a wrapper of {adapters.describe(wrapped)} ({code.co_name} at {os.path.basename(code.co_filename)}:"
            f"{code.co_firstlineno}), which may change its values"
        )
    return adapters.describe(init)


def _random_law(init) -> laws.Law | None:
    """``jax.random.normal``/``uniform`` used as an initializer ``(key, shape, dtype)``: their defaults."""

    if init is jax.random.normal:
        return laws.Normal(1.0)
    if init is jax.random.uniform:
        return laws.Uniform(0.0, 1.0)
    return None


def _flax_law(init) -> laws.Law | None:
    from flax.nnx.nn import recurrent  # lazy: Flax loads only when a Flax target is used

    if init is recurrent.modified_orthogonal:  # orthogonal() in float32, cast to the dtype
        return laws.Orthogonal(1.0)
    return None


def declared_law(init) -> laws.Law | None:
    """The law ``init`` promises, or None when initcheck cannot know it (then declare it with
    ``@initcheck.expects(law)``)."""
    law = getattr(init, "__initcheck_law__", None)
    if law is not None:
        return law
    inner = unwrap(init)
    if inner is not init:
        return declared_law(inner)
    if init is jnp.zeros:
        return laws.Constant(0.0)
    if init is jnp.ones:
        return laws.Constant(1.0)
    try:
        return _jax_law(init) or _haiku_law(init) or _flax_law(init) or _random_law(init)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a closure of another shape (another JAX version): unknown, never guessed
