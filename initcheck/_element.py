"""Resolved element-wise laws: what one element of an i.i.d. initializer output follows.

A real element law is a mixture ``sum_i w_i P_i`` of frozen continuous scipy.stats distributions and
atoms (point masses). A complex element law is circularly symmetric: a uniform phase, independent of
the squared modulus ``|z|^2``, which follows a real element law.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import special, stats


@dataclasses.dataclass(frozen=True)
class Atom:
    """A point mass at ``value``."""

    value: float

    def cdf(self, x):
        return (np.asarray(x) >= self.value).astype(np.float64)

    def moment(self, k: int) -> float:
        return self.value**k

    def support(self) -> tuple[float, float]:
        return self.value, self.value


def part_cdf(part, x: np.ndarray) -> np.ndarray:
    """``part.cdf(x)``; truncated normals take a fast path (scipy's is ~20x slower at n = 1e6):
    F(x) = (Phi(z) - Phi(a)) / (Phi(b) - Phi(a)), z = (x - loc) / scale, clipped to [0, 1]."""
    if getattr(getattr(part, "dist", None), "name", None) == "truncnorm":
        a, b = part.args if part.args else (part.kwds["a"], part.kwds["b"])
        loc, scale = part.kwds.get("loc", 0.0), part.kwds.get("scale", 1.0)
        lo, hi = special.ndtr(a), special.ndtr(b)
        if hi - lo > 1e-3:
            return np.clip((special.ndtr((x - loc) / scale) - lo) / (hi - lo), 0.0, 1.0)
    return part.cdf(x)


def part_moment(part, k: int) -> float:
    """E[X^k], k <= 4, from the mean m, variance v, skewness and excess kurtosis of a scipy
    distribution: E[X^2] = v + m^2, E[X^3] = mu3 + 3 m v + m^3, E[X^4] = mu4 + 4 m mu3 + 6 m^2 v + m^4
    (scipy's own ``moment`` overflows when loc is tiny, e.g. 1e-230: it divides by loc)."""
    if isinstance(part, Atom):
        return part.moment(k)
    m, v, skew, kurt = _mvsk(part, "mv" if k <= 2 else "mvsk")
    mu3 = skew * v**1.5 if k >= 3 else 0.0
    mu4 = (kurt + 3) * v * v if k >= 4 else 0.0
    return {0: 1.0, 1: m, 2: v + m * m, 3: mu3 + 3 * m * v + m**3, 4: mu4 + 4 * m * mu3 + 6 * m * m * v + m**4}[k]


Part = Any  # a frozen scipy.stats distribution (continuous, or a degenerate one for an atom)

_MVSK: dict[tuple[int, str], tuple[Part, tuple[float, float, float, float]]] = {}


def _mvsk(part, moments: str) -> tuple[float, float, float, float]:
    """``part.stats(moments)`` padded with zeros to (m, v, s, k), computed once per distribution
    object: some (truncexpon's 3rd and 4th moments) integrate numerically, 0.1 s a call."""
    key = (id(part), moments)
    if key not in _MVSK or _MVSK[key][0] is not part:  # the part is kept, so its id is not reused
        values = [float(x) for x in part.stats(moments=moments)] + [0.0] * 4
        _MVSK[key] = (part, (values[0], values[1], values[2], values[3]))
    return _MVSK[key][1]


@dataclasses.dataclass(frozen=True)
class RealLaw:
    """A mixture of continuous scipy distributions and atoms; weights sum to one."""

    parts: tuple[tuple[float, Part], ...]

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """(value, mass) of each atom."""
        return [(p.value, w) for w, p in self.parts if isinstance(p, Atom)]

    @property
    def continuous(self) -> list[tuple[float, Part]]:
        return [(w, p) for w, p in self.parts if not isinstance(p, Atom)]

    @property
    def continuous_mass(self) -> float:
        return sum(w for w, _ in self.continuous)

    def cdf(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.asarray(sum(w * part_cdf(p, x) for w, p in self.parts))

    def continuous_cdf(self, x) -> np.ndarray:
        """CDF of the continuous part alone, renormalized to mass one."""
        x = np.asarray(x, np.float64)
        return np.asarray(sum(w * part_cdf(p, x) for w, p in self.continuous) / self.continuous_mass)

    def raw_moment(self, k: int) -> float:
        return float(sum(w * part_moment(p, k) for w, p in self.parts))

    @property
    def mean(self) -> float:
        return self.raw_moment(1)

    @property
    def var(self) -> float:
        return max(self.raw_moment(2) - self.mean**2, 0.0)

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    @property
    def mu4(self) -> float:
        """Fourth central moment: m4 - 4 m1 m3 + 6 m1^2 m2 - 3 m1^4."""
        m1, m2, m3, m4 = (self.raw_moment(k) for k in (1, 2, 3, 4))
        return m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4

    def intervals(self) -> list[tuple[float, float]]:
        """Closed hulls of each part's support (atoms are degenerate intervals)."""
        return [(float(p.support()[0]), float(p.support()[1])) for _, p in self.parts]

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in self.intervals())

    def max_xdensity(self) -> float:
        """sup_x |x| f(x) of the continuous part: bounds the mass of one float cell, |x| 2^-m f(x)."""
        best = 0.0
        for w, p in self.continuous:
            q = p.ppf(np.linspace(1e-9, 1 - 1e-9, 20001))
            best = max(best, w * float(np.nanmax(np.abs(q) * p.pdf(q))))
        return best

    def describe(self) -> str:
        return " + ".join(f"{w:g}*{part_name(p)}" for w, p in self.parts)


@dataclasses.dataclass(frozen=True)
class ComplexLaw:
    """A circularly symmetric complex law: uniform phase, ``|z|^2`` following ``modulus2``."""

    modulus2: RealLaw

    @property
    def second_moment(self) -> float:
        """E|z|^2."""
        return self.modulus2.mean

    def describe(self) -> str:
        return f"circular complex, |z|^2 ~ {self.modulus2.describe()}"


def part_name(p) -> str:
    if isinstance(p, Atom):
        return f"atom({p.value:g})"
    args = ", ".join(f"{a:g}" for a in p.args)
    kwds = ", ".join(f"{k}={v:g}" for k, v in p.kwds.items())
    return f"{p.dist.name}({', '.join(s for s in (args, kwds) if s)})"


def continuous(dist) -> RealLaw:
    return RealLaw(((1.0, dist),))


def atom(value: float) -> RealLaw:
    return RealLaw(((1.0, Atom(float(value))),))


def is_frozen_continuous(obj) -> bool:
    return isinstance(getattr(obj, "dist", None), stats.rv_continuous) and hasattr(obj, "cdf")
