"""The exact values a lock records: an initializer's on a few canonical cases and fixed keys, a
model's whole init at the audit's rng, each as a digest (SHA-256 over the bytes) named by what it is.

Values are computed eagerly, as a user's code gets them outside ``jit`` (a jitted call may differ by
an ulp: ``shared/notes/KEY_DERIVATION.md``, float caveats).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from hypothesis import strategies as st

from initcheck import _dtypes, adapters, laws
from initcheck._api import _draw_examples
from initcheck._frameworks import registry
from initcheck._record import Model

CANDIDATE_SHAPES = ((64, 32), (3, 3, 16, 32), (256,), (16, 8, 4), (32, 32))
SHAPES = 2  # canonical shapes per initializer
DTYPES = 3  # dtypes at most, when drawn from a strategy


def digest(value: Any) -> str:
    """``float32[64,32] sha256:<hex>``: the dtype, the shape and the SHA-256 of the bytes (a typed
    PRNG key is its key data, named by its implementation)."""
    if isinstance(value, str):
        return value  # what could not be computed, in words ("raises TypeError")
    if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
        name = f"key<{jax.random.key_impl(value)}>"
        value = jax.random.key_data(value)
    else:
        name = None
    array = np.ascontiguousarray(np.asarray(value))
    name = name or str(array.dtype)
    return f"{name}[{','.join(str(s) for s in array.shape)}] sha256:{hashlib.sha256(array.tobytes()).hexdigest()}"


def _listed(given, count: int) -> list:
    if isinstance(given, st.SearchStrategy):
        return _draw_examples(given, count, 0)
    return list(given)[:count]


def canonical_shapes(law: laws.Law, shapes=None) -> list[tuple[int, ...]]:
    """The declared shapes (the first two, or two drawn from a declared strategy with seed 0), else
    the first two of ``CANDIDATE_SHAPES`` that ``law`` accepts (an exact table's own shape)."""
    if shapes is not None:
        return [tuple(int(s) for s in shape) for shape in _listed(shapes, SHAPES)]
    table = getattr(law, "array", None) if isinstance(law, laws.Deterministic) else None
    if table is not None:
        return [tuple(table.shape)]
    accepted: list[tuple[int, ...]] = [s for s in CANDIDATE_SHAPES if law.error_reason(s, "float32") is None]
    return accepted[:SHAPES] or [CANDIDATE_SHAPES[0]]


def canonical_dtypes(dtypes=None) -> list[str]:
    if dtypes is None:
        return ["float32"]
    return [str(_dtypes.canonical(d)) for d in _listed(dtypes, DTYPES)]


def initializer_cases(law, shapes=None, dtypes=None) -> list[tuple[tuple[int, ...], str, int]]:
    """(shape, dtype, key offset): in each dtype the first shape on two keys, the second on one."""
    chosen = canonical_shapes(laws.as_law(law), shapes)
    cases = []
    for dtype in canonical_dtypes(dtypes):
        cases += [(chosen[0], dtype, 0), (chosen[0], dtype, 1)] + [(s, dtype, 0) for s in chosen[1:]]
    return cases


def case_name(shape: Sequence[int], dtype: str, key: int) -> str:
    return f"{dtype}[{'x'.join(str(s) for s in shape)}] key {key}"


def initializer_values(init: Callable, cases, seed: int) -> dict[str, Any]:
    """``init(jax.random.key(seed + k), shape, dtype)`` on each case, eagerly; a case that raises
    is recorded as the exception's type (a change in what raises is a change too)."""
    init = adapters.canonical(init)
    out: dict[str, Any] = {}
    for shape, dtype, k in cases:
        try:
            value = init(jax.random.key(seed + k), shape, _dtypes.canonical(dtype))
            out[case_name(shape, dtype, seed + k)] = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - what raises is recorded, not raised
            out[case_name(shape, dtype, seed + k)] = f"raises {type(exc).__name__}"
    return out


def model_values(target: Model) -> dict[str, Any]:
    """Every value ``target``'s init makes, by path (Haiku's and linen's prefixed by their
    collection), as the audit initializes it."""
    return registry.of_model(target.model).values(target)


def digests(values: dict[str, Any]) -> dict[str, str]:
    return {name: digest(value) for name, value in sorted(values.items())}
