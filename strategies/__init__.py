"""Hypothesis strategies for initializer testing, importable as `initcheck.strategies`.

They follow `hypothesis.extra.numpy`: keyword-only arguments, `min_*`/`max_*` bounds,
arguments checked up front (`InvalidArgument` naming the value and the fix). Shapes use side
lengths from a small set (`SIDES`) so that a run compiles few distinct shapes, and shrink
towards fewer dimensions and shorter sides.

Examples:
    >>> from initcheck import strategies as ics
    >>> ics.weight_shapes(min_dims=2, max_dims=2).example()  # doctest: +SKIP
    (64, 3)
"""

from initcheck.strategies._configs import (
    flax_initializers,
    haiku_initializers,
    initcheck_initializers,
    jax_initializers,
    shapes_for,
)
from initcheck.strategies._core import (
    SIDES,
    axis_layouts,
    complex_dtypes,
    conv_shapes,
    edge_shapes,
    fan_modes,
    float_dtypes,
    keys,
    weight_shapes,
)
from initcheck.strategies._ecosystem import catalog_initializers, equinox_initializers, keras_initializers

__all__ = [
    "SIDES",
    "axis_layouts",
    "catalog_initializers",
    "complex_dtypes",
    "conv_shapes",
    "edge_shapes",
    "equinox_initializers",
    "fan_modes",
    "flax_initializers",
    "float_dtypes",
    "haiku_initializers",
    "initcheck_initializers",
    "jax_initializers",
    "keras_initializers",
    "keys",
    "shapes_for",
    "weight_shapes",
]
