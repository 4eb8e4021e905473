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
import jax.numpy as jnp
import numpy as np

from initcheck import _dtypes, laws

ULPS = 4  # an initializer run compiled (inside scan, jit) may differ from its eager run by a few ulp
ON_HOST = 2**20  # values of at most this many elements are compared in numpy, larger ones on the device


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
    lazy: Lazy | None = None  # recorded abstractly (``value`` is a ShapeDtypeStruct): how to make it

    @property
    def array(self) -> np.ndarray:
        if isinstance(self.value, jax.ShapeDtypeStruct):
            raise TypeError(f"{self.path} was recorded abstractly; make it first (Lazy)")
        return np.asarray(self.value)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))

    @property
    def dtype(self) -> np.dtype:
        if isinstance(self.value, (jax.ShapeDtypeStruct, jax.Array)) and not is_key(self.value):
            return np.dtype(self.value.dtype)  # (no host copy of a device array)
        return np.asarray(self.value).dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

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

    def unslices(self, slices):
        """``slices`` (``(slice_count, *slice_shape)``, as ``slices`` gives them) in the stored
        layout (on the device for a device array)."""
        xp = jnp if isinstance(slices, jax.Array) else np
        stacked_dims = [self.shape[a] for a in self.stacked]
        rest = [s for i, s in enumerate(self.shape) if i not in self.stacked]
        x = xp.reshape(slices, (*stacked_dims, *rest))
        return xp.moveaxis(x, tuple(range(len(self.stacked))), self.stacked) if self.stacked else x


@dataclasses.dataclass
class Lazy:
    """How to make a value recorded abstractly (``jax.eval_shape``), one piece at a time.

    ``declared(i)`` is slice ``i`` (``i < slice_count``, in the order of ``Parameter.slices``) made
    by the declared initializer on its derived key (or, for a value whose key is not derived, on the
    key the framework handed it), laid out as the stored value's slice;
    ``own()`` is the model's own init pruned to this value (one jitted program whose other outputs
    XLA removes) and ``own(again=True)`` the same from another root key, or None when it cannot be
    run, ``own_refusal`` saying why.
    """

    declared: Callable[[int], Any] | None  # None: nothing derived for it
    own: Callable[..., Any] | None
    own_refusal: str = ""


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
    Computed on the device, without a host copy of either. Returns (equal, how)."""
    a_dtype, e_dtype = _dtype_of(actual), _dtype_of(expected)
    if np.shape(actual) != np.shape(expected) or a_dtype != e_dtype:
        return False, f"{a_dtype}{list(np.shape(actual))} against {e_dtype}{list(np.shape(expected))}"
    if math.prod(np.shape(actual)) <= ON_HOST:
        return _compare_on_host(np.asarray(actual), np.asarray(expected))
    a, e = jnp.asarray(actual), jnp.asarray(expected)
    if a.size == 0 or bool(_bitwise_equal(a, e)):
        return True, "bit for bit"
    if not _dtypes.is_inexact(a_dtype):
        return False, _difference(a, e)
    magnitude, gap = (float(v) for v in _magnitude_and_gap(a, e))
    magnitude = max(magnitude, float(np.finfo(np.float32).tiny))
    if gap <= ULPS * _dtypes.resolution(a_dtype) * magnitude:
        return True, f"within {ULPS} ulp (compiled and eager runs of the initializer)"
    return False, _difference(a, e)


def _compare_on_host(a: np.ndarray, e: np.ndarray) -> tuple[bool, str]:
    """``compare`` of small arrays in numpy (a device comparison compiles for every shape)."""
    if np.array_equal(a, e, equal_nan=True) or a.size == 0:
        return True, "bit for bit"
    a64, e64 = _dtypes.to_float64(a), _dtypes.to_float64(e)
    diff = np.abs(a64 - e64)
    if _dtypes.is_inexact(a.dtype):
        magnitude = max(float(np.max(np.abs(a64))), float(np.max(np.abs(e64))), float(np.finfo(np.float32).tiny))
        if np.all(diff <= ULPS * _dtypes.resolution(a.dtype) * magnitude):
            return True, f"within {ULPS} ulp (compiled and eager runs of the initializer)"
    return False, f"{int(np.count_nonzero(diff))} of {a.size} elements differ, by up to {float(np.max(diff)):.3g}"


def _dtype_of(x) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(x).dtype


def _wide(x):
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


@jax.jit
def _bitwise_equal(a, e):
    same = a == e
    if jnp.issubdtype(a.dtype, jnp.inexact):
        same |= jnp.isnan(a) & jnp.isnan(e)
    return jnp.all(same)


@jax.jit
def _magnitude_and_gap(a, e):
    a, e = _wide(a), _wide(e)
    magnitude = jnp.maximum(jnp.max(jnp.abs(a)), jnp.max(jnp.abs(e)))
    gap = jnp.where(jnp.isnan(a) & jnp.isnan(e), 0, jnp.abs(a - e))
    return magnitude, jnp.max(jnp.where(jnp.isnan(gap), jnp.inf, gap))


@jax.jit
def _differences(a, e):
    diff = jnp.abs(_wide(a) - _wide(e))
    differs = diff != 0
    return jnp.sum(differs), jnp.max(jnp.where(differs, diff, 0))


def _difference(a, e) -> str:
    count, largest = _differences(a, e)
    return f"{int(count)} of {a.size} elements differ, by up to {float(largest):.3g}"


def is_key(value) -> bool:
    """A typed PRNG key array (random state, e.g. an nnx stream's key)."""
    return jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key)
