"""``structure``: orthogonal (QᵀQ = scale² I within dtype tolerance *and* Haar-distributed),
delta-orthogonal (orthogonal centre tap, zeros elsewhere), identity, constant and exact tables."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from scipy import stats as sps

from initcheck import _dtypes, stats
from initcheck.laws import matrix_view
from initcheck.properties._context import CaseContext, NotApplicable

ORTHO_EPS = 32  # tolerance on |QᵀQ/scale² - I| in units of the dtype's eps (measured error <= 7 eps)


def _exact(ctx: CaseContext, expected: np.ndarray, what: str):
    draws = ctx.draws("structure", 4)
    want = np.asarray(expected, np.float64).astype(ctx.dtype)
    bad = [i for i, d in enumerate(draws) if not np.array_equal(d, want)]
    if bad:
        diff = np.abs(_dtypes.to_float64(draws[bad[0]]) - _dtypes.to_float64(want))
        return ctx.failed(
            "structure",
            f"output is not {what}: {int(np.sum(diff > 0))} of {want.size} elements differ, by up to {diff.max():.3g}",
            n=4,
        )
    return ctx.passed("structure", f"exactly {what} for 4 keys", n=4)


def _table(ctx: CaseContext):
    draws = _dtypes.to_float64(ctx.draws("structure", 4))
    for i, x in enumerate(draws):
        if problem := ctx.law.mismatch(x, ctx.shape, ctx.dtype):
            return ctx.failed("structure", f"output for key {i} of 4 is not {ctx.law!r}: {problem}", n=4)
    return ctx.passed("structure", f"the table within {ctx.law.ulps} ulp for 4 keys", n=4)


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


def orthogonality_error(q: np.ndarray) -> float:
    """max |QᵀQ - I| over K matrices ``q`` of shape (K, rows, cols) (QQᵀ for wide ones)."""
    rows, cols = q.shape[1:]
    gram = np.einsum("kri,krj->kij", q, q) if rows >= cols else np.einsum("kir,kjr->kij", q, q)
    return float(np.max(np.abs(gram - np.eye(gram.shape[1]))))


def dtype_eps(dtype) -> float:
    return float(ml_dtypes.finfo(_dtypes.real_part(dtype)).eps)


def _orthogonal(ctx: CaseContext, matrices: np.ndarray, scale: float, column_axis: int, where: str):
    q = np.stack([matrix_view(m, column_axis) for m in matrices]) / scale
    rows, cols = q.shape[1:]
    error = orthogonality_error(q)
    eps = dtype_eps(ctx.dtype)
    if error > ORTHO_EPS * eps:
        side = "QᵀQ" if rows >= cols else "QQᵀ"
        return ctx.failed(
            "structure",
            f"{where}: max |{side}/scale² - I| = {error:.3g} > {ORTHO_EPS} eps ({ORTHO_EPS * eps:.2g}); not orthogonal",
            n=len(q),
            statistic=error,
        )
    worst = stats.bonferroni(haar_tests(q))
    return ctx.verdict(
        "structure", worst, n=len(q), message=f"{where}: orthogonal to {error / eps:.1f} eps; Haar: {worst.detail}"
    )


def _per_draw(ctx: CaseContext):
    """Laws with an i.i.d. marginal and extra structure: every one of 16 outputs must have it."""
    draws = _dtypes.to_float64(ctx.draws("structure", 16))
    for i, x in enumerate(draws):
        if problem := ctx.law.structure_problem(x, ctx.dtype):
            return ctx.failed("structure", f"draw {i} of 16: {problem}", n=16)
    return ctx.passed("structure", f"all 16 draws have the structure of {ctx.law!r}", n=16)


def check_structure(ctx: CaseContext):
    kind = ctx.law.kind
    if ctx.size == 0:
        raise NotApplicable("a zero-size output has no structure")
    if kind == "iid":
        if ctx.law.has_structure:
            return _per_draw(ctx)
        raise NotApplicable("element-wise i.i.d. laws have no structure beyond their elements")
    if kind == "constant":
        return _exact(ctx, np.full(ctx.shape, ctx.law.value), f"the constant {ctx.law.value!r}")
    if kind == "identity":
        return _exact(ctx, ctx.law.expected(ctx.shape, ctx.dtype), f"{ctx.law!r}")
    if kind == "deterministic":
        return _table(ctx)
    draws = _dtypes.to_float64(ctx.draws("structure", ctx.profile.haar_draws))
    if kind == "orthogonal":
        return _orthogonal(ctx, draws, ctx.law.scale, ctx.law.column_axis, "orthogonal")
    centre = ctx.law.centre(ctx.shape)
    taps = draws[(slice(None),) + centre]
    rest = draws.copy()
    rest[(slice(None),) + centre] = 0
    if np.any(rest):
        return ctx.failed(
            "structure", f"{int(np.count_nonzero(rest))} non-zero values off the centre tap {centre}", n=len(draws)
        )
    return _orthogonal(ctx, taps, ctx.law.scale, ctx.law.column_axis, f"centre tap {centre}")
