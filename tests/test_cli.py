"""The command line, run as a real subprocess (refusals of bad input run in process: they stop before sampling)."""

import json
import re
import subprocess
import sys

import pytest

import initcheck


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "initcheck.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_report_writes_html_and_json_and_a_summary(tmp_path):
    result = run(
        "report",
        "--profile",
        "quick",
        "--frameworks",
        "jax",
        "--entries",
        "he_normal",
        "zeros",
        "--out",
        "out",
        "--dtypes",
        "float32",
        "--jobs",
        "2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "PASS jax.nn.initializers.zeros [float32]" in result.stdout and "2 processes" in result.stdout
    assert "0 unexpected failures: all 2 entries pass" in result.stdout.splitlines()[-1]
    assert "eager calls in one dtype per entry, rotating over its dtypes" in result.stdout
    document = json.loads((tmp_path / "out" / "conformance.json").read_text())
    assert document["schema_version"] == 4 and document["profile"]["name"] == "quick"
    assert document["eager_calls"].startswith("one dtype per entry")
    assert [t["id"] for t in document["targets"]] == ["jax.nn.initializers.zeros", "jax.nn.initializers.he_normal()"]
    assert [t["result"] for t in document["targets"]] == ["pass", "pass"]
    assert document["environment"]["device"].startswith(("cpu", "gpu", "cuda"))
    html = (tmp_path / "out" / "conformance.html").read_text()
    assert "jax.nn.initializers.he_normal()" in html and "Every target passes." in html


def test_a_compile_cache_is_reused_by_the_next_run_with_the_same_verdicts(tmp_path):
    args = (
        "report",
        "--profile",
        "quick",
        "--frameworks",
        "haiku",
        "--entries",
        "RandomNormal",
        "--dtypes",
        "float32",
        "--compile-cache",
        "xla-cache",
    )
    first = run(*args, "--out", "first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (machine,) = (tmp_path / "xla-cache").iterdir()  # one folder per machine identity
    assert f"compile cache {machine} (this machine's, kept between runs)" in first.stdout
    kept = sorted(p.name for p in machine.iterdir())
    assert any(name.startswith("jit_one-") for name in kept)  # the case's jit(vmap(init)), among others
    second = run(*args, "--out", "second", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    # Nothing new was compiled: every compile of the second run was found in the cache.
    assert sorted(p.name for p in machine.iterdir()) == kept

    def verdicts(folder):
        target = json.loads((tmp_path / folder / "conformance.json").read_text())["targets"][0]
        return [(v["property"], v["status"], v["statistic"], v["pvalue"]) for v in target["verdicts"]]

    assert verdicts("first") == verdicts("second")
    (tmp_path / "a-file").write_text("")
    bad = run(*args, "--out", "third", "--compile-cache", "a-file", cwd=tmp_path)
    assert bad.returncode == 2 and "--compile-cache a-file: a-file is a file; give a folder" in bad.stderr


def test_a_compile_cache_block_keeps_compiles_in_its_folder_and_restores_the_settings_after(tmp_path):
    import os

    import jax
    import jax.numpy as jnp

    from initcheck import _xla

    before = os.environ.get("JAX_COMPILATION_CACHE_DIR"), jax.config.jax_compilation_cache_dir
    with _xla.compile_cache(tmp_path / "cache"):
        assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "cache")  # for worker processes
        jax.jit(lambda x: x * 7 - 2)(jnp.ones(3))
    assert any((tmp_path / "cache").iterdir())
    assert (os.environ.get("JAX_COMPILATION_CACHE_DIR"), jax.config.jax_compilation_cache_dir) == before


def test_report_without_compile_cache_keeps_one_for_its_run_only_unless_jax_s_variable_names_one(tmp_path):
    import os

    (tmp_path / "scratch").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "initcheck.cli",
            "report",
            "--profile",
            "quick",
            "--frameworks",
            "jax",
            "--entries",
            "zeros",
            "--dtypes",
            "float32",
            "--out",
            "out",
            "--no-compile-cache",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path / "scratch")},
    )
    assert result.returncode == 0, result.stderr
    folder = result.stdout.split("compile cache ")[1].split(" (this run only)")[0]
    assert folder.startswith(str(tmp_path / "scratch" / "initcheck-xla-"))
    assert list((tmp_path / "scratch").iterdir()) == []
    # A cache the user chose through JAX's own variable is used instead.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "initcheck.cli",
            "report",
            "--profile",
            "quick",
            "--frameworks",
            "jax",
            "--entries",
            "zeros",
            "--dtypes",
            "float32",
            "--out",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path / "scratch"), "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine")},
    )
    assert result.returncode == 0, result.stderr
    assert f"compile cache {tmp_path / 'mine'}\n" in result.stdout


def test_report_rejects_an_unknown_entry(tmp_path):
    result = run("report", "--entries", "no_such_initializer", cwd=tmp_path)
    assert result.returncode == 2
    assert "--entries no_such_initializer matches no catalog entry" in result.stderr


def test_output_paths_that_cannot_be_written_are_refused_before_any_check(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    (tmp_path / "folder").mkdir()
    report = run("report", "--out", "taken", cwd=tmp_path)
    assert report.returncode == 2
    assert "initcheck report: --out taken: taken is a file; give a folder (it is made if missing)" in report.stderr
    check = run(
        "check", "jax.nn.initializers:normal(0.01)", "--expect", "normal(std=0.01)", "--html", "folder", cwd=tmp_path
    )
    assert check.returncode == 2 and "--html folder: folder is a folder; give a file path" in check.stderr
    check = run(
        "check",
        "jax.nn.initializers:normal(0.01)",
        "--expect",
        "normal(std=0.01)",
        "--json",
        "taken/c.json",
        cwd=tmp_path,
    )
    assert check.returncode == 2
    assert "--json taken/c.json: taken is a file, so no folder can be made inside it" in check.stderr
    virtual = run("audit", "tests.corpus.linen_models:nothing", "--json", "/proc/x.json", cwd=tmp_path)
    assert virtual.returncode == 2 and "--json /proc/x.json: no file can be made in /proc" in virtual.stderr
    assert "Traceback" not in report.stderr + check.stderr + virtual.stderr


def test_list_groups_the_catalog_by_framework_with_counts():
    result = run("list", cwd=".")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "jax (30 entries)",
        "flax (42 entries)",
        "haiku (16 entries)",
        "initcheck (20 entries)",
        "equinox (32 entries)",
        "keras (18 entries)",
        "158 entries",
    ]
    assert "  flax.linen.initializers.zeros_init()  ->  Constant(0.0)" in lines
    listed = [line.split("  ->  ")[0].strip() for line in lines if line.startswith("  ") and "  ->  " in line]
    assert listed == [entry.id for entry in initcheck.catalog()]
    assert "      dtypes: float32, bfloat16, float16, complex64" in lines
    assert (
        "      known defect jax-low-precision-sampling (jax <= 0.10.2) on distribution/moments/precision in bfloat16/float16"
        in lines
    )
    bad = run("list", "--frameworks", "torch", cwd=".")
    assert (
        bad.returncode == 2
        and "'torch': choose a comma-separated subset of jax,flax,haiku,initcheck,equinox,keras" in bad.stderr
    )


def test_report_separates_known_defects_from_unexpected_failures(tmp_path):
    result = run(
        "report",
        "--profile",
        "quick",
        "--frameworks",
        "jax",
        "--entries",
        "initializers.normal()",
        "--dtypes",
        "float32,bfloat16",
        "--out",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # a known defect is not an unexpected failure
    assert "[1/1] KNOWN jax.nn.initializers.normal() [float32,bfloat16]" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "0 unexpected failures: every failure is a documented framework defect, in bfloat16 only"
    )
    entry = json.loads((tmp_path / "out" / "conformance.json").read_text())["targets"][0]
    assert entry["result"] == "known"
    precision = [v for v in entry["verdicts"] if v["property"] == "precision" and v["status"] == "fail"]
    assert precision and all(v["known_defect"] == "jax-low-precision-sampling" for v in precision)
    assert [d["name"] for d in entry["known_defects"] if d["observed"]] == ["jax-low-precision-sampling"]


def test_x64_list_shows_64_bit_dtypes():
    result = run("list", "--x64", "--frameworks", "jax", cwd=".")
    assert "      dtypes: float32, bfloat16, float16, float64, complex64, complex128" in result.stdout.splitlines()


def test_help():
    result = run("report", "--help", cwd=".")
    assert result.returncode == 0 and "--profile {ci,quick,thorough}" in result.stdout


def _python(code, xla_flags):
    import os

    env = {**os.environ, "XLA_FLAGS": xla_flags}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_fast_compiles_are_added_only_where_they_apply():
    code = "import os; from initcheck import _xla; print(_xla.prefer_fast_compiles(), os.environ['XLA_FLAGS'])"
    assert _python(code, "").stdout.split() == [
        "True",
        "--xla_backend_optimization_level=2",
        "--xla_cpu_use_fusion_emitters=false",
    ]
    assert _python(code, "--xla_backend_optimization_level=3").stdout.split() == [
        "False",
        "--xla_backend_optimization_level=3",
    ]  # the user's own setting wins
    assert _python(code, "--xla_cpu_use_fusion_emitters=true").stdout.split() == [
        "False",
        "--xla_cpu_use_fusion_emitters=true",
    ]
    started = "import jax; jax.numpy.zeros(1).block_until_ready(); " + code
    assert _python(started, "").stdout.split()[0] == "False"  # too late once the backend runs


def test_check_a_target_against_a_law_in_the_safe_syntax(tmp_path):
    ok = run(
        "check",
        "jax.nn.initializers:normal(0.01)",
        "--expect",
        "normal(std=0.01)",
        "--profile",
        "quick",
        "--shapes",
        "64x32",
        "--properties",
        "contract,moments",
        "--json",
        "c.json",
        "--html",
        "c.html",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "CONFORMS" in ok.stdout and "moments" in ok.stdout and "wrote c.html" in ok.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["targets"][0]["id"] == "jax.nn.initializers:normal(0.01)" and data["targets"][0]["result"] == "pass"
    wrong = run(
        "check",
        "jax.nn.initializers:normal(0.02)",
        "--expect",
        "normal(0.01)",
        "--profile",
        "quick",
        "--shapes",
        "64x32",
        "--properties",
        "moments",
        cwd=tmp_path,
    )
    assert wrong.returncode == 1 and "DOES NOT CONFORM" in wrong.stdout and "std 0.019" in wrong.stdout


def test_check_refuses_bad_input_naming_it(tmp_path, monkeypatch, capsys):
    from initcheck import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # check puts the current folder on it, as python -m does
    (tmp_path / "marker.py").write_text("")
    cases = [
        (["jax.nn.initializers:normal()", "--expect", "__import__('os').remove('marker.py')"], "unknown law"),
        (["jax.nn.initializers:normal()", "--expect", "normal(std=-1)"], "std=-1.0 must be > 0"),
        (["jax.nn.initializers:normal(0.5)"], "declares no law (@initcheck.expects) and is no catalog entry's"),
        (["nowhere:init", "--expect", "normal(1)"], "cannot import 'nowhere'"),
        (["jax.nn.initializers:no_such", "--expect", "normal(1)"], "has no attribute 'no_such'"),
        (["jax.nn.initializers", "--expect", "normal(1)"], "is neither MODULE:ATTR (e.g. mypkg.inits:my_init) nor a"),
    ]
    for limit in ("0", "-3", "soon", "inf"):
        with pytest.raises(SystemExit) as exited:
            cli.main(["check", "jax.nn.initializers:normal()", "--expect", "normal(1)", "--time-limit", limit])
        assert exited.value.code == 2
        assert f"{limit!r} is not a positive number of seconds, e.g. --time-limit 30" in capsys.readouterr().err
    for args, message in cases:  # in process: each is refused before anything is sampled
        assert cli.main(["check", *args]) == 2
        stderr = capsys.readouterr().err
        assert message in stderr, (args, stderr)
    assert (tmp_path / "marker.py").exists()  # nothing was evaluated
    with pytest.raises(SystemExit) as exited:
        cli.main(["check", "jax.nn.initializers:normal()", "--shapes", "64by32"])
    assert exited.value.code == 2 and "write shapes as sides joined by x" in capsys.readouterr().err


def test_by_default_the_compile_cache_is_this_machine_s_folder_in_the_user_s_cache(tmp_path):
    import os

    from initcheck import _xla

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "home-cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    args = ["check", "jax.nn.initializers:zeros", "--expect", "constant(0.0)", "--profile", "quick"]
    done = subprocess.run([sys.executable, "-m", "initcheck.cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (machine,) = (tmp_path / "home-cache" / "initcheck" / "xla").iterdir()
    assert len(machine.name) == 16 and any(machine.iterdir())
    off = subprocess.run([sys.executable, "-m", "initcheck.cli", *args, "--no-compile-cache"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env={**env, "XDG_CACHE_HOME": str(tmp_path / "b")})  # fmt: skip
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "b").exists()
    both = run(*args, "--compile-cache", "c", "--no-compile-cache", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert _xla.machine_folder(tmp_path, {"cpu": "x"}) != _xla.machine_folder(tmp_path, {"cpu": "y"})


IDENTITY = {"jax": "0.10.2", "jaxlib": "0.10.2", "backend": "cpu", "device_kind": "cpu", "xla_flags": "", "cpu": ""}
CPUINFO = """processor\t: 0
model name\t: {model}
flags\t\t: fpu sse2 {extra} avx2
processor\t: 1
model name\t: {model}
flags\t\t: fpu sse2 {extra} avx2
"""


def test_two_cpus_or_two_flag_sets_get_two_cache_folders_and_one_machine_one_folder(tmp_path):
    from initcheck import _xla

    epyc = _xla.cpu_identity(CPUINFO.format(model="AMD EPYC 9654", extra="avx512f"))
    xeon = _xla.cpu_identity(CPUINFO.format(model="Intel Xeon", extra="avx512f"))
    no_avx512 = _xla.cpu_identity(CPUINFO.format(model="AMD EPYC 9654", extra=""))
    assert len({epyc, xeon, no_avx512}) == 3 and "avx512f" in epyc
    folder = lambda **changes: _xla.machine_folder(tmp_path, {**IDENTITY, **changes})
    assert folder(cpu=epyc) == folder(cpu=epyc)  # the same machine finds its code again
    assert len({folder(cpu=epyc), folder(cpu=xeon), folder(cpu=no_avx512)}) == 3
    assert folder(xla_flags="--xla_backend_optimization_level=2") != folder(xla_flags="")
    assert folder(jaxlib="0.10.1") != folder() and folder(backend="gpu", device_kind="NVIDIA H200") != folder()
    assert folder().parent == tmp_path
    identity = _xla.machine_identity()
    assert set(identity) == set(IDENTITY) and identity["cpu"] == _xla.cpu_identity()


def test_the_cache_is_pruned_oldest_first_past_its_limit(tmp_path):
    import os

    from initcheck import _xla

    for age, name in enumerate(["newest", "middle", "oldest"]):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    assert _xla.prune(tmp_path, limit=250) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "newest"]
    assert _xla.prune(tmp_path, limit=1000) == 0


def test_audit_of_a_factory_that_raises_shows_its_traceback_and_exits_2(tmp_path):
    (tmp_path / "boom.py").write_text("def factory():\n    raise RuntimeError('factory boom')\n")
    result = run("audit", "boom:factory", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert 'boom.py", line 2, in factory' in result.stderr  # the user's file and line
    assert "initcheck audit: boom:factory() raised RuntimeError: factory boom (its traceback is above)" in result.stderr


SPINS = """
import jax


def spins(key, shape, dtype=None):
    def body(k):
        while True:  # a CPU-bound loop inside JAX tracing: its thread cannot be stopped
            pass

    return jax.jit(body)(key)
"""


def test_check_of_a_hung_initializer_stops_at_its_time_limit_and_exits_1(tmp_path):
    """The call is abandoned after --time-limit; the command then ends with its own status (it
    was signal 11, 139, as the interpreter shut down under the running call)."""
    (tmp_path / "hangmod.py").write_text(SPINS)
    args = ["hangmod:spins", "--expect", "normal(std=1.0)", "--time-limit", "2", "--properties", "contract"]
    result = subprocess.run(
        [sys.executable, "-c", "from initcheck.cli import run; run()", "check", *args, "--profile", "quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "did not return within 2 s" in result.stdout


# Issue 34: the ids `list` prints, --help without JAX, descriptions, and suggestions for typos.


def test_help_imports_no_jax_before_the_arguments_are_parsed():
    """Deterministic, not timed: `initcheck --help` and each subcommand's `--help` import neither
    JAX nor scipy (benchmarks/cli_help.py times them)."""
    code = (
        "import sys\n"
        "from initcheck.cli import main\n"
        "for argv in ([], ['report'], ['check'], ['audit'], ['list'], ['lock']):\n"
        "    try:\n"
        "        main([*argv, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'scipy', 'numpy', 'flax', 'haiku') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "import initcheck\n"  # the package itself is cheap too; its names load on first use
        "assert 'jax' not in sys.modules\n"
        "print('light')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("light"), done.stderr[-2000:]


def test_every_subcommand_has_a_description_and_only_compiling_ones_offer_xla_optimize(capsys):
    from initcheck import cli

    commands = next(a for a in cli._parser()._actions if a.dest == "command").choices
    assert set(commands) == {"report", "check", "audit", "list", "lock"}
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 40, name
        offered = {o for a in sub._actions for o in a.option_strings}
        assert ("--xla-optimize" in offered) == (name in ("report", "check", "audit")), name
    for name in ("report", "list"):
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        assert commands[name].description.split()[0] in capsys.readouterr().out


def test_typos_get_the_closest_names(tmp_path, monkeypatch, capsys):
    from initcheck import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text("def mlp():\n    pass\n\n\ndef tagger():\n    pass\n\n\nWIDTH = 3\n")
    cases = [
        (
            ["check", "jax.nn.initializers:normal()", "--expect", "normal(sd=0.02)"],
            "unexpected keyword argument 'sd' of normal; did you mean std?",
        ),
        (
            ["check", "jax.nn.initializers:normal()", "--expect", "nromal(0.02)"],
            "unknown law 'nromal'; did you mean normal?",
        ),
        (["check", "jax.nn.initializers:normal()", "--expect", "stats.laplac()"], "did you mean laplace"),
        (["audit", "mypkg.models:mpl"], "did you mean mlp? Its callables, closest first: mlp, tagger"),
        (["check", "jax.nn.initializers:he_normall()"], "did you mean he_normal?"),
        (["check", "jax.nn.initializers.he_normall()"], "did you mean jax.nn.initializers.he_normal()"),
    ]
    for args, message in cases:
        assert cli.main(args) == 2
        stderr = capsys.readouterr().err
        assert message in stderr, (args, stderr)
    assert "WIDTH" not in stderr  # only callables are offered


def test_check_accepts_the_ids_list_prints_with_their_catalog_law_and_known_defects(tmp_path, capsys):
    from initcheck import cli

    assert cli.main(["list", "--frameworks", "jax"]) == 0
    assert "  jax.nn.initializers.he_normal()  ->  VarianceScaling(2.0, 'fan_in', 'truncated_normal'" in (
        capsys.readouterr().out
    )
    by_id = run(
        "check", "jax.nn.initializers.he_normal()", "--dtypes", "bfloat16", "--shapes", "64x32",
        "--properties", "precision", "--profile", "quick", cwd=tmp_path,
    )  # fmt: skip
    assert by_id.returncode == 0, by_id.stderr  # a known defect alone does not fail
    assert "initcheck: jax.nn.initializers.he_normal() vs VarianceScaling(2.0, 'fan_in', 'truncated_normal'" in (
        by_id.stdout
    )
    assert "BY KNOWN FRAMEWORK DEFECTS ONLY" in by_id.stdout and "known defect jax-low-precision-sampling" in (
        by_id.stdout
    )
    by_call = run(
        "check", "jax.nn.initializers:he_normal()", "--shapes", "64x32", "--properties", "moments",
        "--profile", "quick", cwd=tmp_path,
    )  # fmt: skip
    assert by_call.returncode == 0, by_call.stderr
    assert "is the catalog entry jax.nn.initializers.he_normal(): its catalog law VarianceScaling(2.0" in (
        by_call.stdout
    )


def test_report_console_summary_groups_by_framework_and_defect_and_counts_warnings_instead_of_printing_them(
    tmp_path,
):
    """Not a terminal: a progress line per tenth of the run; then the run by framework and by known
    defect, one line on the warnings (Haiku divides by zero on empty shapes: counted, recorded in the
    JSON, never printed raw), and a last line that says what matters."""
    result = run(
        "report",
        "--profile",
        "quick",
        "--frameworks",
        "jax,haiku",
        "--entries",
        "jax.nn.initializers.normal()",
        "haiku.initializers.UniformScaling",
        "haiku.initializers.Orthogonal",
        "--dtypes",
        "float32,bfloat16",
        "--out",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 3 and progress[-1].startswith("[3/3] ")
    assert re.search(r"; 100% in \d+:\d\d: ", progress[-1]), progress[-1]
    assert "1 pass, 2 known defects only, 0 unexpected" in progress[-1]
    assert "framework    entries   pass  known defects only  unexpected" in lines
    assert [line.split() for line in lines if line.startswith(("jax ", "haiku ", "all "))] == [
        ["jax", "1", "0", "1", "0"],
        ["haiku", "2", "1", "1", "0"],
        ["all", "3", "1", "2", "0"],
    ]
    at = lines.index("known framework defects (still failures: documented, with a reference, in the report)")
    assert (
        lines[at + 1].startswith("  jax-low-precision-sampling (jax <= ")
        and "low-precision sampling: " in lines[at + 1]
    )
    assert lines[at + 2] == "      in bfloat16 on 1 entry (jax 1)"
    assert lines[at + 3].startswith("  haiku-low-precision-sampling")
    assert lines[at + 4] == "      in bfloat16 on 1 entry (haiku 1)"
    assert any(
        line.startswith("2 third-party warnings during the checks (2 distinct: RuntimeWarning, from haiku)")
        for line in lines
    )
    assert lines[-1] == (
        "0 unexpected failures: every failure is a documented framework defect, in bfloat16 only; "
        "1 of 3 entries pass in every dtype"
    )
    assert "Warning" not in result.stderr and "divide by zero" not in result.stderr, result.stderr
    warned = json.loads((tmp_path / "out" / "conformance.json").read_text())["warnings"]
    assert {(w["category"], w["where"].split(":")[0], tuple(w["targets"]), w["own"]) for w in warned} == {
        ("RuntimeWarning", "haiku/_src/initializers.py", ("haiku.initializers.UniformScaling(2.0)",), False),
        ("RuntimeWarning", "haiku/_src/initializers.py", ("haiku.initializers.Orthogonal()",), False),
    }


def test_progress_is_one_line_redrawn_on_a_terminal_and_a_line_per_tenth_elsewhere():
    import io

    from initcheck import cli

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    with cli._Progress(3, terminal) as progress:
        progress.running(["a", "b"])
        progress.finished("PASS", "a [float32] (1.0s)")
        progress.running(["b", "c"])
        progress.finished("FAIL", "b [float32] (1.0s)")
        progress.finished("KNOWN", "c [bfloat16] (1.0s)")
    text = terminal.getvalue()
    permanent = [line.rsplit("\r\x1b[K", 1)[-1] for line in text.split("\n")[:-1]]
    assert permanent[0] == "[2/3] FAIL b [float32] (1.0s)"  # an unexpected failure keeps a line of its own
    assert permanent[-1].startswith("[3/3] checked in 0:0") and permanent[-1].endswith(
        "1 pass, 1 known defects only, 1 unexpected"
    )
    assert len(permanent) == 2 and "\r\x1b[K[1/3] ###" in text and "| checking a (+1)" in text

    log = io.StringIO()
    with cli._Progress(40, log) as progress:
        for i in range(40):
            progress.finished("PASS", f"e{i} [float32] (0.1s)")
    lines = log.getvalue().splitlines()
    assert [line.split("]")[0] for line in lines] == [f"[{n:2d}/40" for n in range(4, 41, 4)]  # every 10%
    assert "\r" not in log.getvalue() and lines[-1].startswith("[40/40] PASS e39 [float32] (0.1s); 100% in ")


def test_the_last_line_says_which_dtypes_the_known_defects_hit_or_names_the_unexpected_failures():
    from types import SimpleNamespace as Fake

    from initcheck import cli

    def result(entry_id, failures, unexpected=()):  # failures: (dtype, known defect) of its failed verdicts
        verdicts = [Fake(case=Fake(dtype=d), known_defect=k, property="precision") for d, k in failures]
        missed = [Fake(case=Fake(dtype=d), property=p) for p, d in unexpected]
        report = Fake(passed=not failures and not unexpected, verdicts=verdicts)
        return Fake(id=entry_id, framework="jax"), Fake(report=report, unexpected=missed, unobserved=[], observed=[])

    low = [result(f"e{i}", [("bfloat16", "low"), ("float16", "low")]) for i in range(5)]
    passing = [result("ok", [])]
    assert cli._closing_line(low + passing) == (
        "0 unexpected failures: every failure is a documented framework defect, in bfloat16/float16 only; "
        "1 of 6 entries pass in every dtype"
    )
    mixed = low + [result("cx", [("complex64", "complex-scale")]), result("weak", [("float32", "weak-type")])]
    assert cli._closing_line(mixed + passing) == (
        "0 unexpected failures: every failure is a documented framework defect, in bfloat16/float16 (5 entries), "
        "float32 (1 entry: weak-type) and complex64 (1 entry: complex-scale); 1 of 8 entries pass in every dtype"
    )
    assert cli._closing_line(passing) == "0 unexpected failures: 1 entry passes"
    broken = result("bad", [], unexpected=[("moments", "float32"), ("moments", "bfloat16")])
    assert cli._closing_line([*low, broken]) == ("1 unexpected failure: bad (moments in bfloat16, moments in float32)")
