"""Hostile inputs of issue 33 (points 6, 8, 9): initializers and models that look right in the
obvious tests and are wrong in the key words they read, the order of their values, or the values
one model shares. Small shapes, fixed keys and roots."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck import laws

KEY_PROPERTIES = ["determinism", "key_sensitivity"]


def _status(report, prop: str) -> str:
    return next(v.status.value for v in report.verdicts if v.property == prop)


# -- 6. key words: typed keys of every PRNG implementation ------------------------------------------


def first_half_of_the_key(key, shape, dtype=jnp.float32):
    """Reads words 0 and 1 of its key: all of a threefry key, half of an rbg key."""
    data = jax.random.key_data(key)
    return jax.random.normal(jax.random.wrap_key_data(data[..., :2], impl="threefry2x32"), shape, dtype)


def last_word_of_the_key(key, shape, dtype=jnp.float32):
    """Seeds from the last word of its key alone."""
    return jax.random.normal(jax.random.PRNGKey(jax.random.key_data(key)[..., -1]), shape, dtype)


@pytest.mark.parametrize("init", [first_half_of_the_key, last_word_of_the_key], ids=lambda f: f.__name__)
def test_an_initializer_reading_some_words_of_an_rbg_key_fails(init):
    report = initcheck.check(
        init, laws.Normal(1.0), shapes=[(4, 8)], dtypes=["float32"], properties=KEY_PROPERTIES, profile="quick"
    )
    assert _status(report, "determinism") == "pass"
    failed = next(v for v in report.verdicts if v.property == "key_sensitivity")
    assert failed.status.value == "fail", failed.message
    assert "rbg" in failed.message or "word" in failed.message, failed.message


@pytest.mark.parametrize(
    "init, law",
    [
        (jax.nn.initializers.normal(0.5), laws.Normal(0.5)),
        (jax.nn.initializers.lecun_uniform(), laws.VarianceScaling(1.0, "fan_in", "uniform")),
        (jax.nn.initializers.truncated_normal(1.0), laws.TruncatedNormal(1.0)),
        (jax.nn.initializers.orthogonal(), laws.Orthogonal()),
        (jax.nn.initializers.constant(0.5), laws.Constant(0.5)),
    ],
    ids=["normal", "lecun_uniform", "truncated_normal", "orthogonal", "constant"],
)
def test_correct_initializers_pass_with_every_key_implementation(init, law):
    report = initcheck.check(init, law, shapes=[(4, 8)], dtypes=["float32"], properties=KEY_PROPERTIES, profile="quick")
    assert report.passed, report
    messages = " ".join(v.message for v in report.verdicts)
    assert "rbg" in messages and "unsafe_rbg" in messages


def hidden_state_for_rbg(key, shape, dtype=jnp.float32):
    """Same key, different outputs, but only for 4-word keys (a counter kept between calls)."""
    hidden_state_for_rbg.calls += 1
    out = jax.random.normal(key, shape, dtype)
    if jax.random.key_data(key).shape[-1] == 4:  # rbg and unsafe_rbg
        out = out + hidden_state_for_rbg.calls
    return out


hidden_state_for_rbg.calls = 0


def test_determinism_tries_typed_keys_of_each_implementation():
    report = initcheck.check(
        hidden_state_for_rbg, laws.Normal(1.0), shapes=[(4, 8)], dtypes=["float32"], properties=["determinism"]
    )
    failed = report.verdicts[0]
    assert failed.status.value == "fail" and "rbg" in failed.message, failed.message


# -- 8. dependence with perfect marginals: sorted values, low rank ----------------------------------


def sorted_pairs(key, shape, dtype=jnp.float32):
    """Each row sorted: along an axis of two, min then max (no lag correlation: E[min max] = 0)."""
    return jnp.sort(jax.random.normal(key, shape, dtype), axis=-1)


def magnitudes_sorted(key, shape, dtype=jnp.float32):
    """|z| sorted along each row under random signs: perfect marginals, no correlation of values."""
    values, signs = jax.random.split(key)
    z = jnp.sort(jnp.abs(jax.random.normal(values, shape, dtype)), axis=-1)
    return jnp.where(jax.random.bernoulli(signs, 0.5, shape), z, -z)


def sorted_in_blocks(key, shape, dtype=jnp.float32):
    """Sorted within blocks of 16 of the flat value, then reshaped."""
    n = math.prod(shape)
    return jnp.sort(jax.random.normal(key, (n // 16, 16), dtype), axis=-1).reshape(shape)


def low_rank(rank: int):
    def init(key, shape, dtype=jnp.float32):
        a, b = jax.random.split(key)
        left = jax.random.normal(a, (math.prod(shape[:-1]), rank), jnp.float32)
        right = jax.random.normal(b, (rank, shape[-1]), jnp.float32)
        return (left @ right / math.sqrt(rank)).reshape(shape).astype(dtype)

    init.__qualname__ = f"low_rank({rank})"
    return init


@pytest.mark.parametrize(
    "init, shape",
    [
        (sorted_pairs, (2,)),
        (sorted_pairs, (16, 2)),
        (magnitudes_sorted, (8, 16)),
        (sorted_in_blocks, (8, 32)),
        (low_rank(2), (4, 8)),
        (low_rank(4), (8, 64)),
        (low_rank(200), (400, 600)),
    ],
    ids=[
        "sorted-pairs",
        "sorted-pairs-rows",
        "magnitudes-sorted",
        "sorted-in-blocks",
        "rank-2-of-4",
        "rank-4-of-8",
        "rank-200-of-400",
    ],
)
def test_dependent_values_with_perfect_marginals_fail_independence(init, shape):
    report = initcheck.check(
        init, laws.Normal(1.0), shapes=[shape], dtypes=["float32"], properties=["independence"], profile="quick"
    )
    assert _status(report, "independence") == "fail", report


@pytest.mark.parametrize("shape", [(2,), (16, 2), (8, 16), (4, 8), (400, 600)])
def test_independent_values_pass_the_order_and_rank_tests(shape):
    report = initcheck.check(
        jax.nn.initializers.normal(1.0),
        laws.Normal(1.0),
        shapes=[shape],
        dtypes=["float32"],
        properties=["independence"],
        profile="quick",
    )
    assert report.passed, report


# -- 9. between the values of one model ---------------------------------------------------------------


def _derivation(report) -> dict[str, tuple[str, str]]:
    return {v.case.path: (v.status.value, v.message) for v in report.verdicts if v.property == "derivation"}


def _nnx():
    from flax import nnx

    class OneKeyTwoShapes(nnx.Module):
        """The second layer handed the first layer's key, at another shape and scale."""

        def __init__(self, rngs: nnx.Rngs):
            key = rngs.params()  # drawn by hand: initcheck knows their laws (metadata), not their keys
            self.w1 = nnx.Param(jax.random.normal(key, (16, 32)) * 0.25, initcheck_law=laws.Normal(0.25))
            self.w2 = nnx.Param(jax.random.normal(key, (32, 8)) * 0.5, initcheck_law=laws.Normal(0.5))

        def __call__(self, x):
            return x @ self.w1 @ self.w2

    class FixedKey(nnx.Module):
        """A parameter drawn with a fixed key: the same values for every model seed."""

        def __init__(self, rngs: nnx.Rngs):
            self.lin = nnx.Linear(8, 16, rngs=rngs)
            self.w = nnx.Param(jax.random.normal(jax.random.key(0), (16, 16)) * 0.25)

        def __call__(self, x):
            return self.lin(x) @ self.w

    class NoiseFromTheWeightsKey(nnx.Module):
        """Random state (a noise buffer) drawn from the key of the weights."""

        def __init__(self, rngs: nnx.Rngs):
            key = rngs.params()
            self.w = nnx.Param(jax.nn.initializers.normal(0.25)(key, (16, 32)))
            self.noise = nnx.Variable(jax.random.normal(key, (8, 32)))

        def __call__(self, x):
            return x @ self.w

    return OneKeyTwoShapes, FixedKey, NoiseFromTheWeightsKey


@pytest.mark.parametrize("path", ["eager", "whole", "by-value"])
def test_one_key_at_two_shapes_fails_on_the_abstract_paths(path, monkeypatch):
    from initcheck._audit import _budget

    one_key, _, _ = _nnx()
    if path == "whole":
        monkeypatch.setattr(_budget, "ONE_INIT_ABOVE", 0)
    elif path == "by-value":
        monkeypatch.setattr(_budget, "IN_MEMORY_FACTOR", 10**12)
        monkeypatch.setattr(_budget, "VALUE_FACTOR", 1)
    lines: list[str] = []
    report = initcheck.audit(one_key, rng=0, memory="2GB", progress=lines.append)
    marker = {"eager": "watching every value", "whole": "one jitted init", "by-value": "recording its init abstractly"}
    assert any(marker[path] in line for line in lines), lines
    derivation = _derivation(report)
    for name in ("w1", "w2"):
        assert derivation[name][0] == "fail" and "affine copy" in derivation[name][1], derivation


def _fixed_key_models():
    """(name, model, inputs, options, path of the value drawn with a fixed key) in each framework
    that re-initializes, and beside it a table computed without a key that must not fail."""
    import equinox as eqx
    import flax.linen as nn
    import haiku as hk
    from flax import nnx

    _, nnx_fixed, _ = _nnx()

    def sinusoid(length, width):
        position = np.arange(length)[:, None] / 10000 ** (np.arange(width)[None, :] / width)
        return jnp.asarray(np.sin(position), jnp.float32)

    class LinenFixed(nn.Module):
        @nn.compact
        def __call__(self, x):
            w = self.param("w", lambda rng, shape: 0.25 * jax.random.normal(jax.random.PRNGKey(42), shape), (8, 16))
            table = self.param("table", lambda rng, shape: sinusoid(*shape), (4, 16))
            return nn.Dense(16)(x) @ w.T + table.sum()

    def haiku_fixed(x):
        w = hk.get_parameter("w", (8, 16), init=lambda s, d: 0.25 * jax.random.normal(jax.random.key(7), s, d))
        table = hk.get_parameter("table", (4, 16), init=lambda s, d: sinusoid(*s))
        return hk.Linear(16)(x) + (x @ w).sum() + table.sum()

    class EquinoxFixed(eqx.Module):
        lin: eqx.nn.Linear
        w: jax.Array
        table: jax.Array

        def __init__(self, key):
            self.lin = eqx.nn.Linear(8, 16, key=key)
            self.w = 0.25 * jax.random.normal(jax.random.PRNGKey(3), (16, 16))
            self.table = sinusoid(4, 16)

        def __call__(self, x):
            return self.lin(x) @ self.w

    class NnxTable(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.lin = nnx.Linear(8, 16, rngs=rngs)
            self.table = nnx.Param(sinusoid(4, 16))

    x = jnp.ones((2, 8))
    return [
        ("nnx", nnx_fixed, (), {}, "w"),
        ("linen", LinenFixed(), (x,), {}, "w"),
        ("haiku", hk.transform(haiku_fixed), (x,), {}, "~/w"),
        ("equinox", EquinoxFixed, (), {"call_args": (jnp.ones(8),)}, "w"),
        ("nnx-table", NnxTable, (), {}, None),
    ]


@pytest.mark.parametrize("case", range(5), ids=["nnx", "linen", "haiku", "equinox", "nnx-table"])
def test_a_parameter_drawn_with_a_fixed_key_fails_and_a_computed_table_does_not(case):
    """Such a value is the same from every root key, like a table computed without a key; made
    again with the keys the init makes from seeds moved, it changes and the table does not."""
    _, model, inputs, options, fixed = _fixed_key_models()[case]
    derivation = _derivation(initcheck.audit(model, *inputs, rng=0, **options))
    failed = {path for path, (status, _) in derivation.items() if status == "fail"}
    tables = [path for path in derivation if path.endswith("table")]
    assert failed == ({fixed} if fixed else set()), derivation
    if fixed:
        assert "drawn with a fixed key" in derivation[fixed][1], derivation
    assert all(derivation[t][0] != "fail" for t in tables)


def test_random_state_drawn_from_the_weights_key_fails():
    _, _, noise = _nnx()
    derivation = _derivation(initcheck.audit(noise, rng=0))
    assert derivation["noise"][0] == "fail" and "affine copy" in derivation["noise"][1], derivation


def test_haiku_state_drawn_from_the_weights_key_fails():
    import haiku as hk

    def forward(x):
        key = hk.next_rng_key()
        w = hk.get_parameter("w", (16, 32), init=lambda shape, dtype: jax.random.normal(key, shape, dtype))
        noise = hk.get_state("noise", (8, 32), init=lambda shape, dtype: jax.random.normal(key, shape, dtype))
        return x @ w + noise.sum()

    derivation = _derivation(initcheck.audit(hk.transform_with_state(forward), jnp.ones((2, 16)), rng=0))
    assert derivation["~/noise"][0] == "fail" and "affine copy" in derivation["~/noise"][1], derivation
