"""The checks that run over every value of a parameter whose statistical properties see a sample.

A sample (``_sampling``) keeps each test's false-alarm rate, but a handful of bad values among
millions rarely lands in it. What is exact and cheap is counted over every value on the device,
before the sample is tested:

- ``bounds``: values outside the law's support (allowing ``BOUND_ULPS`` ulp at each end), and
  non-finite values, for every law;
- ``distribution``: non-finite values, and exact zeros of a continuous law without an atom at 0
  (a dropped or masked block) against Binomial(N, m), m the most mass a correct sampler can put on
  0 (``_rounding.cell_masses``: the law's rounding cell, at least the generator's quantum 2^-23 in
  float32), tested at ``alpha / 2`` (the sample's tests keep the other half).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from initcheck import _dtypes, _rounding
from initcheck import _stats as stats
from initcheck._audit import _sampling
from initcheck._element import ComplexLaw
from initcheck._properties import NotApplicable
from initcheck._properties.elementwise import BOUND_ULPS
from initcheck._verdict import Verdict

CHECKED = ("bounds", "distribution")


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


def verdict(name: str, ctx, count: Callable[[list], _sampling.Exact]) -> Verdict | None:
    """A failed verdict when a count over every value already shows the defect, else None (the
    sample is tested). Only for a value the property sees a sample of."""
    bands = intervals(name, ctx)
    if bands is None or not ctx.taken.sampled:
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
