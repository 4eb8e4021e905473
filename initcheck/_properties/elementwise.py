"""Properties of element-wise i.i.d. laws: ``independence``, ``bounds``, ``distribution``, ``moments``.

Low-precision allowances, in units of the dtype's resolution r = 2^-m (m mantissa bits): the CDF may
be off by 2r (what an m-bit uniform source gives), or by the exact distance between the law and the
law rounded to the dtype where that is larger (a mean far from 0 rounds coarser than the std
suggests). ``moments`` tests the mean and variance against the exact moments of the law rounded to
a 16-bit dtype (allowing 4 r^2 std and 8 r^2 of the variance for a second rounding), and against
the law's own in wider dtypes (allowing 4 r std and 8 r, negligible in float32); the tails and
single values are tested against the rounded law too (``_tails``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from initcheck import _dtypes, _rounding
from initcheck import _stats as stats
from initcheck._element import ComplexLaw, RealLaw
from initcheck._properties import _exact, _tails
from initcheck._properties._context import CaseContext, NotApplicable
from initcheck._properties._exact import BOUND_ULPS

CDF_ALLOWANCE_R, MEAN_ALLOWANCE_R, VAR_ALLOWANCE_R = 2, 4, 8
MAX_SHIFTS = 12  # per axis, for the independence property


def _iid_law(ctx: CaseContext):
    if not ctx.law.iid:
        raise NotApplicable(f"{ctx.law!r} is not an element-wise i.i.d. law (see structure)")
    return ctx.element_law


def _divisors(length: int) -> set[int]:
    """Every d with 1 < d < length that divides ``length`` (pairs d, length // d up to its root)."""
    small = [d for d in range(2, math.isqrt(length) + 1) if length % d == 0]
    return {*small, *(length // d for d in small)} - {length}


def _shifts(length: int) -> list[int]:
    """Lags at which a broadcast row, a tiled block or a repeated half would show: 1..3, L/2 and
    the divisors of L (smallest and largest first when there are many)."""
    candidates = {1, 2, 3, length // 2} | _divisors(length)
    lags = sorted(s for s in candidates if 0 < s < length)
    if len(lags) > MAX_SHIFTS:
        lags = lags[: MAX_SHIFTS // 2] + lags[-MAX_SHIFTS // 2 :]
    return lags


def check_independence(ctx: CaseContext):
    name = "independence"
    law = _iid_law(ctx)
    if ctx.size < 2 and not isinstance(law, ComplexLaw):
        raise NotApplicable("a single element has nothing to be independent of")
    x = ctx.sample64
    # centred on the sample's own mean: a mean bias (or the rounding of a law far from 0) is the
    # business of moments, and would read here as correlation of every pair
    x = _dtypes.as_real_pairs(x) if isinstance(law, ComplexLaw) else x - float(np.mean(x))
    flat = x.reshape(x.shape[0], -1)
    dependent = {a % max(len(ctx.shape), 1) + 1 for a in ctx.law.dependent_axes(ctx.shape)}  # axis 0 pools draws
    views = [(f"axis {a}", x, a) for a in range(1, x.ndim) if x.shape[a] >= 2 and a not in dependent]
    if x.ndim > 2 and not dependent:
        views.append(("flattened", flat, 1))
    results, specific = [], []
    for label, arr, axis in views:
        length = arr.shape[axis]
        for lag in _shifts(length):
            a, b = _lagged(arr, axis, lag)
            results.append(stats.self_normalized_z(a, b, f"correlation at lag {lag} along {label}"))
    if not isinstance(law, ComplexLaw):
        results += _order(views)
        rank = None if law.atoms else _rank_deficiency(ctx.sample[:RANK_DRAWS], float(np.mean(ctx.sample64)), ctx.dtype)
        specific = [r for r in (rank, _mirrored(ctx.sample64, law, ctx.dtype)) if r]
        results += specific
    if not results:
        raise NotApplicable("no axis with two or more elements")
    worst = stats.bonferroni(results)
    if specific and (named := min(specific, key=lambda r: r.pvalue)).pvalue * len(results) < ctx.profile.alpha:
        worst = dataclasses.replace(named, pvalue=min(1.0, named.pvalue * len(results)))  # it names the defect
    return ctx.verdict(name, worst, n=x.size)


def _lagged(arr: np.ndarray, axis: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(x_i, x_{i+lag}) along ``axis``: two views, no copies."""
    length, lead = arr.shape[axis], (slice(None),) * axis
    return arr[lead + (slice(0, length - lag),)], arr[lead + (slice(lag, length),)]


def _order(views) -> list[stats.TestResult]:
    """Tests of order along each axis (values sorted within rows or blocks, magnitudes sorted under
    random signs: perfect marginals, and lag correlations near 0 when the signs are random or the
    groups have two elements). With t the centred position along the axis and m = |x| - mean|x|,
    self-normalized z-tests of E[x t] = 0 (trend of the values), E[m t] = 0 (trend of the
    magnitudes) and E[m_i m_{i+1}] = 0 (lag-1 correlation of the magnitudes). Under i.i.d. values
    each z is asymptotically N(0, 1) (the trend's sums pair positions +-t, whose differences are
    symmetric); they join the lag tests in the verdict's Bonferroni, so its false-alarm rate stays
    below the profile's alpha."""
    results = []
    for label, arr, axis in views:
        length = arr.shape[axis]
        where = [1] * arr.ndim
        where[axis] = length
        t = (np.arange(length, dtype=np.float64) - (length - 1) / 2).reshape(where)
        magnitude = np.abs(arr)
        magnitude = magnitude - float(np.mean(magnitude))
        results.append(
            stats.self_normalized_z(arr, np.broadcast_to(t, arr.shape), f"trend of the values along {label}")
        )
        results.append(stats.self_normalized_z(magnitude, np.broadcast_to(t, arr.shape), f"trend of |x| along {label}"))
        a, b = _lagged(magnitude, axis, 1)
        results.append(stats.self_normalized_z(a, b, f"correlation of |x| at lag 1 along {label}"))
    return results


RANK_BLOCK = 512  # at most RANK_BLOCK rows and columns of the block whose singular values are computed
RANK_SMALL = 256  # blocks up to this size are tested in RANK_DRAWS draws; larger ones in one
RANK_EPS = 16  # a singular value below RANK_EPS * eps(dtype) times the largest is numerically zero
RANK_DRAWS = 4  # draws (slices) whose blocks are tested
RANK_MIN = 4  # the smallest matrix side tested (two zero singular values: rank at most RANK_MIN - 2)


def _rank_deficiency(draws: np.ndarray, mean: float, dtype) -> stats.TestResult | None:
    """A matrix-shaped value (``draws``: ``(K, *S)``, whole draws, not windows, viewed as
    ``prod(S[:-1])`` rows by ``S[-1]`` columns, less ``mean``) whose leading block (up to
    ``RANK_BLOCK`` square) has two or more numerically zero singular values: a low-rank matrix
    (``A @ B`` scaled to the right variance), whose marginals can be perfect; caught for every
    rank r <= min(rows, cols, RANK_BLOCK) - 2 (half the smaller side and more). For a k x k block of
    i.i.d. continuous values, P(two singular values below t sigma_1) <= (2 k t)^4 (the density of
    the two smallest singular values of a random matrix vanishes like eps^4), the p-value
    reported; 16-bit dtypes and laws with atoms (a row of zeros is no defect there) are not tested."""
    if draws.ndim < 3 or _dtypes.is_low_precision(dtype) or not _dtypes.is_inexact(dtype):
        return None
    rows, cols = math.prod(draws.shape[1:-1]), draws.shape[-1]
    if min(rows, cols) < RANK_MIN:
        return None
    threshold = RANK_EPS * _dtypes.eps(dtype)
    side = min(rows, cols, RANK_BLOCK)
    for draw in draws[: RANK_DRAWS if side <= RANK_SMALL else 1]:
        block = _dtypes.to_float64(draw.reshape(rows, cols)[:RANK_BLOCK, :RANK_BLOCK]) - mean
        sigma = np.linalg.svd(block, compute_uv=False)
        if sigma[0] <= 0:
            continue
        zero = int(np.sum(sigma < threshold * sigma[0]))
        if zero >= 2:
            bound = min(1.0, (2 * min(block.shape) * threshold) ** 4)
            return stats.TestResult(
                float(zero),
                bound,
                "rank",
                f"rank: a {block.shape[0]}x{block.shape[1]} block has {zero} numerically zero singular values "
                f"(below {threshold:.2g} of the largest): rank {len(sigma) - zero} of {len(sigma)}, a low-rank "
                "matrix (A @ B?) whose elements are not independent",
            )
    return None


def _mirrored(raw: np.ndarray, law, dtype) -> stats.TestResult | None:
    """Values whose negation is also in the sample (``concatenate([z, -z])`` shuffled: perfect
    marginals, every value paired). For a law symmetric about 0 drawn i.i.d., a value's negation
    turns up by chance with probability at most ``_tails.pair_mass`` (the generator's resolution
    included): a Poisson excess test on the count of magnitudes seen with both signs (at most the
    number of such pairs, whose expectation is bounded by C(n, 2) times that mass)."""
    if _dtypes.is_low_precision(dtype) or abs(law.mean) > 0 or law.atoms:
        return None
    flat = raw.reshape(-1)
    n = flat.size
    if n < 64:
        return None
    both = np.intersect1d(flat[flat > 0], -flat[flat < 0]).size
    expected = n * (n - 1) / 2 * _tails.pair_mass(law, dtype)
    return stats.poisson_excess(both, expected, "values whose negation is also drawn")


def _real_values(ctx: CaseContext, law) -> tuple[np.ndarray, RealLaw, str]:
    """The values tested against a real law: the elements, or |z|^2 for circular complex laws."""
    x = ctx.sample64.ravel()
    if isinstance(law, ComplexLaw):
        return np.abs(x) ** 2, law.modulus2, "|z|^2"
    return x, law, "x"


def _beyond_the_sample(name: str, ctx: CaseContext):
    """When the properties test a window of the draws (``check`` on a large shape), what is exact
    is counted over all of them first (``_exact``): a failed verdict, or None."""
    if ctx.sample64.size >= ctx.sample.size:
        return None
    return _exact.verdict(name, ctx, lambda bands: _exact.on_host(ctx.sample, bands))


def check_bounds(ctx: CaseContext):
    name = "bounds"
    law = _iid_law(ctx)
    if (failed := _beyond_the_sample(name, ctx)) is not None:
        return failed
    values, real, what = _real_values(ctx, law)
    if not real.bounded:
        raise NotApplicable(f"the law of {what} is unbounded")
    tol = lambda v: _dtypes.allowance(v, ctx.dtype, BOUND_ULPS) * (2 if what == "|z|^2" else 1)
    inside = np.zeros(values.shape, bool)
    for lo, hi in real.intervals():
        inside |= (values >= lo - tol(lo)) & (values <= hi + tol(hi))
    outside = values[~inside]
    if outside.size:
        worst = outside[np.argmax(np.abs(outside))]
        hulls = ", ".join(f"[{lo:.6g}, {hi:.6g}]" for lo, hi in real.intervals())
        return ctx.failed(
            name,
            f"{outside.size} of {values.size} values of {what} outside the support {hulls} "
            f"(allowing {BOUND_ULPS} ulp); the farthest is {worst:.6g}",
            n=values.size,
            statistic=float(outside.size),
        )
    # Mass piled at a finite end (clipping instead of truncating) against what the law puts there.
    res = _dtypes.resolution(ctx.dtype)
    results = []
    for _, part in real.continuous:
        for end in part.support():
            band = (end - tol(end), end + tol(end))
            count = int(np.sum((values >= band[0]) & (values <= band[1])))
            expected = values.size * (float(real.cdf(band[1]) - real.cdf(np.nextafter(band[0], -np.inf))) + 2 * res)
            results.append(stats.poisson_excess(count, expected, f"values of {what} at the end {end:.6g}"))
    return ctx.verdict(name, stats.bonferroni(results), n=values.size)


def rounding_distance(cdf, dtype) -> float:
    """sup_x |G(x) - F(x)|, F the law's CDF and G the CDF of the law rounded to the 16-bit ``dtype``:
    how far a perfect sample, rounded to nearest, may stand from the continuous law. G is a step
    function at the representable values v, G(v) = F(midpoint above v)."""
    values = _dtypes.representable_values(dtype)
    at_values = np.asarray(cdf(values), np.float64)
    rounded = np.append(np.asarray(cdf((values[:-1] + values[1:]) / 2), np.float64), 1.0)
    left = np.concatenate([[0.0], rounded[:-1]])
    return float(max(np.max(np.abs(rounded - at_values)), np.max(np.abs(left - at_values))))


def check_distribution(ctx: CaseContext):
    name = "distribution"
    law = _iid_law(ctx)
    if (failed := _beyond_the_sample(name, ctx)) is not None:
        return failed
    allowance = CDF_ALLOWANCE_R * _dtypes.resolution(ctx.dtype)
    x = ctx.sample64.ravel()
    if isinstance(law, ComplexLaw):
        phase = (np.angle(x) / (2 * np.pi)) % 1.0
        modulus2 = np.sort(np.abs(x) ** 2)  # sorted once: the plot's quantiles then cost little
        results = [
            stats.ks_test(modulus2, law.modulus2.cdf, allowance=allowance, name="KS of |z|^2"),
            stats.ks_test(phase, lambda t: t, allowance=allowance, name="KS of the phase (uniform)"),
            *_tails.tail_tests(modulus2, law.modulus2, _dtypes.real_part(ctx.dtype), "|z|^2"),
        ]
        return ctx.verdict(name, stats.bonferroni(results), n=x.size, plot=plot_data(modulus2, law.modulus2, "|z|^2"))
    x = np.sort(x)  # sorted once, for the KS test and the plot's quantiles
    if law.var == 0 and not law.continuous:
        raise NotApplicable("a law with a single atom has no distribution to fit (see structure)")
    results = []
    atoms = law.atoms
    at_atom = np.zeros(x.shape, bool)
    if atoms:
        counts = []
        for value, _ in atoms:
            hit = x == float(_dtypes.to_float64(np.asarray(value).astype(ctx.dtype)))  # the atom in the dtype
            at_atom |= hit
            counts.append(int(hit.sum()))
        probs = [m for _, m in atoms]
        if law.continuous:
            counts.append(int((~at_atom).sum()))
            probs.append(law.continuous_mass)
        results.append(stats.chisquare_cells(counts, probs, "chi-square over the atoms"))
    continuous = x[~at_atom]
    if law.continuous and continuous.size:
        if _dtypes.is_low_precision(ctx.dtype):  # a law offset from 0 rounds coarser than its std suggests
            allowance = max(allowance, rounding_distance(law.continuous_cdf, ctx.dtype))
        results.append(
            stats.ks_test(
                continuous, law.continuous_cdf, allowance=allowance, name="KS of the continuous part" if atoms else "KS"
            )
        )
        results.extend(_tails.tail_tests(x, law, ctx.dtype))
        in_dtype = [float(_dtypes.to_float64(np.asarray(v).astype(ctx.dtype))) for v, _ in atoms]
        atom = _tails.atom_test(x, law, ctx.dtype, in_dtype)
        if atom is not None:
            results.append(atom)
    return ctx.verdict(name, stats.bonferroni(results), n=x.size, plot=plot_data(x, law, "x"))


def _rounded(values) -> list[float]:
    return [float(f"{v:.5g}") for v in np.asarray(values, np.float64)]


def plot_data(x: np.ndarray, law: RealLaw, variable: str, bins: int = 40, points: int = 49) -> dict:
    """What the reports draw for a sample ``x`` of ``law``: a histogram with the law's expected
    counts n (F(b_{i+1}) - F(b_i)) per bin, and a QQ plot of sample quantiles against the law's
    (F inverted numerically on a grid covering the sample and mean +- 8 std)."""
    lo, hi = (float(q) for q in np.quantile(x, [0.001, 0.999]))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = np.histogram(x, edges)[0]
    expected = x.size * np.diff(np.asarray(law.cdf(edges), np.float64))
    probs = np.linspace(0.01, 0.99, points)
    spread = 8 * law.std if math.isfinite(law.std) and law.std > 0 else hi - lo
    grid = np.linspace(min(lo, law.mean - spread), max(hi, law.mean + spread), 4001)
    law_quantiles = np.interp(probs, np.maximum.accumulate(np.asarray(law.cdf(grid), np.float64)), grid)
    return {
        "variable": variable,
        "n": int(x.size),
        "edges": _rounded(edges),
        "counts": counts.tolist(),
        "expected": _rounded(expected),
        "probabilities": _rounded(probs),
        "sample_quantiles": _rounded(np.quantile(x, probs)),
        "law_quantiles": _rounded(law_quantiles),
    }


def check_moments(ctx: CaseContext):
    name = "moments"
    law = _iid_law(ctx)
    res = _dtypes.resolution(ctx.dtype)
    x = ctx.sample64.ravel()
    if isinstance(law, ComplexLaw):
        return _complex_moments(ctx, law, x, res)
    if law.var == 0:
        raise NotApplicable("a constant has no spread to measure (see structure)")
    if not (math.isfinite(law.var) and math.isfinite(law.mu4)):
        raise NotApplicable("the law has no finite fourth moment; moments cannot be tested")
    target = _rounding.law_moments(law, ctx.dtype)  # in 16-bit dtypes, the rounded law's, exactly
    # allowances: r for float32 and wider; r^2 (a second rounding) in 16-bit dtypes, whose exact
    # moments leave nothing else to allow for
    slack = res * res if _dtypes.is_low_precision(ctx.dtype) else res
    mean = stats.mean_test(x, target.mean, target.var, allowance=MEAN_ALLOWANCE_R * slack * target.std)
    scale = stats.variance_test(x, target.mean, target.var, target.mu4, rel_allowance=VAR_ALLOWANCE_R * slack)
    mde = stats.mde_scale(x.size, target.var, target.mu4, ctx.profile.alpha / 2)
    worst = stats.bonferroni([mean, scale])
    rounded = f" (the law rounded to {ctx.dtype_name})" if _dtypes.is_low_precision(ctx.dtype) else ""
    message = (
        f"{mean.detail}; {scale.detail}{rounded}; detects a {100 * mde:.2g}% scale error in "
        f"{ctx.dtype_name} with power 0.99"
    )
    if worst.pvalue < ctx.profile.alpha:
        hint = ctx.law.diagnose(ctx.shape, float(np.mean((x - law.mean) ** 2)))
        message = f"{worst.name} is off: {message}" + (f". {hint}" if hint else "")
    return ctx.verdict(name, worst, n=x.size, mde=mde, message=message)


def _complex_moments(ctx: CaseContext, law: ComplexLaw, x: np.ndarray, res: float):
    """E|z|^2 against the law, E[z] = 0 and circularity E[z^2] = 0 (self-normalized z-tests)."""
    mod2, target = np.abs(x) ** 2, law.second_moment
    scale = stats.mean_test(mod2, target, law.modulus2.var, allowance=VAR_ALLOWANCE_R * res * target)
    ratio = math.sqrt(float(mod2.mean()) / target)
    scale = stats.TestResult(
        scale.statistic,
        scale.pvalue,
        "scale",
        f"E|z|^2 {float(mod2.mean()):.5g} vs {target:.5g} (x{ratio:.4f} in scale)",
    )
    ones = np.ones_like(x.real)
    results = [
        scale,
        stats.self_normalized_z(x.real, ones, "mean of Re z"),
        stats.self_normalized_z(x.imag, ones, "mean of Im z"),
        stats.self_normalized_z(x.real**2 - x.imag**2, ones, "Re E[z^2] (circularity)"),
        stats.self_normalized_z(x.real * x.imag, ones, "Im E[z^2] (circularity)"),
    ]
    mde = stats.mde_scale(x.size, target, law.modulus2.var + target**2, ctx.profile.alpha / len(results))
    worst = stats.bonferroni(results)
    return ctx.verdict(
        "moments",
        worst,
        n=x.size,
        mde=mde,
        message=f"{worst.detail}; {scale.detail}; detects a {100 * mde:.2g}% scale error with power 0.99",
    )
