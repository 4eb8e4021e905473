"""``pytest --initcheck`` in real pytest sessions (pytester subprocesses): without xdist, with
xdist installed but idle, and with ``-n 2``.

The downstream project's statistical verdicts use the quick profile (alpha 1e-6 per verdict; the
JSON's verdicts state it); the correct initializer's false-alarm bound is below 1e-4 per run, and the
wrong one is off by 2x in scale, far beyond the quick profile's minimum detectable effect (about 3%)."""

from __future__ import annotations

import json

import pytest

from initcheck._properties import PROPERTIES
from tests.corpus.scale_models import BIG_TABLE_MODULE
from tests.report_view import json_matrix, shown_matrix

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
def test_downstream_project(downstream, mode, request):
    result = run(downstream, *MODES[mode], "--initcheck-json=r.json", "--initcheck-report=r.html")
    assert result.ret == 1
    got = outcomes(downstream.path / "r.json")
    good = {k: v for k, v in got.items() if "mypkg.inits.good[" in k}
    assert len(good) == 10 and set(good.values()) <= {"passed", "skipped"}
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    assert got["initcheck::mypkg.inits.wrong_scale[moments]"] == "failed"
    assert got["initcheck::mypkg.inits.raises[contract]"] == "failed"
    audit = {k: v for k, v in got.items() if "mypkg.models:mlp[" in k}
    assert len(audit) == 9 and set(audit.values()) <= {"passed", "skipped"}  # 8 properties and coverage
    assert audit["initcheck::mypkg.models:mlp[derivation]"] == "passed"
    assert audit["initcheck::mypkg.models:mlp[effective_fan]"] == "passed"
    model = next(
        t for t in json.loads((downstream.path / "r.json").read_text())["targets"] if t["id"] == "mypkg.models:mlp"
    )
    assert [layer["name"] for layer in model["signal"]["layers"]], model.get("signal")  # the coverage item carries it
    text = result.stdout.str()
    # The failure shows the conformance message, not the plugin's traceback.
    assert "property moments failed against Normal(std=0.05, mean=0.0)" in text
    assert "cuda out of memory (simulated)" in text
    assert "p=" in text and "alpha=" in text and "reproduce:" in text
    assert "def runtest" not in text
    result.assert_outcomes(
        failed=sum(v == "failed" for v in got.values()),
        passed=sum(v == "passed" for v in got.values()) + 1,
        skipped=sum(v == "skipped" for v in got.values()),
    )
    assert "initcheck: wrote r.json" in text and "initcheck: wrote r.html" in text
    if mode == "n2":  # both reports exist and agree, as a person sees them
        page = request.getfixturevalue("open_report")(downstream.path / "r.html")
        assert page.errors == [] and page.requests == []
        shown = shown_matrix(page)
        assert shown == json_matrix(downstream.path / "r.json")
        assert [
            shown[t][0]
            for t in ("mypkg.inits.good", "mypkg.inits.raises", "mypkg.inits.wrong_scale", "mypkg.models:mlp")
        ] == ["pass", "fail", "fail", "pass"]
        page.locator("#matrix tr", has_text="wrong_scale").locator("td[data-property=moments] a").click()
        page.wait_for_function("document.getElementById('t-mypkg.inits.wrong_scale').open")
        assert page.locator("#t-mypkg\\.inits\\.wrong_scale figure.plot svg").first.is_visible()


@pytest.mark.slow  # the default run compares outcomes across the three modes (test_downstream_project)
def test_same_verdicts_with_and_without_xdist(downstream):
    run(downstream, "-p", "no:xdist", "--initcheck-json=a.json")
    run(downstream, "-n", "2", "--initcheck-json=b.json")
    a, b = (json.loads((downstream.path / n).read_text())["targets"] for n in ("a.json", "b.json"))
    strip = lambda targets: [
        (
            t["id"],
            t["result"],
            [i["outcome"] for i in t["items"]],
            [(v["property"], v["status"], v["statistic"], v["pvalue"]) for v in t["verdicts"]],
        )
        for t in targets
    ]
    assert strip(a) == strip(b)


def test_off_without_the_flag_selectable_by_marker_and_removable(downstream):
    plain = downstream.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    plain.assert_outcomes(passed=1)
    only = run(downstream, "-p", "no:xdist", "-m", "initcheck", "-k", "good")
    only.assert_outcomes(passed=7, skipped=3)
    gone = downstream.runpytest_subprocess("-p", "no:initcheck", "--initcheck")
    assert gone.ret != 0 and "unrecognized arguments: --initcheck" in gone.stderr.str()


def test_without_isolation_a_dying_worker_is_an_error_and_the_report_is_still_written(downstream):
    downstream.path.joinpath("mypkg", "dies.py").write_text(
        "import os, initcheck\nfrom initcheck import laws\n\n\n"
        "@initcheck.expects(laws.Normal(1.0))\ndef dies(key, shape, dtype=None):\n    os._exit(3)\n"
    )
    downstream.makefile(".toml", pyproject=PYPROJECT.replace('["mypkg.inits"]', '["mypkg.dies", "mypkg.inits"]'))
    # Two properties only: every item of the dying initializer kills a worker, and xdist starts a new one.
    result = run(
        downstream,
        "-n",
        "2",
        "--initcheck-no-isolate",
        "--initcheck-json=r.json",
        "--initcheck-report=r.html",
        "-k",
        "contract or moments",
    )
    assert result.ret == 1
    got = outcomes(downstream.path / "r.json")
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    assert got["initcheck::mypkg.dies.dies[contract]"] == got["initcheck::mypkg.dies.dies[moments]"] == "error"
    assert "crashed" in result.stdout.str()
    dies = next(
        t for t in json.loads((downstream.path / "r.json").read_text())["targets"] if t["id"] == "mypkg.dies.dies"
    )
    assert dies["result"] == "error" and "crashed" in dies["error"]
    assert dies["kind"] == "initializer"  # its declared kind: no item of it reported back
    assert "mypkg.dies.dies" in (downstream.path / "r.html").read_text()


@pytest.mark.parametrize(
    "table,match",
    [
        ('profile = "fast"', "profile='fast' is not one of quick, ci, thorough"),
        ("seed = -1", "seed=-1 must be a non-negative int"),
        ('modules = "mypkg.inits"', "must be a list of strings"),
        ('colour = "red"', "unknown keys \\['colour'\\]"),
        (
            'frameworks = ["torch"]',
            "names unknown frameworks \\['torch'\\]; choose from jax, flax, haiku, initcheck, equinox, keras",
        ),
        ("time_limit = 0", "time_limit=0 must be a positive number of seconds"),
        ("compile_cache = 3", "compile_cache=3 must be a folder, or 'none' to turn it off"),
        ('memory = "6 parsecs"', "memory='6 parsecs': unknown unit 'parsecs'"),
        ('memory = "100MB"', "memory='100MB' is below the 1.5 GB"),
    ],
)
def test_bad_configuration_is_a_usage_error_naming_the_key(pytester, table, match):
    pytester.makefile(".toml", pyproject=f"[tool.initcheck]\n{table}\n")
    # In process: a usage error stops pytest before any item runs, so nothing of this session is touched.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([f".*{match}.*"])


@pytest.mark.parametrize(
    "option,make,match",
    [
        ("--initcheck-report=out", "folder", "--initcheck-report=out: out is a folder; give a file path"),
        ("--initcheck-json=taken/r.json", "file", "--initcheck-json=taken/r.json: taken is a file, so no folder"),
        ("--initcheck-report=/proc/x.html", "", r"--initcheck-report=/proc/x.html: no file can be made in /proc"),
    ],
)
def test_a_report_path_that_cannot_be_written_is_a_usage_error_before_any_check(pytester, option, make, match):
    if make == "folder":
        pytester.mkdir("out")
    elif make == "file":
        pytester.makefile("", taken="not a folder")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([f".*{match}.*"])


def test_catalog_frameworks_are_items_and_known_defects_are_expected_failures(downstream):
    result = run(
        downstream,
        "-p",
        "no:xdist",
        "--initcheck-frameworks=jax",
        "-k",
        "initializers.normal",
        "--initcheck-json=r.json",
        "-rx",
    )
    got = outcomes(downstream.path / "r.json")
    assert set(got) == {f"initcheck::jax.nn.initializers.normal()[{p}]" for p in PROPERTIES}
    assert got["initcheck::jax.nn.initializers.normal()[precision]"] == "xfailed"  # bfloat16/float16 sampling
    assert got["initcheck::jax.nn.initializers.normal()[moments]"] == "passed"
    assert result.ret == 0 and "known defect jax-low-precision-sampling" in result.stdout.str()
    target = json.loads((downstream.path / "r.json").read_text())["targets"][0]
    assert target["kind"] == "catalog" and target["result"] == "known"
    assert target["dtypes"] == ["float32", "bfloat16", "float16", "complex64"]


def test_a_module_that_does_not_import_is_one_errored_item(pytester):
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest.ini_options]\npythonpath = ["."]\n[tool.initcheck]\nmodules = ["nowhere.inits"]\n',
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck")
    assert result.ret == 1
    assert "cannot import modules entry 'nowhere.inits'" in result.stdout.str()


def test_an_entry_whose_own_package_does_not_import_says_how_to_make_it_importable(pytester):
    # mypkg is nowhere (not installed, no pythonpath); helper imports but needs a missing dependency
    # or lacks the module: only mypkg's entries get the hint.
    pytester.makefile(
        ".toml",
        pyproject="[tool.initcheck]\n"
        'modules = ["mypkg.inits", "helper.needs", "helper.nowhere"]\n'
        'models = ["mypkg.models:mlp", "helper.needs:mlp"]\n',
    )
    pytester.mkpydir("helper")
    pytester.path.joinpath("helper", "needs.py").write_text("import initcheck_missing_dependency\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--initcheck")
    assert result.ret == 1
    text = result.stdout.str()
    hint = (
        "is mypkg importable from the rootdir? install it (pip install -e .) "
        'or add pythonpath = ["."] under [tool.pytest.ini_options]'
    )
    assert f"cannot import modules entry 'mypkg.inits': ModuleNotFoundError: No module named 'mypkg'; {hint}" in text
    assert f"cannot import models entry 'mypkg.models:mlp': No module named 'mypkg'; {hint}" in text
    shown = text.split("short test summary info")[0]  # (under CI=true the summary repeats whole lines)
    told = {line.split()[1]: line for line in shown.splitlines() if " could not be checked: " in line}
    assert set(told) == {"mypkg.inits", "mypkg.models:mlp", "helper.needs", "helper.needs:mlp", "helper.nowhere"}
    assert told["helper.needs"].endswith("No module named 'initcheck_missing_dependency'")
    assert told["helper.nowhere"].endswith("No module named 'helper.nowhere'")
    assert [name for name, line in told.items() if hint in line] == ["mypkg.inits", "mypkg.models:mlp"]


HOSTILE = """
import threading

import jax, jax.numpy as jnp
import initcheck
from initcheck import laws

LAW = laws.Normal(1.0)


class NotCallable:
    pass


not_callable = NotCallable()
not_callable.__initcheck_law__ = LAW


@initcheck.expects(LAW)
def wrong_signature(key, shape):
    return jax.random.normal(key, shape)


@initcheck.expects(LAW)
def non_array(key, shape, dtype=jnp.float32):
    return [0.0] * shape[0]


@initcheck.expects(LAW)
def wrong_shape(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, (3,), dtype)


@initcheck.expects(LAW)
def wrong_dtype(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, jnp.float16)


@initcheck.expects(LAW)
def nan(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype) / 0.0 * 0.0


@initcheck.expects(LAW)
def hangs(key, shape, dtype=jnp.float32):
    threading.Event().wait()


@initcheck.expects(LAW, shapes=[(2**20, 2**20)])
def absurd_memory(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype)
"""

BAD_LAW = """
import jax
import initcheck
from initcheck import laws


@initcheck.expects(laws.Normal(-0.5))
def negative_std(key, shape, dtype=None):
    return -0.5 * jax.random.normal(key, shape)
"""

# target: what its contract item says (one failed item each, the session goes on)
HOSTILE_MESSAGES = {
    "mypkg.hostile.not_callable": "is not callable",
    "mypkg.hostile.wrong_signature": "wrong_signature(key, shape) cannot be called as init(key, shape, dtype)",
    "mypkg.hostile.non_array": "returned builtins.list, not a jax.Array",
    "mypkg.hostile.wrong_shape": "returned shape (3,), expected (256,)",
    "mypkg.hostile.wrong_dtype": "returned dtype float16, expected float32",
    "mypkg.hostile.nan": "returned 256 non-finite values (NaN or inf) of 256",
    "mypkg.hostile.hangs": "did not return within 3 s",
    "mypkg.hostile.absurd_memory": "refused before sampling",
}


def test_each_hostile_initializer_is_one_failed_item_and_the_reports_are_written(downstream):
    downstream.path.joinpath("mypkg", "hostile.py").write_text(HOSTILE)
    downstream.path.joinpath("mypkg", "badlaw.py").write_text(BAD_LAW)
    downstream.makefile(
        ".toml",
        pyproject=PYPROJECT.replace('["mypkg.inits"]', '["mypkg.hostile", "mypkg.badlaw", "mypkg.inits"]')
        .replace("seed = 0", "seed = 0\ntime_limit = 3")
        .replace('models = ["mypkg.models:mlp"]', ""),
    )
    result = run(
        downstream,
        "-p",
        "no:xdist",
        "--initcheck-json=r.json",
        "--initcheck-report=r.html",
        "-k",
        "contract or import or good",
    )
    assert result.ret == 1
    got = outcomes(downstream.path / "r.json")
    text = result.stdout.str()
    for target, message in HOSTILE_MESSAGES.items():
        assert got[f"initcheck::{target}[contract]"] == "failed", target
        assert message in text, (target, message)
    assert got["initcheck::mypkg.badlaw[import]"] == "error"
    assert "cannot import modules entry 'mypkg.badlaw': ValueError" in text and "std" in text
    assert got["initcheck::mypkg.inits.good[contract]"] == "passed"  # the session went on
    assert got["initcheck::mypkg.inits.good[moments]"] == "passed"
    html = (downstream.path / "r.html").read_text()
    assert all(target in html for target in HOSTILE_MESSAGES)


PARTIAL_MODELS = """
import jax, jax.numpy as jnp
import flax.linen as nn


def handmade(key, shape, dtype=jnp.float32):  # no law declared: initcheck cannot know it
    return 0.02 * jax.random.normal(key, shape, dtype)


class Head(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4, kernel_init=handmade)(nn.Dense(16)(x))


def head():
    return Head(), jnp.ones((1, 8))
"""


@pytest.mark.parametrize("how", ["default", "option", "pyproject"])
def test_a_model_with_an_unknown_law_is_partial_and_fails_only_when_strict(pytester, how):
    strict = how != "default"
    pyproject = PYPROJECT.replace('modules = ["mypkg.inits"]\n', "").replace("mypkg.models:mlp", "mypkg.models:head")
    pytester.makefile(".toml", pyproject=pyproject + ("strict = true\n" if how == "pyproject" else ""))
    pytester.mkpydir("mypkg")
    pytester.path.joinpath("mypkg", "models.py").write_text(PARTIAL_MODELS)
    result = run(pytester, "--initcheck-json=r.json", "-rs", *(["--initcheck-strict"] if how == "option" else []))
    got = outcomes(pytester.path / "r.json")
    assert got["initcheck::mypkg.models:head[coverage]"] == ("failed" if strict else "skipped")
    assert got["initcheck::mypkg.models:head[derivation]"] == "passed"  # its key is derived all the same
    assert result.ret == (1 if strict else 0)
    text = result.stdout.str()
    assert "PARTIAL: mypkg.models:head: coverage 3/4 values" in text
    assert "Dense_1/kernel (params): initcheck does not know the law of tests" not in text  # named truly:
    assert "mypkg.models.handmade; mark it with @initcheck.expects(law)" in text
    assert "initcheck: 1 targets: 1 PARTIAL" in text
    (target,) = json.loads((pytester.path / "r.json").read_text())["targets"]
    assert target["result"] == "partial" and target["coverage"]["covered"] == 3


def test_the_session_keeps_compiled_code_in_this_machine_s_cache_folder_unless_told_not_to(
    downstream, monkeypatch, tmp_path
):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    result = run(downstream, "-n", "2", "-k", "good")
    assert result.ret == 0, result.stdout.str()[-3000:]
    (machine,) = (tmp_path / "cache-home" / "initcheck" / "xla").iterdir()
    kept = {p.name for p in machine.iterdir()}
    assert any(name.startswith("jit_") for name in kept)  # compiled by the -n 2 workers, in one folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert run(downstream, "-p", "no:xdist", "-k", "good", "--initcheck-no-compile-cache").ret == 0
    assert not (tmp_path / "elsewhere").exists()


def test_the_memory_key_reaches_the_model_audits(pytester):
    """A 164 MB embedding under memory = "2GB" is checked one value at a time: its derivation says
    that the model's own values did not fit the budget."""
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest.ini_options]\npythonpath = ["."]\n[tool.initcheck]\n'
        'models = ["mypkg.big:table"]\nprofile = "quick"\nmemory = "2GB"\n',
    )
    pytester.mkpydir("mypkg")
    pytester.path.joinpath("mypkg", "big.py").write_text(BIG_TABLE_MODULE)
    result = run(pytester, "-p", "no:xdist", "--initcheck-json=r.json")
    assert result.ret == 0, result.stdout.str()
    derivation = [i for i in items(pytester.path / "r.json") if "derivation" in i["nodeid"]]
    assert derivation and all(i["outcome"] == "skipped" for i in derivation), derivation
    assert "the memory budget (2.00 GB) leaves for one value" in (pytester.path / "r.json").read_text()


def test_a_skipped_item_is_told_at_the_item_with_a_reason_that_says_why(downstream):
    """A skip names its item, not the plugin's line that called pytest.skip; intent without any
    expect= law says that no expect= law was given."""
    result = run(downstream, "-p", "no:xdist", "-rs", "-k", "mlp and intent")
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert "plugin.py" not in out
    assert (
        "SKIPPED [1] initcheck::mypkg.models:mlp[intent]: no expect= law given for any value (intent compares "
        "a value's declared law with the expect= law given for it)" in out
    )
