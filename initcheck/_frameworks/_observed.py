"""The known initializers a model calls while it is built, whatever wraps them, and the keys it
splits and folds by hand.

A model's initializer is often a function of its own around a known one: MaxText's and t5x's
``nd_dense_init`` builds ``jax.nn.initializers.variance_scaling`` with axes given at call time; an
nnx layer makes its bias with ``jax.nn.initializers.constant(0.0)(rngs.params(), ...)`` outside any
``*_init`` argument. While the model is built, a profile hook sees every return from the code of
JAX's and Haiku's initializers and keeps its law (read from the closure's variables), key, shape,
dtype and output. A value whose array *is* such an output (the same object) has that call's law.

The same hook sees ``jax.random.split`` and ``jax.random.fold_in`` on concrete keys (an ensemble
made from ``jax.random.split(rngs.params(), n)``): :func:`resolve` follows them from a key initcheck
derived to the keys made from it, with initcheck's own ``split``/``fold_in``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import random as jrandom

from initcheck import laws
from initcheck._frameworks import haiku_laws, jax_laws
from initcheck._frameworks.derive import flat_keys, key_bytes


@dataclasses.dataclass(eq=False)
class KnownCall:
    """One call of a known initializer: ``init(key, shape, dtype) -> output``."""

    law: laws.Law
    init: Callable[..., Any]  # a callable that draws what the call drew: init(key, shape, dtype)
    key: Any
    shape: tuple
    dtype: Any
    output: Any
    name: str  # the call in words, e.g. variance_scaling(1.0, 'fan_in', 'normal', ...)


@dataclasses.dataclass(eq=False)
class KeyOp:
    """``jax.random.split(key, arg)`` or ``jax.random.fold_in(key, arg)`` on a concrete key, by the
    raw data of its key and of its outputs."""

    kind: str
    key: bytes
    arg: Any
    outputs: list


def _key_data(key) -> bytes | None:
    if isinstance(key, jax.core.Tracer):
        return None
    typed = jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).tobytes()


def _op_arg(kind: str, local_vars):
    """The count of a ``split`` (an int, or a tuple of ints) or the data of a ``fold_in``, or None
    when it is traced or missing."""
    arg = local_vars.get("num") if kind == "split" else local_vars.get("data")
    if isinstance(arg, jax.core.Tracer) or arg is None:
        return None
    if kind == "split":
        counts = tuple(int(a) for a in np.atleast_1d(arg))
        return counts if len(counts) > 1 else counts[0]
    return int(np.asarray(arg))


def _raw(key):
    return jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def _key_op(kind: str, key: bytes, arg, out_data) -> KeyOp:
    data = np.asarray(out_data)
    rows = data.reshape(-1, data.shape[-1]) if kind == "split" else data.reshape(1, -1)
    return KeyOp(kind, key, arg, [row.tobytes() for row in rows])


def _record_key_op(ops: list[KeyOp], kind: str, local_vars, output) -> None:
    key = _key_data(local_vars.get("key"))
    arg = _op_arg(kind, local_vars)
    if key is None or isinstance(output, jax.core.Tracer) or arg is None:
        return
    ops.append(_key_op(kind, key, arg, _raw(output)))


def record_traced_key_op(ops: list[KeyOp], kind: str, local_vars, output) -> None:
    """A ``split`` or ``fold_in`` of a traced key (the abstract path runs the init under
    ``jax.jit``): its ``KeyOp``, filled in with its key's and its outputs' data when the program runs."""
    key, arg = local_vars.get("key"), _op_arg(kind, local_vars)
    if key is None or not isinstance(output, jax.core.Tracer) or arg is None:
        return
    record = lambda key_data, out_data: ops.append(_key_op(kind, np.asarray(key_data).tobytes(), arg, out_data))
    jax.debug.callback(record, _raw(key), _raw(output), ordered=True)


def resolve(data: bytes, lookup, ops: list[KeyOp], depth: int = 0):
    """``(own key, text)`` for the key whose raw data is ``data``: ``lookup(data)`` for a key
    initcheck derived, else through a recorded split or fold-in of such a key, computed with
    initcheck's own ``split``/``fold_in``; None when neither leads to one."""

    found = lookup(data)
    if found is not None or depth > 8:
        return found
    for op in ops:
        if data not in op.outputs:
            continue
        base = resolve(op.key, lookup, ops, depth + 1)
        if base is None:
            continue
        if op.kind == "fold_in":
            return jax.random.fold_in(base[0], jnp.uint32(op.arg)), f"fold_in({base[1]}, {op.arg})"

        i = op.outputs.index(data)
        return flat_keys(jax.random.split(base[0], op.arg))[i], f"split({base[1]}, {op.arg})[{i}]"
    return None


class DerivedKeys:
    """Every key initcheck derived, by the raw data of the key the framework used for it, with how
    it was derived; ``get`` also follows the splits and fold-ins the model made by hand from them."""

    def __init__(self, key_ops: list[KeyOp]):
        self.known: dict[bytes, tuple[Any, str]] = {}
        self.key_ops = key_ops

    def add(self, own, text: str, actual=None) -> None:
        """``own`` (and how, ``text``) for the framework's key ``actual`` (default: ``own`` itself)."""

        self.known.setdefault(key_bytes(own if actual is None else actual), (own, text))

    def get(self, data: bytes):
        """``(own key, text)`` for the framework's key whose raw data is ``data``, or None."""
        found = resolve(data, self.known.get, self.key_ops)
        if found is not None:
            self.known.setdefault(data, found)
        return found


def _known_codes() -> dict:
    """code object -> reader(frame locals) -> (law, re-runnable init, name): JAX's builders and
    Haiku's initializer classes."""
    return {**jax_laws.known_codes(), **haiku_laws.known_codes()}


_CODES: dict | None = None


@contextlib.contextmanager
def watching(calls: list[KnownCall], key_ops: list[KeyOp] | None = None):
    """Record every known-initializer call made inside the block (on this thread), and into
    ``key_ops`` every split and fold-in of a concrete key. Under another profiler (cProfile, a
    debugger's hook), nothing is recorded rather than displacing it."""
    global _CODES
    if sys.getprofile() is not None:
        yield calls
        return
    if _CODES is None:
        _CODES = _known_codes()
    codes = _CODES

    key_codes = {jrandom.split.__code__: "split", jrandom.fold_in.__code__: "fold_in"}
    busy: list[bool] = []  # recording a key op runs JAX code: not watched

    def hook(frame, event, arg):
        if event != "return" or busy:
            return
        reader = codes.get(frame.f_code)
        if reader is not None:
            _record(calls, reader, frame.f_locals, arg)
        elif key_ops is not None and (kind := key_codes.get(frame.f_code)) is not None:
            busy.append(True)
            try:
                _record_key_op(key_ops, kind, frame.f_locals, arg)
            except Exception:  # noqa: BLE001 - an op initcheck cannot read is not followed
                pass
            finally:
                busy.pop()

    sys.setprofile(hook)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def _record(calls: list[KnownCall], reader, local_vars, output) -> None:
    try:
        law, init, name = reader(local_vars)
    except Exception:  # noqa: BLE001 - a call initcheck cannot read is simply not known
        return
    if law is None:
        return
    haiku = "self" in local_vars
    key = None if haiku else local_vars.get("key")
    shape = _as_shape(local_vars.get("shape"))
    if shape is not None:  # a shape initcheck cannot read: the call is simply not known
        calls.append(KnownCall(law, init, key, shape, local_vars.get("dtype"), output, name))


def _as_shape(shape) -> tuple[int, ...] | None:
    """A shape as JAX takes it (a sequence of ints, or one int: Gemma's ``scale_init(key, dim)``), or
    None when it is neither."""
    if shape is None:
        return ()
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    try:
        return tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        return None


def made_by(value, calls: list[KnownCall]) -> KnownCall | None:
    """The known call whose output *is* ``value`` (the same object), if any."""
    return next((c for c in reversed(calls) if c.output is value), None)


__all__ = ["DerivedKeys", "KeyOp", "KnownCall", "made_by", "resolve", "watching"]
