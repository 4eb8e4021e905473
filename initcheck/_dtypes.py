"""Dtype facts the statistics need: resolution, rounding, and the values a 16-bit dtype can hold."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import numpy.typing as npt

DTypeLike = npt.DTypeLike


def canonical(dtype: DTypeLike) -> np.dtype:
    """A numpy dtype for ``dtype`` (strings, numpy, jax and ml_dtypes types)."""
    try:
        return np.dtype(jnp.dtype(dtype))
    except TypeError as exc:
        raise TypeError(f"dtype={dtype!r} is not a dtype; use e.g. 'float32', 'bfloat16' or jnp.float16") from exc


def is_inexact(dtype: DTypeLike) -> bool:
    """Float (bfloat16 included) or complex."""
    return bool(jnp.issubdtype(canonical(dtype), jnp.inexact))


def is_complex(dtype: DTypeLike) -> bool:
    return np.issubdtype(canonical(dtype), np.complexfloating)


def real_part(dtype: DTypeLike) -> np.dtype:
    """float32 for complex64, float64 for complex128, the dtype itself otherwise."""
    dt = canonical(dtype)
    return np.dtype(np.zeros((), dt).real.dtype) if is_complex(dt) else dt


def mantissa_bits(dtype: DTypeLike) -> int:
    """Explicit mantissa bits m: bfloat16 7, float16 10, float32 23, float64 52."""
    return int(ml_dtypes.finfo(real_part(dtype)).nmant)


def resolution(dtype: DTypeLike) -> float:
    """2**-m, the relative resolution of the dtype (and of an m-bit uniform source)."""
    return 2.0 ** -mantissa_bits(dtype)


def eps(dtype: DTypeLike) -> float:
    """Machine epsilon of the dtype's real part."""
    return float(ml_dtypes.finfo(real_part(dtype)).eps)


def is_low_precision(dtype: DTypeLike) -> bool:
    return real_part(dtype).itemsize <= 2


def to_float64(x) -> np.ndarray:
    """Host float64 (or complex128) copy; bfloat16 goes through float32 first."""
    arr = np.asarray(x)
    if is_complex(arr.dtype):
        return arr.astype(np.complex128)
    if arr.dtype.itemsize <= 2:
        arr = arr.astype(np.float32)
    return arr.astype(np.float64)


@functools.cache
def representable_values(dtype: DTypeLike) -> np.ndarray:
    """Every finite value of a 16-bit float dtype, sorted, as float64 (one zero)."""
    dt = canonical(dtype)
    if dt.itemsize != 2:
        raise ValueError(f"dtype={dt} is not a 16-bit float dtype; only those can be enumerated")
    with np.errstate(invalid="ignore"):
        values = np.arange(2**16, dtype=np.uint16).view(dt).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


def allowance(value: float, dtype: DTypeLike, ulps: int) -> float:
    """``ulps`` units of the dtype's spacing at ``value`` (|value| * 2**-m, at least one subnormal)."""
    dt = real_part(dtype)
    return ulps * (abs(value) * resolution(dt) + float(ml_dtypes.finfo(dt).smallest_subnormal))


def as_real_pairs(x: np.ndarray) -> np.ndarray:
    """Complex arrays as (..., 2) arrays of (real, imaginary) parts; real arrays unchanged."""
    return np.stack([x.real, x.imag], -1) if np.iscomplexobj(x) else x
