"""initcheck.derivation against the real Flax linen, Flax nnx and Haiku, bit for bit, under every
JAX setting that changes keys: PRNG implementation, ``jax_threefry_partitionable``, legacy vs
typed keys, and Flax's ``flax_fix_rng_separator``. Deterministic: no statistics here."""

from __future__ import annotations

import contextlib
import itertools

import flax
import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import example, given, settings
from hypothesis import strategies as st

import initcheck
from initcheck import derivation
from initcheck._frameworks import derive

IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")
SETTINGS = list(itertools.product(IMPLS, (True, False), ("legacy", "typed")))


@contextlib.contextmanager
def jax_setting(impl: str, partitionable: bool):
    with jax.default_prng_impl(impl), jax.threefry_partitionable(partitionable):
        yield


def root_key(kind: str, seed: int = 0):
    return jax.random.PRNGKey(seed) if kind == "legacy" else jax.random.key(seed)


def key_bits(key, *_):
    """An 'initializer' whose parameter is the raw bits of the key it was given."""
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


# -- the two lines of the seed documents, literally ------------------------------------------------


def test_seed_lines_top_level_dense_kernel_counter_1_bias_counter_2():
    from flax.core.scope import LazyRng  # only the test touches Flax internals

    seen = {}

    def spy(name, init):
        def wrapped(key, *args):
            seen[name] = key
            return init(key, *args)

        return wrapped

    rng = jax.random.key(3)
    dense = nn.Dense(
        4, kernel_init=spy("kernel", nn.initializers.lecun_normal()), bias_init=spy("bias", nn.initializers.normal(0.1))
    )
    params = dense.init(rng, jnp.ones((1, 3)))["params"]
    for name, counter in (("kernel", 1), ("bias", 2)):
        flax_key = LazyRng.create(rng, counter).as_jax_rng()
        ours = derivation.linen_key(rng, (), counter)
        assert derivation.key_bytes(seen[name]) == derivation.key_bytes(flax_key) == derivation.key_bytes(ours)
    np.testing.assert_array_equal(
        params["kernel"], nn.initializers.lecun_normal()(derivation.linen_key(rng, (), 1), (3, 4))
    )
    np.testing.assert_array_equal(params["bias"], nn.initializers.normal(0.1)(derivation.linen_key(rng, (), 2), (4,)))


def test_linen_hash_input_encoding():
    assert derive.linen_hash_input((), 1) == b"\x01"
    assert derive.linen_hash_input(("layers_2",), 1) == b"layers_2\x01"
    assert derive.linen_hash_input(("a",), 256) == b"a\x01\x00"
    assert derive.linen_hash_input(("ab", "cdef"), 1) == derive.linen_hash_input(("abc", "def"), 1)
    assert derive.linen_hash_input(("ab", "cdef"), 1, fix_separator=True) == b"\0ab\0cdef\0\x01"
    with pytest.raises(ValueError, match="counter=0"):
        derivation.linen_key(jax.random.key(0), (), 0)


def test_haiku_sequence_rule_and_state():
    keys = list(itertools.islice(derivation.haiku_keys(0), 3))
    state = jax.random.PRNGKey(0)
    for key in keys:
        state, expected = jax.random.split(state)
        assert derivation.key_bytes(key) == derivation.key_bytes(expected)
    _spare, queue = derive.haiku_state_after(0, 2, reserve_size=3)
    assert len(queue) == 1 and derivation.key_bytes(queue[0]) == derivation.key_bytes(
        list(itertools.islice(derivation.haiku_keys(0, reserve_size=3), 3))[2]
    )


# -- linen: key by key, on Hypothesis-generated module trees ----------------------------------------


class Node(nn.Module):
    """A module tree: ``spec = (number of parameters, ((child name, child spec), ...))``; each
    parameter is the bits of its key, so the tree's params are the keys Flax derived."""

    spec: tuple

    @nn.compact
    def __call__(self):
        count, children = self.spec
        for i in range(count):
            self.param(f"p{i}", key_bits)
        for name, sub in children:
            Node(sub, name=name)()


def module_trees(depth: int = 3):
    names = st.text("abc", min_size=1, max_size=3)
    leaf = st.tuples(st.integers(1, 3), st.just(()))
    return st.recursive(
        leaf,
        lambda inner: st.tuples(
            st.integers(0, 2),
            st.lists(st.tuples(names, inner), min_size=1, max_size=3, unique_by=lambda c: c[0]).map(tuple),
        ),
        max_leaves=6,
    )


def flat_params(tree, prefix=()):
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from flat_params(value, prefix + (name,))
        else:
            yield prefix, name, value


def linen_derived(spec, root, fix, path=()):
    count, children = spec
    for i in range(count):
        yield path, f"p{i}", derivation.linen_key(root, path, i + 1, fix_separator=fix)
    for name, sub in children:
        yield from linen_derived(sub, root, fix, path + (name,))


@pytest.mark.parametrize("fix", [False, True], ids=["default-separator", "fixed-separator"])
@given(spec=module_trees())
@example(spec=(0, (("a", (0, (("bc", (1, ())),))), ("ab", (0, (("c", (1, ())),))))))  # a collision by default
@settings(max_examples=30, deadline=None)
def test_linen_trees_match_flax_key_by_key_and_collide_alike(spec, fix):
    root = jax.random.key(7)
    with flax.config.temp_flip_flag("fix_rng_separator", fix):
        params = Node(spec).init(root)["params"]
    actual = {"/".join(p + (n,)): np.asarray(v).tobytes() for p, n, v in flat_params(params)}
    ours = {"/".join(p + (n,)): k for p, n, k in linen_derived(spec, root, fix)}
    assert actual.keys() == ours.keys()
    for path, key in ours.items():
        assert derivation.key_bytes(key) == actual[path], path
    # Equal keys in Flax are exactly the collisions initcheck finds (e.g. ab/c/p0 vs a/bc/p0).
    groups: dict[bytes, list[str]] = {}
    for path, bits in actual.items():
        groups.setdefault(bits, []).append(path)
    shared = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    assert sorted(map(sorted, derivation.collisions(ours))) == shared
    with flax.config.temp_flip_flag("fix_rng_separator", fix):
        report = initcheck.audit(Node(spec), rng=root, properties=["derivation"])
    failed = {v.case.path for v in report.verdicts if v.status != "pass"}
    assert failed == {path for group in shared for path in group}


def test_linen_collision_of_flax_issue_2157_and_the_separator_fix():
    spec = (0, (("ab", (0, (("cdef", (1, ())),))), ("abc", (0, (("def", (1, ())),)))))
    root = jax.random.key(0)
    ours = {"/".join(p + (n,)): k for p, n, k in linen_derived(spec, root, False)}
    assert derivation.collisions(ours) == [["ab/cdef/p0", "abc/def/p0"]]
    params = Node(spec).init(root)["params"]
    np.testing.assert_array_equal(params["ab"]["cdef"]["p0"], params["abc"]["def"]["p0"])
    fixed = {"/".join(p + (n,)): k for p, n, k in linen_derived(spec, root, True)}
    assert derivation.collisions(fixed) == []


# -- every model under every setting: values bit for bit through initcheck.audit ---------------------


class Nested(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), name="conv")(x)
        return Block(name="block")(x.reshape(x.shape[0], -1))


class Block(nn.Module):
    def setup(self):
        self.dense = nn.Dense(5)
        self.norm = nn.LayerNorm()

    def __call__(self, x):
        return self.norm(self.dense(x))


class Fallback(nn.Module):
    """make_rng('dropout') without a dropout stream draws from 'params' and shifts its counter."""

    @nn.compact
    def __call__(self, x):
        noise = jax.random.normal(self.make_rng("dropout"), x.shape)
        return x * noise @ self.param("w", nn.initializers.normal(1.0), (x.shape[-1], 3))


class Remat(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.remat(nn.Dense)(4)(x)  # a lift that keeps the scope's keys


def linen_models():
    return {
        "remat": (Remat(), (jnp.ones((1, 3)),)),
        "dense": (nn.Dense(4), (jnp.ones((1, 3)),)),
        "fallback": (Fallback(), (jnp.ones((1, 3)),)),
        "sequential": (nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(2)]), (jnp.ones((1, 3)),)),
        "nested-conv": (Nested(), (jnp.ones((1, 6, 6, 2)),)),
    }


class TwoLayers(nnx.Module):
    def __init__(self, rngs):
        self.first = nnx.Linear(3, 8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)  # forks the default stream: shifts later keys
        self.second = nnx.Linear(8, 2, bias_init=nnx.initializers.normal(0.5), rngs=rngs)


class Friends(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(10, 4, rngs=rngs)
        self.conv = nnx.Conv(4, 6, (3,), rngs=rngs)
        self.norm = nnx.LayerNorm(6, bias_init=nnx.initializers.normal(0.1), rngs=rngs)


def nnx_models():
    return {"linear": (nnx.Linear, (3, 4)), "two-layers": (TwoLayers, ()), "friends": (Friends, ())}


def haiku_models():
    def with_random_bias(x):
        return hk.nets.MLP([8, 2], b_init=hk.initializers.RandomNormal(0.1))(x)

    return {
        "linear": (hk.transform(lambda x: hk.Linear(4)(x)), (jnp.ones((1, 3)),)),
        "mlp": (hk.transform(lambda x: hk.nets.MLP([8, 2])(x)), (jnp.ones((1, 3)),)),
        "mlp-random-bias": (hk.transform(with_random_bias), (jnp.ones((1, 3)),)),
    }


def assert_derivations_pass(report, expected_count: int):
    verdicts = [v for v in report.verdicts if v.property == "derivation"]
    assert len(verdicts) == expected_count
    failed = [f"{v.case.path}: {v.message}" for v in verdicts if v.status != "pass"]
    assert not failed, failed


@pytest.mark.parametrize("fix", [False, True], ids=["default-separator", "fixed-separator"])
@pytest.mark.parametrize("impl,partitionable,key_kind", SETTINGS)
def test_linen_models_bit_for_bit(impl, partitionable, key_kind, fix):
    with jax_setting(impl, partitionable), flax.config.temp_flip_flag("fix_rng_separator", fix):
        for _name, (model, inputs) in linen_models().items():
            params = model.init({"params": root_key(key_kind)}, *inputs)["params"]
            count = len(jax.tree_util.tree_leaves(params))
            report = initcheck.audit(model, *inputs, rng=root_key(key_kind), properties=["derivation"])
            assert_derivations_pass(report, count)


@pytest.mark.parametrize("impl,partitionable,key_kind", SETTINGS)
def test_nnx_models_bit_for_bit(impl, partitionable, key_kind):
    with jax_setting(impl, partitionable):
        for _name, (factory, inputs) in nnx_models().items():
            count = len(jax.tree_util.tree_leaves(nnx.state(factory(*inputs, rngs=nnx.Rngs(0)))))  # random state too
            rng = 5 if key_kind == "legacy" else jax.random.key(5)  # nnx wraps an int itself
            report = initcheck.audit(factory, *inputs, rng=rng, properties=["derivation"])
            assert_derivations_pass(report, count)


def test_nnx_key_rule_for_linear_literally():
    layer = nnx.Linear(3, 4, rngs=nnx.Rngs(params=11))
    root = derive.nnx_root(11)
    np.testing.assert_array_equal(
        layer.kernel[...], nnx.initializers.lecun_normal()(derivation.nnx_key(root, 0), (3, 4))
    )
    raw = jax.random.key_data(jax.random.key(11))
    assert derivation.key_bytes(derive.nnx_root(raw)) == derivation.key_bytes(root)


@pytest.mark.parametrize("reserve", [1, 3], ids=["reserve-1", "reserve-3"])
@pytest.mark.parametrize("impl,partitionable,key_kind", SETTINGS)
def test_haiku_models_bit_for_bit(impl, partitionable, key_kind, reserve):
    with jax_setting(impl, partitionable), hk.config.context(rng_reserve_size=reserve):
        for _name, (transformed, inputs) in haiku_models().items():
            count = len(jax.tree_util.tree_leaves(transformed.init(root_key(key_kind), *inputs)))
            report = initcheck.audit(transformed, *inputs, rng=root_key(key_kind), properties=["derivation"])
            assert_derivations_pass(report, count)
