"""Verdicts and conformance reports: readable text, JSON-ready dicts, the false-alarm bound."""

import json

from initcheck import _profiles as profiles
from initcheck import _stats as stats
from initcheck._verdict import Case, Conformance, Verdict


def verdict(prop, status, alpha=1e-7, pvalue=0.5):
    return Verdict(
        prop,
        status,
        1.0,
        pvalue,
        alpha,
        100,
        Case((3, 3), "float32", "k"),
        f"{prop} says",
        "" if status == "pass" else "initcheck.check(...)",
    )


def test_conformance_passes_only_without_failures_or_errors():
    ok = Conformance(
        "init", "Normal(1.0)", [verdict("moments", "pass"), verdict("bounds", "skip", 0.0)], "ci", 0, "cpu"
    )
    assert ok.passed and bool(ok) and ok.false_alarm_bound == 1e-7
    bad = Conformance(
        "init",
        "Normal(1.0)",
        [verdict("moments", "fail", pvalue=1e-9), verdict("contract", "error", 0.0)],
        "ci",
        0,
        "cpu",
    )
    assert not bad.passed and len(bad.failures) == 2
    text = str(bad)
    assert "DOES NOT CONFORM" in text and "property moments fail on shape=(3, 3) dtype=float32" in text
    assert "1e-09" in text and "initcheck.check(...)" in text


def test_to_dict_is_json():
    report = Conformance("init", "Normal(1.0)", [verdict("moments", "pass", pvalue=float("nan"))], "ci", 0, "cpu")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdicts"][0]["pvalue"] is None and data["verdicts"][0]["case"]["shape"] == [3, 3]


def test_profiles():
    ci = profiles.get("ci")
    # the documented power: a ci check detects a 2% scale error of a float32 normal law with probability >= 0.99
    # (the variance test runs at alpha/2; a law with a heavier fourth moment states its own MDE)
    assert stats.mde_scale(ci.n, 1.0, 3.0, ci.alpha / 2) < 0.02
    assert profiles.get("quick").alpha == 1e-6
    assert profiles.get(profiles.PROFILES["thorough"]).name == "thorough"
    assert profiles.get("thorough").full_grid and not ci.full_grid
