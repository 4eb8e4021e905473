"""Statistics on bounded samples (issue 32, item 1): a value or a draw larger than the profile's n
is tested on n values (a window of its own axes for ``check``; positions derived from the seed and
the path in an audit), and what a sample would miss is counted over every value first.

Every model and initializer here is deterministic (fixed keys, seed 0); the correct ones are
tested with about 8 statistical verdicts at alpha 1e-7 each, so they fail with probability below
1e-6, and the planted defects fail with p-values below 1e-100."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck import _sampler, laws

SHAPE = (2048, 1024)  # 2^21 values: eight times the ci profile's n


def zeroed(key, shape, dtype=jnp.float32):
    """A correct normal(0.02) draw with 200 values set to exactly zero."""
    return (jax.random.normal(key, shape, dtype) * 0.02).reshape(-1).at[:200].set(0.0).reshape(shape)


def one_outside(key, shape, dtype=jnp.float32):
    """A correct uniform(-0.1, 0.1) draw with one value at 0.5."""
    return jax.random.uniform(key, shape, dtype, -0.1, 0.1).reshape(-1).at[777_777].set(0.5).reshape(shape)


def one_nan(key, shape, dtype=jnp.float32):
    return (jax.random.normal(key, shape, dtype) * 0.02).reshape(-1).at[4321].set(jnp.nan).reshape(shape)


class Table(nn.Module):
    maker: object

    @nn.compact
    def __call__(self, x):
        return self.param("table", self.maker, SHAPE)


def _audit(init, law, properties):
    report = initcheck.audit(Table(initcheck.expects(law)(init)), jnp.ones(()), rng=0, properties=properties)
    return {v.property: v for v in report.verdicts}


def _check(init, law, properties):
    report = initcheck.check(init, law, shapes=[SHAPE], dtypes=["float32"], properties=properties)
    return {v.property: v for v in report.verdicts}


@pytest.mark.parametrize("run", [_audit, _check], ids=["audit", "check"])
def test_a_correct_large_value_is_tested_on_n_values_and_passes(run):
    verdicts = run(jax.nn.initializers.normal(0.02), laws.Normal(0.02), ["independence", "distribution", "moments"])
    assert all(v.status == "pass" for v in verdicts.values()), verdicts
    assert all(v.n <= 2 * 2**18 for v in verdicts.values()), {k: v.n for k, v in verdicts.items()}


def test_an_audit_says_how_it_sampled():
    verdicts = _audit(jax.nn.initializers.normal(0.02), laws.Normal(0.02), ["independence", "moments"])
    assert verdicts["moments"].n == 2**18
    assert "tested on 262144 of its 2097152 values at positions derived from the seed and its path" in (
        verdicts["moments"].message
    )
    assert "block(s) of shape" in verdicts["independence"].message


@pytest.mark.parametrize("run", [_audit, _check], ids=["audit", "check"])
@pytest.mark.parametrize(
    ("init", "law", "prop", "words"),
    [
        (zeroed, laws.Normal(0.02), "distribution", "exact zeros among all 2097152 values: 200 observed"),
        (one_outside, laws.Uniform(-0.1, 0.1), "bounds", "1 of all 2097152 values of x outside the support"),
    ],
    ids=["200-zeros", "one-outside"],
)
def test_a_few_bad_values_among_millions_fail_though_the_sample_misses_them(run, init, law, prop, words):
    verdict = run(init, law, [prop])[prop]
    assert verdict.status == "fail" and words in verdict.message, verdict.message
    assert verdict.n == 2097152


def test_a_window_keeps_the_value_s_own_axes():
    draws = np.arange(3 * 2048 * 1024, dtype=np.float32).reshape(3, 2048, 1024)
    window = _sampler.windowed(draws, 2**18)
    assert window.shape == (3, 85, 1024)  # whole rows: lags along both axes keep their meaning
    assert np.array_equal(window, draws[:, :85, :])
    small = draws[:, :8, :8]
    assert _sampler.windowed(small, 2**18) is small


def test_one_nan_among_millions_fails():
    audited = _audit(one_nan, laws.Normal(0.02), ["distribution"])["distribution"]
    assert audited.status == "fail" and "1 of all 2097152 values are not finite" in audited.message
    checked = initcheck.check(one_nan, laws.Normal(0.02), shapes=[SHAPE], dtypes=["float32"], properties=["contract"])
    assert "returned 1 non-finite values (NaN or inf) of 2097152" in checked.verdicts[0].message
