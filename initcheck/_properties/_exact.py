"""The checks that run over every value when the statistical properties see a bounded sample.

A sample (the audit's ``_sampling``, ``check``'s ``_sampler.windowed``) keeps each test's
false-alarm rate, but a handful of bad values among millions rarely lands in it. What is exact
and cheap is counted over every value (on the device in an audit, on the host in ``check``,
whose draws are there already), before the sample is tested:

- ``bounds``: values outside the law's support (allowing ``BOUND_ULPS`` ulp at each end), and
  non-finite values, for every law;
- ``distribution``: non-finite values, and exact zeros of a continuous law without an atom at 0
  (a dropped or masked block) against Binomial(N, m), m the most mass a correct sampler can put on
  0 (``_rounding.cell_masses``: the law's rounding cell, at least the generator's quantum 2^-23 in
  float32), tested at ``alpha / 2`` (the sample's tests keep the other half).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from initcheck import _dtypes, _rounding
from initcheck import _stats as stats
from initcheck._element import ComplexLaw
from initcheck._properties._context import NotApplicable
from initcheck._verdict import Verdict

BOUND_ULPS = 4  # rounding allowance at a support bound

CHECKED = ("bounds", "distribution")


@dataclasses.dataclass(frozen=True)
class Exact:
    """What is counted over every value."""

    total: int
    nonfinite: int
    outside: int  # values outside the intervals (tolerances included), non-finite ones included
    farthest: float  # the outside value farthest from 0 (nan when none)
    zeros: int


def on_host(values: np.ndarray, intervals: list[tuple[float, float]]) -> Exact:
    """``Exact`` of values on the host (``|z|^2`` of complex ones)."""
    x = _dtypes.to_float64(np.asarray(values)).ravel()
    x = np.abs(x) ** 2 if np.iscomplexobj(x) else x
    inside = np.zeros(x.shape, bool) if intervals else np.isfinite(x)
    for lo, hi in intervals:
        inside |= (x >= lo) & (x <= hi)
    outside = x[~inside]
    finite_outside = outside[np.isfinite(outside)]
    far = float(finite_outside[np.argmax(np.abs(finite_outside))]) if finite_outside.size else float("nan")
    return Exact(x.size, int(np.sum(~np.isfinite(x))), int(outside.size), far, int(np.sum(x == 0)))


def intervals(name: str, ctx) -> list[tuple[float, float]] | None:
    """The intervals ``verdict`` counts values outside of for property ``name`` (none: only
    non-finite values count), or None when it counts nothing."""
    if name not in CHECKED:
        return None
    try:
        law = ctx.element_law
    except (NotApplicable, ValueError, NotImplementedError):
        return None
    complex_law = isinstance(law, ComplexLaw)
    real = law.modulus2 if complex_law else law
    if name == "bounds" and real.bounded:
        tol = lambda v: _dtypes.allowance(v, ctx.dtype, BOUND_ULPS) * (2 if complex_law else 1)
        return [(lo - tol(lo), hi + tol(hi)) for lo, hi in real.intervals()]
    return []


def verdict(name: str, ctx, count: Callable[[list], Exact]) -> Verdict | None:
    """A failed verdict when a count over every value (``count(intervals)``) already shows the
    defect, else None (the sample is tested). Only for values the property sees a sample of."""
    bands = intervals(name, ctx)
    if bands is None:
        return None
    law = ctx.element_law
    complex_law = isinstance(law, ComplexLaw)
    real = law.modulus2 if complex_law else law
    what = "|z|^2" if complex_law else "x"
    counts = count(bands)
    n = counts.total
    if counts.nonfinite:
        return ctx.failed(name, f"{counts.nonfinite} of all {n} values are not finite (nan or inf)", n=n)
    if bands and counts.outside:
        hulls = ", ".join(f"[{lo:.6g}, {hi:.6g}]" for lo, hi in real.intervals())
        return ctx.failed(
            name,
            f"{counts.outside} of all {n} values of {what} outside the support {hulls} (allowing {BOUND_ULPS} ulp); "
            f"the farthest is {counts.farthest:.6g}",
            n=n,
            statistic=float(counts.outside),
        )
    if name == "distribution" and not complex_law and real.continuous and 0.0 not in [float(v) for v, _ in real.atoms]:
        part = type(real)(tuple(real.continuous))
        mass = float(_rounding.cell_masses(part, ctx.dtype, np.zeros(1), real.std if real.std > 0 else 1.0)[0])
        result = stats.binomial_excess(counts.zeros, n, mass, f"exact zeros among all {n} values")
        if result.pvalue < ctx.profile.alpha / 2:
            return ctx.verdict(name, result, n=n, alpha=ctx.profile.alpha / 2)
    return None
