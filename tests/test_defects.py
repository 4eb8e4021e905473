"""initcheck finds the known defects of the pinned frameworks, on the right property, with a reference.

Version-aware: each defect records the newest version in which it was measured. Up to that version
the defect must be found (else initcheck has regressed); with a newer framework, a defect that no
longer shows is reported as a skip that says it looks fixed, not as a failure.

The statistical verdicts here use the quick profile on one case (alpha 1e-6 per verdict, fixed keys);
the direct measurements use fixed keys and margins of many standard errors.
"""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from initcheck import _defects, laws
from initcheck import _profiles as profiles
from initcheck._catalog import catalog, check_entry
from initcheck._frameworks import haiku_laws, jax_laws
from initcheck._verdict import FAIL, PASS, Case, Conformance, Verdict

QUICK_ONE_CASE = dataclasses.replace(profiles.PROFILES["quick"], cases=1)
BY_ID = {e.id: e for e in catalog()}


def _found_or_fixed(defect: _defects.KnownDefect, found: bool):
    """Fail if a defect that must still be there was not found; skip, saying so, if it may be fixed."""
    if found:
        return
    if defect.expected_now:
        pytest.fail(f"initcheck no longer detects {defect.name} in {defect.package} {defect.installed}")
    pytest.skip(
        f"{defect.name} not seen with {defect.package} {defect.installed} (newer than "
        f"{defect.last_seen}): it looks fixed; update initcheck/_defects.py"
    )


CASES = [  # (entry, dtype, defect, properties to run)
    ("jax.nn.initializers.normal()", "bfloat16", jax_laws.LOW_PRECISION_SAMPLING, ["precision"]),
    ("jax.nn.initializers.uniform()", "float16", jax_laws.LOW_PRECISION_SAMPLING, ["precision"]),
    ("jax.nn.initializers.he_normal()", "bfloat16", jax_laws.LOW_PRECISION_SAMPLING, ["precision"]),
    ("jax.nn.initializers.glorot_normal()", "complex64", jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL, ["bounds", "moments"]),
    ("flax.linen.initializers.lecun_normal()", "complex64", jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL, ["moments"]),
    ("haiku.initializers.TruncatedNormal()", "bfloat16", haiku_laws.HAIKU_LOW_PRECISION_SAMPLING, ["precision"]),
    (
        "haiku.initializers.VarianceScaling(1.0, 'fan_in', 'truncated_normal')",
        "complex64",
        haiku_laws.HAIKU_COMPLEX_TRUNCATED_NORMAL,
        ["moments"],
    ),
    (
        "haiku.initializers.VarianceScaling(1.0, 'fan_avg', 'uniform')",
        "complex64",
        haiku_laws.HAIKU_COMPLEX_UNIFORM,
        ["contract", "moments"],
    ),
]


@pytest.mark.parametrize("entry_id, dtype, defect, properties", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_known_defect_is_flagged_on_its_property(entry_id, dtype, defect, properties):
    entry = BY_ID[entry_id]
    assert defect in entry.defects
    result = check_entry(entry, profile=QUICK_ONE_CASE, dtypes=[dtype], properties=properties, seed=5)
    _found_or_fixed(defect, defect in result.observed)
    assert result.ok, [v.message for v in result.unexpected]
    marked = [v for v in result.report.verdicts if v.known_defect == defect.name]
    assert marked and all(v.status != PASS for v in marked)
    assert {v.property for v in marked} & set(defect.properties)
    assert all(defect.reference in v.message for v in marked)
    assert not result.report.passed  # reported as a failure, never hidden


def test_bfloat16_coarseness_fails_precision_distribution_and_moments():
    # JAX's bfloat16 normal: 128 distinct values (precision), no tail beyond about 2.9 sd and values
    # far more frequent than the rounded law allows (distribution), moments off the rounded law's
    # (the moments are off by about -0.013 sd in the mean: the ci profile's 2^18 values see it, quick's 2^16 not)
    entry = BY_ID["jax.nn.initializers.normal()"]
    result = check_entry(
        entry,
        profile=dataclasses.replace(profiles.PROFILES["ci"], cases=1),
        dtypes=["bfloat16"],
        properties=["distribution", "moments", "precision"],
        seed=5,
    )
    status = {v.property: v.status for v in result.report.verdicts}
    _found_or_fixed(jax_laws.LOW_PRECISION_SAMPLING, status["precision"] == FAIL)
    _found_or_fixed(jax_laws.LOW_PRECISION_SAMPLING, status["distribution"] == FAIL and status["moments"] == FAIL)
    precision = next(v for v in result.report.verdicts if v.property == "precision")
    assert "128 distinct values" in precision.message
    assert all(v.known_defect == "jax-low-precision-sampling" for v in result.report.verdicts if v.status == FAIL)


def _sample(init, shape, dtype, draws=16):
    keys = jax.random.split(jax.random.PRNGKey(7), draws)
    return np.concatenate(
        [
            np.asarray(init(k, shape, dtype)).astype(np.complex128 if "complex" in str(dtype) else np.float64).ravel()
            for k in keys
        ]
    )


def test_measured_jax_complex_truncated_normal_variance_is_1_87_percent_high():
    n = 256
    z = _sample(jax.nn.initializers.lecun_normal(), (n, n), jnp.complex64)  # 2^20 values, E|z|^2 should be 1/n
    ratio = np.mean(np.abs(z) ** 2) * n
    expected = laws.COMPLEX_TRUNCATED_MODULUS2_MEAN / 0.95311164380491208**2  # = 1.0187
    assert expected == pytest.approx(1.0187, abs=1e-4)
    # std error of the mean of |z|^2 is about 0.9 / sqrt(2^20) = 0.0009 of it: 0.0187 is 20 of them
    _found_or_fixed(jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL, abs(ratio - 1) > 0.01)
    assert ratio == pytest.approx(expected, abs=0.005)


def test_measured_haiku_complex_truncated_normal_variance_is_doubled():
    n = 256
    init = hk.transform(
        lambda: hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")((n, n), jnp.complex64)
    )
    z = np.concatenate(
        [
            np.asarray(init.apply({}, k)).astype(np.complex128).ravel()
            for k in jax.random.split(jax.random.PRNGKey(7), 16)
        ]
    )
    ratio = np.mean(np.abs(z) ** 2) * n
    _found_or_fixed(haiku_laws.HAIKU_COMPLEX_TRUNCATED_NORMAL, ratio > 1.5)
    assert ratio == pytest.approx(2.0, abs=0.02)


def test_measured_bfloat16_normal_has_128_values_and_no_far_tail():
    x = _sample(jax.nn.initializers.normal(1.0), (256, 256), jnp.bfloat16)  # 2^20 values
    distinct = np.unique(x).size
    _found_or_fixed(jax_laws.LOW_PRECISION_SAMPLING, distinct <= 128)
    assert distinct == 128
    # 2^20 draws of N(0, 1) reach |x| > 4.4 with probability > 0.99; the coarse sampler stops near 2.9
    assert 2.7 < np.max(np.abs(x)) < 3.0
    assert np.unique(_sample(jax.nn.initializers.uniform(1.0), (256, 256), jnp.float16)).size == 1024


def test_documented_refusal_is_checked_by_the_errors_property():
    entry = BY_ID["jax.nn.initializers.orthogonal()"]
    result = check_entry(entry, profile=QUICK_ONE_CASE, properties=["errors"])
    verdict = result.report.verdicts[0]
    assert verdict.status == PASS, verdict.message
    assert "dtypes ['bfloat16', 'float16']" in verdict.message and "bfloat16: NotImplementedError" in verdict.message
    # an initializer that should refuse but returns garbage fails the same property
    lenient = check_entry(
        dataclasses.replace(entry, init=jax.nn.initializers.normal()), profile=QUICK_ONE_CASE, properties=["errors"]
    )
    assert lenient.report.verdicts[0].status == FAIL
    assert "instead of raising, but it is documented to raise" in lenient.report.verdicts[0].message


def test_asking_for_a_refused_dtype_is_a_clear_error():
    import initcheck

    law = BY_ID["jax.nn.initializers.orthogonal()"].law
    with pytest.raises(ValueError, match="dtypes: bfloat16 is documented to raise"):
        initcheck.check(jax.nn.initializers.orthogonal(), law, dtypes=["bfloat16"])


def _verdict(prop, status, dtype, gated=False):
    return Verdict(prop, status, None, None, 0.0, 1, Case((4, 4), dtype, "k"), "x", "", gated=gated)


def test_triage_sorts_known_from_unexpected_failures():
    report = Conformance(
        "init",
        "law",
        [
            _verdict("precision", FAIL, "bfloat16"),
            _verdict("moments", FAIL, "float32"),
            _verdict("contract", FAIL, "complex64"),
            _verdict("moments", "error", "complex64", gated=True),  # not run: the contract failed
            _verdict("moments", PASS, "float32"),
        ],
        "quick",
        0,
        "cpu",
    )
    result = _defects.triage(
        report,
        (jax_laws.LOW_PRECISION_SAMPLING, haiku_laws.HAIKU_COMPLEX_UNIFORM, jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL),
    )
    assert [v.known_defect for v in report.verdicts] == [
        "jax-low-precision-sampling",
        None,
        "haiku-complex-uniform-raises",
        "haiku-complex-uniform-raises",
        None,
    ]
    assert [v.property for v in result.unexpected] == ["moments"] and not result.ok
    assert result.unobserved == [jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL]  # moments ran on complex64 and did not fail
