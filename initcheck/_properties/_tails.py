"""What the KS test of ``distribution`` is blind to: the tails and single values (atoms).

KS measures the largest CDF gap, which is smallest where the CDF is near 0 or 1, so a sampler
whose normal stops at 3.7 sd (about 50 of 2^18 values missing) or that puts a few hundred exact
zeros in a continuous law passes it. Here:

- tails: at the thresholds t_c where the law expects c = 16, 128, 1024, 8192 values beyond (each
  side, c/n < 5%), the counts below and above, and both together, against Binomial(n, P) with P
  the mass beyond t of the law rounded to the dtype (exactly, for 16-bit dtypes);
- atoms: the count of every value seen twice or more against the most any value can hold under the law
  (``_rounding.cell_masses``), with a union bound over every value of the dtype (2^16 for 16-bit,
  2^32 for float32), so natural coincidences never count.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from initcheck import _dtypes, _rounding
from initcheck import _stats as stats

TAIL_COUNTS = (16, 128, 1024, 8192)
MAX_TAIL_SHARE = 0.05


def _quantiles(law, probabilities: np.ndarray) -> np.ndarray:
    """The law's quantiles, read off its CDF on a fine grid (thresholds need only be fixed before
    the data is seen: their exact masses are computed afterwards)."""
    lo, hi = (float(b) for b in (min(i[0] for i in law.intervals()), max(i[1] for i in law.intervals())))
    spread = 40 * law.std if law.std > 0 else 1.0
    lo, hi = max(lo, law.mean - spread), min(hi, law.mean + spread)
    grid = np.linspace(lo, hi, 200_001)
    cdf = np.maximum.accumulate(np.asarray(law.cdf(grid), np.float64))
    return np.interp(probabilities, cdf, grid)


def tail_tests(x_sorted: np.ndarray, law, dtype, what: str = "x") -> list[stats.TestResult]:
    """Counts beyond the law's tail thresholds, each side and both, against the rounded law."""
    n = x_sorted.size
    counts = [c for c in TAIL_COUNTS if c / n <= MAX_TAIL_SHARE]
    if not counts or not law.continuous:
        return []
    q = np.array(counts, np.float64) / n
    lower_t, upper_t = _quantiles(law, q), _quantiles(law, 1 - q)
    below_mass, _ = _rounding.tail_masses(law, dtype, lower_t)
    _, above_mass = _rounding.tail_masses(law, dtype, upper_t)
    below = np.searchsorted(x_sorted, lower_t, side="left")
    above = n - np.searchsorted(x_sorted, upper_t, side="right")
    results = []
    for lt, ut, pb, pa, kb, ka in zip(lower_t, upper_t, below_mass, above_mass, below, above):
        if pb > 0:
            results.append(stats.binomial_two_sided(int(kb), n, pb, f"values of {what} below {lt:.4g}"))
        if pa > 0:
            results.append(stats.binomial_two_sided(int(ka), n, pa, f"values of {what} above {ut:.4g}"))
        if pb > 0 and pa > 0:
            results.append(
                stats.binomial_two_sided(int(kb + ka), n, pb + pa, f"values of {what} outside [{lt:.4g}, {ut:.4g}]")
            )
    return results


def atom_test(x: np.ndarray, law, dtype, atoms: list[float]) -> stats.TestResult | None:
    """Every value seen twice or more (the law's own atoms aside) against the most mass one value
    can hold under the law's continuous part; the most significant, or None when there is none."""
    continuous = law.continuous
    if not continuous:
        return None
    values, counts = np.unique(x, return_counts=True)
    keep = counts >= 2
    if atoms:
        keep &= ~np.isin(values, np.asarray(atoms, np.float64))
    values, counts = values[keep], counts[keep]
    if values.size == 0:
        return None
    part = type(law)(tuple(continuous))  # the continuous part, with its mass
    masses = _rounding.cell_masses(part, dtype, values, law.std if law.std > 0 else 1.0)
    tails = scipy.stats.binom.logsf(counts - 1, x.size, masses)  # log P(K >= count), each value
    worst = int(np.argmin(tails))
    cells = 2.0 ** (8 * _dtypes.real_part(dtype).itemsize)
    return stats.binomial_excess(
        int(counts[worst]), x.size, float(masses[worst]), f"values equal to {values[worst]:.6g}", cells=cells
    )


__all__ = ["atom_test", "tail_tests"]


def pair_mass(law, dtype) -> float:
    """An upper bound on P(x = v) for one i.i.d. draw x and any value v of a real law in a wide dtype:
    the largest atom, and for the continuous part of mass W, W times the largest float cell mass
    (|x| f(x) 2^-m) or the generator's resolution (W 2^-m, an m-bit uniform source), doubled for safety."""
    res = _dtypes.resolution(dtype)
    w = law.continuous_mass
    atom = max((m for _, m in law.atoms), default=0.0)
    return atom + (2 * w * max(law.max_xdensity() * res, w * res) if w > 0 else 0.0)
