"""A real element law rounded to a 16-bit dtype, exactly: the dtype's 65,536 bit patterns enumerated.

A correct 16-bit initializer samples in float32 (or wider) and rounds to nearest, so its output
follows the *rounded law*: value v_i with mass p_i = F(mid_i+) - F(mid_i-), the law's mass between
the midpoints around v_i. Its moments, cell masses and tail masses are what the statistics test a
16-bit sample against; in float32 and wider the rounding is negligible and the law itself is used.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np

from initcheck import _dtypes


def rounded_law_cdf(law, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values, G) with G[i] = P(round_to_dtype(X) <= values[i]) under round-to-nearest."""
    values = _dtypes.representable_values(dtype)
    midpoints = (values[:-1] + values[1:]) / 2
    cdf = np.append(np.asarray(law.cdf(midpoints), np.float64), 1.0)
    return values, cdf


def rounded_masses(law, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values, p): every finite value of the 16-bit ``dtype`` and its mass under the rounded law."""
    values, cdf = rounded_law_cdf(law, dtype)
    return values, np.clip(np.diff(cdf, prepend=0.0), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Moments:
    """Mean, variance and fourth central moment of a (rounded) law."""

    mean: float
    var: float
    mu4: float

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))


def law_moments(law, dtype) -> Moments:
    """The moments a sample in ``dtype`` should have: those of the law rounded to the dtype for
    16-bit dtypes (sum_i p_i v_i, sum_i p_i (v_i - mean)^2, sum_i p_i (v_i - mean)^4), the law's
    own otherwise."""
    if not _dtypes.is_low_precision(dtype):
        return Moments(law.mean, law.var, law.mu4)
    values, p = rounded_masses(law, dtype)
    mean = float(p @ values)
    centred = values - mean
    square = centred * centred
    return Moments(mean, float(p @ square), float(p @ (square * square)))


def tail_masses(law, dtype, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(Y < t), P(Y > t)) for each threshold t, Y the law rounded to ``dtype`` (16-bit), or the
    law itself (wider dtypes, where rounding moves these masses by under 1e-6 of themselves)."""
    thresholds = np.asarray(thresholds, np.float64)
    if not _dtypes.is_low_precision(dtype):
        below = np.asarray(law.cdf(np.nextafter(thresholds, -np.inf)), np.float64)
        return below, 1.0 - np.asarray(law.cdf(thresholds), np.float64)
    values, cdf = rounded_law_cdf(law, dtype)
    below_index = np.searchsorted(values, thresholds, side="left") - 1  # the largest value < t
    at_most_index = np.searchsorted(values, thresholds, side="right") - 1  # the largest value <= t
    take = lambda index: np.where(index >= 0, cdf[np.clip(index, 0, None)], 0.0)
    return take(below_index), 1.0 - take(at_most_index)


def generator_quantum(dtype) -> float:
    """The least mass one output of a correct float32 (float64) sampler can carry: 2^-s, s = 23
    (52). JAX's samplers map an s-bit uniform source through the law's quantile (``normal``:
    ``sqrt(2) erfinv(u)``), so they make at most 2^s distinct values, each drawn with probability
    2^-s or more, wherever the law puts it: a value 5 sd out in a (32000, 768) kernel is expected
    2.9 times, not 10^-5 times. 16-bit dtypes have no floor: a sampler drawing them from 7 or 10
    random bits is their known defect, not their resolution."""
    bits = _dtypes.mantissa_bits(_dtypes.real_part(dtype))
    return 0.0 if bits < 23 else 2.0 ** -(52 if bits >= 52 else 23)


def cell_masses(law, dtype, points: np.ndarray, scale: float) -> np.ndarray:
    """An upper bound on the mass a correct sampler puts on each value in ``points``: the law's
    mass within h of the value, h = max(the dtype's spacing there, 2 * 2^-s * scale), s = 23 (52
    for float64), and at least the generator's quantum 2^-s (``generator_quantum``). The window
    holds the value's whole rounding cell, and the grid a sampler built on an s-bit uniform source
    (JAX's) lands on: in float32 a sample does not reach every float, and each value it reaches
    holds a whole source cell.
    """
    points = np.asarray(points, np.float64)
    real = _dtypes.real_part(dtype)
    bits = _dtypes.mantissa_bits(real)
    tiny = float(ml_dtypes.finfo(real).smallest_subnormal)
    magnitude = np.abs(points)
    exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    spacing = np.maximum(np.where(magnitude > 0, np.exp2(exponent - bits), tiny), tiny)
    h = np.maximum(spacing, 2 * 2.0 ** -(52 if bits >= 52 else 23) * scale)
    upper = np.asarray(law.cdf(points + h), np.float64)
    lower = np.asarray(law.cdf(np.nextafter(points - h, -np.inf)), np.float64)
    return np.clip(np.maximum(upper - lower, generator_quantum(dtype)), 0.0, 1.0)


__all__ = [
    "Moments",
    "cell_masses",
    "generator_quantum",
    "law_moments",
    "rounded_law_cdf",
    "rounded_masses",
    "tail_masses",
]
