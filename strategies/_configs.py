"""Shapes a law supports, and whole JAX initializer configurations paired with their law."""

from __future__ import annotations

import jax
from hypothesis import strategies as st

from initcheck import laws
from initcheck._catalog import JAX_PRESETS as _PRESETS
from initcheck.strategies._core import axis_layouts, conv_shapes, fan_modes, weight_shapes


def _axes(axis) -> tuple[int, ...]:
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _min_rank(law: laws.VarianceScaling) -> int:
    axes = _axes(law.in_axis) + _axes(law.out_axis) + _axes(law.batch_axis)
    return max([2, len(axes)] + [a + 1 if a >= 0 else -a for a in axes])


def shapes_for(law, *, max_elements: int = 2**16) -> st.SearchStrategy[tuple[int, ...]]:
    """Non-empty shapes on which ``law`` is defined (no documented error), sized for sampling."""
    law = laws.as_law(law)
    if isinstance(law, laws.VarianceScaling) and law.fans == "jax":
        rank = _min_rank(law)
        base = weight_shapes(min_dims=rank, max_dims=rank + 1, max_elements=max_elements)
    elif isinstance(law, laws.VarianceScaling):
        base = weight_shapes(min_dims=1, max_dims=4, max_elements=max_elements)
    elif isinstance(law, laws.Orthogonal):
        base = weight_shapes(min_dims=2, max_dims=3, max_elements=min(max_elements, 2**13))
    elif isinstance(law, laws.DeltaOrthogonal):
        base = st.integers(1, 3).flatmap(lambda d: conv_shapes(
            spatial_dims=d, channel_sides=(1, 2, 4, 8, 16, 32), max_elements=min(max_elements, 2**13)))
        base = base.filter(lambda s: s[-2] <= s[-1])
    elif isinstance(law, laws.Identity):
        base = weight_shapes(min_dims=2, max_dims=3, max_elements=max_elements)
    else:
        base = weight_shapes(min_dims=1, max_dims=3, max_elements=max_elements)
    return base.filter(lambda s: law.error_reason(s, "float32") is None)


_scales = st.sampled_from([0.01, 0.5, 1.0, 2.0, 3.0])


@st.composite
def _layout(draw) -> dict:
    rank = draw(st.integers(2, 4))
    if draw(st.booleans()):
        return {}
    return draw(axis_layouts((1,) * rank))


@st.composite
def jax_initializers(draw, *, names=None):
    """``(name, init, law)`` for every public builder of ``jax.nn.initializers``, with drawn
    parameters (scales, fan modes, distributions, axis layouts). ``names`` restricts the builders."""
    ji = jax.nn.initializers
    choices = sorted(names or ["constant", "zeros", "ones", "normal", "uniform", "truncated_normal",
                               "variance_scaling", "orthogonal", "delta_orthogonal", *_PRESETS])
    name = draw(st.sampled_from(choices))
    if name in ("zeros", "ones"):
        return name, getattr(ji, name), laws.Constant(0.0 if name == "zeros" else 1.0)
    if name == "constant":
        value = draw(st.sampled_from([-1.5, 0.0, 0.1, 3.0]))
        return f"constant({value})", ji.constant(value), laws.Constant(value)
    if name == "normal":
        std = draw(_scales)
        return f"normal({std})", ji.normal(std), laws.Normal(std)
    if name == "uniform":
        scale = draw(_scales)
        return f"uniform({scale})", ji.uniform(scale), laws.Uniform(0.0, scale)
    if name == "truncated_normal":
        std = draw(_scales)
        lower, upper = draw(st.sampled_from([(-2.0, 2.0), (-1.0, 3.0), (0.0, 1.5)]))
        return (f"truncated_normal({std}, lower={lower}, upper={upper})",
                ji.truncated_normal(std, lower=lower, upper=upper), laws.TruncatedNormal(std, lower, upper))
    if name in ("orthogonal", "delta_orthogonal"):
        scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
        column_axis = draw(st.sampled_from([-1, 0])) if name == "orthogonal" else -1
        law = (laws.Orthogonal if name == "orthogonal" else laws.DeltaOrthogonal)(scale, column_axis)
        return f"{name}({scale}, column_axis={column_axis})", getattr(ji, name)(scale, column_axis), law
    layout = draw(_layout())
    if name == "variance_scaling":
        scale, mode = draw(_scales), draw(fan_modes())
        distribution = draw(st.sampled_from(laws.DISTRIBUTIONS))
        args = (scale, mode, distribution)
        init = ji.variance_scaling(*args, **layout)
    else:
        args = _PRESETS[name]
        init = getattr(ji, name)(**layout)
    label = f"{name}({', '.join(repr(a) for a in args) if name == 'variance_scaling' else ''}" + \
        "".join(f", {k}={v!r}" for k, v in layout.items()) + ")"
    return label.replace("(, ", "("), init, laws.VarianceScaling(*args, **layout)
