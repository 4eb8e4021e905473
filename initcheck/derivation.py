"""The key a framework derives for a parameter, computed with initcheck's own code (``jax.random``
and ``hashlib`` only, never Flax's ``LazyRng`` nor Haiku's ``PRNGSequence``), checked bit for bit
against the frameworks in ``tests/test_derivation.py``.

- Flax linen: `linen_key(root, path, counter)` is `fold_in(root, u32(sha1(path + counter)[:4]))`.
- Flax nnx: `nnx_key(root, n)` is `fold_in(root, n)`, the key of a stream's `n`-th call.
- Haiku: `haiku_keys(rng)` are the keys `hk.next_rng_key()` returns inside `init(rng)`, in order.

`collisions` groups the parameter paths whose keys are bit-identical, and `key_bytes` compares
legacy and typed keys. How each framework's transforms split keys is modelled in the framework
modules (`initcheck._frameworks`) and documented on the page "Auditing a model and key derivation".
"""

from initcheck._frameworks.derive import collisions, haiku_keys, key_bytes, linen_key, nnx_key

__all__ = ["collisions", "haiku_keys", "key_bytes", "linen_key", "nnx_key"]
