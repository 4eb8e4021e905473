"""A correct float32 sampler never fails for its generator's resolution, at any size; what is
coarser than it still fails (issue 32, item 2).

JAX's float32 samplers map a 23-bit uniform source, so each value they make carries at least 2^-23
of mass: the atom test allows that much per value, and no less. The keys are fixed (seed 0), the
statistical verdicts use the ci profile (alpha 1e-7 each, about 10 here), so a correct initializer
fails here with probability below 1e-6, and the same run always gives the same verdicts. The
large-shape checks of the issue run under ``-m slow`` (about a minute each on 2 cores)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck import _rounding, laws
from initcheck._properties import _tails

STD = 0.02
LAW = laws.Normal(STD).element_law((2**20,), jnp.float32)  # the law of one element


def _normal(n: int, seed: int = 0) -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(seed), (n,), jnp.float32) * STD, np.float64)


def test_the_generator_quantum_is_2_to_the_minus_23_in_float32_and_none_in_16_bit():
    assert _rounding.generator_quantum(jnp.float32) == 2.0**-23
    assert _rounding.generator_quantum(jnp.bfloat16) == 0.0
    assert _rounding.generator_quantum(jnp.float16) == 0.0
    masses = _rounding.cell_masses(LAW, jnp.float32, np.array([0.0, -5 * STD, 9 * STD]), STD)
    assert masses.min() >= 2.0**-23  # far out in the tail too


def test_a_tail_value_seen_as_often_as_a_23_bit_source_makes_it_is_no_atom():
    # 2^20 draws: each of JAX's 2^23 outputs is expected 1/8 times; a value 5 sd out seen 3 times has
    # P = 3e-4 under the source (10^-30 under the continuous law alone, the old false alarm)
    x = _normal(2**20)
    x[:3] = float(np.float32(-5 * STD))
    result = _tails.atom_test(x, LAW, jnp.float32, [])
    assert result is not None and result.pvalue > 1e-3, result


def test_two_hundred_exact_zeros_in_a_correct_draw_still_fail():
    x = _normal(2**20)
    x[:: 2**20 // 200][:200] = 0.0
    result = _tails.atom_test(x, LAW, jnp.float32, [])
    assert result is not None and result.pvalue < 1e-30 and "values equal to 0" in result.name, result


def _zeroed_normal(key, shape, dtype=jnp.float32):
    values = jax.random.normal(key, shape, dtype) * STD
    return values.reshape(-1).at[:200].set(0.0).reshape(shape)


def _bf16_then_cast(key, shape, dtype=jnp.float32):
    return (jax.random.normal(key, shape, jnp.bfloat16) * STD).astype(dtype)


@pytest.mark.parametrize("init", [_zeroed_normal, _bf16_then_cast], ids=["200-zeros", "bfloat16-cast-to-float32"])
def test_what_is_coarser_than_the_source_fails_distribution(init):
    report = initcheck.check(
        init, laws.Normal(STD), shapes=[(512, 512)], dtypes=["float32"], properties=["distribution"]
    )
    assert [v.status for v in report.verdicts] == ["fail"], report.verdicts


def test_a_sampler_drawn_in_bfloat16_holds_far_more_per_value_than_the_source_allows():
    drawn = jax.random.normal(jax.random.key(0), (2**20,), jnp.bfloat16) * STD
    result = _tails.atom_test(np.asarray(drawn.astype(jnp.float32), np.float64), LAW, jnp.float32, [])
    assert result is not None and result.pvalue < 1e-30 and "values equal to" in result.name, result


def test_a_correct_normal_passes_at_four_million_values():
    report = initcheck.check(
        jax.nn.initializers.normal(STD), laws.Normal(STD), shapes=[(2048, 2048)], dtypes=["float32"]
    )
    assert report.passed, report.failure_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("init", "law", "shape"),
    [
        (jax.nn.initializers.normal(STD), laws.Normal(STD), (32000, 768)),
        (jax.nn.initializers.uniform(STD), laws.Uniform(0.0, STD), (4096, 4096)),
    ],
    ids=["normal-32000x768", "uniform-4096x4096"],
)
def test_jax_samplers_pass_every_property_at_the_sizes_people_train(init, law, shape):
    report = initcheck.check(init, law, shapes=[shape], dtypes=["float32"])
    assert report.passed, report.failure_text()
