"""Statistical tests: valid under the null (p-values not too small), powerful under alternatives.
Deterministic: numpy samples with fixed seeds."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from initcheck import _stats as stats


def _null_pvalues(test, draws=200, n=4000, seed=1):
    rng = np.random.default_rng(seed)
    return np.array([test(rng.standard_normal(n)).pvalue for _ in range(draws)])


@pytest.mark.parametrize(
    "test",
    [
        lambda x: stats.ks_test(x, sps.norm.cdf),
        lambda x: stats.mean_test(x, 0.0, 1.0),
        lambda x: stats.variance_test(x, 0.0, 1.0, 3.0),
        lambda x: stats.self_normalized_z(x[:-1], x[1:], "lag 1"),
    ],
    ids=["ks", "mean", "variance", "self-normalized"],
)
def test_pvalues_are_calibrated_under_the_null(test):
    p = _null_pvalues(test)
    assert 0.01 <= np.mean(p < 0.05) <= 0.10  # 200 draws: 0.05 +- 3 sd
    assert p.min() > 1e-4


def test_allowance_makes_ks_conservative_and_still_powerful():
    rng = np.random.default_rng(2)
    x = np.round(rng.standard_normal(200_000) * 2**5) / 2**5  # coarse rounding
    assert stats.ks_test(x, sps.norm.cdf).pvalue < 1e-6
    assert stats.ks_test(x, sps.norm.cdf, allowance=2 * 2**-5).pvalue == 1.0
    y = rng.standard_normal(200_000) * 1.1
    assert stats.ks_test(y, sps.norm.cdf, allowance=2 * 2**-7).pvalue < 1e-7


def test_variance_test_detects_two_percent_at_ci_size():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(2**20) * 1.02
    assert stats.variance_test(x, 0.0, 1.0, 3.0).pvalue < 1e-20
    assert stats.mde_scale(2**20, 1.0, 3.0, 5e-8) < 0.006


def test_mde_matches_simulated_power():
    mde = stats.mde_scale(10_000, 1.0, 3.0, 1e-3, power=0.99)
    rng = np.random.default_rng(4)
    hits = [stats.variance_test(rng.standard_normal(10_000) * (1 + mde), 0, 1, 3).pvalue < 1e-3 for _ in range(300)]
    assert np.mean(hits) >= 0.97


def test_poisson_dkw_distinct_and_sign_tests():
    assert stats.poisson_excess(0, 0.1, "x").pvalue == 1.0
    assert stats.poisson_excess(20, 0.1, "x").pvalue < 1e-20
    assert stats.dkw_test([0.5], [0.5], 100, "d").pvalue == 1.0
    assert stats.dkw_test([0.6], [0.5], 10_000, "d").pvalue == pytest.approx(2 * math.exp(-200))
    assert stats.distinct_shortfall(128, 4000, "d").pvalue < 1e-300 + 1e-200
    assert stats.distinct_shortfall(4100, 4000, "d").pvalue == 1.0
    assert stats.sign_test(np.ones(40), "s").pvalue < 1e-10


def test_bonferroni_multiplies_the_smallest():
    results = [stats.TestResult(1.0, 0.01, "a", ""), stats.TestResult(2.0, 0.2, "b", "")]
    worst = stats.bonferroni(results)
    assert (worst.name, worst.pvalue) == ("a", 0.02)
