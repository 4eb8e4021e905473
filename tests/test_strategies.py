"""Strategies: valid draws, and argument errors that name the value and the fix."""

import math

import jax
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from initcheck import _fans, laws
from initcheck import strategies as ics


@given(ics.weight_shapes(min_dims=2, max_dims=4, max_elements=4096))
def test_weight_shapes_respect_their_bounds(shape):
    assert 2 <= len(shape) <= 4 and math.prod(shape) <= 4096 and set(shape) <= set(ics.SIDES)


@given(ics.conv_shapes(spatial_dims=3))
def test_conv_shapes(shape):
    assert len(shape) == 5 and set(shape[:3]) <= {1, 2, 3, 5}


@given(st.data())
def test_axis_layouts_are_consistent_with_the_shape(data):
    shape = data.draw(ics.weight_shapes(min_dims=2, max_dims=5, sides=(2, 3)))
    layout = data.draw(ics.axis_layouts(shape))
    fan_in, fan_out = _fans.jax_fans(shape, **layout)
    assert fan_in >= 2 and fan_out >= 2


@given(ics.keys())
def test_keys_are_legacy_or_typed_of_the_three_impls(key):
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        assert str(jax.random.key_impl(key)) in ("threefry2x32", "rbg", "unsafe_rbg")
    else:
        assert key.dtype == "uint32" and key.shape in ((2,), (4,))


@given(ics.jax_initializers())
def test_jax_initializer_configurations_come_with_a_law(config):
    label, init, law = config
    assert callable(init) and isinstance(law, laws.Law) and label


@given(
    st.sampled_from(
        [
            laws.Orthogonal(),
            laws.DeltaOrthogonal(),
            laws.VarianceScaling(1, "fan_in", "normal", in_axis=(0, 1), out_axis=3),
        ]
    ).flatmap(lambda law: st.tuples(st.just(law), ics.shapes_for(law)))
)
def test_shapes_for_draws_only_supported_shapes(law_shape):
    law, shape = law_shape
    assert law.error_reason(shape, "float32") is None and math.prod(shape) > 0


def test_dtypes():
    assert set(map(str, ics.float_dtypes(x64=False).elements)) == {"float32", "bfloat16", "float16"}
    assert {str(d) for d in ics.complex_dtypes(x64=True).elements} == {"complex64", "complex128"}


BAD = [
    (lambda: ics.weight_shapes(min_dims=3, max_dims=2), r"min_dims=3 is larger than max_dims=2; raise max_dims"),
    (lambda: ics.weight_shapes(min_dims=-1), r"min_dims=-1 must be >= 0"),
    (lambda: ics.weight_shapes(max_elements=0), r"max_elements=0 must be a positive int"),
    (lambda: ics.weight_shapes(sides=()), r"sides=\(\) must be a non-empty sequence"),
    (lambda: ics.weight_shapes(min_dims=4, sides=(8,), max_elements=100), r"max_elements=100 is too small"),
    (lambda: ics.conv_shapes(spatial_dims=4), r"spatial_dims=4 must be 1, 2 or 3"),
    (lambda: ics.keys(impls=("philox",)), r"impls=\('philox',\) must be a non-empty subset"),
    (lambda: ics.axis_layouts((3,)), r"shape=\(3,\) has 1 axes; axis layouts need at least 2"),
]


@pytest.mark.parametrize("make, pattern", BAD, ids=[b[1][:25] for b in BAD])
def test_bad_arguments(make, pattern):
    with pytest.raises(InvalidArgument, match=pattern):
        make()
