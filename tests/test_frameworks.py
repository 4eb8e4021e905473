"""The framework modules behind one protocol (``initcheck._frameworks``): each recognises its own
models, records them concretely and abstractly (``jax.eval_shape``) to the same values, and models
the settings it is told; the registry refuses what no framework knows and settings it has not got.

Exact comparisons of shapes, dtypes and keys only (no sampling): no false alarms."""

from __future__ import annotations

import os

import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import initcheck
from initcheck._frameworks import registry
from initcheck._record import Model

os.environ.setdefault("KERAS_BACKEND", "jax")
eqx = pytest.importorskip("equinox")
keras = pytest.importorskip("keras")


class LinenBlock(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Dense(16, kernel_init=nn.initializers.lecun_normal())(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(4)(nn.relu(x))


class NnxBlock(nnx.Module):
    def __init__(self, din: int, *, rngs: nnx.Rngs):
        self.dense = nnx.Linear(din, 16, rngs=rngs)
        self.norm = nnx.BatchNorm(16, rngs=rngs)
        self.out = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.norm(self.dense(x))))


def _haiku_block(x, is_training=True):
    x = hk.Linear(16)(x)
    x = hk.BatchNorm(True, True, 0.9)(x, is_training)
    return hk.Linear(4)(jax.nn.relu(x))


def _keras_block():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(4)])


X = jnp.ones((2, 8))
TARGETS = {
    "flax.linen": lambda: Model(LinenBlock(), (X,)),
    "flax.nnx": lambda: Model(NnxBlock, (8,)),
    "haiku": lambda: Model(hk.transform_with_state(_haiku_block), (X,)),
    "equinox": lambda: Model(lambda key: eqx.nn.MLP(8, 4, 16, 2, key=key), ()),
    "keras": lambda: Model(_keras_block(), (X,)),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_framework_recognises_its_model_and_records_it_abstractly_as_it_does_concretely(name):
    target = TARGETS[name]()
    target = Model(target.model, target.args, rng=0)
    framework = registry.of_model(target.model)
    assert framework.name == name and framework.family in initcheck._frameworks.FRAMEWORKS
    recorded = framework.record(target, {}).parameters
    shapes = framework.shapes(target)
    concrete = {(p.collection, p.path): (p.array.shape, p.array.dtype) for p in recorded}
    abstract = {key: (tuple(s.shape), s.dtype) for key, s in shapes.items()}
    assert abstract and abstract == {key: concrete[key] for key in abstract}, (abstract, concrete)
    assert set(abstract) == set(concrete) or name == "equinox"  # Equinox: a State's arrays are not included


@pytest.mark.parametrize(
    ("model", "error"),
    [
        (eqx.nn.Linear(2, 3, key=jax.random.key(0)), "already built; pass a factory taking key="),
        (nnx.Linear(2, 3, rngs=nnx.Rngs(0)), "already built; pass its class"),
        (42, "is not a Flax linen Module, an nnx Module class or factory"),
    ],
    ids=["built-equinox", "built-nnx", "int"],
)
def test_the_registry_refuses_what_it_cannot_audit_with_the_fix(model, error):
    with pytest.raises(TypeError, match=error):
        registry.of_model(model)


def test_a_setting_the_framework_does_not_model_is_refused_naming_those_it_does():
    with pytest.raises(ValueError, match=r"flax.linen models flax_fix_rng_separator only, not 'fix_separator'"):
        initcheck.audit(LinenBlock(), X, rng=0, settings={"fix_separator": True})
    with pytest.raises(ValueError, match=r"haiku models haiku_rng_reserve_size only, not 'jax_enable_x64'.*jax.config"):
        initcheck.audit(hk.transform_with_state(_haiku_block), X, rng=0, settings={"jax_enable_x64": True})
    with pytest.raises(ValueError, match=r"flax.nnx models no setting, not 'flax_fix_rng_separator'"):
        initcheck.audit(NnxBlock, 8, rng=0, settings={"flax_fix_rng_separator": True})


@pytest.mark.parametrize(
    ("module", "defect"),
    [
        ("jax._src.nn.initializers", "jax-low-precision-sampling"),
        ("flax.linen.initializers", "jax-low-precision-sampling"),
        ("haiku._src.initializers", "haiku-low-precision-sampling"),
        ("keras.src.initializers.random_initializers", "keras-low-precision-sampling"),
        ("keras_hub.src.layers", "keras-low-precision-sampling"),
        ("equinox.nn._linear", "equinox-low-precision-sampling"),
        ("jaxlib.xla", None),
        ("mypkg.inits", None),
    ],
)
def test_a_frameworks_own_initializer_is_excused_by_its_sampling_defect_and_a_users_never(module, defect):
    def init(key, shape, dtype):
        return jnp.zeros(shape, dtype)

    init.__module__ = module
    found = registry.sampling_defects(init)
    assert [d.name for d in found] == ([defect] if defect else [])
    init.__initcheck_law__ = object()  # a law the user declares: never excused
    assert registry.sampling_defects(init) == ()


def test_linen_derivation_follows_the_separator_setting_initcheck_is_told():
    right = initcheck.audit(LinenBlock(), X, rng=0, properties=["derivation"])
    from flax import config

    told = {"flax_fix_rng_separator": not config.flax_fix_rng_separator}
    wrong = initcheck.audit(LinenBlock(), X, rng=0, properties=["derivation"], settings=told)
    assert all(v.status == "pass" for v in right.verdicts if v.case.collection == "params"), right.failure_text()
    failed = {v.case.path for v in wrong.verdicts if v.status == "fail"}
    assert failed >= {"Dense_0/kernel", "Dense_1/kernel"}, wrong.failure_text()


def test_the_lock_and_the_audit_share_one_vocabulary_of_settings():
    from initcheck import lock

    assert [s.name for s in lock.SETTINGS] == [s.name for s in registry.SETTINGS]
    owned = {s.name for f in registry.MODEL_FRAMEWORKS for s in f.settings}
    assert owned == {"flax_fix_rng_separator", "haiku_rng_reserve_size"}
