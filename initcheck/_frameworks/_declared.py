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
import os

import jax.numpy as jnp

from initcheck import adapters, laws
from initcheck._defects import KnownDefect
from initcheck._frameworks import equinox_layers, flax_laws, haiku_laws, jax_laws, keras_laws

PARTIAL_KEEPS_LAW = {"dtype", "out_sharding"}  # partial(init, **these) draws what init draws


def unwrap(init):
    """The initializer under Flax's metadata wrappers and law-preserving ``functools.partial``."""
    for _ in range(16):
        if flax_laws.is_metadata_wrapper(init):
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
        return f"{adapters.describe(inner)} (under {'a Flax metadata wrapper' if flax_laws.is_metadata_wrapper(init) else 'partial'})"
    wrapped = getattr(init, "__wrapped__", None)
    code = getattr(init, "__code__", None)
    if wrapped is not None and code is not None:
        return (
            f"a wrapper of {adapters.describe(wrapped)} ({code.co_name} at {os.path.basename(code.co_filename)}:"
            f"{code.co_firstlineno}), which may change its values"
        )
    return adapters.describe(init)


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
        return jax_laws.law_of(init) or haiku_laws.law_of(init) or flax_laws.law_of(init)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a closure of another shape (another JAX version): unknown, never guessed


LAW_MODULES = (haiku_laws, keras_laws, equinox_layers, jax_laws, flax_laws)  # each framework's law table
KNOWN_DEFECTS: tuple[KnownDefect, ...] = (
    jax_laws.LOW_PRECISION_SAMPLING,
    jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL,
    haiku_laws.HAIKU_LOW_PRECISION_SAMPLING,
    haiku_laws.HAIKU_COMPLEX_TRUNCATED_NORMAL,
    haiku_laws.HAIKU_COMPLEX_UNIFORM,
    keras_laws.KERAS_LOW_PRECISION_SAMPLING,
    keras_laws.KERAS_STFT_INPUT_CHANNELS,
    equinox_layers.EQUINOX_LOW_PRECISION_SAMPLING,
    equinox_layers.EQUINOX_PRELU_WEAK_TYPE,
)


def sampling_defects(init) -> tuple[KnownDefect, ...]:
    """The known defects a framework's own initializer ``init`` (already unwrapped of metadata and
    partials) shows when the framework calls it in a 16-bit dtype, by the package that defines it
    (each law module's ``owns`` and ``SAMPLING_DEFECTS``): JAX's and Flax's samplers, Haiku's
    and Keras's initializers, Equinox's layers (``init`` is then the layer's class). A user's own
    initializer is never excused."""
    if not callable(init) or getattr(init, "__initcheck_law__", None) is not None:
        return ()
    module = getattr(init, "__module__", None)
    module = module if isinstance(module, str) else type(init).__module__
    for laws_module in LAW_MODULES:
        if laws_module.owns(module):
            return laws_module.SAMPLING_DEFECTS
    return ()
