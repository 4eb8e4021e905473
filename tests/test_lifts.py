"""The lifted transforms' key rules, bit for bit against the real frameworks, under every JAX setting
that changes keys (PRNG implementation, ``jax_threefry_partitionable``, legacy vs typed keys).

Every model here initializes its parameters with ``key_bits`` (the parameter is the raw data of the
key it was handed) or with a real initializer, inside ``nn.scan``, ``nn.vmap``, ``nn.remat_scan``,
``nn.jit``, ``nnx.split_rngs`` + ``nnx.vmap``, keys split by hand, ``hk.layer_stack`` (nested),
``hk.with_rng`` and ``hk.scan``; ``derivation`` passes only when initcheck's own rule gives every
slice's key exactly. Deterministic: no statistics here.

The default run covers JAX's default setting and one that changes every split (rbg, not
partitionable, legacy keys); ``-m slow`` runs all twelve, unsafe_rbg included."""

from __future__ import annotations

import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import initcheck
from initcheck import laws
from tests.test_derivation import SETTINGS, jax_setting, key_bits, root_key

DEFAULT_SETTINGS = {("threefry2x32", True, "typed"), ("rbg", False, "legacy")}
LIFT_SETTINGS = [pytest.param(*s, marks=() if s in DEFAULT_SETTINGS else pytest.mark.slow) for s in SETTINGS]
key_bits = initcheck.expects(laws.Constant(0.0))(key_bits)  # a law, so that coverage is complete


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _=None):
        self.param("bits", key_bits, (2,))
        x = nn.Dense(4, kernel_init=nn.initializers.normal(0.5))(x)
        return nn.LayerNorm()(x), None


class Scanned(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=3)()(x, None)[0]


class Vmapped(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.vmap(
            Block, variable_axes={"params": 1}, split_rngs={"params": True}, in_axes=None, out_axes=0, axis_size=2
        )()(x)[0]


class VmapOfScan(nn.Module):
    @nn.compact
    def __call__(self, x):
        inner = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=2)
        return nn.vmap(
            inner,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(None, None),
            out_axes=0,
            axis_size=3,
        )()(x, None)[0]


class CarryBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        self.param("bits", key_bits, (2,))
        return nn.Dense(4, kernel_init=nn.initializers.normal(0.5))(x)


class RematScan(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.remat_scan(CarryBlock, lengths=(2, 2))(name="stack")(x)


class Jitted(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x, _ = nn.jit(Block)(name="jitted")(x)
        return Block(name="plain")(x)[0]


class ScanOfJit(nn.Module):
    @nn.compact
    def __call__(self, x):
        class Inner(nn.Module):
            @nn.compact
            def __call__(self, x, _):
                return nn.jit(Block)()(x)[0], None

        return nn.scan(Inner, variable_axes={"params": 0}, split_rngs={"params": True}, length=2)()(x, None)[0]


def linen_lift_models():
    x = jnp.ones((2, 4))
    return {
        "scan": Scanned(),
        "vmap": Vmapped(),
        "vmap-of-scan": VmapOfScan(),
        "remat-scan": RematScan(),
        "jit": Jitted(),
        "scan-of-jit": ScanOfJit(),
    }, x


def assert_every_value_derived(report, name=""):
    verdicts = [v for v in report.verdicts if v.property == "derivation"]
    failed = [f"{name}: {v.case.path}: {v.status}: {v.message}" for v in verdicts if v.status != "pass"]
    assert verdicts and not failed, failed
    assert report.coverage.complete, (name, report.coverage.gaps)


@pytest.mark.parametrize("impl,partitionable,key_kind", LIFT_SETTINGS)
def test_linen_lifts_bit_for_bit(impl, partitionable, key_kind):
    models, x = linen_lift_models()
    with jax_setting(impl, partitionable):
        for name, model in models.items():
            report = initcheck.audit(model, x, rng=root_key(key_kind), properties=["derivation"])
            assert_every_value_derived(report, name)


def test_linen_scan_keys_are_split_base_keys_with_the_path_folded_in_afterwards():
    """The rule itself, spelled out: slice i of nn.scan's kernel key is fold_in(split(root, L)[i],
    sha1(path + counter)), and the counter is #3 (the body is traced twice at init)."""
    from initcheck import derivation
    from initcheck._frameworks import derive

    root = jax.random.key(3)
    params = Scanned().init(root, jnp.ones((2, 4)))["params"]
    bits = np.asarray(params["ScanBlock_0"]["bits"])
    slices = derive.linen_split(root, 3)
    for i in range(3):
        own = derivation.linen_key(slices[i], ("ScanBlock_0",), 2)  # 'bits' is make_rng #2 of its scope
        assert derivation.key_bytes(own) == bits[i].tobytes()


def test_a_lift_that_hands_every_slice_the_same_key_is_flagged():
    class Same(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.vmap(
                nn.Dense,
                variable_axes={"params": 0},
                split_rngs={"params": False},
                in_axes=None,
                out_axes=0,
                axis_size=3,
            )(4)(x)

    report = initcheck.audit(Same(), jnp.ones((2, 4)), rng=0, properties=["derivation"])
    kernel = next(v for v in report.verdicts if v.case.path.endswith("kernel"))
    assert kernel.status == "fail" and "slices 0 and 1 of 3 are identical" in kernel.message


def test_scan_law_is_tested_on_the_slice_shape_with_the_slices_pooled():
    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            class Layer(nn.Module):
                @nn.compact
                def __call__(self, x, _):
                    return nn.Dense(64, kernel_init=nn.initializers.xavier_uniform())(x), None

            return nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)()(x, None)[0]

    report = initcheck.audit(Stack(), jnp.ones((2, 64)), rng=0)
    assert report.result == "pass", report.failure_text()
    kernel = [v for v in report.verdicts if v.case.path.endswith("kernel")]
    assert len(kernel) == 7  # one record per parameter and property (intent aside), whatever the number of traces
    assert {v.case.shape for v in kernel} == {(64, 64)}
    moments = next(v for v in kernel if v.property == "moments")
    assert moments.status == "pass" and moments.n == 4 * 64 * 64
    derivation = next(v for v in kernel if v.property == "derivation")
    assert "each of its 4 slices" in derivation.message and "split(params, 4)[i]" in derivation.message


# -- nnx --------------------------------------------------------------------------------------------


class Member(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 4, kernel_init=nnx.initializers.normal(0.5), rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(4, 2, bias_init=nnx.initializers.normal(0.1), rngs=rngs)


class SplitVmap(nnx.Module):
    def __init__(self, rngs):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return Member(rngs)

        self.members = create(rngs)
        self.head = nnx.Linear(2, 1, rngs=rngs)


class HandSplit(nnx.Module):
    def __init__(self, rngs):
        @nnx.vmap(in_axes=0, out_axes=0)
        def create(key):
            return Member(nnx.Rngs(key))

        self.members = create(jax.random.split(rngs.params(), 2))


class ScanCreated(nnx.Module):
    def __init__(self, rngs):
        @nnx.split_rngs(splits=2)
        @nnx.scan(in_axes=(0,), out_axes=0, length=2)
        def create(rngs):
            return Member(rngs)

        self.layers = create(rngs)


@pytest.mark.parametrize("impl,partitionable,key_kind", LIFT_SETTINGS)
def test_nnx_lifts_bit_for_bit(impl, partitionable, key_kind):
    rng = 7 if key_kind == "legacy" else jax.random.key(7)
    with jax_setting(impl, partitionable):
        for factory in (SplitVmap, HandSplit, ScanCreated):
            assert_every_value_derived(initcheck.audit(factory, rng=rng, properties=["derivation"]), factory.__name__)


def test_nnx_multi_head_attention_passes_with_the_flat_draw_understood():
    report = initcheck.audit(
        nnx.MultiHeadAttention, 4, 32, rng=0, call_args=(jnp.ones((1, 3, 32)),), call_kwargs={"decode": False}
    )
    assert report.result == "pass", report.failure_text()
    query = next(v for v in report.verdicts if v.case.path == "query/kernel" and v.property == "moments")
    assert query.status == "pass" and query.case.shape == (32, 4, 8)


# -- Haiku ------------------------------------------------------------------------------------------


def haiku_lift_models():
    def stacked(x):
        def layer(x):
            return jax.nn.relu(hk.Linear(4, b_init=hk.initializers.RandomNormal(0.1))(x))

        x = hk.Linear(4)(x)
        return hk.layer_stack(3)(layer)(x)

    def nested(x):
        def inner(x):
            return hk.Linear(4, w_init=hk.initializers.RandomNormal(0.5))(x)

        return hk.layer_stack(2)(lambda x: hk.layer_stack(2)(inner)(x))(x)

    def handed(x):
        key_a, key_b = jax.random.split(hk.next_rng_key())
        with hk.with_rng(key_a):
            a = hk.Linear(4, name="a")(x)
        with hk.with_rng(jax.random.fold_in(key_b, 3)):
            b = hk.Linear(4, name="b")(x)
        return a + b

    def scanned(xs):
        core = hk.GRU(4)

        def step(state, x):
            out, state = core(x, state)
            return state, out

        _, outs = hk.scan(step, core.initial_state(xs.shape[1]), xs)
        return hk.Linear(2, b_init=hk.initializers.RandomNormal(0.1))(outs)

    return {
        "layer-stack": (stacked, jnp.ones((2, 4))),
        "nested-layer-stack": (nested, jnp.ones((2, 4))),
        "with-rng-split-by-hand": (handed, jnp.ones((2, 4))),
        "scan": (scanned, jnp.ones((3, 2, 4))),
    }


@pytest.mark.parametrize("reserve", [1, 3], ids=["reserve-1", "reserve-3"])
@pytest.mark.parametrize("impl,partitionable,key_kind", LIFT_SETTINGS)
def test_haiku_lifts_bit_for_bit(impl, partitionable, key_kind, reserve):
    with jax_setting(impl, partitionable), hk.config.context(rng_reserve_size=reserve):
        for name, (f, x) in haiku_lift_models().items():
            report = initcheck.audit(hk.transform(f), x, rng=root_key(key_kind), properties=["derivation"])
            assert_every_value_derived(report, name)


def test_haiku_with_a_fixed_key_is_flagged_and_the_rest_derives():
    def f(x):
        with hk.with_rng(jax.random.PRNGKey(0)):
            h = hk.Linear(4)(x)
        return hk.Linear(4)(h)

    report = initcheck.audit(hk.transform(f), jnp.ones((1, 4)), rng=7, properties=["derivation"])
    status = {v.case.path: v for v in report.verdicts}
    assert status["linear/w"].status == "fail" and "fixed key" in status["linear/w"].message
    assert (
        status["linear_1/w"].status == "pass"
        and "key #1 of the sequence started at rng" in status["linear_1/w"].message
    )


def test_nnx_vmap_over_an_unsplit_stream_gives_identical_members_and_fails():
    class Clones(nnx.Module):
        def __init__(self, rngs):
            @nnx.vmap(in_axes=None, out_axes=0, axis_size=3)
            def create(rngs):
                return nnx.Linear(4, 8, rngs=rngs)

            self.members = create(rngs)

    report = initcheck.audit(Clones, rng=0, properties=["derivation"])
    kernel = next(v for v in report.verdicts if v.case.path == "members/kernel")
    assert kernel.status == "fail" and "slices 0 and 1 of 3 are identical" in kernel.message


def test_haiku_sequence_is_derived_with_the_reserve_size_initcheck_is_told_not_the_frameworks():
    f = hk.transform(lambda x: hk.nets.MLP([8, 8, 2])(x))
    with hk.config.context(rng_reserve_size=1):
        right = initcheck.audit(f, jnp.ones((1, 4)), rng=0, properties=["derivation"])
        wrong = initcheck.audit(
            f, jnp.ones((1, 4)), rng=0, properties=["derivation"], settings={"haiku_rng_reserve_size": 3}
        )
    assert_every_value_derived(right)
    failed = [v.case.path for v in wrong.verdicts if v.status == "fail"]
    assert failed and all(path.endswith("/w") for path in failed)
