"""Shapes a law supports, and whole JAX initializer configurations paired with their law."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from initcheck import inits, laws
from initcheck._frameworks import flax_laws, haiku_laws
from initcheck._frameworks.jax_laws import PRESETS as _PRESETS
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
        base = st.integers(1, 3).flatmap(
            lambda d: conv_shapes(
                spatial_dims=d, channel_sides=(1, 2, 4, 8, 16, 32), max_elements=min(max_elements, 2**13)
            )
        )
        base = base.filter(lambda s: s[-2] <= s[-1])
    elif isinstance(law, laws.Deterministic) and law.array is not None:
        return st.just(law.array.shape)
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


JAX_BUILDERS = (
    "constant",
    "zeros",
    "ones",
    "normal",
    "uniform",
    "truncated_normal",
    "variance_scaling",
    "orthogonal",
    "delta_orthogonal",
    *_PRESETS,
)


def _names(names, known: Sequence[str], where: str) -> list[str]:
    chosen = sorted(known if names is None else names)
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        raise InvalidArgument(
            f"names={names!r}: {unknown or 'none'} not builders of {where}; choose from {', '.join(known)}"
        )
    return chosen


@st.composite
def jax_initializers(draw, *, names=None, module=None):
    """``(name, init, law)`` for every public builder of ``jax.nn.initializers`` (or of ``module``,
    e.g. ``flax.linen.initializers``), with drawn parameters (scales, fan modes, distributions,
    axis layouts). ``names`` restricts the builders."""
    ji = jax.nn.initializers if module is None else module
    name = draw(st.sampled_from(_names(names, JAX_BUILDERS, "jax.nn.initializers")))
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
        return (
            f"truncated_normal({std}, lower={lower}, upper={upper})",
            ji.truncated_normal(std, lower=lower, upper=upper),
            laws.TruncatedNormal(std, lower, upper),
        )
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
    label = (
        f"{name}({', '.join(repr(a) for a in args) if name == 'variance_scaling' else ''}"
        + "".join(f", {k}={v!r}" for k, v in layout.items())
        + ")"
    )
    return label.replace("(, ", "("), init, laws.VarianceScaling(*args, **layout)


@st.composite
def flax_initializers(draw, *, names=None, module=None):
    """``(name, init, law)`` for Flax's initializers (``flax.linen.initializers`` or ``module``):
    JAX's builders, which Flax re-exports, plus ``zeros_init()`` and ``ones_init()``."""
    mod = flax_laws.initializer_modules()[0][1] if module is None else module
    name = draw(st.sampled_from(_names(names, JAX_BUILDERS + ("zeros_init", "ones_init"), "flax initializers")))
    if name in ("zeros_init", "ones_init"):
        return f"{name}()", getattr(mod, name)(), laws.Constant(0.0 if name == "zeros_init" else 1.0)
    return draw(jax_initializers(names=[name], module=mod))


HAIKU_BUILDERS = haiku_laws.CLASSES


@st.composite
def haiku_initializers(draw, *, names=None):
    """``(name, init, law)`` for every class of ``hk.initializers``, with drawn parameters
    (VarianceScaling with ``fan_in_axes`` and Haiku's fan rules, Orthogonal with ``axis``, ...)."""
    hi = haiku_laws.initializers()
    name = draw(st.sampled_from(_names(names, HAIKU_BUILDERS, "hk.initializers")))
    if name == "Constant":
        value = draw(st.sampled_from([-1.5, 0.0, 0.1, 3.0]))
        return f"Constant({value})", hi.Constant(value), laws.Constant(value)
    if name == "RandomNormal":
        std, mean = draw(_scales), draw(st.sampled_from([0.0, 0.5, -2.0]))
        return f"RandomNormal({std}, {mean})", hi.RandomNormal(std, mean), laws.Normal(std, mean)
    if name == "RandomUniform":
        low, high = draw(st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (-0.05, 0.05), (2.0, 3.5)]))
        return f"RandomUniform({low}, {high})", hi.RandomUniform(low, high), laws.Uniform(low, high)
    if name == "TruncatedNormal":
        std, mean = draw(_scales), draw(st.sampled_from([0.0, 0.5]))
        lower, upper = draw(st.sampled_from([(-2.0, 2.0), (-1.0, 3.0), (0.0, 1.5)]))
        return (
            f"TruncatedNormal({std}, {mean}, {lower}, {upper})",
            hi.TruncatedNormal(std, mean, lower, upper),
            laws.TruncatedNormal(std, lower, upper, mean),
        )
    if name == "UniformScaling":
        scale = draw(_scales)
        return (
            f"UniformScaling({scale})",
            hi.UniformScaling(scale),
            laws.VarianceScaling(scale**2, "fan_in", "uniform", fans="haiku_input_size"),
        )
    if name in ("Orthogonal", "Identity"):
        scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
        if name == "Identity":
            return f"Identity({scale})", hi.Identity(scale), laws.Identity(scale)
        axis = draw(st.sampled_from([-1, 0]))
        return f"Orthogonal({scale}, axis={axis})", hi.Orthogonal(scale, axis), laws.Orthogonal(scale, axis)
    scale, mode = draw(_scales), draw(st.sampled_from(["fan_in", "fan_out", "fan_avg"]))
    distribution = draw(st.sampled_from(laws.DISTRIBUTIONS))
    fan_in_axes = draw(st.sampled_from([None, (0,), (0, 1)]))
    return (
        f"VarianceScaling({scale}, {mode!r}, {distribution!r}, fan_in_axes={fan_in_axes})",
        hi.VarianceScaling(scale, mode, distribution, fan_in_axes),
        laws.VarianceScaling(scale, mode, distribution, fans="haiku", fan_in_axes=fan_in_axes),
    )


INITCHECK_BUILDERS = (
    "variance_scaling",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "torch_default_weight",
    "torch_default_bias",
    "trunc_normal",
    "scaled_normal",
    "threshold_uniform",
    "sparse",
    "dirac",
    "eye",
    "keras_default",
    "keras_embedding",
    "mxnet_default",
    "normal",
    "uniform",
)


@st.composite
def initcheck_initializers(draw, *, names=None):
    """``(name, init, law)`` for every builder of ``initcheck.inits``, with drawn parameters
    (PyTorch's ``a``, mode and nonlinearity, gains, bounds, sparsity, groups)."""

    name = draw(st.sampled_from(_names(names, INITCHECK_BUILDERS, "initcheck.inits")))
    builder = getattr(inits, name)
    if name == "variance_scaling":
        kwargs = {
            "scale": draw(_scales),
            "mode": draw(fan_modes()),
            "distribution": draw(st.sampled_from(laws.DISTRIBUTIONS)),
        }
        kwargs.update(draw(_layout()))
    elif name in ("kaiming_uniform", "kaiming_normal"):
        nonlinearity = draw(st.sampled_from(["leaky_relu", "relu", "tanh", "linear", "selu", "sigmoid"]))
        kwargs = {
            "a": draw(st.sampled_from([0.0, 0.01, 0.2, math.sqrt(5)])),
            "mode": draw(st.sampled_from(["fan_in", "fan_out"])),
            "nonlinearity": nonlinearity,
        }
    elif name in ("xavier_uniform", "xavier_normal"):
        kwargs = {"gain": draw(st.sampled_from([1.0, 5 / 3, math.sqrt(2), 0.5]))}
    elif name == "torch_default_bias":
        kwargs = {"fan_in": draw(st.sampled_from([1, 3, 64, 1000]))}
    elif name == "trunc_normal":
        mean, std = draw(st.sampled_from([0.0, 1.0])), draw(_scales)
        a, b = draw(st.sampled_from([(-2.0, 2.0), (-1.0, 3.0), (0.0, 1.0)]))
        kwargs = {"mean": mean, "std": std, "a": mean + a * std, "b": mean + b * std}
    elif name == "scaled_normal":
        kwargs = {"init_scale": draw(_scales)}
    elif name == "sparse":
        kwargs = {"sparsity": draw(st.sampled_from([0.0, 0.1, 0.5, 0.9])), "std": draw(_scales)}
    elif name == "dirac":
        kwargs = {"groups": draw(st.sampled_from([1, 2]))}
    elif name == "normal":
        kwargs = {"std": draw(_scales), "mean": draw(st.sampled_from([0.0, -1.0]))}
    elif name == "uniform":
        kwargs = dict(zip(("low", "high"), draw(st.sampled_from([(-0.1, 0.1), (0.0, 1.0), (2.0, 3.5)]))))
    else:
        kwargs = {}
    init = builder(**kwargs)
    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return label, init, init.__initcheck_law__
