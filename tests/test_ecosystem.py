"""Equinox and Keras 3 (JAX backend) against the real libraries: the Keras key mapping bit for bit,
``check`` on Keras initializers (a correct one conforms, a wrong fan is caught), every catalog
array of Equinox's layers derived from its key by Equinox's own splitting rules (written here from
equinox 0.13.8's sources), the Keras STFT defect, and clear errors when a framework is missing or
Keras runs on another backend.

Statistical checks use fixed seeds (``seed=0``) and the ``quick`` profile (alpha = 1e-6 per
verdict, about 12 verdicts per case): a false alarm below 1e-4 per test."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
eqx = pytest.importorskip("equinox")

import initcheck  # noqa: E402
from initcheck import adapters, laws  # noqa: E402
from initcheck._catalog import catalog  # noqa: E402
from initcheck._frameworks import equinox_layers  # noqa: E402

RANDOM_KERAS = [
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "Orthogonal",
]


def _key_of_seed(seed: int):
    """The JAX key Keras draws with for ``seed=s``: the raw threefry key [s, 0]."""
    return jax.random.wrap_key_data(jnp.array([seed, 0], jnp.uint32))


@pytest.mark.parametrize("name", RANDOM_KERAS)
def test_from_keras_draws_what_keras_draws_for_the_matching_int_seed(name):
    seeded = getattr(keras.initializers, name)(seed=7)
    expected = np.asarray(seeded((16, 8), dtype="float32"))
    got = np.asarray(adapters.from_keras(seeded)(_key_of_seed(7), (16, 8), jnp.float32))
    assert np.array_equal(got, expected)
    assert seeded.seed == 7  # the user's initializer is left as it was


def test_from_keras_is_jit_and_vmap_compatible_and_keys_matter():
    init = adapters.from_keras(keras.initializers.GlorotUniform())
    keys = jax.random.split(jax.random.key(3), 4)
    batched = np.asarray(jax.jit(jax.vmap(lambda k: init(k, (32, 16), jnp.float32)))(keys))
    one_by_one = np.stack([np.asarray(init(k, (32, 16), jnp.float32)) for k in keys])
    assert np.array_equal(batched, one_by_one)
    assert len({row.tobytes() for row in batched}) == 4


def test_check_wraps_a_keras_initializer_itself_and_it_conforms():
    report = initcheck.check(
        keras.initializers.HeNormal(),
        laws.VarianceScaling(2.0, "fan_in", "truncated_normal", fans="haiku"),
        profile="quick",
    )
    assert report.passed, report.failure_text()
    assert report.initializer.startswith("keras.initializers.HeNormal(")


class FanOutHe(keras.initializers.Initializer):
    """A user's Keras initializer that promises He (fan_in) but divides by the last axis."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        std = math.sqrt(2.0 / shape[-1])
        return keras.random.normal(shape, stddev=std, dtype=dtype, seed=self.seed)


def test_a_users_keras_initializer_with_the_wrong_fan_is_caught():
    report = initcheck.check(
        FanOutHe(seed=1),
        laws.VarianceScaling(2.0, "fan_in", "normal", fans="haiku"),
        shapes=[(64, 16)],
        profile="quick",
    )
    failed = {v.property for v in report.verdicts if v.status == "fail"}
    assert "moments" in failed, report.failure_text()


def _uniform(key, shape, fan, dtype=jnp.float32):
    lim = 1 / math.sqrt(fan)
    return jax.random.uniform(key, shape, dtype, minval=-lim, maxval=lim)


def _weight_key(key):  # Linear and Conv: wkey, bkey = split(key, 2)
    return jax.random.split(key, 2)[0]


EQUINOX_RULES = {  # catalog id -> (shape, the array from the key, by Equinox's rules)
    "equinox.nn.Linear().weight": ((8, 5), lambda k: _uniform(_weight_key(k), (8, 5), 5)),
    "equinox.nn.Linear(in_features=64).bias": ((8,), lambda k: _uniform(jax.random.split(k, 2)[1], (8,), 64)),
    "equinox.nn.Conv2d().weight": ((4, 3, 3, 2), lambda k: _uniform(_weight_key(k), (4, 3, 3, 2), 18)),
    "equinox.nn.ConvTranspose1d().weight": ((4, 3, 5), lambda k: _uniform(_weight_key(k), (4, 3, 5), 15)),
    "equinox.nn.Embedding().weight": ((10, 4), lambda k: jax.random.normal(k, (10, 4))),
    "equinox.nn.MLP(out_size=2, depth=2).layers[0].weight": (
        (16, 4),
        lambda k: _uniform(_weight_key(jax.random.split(k, 3)[0]), (16, 4), 4),
    ),
    "equinox.nn.MLP(in_size=2, depth=2).layers[-1].weight": (
        (3, 16),
        lambda k: _uniform(_weight_key(jax.random.split(k, 3)[-1]), (3, 16), 16),
    ),
    "equinox.nn.MultiheadAttention(num_heads=1, query_size=8).value_proj.weight": (
        (4, 6),
        lambda k: _uniform(_weight_key(jax.random.split(k, 4)[2]), (4, 6), 6),
    ),
    "equinox.nn.GRUCell().weight_ih": ((12, 5), lambda k: _uniform(jax.random.split(k, 4)[0], (12, 5), 4)),
    "equinox.nn.GRUCell(input_size=3).bias_n": ((4,), lambda k: _uniform(jax.random.split(k, 4)[3], (4,), 4)),
    "equinox.nn.LSTMCell(input_size=3).weight_hh": ((16, 4), lambda k: _uniform(jax.random.split(k, 3)[1], (16, 4), 4)),
}


@pytest.mark.parametrize("entry_id", sorted(EQUINOX_RULES))
def test_equinox_arrays_follow_equinoxs_key_splitting_bit_for_bit(entry_id):
    entry = next(e for e in catalog(["equinox"]) if e.id == entry_id)
    shape, rule = EQUINOX_RULES[entry_id]
    key = jax.random.key(5)
    assert np.array_equal(np.asarray(entry.init(key, shape, jnp.float32)), np.asarray(rule(key)))


def test_every_public_equinox_layer_with_arrays_is_in_the_catalog_or_named_as_derived():
    with_arrays = {
        "Linear",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "Embedding",
        "MLP",
        "MultiheadAttention",
        "GRUCell",
        "LSTMCell",
        "LayerNorm",
        "RMSNorm",
        "GroupNorm",
        "BatchNorm",
        "PReLU",
    }
    covered = {a.layer for a in equinox_layers.layer_arrays()}
    assert with_arrays <= covered
    assert {"WeightNorm", "SpectralNorm"} <= set(equinox_layers.DERIVED)


def test_an_equinox_layer_array_refuses_a_shape_it_cannot_make_with_a_clear_error():
    gru = next(a for a in equinox_layers.layer_arrays() if a.layer == "GRUCell" and a.path == "weight_ih")
    with pytest.raises(ValueError, match=r"GRUCell\(\)\.weight_ih cannot make shape=\(4, 5\)"):
        gru(jax.random.key(0), (4, 5), jnp.float32)


def test_keras_stft_ignores_its_input_channels_the_known_defect():
    table = keras.initializers.STFT()((16, 2, 9), dtype="float32")
    assert table.shape == (16, 1, 9)  # asked for (16, 2, 9): when Keras fixes this, update _defects


def test_keras_stft_matches_its_documented_table():
    entry = next(e for e in catalog(["keras"]) if e.id == "keras.initializers.STFT()")
    report = initcheck.check(entry.init, entry.law, shapes=[(16, 1, 9)], properties=["structure"], profile="quick")
    assert report.passed, report.failure_text()


def _cli(*args, env=None, block=()):
    """``initcheck`` in a fresh interpreter, with ``block``'s modules made unimportable."""
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in block)
        + "from initcheck.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_list_of_equinox_and_keras_names_every_keras_initializer_and_every_equinox_layer_array():
    from initcheck.strategies._ecosystem import KERAS_BUILDERS

    listed = _cli("list", "--frameworks", "equinox,keras")
    assert listed.returncode == 0, listed.stderr
    assert "equinox (32 entries)" in listed.stdout and "keras (18 entries)" in listed.stdout
    for name in KERAS_BUILDERS:
        assert f"keras.initializers.{name}(" in listed.stdout, name
    for array in equinox_layers.layer_arrays():
        assert f"  {array.id}  ->" in listed.stdout, array.id
    assert "jax.nn.initializers" not in listed.stdout


def test_without_equinox_the_rest_works_and_asking_for_it_says_how_to_install():
    listed = _cli("list", block=["equinox", "keras"])
    assert listed.returncode == 0, listed.stderr
    assert "equinox.nn" not in listed.stdout and "keras.initializers" not in listed.stdout
    assert "jax.nn.initializers.he_normal()" in listed.stdout
    asked = _cli("list", "--frameworks", "equinox", block=["equinox"])
    assert asked.returncode == 2
    assert "Equinox is not installed: pip install equinox (in an initcheck checkout, pip install -e '.[equinox]'" in (
        asked.stderr
    )


def test_keras_on_another_backend_is_refused_with_the_fix():
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = _cli("list", "--frameworks", "keras", env=env)
    assert result.returncode == 2
    assert "Keras runs on the 'numpy' backend here" in result.stderr and "KERAS_BACKEND=jax" in result.stderr


def test_a_downstream_project_checks_keras_and_equinox_from_its_pyproject(pytester):
    pytester.makefile(".toml", pyproject='[tool.initcheck]\nframeworks = ["equinox", "keras"]\n')
    pytester.makepyfile(test_nothing="")
    result = pytester.runpytest_subprocess(
        "--initcheck", "-p", "no:xdist", "-p", "no:cacheprovider", "-k", "HeNormal or LayerNorm", "-rx"
    )
    result.assert_outcomes(passed=16, skipped=11, xfailed=3)  # 3 targets x 10 properties; HeNormal 16-bit: 3 known
    assert "known defect keras-low-precision-sampling" in result.stdout.str()
