"""Laws: parameter validation, fans from the definitions, resolved moments and supports."""

import math

import numpy as np
import pytest
from scipy import stats

from initcheck import _fans, laws

BAD_LAWS = [
    (lambda: laws.Normal(0.0), ValueError, r"Normal: std=0.0 must be > 0"),
    (lambda: laws.Normal(float("nan")), ValueError, r"std=nan must be finite"),
    (lambda: laws.Normal("a"), TypeError, r"std='a' must be a real number"),
    (lambda: laws.Uniform(1, 1), ValueError, r"low=1 must be < high=1"),
    (lambda: laws.TruncatedNormal(1.0, lower=2, upper=-2), ValueError, r"lower=2 must be < upper=-2"),
    (lambda: laws.VarianceScaling(-1, "fan_in", "normal"), ValueError, r"scale=-1.0 must be > 0"),
    (lambda: laws.VarianceScaling(1, "fan_sum", "normal"), ValueError, r"mode='fan_sum' is not one of"),
    (lambda: laws.VarianceScaling(1, "fan_in", "cauchy"), ValueError, r"distribution='cauchy' is not one of"),
    (lambda: laws.VarianceScaling(1, "fan_geo_avg", "normal", fans="haiku"), ValueError, r"not a Haiku mode"),
    (lambda: laws.VarianceScaling(1, "fan_in", "normal", fans="torch"), ValueError, r"fans='torch' must be"),
    (lambda: laws.Orthogonal(0.0), ValueError, r"scale=0 gives the zero matrix"),
    (lambda: laws.Mixture([]), ValueError, r"components=\[\] is empty"),
    (lambda: laws.Mixture([(0.5, laws.Normal(1.0))]), ValueError, r"weights sum to 0.5, not 1"),
    (lambda: laws.Mixture([(1.0, laws.Orthogonal())]), TypeError, r"must be a fixed element-wise law"),
    (lambda: laws.Mixture([0.5]), TypeError, r"components\[0\]=0.5 must be a \(weight, law\) pair"),
    (lambda: laws.as_law(stats.norm(scale=-2)), ValueError, r"invalid parameters"),
    (lambda: laws.as_law(stats.poisson(3)), TypeError, r"neither an initcheck law nor a frozen continuous"),
]


@pytest.mark.parametrize("make, error, pattern", BAD_LAWS, ids=[b[2][:28] for b in BAD_LAWS])
def test_invalid_parameters_raise_clear_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize(
    "shape, in_axis, out_axis, batch_axis, expected",
    [
        ((3, 5), -2, -1, (), (3, 5)),
        ((3, 3, 16, 32), -2, -1, (), (9 * 16, 9 * 32)),
        ((4, 6, 8), 0, (1, 2), (), (4, 48)),
        ((2, 5, 7, 3), 1, 2, 0, (5 * 3, 7 * 3)),
        ((2, 5, 7), (0, 1), -1, (), (10, 7)),
    ],
)
def test_jax_fans_follow_the_definition(shape, in_axis, out_axis, batch_axis, expected):
    assert _fans.jax_fans(shape, in_axis, out_axis, batch_axis) == expected


def test_jax_fans_name_the_bad_axis():
    with pytest.raises(ValueError, match=r"in_axis=-2 is out of range for a 1-D shape"):
        _fans.jax_fans((5,))


def test_overlapping_axes_follow_jax_which_does_not_refuse_them():
    # Found by the ci configuration sweep: he_normal(in_axis=(-1,), out_axis=(0,)) on a (7,) shape returns
    # values (fan_in = 7 * 7 / 7 / 7 = 1) instead of raising.
    from jax._src.nn.initializers import _compute_fans

    for shape, in_axis, out_axis in [((7,), (-1,), (0,)), ((3, 4), 0, 0), ((2, 3, 5), (0, 1), (1,))]:
        assert _fans.jax_fans(shape, in_axis, out_axis) == pytest.approx(_compute_fans(shape, in_axis, out_axis))


@pytest.mark.parametrize(
    "shape, fan_in_axes, expected",
    [
        ((), None, (1, 1)),
        ((7,), None, (7, 7)),
        ((3, 5), None, (3, 5)),
        ((3, 3, 16, 32), None, (144, 288)),
        ((4, 6, 8), (0,), (4, 48)),
    ],
)
def test_haiku_fans_follow_haikus_rules(shape, fan_in_axes, expected):
    assert _fans.haiku_fans(shape, fan_in_axes) == expected


@pytest.mark.parametrize(
    "mode, n", [("fan_in", 64), ("fan_out", 32), ("fan_avg", 48), ("fan_geo_avg", math.sqrt(2048))]
)
@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
def test_variance_scaling_resolves_to_scale_over_fan(mode, n, distribution):
    law = laws.VarianceScaling(2.0, mode, distribution).element_law((64, 32), "float32")
    assert law.mean == pytest.approx(0.0, abs=1e-12)
    assert law.var == pytest.approx(2.0 / n, rel=1e-9)


def test_truncated_normal_constants():
    assert pytest.approx(0.87962566103423978, rel=1e-12) == laws.TRUNCATED_NORMAL_STD
    assert math.sqrt(laws.COMPLEX_TRUNCATED_MODULUS2_MEAN) == pytest.approx(0.96196, abs=1e-5)
    law = laws.VarianceScaling(1.0, "fan_in", "truncated_normal").element_law((4, 4), "float32")
    assert law.intervals() == [
        (pytest.approx(-2 * 0.5 / 0.8796256610342398), pytest.approx(2 * 0.5 / 0.8796256610342398))
    ]


@pytest.mark.parametrize(
    "distribution, second_moment, bound",
    [
        ("normal", 0.25, math.inf),
        ("uniform", 0.25, 0.5),
        ("truncated_normal", 0.25, 4 * 0.25 / 0.9253),
    ],
)
def test_complex_variance_scaling_promises_e_abs_z2(distribution, second_moment, bound):
    law = laws.VarianceScaling(1.0, "fan_in", distribution).element_law((4, 4), "complex64")
    assert law.second_moment == pytest.approx(second_moment, rel=1e-9)
    assert law.modulus2.intervals()[0][1] == pytest.approx(bound, rel=1e-3)


def test_haiku_divides_by_at_least_one():
    assert laws.VarianceScaling(1.0, "fan_in", "normal", fans="haiku").variance(()) == 1.0
    assert laws.VarianceScaling(1.0, "fan_in", "normal", fans="haiku").variance((0, 4)) == 1.0


def test_mixture_with_atoms_has_the_right_moments_and_cdf():
    law = laws.Mixture([(0.5, laws.Constant(0.0)), (0.25, laws.Uniform(5, 10)), (0.25, laws.Uniform(-10, -5))])
    real = law.element_law((3,), "float32")
    rng = np.random.default_rng(0)
    u = rng.uniform(-10, 10, 2_000_000)
    x = u * (np.abs(u) >= 5)
    assert real.mean == 0.0
    assert real.var == pytest.approx(np.var(x), rel=5e-3)
    assert real.mu4 == pytest.approx(np.mean(x**4), rel=1e-2)
    np.testing.assert_allclose(real.cdf([-10, -5, -1e-9, 0, 4.9, 10]), [0, 0.25, 0.25, 0.75, 0.75, 1])
    assert real.atoms == [(0.0, 0.5)] and real.bounded


def test_error_reasons():
    assert laws.VarianceScaling(1, "fan_in", "normal").error_reason((5,), "float32")
    assert laws.VarianceScaling(1, "fan_in", "normal").error_reason((0, 5), "float32") is None
    assert laws.VarianceScaling(1, "fan_in", "normal").error_reason((0,), "float32")
    assert laws.VarianceScaling(1, "fan_in", "normal").error_reason((5, 0), "float32") is None
    assert laws.VarianceScaling(1, "fan_in", "normal", fans="haiku").error_reason((5,), "float32") is None
    assert laws.Orthogonal().error_reason((5,), "float32")
    assert laws.DeltaOrthogonal().error_reason((3, 3, 8, 4), "float32")
    assert laws.DeltaOrthogonal().error_reason((3, 3, 4, 8), "float32") is None
    assert laws.Identity().error_reason((3,), "float32")


def test_reprs_are_python():
    for law in [
        laws.Normal(0.5),
        laws.VarianceScaling(2.0, "fan_in", "uniform", in_axis=(0,)),
        laws.Mixture([(0.5, laws.Constant(0.0)), (0.5, laws.Uniform(1, 2))]),
        laws.Orthogonal(2.0, 0),
        laws.as_law(stats.norm(loc=0.1, scale=0.02)),
    ]:
        namespace = {"scipy": __import__("scipy.stats"), **{n: getattr(laws, n) for n in laws.__all__}}
        assert repr(eval(repr(law), namespace)) == repr(law)


def test_moments_of_a_law_with_a_tiny_mean_are_finite():
    # scipy's frozen moment() divides by loc and returns nan here (found by Hypothesis in test_law_syntax)
    law = laws.Normal(1.0, mean=7e-230).element_law((4,), "float32")
    assert law.std == 1.0 and law.mu4 == 3.0


@pytest.mark.parametrize(
    "law",
    [
        laws.Normal(0.5),
        laws.Uniform(-1, 1),
        laws.TruncatedNormal(1.0),
        laws.VarianceScaling(1.0, "fan_in", "normal"),
        laws.Orthogonal(),
        laws.Constant(0.0),
        laws.Identity(),
    ],
    ids=repr,
)
def test_a_documented_refusal_is_enforced_by_every_law(law):
    refusing = law.refusing(["bfloat16"], "the kernel has no 16-bit version")
    with pytest.raises(ValueError, match="bfloat16 is documented to raise"):
        refusing.check_dtype("bfloat16")
    refusing.check_dtype("float32")


def test_laws_compare_and_hash_as_laws():
    assert laws.Normal(0.5) == laws.Normal(0.5, mean=0.0) and laws.Normal(0.5) != laws.Normal(0.4)
    assert laws.Normal(1.0) != laws.Uniform(-1, 1) and laws.Orthogonal() == laws.Orthogonal(1.0, -1)
    assert laws.VarianceScaling(1.0, "fan_avg", "uniform") == laws.VarianceScaling(1.0, "fan_avg", "uniform")
    assert len({laws.Constant(0.0), laws.Constant(0.0), laws.Constant(1.0)}) == 2
    refusing = laws.Orthogonal().refusing(["bfloat16"], "no 16-bit QR")
    assert refusing != laws.Orthogonal() and refusing.without_refusals() == laws.Orthogonal()
    table = np.arange(6.0).reshape(2, 3)
    assert laws.Deterministic(table) == laws.Deterministic(table.copy())
    assert laws.Deterministic(table) != laws.Deterministic(table + 1)  # same repr, different tables


@pytest.mark.parametrize(
    "law, good, bad, says",
    [
        (laws.Constant(2.0), np.full((3, 4), 2.0), np.full((3, 4), 2.5), "12 of 12 elements differ"),
        (laws.Identity(), np.eye(4), np.eye(4) * 1.01, "4 of 16 elements differ"),
        (
            laws.Orthogonal(),
            np.linalg.qr(np.random.default_rng(0).normal(size=(8, 4)))[0],
            np.ones((8, 4)) / 8,
            "not orthogonal",
        ),
        (
            laws.DeltaOrthogonal(),
            np.pad(np.eye(4)[None], ((1, 1), (0, 0), (0, 0))),
            np.ones((3, 4, 4)),
            "off the centre tap",
        ),
    ],
    ids=["constant", "identity", "orthogonal", "delta-orthogonal"],
)
def test_each_structured_law_says_what_is_wrong_with_one_draw(law, good, bad, says):
    assert law.draw_problem(good, good.shape, "float32") is None
    assert says in law.draw_problem(bad, bad.shape, "float32")


def test_laws_survive_pickling_as_the_same_law():
    import pickle

    for law in [laws.Normal(0.5), laws.Orthogonal().refusing(["bfloat16"], "no 16-bit QR"),
                laws.VarianceScaling(2.0, "fan_in", "uniform").without_refusals()]:  # fmt: skip
        assert pickle.loads(pickle.dumps(law)) == law
