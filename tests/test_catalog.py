"""The built-in catalog: complete, honest about aliases, and its own entries conform."""

import flax.linen as nn
import flax.nnx as nnx
import jax
import pytest

import initcheck
from initcheck._catalog import CatalogEntry

ENTRIES = initcheck.catalog()


def _public(module):
    return {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            and n not in ("Initializer", "DtypeLikeInexact")}


def test_ids_are_unique_and_grouped_by_framework():
    assert len({e.id for e in ENTRIES}) == len(ENTRIES)
    assert [e.framework for e in ENTRIES] == sorted((e.framework for e in ENTRIES), key=["jax", "flax", "haiku"].index)
    assert [e.id for e in initcheck.catalog(["haiku"])] == [e.id for e in ENTRIES if e.framework == "haiku"]
    assert [e.id for e in initcheck.catalog("jax,haiku")] == [e.id for e in initcheck.catalog(["jax", "haiku"])]


@pytest.mark.parametrize("prefix, module", [("jax.nn.initializers", jax.nn.initializers),
                                            ("flax.linen.initializers", nn.initializers),
                                            ("flax.nnx.initializers", nnx.initializers)])
def test_every_public_initializer_has_an_entry(prefix, module):
    covered = {e.id[len(prefix) + 1:].split("(")[0] for e in ENTRIES if e.id.startswith(prefix + ".")}
    assert _public(module) == covered


def test_haiku_classes_are_covered():
    import haiku as hk

    classes = {n for n in dir(hk.initializers) if n[0].isupper() and n != "Initializer"}
    assert classes == {e.id.split(".")[2].split("(")[0] for e in ENTRIES if e.framework == "haiku"}


def test_flax_aliases_say_so():
    aliases = {e.id: e.same_as for e in ENTRIES if e.framework == "flax"}
    assert aliases["flax.linen.initializers.he_normal()"] == "jax.nn.initializers.he_normal()"
    assert aliases["flax.nnx.initializers.zeros"] == "jax.nn.initializers.zeros"
    assert aliases["flax.linen.initializers.zeros_init()"] is None
    assert all(same in {e.id for e in ENTRIES} for same in aliases.values() if same)


def test_unknown_framework_is_a_clear_error():
    with pytest.raises(ValueError, match=r"frameworks=\['torch'\]: choose from jax, flax, haiku"):
        initcheck.catalog(["torch"])


OWN = [e for e in ENTRIES if e.framework == "haiku" or (e.framework == "flax" and e.same_as is None)]


@pytest.mark.parametrize("entry", OWN, ids=[e.id for e in OWN])
def test_entries_not_aliasing_jax_conform(entry: CatalogEntry):
    """Haiku's and Flax's own entries under the quick profile (JAX's are the JAX sweep's)."""
    report = initcheck.check(entry.init, entry.law, profile="quick")
    assert report.passed, str(report)
