"""Properties on real initializers: low precision, complex laws, structured laws."""

import math

import haiku as hk
import jax
import jax.numpy as jnp
import pytest

import initcheck
from initcheck import laws


def statuses(report):
    return {(v.property, v.case.dtype): v.status for v in report.verdicts}


def rounded_from_float32(std):
    def init(key, shape, dtype):
        return (std * jax.random.normal(key, shape, jnp.float32)).astype(dtype)

    return init


def test_jax_bfloat16_normal_is_coarse_and_off_the_rounded_law():
    # 128 distinct values, no tail beyond about 2.9 sd: the rounded law's exact tails and moments
    # show it as well as the count of distinct values
    report = initcheck.check(
        jax.nn.initializers.normal(0.5),
        laws.Normal(0.5),
        shapes=[(128, 64)],
        dtypes=["bfloat16"],
        properties=["distribution", "moments", "precision"],
    )
    got = statuses(report)
    assert got[("distribution", "bfloat16")] == got[("moments", "bfloat16")] == got[("precision", "bfloat16")] == "fail"
    precision = next(v for v in report.failures if v.property == "precision")
    assert "128 distinct values" in precision.message


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sampling_in_float32_and_rounding_passes_precision(dtype):
    report = initcheck.check(
        rounded_from_float32(0.5),
        laws.Normal(0.5),
        shapes=[(128, 64)],
        dtypes=[dtype],
        properties=["distribution", "moments", "precision", "bounds"],
    )
    assert report.passed, str(report)


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_jax_complex_variance_scaling_keeps_its_promise(distribution):
    report = initcheck.check(
        jax.nn.initializers.variance_scaling(1.0, "fan_in", distribution),
        laws.VarianceScaling(1.0, "fan_in", distribution),
        shapes=[(64, 32)],
        dtypes=["complex64"],
        profile="ci",
    )
    assert report.passed, str(report)


def test_jax_complex_truncated_normal_has_too_much_variance():
    report = initcheck.check(
        jax.nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
        laws.VarianceScaling(1.0, "fan_in", "truncated_normal"),
        shapes=[(64, 32)],
        dtypes=["complex64"],
        properties=["moments", "bounds"],
    )
    verdict = next(v for v in report.verdicts if v.property == "moments")
    assert verdict.status == "fail" and "x1.009" in verdict.message  # sqrt(1.0187)


@pytest.mark.parametrize(
    "shape, column_axis", [((32, 32), -1), ((64, 16), -1), ((8, 40), -1), ((4, 6, 5), 0), ((1, 1), -1)]
)
def test_jax_orthogonal_is_orthogonal_and_haar(shape, column_axis):
    report = initcheck.check(
        jax.nn.initializers.orthogonal(2.0, column_axis),
        laws.Orthogonal(2.0, column_axis),
        shapes=[shape],
        properties=["structure", "key_sensitivity"],
    )
    assert report.passed, str(report)


def test_delta_orthogonal_identity_and_constant():
    assert initcheck.check(
        jax.nn.initializers.delta_orthogonal(), laws.DeltaOrthogonal(), shapes=[(3, 3, 8, 16)], profile="quick"
    ).passed
    report = initcheck.check(hk.initializers.Identity(2.0), laws.Identity(2.0), shapes=[(3, 4, 4)], profile="quick")
    assert report.passed and statuses(report)[("structure", "float32")] == "pass"
    report = initcheck.check(jax.nn.initializers.ones, laws.Constant(1.0), shapes=[(5, 3)], profile="quick")
    assert report.passed and statuses(report)[("key_sensitivity", "float32")] == "pass"
    wrong = initcheck.check(jax.nn.initializers.zeros, laws.Constant(1.0), shapes=[(5, 3)], properties=["structure"])
    assert "15 of 15 elements differ from Constant(1.0)" in wrong.failures[0].message


def test_not_applicable_properties_are_skipped_with_a_reason():
    report = initcheck.check(
        jax.nn.initializers.normal(1.0),
        laws.Normal(1.0),
        shapes=[(1,)],
        profile="quick",
        properties=["independence", "bounds", "precision", "structure"],
    )
    reasons = {v.property: v.message for v in report.verdicts}
    assert all(v.status == "skip" for v in report.verdicts) and report.passed
    assert "unbounded" in reasons["bounds"] and "not a 16-bit dtype" in reasons["precision"]
    report = initcheck.check(
        jax.nn.initializers.normal(1.0), laws.Normal(1.0), shapes=[(0, 5)], properties=["key_sensitivity", "structure"]
    )
    assert [v.status for v in report.verdicts] == ["skip", "skip"]
    assert "zero-size" in report.verdicts[0].message


def test_a_weak_typed_output_fails_contract():
    """``jnp.full(shape, 0.1)`` without ``dtype`` is a weak-typed float32: right dtype, wrong type."""
    options = {"shapes": [(4, 4)], "dtypes": ["float32"], "properties": ["contract"]}
    report = initcheck.check(lambda key, shape, dtype=jnp.float32: jnp.full(shape, 0.1), laws.Constant(0.1), **options)
    contract = [v for v in report.verdicts if v.property == "contract"]
    assert contract and all(v.status == "fail" for v in contract), report
    assert "weak-typed float32" in contract[0].message and "dtype=dtype" in contract[0].message
    strong = initcheck.check(
        lambda key, shape, dtype=jnp.float32: jnp.full(shape, 0.1, dtype), laws.Constant(0.1), **options
    )
    assert strong.passed, strong


def _one_word(key, shape, dtype=jnp.float32):
    """Seeds from the second word of its key alone (a bug): keys that differ in the first word
    only give the same output."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return 0.02 * jax.random.normal(jax.random.PRNGKey(data[1]), shape, dtype)


def test_an_initializer_seeding_from_one_word_of_its_key_fails_key_sensitivity():
    options = {"shapes": [(16, 8)], "dtypes": ["float32"], "properties": ["key_sensitivity"]}
    report = initcheck.check(_one_word, laws.Normal(0.02), **options)
    (verdict,) = report.verdicts
    assert verdict.status == "fail" and "keys [s, 0] (the first word alone)" in verdict.message, verdict
    correct = initcheck.check(jax.nn.initializers.normal(0.02), laws.Normal(0.02), **options)
    assert correct.passed, correct


def _low_rank(key, shape, dtype=jnp.float32):
    """A rank-8 matrix A @ B scaled to std 0.02: its elements' marginals are close to N(0, 0.02^2)."""
    k1, k2 = jax.random.split(key)
    return (jax.random.normal(k1, (shape[0], 8), dtype) @ jax.random.normal(k2, (8, shape[1]), dtype)) * (0.02 / 8**0.5)


def _mirrored(key, shape, dtype=jnp.float32):
    """concatenate([z, -z]) shuffled: perfect marginals, every value paired with its negation."""
    k1, k2 = jax.random.split(key)
    z = 0.02 * jax.random.normal(k1, (math.prod(shape) // 2,), dtype)
    return jax.random.permutation(k2, jnp.concatenate([z, -z])).reshape(shape)


@pytest.mark.parametrize("init, words", [(_low_rank, "numerically zero singular values"), (_mirrored, "negation")])
def test_dependence_with_perfect_marginals_fails_independence(init, words):
    options = {"shapes": [(64, 64), (128, 32)], "dtypes": ["float32"], "properties": ["independence"]}
    report = initcheck.check(init, laws.Normal(0.02), **options)
    assert report.verdicts and all(v.status == "fail" and words in v.message for v in report.verdicts), report
    correct = initcheck.check(jax.nn.initializers.normal(0.02), laws.Normal(0.02), **options)
    assert correct.passed, correct
