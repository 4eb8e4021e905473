"""Every builder of the catalog (JAX, Flax's own, Haiku, initcheck's own), in Hypothesis-drawn
configurations, conforms to its law in float32.

Statistical verdicts use fixed keys derived from the case (Hypothesis draws configurations, never
seeds). Default run: quick profile on one case, two configurations per builder (about 100 checks of
about 12 statistical verdicts at alpha 1e-6: a false-alarm rate near 1e-3 for the whole file), and
derandomized Hypothesis makes the outcome the same on every run. ``-m slow`` sweeps again under the
``ci`` profile with five configurations per builder.
"""

import dataclasses

import pytest
from hypothesis import given, settings

import initcheck
from initcheck import _profiles as profiles
from initcheck import strategies
from initcheck.strategies._configs import HAIKU_BUILDERS, INITCHECK_BUILDERS, JAX_BUILDERS

QUICK_ONE_CASE = dataclasses.replace(profiles.PROFILES["quick"], cases=1)
BUILDERS = (
    [("jax", b) for b in JAX_BUILDERS]
    + [("flax", b) for b in ("zeros_init", "ones_init")]
    + [("haiku", b) for b in HAIKU_BUILDERS]
    + [("initcheck", b) for b in INITCHECK_BUILDERS]
)
STRATEGIES = {
    "jax": strategies.jax_initializers,
    "flax": strategies.flax_initializers,
    "haiku": strategies.haiku_initializers,
    "initcheck": strategies.initcheck_initializers,
}


def test_every_public_builder_is_swept():
    import haiku as hk
    import jax

    from initcheck import inits

    public = {n for n in dir(jax.nn.initializers) if not n.startswith("_") and n not in ("Initializer",)}
    assert public == set(JAX_BUILDERS)
    assert {n for n in dir(hk.initializers) if n[0].isupper() and n != "Initializer"} == set(HAIKU_BUILDERS)
    assert set(inits.__all__) - {"calculate_gain"} == set(INITCHECK_BUILDERS)


def _sweep(framework, builder, profile, examples):
    @settings(max_examples=examples)
    @given(STRATEGIES[framework](names=[builder]))
    def run(config):
        label, init, law = config
        report = initcheck.check(init, law, profile=profile)
        assert report.passed, f"{label}\n{report}"

    run()


@pytest.mark.parametrize("framework, builder", BUILDERS, ids=[f"{f}.{b}" for f, b in BUILDERS])
def test_builder_conforms_quick(framework, builder):
    _sweep(framework, builder, QUICK_ONE_CASE, 2)


@pytest.mark.slow
@pytest.mark.parametrize("framework, builder", BUILDERS, ids=[f"{f}.{b}" for f, b in BUILDERS])
def test_builder_conforms_ci(framework, builder):
    _sweep(framework, builder, "ci", 5)
