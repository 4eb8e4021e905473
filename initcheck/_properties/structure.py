"""``structure``: orthogonal (QᵀQ = scale² I within dtype tolerance *and* Haar-distributed),
delta-orthogonal (orthogonal centre tap, zeros elsewhere), identity, constant and exact tables."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from initcheck import _dtypes
from initcheck import _stats as stats
from initcheck._properties._context import CaseContext, NotApplicable
from initcheck.laws import Law, orthogonality_error


def first_problem(law: Law, draws: np.ndarray, shape: tuple[int, ...], dtype, what: str) -> str | None:
    """The first of ``draws`` (float64) that lacks the structure of ``law``, with why, or None.
    One structure check for ``check`` (draws of one key each) and ``audit`` (a value's slices)."""
    for i, x in enumerate(draws):
        if problem := law.draw_problem(x, shape, dtype):
            return f"{what} {i} of {len(draws)}: {problem}" if len(draws) > 1 else problem
    return None


def haar_tests(q: np.ndarray) -> list[stats.TestResult]:
    """Tests that K matrices with orthonormal columns (or rows) are Haar: the sign of q11, q11² ~
    Beta(1/2, (b-1)/2) with b the longer side, and for square ones the sign of det Q and tr Q ~ (0, 1)."""
    _, rows, cols = q.shape
    q11 = q[:, 0, 0]
    results = [stats.sign_test(q11, "sign of q11")]
    longer = max(rows, cols)
    if longer > 1:
        results.append(
            stats.ks_test(q11**2, sps.beta(0.5, (longer - 1) / 2).cdf, name="KS of q11² vs Beta(1/2, (b-1)/2)")
        )
    if rows == cols:
        results.append(stats.sign_test(np.linalg.det(q), "sign of det Q"))
        trace = np.trace(q, axis1=1, axis2=2)
        results.append(stats.self_normalized_z(trace, np.ones_like(trace), "tr Q has mean 0"))
    return results


def check_structure(ctx: CaseContext):
    """Every draw has the law's structure (4 draws of an exact law, 16 of an i.i.d. law with
    structure, ``profile.haar_draws`` of an orthogonal one, whose matrices are then tested Haar)."""
    law, name = ctx.law, "structure"
    if ctx.size == 0:
        raise NotApplicable("a zero-size output has no structure")
    if not law.has_structure:
        raise NotApplicable("element-wise i.i.d. laws have no structure beyond their elements")
    count = 4 if law.exact else 16 if law.iid else ctx.profile.haar_draws
    draws = _dtypes.to_float64(ctx.draws(name, count))
    if problem := first_problem(law, draws, ctx.shape, ctx.dtype, "draw"):
        return ctx.failed(name, problem, n=count)
    if law.exact or law.iid:
        return ctx.passed(name, f"all {count} draws have the structure of {law!r}", n=count)
    q = np.stack([law.matrix(x, ctx.shape) for x in draws])
    error, worst = orthogonality_error(q), stats.bonferroni(haar_tests(q))
    return ctx.verdict(
        name, worst, n=count, message=f"orthogonal to {error / _dtypes.eps(ctx.dtype):.1f} eps; Haar: {worst.detail}"
    )
