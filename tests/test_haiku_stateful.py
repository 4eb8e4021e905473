"""Haiku's stateful transforms at init: ``hk.layer_stack`` stores each layer's state after one apply
of the layer (an ``hk.BatchNorm``'s moving averages updated in training mode), and ``hk.remat`` hands
the rng sequence's state in and out. A state updated at init is audited as it was created, in a stack
as outside one; after an ``hk.remat`` (nested, or inside a stack) the sequence continues from the
state the remat handed back, and every key is derived bit for bit, on the eager path, on the abstract
one (the memory budget) and by one jitted init of the whole model."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck._audit import _budget
from tests.test_budget import _abstract, _same_verdicts

STACKED = "__layer_stack_no_per_layer/"
X = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8)), jnp.float32)


def batch_norm(y):
    return hk.BatchNorm(True, True, 0.9)(y, is_training=True)


def stacked_batch_norm(x):
    return hk.layer_stack(2)(batch_norm)(x)


def nested_stacked_batch_norm(x):
    return hk.layer_stack(2)(lambda y: hk.layer_stack(3)(batch_norm)(y))(x)


def after_remat(x):
    x = hk.remat(lambda y: y + hk.Linear(8)(y))(x)
    return hk.Linear(2)(x)


def nested_remat(x):
    def inner(y):
        y = y + hk.Linear(8)(y)
        return hk.remat(lambda z: z + hk.Linear(8)(z))(y)

    x = hk.Linear(8)(x)
    x = hk.remat(inner)(x)
    return hk.Linear(2)(x)


def remat_in_layer_stack(x):
    x = hk.Linear(8)(x)
    x = hk.layer_stack(3)(lambda y: hk.remat(lambda z: z + hk.Linear(8)(z))(y) + hk.Linear(8)(y))(x)
    return hk.Linear(2)(x)


def remat_drawing_keys(x):
    """Keys reserved and drawn inside each remat (dropout), and drawn after them."""

    def body(y):
        hk.reserve_rng_keys(2)
        y = hk.dropout(hk.next_rng_key(), 0.1, y)
        return y + hk.Linear(8, w_init=hk.initializers.RandomNormal())(y)

    x = hk.Linear(8)(x)
    x = hk.remat(body)(hk.remat(body)(x))
    return hk.Linear(2)(hk.dropout(hk.next_rng_key(), 0.1, x))


STATEFUL = {"layer-stack": stacked_batch_norm, "nested-layer-stack": nested_stacked_batch_norm}
REMAT = {
    "after-remat": after_remat,
    "nested-remat": nested_remat,
    "remat-in-layer-stack": remat_in_layer_stack,
    "remat-drawing-keys": remat_drawing_keys,
}


def _model(f):
    return hk.transform_with_state(f) if f in STATEFUL.values() else hk.transform(f)


def _statuses(report) -> dict:
    """(path less its stacks' prefixes, property) -> status."""
    strip = lambda path: path.replace(STACKED, "")
    return {(strip(v.case.path), v.property): v.status for v in report.verdicts}


def _assert_all_pass(report) -> None:
    bad = [f"{v.case.path}: {v.property}: {v.status}: {v.message}" for v in report.verdicts if v.status == "fail"]
    assert report.result == "pass" and not bad, bad
    derivation = [v for v in report.verdicts if v.property == "derivation"]
    assert derivation and all(v.status == "pass" or "computed" in v.message for v in derivation), [
        (v.case.path, v.status, v.message) for v in derivation
    ]
    assert report.coverage.complete, report.coverage.gaps


@pytest.mark.parametrize("name", STATEFUL)
def test_state_updated_in_a_layer_stack_is_audited_as_created(name):
    """Failed before the fix: the moving averages' counter and hidden values, updated by the layer's
    apply in the stack, were compared with their zero initializers."""
    report = initcheck.audit(_model(STATEFUL[name]), X, rng=0)
    _assert_all_pass(report)
    counter = next(
        v for v in report.verdicts if v.case.path.endswith("mean_ema/counter") and v.property == "derivation"
    )
    assert counter.status == "pass", counter.message
    # the same verdicts as the layer outside a stack (the running average: a value the model computes)
    alone = initcheck.audit(hk.transform_with_state(batch_norm), X, rng=0)
    assert set(_statuses(report).items()) == set(_statuses(alone).items())


@pytest.mark.parametrize("reserve", [1, 3], ids=["reserve-1", "reserve-3"])
@pytest.mark.parametrize("name", REMAT)
def test_keys_after_a_remat_are_derived_bit_for_bit(name, reserve):
    """Failed before the fix (PARTIAL: every value after the first remat left underived)."""
    with hk.config.context(rng_reserve_size=reserve):
        report = initcheck.audit(hk.transform(REMAT[name]), X, rng=3)
    _assert_all_pass(report)


def test_a_fixed_key_after_a_remat_still_fails():
    def buggy(x):
        x = hk.remat(lambda y: y + hk.Linear(8)(y))(x)
        with hk.with_rng(jax.random.PRNGKey(0)):
            return hk.Linear(2)(x)

    report = initcheck.audit(hk.transform(buggy), X, rng=3, properties=["derivation"])
    status = {v.case.path: v for v in report.verdicts}
    assert report.result == "fail"
    assert status["linear_1/w"].status == "fail" and "fixed key" in status["linear_1/w"].message
    assert status["linear/w"].status == "pass", status["linear/w"].message


ABSTRACT = {**STATEFUL, "after-remat": after_remat, "remat-in-layer-stack": remat_in_layer_stack}


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("name", ABSTRACT)
def test_the_abstract_path_gives_the_in_memory_verdicts(name, whole, monkeypatch):
    """Values made whole or slice by slice: the same verdicts, all passing (before the fix, the
    stacked state's slices failed here and the values after a remat were not derived)."""
    model = _model(ABSTRACT[name])
    in_memory = initcheck.audit(model, X, rng=0)
    _abstract(monkeypatch, whole=whole)
    abstract = initcheck.audit(model, X, rng=0, memory="2GB")
    _same_verdicts(in_memory, abstract, streamed=not whole)
    assert abstract.result == "pass" and abstract.coverage.complete, abstract.failure_text()


@pytest.mark.parametrize("name", ABSTRACT)
def test_one_jitted_init_gives_the_eager_verdicts(name, monkeypatch):
    model = _model(ABSTRACT[name])
    eager = initcheck.audit(model, X, rng=0)
    monkeypatch.setattr(_budget, "ONE_INIT_ABOVE", 0)
    lines: list[str] = []
    one_init = initcheck.audit(model, X, rng=0, progress=lines.append)
    assert any("one jitted init of the whole model" in line for line in lines), lines
    _same_verdicts(eager, one_init, streamed=False)
    assert one_init.result == "pass" and one_init.coverage.complete, one_init.failure_text()
