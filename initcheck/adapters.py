"""Adapters to the canonical initializer form ``init(key, shape, dtype) -> Array``."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable

import jax.nn.initializers
import jax.numpy

from initcheck._frameworks import haiku_laws

Initializer = Callable[..., object]
"""The canonical form: `init(key, shape, dtype) -> Array`."""


def describe(init) -> str:
    """A readable name: module.qualname for functions, the repr for configured objects."""
    if isinstance(init, functools.partial):
        return f"partial({describe(init.func)})"
    label = getattr(init, "__initcheck_name__", None)
    if label:
        return label
    if is_keras_initializer(init):
        return _keras_call(init)
    module = getattr(init, "__module__", None) or type(init).__module__
    qualname = getattr(init, "__qualname__", None)
    if qualname is None:
        return f"{type(init).__module__}.{type(init).__qualname__}"
    if module == "jax._src.nn.initializers" and ".<locals>" in qualname:
        return _jax_builder_call(init, qualname.split(".<locals>")[0])
    return f"{module}.{qualname}"


def _jax_builder_call(init, builder: str) -> str:
    """A ``jax.nn.initializers`` closure as the call that made it, from the values it keeps:
    ``jax.nn.initializers.constant(value=41.0)`` (the dtype argument left out)."""

    try:
        kept = inspect.getclosurevars(init).nonlocals
    except (TypeError, ValueError):
        kept = {}
    try:
        order = list(inspect.signature(getattr(jax.nn.initializers, builder)).parameters)
    except (AttributeError, TypeError, ValueError):
        order = []
    names = [n for n in order if n in kept] + sorted(n for n in kept if n not in order)
    arguments = ", ".join(
        f"{name}={kept[name]!r}"
        for name in names
        if name != "dtype" and isinstance(kept[name], (int, float, str, tuple))
    )
    return f"jax.nn.initializers.{builder}({arguments})"


def is_haiku_initializer(init) -> bool:
    """Haiku's built-in initializers are objects of classes in ``haiku``'s modules."""
    return type(init).__module__.startswith("haiku.") and callable(init)


def from_haiku(init: Callable) -> Initializer:
    """Wrap a Haiku initializer ``init(shape, dtype)`` (which calls ``hk.next_rng_key()``) as
    ``f(key, shape, dtype) = hk.transform(lambda: init(shape, dtype)).apply({}, key)``; jit- and
    vmap-compatible."""
    return haiku_laws.run_as_key_shape_dtype(init, describe(init))


def _keras_call(init) -> str:
    """``keras.initializers.GlorotUniform(seed=5)``: the class and its non-default config."""
    cls = type(init)
    try:
        config = {k: v for k, v in init.get_config().items() if v is not None}
    except Exception:  # noqa: BLE001 - a user's initializer without a config is named by its class
        config = {}
    where = "keras.initializers" if cls.__module__.startswith("keras.") else cls.__module__
    return f"{where}.{cls.__qualname__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def is_keras_initializer(init) -> bool:
    """An object of a subclass of ``keras.initializers.Initializer`` (Keras's own or the user's)."""
    return callable(init) and any(
        c.__name__ == "Initializer" and c.__module__.startswith("keras.") for c in type(init).__mro__
    )


def from_keras(init: Callable) -> Initializer:
    """Wrap a Keras 3 initializer ``init(shape, dtype=None)`` (JAX backend) as ``f(key, shape,
    dtype)``; jit- and vmap-compatible, and ``init`` itself is left unchanged.

    The key mapping: ``f`` calls a copy of ``init`` whose ``seed`` is the JAX key itself. Keras's JAX
    backend uses an array seed as the PRNG key of ``jax.random`` (``jax_draw_seed`` in
    ``keras/src/backend/jax/random.py``) and turns an int seed ``s`` into the key ``[s, 0]``, so
    ``f(jax.random.wrap_key_data(jnp.array([s, 0], jnp.uint32)), shape, dtype)`` is exactly what
    ``type(init)(..., seed=s)(shape, dtype)`` draws. Initializers without a seed (``Zeros``,
    ``Constant``, ``Identity``, ``STFT``) are called as they are."""

    def canonical(key, shape, dtype):
        seeded = init
        if hasattr(init, "seed"):
            seeded = copy.copy(init)
            seeded.seed = key
        return seeded(tuple(shape), dtype=jax.numpy.dtype(dtype).name)

    canonical.__initcheck_name__ = describe(init)  # type: ignore[attr-defined]
    return canonical


def signature_problem(init) -> str | None:
    """Why ``init`` cannot take ``(key, shape, dtype)`` positionally, or None."""
    if not callable(init):
        return f"init={init!r} is not callable; pass a function init(key, shape, dtype) -> Array"
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return None  # builtins without a signature: find out by calling
    try:
        sig.bind(object(), (1,), "float32")
    except TypeError:
        params = ", ".join(p.name if p.kind != p.KEYWORD_ONLY else f"*{p.name}" for p in sig.parameters.values())
        return (
            f"{describe(init)}({params}) cannot be called as init(key, shape, dtype): an initializer "
            "expects (key, shape, dtype); "
            "it must take a PRNG key first (wrap a Haiku-style init(shape, dtype) "
            "with initcheck.adapters.from_haiku)"
        )
    return None


def is_haiku_style(init) -> bool:
    """A function of the user's written the Haiku way, ``init(shape, dtype)`` (it draws its keys with
    ``hk.next_rng_key()``): it takes ``(shape, dtype)`` but not ``(key, shape, dtype)``, and its first
    parameter is not a key. Library functions of that form (``jnp.zeros``) are not initializers and
    are left alone."""
    if not callable(init) or is_haiku_initializer(init) or is_keras_initializer(init):
        return False
    module = getattr(init, "__module__", None) or ""
    if module.split(".")[0] in ("jax", "jaxlib", "numpy", "haiku", "flax"):
        return False
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(object(), (1,), "float32")
        return False
    except TypeError:
        pass
    try:
        sig.bind((1,), "float32")
    except TypeError:
        return False
    first = next(iter(sig.parameters), "")
    return first.lower() not in KEY_NAMES  # init(key, shape) is a wrong signature, not Haiku's


KEY_NAMES = ("key", "rng", "prng", "prng_key", "rng_key", "seed")
"""Names of a first parameter that takes a key: such a callable is in canonical form, not Haiku's."""


def takes_haiku_form(init) -> bool:
    """``init(shape, dtype)`` drawing keys with ``hk.next_rng_key()``: an object of
    ``hk.initializers`` or the user's own function written that way."""
    return is_haiku_initializer(init) or is_haiku_style(init)


def canonical(init) -> Initializer:
    """``init`` in canonical form: Keras initializers and Haiku-form ones (``takes_haiku_form``) are
    wrapped, others are returned as they are."""
    if is_keras_initializer(init):
        return from_keras(init)
    return from_haiku(init) if takes_haiku_form(init) else init


__all__ = [
    "KEY_NAMES",
    "Initializer",
    "canonical",
    "describe",
    "from_haiku",
    "from_keras",
    "is_haiku_initializer",
    "is_haiku_style",
    "is_keras_initializer",
    "signature_problem",
    "takes_haiku_form",
]
