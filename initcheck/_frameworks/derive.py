"""How Flax linen, Flax nnx and Haiku derive the key of each parameter (the framework modules' rules;
``initcheck.derivation`` is what a user calls of it).

initcheck's own, independent code: only ``jax.random`` primitives and ``hashlib`` (never Flax's
``LazyRng`` or scopes, nor Haiku's ``PRNGSequence``), checked bit for bit against the frameworks in
``tests/test_derivation.py`` under every PRNG implementation and setting that changes keys.

- **Flax linen**: ``key = fold_in(root[stream], u32(sha1(b)[:4]))`` with ``b`` the concatenation of
  the scope's module path and the stream's counter in that scope (strings as UTF-8, ints big-endian
  in as few bytes as they need; with ``flax_fix_rng_separator`` each part is preceded by ``b"\\0"``).
  Counters are per (scope, stream), start at 1, and count every ``make_rng``, including the one of
  each new parameter. A stream the init call did not get falls back to ``params``.
- **Flax nnx**: a stream ``s`` of ``nnx.Rngs`` gives ``fold_in(root_s, n)`` on its ``n``-th call
  (from 0); a missing stream falls back to ``default``.
- **Haiku**: ``hk.transform(f).init(rng)`` draws from the sequence ``state, *keys = split(state, R + 1)``
  (``R = rng_reserve_size``, default 1), handing out the keys in order.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def linen_hash_input(path: Sequence[str], counter: int, *, fix_separator: bool = False) -> bytes:
    """The bytes Flax linen hashes for the ``counter``-th key of a stream in the scope at ``path``."""
    parts = []
    for item in (*path, counter):
        if fix_separator:
            parts.append(b"\0")
        if isinstance(item, str):
            parts.append(item.encode("utf-8"))
        elif isinstance(item, int) and item >= 0:
            parts.append(item.to_bytes((item.bit_length() + 7) // 8, "big"))
        else:
            raise TypeError(f"path: {item!r} is neither a str nor a non-negative int")
    return b"".join(parts)


def linen_fold_data(path: Sequence[str], counter: int, *, fix_separator: bool = False) -> int:
    """The uint32 folded into the stream's root key: the first 4 bytes of the SHA-1, big-endian."""
    digest = hashlib.sha1(linen_hash_input(path, counter, fix_separator=fix_separator)).digest()
    return int.from_bytes(digest[:4], "big")


def linen_key(root, path: Sequence[str], counter: int, *, fix_separator: bool = False):
    """The key of the ``counter``-th (from 1) ``make_rng`` of a stream in the scope at ``path``."""
    if counter < 1:
        raise ValueError(f"counter={counter} must be >= 1: Flax pre-increments its counters")
    return jax.random.fold_in(root, jnp.uint32(linen_fold_data(path, counter, fix_separator=fix_separator)))


def linen_roots(rngs) -> dict:
    """The streams of ``Module.init(rngs, ...)``: a bare key is the ``params`` stream."""
    return dict(rngs) if isinstance(rngs, Mapping) else {"params": rngs}


def nnx_root(seed):
    """The root key of an ``nnx.Rngs`` stream: an int seeds ``jax.random.key`` (typed, default
    implementation), raw uint32 key data is wrapped, a typed key is kept."""
    if isinstance(seed, (int, np.integer)):
        return jax.random.key(int(seed))
    if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if seed.dtype == jnp.uint32:
        return jax.random.wrap_key_data(seed)
    raise TypeError(f"rng={seed!r} is not an int, a raw uint32 key or a typed key")


def nnx_key(root, count: int):
    """The key of the ``count``-th (from 0) call of an nnx stream."""
    return jax.random.fold_in(root, jnp.uint32(count))


def haiku_root(rng):
    """The root of ``hk.transform(f).init(rng)``: an int (or int32 scalar) seeds a legacy ``PRNGKey``."""
    if isinstance(rng, (int, np.integer)) or (getattr(rng, "shape", None) == () and rng.dtype == jnp.int32):
        return jax.random.PRNGKey(rng)
    return rng


def haiku_walk(rng, *, reserve_size: int = 1) -> Iterator[tuple]:
    """``(key, (spare, queued keys) after it)`` for each key ``next_rng_key()`` returns inside
    ``init(rng)``, in order: the key and the sequence state that continues after it."""
    if reserve_size < 1:
        raise ValueError(f"reserve_size={reserve_size} must be >= 1")
    state, queue = haiku_root(rng), list[jax.Array]()
    while True:
        if not queue:
            state, *queue = list(jax.random.split(state, reserve_size + 1))
        key = queue.pop(0)
        yield key, (state, tuple(queue))


def haiku_keys(rng, *, reserve_size: int = 1) -> Iterator:
    """The keys Haiku's ``next_rng_key()`` returns, in order, inside ``init(rng)``."""
    return (key for key, _ in haiku_walk(rng, reserve_size=reserve_size))


def haiku_state_after(rng, drawn: int, *, reserve_size: int = 1) -> tuple:
    """``(spare, queued keys)`` of the sequence after ``drawn`` keys: the state that continues it."""
    if drawn == 0:
        return haiku_root(rng), ()
    return next(itertools.islice(haiku_walk(rng, reserve_size=reserve_size), drawn - 1, None))[1]


def typed(key):
    """``key`` as a typed key array; raw ``uint32`` key data is wrapped with the default implementation."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def linen_split(key, count: int):
    """The ``count`` keys of the slices of a linen ``nn.vmap``/``nn.scan`` that splits a stream: the
    stream's base key (before any path is folded in) split ``count`` ways; the path and counter are
    folded into each slice's key afterwards by `linen_key`."""
    return jax.random.split(key, count)


def haiku_layer_stack_roots(key, count: int) -> list:
    """The roots of the ``count`` layers of ``hk.layer_stack`` whose stack drew ``key``: layer ``l``
    runs its own ``init`` on ``split(r_l, 3)[0]``, with ``r_0 = key`` and ``r_{l+1} = split(r_l, 3)[1]``."""
    roots, r = [], key
    for _ in range(count):
        r, following, _apply = jax.random.split(r, 3)
        roots.append(r)
        r = following
    return roots


def flat_keys(keys):
    """``keys`` (typed, or raw ``uint32`` data with its last axis the key's) as a flat sequence of keys."""
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return jnp.reshape(keys, (-1,))
    return jnp.reshape(keys, (-1, keys.shape[-1]))


def key_bytes(key) -> bytes:
    """The raw bits of a legacy or typed key, to compare keys across types."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).tobytes()


def collisions(keys: Mapping[str, object]) -> list[list[str]]:
    """Groups of two or more names (parameter paths) whose keys are bit-identical."""
    groups: dict[bytes, list[str]] = {}
    for name, key in keys.items():
        groups.setdefault(key_bytes(key), []).append(name)
    return [names for names in groups.values() if len(names) > 1]
