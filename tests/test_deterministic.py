"""``laws.Deterministic``: an exact table (a sinusoidal position embedding) through ``check``,
``@expects``, ``audit`` and the law syntax. Deterministic checks only: no statistics here."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck import laws
from initcheck.law_syntax import LawSyntaxError, parse_law
from tests.corpus.linen_models import sincos_table

SHAPE = (1, 64, 32)


def sinusoidal(key, shape, dtype=jnp.float32):
    """The table, computed in float64 and rounded to the dtype (Flax's wmt example)."""
    return jnp.asarray(sincos_table(shape), dtype)


def sinusoidal_in_float32(key, shape, dtype=jnp.float32):
    """The same table computed in float32 with jnp (big_vision's style)."""
    _, length, d = shape
    position = jnp.arange(length, dtype=jnp.float32)[:, None]
    div = jnp.exp(jnp.arange(d // 2, dtype=jnp.float32) * -(jnp.log(10_000.0) / (d // 2 - 1)))
    return jnp.concatenate([jnp.sin(position * div), jnp.cos(position * div)], -1)[None].astype(dtype)


def ignores_dtype(key, shape, dtype=jnp.float32):
    return jnp.asarray(sincos_table(shape), jnp.float32)


def depends_on_key(key, shape, dtype=jnp.float32):
    return jnp.asarray(sincos_table(shape), dtype) + 1e-3 * jax.random.normal(key, shape, dtype)


def wrong_table(key, shape, dtype=jnp.float32):
    return jnp.asarray(np.roll(sincos_table(shape), 1, axis=1), dtype)  # positions off by one


def statuses(report):
    return {(v.property, v.case.dtype): v.status for v in report.verdicts}


def test_a_sinusoidal_table_conforms_in_float32_and_bfloat16():
    report = initcheck.check(
        sinusoidal,
        laws.Deterministic(sincos_table),
        shapes=[SHAPE],
        dtypes=["float32", "bfloat16"],
        properties=["contract", "determinism", "key_sensitivity", "structure"],
    )
    assert report.passed, report.failure_text()
    assert statuses(report)[("structure", "bfloat16")] == "pass"


def test_ulps_say_how_close_a_table_computed_in_float32_must_be():
    law = laws.Deterministic(sincos_table, ulps=1)
    strict = initcheck.check(sinusoidal_in_float32, law, shapes=[SHAPE], properties=["structure"])
    loose = initcheck.check(
        sinusoidal_in_float32, laws.Deterministic(sincos_table, ulps=64), shapes=[SHAPE], properties=["structure"]
    )
    assert not strict.passed and "ulp at the table's largest magnitude" in strict.verdicts[0].message
    assert loose.passed, loose.failure_text()


@pytest.mark.parametrize(
    "init,failing,text",
    [
        (ignores_dtype, ("contract", "bfloat16"), "returned dtype float32, expected bfloat16"),
        (depends_on_key, ("key_sensitivity", "float32"), "deterministic, but outputs differ between keys"),
        (wrong_table, ("structure", "float32"), "differ from the table"),
    ],
)
def test_tables_that_break_their_promise_fail(init, failing, text):
    report = initcheck.check(
        init,
        laws.Deterministic(sincos_table),
        shapes=[SHAPE],
        dtypes=["float32", "bfloat16"],
        properties=["contract", "key_sensitivity", "structure"],
    )
    assert statuses(report)[failing] == "fail"
    assert text in next(v.message for v in report.verdicts if (v.property, v.case.dtype) == failing)


def test_an_array_table_and_its_shape():
    table = sincos_table(SHAPE)
    law = laws.Deterministic(table)
    assert law.error_reason((1, 32, 32), "float32") == f"the table has shape {SHAPE}, not (1, 32, 32)"
    assert initcheck.check(sinusoidal, law, properties=["structure"]).passed  # shapes default to the table's


def test_declared_with_expects_and_audited_in_a_model():
    init = initcheck.expects(laws.Deterministic(sincos_table, ulps=1))(sinusoidal)

    class Embed(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x + self.param("pos_embedding", init, (1, x.shape[1], x.shape[2]))

    report = initcheck.audit(Embed(), jnp.ones((2, 64, 32)), rng=0)
    assert report.result == "pass", report.failure_text()
    structure = next(v for v in report.verdicts if v.property == "structure")
    assert structure.status == "pass" and "Deterministic(" in structure.message


def test_the_law_syntax_names_the_table_function():
    law = parse_law('deterministic("tests.corpus.linen_models:sincos_table", ulps=2)')
    assert isinstance(law, laws.Deterministic) and law.expected is sincos_table and law.ulps == 2
    assert repr(law) == "Deterministic('tests.corpus.linen_models:sincos_table', ulps=2)"
    assert parse_law(repr(law)) == law
    with pytest.raises(LawSyntaxError, match='takes the table function as "MODULE:ATTR"'):
        parse_law("deterministic(1.0)")
    with pytest.raises(LawSyntaxError, match="has no attribute 'nope'"):
        parse_law('deterministic("tests.corpus.linen_models:nope")')


@pytest.mark.parametrize(
    "args,error,match",
    [
        ((sincos_table,), None, None),
        ((sincos_table, -1), ValueError, "ulps=-1 must be an int >= 0"),
        ((sincos_table, 1.5), ValueError, "ulps=1.5 must be an int >= 0"),
        (("not a table",), TypeError, "must be a callable"),
        ((np.array([1.0, np.nan]),), ValueError, "NaN or inf"),
    ],
)
def test_bad_arguments_are_refused_with_the_fix(args, error, match):
    if error is None:
        laws.Deterministic(*args)
        return
    with pytest.raises(error, match=match):
        laws.Deterministic(*args)
