"""Whether random values really depend on the model's key, whatever the key bookkeeping says.

``derivation`` checks that a value equals its declared initializer on the key the framework hands
over; an initializer that ignores that key (a fixed ``PRNGKey(42)``, a key drawn once and captured
in two lambdas, ``hk.next_rng_key()`` drawn once and used twice, an ``nnx.Rngs(0)`` made inside the
model) reproduces its value all the same. So, for every value whose law is random (or, without a
known law, that changes with the root key):

- **unchanged**: the model is initialized a second time from another root key; a value (or a slice
  of a stacked one) that comes out bit-identical ignores the model's key;
- **fixed seeds**: a value with no known law that comes out the same from another root key and is
  not constant is made once more from the first root key with every key that the init makes from a
  seed (``jax.random.key(0)``, ``PRNGKey(0)``, an ``nnx.Rngs(0)`` inside the model) moved
  (``salted_seeds``); if it then changes, it was drawn with a fixed key (a table computed without a
  key, such as a sinusoidal embedding, does not change);
- **copies**: no two such values (slices) of one size are bit-identical or exactly correlated
  (|r| > 1 - 1e-4; two independent values of 32 or more elements come that close with probability
  far below 1e-30), and no two of different sizes begin with exactly correlated first 64 elements
  (one key drawn at two shapes: JAX's generator makes the same first elements at every shape).
"""

from __future__ import annotations

import contextlib
import dataclasses
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


SEED_SALT = 1_000_003  # added to every seed a key is made from, in the init made with salted_seeds


@contextlib.contextmanager
def salted_seeds():
    """While the block runs, ``jax.random.key(seed)`` and ``jax.random.PRNGKey(seed)`` make the key
    of ``seed + SEED_SALT``: an init run in it changes exactly the values drawn from keys made from
    seeds (calls that bound those functions before, ``from jax.random import key``, are not seen)."""
    made = {name: getattr(jax.random, name) for name in ("key", "PRNGKey")}

    def salted(make):
        return lambda seed, *args, **kwargs: make(seed + SEED_SALT, *args, **kwargs)

    for name, make in made.items():
        setattr(jax.random, name, salted(make))
    try:
        yield
    finally:
        for name, make in made.items():
            setattr(jax.random, name, make)


def fixed_seed_candidates(parameters: list[Parameter], again: dict[str, Parameter]) -> list[Parameter]:
    """Values with no known law, the same from another root key and not constant: made without the
    model's key, either computed (a sinusoidal table) or drawn with a fixed key (``salted_seeds``)."""
    found = []
    for p in parameters:
        q = again.get(p.path)
        if p.is_key or p.computed or (p.intended or p.law) is not None or q is None or p.array.size < 2:
            continue
        if not _dtypes.is_inexact(p.dtype) or q.array.tobytes() != p.array.tobytes():
            continue
        values = np.asarray(p.array)
        if np.all(values == values.reshape(-1)[0]):
            continue
        found.append(p)
    return found


def fixed_seeds(candidates: list[Parameter], salted: dict[str, Parameter]) -> dict[str, str]:
    """path -> why, for candidates that changed when the keys made from seeds were moved."""
    why = {}
    for p in candidates:
        q = salted.get(p.path)
        if q is not None and q.array.shape == p.array.shape and q.array.tobytes() != p.array.tobytes():
            why[p.path] = (
                f"{p.path}: it is the same from every root key, and changes when the keys the init makes from "
                "seeds (jax.random.key(0), PRNGKey(0), nnx.Rngs(0)) change: it was drawn with a fixed key; draw it "
                "with the key the model hands over (nnx's rngs, self.make_rng, hk.next_rng_key, the factory's key)"
            )
    return why


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
    for path, problem in prefix_copies(
        [q for name, p, i in members for q in _prefixes_of(p, [(name, i)])], same_size=False
    ).items():
        why.setdefault(path, problem)


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The first ``PREFIX`` elements of one random value (slice), centred and normalized: all the
    comparison of values of different sizes keeps of it (a value made one at a time is released)."""

    name: str  # the value's path, with [i] for a slice of a stacked one
    owner: str  # the value's path
    size: int  # elements of the value (slice)
    row: np.ndarray


def prefixes(p: Parameter) -> list[Prefix]:
    """The prefixes of a random value made whole (each slice's), or [] (not random, too small, not made)."""
    if isinstance(p.value, jax.ShapeDtypeStruct) or not is_random(p, None):
        return []
    names = [(f"{p.path}[{i}]" if p.stacked else p.path, i) for i in range(p.slice_count)]
    return _prefixes_of(p, names)


def _prefixes_of(p: Parameter, names: list[tuple[str, int]]) -> list[Prefix]:
    size = p.size // max(p.slice_count, 1)
    if size < PREFIX:
        return []
    firsts = p.slices().reshape(p.slice_count, -1)[:, :PREFIX]
    out = []
    for name, i in names:
        row = _dtypes.to_float64(firsts[i])
        row = row - row.mean()
        norm = float(np.linalg.norm(row))
        out.append(Prefix(name, p.path, size, row / norm if norm > 0 else row))
    return out


def prefix_copies(items: list[Prefix], *, same_size: bool = True) -> dict[str, str]:
    """path -> why, for values whose first ``PREFIX`` elements are an affine copy (|r| > CORRELATED)
    of another value's (of another size; of the same size too with ``same_size``: by chance, with
    probability below 1e-100 per pair)."""
    why: dict[str, str] = {}
    if len(items) < 2:
        return why
    gram = np.abs(np.stack([item.row for item in items]) @ np.stack([item.row for item in items]).T)
    owner = [item.owner for item in items]
    group = [(item.name,) for item in items]
    for i, j in zip(*np.nonzero(np.triu(gram > CORRELATED, 1))):
        if owner[i] == owner[j] or (not same_size and items[i].size == items[j].size):
            continue
        relation = "an affine copy" if items[i].size == items[j].size else "at another shape, an affine copy"
        _blame(why, owner, group, int(i), int(j), f"{relation} (r = {gram[i, j]:.6f}) of")
    return why


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


__all__ = ["Prefix", "copies", "is_random", "other_rng", "prefix_copies", "prefixes", "unchanged", "unchanged_reason"]
