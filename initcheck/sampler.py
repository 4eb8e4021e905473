"""The only module that samples on a device: deterministic keys, jitted ``vmap`` over keys, chunked.

Keys are never searched: ``case_key(seed, case_id) = fold_in(PRNGKey(seed), crc32(case_id))`` and the
keys of a case are ``fold_in(case_key, i)``. Case ids name the property, shape and dtype (not the
initializer), so a reproduction snippet with any variable name draws the same keys.
"""

from __future__ import annotations

import functools
import math
import threading
import zlib

import jax
import numpy as np

from initcheck import _dtypes


def case_key(seed: int, case_id: str) -> jax.Array:
    """A legacy (raw uint32) key of JAX's default PRNG implementation for one case."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(case_id.encode()))


_fold_in_range = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(None, 0)))


def derived_keys(key: jax.Array, count: int) -> np.ndarray:
    """``fold_in(key, i)`` for i < count, as host raw key data. Counts are padded to a power of two
    so that a whole run compiles this a handful of times."""
    bucket = 1 << max(0, (count - 1).bit_length())
    return np.asarray(_fold_in_range(key, np.arange(bucket, dtype=np.uint32)))[:count]


def case_keys(seed: int, case_id: str, count: int) -> np.ndarray:
    """The keys of a case: ``fold_in(case_key(seed, case_id), i)`` for i < count (never ``split``
    as well: with ``jax_threefry_partitionable`` on, ``split(k, n)[i] == fold_in(k, i)``)."""
    return derived_keys(case_key(seed, case_id), count)


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform} ({device.device_kind})"


def _vmapped(init, shape, dtype):
    return jax.jit(jax.vmap(lambda key: init(key, shape, dtype)))


_cached_vmapped = functools.lru_cache(maxsize=256)(_vmapped)


def _single(init, shape, dtype):
    return jax.jit(lambda key: init(key, shape, dtype))


_cached_single = functools.lru_cache(maxsize=256)(_single)


def jitted(init, shape: tuple[int, ...], dtype) -> object:
    """``jit(init)`` for one key, compiled once per (init, shape, dtype) and key type."""
    dtype = _dtypes.canonical(dtype)
    try:
        return _cached_single(init, shape, dtype)
    except TypeError:  # unhashable callable
        return _single(init, shape, dtype)


def batched(init, shape: tuple[int, ...], dtype) -> object:
    """``jit(vmap(init))`` over a batch of keys, compiled once per (init, shape, dtype, batch)."""
    dtype = _dtypes.canonical(dtype)
    try:
        return _cached_vmapped(init, shape, dtype)
    except TypeError:  # unhashable callable
        return _vmapped(init, shape, dtype)


def batch_size(shape: tuple[int, ...], chunk_elements: int) -> int:
    """Draws per compiled call: a power of two, at most 1024 and ``chunk_elements`` values, fixed
    per shape so that every draw of a shape reuses one compilation."""
    fit = max(1, chunk_elements // max(1, math.prod(shape)))
    return 1 << (min(fit, 1024).bit_length() - 1)


def draw(init, shape: tuple[int, ...], dtype, keys: jax.Array, *, chunk_elements: int = 2**22) -> np.ndarray:
    """``init(k, shape, dtype)`` for every key, stacked on the host: shape (len(keys), *shape).

    Keys go through in fixed-size batches (the last one padded: at most ``chunk_elements`` wasted
    values, cheaper than a compilation), so device memory stays bounded and each (initializer,
    shape, dtype) compiles once.
    """
    keys = np.asarray(keys)  # raw key data; slicing and padding on the host compile nothing
    count = keys.shape[0]
    batch = batch_size(shape, chunk_elements)
    fn = batched(init, shape, dtype)
    parts = []
    for start in range(0, count, batch):
        chunk = keys[start:start + batch]
        real = chunk.shape[0]
        if real < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
        parts.append(np.asarray(fn(chunk))[:real])
    return np.concatenate(parts)


def pooled(init, shape: tuple[int, ...], dtype, *, seed: int, case_id: str, n: int,
           chunk_elements: int = 2**22) -> np.ndarray:
    """At least ``n`` values: ``ceil(n / size)`` independent draws of ``shape``, shape (K, *shape)."""
    count = max(1, math.ceil(n / max(1, math.prod(shape))))
    return draw(init, shape, dtype, case_keys(seed, case_id, count), chunk_elements=chunk_elements)


class CallTimeout(Exception):
    """The call did not return within its time limit."""


def call_with_timeout(fn, seconds: float):
    """``fn()``'s result, its exception re-raised, or CallTimeout after ``seconds`` (the call is
    abandoned on a daemon thread: a runaway initializer cannot block the session)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="initcheck-call")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CallTimeout(f"did not return within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
