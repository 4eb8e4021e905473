"""The built-in catalog: complete, honest about aliases, and its own entries conform."""

import dataclasses

import flax.linen as nn
import flax.nnx as nnx
import jax
import pytest

import initcheck
from initcheck import _profiles as profiles
from initcheck._catalog import CatalogEntry, catalog, check_entry
from initcheck._frameworks import FRAMEWORKS

ENTRIES = initcheck.catalog()


def _public(module):
    return {
        n
        for n in dir(module)
        if not n.startswith("_") and callable(getattr(module, n)) and n not in ("Initializer", "DtypeLikeInexact")
    }


def test_ids_are_unique_and_grouped_by_framework():
    assert len({e.id for e in ENTRIES}) == len(ENTRIES)
    order = list(FRAMEWORKS)
    assert [e.framework for e in ENTRIES] == sorted((e.framework for e in ENTRIES), key=order.index)
    assert [e.id for e in initcheck.catalog(["haiku"])] == [e.id for e in ENTRIES if e.framework == "haiku"]
    assert [e.id for e in initcheck.catalog("jax,haiku")] == [e.id for e in initcheck.catalog(["jax", "haiku"])]


@pytest.mark.parametrize(
    "prefix, module",
    [
        ("jax.nn.initializers", jax.nn.initializers),
        ("flax.linen.initializers", nn.initializers),
        ("flax.nnx.initializers", nnx.initializers),
    ],
)
def test_every_public_initializer_has_an_entry(prefix, module):
    covered = {e.id[len(prefix) + 1 :].split("(")[0] for e in ENTRIES if e.id.startswith(prefix + ".")}
    assert _public(module) == covered


def test_haiku_classes_are_covered():
    import haiku as hk

    classes = {n for n in dir(hk.initializers) if n[0].isupper() and n != "Initializer"}
    assert classes == {e.id.split(".")[2].split("(")[0] for e in ENTRIES if e.framework == "haiku"}


def test_own_initializers_are_covered():
    from initcheck import inits

    builders = set(inits.__all__) - {"calculate_gain"}
    assert builders == {e.id.split(".")[2].split("(")[0] for e in ENTRIES if e.framework == "initcheck"}


def test_flax_aliases_say_so():
    aliases = {e.id: e.same_as for e in ENTRIES if e.framework == "flax"}
    assert aliases["flax.linen.initializers.he_normal()"] == "jax.nn.initializers.he_normal()"
    assert aliases["flax.nnx.initializers.zeros"] == "jax.nn.initializers.zeros"
    assert aliases["flax.linen.initializers.zeros_init()"] is None
    assert all(same in {e.id for e in ENTRIES} for same in aliases.values() if same)


def test_unknown_framework_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"frameworks=\['torch'\]: choose from jax, flax, haiku, initcheck, equinox, keras"
    ):
        initcheck.catalog(["torch"])


BY_ID = {e.id: e for e in ENTRIES}


def test_every_entry_is_checked_in_16_bit_dtypes_or_documents_why_not():
    for entry in ENTRIES:
        assert "float32" in entry.dtypes, entry.id
        for dtype in ("bfloat16", "float16"):
            documented = "16-bit dtypes: not checked" in entry.notes
            assert dtype in entry.dtypes or dtype in entry.law.refused or documented, (entry.id, dtype)


@pytest.mark.parametrize(
    "entry_id, complex_ok",
    [
        ("jax.nn.initializers.normal()", True),
        ("jax.nn.initializers.he_normal()", True),
        ("jax.nn.initializers.zeros", True),
        ("jax.nn.initializers.uniform()", False),
        ("haiku.initializers.VarianceScaling(1.0, 'fan_in', 'uniform')", True),
        ("haiku.initializers.RandomUniform()", False),
        ("initcheck.inits.variance_scaling(1.0, 'fan_in', 'truncated_normal')", True),
    ],
)
def test_complex_dtypes_where_the_framework_supports_them(entry_id, complex_ok):
    entry = BY_ID[entry_id]
    assert ("complex64" in entry.dtypes) is complex_ok
    if not complex_ok and entry.framework != "initcheck":
        assert "complex64" in entry.law.refused  # and the errors property checks that it raises


@pytest.mark.parametrize(
    "entry_id",
    ["jax.nn.initializers.orthogonal()", "jax.nn.initializers.delta_orthogonal()", "haiku.initializers.Orthogonal()"],
)
def test_qr_based_entries_document_their_16_bit_refusal(entry_id):
    entry = BY_ID[entry_id]
    assert entry.dtypes == ("float32",)
    assert set(entry.law.refused) == {"bfloat16", "float16"}
    assert "no 16-bit" in entry.law.refused["bfloat16"]
    assert ".refusing(['bfloat16', 'float16']" in repr(entry.law)


def test_known_defects_are_attached_where_they_occur():
    names = {e.id: {d.name for d in e.defects} for e in ENTRIES}
    assert names["jax.nn.initializers.he_normal()"] == {
        "jax-low-precision-sampling",
        "jax-complex-truncated-normal-variance",
    }
    assert names["jax.nn.initializers.he_uniform()"] == {"jax-low-precision-sampling"}
    assert names["flax.linen.initializers.glorot_normal()"] == names["jax.nn.initializers.glorot_normal()"]
    assert names["haiku.initializers.VarianceScaling(1.0, 'fan_in', 'uniform')"] == {
        "haiku-low-precision-sampling",
        "haiku-complex-uniform-raises",
    }
    assert names["haiku.initializers.VarianceScaling(1.0, 'fan_avg', 'truncated_normal')"] == {
        "haiku-low-precision-sampling",
        "haiku-complex-truncated-normal-variance",
    }
    assert not any(names[e.id] for e in ENTRIES if e.framework == "initcheck")
    assert not names["jax.nn.initializers.zeros"] and not names["jax.nn.initializers.orthogonal()"]


def test_x64_adds_64_bit_dtypes():
    import subprocess
    import sys

    code = (
        "import jax; jax.config.update('jax_enable_x64', True); import initcheck; "
        "e = {x.id: x for x in initcheck.catalog()}; print(e['jax.nn.initializers.he_normal()'].dtypes, "
        "e['jax.nn.initializers.orthogonal()'].dtypes)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == (
        "('float32', 'bfloat16', 'float16', 'float64', 'complex64', 'complex128') ('float32', 'float64')"
    ), out.stderr


BUILDER_ENTRIES = [e for e in ENTRIES if e.configurations is not None]


def test_every_builder_has_a_strategy_of_configurations():
    parameterless = {e.id for e in ENTRIES if e.configurations is None}
    assert parameterless == {
        f"{p}.{n}"
        for p in ("jax.nn.initializers", "flax.linen.initializers", "flax.nnx.initializers")
        for n in ("zeros", "ones")
    }


@pytest.mark.parametrize("entry", BUILDER_ENTRIES, ids=[e.id for e in BUILDER_ENTRIES])
def test_configurations_are_valid(entry: CatalogEntry):
    from hypothesis import given, settings

    @settings(max_examples=10)
    @given(entry.configurations)
    def run(config):
        label, init, law = config
        assert isinstance(label, str) and callable(init)
        assert isinstance(law, initcheck.laws.Law)

    run()


def test_a_catalog_check_pairs_the_drawn_shapes_with_the_dtypes_and_thorough_runs_the_grid():
    from initcheck import _api as api

    assert api.paired_cases(["a", "b", "c"], [1, 2, 3, 4]) == [("a", 1), ("b", 2), ("c", 3), ("a", 4)]
    assert api.paired_cases(["a", "b", "c"], [1]) == [("a", 1), ("b", 1), ("c", 1)]
    entry = next(e for e in catalog(["jax"]) if e.id == "jax.nn.initializers.ones")
    quick = profiles.get("quick")  # two drawn shapes
    cases = {(v.case.shape, v.case.dtype) for v in check_entry(entry, profile=quick).report.verdicts}
    assert len(cases) == len(entry.dtypes) == 4
    assert {dtype for _, dtype in cases} == set(entry.dtypes) and len({shape for shape, _ in cases}) == 2
    grid = check_entry(entry, profile=dataclasses.replace(quick, full_grid=True)).report
    assert {(v.case.shape, v.case.dtype) for v in grid.verdicts} == {
        (shape, dtype) for shape, _ in cases for dtype in entry.dtypes
    }
    assert grid.passed


def test_under_ci_a_catalog_run_calls_each_initializer_eagerly_in_one_dtype_rotating_over_the_catalog():
    from initcheck._catalog import eager_dtype_of

    dtypes = ["float32", "bfloat16", "float16"]
    assert [eager_dtype_of(i, dtypes, "ci") for i in range(4)] == ["float32", "bfloat16", "float16", "float32"]
    assert eager_dtype_of(5, dtypes, "thorough") is None  # the full grid keeps every dtype eager
    entry = next(e for e in catalog(["jax"]) if e.id == "jax.nn.initializers.he_normal()")
    report = check_entry(
        entry, profile="quick", dtypes=["float32", "bfloat16"], properties=["contract", "determinism"],
        eager_dtype="bfloat16",
    ).report  # fmt: skip
    assert report.passed, report.failure_text()
    by_dtype = {(v.property, v.case.dtype): v.message for v in report.verdicts}
    assert "eager and jitted" in by_dtype["contract", "bfloat16"]
    assert "eager vs jit" in by_dtype["determinism", "bfloat16"]
    assert by_dtype["contract", "float32"].startswith("jitted: exact shape and dtype, finite")
    assert "eager calls checked in bfloat16" in by_dtype["determinism", "float32"]


def test_a_defect_that_shows_only_eagerly_is_caught_in_the_eager_dtype():
    from initcheck import _api as api

    calls = []

    def stateful(key, shape, dtype=jax.numpy.float32):  # a hidden counter: eager calls differ, a jit bakes it in
        calls.append(1)
        return jax.random.normal(key, shape, dtype) * (1.0 + 1e-3 * len(calls))

    law = initcheck.laws.Normal(1.0)
    eager = api.check_paired(stateful, law, dtypes=["float32"], properties=["determinism"], profile="quick")
    assert not eager.passed and "two eager calls with the same key differ" in eager.failure_text()
    lazy = api.check_paired(
        stateful, law, dtypes=["float32"], properties=["determinism"], profile="quick", eager_dtype="bfloat16"
    )
    assert lazy.passed  # not called eagerly in float32: the rotation checks it in another entry's dtype
