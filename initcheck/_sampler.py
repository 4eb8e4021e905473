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
from collections.abc import Callable

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
    return np.asarray(_fold_in_range(key, np.arange(bucket(count), dtype=np.uint32)))[:count]


def case_keys(seed: int, case_id: str, count: int) -> np.ndarray:
    """The keys of a case: ``fold_in(case_key(seed, case_id), i)`` for i < count (never ``split``
    as well: with ``jax_threefry_partitionable`` on, ``split(k, n)[i] == fold_in(k, i)``)."""
    return derived_keys(case_key(seed, case_id), count)


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform} ({device.device_kind})"


def _compile(init, shape, dtype):
    def one(key):
        return init(key, shape, dtype)

    return jax.jit(jax.vmap(one))


_cached_compile = functools.lru_cache(maxsize=512)(_compile)


def batched(init, shape: tuple[int, ...], dtype) -> Callable[[np.ndarray], jax.Array]:
    """``jit(vmap(init))`` over a batch of keys, compiled once per (init, shape, dtype, batch)."""
    dtype = _dtypes.canonical(dtype)
    try:
        return _cached_compile(init, tuple(shape), dtype)
    except TypeError:  # an unhashable callable: no cache
        return _compile(init, tuple(shape), dtype)


def bucket(count: int) -> int:
    """The smallest power of two >= count."""
    return 1 << max(0, (count - 1).bit_length())


def batch_size(shape: tuple[int, ...], chunk_elements: int, typical_count: int | None = None) -> int:
    """Draws per compiled call: a power of two, at most 1024 draws and ``chunk_elements`` values,
    and no more than ``typical_count`` needs (less padding). Fixed per shape, so every draw of a
    case reuses one compilation."""
    fit = max(1, chunk_elements // max(1, math.prod(shape)))
    batch = 1 << (min(fit, 1024).bit_length() - 1)
    return batch if typical_count is None else min(batch, bucket(typical_count))


def draw(init, shape: tuple[int, ...], dtype, keys, *, batch: int) -> np.ndarray:
    """``init(k, shape, dtype)`` for every key, stacked on the host: shape (len(keys), *shape).

    Keys go through ``batch`` at a time (the last batch padded), so device memory stays bounded
    and each (initializer, shape, dtype, batch) compiles once.
    """
    keys = np.asarray(keys)  # raw key data; slicing and padding on the host compile nothing
    fn = batched(init, shape, dtype)
    parts = []
    for start in range(0, keys.shape[0], batch):
        chunk = keys[start : start + batch]
        real = chunk.shape[0]
        if real < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
        parts.append(np.asarray(fn(chunk))[:real])
    return np.concatenate(parts)


def draws_for(n: int, shape: tuple[int, ...]) -> int:
    """Independent draws of ``shape`` that make at least ``n`` values."""
    return max(1, math.ceil(n / max(1, math.prod(shape))))


CALL_THREAD = "initcheck-call"  # the name of call_with_timeout's threads


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

    thread = threading.Thread(target=target, daemon=True, name=CALL_THREAD)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CallTimeout(f"did not return within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def abandoned_calls() -> bool:
    """A call abandoned by ``call_with_timeout`` still runs on a thread of this process."""
    return any(t.name == CALL_THREAD and t.is_alive() for t in threading.enumerate())


def window(shape: tuple[int, ...], budget: int) -> tuple[int, ...]:
    """The largest window of ``shape`` (outer axes cut first, none below 2) with at most about
    ``budget`` elements."""
    out = list(shape)
    for axis in range(len(out)):
        if math.prod(out) <= budget:
            break
        rest = math.prod(out[axis + 1 :])
        out[axis] = min(shape[axis], max(2, budget // max(rest, 1)))
    return tuple(out)


WINDOW_DRAWS = 4  # draws a bounded sample takes its windows from


def windowed(draws: np.ndarray, n: int) -> np.ndarray:
    """``draws`` (``(K, *shape)``) bounded to about ``n`` values: every draw while they hold at most
    ``2 n``, else a leading window (``window``) of each of the first ``WINDOW_DRAWS`` draws. The
    window is fixed before the values are seen, so under the law its values are i.i.d. like all
    of them, and lags along each axis keep their meaning (``independence``)."""
    if draws.size <= 2 * n or draws.ndim < 2:
        return draws
    count = min(draws.shape[0], WINDOW_DRAWS)
    size = window(draws.shape[1:], max(2, n // count))
    return draws[(slice(0, count), *(slice(0, w) for w in size))]
