"""``precision``: 16-bit output against the law *rounded to the dtype* (exactly, by enumerating the
dtype's 65,536 bit patterns), and not coarser than that rounded law allows."""

from __future__ import annotations

import numpy as np

from initcheck import _dtypes
from initcheck import _stats as stats
from initcheck._element import ComplexLaw
from initcheck._properties._context import CaseContext, NotApplicable
from initcheck._rounding import rounded_law_cdf


def check_precision(ctx: CaseContext):
    name = "precision"
    if not _dtypes.is_low_precision(ctx.dtype):
        raise NotApplicable(f"{ctx.dtype_name} is not a 16-bit dtype (distribution covers it)")
    if not ctx.law.iid or isinstance(ctx.element_law, ComplexLaw):
        raise NotApplicable("only real element-wise laws have a rounded law to compare with")
    law = ctx.element_law
    x = np.sort(ctx.sample64.ravel())
    n = x.size
    values, expected_cdf = rounded_law_cdf(law, ctx.dtype)
    empirical_cdf = np.searchsorted(x, values, side="right") / n
    masses = np.diff(expected_cdf, prepend=0.0)
    expected_distinct = float(np.sum(-np.expm1(n * np.log1p(-np.clip(masses, 0, 1 - 1e-16)))))
    observed_distinct = int(np.unique(x).size)
    results = [
        stats.dkw_test(empirical_cdf, expected_cdf, n, f"distance to the law rounded to {ctx.dtype_name}"),
        stats.distinct_shortfall(observed_distinct, expected_distinct, "distinct values"),
    ]
    worst = stats.bonferroni(results)
    message = f"{results[0].detail}; {results[1].detail}"
    if worst.pvalue < ctx.profile.alpha:
        message += (
            f"; the output is coarser than {ctx.dtype_name} allows (sampled in low precision? "
            "sample in float32 and round)"
        )
    return ctx.verdict(name, worst, n=n, message=message)
