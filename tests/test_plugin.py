"""``pytest --initcheck`` in real pytest sessions (pytester subprocesses): without xdist, with
xdist installed but idle, and with ``-n 2``.

The downstream project's statistical verdicts use the quick profile (alpha 1e-6 per verdict; the
JSON's verdicts state it); the correct initializer's false-alarm bound is below 1e-4 per run, and the
wrong one is off by 2x in scale, far beyond the quick profile's minimum detectable effect (about 3%)."""

from __future__ import annotations

import json

import pytest

PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.initcheck]
modules = ["mypkg.inits"]
models = ["mypkg.models:mlp"]
profile = "quick"
seed = 0
"""

INITS = """
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws


@initcheck.expects(laws.Normal(0.05))
def good(key, shape, dtype=jnp.float32):
    return 0.05 * jax.random.normal(key, shape, dtype)


@initcheck.expects(laws.Normal(0.05))
def wrong_scale(key, shape, dtype=jnp.float32):
    return 0.1 * jax.random.normal(key, shape, dtype)


@initcheck.expects(laws.Normal(0.05))
def raises(key, shape, dtype=jnp.float32):
    raise RuntimeError("cuda out of memory (simulated)")
"""

MODELS = """
import jax.numpy as jnp
import flax.linen as nn


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(nn.relu(nn.Dense(64)(x)))


def mlp():
    return MLP(), jnp.ones((1, 32))
"""

USER_TEST = """
import jax
from initcheck import laws


def test_users_own(initcheck):
    assert initcheck.profile == "quick"
    assert initcheck.check(jax.nn.initializers.normal(0.5), laws.Normal(0.5), properties=["moments"]).passed
"""


@pytest.fixture
def downstream(pytester):
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.mkpydir("mypkg")
    pytester.path.joinpath("mypkg", "inits.py").write_text(INITS)
    pytester.path.joinpath("mypkg", "models.py").write_text(MODELS)
    pytester.makepyfile(test_user=USER_TEST)
    return pytester


def items(report_path) -> list[dict]:
    return [item for target in json.loads(report_path.read_text())["targets"] for item in target["items"]]


def outcomes(report_path) -> dict[str, str]:
    return {item["nodeid"]: item["outcome"] for item in items(report_path)}


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--initcheck", *args)


MODES = {"no-xdist": ("-p", "no:xdist"), "xdist-idle": (), "n2": ("-n", "2")}


@pytest.mark.parametrize("mode", MODES)
def test_downstream_project(downstream, mode):
    result = run(downstream, *MODES[mode], "--initcheck-json=r.json")
    assert result.ret == 1
    got = outcomes(downstream.path / "r.json")
    good = {k: v for k, v in got.items() if "mypkg.inits.good[" in k}
    assert len(good) == 10 and set(good.values()) <= {"passed", "skipped"}
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    assert got["initcheck::mypkg.inits.wrong_scale[moments]"] == "failed"
    assert got["initcheck::mypkg.inits.raises[contract]"] == "failed"
    audit = {k: v for k, v in got.items() if "mypkg.models:mlp[" in k}
    assert len(audit) == 6 and set(audit.values()) <= {"passed", "skipped"}
    assert audit["initcheck::mypkg.models:mlp[derivation]"] == "passed"
    text = result.stdout.str()
    # The failure shows the conformance message, not the plugin's traceback.
    assert "property moments failed against Normal(std=0.05, mean=0.0)" in text
    assert "cuda out of memory (simulated)" in text
    assert "p=" in text and "alpha=" in text and "reproduce:" in text
    assert "def runtest" not in text
    result.assert_outcomes(failed=sum(v == "failed" for v in got.values()),
                           passed=sum(v == "passed" for v in got.values()) + 1,
                           skipped=sum(v == "skipped" for v in got.values()))


@pytest.mark.slow  # the default run compares outcomes across the three modes (test_downstream_project)
def test_same_verdicts_with_and_without_xdist(downstream):
    run(downstream, "-p", "no:xdist", "--initcheck-json=a.json")
    run(downstream, "-n", "2", "--initcheck-json=b.json")
    a, b = (json.loads((downstream.path / n).read_text())["targets"] for n in ("a.json", "b.json"))
    strip = lambda targets: [(t["id"], t["result"], [i["outcome"] for i in t["items"]],  # noqa: E731
                              [(v["property"], v["status"], v["statistic"], v["pvalue"]) for v in t["verdicts"]])
                             for t in targets]
    assert strip(a) == strip(b)


def test_off_without_the_flag_selectable_by_marker_and_removable(downstream):
    plain = downstream.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    plain.assert_outcomes(passed=1)
    only = run(downstream, "-p", "no:xdist", "-m", "initcheck", "-k", "good")
    only.assert_outcomes(passed=7, skipped=3)
    gone = downstream.runpytest_subprocess("-p", "no:initcheck", "--initcheck")
    assert gone.ret != 0 and "unrecognized arguments: --initcheck" in gone.stderr.str()


def test_a_dying_worker_is_an_error_and_the_report_is_still_written(downstream):
    downstream.path.joinpath("mypkg", "dies.py").write_text(
        "import os, initcheck\nfrom initcheck import laws\n\n\n"
        "@initcheck.expects(laws.Normal(1.0))\ndef dies(key, shape, dtype=None):\n    os._exit(3)\n")
    downstream.makefile(".toml", pyproject=PYPROJECT.replace('["mypkg.inits"]', '["mypkg.dies", "mypkg.inits"]'))
    result = run(downstream, "-n", "2", "--initcheck-json=r.json")
    assert result.ret == 1
    got = outcomes(downstream.path / "r.json")
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    died = [k for k, v in got.items() if k.startswith("initcheck::mypkg.dies.dies[") and v != "passed"]
    assert died, got
    assert "crashed" in result.stdout.str()


@pytest.mark.parametrize("table,match", [
    ('profile = "fast"', "profile='fast' is not one of quick, ci, thorough"),
    ("seed = -1", "seed=-1 must be a non-negative int"),
    ('modules = "mypkg.inits"', "must be a list of strings"),
    ('colour = "red"', "unknown keys \\['colour'\\]"),
])
def test_bad_configuration_is_a_usage_error_naming_the_key(pytester, table, match):
    pytester.makefile(".toml", pyproject=f"[tool.initcheck]\n{table}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([f".*{match}.*"])


def test_a_module_that_does_not_import_is_one_failed_item(pytester):
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\npythonpath = ["."]\n'
                                         '[tool.initcheck]\nmodules = ["nowhere.inits"]\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck")
    assert result.ret == 1
    assert "cannot import modules entry 'nowhere.inits'" in result.stdout.str()
