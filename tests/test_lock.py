"""The reproducibility lock (``initcheck.lock``): digests of exact initial values, compared on later
runs, with the cause of a change found by re-deriving under real settings flips (JAX's
``jax_threefry_partitionable`` and PRNG implementation, Flax's ``flax_fix_rng_separator``, Haiku's
``rng_reserve_size``), an edited scale that no setting explains, values that cannot be locked, the
per-backend sections, and the file's stable bytes.

Nothing here is statistical: every comparison is of exact bytes at fixed keys (no false alarms).
"""

from __future__ import annotations

import json
import subprocess
import sys

import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from initcheck import laws, lock

HE = laws.VarianceScaling(2.0, "fan_in", "truncated_normal")
HINT = "rewrite it"


class Tower(nn.Module):
    """Two names whose concatenation collides without separators ("ab"+"c" vs "a"+"bc"): the
    separator flag changes their keys."""

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(8, name="ab")(x)
        return nn.Dense(4, name="a")(nn.relu(x))


def tower():
    return Tower(), jnp.ones((2, 3))


def haiku_mlp():
    return hk.transform(lambda x: hk.nets.MLP([8, 8, 4])(x)), jnp.ones((2, 3))


def he_normal_digests():
    return lock.initializer_digests(jax.nn.initializers.he_normal(), HE)


def record(tmp_path, derive, kind="initializer", name="target"):
    """A lock of ``derive``'s values under the settings in force, written to tmp_path."""
    path = tmp_path / "initcheck.lock"
    empty = lock.Lock.read(path)
    outcome = lock.check_target(name, kind, derive, empty, lock.backend(), update=False, update_hint=HINT, seed=0)
    assert outcome.status == lock.NEW
    lock.merged(empty, lock.backend(), [outcome], environment=lock.environment(0), update=False).write()
    return path


def compare(path, derive, kind="initializer", name="target", update=False):
    return lock.check_target(
        name, kind, derive, lock.Lock.read(path), lock.backend(), update=update, update_hint=HINT, seed=0
    )


@pytest.mark.parametrize(
    ("old", "derive", "kind"),
    [
        ({"jax_threefry_partitionable": False}, he_normal_digests(), "initializer"),
        ({"jax_threefry_partitionable": False}, lock.model_digests(tower), "model"),
        ({"jax_default_prng_impl": "rbg"}, he_normal_digests(), "initializer"),
        ({"flax_fix_rng_separator": True}, lock.model_digests(tower), "model"),
        ({"haiku_rng_reserve_size": 4}, lock.model_digests(haiku_mlp), "model"),
    ],
    ids=["partitionable-initializer", "partitionable-linen", "prng-impl", "flax-separator", "haiku-reserve"],
)
def test_a_settings_flip_is_named_as_the_cause(tmp_path, old, derive, kind):
    with lock.applied(old):
        path = record(tmp_path, derive, kind)
        assert compare(path, derive, kind).status == lock.MATCHED  # the same settings: the same values
    outcome = compare(path, derive, kind)
    assert outcome.status == lock.CHANGED and outcome.verdict().status == "fail"
    assert outcome.changed and not outcome.added and not outcome.gone
    name, value = next(iter(old.items()))
    now = lock.current()[name]
    assert f"the values match the lock with {name}={value!r}" in outcome.cause
    assert f"the lock was made with {name}={value!r}, this run has {now!r}" in outcome.cause
    assert "to reproduce the old values set" in outcome.cause and HINT in outcome.cause
    assert lock.current()[name] == now  # the cause finding put every setting back


def test_the_flag_is_named_with_how_to_restore_the_values(tmp_path):
    derive = he_normal_digests()
    with lock.applied({"jax_threefry_partitionable": False}):
        path = record(tmp_path, derive)
    cause = compare(path, derive).cause
    assert "jax.config.update('jax_threefry_partitionable', False)" in cause
    assert "JAX_THREEFRY_PARTITIONABLE=false" in cause and "0.5.0" in cause


def test_an_edited_scale_is_reproduced_by_no_setting(tmp_path):
    path = record(tmp_path, he_normal_digests())
    edited = lock.initializer_digests(jax.nn.initializers.variance_scaling(2.2, "fan_in", "truncated_normal"), HE)
    outcome = compare(path, edited)
    assert outcome.status == lock.CHANGED
    assert outcome.cause.startswith("no setting reproduces the lock (tried jax_threefry_partitionable=False")
    assert "jax_default_prng_impl='rbg'" in outcome.cause
    assert "the code that makes these values changed" in outcome.cause


def test_other_versions_are_named_when_no_setting_reproduces(tmp_path):
    path = record(tmp_path, he_normal_digests())
    data = json.loads(path.read_text())
    data["backends"][lock.backend()]["environment"]["versions"]["jax"] = "0.4.30"
    path.write_text(json.dumps(data))
    edited = lock.initializer_digests(jax.nn.initializers.lecun_normal(), HE)
    cause = compare(path, edited).cause
    assert f"versions that differ between the lock and now: jax 0.4.30 -> {jax.__version__}" in cause


def test_update_reports_the_change_without_failing(tmp_path):
    path = record(tmp_path, he_normal_digests())
    edited = lock.initializer_digests(jax.nn.initializers.lecun_normal(), HE)
    outcome = compare(path, edited, update=True)
    assert outcome.status == lock.UPDATED and outcome.verdict().status == "skip"
    before = lock.Lock.read(path)
    after = lock.merged(before, lock.backend(), [outcome], environment=lock.environment(0), update=True)
    after.write()
    assert compare(path, edited).status == lock.MATCHED


def numpy_random_init(key, shape, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng().normal(size=shape), dtype)  # ignores the key


def test_values_from_a_source_outside_the_key_cannot_be_locked(tmp_path):
    derive = lock.initializer_digests(numpy_random_init, laws.Normal(1.0))
    outcome = lock.check_target(
        "t", "initializer", derive, lock.Lock.read(tmp_path / "x.lock"), "cpu", update=False, update_hint=HINT, seed=0
    )
    assert outcome.status == lock.UNREPRODUCIBLE and not outcome.recordable
    assert "two inits in this process at the same key gave different values" in outcome.cause
    merged = lock.merged(lock.Lock.read(tmp_path / "x.lock"), "cpu", [outcome], environment={}, update=False)
    assert merged.sections["cpu"].targets == {}


def test_another_backends_values_are_a_backend_difference_not_a_failure(tmp_path):
    derive = he_normal_digests()
    path = record(tmp_path, derive)
    data = json.loads(path.read_text())
    data["backends"] = {"gpu": data["backends"][lock.backend()]}
    first = next(iter(data["backends"]["gpu"]["targets"]["target"]["values"]))
    data["backends"]["gpu"]["targets"]["target"]["values"][first] = "float32[64,32] sha256:" + "0" * 64
    path.write_text(json.dumps(data))
    outcome = compare(path, derive)
    assert outcome.status == lock.BACKEND and outcome.compared_with == "gpu" and outcome.changed == [first]
    assert outcome.verdict().status == "skip" and "a backend difference" in outcome.message()
    after = lock.merged(lock.Lock.read(path), lock.backend(), [outcome], environment={}, update=False)
    assert set(after.sections) == {"gpu", lock.backend()}  # recorded per backend; the GPU's values kept


def test_the_lock_is_sorted_stable_text_and_names_removed_targets(tmp_path):
    a, b = he_normal_digests(), lock.initializer_digests(jax.nn.initializers.glorot_uniform(), HE)
    empty = lock.Lock.read(tmp_path / "l.lock")
    runs = [
        [lock.check_target(n, "initializer", d, empty, "cpu", update=False, update_hint=HINT, seed=0) for n, d in order]
        for order in ([("b", b), ("a", a)], [("a", a), ("b", b)])
    ]
    texts = [lock.merged(empty, "cpu", r, environment=lock.environment(0), update=False).text() for r in runs]
    assert texts[0] == texts[1]
    data = json.loads(texts[0])
    assert list(data["backends"]["cpu"]["targets"]) == ["a", "b"]
    written = lock.merged(empty, "cpu", runs[0], environment=lock.environment(0), update=False)
    assert lock.removed(written, "cpu", ["a"]) == ["b"]
    dropped = lock.merged(written, "cpu", runs[0][1:], environment={}, update=True, declared=["a"])
    assert list(dropped.sections["cpu"].targets) == ["a"]


def test_a_damaged_lock_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "initcheck.lock"
    path.write_text("{not json")
    with pytest.raises(lock.LockError, match=r"cannot be read as an initcheck lock .*delete .* or give another path"):
        lock.Lock.read(path)
    path.write_text('{"initcheck_lock": 99}')
    with pytest.raises(lock.LockError, match="not an initcheck lock of format 1"):
        lock.Lock.read(path)


def test_model_values_cover_every_framework():
    import equinox as eqx
    from flax import nnx

    linen = lock.model_digests(tower)()
    assert set(linen) == {"params/a/bias", "params/a/kernel", "params/ab/bias", "params/ab/kernel"}
    assert "params/mlp/~/linear_0/w" in lock.model_digests(haiku_mlp)()
    nnx_values = lock.model_digests(lambda: (nnx.Linear, 3, 4))()
    assert {"kernel", "bias"} <= set(nnx_values)
    eqx_values = lock.model_digests(lambda: (lambda key: eqx.nn.MLP(3, 2, 8, 2, key=key),))()
    assert "layers/0/weight" in eqx_values
    assert all(v.startswith("float32[") for v in linen.values())


# A downstream project with ``pytest --initcheck --initcheck-lock`` (pytester subprocesses: real sessions)

PROJECT = {
    "pyproject.toml": """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.initcheck]
modules = ["proj.inits"]
models = ["proj.models:tower", "proj.models:haiku_mlp"]
""",
    "proj/__init__.py": "",
    "proj/inits.py": """
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws

SCALE = 0.02


@initcheck.expects(laws.Normal(0.02))
def small_normal(key, shape, dtype=jnp.float32):
    return SCALE * jax.random.normal(key, shape, dtype)
""",
    "proj/models.py": """
import flax.linen as nn, haiku as hk, jax.numpy as jnp


class Tower(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4, name="a")(nn.relu(nn.Dense(8, name="ab")(x)))


def tower():
    return Tower(), jnp.ones((2, 3))


def haiku_mlp():
    return hk.transform(lambda x: hk.nets.MLP([8, 4])(x)), jnp.ones((2, 3))
""",
    "conftest.py": """
import os, jax
if os.environ.get("OLD_RNG"):
    jax.config.update("jax_threefry_partitionable", False)
""",
}


@pytest.fixture
def project(pytester):
    for name, text in PROJECT.items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(text)
    return pytester


def lock_run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--initcheck", "-k", "lock", *args)


def test_downstream_lock_written_then_matched_then_a_flag_flip_fails_with_its_name(project, monkeypatch):
    first = lock_run(project, "--initcheck-lock=initcheck.lock")
    assert first.ret == 0, first.stdout.str()
    first.assert_outcomes(skipped=3)
    assert "initcheck: lock" in first.stdout.str() and "3 new; written" in first.stdout.str()
    text = (project.path / "initcheck.lock").read_text()
    assert set(json.loads(text)["backends"][lock.backend()]["targets"]) == {
        "proj.inits.small_normal",
        "proj.models:tower",
        "proj.models:haiku_mlp",
    }
    second = lock_run(
        project, "--initcheck-lock=initcheck.lock", "--initcheck-json=r.json", "--initcheck-report=r.html"
    )
    second.assert_outcomes(passed=3)
    report = json.loads((project.path / "r.json").read_text())
    assert report["lock"]["counts"]["matched"] == 3 and "lock" in report["properties"]
    assert 'id="lock-table"' in (project.path / "r.html").read_text()

    monkeypatch.setenv("OLD_RNG", "1")
    flipped = lock_run(project, "--initcheck-lock=initcheck.lock")
    assert flipped.ret == 1
    flipped.assert_outcomes(failed=3)
    out = flipped.stdout.str()
    assert "the values match the lock with jax_threefry_partitionable=True" in out
    assert "jax.config.update('jax_threefry_partitionable', True)" in out
    assert (project.path / "initcheck.lock").read_text() == text  # a failing run never rewrites a value

    updated = lock_run(project, "--initcheck-lock=initcheck.lock", "--initcheck-lock-update")
    assert updated.ret == 0 and "rewritten" in updated.stdout.str()
    assert lock_run(project, "--initcheck-lock=initcheck.lock").ret == 0  # the flag's values are the lock now


def test_serial_and_two_workers_write_the_same_lock_and_the_command_line_agrees(project):
    (project.path / "pyproject.toml").write_text(PROJECT["pyproject.toml"] + 'lock = "initcheck.lock"\n')
    assert lock_run(project, "-p", "no:xdist").ret == 0
    serial = (project.path / "initcheck.lock").read_text()
    (project.path / "initcheck.lock").unlink()
    assert lock_run(project, "-n", "2").ret == 0
    assert (project.path / "initcheck.lock").read_text() == serial
    cli = project.run(sys.executable, "-m", "initcheck.cli", "lock")
    assert cli.ret == 0, cli.stdout.str() + cli.stderr.str()
    assert "3 matched; unchanged: initcheck.lock" in cli.stdout.str()


def test_a_removed_target_and_an_edited_initializer(project):
    assert lock_run(project, "--initcheck-lock=initcheck.lock").ret == 0
    inits = project.path / "proj" / "inits.py"
    inits.write_text(inits.read_text().replace("SCALE = 0.02", "SCALE = 0.021"))
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(', "proj.models:haiku_mlp"', ""))
    result = lock_run(project, "--initcheck-lock=initcheck.lock")
    assert result.ret == 1
    out = result.stdout.str()
    assert "no setting reproduces the lock" in out and "the code that makes these values changed" in out
    assert "proj.models:haiku_mlp is no longer declared; --initcheck-lock-update drops it" in out


def test_bad_lock_options_stop_the_session_with_the_fix(project):
    (project.path / "initcheck.lock").write_text("[]")
    result = lock_run(project, "--initcheck-lock=initcheck.lock")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "initcheck: --initcheck-lock: " in result.stderr.str()
    assert "is not an initcheck lock of format 1" in result.stderr.str()
    result = lock_run(project, "--initcheck-lock-update")
    assert "--initcheck-lock-update rewrites a lock, and none is given" in result.stderr.str()


def test_the_command_line_refuses_bad_input_with_the_fix(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.initcheck]\nframeworks = ["nope"]\n')
    (tmp_path / "damaged.lock").write_text("{")
    (tmp_path / "bad.toml").write_text("[tool.initcheck\n")
    (tmp_path / "one.toml").write_text('[tool.initcheck]\nmodules = "mypkg.inits"\n')
    for args, expected in [
        (["lock", "--config", "bad.toml"], "--config bad.toml is not valid TOML"),
        (
            ["lock", "--config", "one.toml"],
            "[tool.initcheck] modules='mypkg.inits' in one.toml must be a list of strings",
        ),
        (["lock"], "frameworks=['nope']: choose from jax"),
        (["lock", "--lock", "damaged.lock"], "cannot be read as an initcheck lock"),
        (["lock", "--seed", "-1", "--frameworks", "initcheck"], "seed=-1 must be a non-negative int"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "initcheck.cli", *args], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert done.returncode == 2 and expected in done.stderr, done.stderr
