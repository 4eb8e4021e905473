"""Targets that end or hang their process, under ``pytest --initcheck`` serially and with ``-n 2``:
each is checked in a child process of its own, so one crash or hang is one target's errored items,
the rest run, the session ends with its summary, its report and exit status 1 (not a worker
crash, not signal 11 at exit). Real pytest sessions (pytester subprocesses).

The good initializer and model are checked with the quick profile (alpha 1e-6 per verdict): their
false-alarm bound is below 1e-4 per run."""

from __future__ import annotations

import json

import pytest

from tests.test_plugin import MODES, outcomes, run

PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.initcheck]
modules = ["mypkg.inits"]
models = ["mypkg.models:mlp", "mypkg.models:spinning", "mypkg.models:segfaulting", "mypkg.models:raising"]
profile = "quick"
seed = 0
time_limit = 3
"""

INITS = """
import ctypes, os
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws


@initcheck.expects(laws.Normal(1.0))
def exits(key, shape, dtype=jnp.float32):
    os._exit(3)


@initcheck.expects(laws.Normal(1.0))
def segfaults(key, shape, dtype=jnp.float32):
    return ctypes.string_at(0)


@initcheck.expects(laws.Normal(1.0))
def spins_in_tracing(key, shape, dtype=jnp.float32):
    def body(k):
        while True:  # a CPU-bound loop inside JAX tracing: no thread can interrupt it
            pass

    return jax.jit(body)(key)


@initcheck.expects(laws.Normal(0.05))
def good(key, shape, dtype=jnp.float32):
    return 0.05 * jax.random.normal(key, shape, dtype)
"""

MODELS = """
import ctypes
import jax.numpy as jnp
import flax.linen as nn


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(nn.relu(nn.Dense(16)(x)))


class Spins(nn.Module):
    @nn.compact
    def __call__(self, x):
        while True:  # its init never returns
            pass


def crashing_init(key, shape, dtype=jnp.float32):
    return ctypes.string_at(0)


def mlp():
    return MLP(), jnp.ones((1, 8))


def spinning():
    return Spins(), jnp.ones((1, 8))


def segfaulting():
    return nn.Dense(4, kernel_init=crashing_init), jnp.ones((1, 8))


def raising():
    raise RuntimeError("factory boom")
"""

GOOD_INIT = """
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws


@initcheck.expects(laws.Normal(0.05))
def good(key, shape, dtype=jnp.float32):
    return 0.05 * jax.random.normal(key, shape, dtype)
"""

# target -> what its first shown error says
ERRORED = {
    "mypkg.inits.exits": "the check crashed its process, which ended with exit status 3",
    "mypkg.inits.segfaults": "the check crashed its process, which ended with signal SIGSEGV",
    "mypkg.models:spinning": "Hung: did not return within 3 s (initializing ",
    "mypkg.models:segfaulting": "the check crashed its process, which ended with signal SIGSEGV",
    "mypkg.models:raising": "could not be checked: RuntimeError: factory boom",
}


@pytest.fixture
def hostile(pytester):
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.mkpydir("mypkg")
    pytester.path.joinpath("mypkg", "inits.py").write_text(INITS)
    pytester.path.joinpath("mypkg", "models.py").write_text(MODELS)
    return pytester


@pytest.mark.parametrize("mode", ["no-xdist", "n2"])
def test_a_crash_or_a_hang_is_one_errored_target_and_the_session_ends_with_its_report(hostile, mode):
    result = run(
        hostile,
        *MODES[mode],
        "--initcheck-json=r.json",
        "--initcheck-report=r.html",
        "-k",
        "contract or moments or derivation or coverage",
    )
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, text[-3000:]  # failures, not a crash at exit (was 139 serially)
    got = outcomes(hostile.path / "r.json")
    for target, message in ERRORED.items():
        mine = {nodeid: outcome for nodeid, outcome in got.items() if nodeid.split("::")[1].startswith(target + "[")}
        assert mine and set(mine.values()) == {"error"}, (target, mine)
        assert text.count(message) >= 1, (target, message)
        shown = text.split("short test summary info")[0]  # (under CI=true the summary repeats whole lines)
        assert shown.count(f"{target} could not be checked (the error is shown once") == len(mine) - 1
    # the factory's own traceback is shown in full, once
    assert text.split("short test summary info")[0].count('mypkg/models.py", line 37, in raising') == 1
    # a hang inside JAX tracing is the initializer's failure; its thread dies with its process
    assert got["initcheck::mypkg.inits.spins_in_tracing[contract]"] == "failed"
    assert "did not return within 3 s" in text
    # the rest ran
    assert got["initcheck::mypkg.inits.good[moments]"] == got["initcheck::mypkg.models:mlp[derivation]"] == "passed"
    assert "crashed" not in text.replace("the check crashed its process", "")  # no xdist worker died
    data = json.loads((hostile.path / "r.json").read_text())
    kinds = {t["id"]: t["kind"] for t in data["targets"]}
    assert len(kinds) == 8 and set(kinds.values()) == {"initializer", "model"}
    assert {t["id"]: t["result"] for t in data["targets"] if t["id"] in ERRORED} == dict.fromkeys(ERRORED, "error")
    html = (hostile.path / "r.html").read_text()
    assert all(target in html for target in ERRORED)
    assert "initcheck: 8 targets:" in text


def test_without_isolation_the_session_runs_in_process(hostile):
    """``--initcheck-no-isolate`` (for a debugger): the checks run in pytest's own process."""
    hostile.makefile(".toml", pyproject=PYPROJECT.replace(', "mypkg.models:spinning", "mypkg.models:segfaulting"', ""))
    hostile.path.joinpath("mypkg", "inits.py").write_text(GOOD_INIT)
    result = run(
        hostile, "-p", "no:xdist", "--initcheck-no-isolate", "--initcheck-json=r.json", "-k", "moments or derivation"
    )
    got = outcomes(hostile.path / "r.json")
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    assert got["initcheck::mypkg.models:raising[derivation]"] == "error"
    assert 'mypkg/models.py", line 37, in raising' in result.stdout.str()
