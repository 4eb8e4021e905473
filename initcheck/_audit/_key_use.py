"""Whether random values really depend on the model's key, whatever the key bookkeeping says.

``derivation`` checks that a value equals its declared initializer on the key the framework hands
over; an initializer that ignores that key (a fixed ``PRNGKey(42)``, a key drawn once and captured
in two lambdas, ``hk.next_rng_key()`` drawn once and used twice, an ``nnx.Rngs(0)`` made inside the
model) reproduces its value all the same. So, for every value whose law is random (or, without a
known law, that changes with the root key):

- **unchanged**: the model is initialized a second time from another root key; a value (or a slice
  of a stacked one) that comes out bit-identical ignores the model's key;
- **copies**: no two such values (slices) of one size are bit-identical or exactly correlated
  (|r| > 1 - 1e-4; two independent values of 32 or more elements come that close with probability
  far below 1e-30), and no two of different sizes begin with exactly correlated first 64 elements
  (one key drawn at two shapes: JAX's generator makes the same first elements at every shape).
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np

from initcheck import _dtypes
from initcheck._record import Parameter

SAMPLE = 4096  # elements per value compared for correlation before the full check
CORRELATED = 1 - 1e-4  # |r| above this: one value is an affine copy of the other
MIN_CORRELATION_SIZE = 32
PREFIX = 64  # first elements of values of different sizes compared (|r| > CORRELATED by chance: < 1e-100)


def other_rng(rng):
    """Another root for the second initialization: every stream moved."""

    if isinstance(rng, dict):
        return {name: other_rng(value) for name, value in rng.items()}
    if isinstance(rng, (int, np.integer)):
        return int(rng) + 1_000_003
    return jax.random.fold_in(rng, 0x5EED)


def is_random(p: Parameter, again: Parameter | None) -> bool:
    """A value that must depend on the key: its (intended or declared) law is random, or, with no
    known law, it changed when the model was initialized from another root key (``again``; a table
    computed without a key, such as a sinusoidal embedding, stays the same and is not random)."""
    if p.is_key or p.computed or p.array.size < 2:
        return False
    law = p.intended or p.law
    if law is not None:
        return bool(law.random)
    return again is not None and again.array.shape == p.array.shape and again.array.tobytes() != p.array.tobytes()


def _minimum_identical_size(dtype) -> int:
    """Elements two independent values need before bit-identity cannot be chance."""
    return 8 if _dtypes.is_low_precision(dtype) else 2


def unchanged(parameters: list[Parameter], again: dict[str, Parameter], cause: str) -> dict[str, str]:
    """path -> why, for values of a random law that come out the same from another root key
    (``again``: path -> the value then)."""
    why = {}
    for p in parameters:
        q = again.get(p.path)
        if q is None or not is_random(p, q) or q.array.shape != p.array.shape:
            continue
        if p.array.size < _minimum_identical_size(p.dtype):
            continue
        same = [i for i, (a, b) in enumerate(zip(p.slices(), q.slices())) if a.tobytes() == b.tobytes()]
        if not same:
            continue
        why[p.path] = unchanged_reason(p, same, cause)
    return why


def unchanged_reason(p: Parameter, same: list[int], cause: str) -> str:
    """Why ``p`` ignores the model's key: it (its slices ``same``) came out bit for bit the same
    from another root key."""
    what = "it is" if not p.stacked else f"slices {same[:4]}{' ...' if len(same) > 4 else ''} of it are"
    return f"{p.path}: {what} bit for bit the same when the model is initialized from another root key: {cause}"


def copies(parameters: list[Parameter], again: dict[str, Parameter]) -> dict[str, str]:
    """path -> why, for random values (slices) bit-identical to or exactly correlated with another's.
    Slices are compared by their bytes' digest and screened for correlation on a fixed subsample
    of ``SAMPLE`` elements; only a screened pair is read whole (no float64 copy of every value)."""
    vectors: dict[int, list[tuple[str, Parameter, int]]] = {}
    for p in parameters:
        if not is_random(p, again.get(p.path)):
            continue
        size = p.array.size // max(p.slice_count, 1)
        if size >= _minimum_identical_size(p.dtype):
            for i in range(p.slice_count):
                vectors.setdefault(size, []).append((f"{p.path}[{i}]" if p.stacked else p.path, p, i))
    why: dict[str, str] = {}
    for size, group in vectors.items():
        if len(group) < 2:
            continue
        owner = [name.split("[")[0] for name, _, _ in group]
        slices = {id(p): p.slices().reshape(p.slice_count, -1) for _, p, _ in group}
        rows = [slices[id(p)][i] for _, p, i in group]
        digests = [hashlib.sha256(np.ascontiguousarray(row).view(np.uint8).data).digest() for row in rows]
        seen: dict[bytes, int] = {}
        for j, digest in enumerate(digests):
            i = seen.setdefault(digest, j)
            if i != j and owner[i] != owner[j]:
                _blame(why, owner, group, i, j, "bit-identical to")
        if size < MIN_CORRELATION_SIZE:
            continue
        for i, j, r in _correlated_pairs(rows):
            if owner[i] != owner[j] and digests[i] != digests[j]:
                _blame(why, owner, group, i, j, f"exactly correlated (r = {r:+.6f}) with")
    _prefix_copies(why, [member for group in vectors.values() for member in group])
    return why


def _prefix_copies(why: dict[str, str], members: list[tuple[str, Parameter, int]]) -> None:
    """Values (slices) of different sizes drawn from one key: JAX's counter-based generator makes
    the first elements of ``normal(key, shape)`` the same for every shape, so the first ``PREFIX``
    elements of one are an affine copy of the other's (the second layer handed the first layer's
    key, at another shape and scale)."""
    members = [m for m in members if m[1].size // max(m[1].slice_count, 1) >= PREFIX]
    if len(members) < 2:
        return
    owner = [name.split("[")[0] for name, _, _ in members]
    size = [m[1].size // max(m[1].slice_count, 1) for m in members]
    firsts = {id(p): p.slices().reshape(p.slice_count, -1)[:, :PREFIX] for _, p, _ in members}
    rows = np.stack([_dtypes.to_float64(firsts[id(p)][i]) for _, p, i in members])
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1)
    ok = norms > 0
    rows[ok] /= norms[ok, None]
    gram = np.abs(rows @ rows.T)
    for i, j in zip(*np.nonzero(np.triu(gram > CORRELATED, 1))):
        if owner[i] != owner[j] and size[i] != size[j]:
            _blame(why, owner, members, int(i), int(j), f"at another shape, an affine copy (r = {gram[i, j]:.6f}) of")


def _blame(why: dict[str, str], owner: list[str], group, i: int, j: int, relation: str) -> None:
    for a, b in ((i, j), (j, i)):
        why.setdefault(
            owner[a],
            f"{group[a][0]} is {relation} {group[b][0]}: the two were drawn from one key "
            "(a key drawn once and used twice?)",
        )


def _correlated_pairs(values: list[np.ndarray]) -> list[tuple[int, int, float]]:
    """(i, j, r) for pairs whose correlation exceeds CORRELATED in absolute value: screened on a
    fixed subsample of SAMPLE elements, confirmed on all of them."""
    size = values[0].size
    index = np.linspace(0, size - 1, min(size, SAMPLE)).astype(np.int64)
    sub = np.stack([_dtypes.to_float64(v[index]) for v in values])
    sub = sub - sub.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(sub, axis=1)
    ok = norms > 0
    sub[ok] /= norms[ok, None]
    gram = sub @ sub.T
    out = []
    for i, j in zip(*np.nonzero(np.triu(np.abs(gram) > CORRELATED, 1))):
        a, b = _dtypes.to_float64(values[i]), _dtypes.to_float64(values[j])
        a, b = a - a.mean(), b - b.mean()
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
        r = float(a @ b) / denominator if denominator > 0 else 0.0
        if abs(r) > CORRELATED:
            out.append((int(i), int(j), r))
    return out


__all__ = ["copies", "is_random", "other_rng", "unchanged", "unchanged_reason"]
