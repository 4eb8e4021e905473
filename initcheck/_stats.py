"""Statistical tests: pure functions of samples and laws (no JAX, pytest or Hypothesis).

Every test returns a :class:`TestResult` whose p-value is valid (or conservative) under the null
hypothesis that the sample follows the law, allowing for the stated rounding ``allowance``.
A family of sub-tests is combined with Bonferroni: ``p = min(1, k * min_i p_i)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

POWER = 0.99  # power at which minimum detectable effects are stated


@dataclasses.dataclass(frozen=True)
class TestResult:
    """One test: ``statistic`` and ``pvalue`` first (scipy's convention), then what it was."""

    statistic: float
    pvalue: float
    name: str
    detail: str

    __test__ = False  # not a pytest class


def bonferroni(results: Sequence[TestResult]) -> TestResult:
    """The most significant of ``results``, its p-value multiplied by their number."""
    worst = min(results, key=lambda r: r.pvalue)
    return dataclasses.replace(worst, pvalue=min(1.0, worst.pvalue * len(results)))


EXACT_KS_UP_TO = 2**14  # larger samples take the Dvoretzky-Kiefer-Wolfowitz-Massart bound


def ks_test(x: np.ndarray, cdf: Callable, *, allowance: float = 0.0, name: str = "KS") -> TestResult:
    """Kolmogorov-Smirnov sup|F_n - F|, less a CDF ``allowance``.

    With D the distance of the sample and d the allowance, p = P(D_n >= D - d), conservative when the
    sampled law is within d of F in sup norm (e.g. rounding to a low-precision dtype). P is scipy's
    exact ``kstwo`` up to ``EXACT_KS_UP_TO`` values, else Massart's bound
    P(D_n >= t) <= 2 exp(-2 n t^2), always conservative and within a factor 1 + 1e-20 of the exact
    tail where p < 1e-5 (the next term of Kolmogorov's series is exp(-8 n t^2)); the exact p at
    n = 2^18 costs 30 ms a call.
    """
    x = np.sort(np.asarray(x, np.float64).ravel())
    n = x.size
    u = np.clip(cdf(x), 0.0, 1.0)
    i = np.arange(1, n + 1)
    d = max(float(np.max(i / n - u)), float(np.max(u - (i - 1) / n)))
    excess = max(d - allowance, 0.0)
    if excess <= 0:
        p = 1.0
    elif n <= EXACT_KS_UP_TO:
        p = float(stats.kstwo.sf(excess, n))
    else:
        p = min(1.0, 2.0 * math.exp(-2.0 * n * excess * excess))
    return TestResult(d, p, name, f"{name} D={d:.3g} (allowance {allowance:.2g}, n={n})")


def mean_test(x: np.ndarray, mean: float, var: float, *, allowance: float = 0.0) -> TestResult:
    """z-test of the sample mean against ``mean``, excess beyond ``allowance`` (absolute)."""
    x = np.asarray(x, np.float64).ravel()
    got = float(x.mean())
    se = math.sqrt(var / x.size)
    z = max(abs(got - mean) - allowance, 0.0) / se
    p = float(2 * stats.norm.sf(z))
    return TestResult(
        math.copysign(z, got - mean), p, "mean", f"mean {got:.5g} vs {mean:.5g} (z={z:.2f}, allowance {allowance:.2g})"
    )


def variance_test(x: np.ndarray, mean: float, var: float, mu4: float, *, rel_allowance: float = 0.0) -> TestResult:
    """z-test of m2 = mean((x - mean)^2) against ``var``; Var(m2) = (mu4 - var^2) / n."""
    x = np.asarray(x, np.float64).ravel()
    m2 = float(np.mean((x - mean) ** 2))
    se = math.sqrt(max(mu4 - var**2, 1e-300) / x.size)
    z = max(abs(m2 - var) - rel_allowance * var, 0.0) / se
    p = float(2 * stats.norm.sf(z))
    ratio = math.sqrt(m2 / var)
    return TestResult(
        math.copysign(z, m2 - var),
        p,
        "scale",
        f"std {math.sqrt(m2):.5g} vs {math.sqrt(var):.5g} (x{ratio:.4f}, z={z:.2f}, "
        f"allowance {rel_allowance:.2g} of the variance)",
    )


def mde_scale(n: int, var: float, mu4: float, alpha: float, power: float = POWER) -> float:
    """Smallest relative scale error |s/s0 - 1| the variance test detects with ``power`` at ``alpha``.

    The variance ratio moves by (z_{1-alpha/2} + z_power) * sqrt((mu4 - var^2) / n) / var.
    """
    if var <= 0 or not math.isfinite(mu4):
        return math.nan
    rel = (stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)) * math.sqrt((mu4 - var**2) / n) / var
    return math.sqrt(1 + rel) - 1


def self_normalized_z(a: np.ndarray, b: np.ndarray, name: str) -> TestResult:
    """Two-sided test of E[ab] = 0 for centred, paired a and b: z = sum(ab) / sqrt(sum(a^2 b^2))."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        a, b = a.ravel(), b.ravel()
    prod = np.multiply(a, b, dtype=np.float64).ravel()  # strided views multiply without copies
    denom = math.sqrt(float(prod @ prod))
    if denom == 0:
        z = 0.0 if not np.any(a) or not np.any(b) else math.inf
    else:
        z = float(np.sum(prod)) / denom
    p = float(2 * stats.norm.sf(abs(z)))
    return TestResult(z, p, name, f"{name}: z={z:.2f} over {prod.size} pairs")


def poisson_excess(observed: int, expected: float, name: str) -> TestResult:
    """P(N >= observed) for N ~ Poisson(expected): too many coincidences."""
    p = float(stats.poisson.sf(observed - 1, expected)) if observed > 0 else 1.0
    return TestResult(float(observed), p, name, f"{name}: {observed} observed, {expected:.3g} expected")


def dkw_test(empirical: np.ndarray, expected: np.ndarray, n: int, name: str) -> TestResult:
    """Sup distance between two CDFs on a grid; p = min(1, 2 exp(-2 n D^2)) (Massart's DKW bound,
    valid for discrete laws)."""
    d = float(np.max(np.abs(np.asarray(empirical) - np.asarray(expected))))
    return TestResult(d, min(1.0, 2 * math.exp(-2 * n * d * d)), name, f"{name}: sup distance {d:.3g} (n={n})")


def distinct_shortfall(observed: int, expected: float, name: str) -> TestResult:
    """Too few distinct values. The occupancy indicators are negatively associated, so Chernoff's
    bound holds: P(D <= mu - t) <= exp(-t^2 / (2 mu))."""
    t = expected - observed
    p = math.exp(-t * t / (2 * expected)) if t > 0 else 1.0
    return TestResult(float(observed), p, name, f"{name}: {observed} distinct values, {expected:.0f} expected")


def chisquare_cells(counts: Sequence[int], probs: Sequence[float], name: str) -> TestResult:
    """Pearson chi-square of ``counts`` against cell probabilities ``probs``."""
    observed = np.asarray(counts, np.float64)
    expected = np.asarray(probs, np.float64) * observed.sum()
    stat, p = stats.chisquare(observed, expected)
    return TestResult(
        float(stat),
        float(p),
        name,
        f"{name}: chi2={float(stat):.3g}, counts {observed.astype(int).tolist()} vs "
        f"expected {np.round(expected).astype(int).tolist()}",
    )


def sign_test(values: np.ndarray, name: str) -> TestResult:
    """Binomial test that positive and negative values are equally likely."""
    values = np.asarray(values).ravel()
    k = int(np.sum(values > 0))
    p = float(stats.binomtest(k, values.size, 0.5).pvalue)
    return TestResult(float(k), p, name, f"{name}: {k} of {values.size} positive")


def binomial_two_sided(observed: int, n: int, p: float, name: str) -> TestResult:
    """Two-sided binomial test of ``observed`` successes in ``n`` trials of probability ``p``:
    2 min(P(K <= observed), P(K >= observed)), at most 1."""
    low = float(stats.binom.cdf(observed, n, p))
    high = float(stats.binom.sf(observed - 1, n, p))
    return TestResult(
        float(observed), min(1.0, 2 * min(low, high)), name, f"{name}: {observed} observed, {n * p:.3g} expected"
    )


def binomial_excess(observed: int, n: int, p: float, name: str, *, cells: float = 1.0) -> TestResult:
    """Too many: P(K >= observed) for K ~ Binomial(n, p), times ``cells`` (a union bound over the
    cells any of which could have shown the excess)."""
    tail = float(stats.binom.sf(observed - 1, n, min(p, 1.0))) if observed > 0 else 1.0
    return TestResult(
        float(observed), min(1.0, cells * tail), name, f"{name}: {observed} observed, at most {n * p:.3g} expected"
    )
