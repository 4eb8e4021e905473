"""One registry of properties (``initcheck._property_registry``): the check's and the audit's
property lists, the report's columns and the known defects' properties all derive from it, and a
property that cannot run on a model's values is a declared, documented fact, never a silent skip.

Deterministic checks of tables and one refusal (no sampling): no false alarms."""

from __future__ import annotations

import pathlib
import re

import flax.linen as nn
import jax.numpy as jnp
import pytest

import initcheck
from initcheck import _defects, _document
from initcheck import _property_registry as registry
from initcheck._audit import AUDIT_PROPERTIES, OWN_CHECKS, STATISTICAL
from initcheck._properties import PROPERTIES

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_property_lists_derive_from_the_registry():
    assert list(PROPERTIES) == [p.name for p in registry.REGISTRY if "check" in p.applies]
    assert set(AUDIT_PROPERTIES) == {p.name for p in registry.REGISTRY if "audit" in p.applies}
    assert AUDIT_PROPERTIES[0] == "derivation"
    assert set(AUDIT_PROPERTIES) == set(STATISTICAL) | set(OWN_CHECKS)  # every audit property has a check
    assert all(registry.BY_NAME[name].needs == registry.VALUES for name in STATISTICAL)


def test_the_report_columns_follow_the_registry():
    names = [p.name for p in registry.REGISTRY]
    assert _document._ordered_properties(["lock", *reversed(names)]) == [*names, "lock"]


def test_each_known_defect_covers_the_properties_of_its_group():
    from initcheck._frameworks import _declared
    from initcheck._frameworks import registry as frameworks

    defects = frameworks.KNOWN_DEFECTS
    in_law_modules = {d for m in _declared.LAW_MODULES for d in vars(m).values() if isinstance(d, _defects.KnownDefect)}
    assert set(defects) == in_law_modules and len(defects) == 9
    groups = {g for p in registry.REGISTRY for g in p.groups}
    for defect in defects:
        assert defect.group in groups, defect.name
        assert defect.properties == registry.covered_by(defect.group) and defect.properties
    assert defects[0].name == "jax-low-precision-sampling"
    assert defects[0].properties == ("distribution", "moments", "precision")


def test_a_property_that_needs_draws_is_refused_by_the_audit_naming_the_audits_properties():
    model = nn.Dense(4)
    for name in ("determinism", "key_sensitivity", "precision", "errors", "contract"):
        with pytest.raises(ValueError, match=rf"\['{name}'\] do not apply to an audit; choose from derivation, "):
            initcheck.audit(model, jnp.ones((1, 3)), rng=0, properties=[name])


def test_the_docs_table_is_the_registry():
    text = (ROOT / "docs" / "audit.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (\w+) \| (yes|-) \| (yes|-) \|$", text, flags=re.M)
    documented = [(name, promise, needs, check == "yes", audit == "yes") for name, promise, needs, check, audit in rows]
    assert documented == [
        (p.name, p.promise, p.needs, "check" in p.applies, "audit" in p.applies) for p in registry.REGISTRY
    ]
