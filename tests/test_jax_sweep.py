"""Every builder of jax.nn.initializers, in Hypothesis-drawn configurations, conforms to its law.

Statistical verdicts use fixed keys derived from the case (Hypothesis draws configurations, never
seeds). Profile ``quick``: alpha 1e-6 per verdict; this sweep makes about 40 checks of about 14
statistical verdicts, so its false-alarm rate is below 1e-3, and derandomized Hypothesis makes the
outcome the same on every run. ``-m slow`` runs the sweep again under the ``ci`` profile.
"""

import pytest
from hypothesis import given, settings

import initcheck
from initcheck import strategies

BUILDERS = ["constant", "zeros", "ones", "normal", "uniform", "truncated_normal", "variance_scaling",
            "orthogonal", "delta_orthogonal", "glorot_uniform", "glorot_normal", "xavier_uniform",
            "xavier_normal", "lecun_uniform", "lecun_normal", "he_uniform", "he_normal", "kaiming_uniform",
            "kaiming_normal"]


def test_every_public_builder_is_swept():
    import jax

    public = {n for n in dir(jax.nn.initializers) if not n.startswith("_") and n not in ("Initializer",)}
    assert public == set(BUILDERS)


def _sweep(builder, profile, examples):
    @settings(max_examples=examples)
    @given(strategies.jax_initializers(names=[builder]))
    def run(config):
        label, init, law = config
        report = initcheck.check(init, law, profile=profile)
        assert report.passed, f"{label}\n{report}"

    run()


@pytest.mark.parametrize("builder", BUILDERS)
def test_builder_conforms_quick(builder):
    _sweep(builder, "quick", 2)


@pytest.mark.slow
@pytest.mark.parametrize("builder", BUILDERS)
def test_builder_conforms_ci(builder):
    _sweep(builder, "ci", 5)
