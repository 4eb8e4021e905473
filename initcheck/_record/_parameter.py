"""One value an audited model creates at init (a parameter, a variable of another collection, or
random state): its value, its declared initializer, the key(s) initcheck derives for it, and what
the initializer gives on them.

A value made inside a lifted transform that maps over layers or members (``nn.scan``, ``nn.vmap``,
``nnx.vmap``, ``hk.layer_stack``, ...) is *stacked*: ``stacked`` names the axes that hold its slices
(outermost transform first), each slice made by one call of the initializer on the slice's shape.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from initcheck import _dtypes, laws

ULPS = 4  # an initializer run compiled (inside scan, jit) may differ from its eager run by a few ulp


@dataclasses.dataclass
class Parameter:
    path: str  # e.g. "Dense_0/kernel", "mlp/~/linear_0/w"
    value: Any  # the framework's value (an array), every slice of it
    declared: Callable | str | None  # the declared initializer, as the framework called it (or the call in words)
    collection: str = "params"  # linen collection, Haiku "params"/"state", nnx Variable type
    expected: Any = None  # ``declared`` applied to the derived key(s), laid out like ``value``
    key: Any = None  # the derived key(s): a typed key array, one per slice (None: no key)
    derivation: str = ""  # how the key was derived, in words
    problem: str | None = None  # why the derivation does not hold, found while recording
    law: laws.Law | None = None  # the law the declared initializer promises (None: unknown)
    drawn_by: Callable | None = None  # the known initializer that drew the value, when initcheck saw one
    hint: str = ""  # context for a failing scale (e.g. how the layer computes its fan)
    underived: str = ""  # why initcheck cannot derive its key (the other checks still run)
    unaudited: str = ""  # why this value cannot be audited at all (e.g. an unmodelled transform)
    stacked: tuple[int, ...] = ()  # axes of ``value`` holding slices, outermost transform first
    draw_shape: tuple[int, ...] | None = None  # the shape one initializer call drew, when a layer reshapes it
    transform: str = ""  # the lifted transforms that stacked it, in words
    note: str = ""  # a fact worth knowing that is not a failure
    is_key: bool = False  # random state: a PRNG key (its value is its key data)
    computed: str = ""  # not an initial value: what the model computed at init (sown, set_state)
    intended: laws.Law | None = None  # the law the model's author intends for it (audit's expect=)
    intent_pattern: str = ""  # the expect pattern that matched it
    key_use: str = ""  # why this random value does not depend on its key (see _key_use)

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.value)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))

    @property
    def dtype(self) -> np.dtype:
        return np.asarray(self.value).dtype

    @property
    def slice_shape(self) -> tuple[int, ...]:
        """The shape one call of the initializer made (a layer's reshape of the draw undone)."""
        if self.draw_shape is not None:
            return self.draw_shape
        return tuple(s for i, s in enumerate(self.shape) if i not in self.stacked)

    @property
    def slice_count(self) -> int:
        return math.prod(self.shape[a] for a in self.stacked)

    def slices(self, value=None) -> np.ndarray:
        """``value`` (default: the stored value) as ``(slices, *slice_shape)``."""
        x = np.asarray(self.value if value is None else value)
        if self.stacked:
            x = np.moveaxis(x, self.stacked, tuple(range(len(self.stacked))))
        return x.reshape((self.slice_count, *self.slice_shape))


def guarded(path: str, value, collection: str, derive: Callable[[], Parameter]) -> Parameter:
    """``derive()``, or, when initcheck's own derivation of this value breaks, a value that is not
    audited and says why: one value initcheck cannot handle never takes the audit down."""
    try:
        return derive()
    except Exception as exc:  # noqa: BLE001 - an initcheck defect on one value is that value's skip
        return Parameter(
            path=path,
            value=value,
            declared=None,
            collection=collection,
            unaudited=f"initcheck could not derive it ({type(exc).__name__}: {exc}); please report this "
            "model to initcheck",
        )


def stack_axes(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``values`` with its leading ``len(axes)`` (slice) axes moved to ``axes``, innermost first:
    the layout in which nested transforms stack what they map over."""
    x = np.asarray(values)
    for depth in reversed(range(len(axes))):
        x = np.moveaxis(x, depth, depth + _positive_axis(axes[depth], x.ndim - depth))
    return x


def stacked_positions(axes: tuple[int, ...], slice_ndim: int) -> tuple[int, ...]:
    """Where the slice axes end up in the stored value when nested transforms insert them at
    ``axes`` (outermost first, each relative to the value it stacks), as ``stack_axes`` lays them."""
    dims: list = ["slice"] * slice_ndim
    for depth in reversed(range(len(axes))):
        dims.insert(_positive_axis(axes[depth], len(dims) + 1), depth)
    return tuple(dims.index(depth) for depth in range(len(axes)))


def _positive_axis(axis: int, ndim: int) -> int:
    return axis if axis >= 0 else axis + ndim


def compare(actual, expected) -> tuple[bool, str]:
    """Whether ``actual`` is ``expected``: bit for bit, or within ``ULPS`` ulp of the largest
    magnitude (an initializer run compiled, inside a lifted transform, may be reassociated by XLA).
    Returns (equal, how)."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape or a.dtype != e.dtype:
        return False, f"{a.dtype}{list(a.shape)} against {e.dtype}{list(e.shape)}"
    if np.array_equal(a, e, equal_nan=True) or a.size == 0:
        return True, "bit for bit"
    if not _dtypes.is_inexact(a.dtype):
        return False, _difference(a, e)
    a64, e64 = _dtypes.to_float64(a), _dtypes.to_float64(e)
    magnitude = max(float(np.max(np.abs(a64))), float(np.max(np.abs(e64))), float(np.finfo(np.float32).tiny))
    if np.all(np.abs(a64 - e64) <= ULPS * _dtypes.resolution(a.dtype) * magnitude):
        return True, f"within {ULPS} ulp (compiled and eager runs of the initializer)"
    return False, _difference(a, e)


def _difference(a: np.ndarray, e: np.ndarray) -> str:
    diff = np.abs(_dtypes.to_float64(a) - _dtypes.to_float64(e))
    return f"{int(np.count_nonzero(diff))} of {a.size} elements differ, by up to {float(np.max(diff)):.3g}"


def is_key(value) -> bool:
    """A typed PRNG key array (random state, e.g. an nnx stream's key)."""
    return jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key)
