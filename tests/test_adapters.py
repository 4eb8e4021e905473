"""Adapters: Haiku initializers run under hk.transform, jitted and vmapped; bad callables are named."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

import initcheck
from initcheck import _sampler as sampler
from initcheck import adapters, laws


def test_haiku_adapter_is_hk_transform_apply():
    init = hk.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")
    key = jax.random.PRNGKey(7)
    expected = hk.transform(lambda: init((16, 8), jnp.float32)).apply({}, key)
    wrapped = adapters.canonical(init)
    assert wrapped is not init and adapters.describe(wrapped).endswith("VarianceScaling")
    # the adapter jits; eager Haiku runs op by op, and XLA may fuse erf_inv differently (a few ulp)
    np.testing.assert_allclose(np.asarray(wrapped(key, (16, 8), jnp.float32)), np.asarray(expected), rtol=1e-6)
    keys = jax.random.split(key, 5)
    batched = sampler.draw(wrapped, (16, 8), jnp.float32, keys, batch=4)
    for k, row in zip(keys, batched):
        np.testing.assert_allclose(
            row, np.asarray(hk.transform(lambda: init((16, 8), jnp.float32)).apply({}, k)), rtol=1e-6
        )


def test_haiku_initializers_conform_to_their_laws():
    assert initcheck.check(
        hk.initializers.VarianceScaling(2.0, "fan_in", "uniform"),
        laws.VarianceScaling(2.0, "fan_in", "uniform", fans="haiku"),
        profile="quick",
    ).passed
    assert initcheck.check(hk.initializers.RandomNormal(0.5, 1.0), laws.Normal(0.5, 1.0), profile="quick").passed


def test_haiku_orthogonal_is_sampled_jitted():
    report = initcheck.check(
        hk.initializers.Orthogonal(), laws.Orthogonal(), shapes=[(64, 32)], properties=["structure"], profile="ci"
    )
    assert report.passed, str(report)
    assert report.seconds < 60


def test_signature_problem_names_the_callable():
    assert "cannot be called as init(key, shape, dtype)" in adapters.signature_problem(jnp.zeros)
    assert "is not callable" in adapters.signature_problem(3)
    assert adapters.signature_problem(jax.nn.initializers.normal()) is None
