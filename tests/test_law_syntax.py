"""The law syntax of ``initcheck check --expect``: what it accepts, and that it never evaluates."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initcheck import laws, strategies
from initcheck.law_syntax import LawSyntaxError, literal_call, parse_law


@pytest.mark.parametrize(
    "text,law",
    [
        ("normal(std=0.01)", laws.Normal(0.01)),
        ("Normal(0.01, mean=-1)", laws.Normal(0.01, mean=-1.0)),
        ("uniform(-0.1, 0.1)", laws.Uniform(-0.1, 0.1)),
        ("truncated_normal(0.02, lower=-3, upper=3)", laws.TruncatedNormal(0.02, -3, 3)),
        (
            'variance_scaling(2.0, "fan_in", "truncated_normal", in_axis=-2, batch_axis=())',
            laws.VarianceScaling(2.0, "fan_in", "truncated_normal"),
        ),
        ("orthogonal(scale=2.0, column_axis=-1)", laws.Orthogonal(2.0)),
        (
            "mixture([(0.9, constant(0)), (0.1, normal(1))])",
            laws.Mixture([(0.9, laws.Constant(0.0)), (0.1, laws.Normal(1.0))]),
        ),
        ("sparse(0.1, std=0.01)", laws.Sparse(0.1, 0.01)),
    ],
)
def test_laws_in_snake_or_camel_case(text, law):
    assert repr(parse_law(text)) == repr(law)


def test_scipy_stats_distributions_are_frozen_with_the_arguments():
    law = parse_law("stats.laplace(scale=0.1)")
    assert isinstance(law, laws.Distribution)
    assert law.dist.kwds == {"scale": 0.1} and law.dist.dist.name == "laplace"


@given(strategies.catalog_initializers())
def test_the_repr_of_every_catalog_law_reads_back_as_the_same_law(config):
    _label, _init, law = config
    text = repr(law).split(".refusing(")[0]  # refusing() is catalog metadata, not part of the law
    assert repr(parse_law(text)) == text


@pytest.mark.parametrize(
    "text,message",
    [
        ("__import__('os').system('echo hacked')", "unknown law \"__import__('os').system\""),
        ("normal(std=__import__('os').getpid())", "unknown law \"__import__('os').getpid\""),
        ("normal(std=x)", "'x' is not allowed here"),
        ("normal(std=1 + 1)", "'1 + 1' is not allowed here"),
        ("normal(*[1])", "* and ** arguments are not allowed"),
        ("(lambda: 0)()", "unknown law"),
        ("0.01", "is not a law; write a call such as normal(std=0.01)"),
        ("", "is empty"),
        ("normal(std=0.01", "is not valid syntax"),
        ("gaussian(1)", "unknown law 'gaussian'; use one of normal, uniform, constant, truncated_normal"),
        ("normal(std=-1)", "Normal: std=-1.0 must be > 0"),
        ("normal(sigma=1)", "unexpected keyword argument 'sigma'"),
        ("stats.norm_gen(1)", "stats.norm_gen is not a continuous scipy.stats distribution"),
        ("stats.poisson(1)", "stats.poisson is not a continuous scipy.stats distribution"),
    ],
)
def test_anything_else_is_refused_with_a_message_and_nothing_runs(text, message):
    with pytest.raises(LawSyntaxError, match="expect=") as error:
        parse_law(text)
    assert message in str(error.value)


@given(st.floats(1e-6, 1e6), st.floats(-1e3, 1e3))
def test_numbers_read_back_exactly(std, mean):
    assert (
        parse_law(f"normal({std!r}, mean={mean!r})").element_law((4,), "float32").std
        == laws.Normal(std, mean).element_law((4,), "float32").std
    )


def test_literal_calls_for_the_target():
    assert literal_call("he_normal", "target") is None
    assert literal_call("variance_scaling(2.0, 'fan_in', mode=None)", "target") == (
        "variance_scaling",
        [2.0, "fan_in"],
        {"mode": None},
    )
    with pytest.raises(LawSyntaxError, match="not allowed"):
        literal_call("variance_scaling(open('x'))", "target")


def test_the_repr_of_every_catalog_entry_s_law_reads_back():
    # every entry, not a Hypothesis draw of configurations: Haiku's UniformScaling fan rule is a
    # named rule (fans='haiku_input_size'), since a function's import path does not parse. Keras's
    # STFT tables are made from each initializer's config (closures), so they have no import path:
    # those, and only those, are left out.
    import initcheck
    from initcheck import laws

    configured_tables = []
    for entry in initcheck.catalog():
        text = repr(entry.law).split(".refusing(")[0]
        if isinstance(entry.law, laws.Deterministic) and "(" in entry.law.expected.__qualname__:
            configured_tables.append(entry.id)
            continue
        assert parse_law(text) == entry.law.without_refusals(), text
    assert configured_tables and all(".STFT(" in name for name in configured_tables), configured_tables
