"""Sharing verdicts between catalog entries that are the same function (``initcheck report``)."""

import jax
import flax.linen as nn

from initcheck import _runner
from initcheck._catalog import catalog, check_entry


def test_closures_of_the_same_code_over_equal_values_are_the_same_function():
    assert _runner.same_function(jax.nn.initializers.he_normal(), nn.initializers.he_normal())
    assert _runner.same_function(jax.nn.initializers.normal(0.5), jax.nn.initializers.normal(0.5))
    assert not _runner.same_function(jax.nn.initializers.normal(0.5), jax.nn.initializers.normal(0.25))
    assert not _runner.same_function(jax.nn.initializers.he_normal(), jax.nn.initializers.lecun_normal())
    assert not _runner.same_function(jax.nn.initializers.he_normal(), jax.nn.initializers.he_normal(in_axis=0))
    assert not _runner.same_function(jax.nn.initializers.he_normal(), lambda key, shape, dtype: None)


def test_every_flax_re_export_shares_the_jax_entry_and_its_verdicts_are_what_its_own_check_gives():
    entries = catalog()
    chosen = [(i, e, e.dtypes) for i, e in enumerate(entries)]
    copies = _runner.duplicates(chosen)
    assert {entries[i].id for i in copies} == {e.id for e in entries if e.same_as}
    assert all(entries[j].framework == "jax" for j in copies.values())
    # The honest check of the claim: checking the copy itself gives exactly the original's verdicts.
    copy = next(i for i in copies if entries[i].id == "flax.nnx.initializers.lecun_uniform()")
    own = check_entry(entries[copy], profile="quick", dtypes=["float32"]).report.verdicts
    shared = check_entry(entries[copies[copy]], profile="quick", dtypes=["float32"]).report.verdicts
    strip = lambda vs: [(v.property, v.case, v.status, v.statistic, v.pvalue) for v in vs]  # noqa: E731
    assert strip(own) == strip(shared)
