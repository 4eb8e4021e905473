"""The public API, and the examples of the README and the docs, checked literally."""

import pathlib
import re

import jax
import jax.numpy as jnp
import pytest
from scipy import stats

import initcheck
from initcheck import laws

THRESHOLD_LAW = laws.Mixture([(0.5, laws.Constant(0.0)), (0.25, laws.Uniform(5, 10)), (0.25, laws.Uniform(-10, -5))])


def thresholded_uniform(threshold):
    def my_init(key, shape, dtype=jnp.float32):
        u = jax.random.uniform(key, shape, dtype, minval=-10, maxval=10)
        return u * (abs(u) >= threshold)

    return my_init


def test_conformance_error_is_an_assertion_error():
    # the public names of initcheck and initcheck.laws are guarded in tests/test_public_api.py
    assert issubclass(initcheck.ConformanceError, AssertionError)


def test_he_normal_conforms_to_its_law():
    report = initcheck.check(jax.nn.initializers.he_normal(), laws.VarianceScaling(2.0, "fan_in", "truncated_normal"))
    assert report.passed, str(report)
    assert bool(report)
    statuses = {v.property: v.status for v in report.verdicts}
    for prop in (
        "contract",
        "determinism",
        "key_sensitivity",
        "independence",
        "bounds",
        "distribution",
        "moments",
        "errors",
    ):
        assert statuses[prop] == "pass", prop
    assert report.false_alarm_bound < 1e-3
    moments = [v for v in report.verdicts if v.property == "moments"]
    assert all(v.n >= 2**18 and v.alpha == 1e-7 and v.mde < 0.02 for v in moments)


def test_he_normal_dividing_by_fan_out_fails_on_moments_and_says_so():
    wrong = jax.nn.initializers.variance_scaling(2.0, "fan_out", "truncated_normal")
    report = initcheck.check(wrong, laws.VarianceScaling(2.0, "fan_in", "truncated_normal"), shapes=[(256, 64)])
    assert not report.passed
    failed = {v.property for v in report.failures}
    assert "moments" in failed and failed <= {"moments", "bounds", "distribution"}, str(report)
    verdict = next(v for v in report.failures if v.property == "moments")
    assert re.search(r"division by fan_out \(n=64\) instead of fan_in \(n=256\)", verdict.message)
    assert verdict.message.startswith("scale is off")
    ratio = float(re.search(r"std \S+ vs \S+ \(x([0-9.]+)", verdict.message).group(1))
    assert abs(ratio - 2.0) < 0.01  # sqrt(256 / 64); the std's standard error at n = 2^18 is 0.12%
    assert str(verdict.case) == "shape=(256, 64) dtype=float32"
    assert "initcheck.check(init, VarianceScaling(2.0, 'fan_in', 'truncated_normal'" in verdict.reproduce
    assert "shapes=[(256, 64)]" in verdict.reproduce and "properties=['moments']" in verdict.reproduce
    text = str(report)
    assert "DOES NOT CONFORM" in text and "moments" in text and "reproduce" in text


def test_reproduction_snippet_reproduces_the_verdict():
    wrong = jax.nn.initializers.variance_scaling(2.0, "fan_out", "truncated_normal")
    verdict = initcheck.check(
        wrong, laws.VarianceScaling(2.0, "fan_in", "truncated_normal"), shapes=[(256, 64)], properties=["moments"]
    ).failures[0]
    namespace = {}
    code = verdict.reproduce.replace("init = ...", "init = wrong").replace("print(", "result = (")
    exec(code, {"wrong": wrong}, namespace)
    again = next(v for v in namespace["result"].verdicts if v.property == "moments")
    assert (again.statistic, again.pvalue, again.status) == (verdict.statistic, verdict.pvalue, "fail")


def test_thresholded_uniform_passes_and_threshold_four_fails():
    good = initcheck.check(thresholded_uniform(5), THRESHOLD_LAW)
    assert good.passed, str(good)
    assert any(v.property == "distribution" and v.status == "pass" for v in good.verdicts)
    bad = initcheck.check(thresholded_uniform(4), THRESHOLD_LAW)
    assert not bad.passed
    assert {"bounds", "distribution"} <= {v.property for v in bad.failures}


def test_scipy_distribution_is_a_law():
    init = jax.nn.initializers.normal(0.02)
    assert initcheck.check(init, stats.norm(scale=0.02), profile="quick").passed
    assert not initcheck.check(init, stats.norm(scale=0.025), shapes=[(64, 64)], profile="quick").passed


def test_same_seed_same_verdicts_and_other_seed_other_keys():
    init, law = jax.nn.initializers.lecun_normal(), laws.VarianceScaling(1.0, "fan_in", "truncated_normal")
    first = initcheck.check(init, law, profile="quick", seed=3)
    second = initcheck.check(init, law, profile="quick", seed=3)
    other = initcheck.check(init, law, profile="quick", seed=4)
    assert [v.to_dict() for v in first.verdicts] == [v.to_dict() for v in second.verdicts]
    assert [v.statistic for v in first.verdicts] != [v.statistic for v in other.verdicts]


def test_assert_conforms_raises_listing_every_failure():
    wrong = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    with pytest.raises(initcheck.ConformanceError, match=r"\[initcheck\] .* does not conform") as info:
        initcheck.assert_conforms(
            wrong, laws.VarianceScaling(2.0, "fan_in", "normal"), shapes=[(128, 32), (64, 16)], profile="quick"
        )
    assert str(info.value).count("property moments fail") == 2
    assert initcheck.assert_conforms(
        jax.nn.initializers.lecun_uniform(), laws.VarianceScaling(1.0, "fan_in", "uniform"), profile="quick"
    ).passed


def test_one_broken_initializer_is_errored_verdicts_not_an_exception():
    def raises(key, shape, dtype):
        raise RuntimeError("boom")

    report = initcheck.check(raises, laws.Normal(1.0), shapes=[(4, 4)], profile="quick")
    assert not report.passed
    assert report.verdicts[0].status == "fail" and "RuntimeError: boom" in report.verdicts[0].message
    assert {v.status for v in report.verdicts[1:]} <= {"error", "fail"}


def test_non_array_output_fails_the_contract():
    import numpy as np

    report = initcheck.check(
        lambda key, shape, dtype: np.zeros(shape, dtype), laws.Constant(0.0), shapes=[(4, 4)], properties=["contract"]
    )
    assert "returned numpy.ndarray, not a jax.Array" in report.verdicts[0].message


def test_not_callable_fails_the_contract_and_nothing_else_runs():
    report = initcheck.check(3, laws.Normal(1.0), shapes=[(4, 4)], properties=["contract", "moments", "errors"])
    assert [v.status for v in report.verdicts] == ["fail", "error", "error"]
    assert "init=3 is not callable" in report.verdicts[0].message


def test_never_returning_initializer_hits_the_time_limit():
    import threading

    never = threading.Event()

    def hangs(key, shape, dtype):
        never.wait()

    profile = initcheck.Profile("tiny", n=2**10, cases=1, alpha=1e-6, keys=64, haar_draws=32, time_limit_s=1.0)
    report = initcheck.check(hangs, laws.Normal(1.0), shapes=[(2, 2)], properties=["contract"], profile=profile)
    assert "did not return within 1 s" in report.verdicts[0].message


def test_absurd_memory_is_refused_before_sampling():
    report = initcheck.check(
        jax.nn.initializers.normal(1.0), laws.Normal(1.0), shapes=[(2**20, 2**20)], properties=["contract"]
    )
    assert report.verdicts[0].status == "fail"
    assert re.search(r"refused before sampling: shape=\(1048576, 1048576\) .* 4096\.0 GiB", report.verdicts[0].message)


def test_expects_marks_the_law():
    @initcheck.expects(laws.Normal(0.1))
    def init(key, shape, dtype=jnp.float32):
        return 0.1 * jax.random.normal(key, shape, dtype)

    assert repr(init.__initcheck_law__) == "Normal(std=0.1, mean=0.0)"


BAD_CALLS = [
    (dict(profile="nightly"), ValueError, r"profile='nightly' is not one of quick, ci, thorough"),
    (dict(properties=["moment"]), ValueError, r"unknown \['moment'\]; choose from contract"),
    (dict(seed=-1), ValueError, r"seed=-1 must be a non-negative int"),
    (dict(shapes=[]), ValueError, r"shapes=\[\] is empty"),
    (dict(shapes=[(3, "a")]), TypeError, r"shapes: \(3, 'a'\) is not a shape"),
    (dict(shapes="3,3"), TypeError, r"shapes='3,3' must be a list of shapes"),
    (dict(dtypes=["int32"]), ValueError, r"dtypes: int32 is not a float or complex dtype"),
    (dict(dtypes=["float64"]), ValueError, r"dtypes: float64 needs 64-bit JAX; call jax.config.update"),
    (dict(dtypes=["complex64"], expect=laws.Uniform(0, 1)), ValueError, r"complex64 is complex, but Uniform"),
    (dict(expect=stats.norm(scale=-1.0)), ValueError, r"invalid parameters \(scipy returns NaN"),
    (dict(expect=3.0), TypeError, r"expect=3.0 is neither an initcheck law nor a frozen continuous"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_CALLS, ids=[c[2][:30] for c in BAD_CALLS])
def test_bad_arguments_name_the_argument_and_the_fix(kwargs, error, pattern):
    kwargs = dict(kwargs)
    expect = kwargs.pop("expect", laws.Normal(1.0))
    with pytest.raises(error, match=pattern):
        initcheck.check(jax.nn.initializers.normal(1.0), expect, **kwargs)


def test_the_readme_check_example_runs_as_written():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("## Check an initializer", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "README.md", "exec"), {"print": lambda *args: None})
