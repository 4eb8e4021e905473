"""Flax's initializers (linen's and nnx's ``initializers``: JAX's builders re-exported, plus
``zeros_init``/``ones_init`` and nnx's ``modified_orthogonal``), Flax's metadata wrappers (which
box a value without changing it) and Flax's setting that changes every linen key.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from initcheck import laws
from initcheck._frameworks import jax_laws
from initcheck._frameworks._protocol import Setting, Unavailable


def initializer_modules() -> tuple[tuple[str, object], ...]:
    """``(prefix, module)`` of Flax's two initializer modules, linen's first."""
    import flax.linen as nn  # lazy: Flax loads only when a Flax target is used
    import flax.nnx as nnx  # lazy: Flax loads only when a Flax target is used

    return (("flax.linen.initializers", nn.initializers), ("flax.nnx.initializers", nnx.initializers))


def is_metadata_wrapper(init) -> bool:
    """A Flax metadata wrapper (``nn.with_partitioning``, ``nnx.with_metadata``, ...: its code lives
    in Flax): it boxes the wrapped initializer's value."""
    import flax  # lazy: Flax loads only when a Flax target is used

    code = getattr(init, "__code__", None)
    return (
        code is not None
        and hasattr(init, "__wrapped__")
        and os.path.abspath(code.co_filename).startswith(os.path.dirname(os.path.abspath(flax.__file__)) + os.sep)
    )


def law_of(init) -> laws.Law | None:
    """The law of Flax's own initializers that are not JAX's (nnx's ``modified_orthogonal``), or None."""
    from flax.nnx.nn import recurrent  # lazy: Flax loads only when a Flax target is used

    if init is recurrent.modified_orthogonal:  # orthogonal() in float32, cast to the dtype
        return laws.Orthogonal(1.0)
    return None


def _separator_read():
    from flax import config  # lazy: Flax loads only where a lock is used

    if not hasattr(config, "flax_fix_rng_separator"):
        raise Unavailable("the installed flax has no flax_fix_rng_separator flag")
    return bool(config.flax_fix_rng_separator)


@contextlib.contextmanager
def _separator_value(value) -> Iterator[None]:
    from flax import config  # lazy: Flax loads only where a lock is used

    saved = _separator_read()
    config.update("flax_fix_rng_separator", bool(value))
    try:
        yield
    finally:
        config.update("flax_fix_rng_separator", saved)


FIX_SEPARATOR = Setting(
    "flax_fix_rng_separator",
    _separator_read,
    _separator_value,
    lambda now: [not now],
    lambda value: (
        f"flax.config.update('flax_fix_rng_separator', {value!r}) before the first init "
        f"(or the environment variable FLAX_FIX_RNG_SEPARATOR={str(value).lower()})"
    ),
    "it changes the key of every Flax linen parameter (the path hash gets separators; Flax PR #3095, default False)",
)
SAMPLING_DEFECTS = (jax_laws.LOW_PRECISION_SAMPLING,)  # Flax's initializers draw with JAX's samplers


def owns(module: str) -> bool:
    """An initializer defined in ``module`` is Flax's."""
    return module.split(".")[0] == "flax"
