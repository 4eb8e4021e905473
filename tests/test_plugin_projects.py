"""``pytest --initcheck`` and ``initcheck audit`` on a downstream project with real models (a linen
model with an rng dict and keyword inputs and an intended law, an nnx model, a Haiku model) and
initializers declared in every way (decorated, marked at module level on a factory's result,
imported from another module, Haiku-style, opting out of a property), in pytester subprocesses
without xdist, with xdist installed but idle, and with ``-n 2``.

Statistical verdicts use the quick profile (alpha 1e-6 each; about 60 of them here, so a correct
target fails by chance with probability below 1e-4); every key is derived from the seed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_plugin import MODES, items, outcomes, run

PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.initcheck]
modules = ["shop.inits", "shop.more"]
models = ["shop.models:tagger", "shop.models:mlp", "shop.models:haiku_net", "shop.models:broken"]
frameworks = []
profile = "quick"
seed = 0
"""

FACTORY = """
import jax, jax.numpy as jnp


def make_init(scale):
    def init(key, shape, dtype=jnp.float32):
        return scale * jax.random.normal(key, shape, dtype)
    return init
"""

INITS = """
import jax, jax.numpy as jnp, haiku as hk
import initcheck
from initcheck import laws
from shop.factory import make_init

good = initcheck.expects(laws.Normal(0.02))(make_init(0.02))       # marked at module level
too_wide = initcheck.expects(laws.Normal(0.02))(make_init(0.04))


@initcheck.expects(laws.Uniform(-0.1, 0.1))
def w_init(shape, dtype):                                           # Haiku-style
    return jax.random.uniform(hk.next_rng_key(), shape, dtype, -0.1, 0.1)


@initcheck.expects(laws.VarianceScaling(1.0, "fan_in", "normal"),
                   skip={"errors": "only used on 2-D kernels here"})
def scaled(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype) / jnp.sqrt(shape[0] if len(shape) > 1 else 1.0)
"""

MORE = """
from shop.inits import good                                        # already declared: checked once
"""

MODELS = """
import jax, jax.numpy as jnp, flax.linen as nn, haiku as hk
from flax import nnx
import initcheck
from initcheck import laws


class Tagger(nn.Module):
    @nn.compact
    def __call__(self, *, inputs, train):
        x = nn.Dense(32)(inputs)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(1, kernel_init=nn.initializers.constant(41.0))(x)


def tagger():
    return initcheck.Model(Tagger(), kwargs={"inputs": jnp.ones((2, 16)), "train": True},
                           rng={"params": 0, "dropout": 1}, expect={"**/Dense_1/kernel": laws.Constant(42.0)})


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(16, 64, rngs=rngs)
        self.out = nnx.Linear(64, 4, rngs=rngs)


def mlp():
    return initcheck.Model(MLP, rng={"params": 3})


def haiku_net():
    return hk.transform(lambda x: hk.nets.MLP([32, 4])(x)), jnp.ones((1, 8))


def broken():
    raise RuntimeError("the checkpoint path does not exist (simulated)")
"""


@pytest.fixture
def shop(pytester):
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.mkpydir("shop")
    for name, text in (("factory", FACTORY), ("inits", INITS), ("more", MORE), ("models", MODELS)):
        pytester.path.joinpath("shop", f"{name}.py").write_text(text)
    pytester.makepyfile(test_user="def test_users_own():\n    assert True\n")
    return pytester


@pytest.mark.parametrize("mode", MODES)
def test_a_real_project(shop, mode):
    result = run(shop, *MODES[mode], "--initcheck-json=r.json")
    text = result.stdout.str()
    got = outcomes(shop.path / "r.json")
    targets = {nodeid.split("::")[1].rsplit("[", 1)[0] for nodeid in got}
    assert targets == {
        "shop.inits.good",
        "shop.inits.too_wide",
        "shop.inits.w_init",
        "shop.inits.scaled",
        "shop.models:tagger",
        "shop.models:mlp",
        "shop.models:haiku_net",
        "shop.models:broken",
    }
    count = len(got) + 1  # and the user's own test
    assert f"collected {count} items" in text or f"[{count} items]" in text
    # declared every way, each checked
    assert got["initcheck::shop.inits.good[moments]"] == "passed"
    assert got["initcheck::shop.inits.too_wide[moments]"] == "failed"
    assert got["initcheck::shop.inits.w_init[contract]"] == "passed"  # Haiku-style works in the plugin
    assert got["initcheck::shop.inits.w_init[moments]"] == "passed"
    assert got["initcheck::shop.inits.scaled[errors]"] == "skipped"
    data = json.loads((shop.path / "r.json").read_text())
    scaled = next(t for t in data["targets"] if t["id"] == "shop.inits.scaled")
    assert any(v["message"] == "skipped by its declaration: only used on 2-D kernels here" for v in scaled["verdicts"])
    # models: keyword inputs and an rng dict; the intended law fails naming both
    assert got["initcheck::shop.models:tagger[derivation]"] == "passed"
    assert got["initcheck::shop.models:tagger[intent]"] == "failed"
    assert "promises Constant(41.0), but the intended law is Constant(42.0)" in text
    assert got["initcheck::shop.models:mlp[derivation]"] == got["initcheck::shop.models:haiku_net[moments]"] == "passed"
    # a target that cannot be checked: one error told once, with its traceback, the other items point to it
    broken = [nodeid for nodeid in got if "models:broken" in nodeid]
    assert {got[n] for n in broken} == {"error"}
    shown = text.split("short test summary info")[0]  # (under CI=true the summary repeats whole first lines)
    assert shown.count("could not be checked: RuntimeError: the checkpoint path does not exist (simulated)") == 1
    line = MODELS.splitlines().index('    raise RuntimeError("the checkpoint path does not exist (simulated)")') + 1
    assert shown.count(f'shop/models.py", line {line}, in broken') == 1
    assert shown.count("shop.models:broken could not be checked (the error is shown once") == len(broken) - 1
    # under xdist, a target's items run on one worker
    by_target: dict = {}
    for item in items(shop.path / "r.json"):
        by_target.setdefault(item["nodeid"].split("::")[1].rsplit("[", 1)[0], set()).add(item["worker"])
    assert all(len(workers) == 1 for workers in by_target.values()), by_target
    if mode == "n2":
        assert set().union(*by_target.values()) == {"gw0", "gw1"}


def _snippet(data, target_id, prop):
    target = next(t for t in data["targets"] if t["id"] == target_id)
    return next(v for v in target["verdicts"] if v["property"] == prop and v["status"] == "fail")["reproduce"]


def test_reproductions_run_as_printed_and_give_the_same_verdict(shop, tmp_path):
    shop.makefile(".toml", pyproject=PYPROJECT.replace("frameworks = []", 'frameworks = ["jax"]'))
    run(shop, "-p", "no:xdist", "--initcheck-json=r.json", "-k", "too_wide or tagger or initializers.uniform")
    data = json.loads((shop.path / "r.json").read_text())
    for target_id, prop in (
        ("shop.inits.too_wide", "moments"),
        ("shop.models:tagger", "intent"),
        ("jax.nn.initializers.uniform()", "precision"),
    ):
        snippet = _snippet(data, target_id, prop)
        assert "..." not in snippet.split("print(")[0], snippet  # nothing left for the reader to fill in
        done = subprocess.run(
            [sys.executable, "-c", snippet], cwd=shop.path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "DOES NOT CONFORM" in done.stdout and f"property {prop} fail" in done.stdout, done.stdout[-2000:]


def test_initcheck_audit_on_the_command_line_gives_the_plugin_s_verdicts(shop):
    run(shop, "-p", "no:xdist", "--initcheck-json=plugin.json", "-k", "tagger")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "initcheck.cli",
            "audit",
            "shop.models:tagger",
            "--profile",
            "quick",
            "--json",
            "cli.json",
            "--html",
            "cli.html",
        ],
        cwd=shop.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # the intended law fails
    assert "initcheck audit: recorded 4 values" in done.stderr
    strip = lambda path: sorted(
        (v["case"].get("path"), v["property"], v["status"], v["statistic"], v["pvalue"])
        for t in json.loads((shop.path / path).read_text())["targets"]
        if t["id"] == "shop.models:tagger"
        for v in t["verdicts"]
    )
    assert strip("cli.json") == strip("plugin.json")
    assert (shop.path / "cli.html").read_text().count("shop.models:tagger") >= 1
    bad = subprocess.run(
        [sys.executable, "-m", "initcheck.cli", "audit", "shop.models:nothing"],
        cwd=shop.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "has no attribute 'nothing'" in bad.stderr
