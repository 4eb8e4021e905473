"""The memory budget's abstract path for Haiku: every Haiku corpus model forced onto it (as
``tests/test_budget.py`` does for linen) gives the in-memory verdicts, values made whole or layer by
layer, and its one-jitted-init path gives the eager verdicts; an ``hk.layer_stack`` whose layers are
all handed one key fails ``derivation`` on it; values on keys initcheck cannot derive are still
tested on it, made from the keys Haiku handed their initializers."""

from __future__ import annotations

import functools

import haiku as hk
import jax
import jax.numpy as jnp
import pytest

import initcheck
from tests.corpus import haiku_models
from tests.test_budget import _abstract, _same_verdicts, abstract_path_matches, corpus, one_init_matches

# in the default run: an hk.layer_stack (stacked values made layer by layer), EMA state updated
# during init (audited as created), keys split by hand and handed to hk.with_rng, and bfloat16
# params; every Haiku corpus model under -m slow
DEFAULT = {"haiku-layer-stack-lm", "haiku-vqvae-ema", "haiku-handed-keys", "haiku-bf16-mlp"}
ENTRIES = corpus(haiku_models.ENTRIES, DEFAULT)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_the_abstract_path_gives_the_in_memory_verdicts(entry, whole, monkeypatch):
    abstract_path_matches(entry, whole, monkeypatch)


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_one_jitted_init_gives_the_eager_verdicts(entry, monkeypatch):
    one_init_matches(entry, monkeypatch)


def tied_layers(x, num_layers: int = 4, *, seed: int | None = None):
    """A residual MLP stack whose author starts every layer's sequence at one key, meaning to give
    each layer "its own" key: one drawn once before the stack (or, with ``seed``, a fixed
    ``PRNGKey(seed)``). Every layer is made the same."""
    key = hk.next_rng_key() if seed is None else None

    def layer(h):
        with hk.with_rng(key if seed is None else jax.random.PRNGKey(seed)):
            return h + hk.Linear(32, w_init=hk.initializers.VarianceScaling(2.0))(jax.nn.gelu(h))

    h = hk.Linear(32)(x)
    return hk.layer_stack(num_layers)(layer)(h)


TIED = {"drawn-once": tied_layers, "fixed-seed": functools.partial(tied_layers, seed=42)}
STACKED = "__layer_stack_no_per_layer/linear/w"


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("bug", TIED)
def test_layers_handed_one_key_fail_on_the_abstract_path(bug, whole, monkeypatch):
    _abstract(monkeypatch, whole=whole)
    report = initcheck.audit(hk.transform(TIED[bug]), jnp.ones((2, 8)), rng=0, memory="2GB")
    failed = {v.case.path for v in report.failures if v.property == "derivation"}
    assert STACKED in failed, report.failure_text()
    assert "linear/w" not in failed  # the layer before the stack draws its own key
    assert report.result == "fail"


@pytest.mark.parametrize("bug", TIED)
def test_layers_handed_one_key_fail_in_memory_too(bug):
    report = initcheck.audit(hk.transform(TIED[bug]), jnp.ones((2, 8)), rng=0, properties=["derivation"])
    assert STACKED in {v.case.path for v in report.failures}, report.failure_text()


def keys_made_by_arithmetic(x):
    """Keys made from drawn ones by arithmetic on their data, before and inside an hk.layer_stack:
    initcheck cannot derive them, and still tests the values made on them."""
    with hk.with_rng(hk.next_rng_key() + jnp.uint32(1)):
        h = hk.Linear(32, w_init=hk.initializers.RandomNormal(0.1))(x)

    def layer(h):
        with hk.with_rng(hk.next_rng_key() ^ jnp.uint32(7)):
            return h + hk.Linear(32)(h)

    return hk.layer_stack(3)(layer)(h)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
def test_values_on_keys_initcheck_cannot_derive_are_still_tested_on_the_abstract_path(whole, monkeypatch):
    """Made, like the model made them, from the keys Haiku handed their initializers."""
    model, x = hk.transform(keys_made_by_arithmetic), jnp.ones((2, 8))
    in_memory = initcheck.audit(model, x, rng=0)
    _abstract(monkeypatch, whole=whole)
    abstract = initcheck.audit(model, x, rng=0, memory="2GB")
    _same_verdicts(in_memory, abstract, streamed=not whole)
    verdicts = {(v.case.path, v.property): v for v in abstract.verdicts}
    for path in ("linear/w", "__layer_stack_no_per_layer/linear/w"):
        assert (
            verdicts[path, "derivation"].status == "skip" and "could not derive" in verdicts[path, "derivation"].message
        )
        assert verdicts[path, "moments"].status == "pass", verdicts[path, "moments"].message
