"""Configurations of the optional frameworks' initializers (Keras 3 on JAX, Equinox's layers),
each paired with its law like the other frameworks' strategies, and the catalog's frameworks all
together (``catalog_initializers``)."""

from __future__ import annotations

import dataclasses
import inspect
import math

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from initcheck import _frameworks, adapters, laws
from initcheck._frameworks import FRAMEWORKS, equinox_layers
from initcheck._frameworks.keras_laws import import_keras, keras_law
from initcheck.strategies._configs import (
    _names,
    _scales,
    flax_initializers,
    haiku_initializers,
    initcheck_initializers,
    jax_initializers,
)

KERAS_BUILDERS = (
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "STFT",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
)


def keras_initializers(*, names=None) -> st.SearchStrategy:
    """``(name, init, law)`` for every class of ``keras.initializers`` with drawn parameters; ``init``
    is in canonical form (``initcheck.adapters.from_keras``). Keras is imported here, not while
    drawing: its first import seeds ``rich`` from Python's global ``random``, which Hypothesis
    forbids inside a strategy."""
    ki = import_keras().initializers
    return _keras_configs(ki, _names(names, KERAS_BUILDERS, "keras.initializers"))


@st.composite
def _keras_configs(draw, ki, chosen):
    name = draw(st.sampled_from(chosen))
    kwargs: dict = {}
    if name == "Constant":
        kwargs = {"value": draw(st.sampled_from([-1.5, 0.0, 0.1, 3.0]))}
    elif name == "RandomNormal":
        kwargs = {"mean": draw(st.sampled_from([0.0, 0.5])), "stddev": draw(_scales)}
    elif name == "TruncatedNormal":
        kwargs = {"mean": draw(st.sampled_from([0.0, -1.0])), "stddev": draw(_scales)}
    elif name == "RandomUniform":
        kwargs = dict(zip(("minval", "maxval"), draw(st.sampled_from([(-0.05, 0.05), (0.0, 1.0), (2.0, 3.5)]))))
    elif name == "VarianceScaling":
        kwargs = {
            "scale": draw(_scales),
            "mode": draw(st.sampled_from(["fan_in", "fan_out", "fan_avg"])),
            "distribution": draw(st.sampled_from(["truncated_normal", "untruncated_normal", "uniform"])),
        }
    elif name in ("Orthogonal", "Identity"):
        kwargs = {"gain": draw(st.sampled_from([1.0, 0.5, 2.0]))}
    elif name == "STFT":
        kwargs = {
            "side": draw(st.sampled_from(["real", "imag"])),
            "window": draw(st.sampled_from(["hann", "hamming", None])),
            "scaling": draw(st.sampled_from(["density", "spectrum", None])),
            "periodic": draw(st.booleans()),
        }
    cls = getattr(ki, name)
    if "seed" in inspect.signature(cls).parameters:
        # from_keras seeds every call from the JAX key; a fixed seed here keeps Keras from drawing a
        # default one from Python's global random module inside the strategy
        kwargs_with_seed = {**kwargs, "seed": 0}
    else:
        kwargs_with_seed = kwargs
    init = cls(**kwargs_with_seed)
    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return label, adapters.from_keras(init), keras_law(name, init)


@st.composite
def equinox_initializers(draw, *, layers=None):
    """``(name, init, law)`` for an array of an ``equinox.nn`` layer (``layers`` restricts them):
    ``init(key, shape, dtype)`` builds the layer and returns the array; the biases of ``Linear``
    and ``Conv2d`` with a drawn ``in_features`` / ``in_channels`` and window."""
    _frameworks.require(["equinox"])
    arrays = equinox_layers.layer_arrays()
    known = sorted({a.layer for a in arrays})
    chosen = _names(layers, known, "equinox.nn")
    array = draw(st.sampled_from([a for a in arrays if a.layer in chosen]))
    if array.layer == "Linear" and array.path == "bias":
        fan = draw(st.sampled_from([1, 3, 64, 1000]))
        array = dataclasses.replace(array, options={"in_features": fan}, law=_uniform(fan))
    elif array.layer == "Conv2d" and array.path == "bias":
        channels, window = draw(st.sampled_from([1, 3, 16])), draw(st.sampled_from([1, 3, 5]))
        options = {"in_channels": channels, "kernel_size": window}
        array = dataclasses.replace(array, options=options, law=_uniform(channels * window * window))
    return array.id, array.initializer(), array.law


def _uniform(fan: int) -> laws.Law:
    return laws.Uniform(-1 / math.sqrt(fan), 1 / math.sqrt(fan))


def catalog_initializers(*, frameworks=None) -> st.SearchStrategy:
    """``(name, init, law)`` drawn from every builder of the catalog's frameworks (default: every
    installed one): JAX, Flax, Haiku, initcheck's own, Equinox's layers and Keras."""
    chosen = _frameworks.parse(frameworks)
    if not _frameworks.valid(chosen):
        raise InvalidArgument(f"frameworks={frameworks!r}: choose from {', '.join(FRAMEWORKS)}")
    _frameworks.require(chosen)
    by_framework = {
        "jax": jax_initializers,
        "flax": flax_initializers,
        "haiku": haiku_initializers,
        "initcheck": initcheck_initializers,
        "equinox": equinox_initializers,
        "keras": keras_initializers,
    }
    return st.one_of([by_framework[f]() for f in chosen])
