"""The audit on a corpus of realistic models (``tests/corpus``): no false alarm, no crash, no value
recorded twice, every value covered (law known and derivation modelled), the true defects still
flagged, the failures of the frameworks' own 16-bit samplers marked as their known defect, and the
forward pass traced for ``effective_fan`` (exact) and the signal profile.

Statistical verdicts use the ci profile (alpha 1e-7 each); the corpus makes about 4,000 of them, so
the chance that a correct model here fails by chance is below 4e-4. The rngs are fixed, so a run
gives the same verdicts every time."""

from __future__ import annotations

import collections
import os

import pytest

import initcheck
from tests.corpus import haiku_models, linen_models, nnx_models

os.environ.setdefault("KERAS_BACKEND", "jax")
pytest.importorskip("equinox")
pytest.importorskip("keras")
from tests.corpus import equinox_models, keras_models

ENTRIES = [
    *linen_models.ENTRIES,
    *nnx_models.ENTRIES,
    *haiku_models.ENTRIES,
    *equinox_models.ENTRIES,
    *keras_models.ENTRIES,
    # real models initcheck gets wrong today (a false alarm, a crash or a miss), each with its reason
    *(
        pytest.param(entry, marks=pytest.mark.xfail(strict=True, reason=reason), id=str(entry))
        for entry, reason in (*linen_models.XFAIL, *haiku_models.XFAIL)
    ),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_realistic_model_audits_clean_or_flags_its_known_defect(entry):
    model, inputs, options = entry.build()
    report = initcheck.audit(model, *inputs, **options)
    recorded = collections.Counter((v.case.path, v.property) for v in report.verdicts)
    assert max(recorded.values()) == 1, [k for k, n in recorded.items() if n > 1]
    gaps = {line.split(" (")[0]: line for line in report.coverage.gaps}
    assert set(gaps) == set(entry.uncovered), report.coverage.gaps
    assert all(entry.uncovered[path] in gaps[path] for path in gaps), report.coverage.gaps
    derivations = {v.case.path: v for v in report.verdicts if v.property == "derivation"}
    assert set(derivations) == {path for path, _ in recorded}
    failures, known = {}, {}
    for v in report.verdicts:
        if v.status in ("fail", "error"):
            (known if v.known_defect else failures).setdefault(v.case.path, []).append(v)
    assert set(failures) == set(entry.flagged), report.failure_text()
    assert {path: {v.known_defect for v in vs} for path, vs in known.items()} == {
        path: {name} for path, name in entry.known.items()
    }, report.failure_text()
    for path, text in entry.flagged.items():
        assert any(text in v.message for v in failures[path]), [v.message for v in failures[path]]
    computed = {line.split(" (")[0] for line in report.coverage.computed}  # e.g. moving averages set at init
    unflagged = [
        v
        for v in derivations.values()
        if v.case.path not in {**entry.flagged, **entry.uncovered}
        and v.case.path not in computed
        and v.status != "pass"
    ]
    assert not unflagged, [f"{v.case.path}: {v.message}" for v in unflagged]
    expected = "fail" if entry.flagged else "known" if entry.known else "partial" if entry.uncovered else "pass"
    assert report.result == expected
    # effective_fan and the signal profile ran on the traced forward pass (skips name their reason)
    fans = [v for v in report.verdicts if v.property == "effective_fan"]
    assert any(v.status == "pass" for v in fans) or entry.flagged, [v.message for v in fans]
    assert not [v.message for v in fans if "could not be traced" in v.message or "call_args" in v.message]
    assert report.signal is not None and report.signal.layers, report.signal_unavailable
