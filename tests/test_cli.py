"""The command line, run as a real subprocess."""

import json
import subprocess
import sys


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "initcheck.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_report_writes_json_and_a_summary(tmp_path):
    result = run("report", "--profile", "quick", "--frameworks", "jax", "--entries", "he_normal", "zeros", "--out", "out",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[1/2] PASS jax.nn.initializers.zeros" in result.stdout
    assert "2 passed, 0 failed" in result.stdout
    document = json.loads((tmp_path / "out" / "conformance.json").read_text())
    assert document["schema_version"] == 1 and document["profile"] == "quick"
    assert [e["id"] for e in document["entries"]] == ["jax.nn.initializers.zeros", "jax.nn.initializers.he_normal()"]
    assert all(e["passed"] for e in document["entries"])
    assert document["device"].startswith("cpu") or document["device"].startswith("gpu")


def test_report_rejects_an_unknown_entry(tmp_path):
    result = run("report", "--entries", "no_such_initializer", cwd=tmp_path)
    assert result.returncode == 2
    assert "--entries no_such_initializer matches no catalog entry" in result.stderr


def test_list_groups_the_catalog_by_framework_with_counts():
    result = run("list", cwd=".")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "jax (30 entries)", "flax (42 entries)", "haiku (16 entries)", "88 entries"]
    assert "  flax.linen.initializers.zeros_init()  ->  Constant(0.0)" in lines
    bad = run("list", "--frameworks", "torch", cwd=".")
    assert bad.returncode == 2 and "'torch': choose a comma-separated subset of jax,flax,haiku" in bad.stderr


def test_help():
    result = run("report", "--help", cwd=".")
    assert result.returncode == 0 and "--profile {ci,quick,thorough}" in result.stdout
