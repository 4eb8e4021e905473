"""The distributions as a user gets them: the sdist and wheel that ``python -m build`` makes pass
``twine check`` and hold what they must, and the wheel, installed (not editable) in a new virtual
environment, runs ``initcheck list``, ``initcheck check`` and a downstream ``pytest --initcheck``
that writes its HTML report (the Jinja templates are package data).

The new environment gets initcheck from the wheel alone and its dependencies from this one: a
``.pth`` file names this environment's site-packages as a plain path, so Python appends the folder
to ``sys.path`` without running the ``.pth`` files inside it (the editable install of initcheck is
one). Nothing is downloaded: the build runs without isolation on this environment's setuptools (the
``test`` extra pins one that builds wheels by itself)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import jax
import pytest

import initcheck
from initcheck import _document as document
from initcheck import _output, laws

ROOT = Path(__file__).resolve().parents[1]
# not source: hidden folders (.git, .venv, caches), build outputs and the generated reports
NOT_SOURCE = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", "reports", "site")


def _run(args, *, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel (built from the sdist, as ``python -m build`` does) of a copy of the
    source tree, so the build leaves nothing in the checkout."""
    where = tmp_path_factory.mktemp("packaging")
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", where / "dist", source], cwd=where)
    return where / "dist"


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_sdist_and_wheel_hold_the_package_its_data_and_pass_twine_check(dist):
    _run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())], cwd=dist)
    wheel = set(zipfile.ZipFile(_one(dist, "*.whl")).namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "initcheck").rglob("*.py")}
    sources |= {"initcheck/strategies/" + p.name for p in (ROOT / "strategies").glob("*.py")}
    assert sources <= wheel, sorted(sources - wheel)
    assert {"initcheck/py.typed", "initcheck/templates/report.html.j2"} <= wheel
    assert not {n for n in wheel if n.startswith(("tests/", "strategies/", "reports/", "docs/"))}
    info = next(n for n in wheel if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(_one(dist, "*.whl")).read(info).decode()
    assert "initcheck = initcheck.cli:run" in entry_points and "initcheck = initcheck.plugin" in entry_points
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        top, *_ = sdist.getnames()
        names = {n.partition("/")[2] for n in sdist.getnames()}
    assert top.startswith("initcheck-")
    # the whole source: what the package is built from and the tests and documentation that check it
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "initcheck/templates/report.html.j2"} <= names
    assert {"strategies/__init__.py", "tests/conftest.py", "tests/corpus/__init__.py", "docs/index.md"} <= names
    assert not {n for n in names if "__pycache__" in n or n.startswith("reports/")}


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A new virtual environment with the wheel installed (``--no-deps``, no index) and this
    environment's site-packages appended as a plain path; the environment variables its commands
    run with (nothing of this session's pytest or xdist)."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", _one(dist, "*.whl")],
        cwd=venv.parent,
    )
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv).stdout.strip()
    )
    here = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    site.joinpath("_initcheck_test_dependencies.pth").write_text("".join(f"{p}\n" for p in here))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def test_the_installed_wheel_is_what_runs(installed, tmp_path):
    venv, env = installed
    shown = _run(
        [
            venv / "bin" / "python",
            "-c",
            "import initcheck, initcheck.plugin, initcheck.strategies, importlib.metadata as m; "
            "print(initcheck.__file__); print(initcheck.plugin.__file__); print(initcheck.strategies.__file__); "
            "print(m.distribution('initcheck').locate_file('initcheck'))",
        ],
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    site = venv.resolve() / "lib"
    assert len(shown) == 4 and all(Path(p).resolve().is_relative_to(site) for p in shown), shown


def test_the_installed_wheel_runs_the_command_line(installed, tmp_path):
    venv, env = installed
    started = time.perf_counter()
    listed = _run([venv / "bin" / "initcheck", "list"], cwd=tmp_path, env=env).stdout
    assert "jax.nn.initializers.he_normal" in listed and listed.rstrip().endswith("entries")
    checked = _run(
        [
            venv / "bin" / "initcheck",
            "check",
            "jax.nn.initializers:he_normal()",
            "--expect",
            "variance_scaling(2.0, 'fan_in', 'truncated_normal')",
            "--profile",
            "quick",
            "--html",
            tmp_path / "check.html",
        ],
        cwd=tmp_path,
        env=env,
    ).stdout
    assert "\nCONFORMS\n" in checked
    page = (tmp_path / "check.html").read_text(encoding="utf-8")  # rendered with the wheel's template
    assert page.startswith("<!DOCTYPE html>") and 'id="environment"' in page and "VarianceScaling" in page
    print(f"initcheck list and check from the wheel: {time.perf_counter() - started:.1f}s")


DOWNSTREAM_PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.initcheck]
modules = ["mypkg.inits"]
models = ["mypkg.models:mlp"]
profile = "quick"
seed = 0
"""

DOWNSTREAM_INITS = """
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws


@initcheck.expects(laws.Normal(0.05))
def good(key, shape, dtype=jnp.float32):
    return 0.05 * jax.random.normal(key, shape, dtype)
"""

DOWNSTREAM_MODELS = """
import jax.numpy as jnp
import flax.linen as nn


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(nn.relu(nn.Dense(16)(x)))


def mlp():
    return MLP(), jnp.ones((1, 8))
"""

DOWNSTREAM_TEST = """
import sys

import initcheck.plugin


def test_the_plugin_comes_from_this_environment():
    assert initcheck.plugin.__file__.startswith(sys.prefix), (initcheck.plugin.__file__, sys.prefix)
"""


def test_the_installed_wheel_runs_pytest_initcheck_in_a_downstream_project(installed, tmp_path):
    venv, env = installed
    (tmp_path / "pyproject.toml").write_text(DOWNSTREAM_PYPROJECT)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "inits.py").write_text(DOWNSTREAM_INITS)
    (tmp_path / "mypkg" / "models.py").write_text(DOWNSTREAM_MODELS)
    (tmp_path / "test_where.py").write_text(DOWNSTREAM_TEST)
    started = time.perf_counter()
    ran = _run(
        [
            venv / "bin" / "python",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--initcheck",
            "--initcheck-report=r.html",
            "--initcheck-json=r.json",
        ],
        cwd=tmp_path,
        env=env,
    ).stdout
    assert "initcheck: 2 targets: 2 PASS" in ran and "initcheck: wrote r.html" in ran, ran
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "mypkg.inits.good" in page and "mypkg.models:mlp" in page and "<svg" in page
    print(f"pytest --initcheck from the wheel: {time.perf_counter() - started:.1f}s")


def _document(scale: float) -> dict:
    """A report document of a fresh run (its own time stamp and seconds) of one check."""
    report = initcheck.check(
        lambda key, shape, dtype=jax.numpy.float32: scale * jax.random.normal(key, shape, dtype),
        laws.Normal(0.05),
        shapes=[(64, 64)],
        properties=["moments", "distribution"],
        profile="quick",
    )
    row = document.target(
        "mypkg.inits.normal",
        "initializer",
        verdicts=[v.to_dict() for v in report.verdicts],
        law=report.law,
        seconds=report.seconds,
        items=[
            {
                "nodeid": "initcheck::mypkg.inits.normal[moments]",
                "property": "moments",
                "outcome": "passed",
                "worker": "gw0",
            }
        ],
    )
    return document.build("test_packaging", [row], profile="quick", seed=0, seconds=time.perf_counter())


def test_a_rerun_that_changes_no_verdict_leaves_the_written_reports_as_they_were(tmp_path, monkeypatch):
    """The main job in a clone leaves no tracked file modified when nothing changed: only the time
    stamp, the seconds and the xdist workers differ between two runs of the same checks."""
    paths = {"json_path": tmp_path / "r.json", "html_path": tmp_path / "r.html"}
    first = _document(0.05)
    _output.write(first, **paths)
    before = {p: p.read_bytes() for p in paths.values()}
    again = _document(0.05)
    again["created"] = "2999-01-01T00:00:00+00:00"  # a later run, on another worker
    again["targets"][0]["items"][0]["worker"] = "gw1"
    assert _output.steady(again) == _output.steady(first) and again != first
    _output.write(again, **paths)
    assert {p: p.read_bytes() for p in paths.values()} == before
    # a changed verdict rewrites both, with this run's time stamp
    changed = _document(0.1)
    changed["created"] = "2999-01-01T00:00:00+00:00"
    _output.write(changed, **paths)
    assert json.loads(paths["json_path"].read_text()) == json.loads(json.dumps(changed))
    assert "2999-01-01" in paths["html_path"].read_text(encoding="utf-8")
