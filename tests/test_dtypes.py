"""Dtype facts: resolutions, the 16-bit value tables, conversions."""

import jax.numpy as jnp
import numpy as np
import pytest

from initcheck import _dtypes, laws
from initcheck._properties.precision import rounded_law_cdf


@pytest.mark.parametrize(
    "dtype, bits", [("bfloat16", 7), ("float16", 10), ("float32", 23), ("float64", 52), ("complex64", 23)]
)
def test_mantissa_bits(dtype, bits):
    assert _dtypes.mantissa_bits(dtype) == bits and _dtypes.resolution(dtype) == 2.0**-bits


def test_representable_values_are_every_finite_16_bit_value():
    bf16 = _dtypes.representable_values("bfloat16")
    assert bf16.size == 2**16 - 2 * 2**7 - 1  # minus inf/nan patterns (2 * 128) and the second zero
    assert np.all(np.diff(bf16) > 0) and bf16.max() == float(jnp.finfo(jnp.bfloat16).max)
    with pytest.raises(ValueError, match="dtype=float32 is not a 16-bit float dtype"):
        _dtypes.representable_values("float32")


def test_rounded_law_matches_rounding_a_large_sample():
    values, cdf = rounded_law_cdf(laws.Normal(1.0).element_law((1,), "float16"), "float16")
    rng = np.random.default_rng(0)
    x = np.sort(rng.standard_normal(10**6).astype(np.float16).astype(np.float64))
    empirical = np.searchsorted(x, values, side="right") / x.size
    assert np.max(np.abs(empirical - cdf)) < 3e-3


def test_conversions_and_errors():
    assert _dtypes.to_float64(jnp.ones(3, jnp.bfloat16)).dtype == np.float64
    assert _dtypes.real_part("complex64") == np.float32 and _dtypes.is_low_precision("float16")
    assert _dtypes.is_inexact("bfloat16") and not _dtypes.is_inexact("int32")
    with pytest.raises(TypeError, match="dtype='float17' is not a dtype"):
        _dtypes.canonical("float17")
