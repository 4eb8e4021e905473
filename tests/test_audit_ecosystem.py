"""``initcheck.audit`` on Equinox model factories and Keras models, against the real libraries.

Equinox: every ``equinox.nn`` layer's arrays are derived from the key the layer was handed by
Equinox's rules as initcheck writes them (``initcheck._frameworks.equinox``); ``derivation`` passes only
when the derived array equals the one Equinox made bit for bit, so the layer sweep below is the
bit-exact test of those rules. Keras: every weight is its layer's initializer called again with its
int seed (the key ``[seed, 0]``).

Statistical verdicts use fixed rngs and seeds (ci profile, alpha 1e-7 per verdict; these tests make
fewer than 2,000, so a false alarm has probability below 2e-4 per run) and give the same result at
every run; Keras models are built after ``keras.utils.set_random_seed``."""

from __future__ import annotations

import os
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
eqx = pytest.importorskip("equinox")
keras = pytest.importorskip("keras")

import initcheck  # noqa: E402
from initcheck import laws  # noqa: E402


def _statuses(report, prop):
    return {v.case.path: v.status for v in report.verdicts if v.property == prop}


def test_the_mlp_of_the_issue_verifies_every_arrays_derivation_and_law():
    report = initcheck.audit(lambda key: eqx.nn.MLP(8, 2, 32, 3, key=key), rng=0, call_args=(jnp.ones(8),))
    assert report.result == "pass", report.failure_text()
    assert report.coverage.complete and report.coverage.values == 8
    derivations = {v.case.path: v.message for v in report.verdicts if v.property == "derivation"}
    assert set(derivations) == {f"layers/{i}/{name}" for i in range(4) for name in ("weight", "bias")}
    assert "split(key, 4)[3] of the key MLP was handed" in derivations["layers/3/weight"]
    assert all("bit for bit" in m for m in derivations.values()), derivations
    moments = _statuses(report, "moments")
    assert {moments[f"layers/{i}/weight"] for i in range(4)} == {"pass"}
    assert set(moments.values()) <= {"pass", "skip"}  # a skip: the 2 values of the last bias are too few


LAYERS = {  # id -> factory(key) of one layer in a configuration worth deriving
    "linear": lambda key: eqx.nn.Linear(12, 5, key=key),
    "linear-scalar-no-bias": lambda key: eqx.nn.Linear("scalar", 7, use_bias=False, key=key),
    "linear-float16": lambda key: eqx.nn.Linear(9, 4, dtype=jnp.float16, key=key),
    "conv1d-groups": lambda key: eqx.nn.Conv1d(6, 4, 3, groups=2, key=key),
    "conv3d": lambda key: eqx.nn.Conv3d(2, 3, (1, 2, 3), key=key),
    "conv-transpose2d": lambda key: eqx.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, key=key),
    "embedding": lambda key: eqx.nn.Embedding(30, 6, key=key),
    "mlp-depth-0": lambda key: eqx.nn.MLP(5, 3, 8, 0, key=key),
    "mlp-scan": lambda key: eqx.nn.MLP(5, 3, 8, 4, scan=True, key=key),
    "attention-biases": lambda key: eqx.nn.MultiheadAttention(
        2, 8, 6, 4, use_query_bias=True, use_key_bias=True, use_value_bias=True, use_output_bias=True, key=key
    ),
    "gru-cell": lambda key: eqx.nn.GRUCell(3, 5, key=key),
    "gru-cell-no-bias": lambda key: eqx.nn.GRUCell(3, 5, use_bias=False, key=key),
    "lstm-cell": lambda key: eqx.nn.LSTMCell(4, 6, key=key),
    "norms": lambda key: [eqx.nn.LayerNorm(6), eqx.nn.RMSNorm(4, use_bias=True), eqx.nn.GroupNorm(2, 6)],
    "batch-norm-unsplit-state": lambda key: eqx.nn.BatchNorm(5, "batch", mode="batch"),
    "batch-norm-with-state": lambda key: eqx.nn.make_with_state(eqx.nn.BatchNorm)(5, "batch", mode="ema"),
    "prelu": lambda key: eqx.nn.PReLU(init_alpha=0.1),
    "sequential": lambda key: eqx.nn.Sequential(
        [
            eqx.nn.Linear(4, 8, key=jax.random.split(key)[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Linear(8, 2, key=jax.random.split(key)[1]),
        ]
    ),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("rng", [3, "raw"], ids=["int", "raw-prngkey"])
def test_equinox_rules_give_every_layer_s_arrays_bit_for_bit(layer, rng):
    rng = jax.random.PRNGKey(11) if rng == "raw" else rng
    report = initcheck.audit(LAYERS[layer], rng=rng, properties=["derivation"])
    derivations = [v for v in report.verdicts if v.property == "derivation"]
    computed = {line.split(" (")[0] for line in report.coverage.computed}
    assert derivations
    bad = [f"{v.case.path}: {v.message}" for v in derivations if v.status != "pass" and v.case.path not in computed]
    assert not bad
    assert report.coverage.complete, report.coverage.gaps


def test_weight_norm_s_g_is_computed_not_an_initial_value():
    report = initcheck.audit(
        lambda key: eqx.nn.WeightNorm(eqx.nn.Linear(6, 4, key=key)), rng=0, call_args=(jnp.ones(6),)
    )
    assert report.result == "pass", report.failure_text()
    assert any(line.startswith("g (") and "norm of the wrapped layer" in line for line in report.coverage.computed)
    assert _statuses(report, "derivation")["layer/weight"] == "pass"


def test_a_model_class_takes_its_inputs_and_key():
    class Head(eqx.Module):
        proj: eqx.nn.Linear

        def __init__(self, width, classes, *, key):
            self.proj = eqx.nn.Linear(width, classes, key=key)

        def __call__(self, x):
            return self.proj(x)

    report = initcheck.audit(Head, 16, 3, rng=1, call_args=(jnp.ones(16),))
    assert report.result == "pass" and set(_statuses(report, "derivation")) == {"proj/weight", "proj/bias"}


def test_layers_built_inside_filter_vmap_are_derived_slice_by_slice_and_a_vmap_bound_before_is_a_named_skip():
    class Stack(eqx.Module):
        blocks: eqx.nn.Linear

        def __init__(self, key):
            self.blocks = eqx.filter_vmap(lambda k: eqx.nn.Linear(8, 8, key=k))(jax.random.split(key, 3))

    report = initcheck.audit(Stack, rng=0)  # (no call_args: its fans are the one gap)
    assert _statuses(report, "derivation") == {"blocks/weight": "pass", "blocks/bias": "pass"}
    assert [gap.split(" (")[0] for gap in report.coverage.gaps] == ["fans not checked"], report.coverage.gaps

    make_blocks = eqx.filter_vmap(lambda k: eqx.nn.Linear(8, 8, key=k))  # bound before the factory runs

    class Early(eqx.Module):
        blocks: eqx.nn.Linear

        def __init__(self, key):
            self.blocks = make_blocks(jax.random.split(key, 3))

    report = initcheck.audit(Early, rng=0)
    assert report.result == "partial", report.failure_text()
    skipped = [line for line in report.coverage.gaps if "bound before" in line]
    assert len(skipped) == 2, report.coverage.gaps
    assert not [v for v in report.verdicts if v.status in ("fail", "error")]


def test_an_already_built_equinox_model_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="already built; pass a factory taking key="):
        initcheck.audit(eqx.nn.Linear(3, 4, key=jax.random.key(0)))


def test_equinox_forward_pass_gives_effective_fan_and_the_signal_profile():
    report = initcheck.audit(
        lambda key: eqx.nn.MLP(16, 4, 32, 2, key=key),
        rng=0,
        call_args=(jnp.ones(16),),
        properties=["effective_fan", "signal"],
    )
    fans = _statuses(report, "effective_fan")
    assert {fans[f"layers/{i}/weight"] for i in range(3)} == {"pass"}, report.failure_text()
    assert report.signal is not None and len(report.signal.layers) >= 3


def _keras_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(4, name="logits"),
        ],
        name="small",
    )


def test_a_small_keras_sequential_of_dense_and_conv2d_verifies_every_weight():
    x = np.ones((2, 8, 8, 3), np.float32)
    report = initcheck.audit(_keras_model(), x)
    assert report.result == "pass", report.failure_text()
    derivations = {v.case.path: v.message for v in report.verdicts if v.property == "derivation"}
    assert set(derivations) == {
        f"small/{layer}/{w}" for layer in ("conv", "hidden", "logits") for w in ("kernel", "bias")
    }
    assert "the key [seed=" in derivations["small/conv/kernel"] and "bit for bit" in derivations["small/conv/kernel"]
    assert _statuses(report, "effective_fan")["small/hidden/kernel"] == "pass"


def test_an_unbuilt_keras_model_is_built_on_the_inputs_or_refused_with_the_fix():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(8, name="d")], name="lazy")
    with pytest.raises(TypeError, match="not built yet; pass its inputs"):
        initcheck.audit(model)
    report = initcheck.audit(model, np.ones((3, 5), np.float32))
    assert report.result == "pass" and set(_statuses(report, "derivation")) == {"lazy/d/kernel", "lazy/d/bias"}


def test_a_seed_generator_seeded_initializer_skips_its_derivation_with_the_reason_and_keeps_its_law():
    generator = keras.random.SeedGenerator(5)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(32, kernel_initializer=keras.initializers.HeNormal(seed=generator), name="d"),
        ],
        name="gen",
    )
    report = initcheck.audit(model)
    verdicts = {v.property: v for v in report.verdicts if v.case.path == "gen/d/kernel"}
    assert verdicts["derivation"].status == "skip" and "SeedGenerator" in verdicts["derivation"].message
    assert verdicts["moments"].status == "pass"
    assert report.result == "partial"


def test_a_keras_initializer_whose_law_is_declared_with_expects_is_checked():
    @initcheck.expects(laws.Normal(0.02))
    class SmallNormal(keras.initializers.Initializer):
        def __init__(self, seed=None):
            self.seed = seed

        def __call__(self, shape, dtype=None):
            return keras.random.normal(shape, stddev=0.05, dtype=dtype, seed=self.seed)  # not the 0.02 promised

    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, kernel_initializer=SmallNormal(seed=2), name="d")], name="m"
    )
    report = initcheck.audit(model)
    kernel = {v.property: v for v in report.verdicts if v.case.path == "m/d/kernel"}
    assert kernel["derivation"].status == "pass", kernel["derivation"].message
    assert kernel["moments"].status == "fail" and "scale is off" in kernel["moments"].message


def test_a_downstream_project_audits_equinox_and_keras_models_from_its_pyproject(pytester):
    pytester.makepyfile(
        models=textwrap.dedent(
            """
            import os
            os.environ.setdefault("KERAS_BACKEND", "jax")
            import equinox as eqx
            import jax
            import jax.numpy as jnp
            import keras
            import numpy as np

            import initcheck


            def mlp():
                return initcheck.Model(lambda key: eqx.nn.MLP(8, 2, 32, 2, key=key), call_args=(jnp.ones(8),))


            def convnet():
                keras.utils.set_random_seed(0)
                model = keras.Sequential(
                    [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3)]
                )
                return model, np.ones((2, 8, 8, 1), np.float32)


            class Twins(eqx.Module):
                a: eqx.nn.Linear
                b: eqx.nn.Linear

                def __init__(self, key):
                    self.a = eqx.nn.Linear(16, 16, key=key)
                    self.b = eqx.nn.Linear(16, 16, key=key)


            def twins():
                return Twins
            """
        )
    )
    pytester.makefile(
        ".toml",
        pyproject='[tool.initcheck]\nmodels = ["models:mlp", "models:convnet", "models:twins"]\n',
    )
    pytester.makepyfile(test_nothing="")
    result = pytester.runpytest_subprocess("--initcheck", "-p", "no:xdist", "-p", "no:cacheprovider", "-q")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) >= 1, out
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert failed and all("models:twins" in line for line in failed), out
    assert "shares its key with" in out
