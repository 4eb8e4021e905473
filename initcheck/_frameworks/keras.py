"""Keras 3 models (JAX backend): every weight, the initializer its layer declares for it, and what
that initializer gives again.

Keras seeds a random initializer object once, when it is made: with the user's int seed or, unseeded,
with an int drawn from Python's ``random`` module (``keras.utils.set_random_seed`` fixes it). An
int seed ``s`` draws from the JAX key ``[s, 0]`` (see ``initcheck.adapters.from_keras``) and, as
Keras documents, gives the same values at every call. So a weight's key is ``[s, 0]`` of its
initializer, its expected value is that initializer called again on the weight's shape and dtype,
and two weights whose initializers hold one seed share their key. An initializer seeded with a
``keras.random.SeedGenerator`` advances its state at each draw: its key is not recoverable, and the
derivation is skipped with the reason (its law is still checked).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import adapters, laws
from initcheck._entries import CatalogEntry, real_dtypes, wide_dtypes
from initcheck._frameworks._protocol import IGNORED_KEY, Recording, Setting
from initcheck._frameworks.keras_laws import (
    KERAS_LOW_PRECISION_SAMPLING,
    KERAS_PRESETS,
    KERAS_STFT_INPUT_CHANNELS,
    STFT_SHAPES,
    import_keras,
    keras_law,
)
from initcheck._record import Forward, Model, NoForward, Parameter, guarded, tracked

ATTRIBUTE = {  # weight name -> the layer attribute that holds its initializer, where not "<name>_initializer"
    "recurrent_kernel": "recurrent_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
}
SEED_GENERATOR = (
    "its initializer is seeded with a keras.random.SeedGenerator, whose state advances with each draw: "
    "the key it drew with is not recoverable (seed it with an int to have its derivation checked)"
)


def is_model(model) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Layer)


def build(model, inputs, kwargs) -> None:
    """Build ``model`` on ``inputs`` (one call) unless it is built already."""
    if model.built:
        return
    if not inputs:
        raise TypeError(
            f"model={type(model).__name__}(...) is a Keras model that is not built yet; pass its inputs "
            "(initcheck.audit(model, x)) or give it a keras.Input"
        )
    model(*inputs, **dict(kwargs))


def _builtin(init) -> bool:
    return type(init).__module__.startswith("keras.") and hasattr(
        sys.modules["keras"].initializers, type(init).__name__
    )


def law_of(init) -> laws.Law | None:
    """The law a Keras initializer object promises: by its class and config for Keras's own, the
    ``@initcheck.expects`` law for a user's, else None."""
    declared = getattr(init, "__initcheck_law__", None) or getattr(type(init), "__initcheck_law__", None)
    if declared is not None:
        return declared
    if _builtin(init):
        return keras_law(type(init).__name__, init)
    return None


def _describe(init) -> str:
    if _builtin(init):
        config = {k: v for k, v in init.get_config().items() if v is not None}
        return f"keras.initializers.{type(init).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"
    return getattr(init, "__qualname__", None) or type(init).__qualname__


def key_of(init):
    """The JAX key an int-seeded Keras initializer draws with, ``[seed, 0]``; None without a seed."""
    seed = getattr(init, "seed", None)
    if isinstance(seed, int):
        return jax.random.wrap_key_data(jnp.array([seed, 0], jnp.uint32))
    return None


def _declared(layer, name: str):
    """The initializer ``layer`` declares for its weight ``name`` (``DepthwiseConv2D`` names its
    weight ``kernel`` but its initializer ``depthwise_initializer``)."""
    for attribute in (ATTRIBUTE.get(name, f"{name}_initializer"), "depthwise_initializer" if name == "kernel" else ""):
        init = getattr(layer, attribute, None) if attribute else None
        if init is not None:
            return init
    return None


def _einsum_initializer(layer, init):
    """The initializer ``EinsumDense.build`` draws its kernel with: a variance-scaling one without
    axes is cloned (same seed) with the einsum's input and output axes, which decide its fans."""
    from keras.src.initializers.random_initializers import VarianceScaling
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    if not isinstance(init, VarianceScaling) or (init.input_axes is not None and init.output_axes is not None):
        return init
    input_shape = next(iter(layer._build_shapes_dict.values()))
    *_, inputs, outputs = _analyze_einsum_string(
        layer.equation, layer.bias_axes, input_shape, layer.partial_output_shape
    )
    return layer._update_kernel_initializer(inputs, outputs)


def lstm_forget_bias(shape, dtype):
    """``LSTMCell(unit_forget_bias=True)``'s bias with its default zeros initializer: zeros but for
    ones on the forget gate (the second of the four gates)."""
    units = shape[-1] // 4
    return np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)]).astype(np.dtype(dtype))


def _forget_bias(layer, variable, init, common: dict) -> Parameter | None:
    """The bias of an ``LSTMCell`` with ``unit_forget_bias``: Keras draws it with its own function,
    not with ``bias_initializer``."""
    if type(layer).__name__ != "LSTMCell" or variable.name != "bias" or not getattr(layer, "unit_forget_bias", False):
        return None
    if type(init).__name__ != "Zeros":
        return Parameter(
            **{**common, "law": None},
            underived="unit_forget_bias adds ones on the forget gate to its bias_initializer's draw: "
            "give its law with expect=",
        )
    expected = lstm_forget_bias(tuple(variable.shape), variable.dtype)
    return Parameter(
        **{**common, "law": laws.Deterministic(lstm_forget_bias, ulps=0)},
        expected=expected,
        derivation="unit_forget_bias: zeros, and ones on the forget gate (no key)",
    )


def _collection(variable) -> str:
    return "params" if variable.trainable else "state"


def _value(layer, variable) -> Parameter:
    path, value, collection = variable.path, variable.value, _collection(variable)
    init = _declared(layer, variable.name)
    if init is not None and variable.name == "kernel" and type(layer).__name__ == "EinsumDense":
        init = _einsum_initializer(layer, init)
    if init is None:
        return Parameter(
            path=path,
            value=value,
            declared=None,
            collection=collection,
            underived=f"{type(layer).__name__} has no {variable.name}_initializer attribute: initcheck cannot "
            "tell which initializer made it; give its law with expect=",
        )
    law = law_of(init)
    seed = getattr(init, "seed", None)
    declared = _describe(init)
    common = dict(path=path, value=value, declared=declared, collection=collection, law=law, drawn_by=init)
    if (forget := _forget_bias(layer, variable, init, common)) is not None:
        return forget
    if seed is not None and not isinstance(seed, int):
        return Parameter(**common, underived=SEED_GENERATOR)
    if not _builtin(init) and not isinstance(seed, int):
        return Parameter(**common, underived="a user's initializer without an int seed: its key cannot be derived")
    key = key_of(init)
    expected = init(tuple(variable.shape), dtype=variable.dtype)
    derivation = f"the key [seed={seed}, 0] of its initializer" if key is not None else "no key (a constant)"
    return Parameter(**common, expected=expected, key=key, derivation=derivation)


def record(model, inputs, kwargs=None) -> list[Parameter]:
    """Every weight of ``model`` (built on ``inputs`` if it is not built), by the layer that owns it."""
    build(model, inputs, kwargs or {})
    values = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            values.append(
                guarded(
                    variable.path,
                    variable.value,
                    _collection(variable),
                    functools.partial(_value, layer, variable),
                )
            )
    return values


def _forward(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    """A Keras model's ``stateless_call`` on ``call_args`` with its weights replaced by the traced values."""
    if call_args is None:
        raise NoForward("pass the Keras model's forward inputs as call_args=(x,) or as the audit's inputs")
    by_path = {p.path: p for p in parameters}
    trainable = [v.path for v in built.trainable_variables]
    frozen = [v.path for v in built.non_trainable_variables]
    current = {v.path: v.value for v in built.variables}
    keys = [(by_path[n].collection, n) for n in trainable + frozen if n in by_path and tracked(by_path[n])]

    def fn(values, inputs):
        now = {**current, **{path: value for (_, path), value in zip(keys, values)}}
        return built.stateless_call([now[n] for n in trainable], [now[n] for n in frozen], *inputs, **call_kwargs)[0]

    return Forward(fn, keys, [current[path] for _, path in keys], tuple(call_args))


class Keras:
    """Keras 3 (JAX backend): a ``keras.Layer`` or ``keras.Model``, built on the inputs unless built.
    Keras seeds its initializers itself, so the audit's ``rng`` is not used, and a built model
    cannot be made again from another root key."""

    name, family, reinitializes = "keras", "keras", False
    record_abstract: Any = None  # no abstract path yet: a model over the memory budget is refused
    settings: tuple[Setting, ...] = ()

    def recognises(self, model) -> bool:
        return is_model(model)

    def refusal(self, model) -> str | None:
        return None

    def describe(self, model) -> str:
        return f"keras {type(model).__qualname__} {model.name!r}"

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        return Recording(record(target.model, target.args, target.kwargs), target.model)

    def forward(self, target: Model, recording: Recording) -> Forward:
        args = target.call_args if target.call_args is not None else (target.args or None)
        return _forward(recording.built, recording.parameters, args, target.call_kwargs)

    def values(self, target: Model) -> dict[str, Any]:
        build(target.model, target.args, target.kwargs)
        return {v.path: v.value for v in target.model.weights}

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        """The weights' shapes once the model is built (Keras builds a model by running it)."""
        build(target.model, target.args, target.kwargs)
        return {
            (_collection(v), v.path): jax.ShapeDtypeStruct(tuple(v.shape), jnp.dtype(v.dtype))
            for v in target.model.weights
        }

    def key_cause(self) -> str:
        return (
            "their initializers hold the same int seed, so they draw from the same key (pass each layer its own "
            "initializer with its own seed, or none: keras.utils.set_random_seed seeds unseeded ones)"
        )

    def ignored_key_cause(self) -> str:
        return IGNORED_KEY


FRAMEWORK = Keras()


def catalog_entries() -> list[CatalogEntry]:
    """Every public initializer of ``keras.initializers`` in its default configuration (and two
    more of ``VarianceScaling``), its law read from the one law table (``keras_laws``)."""
    ki = import_keras().initializers
    real = real_dtypes()
    low = (KERAS_LOW_PRECISION_SAMPLING,)
    two_d = strategies.weight_shapes(min_dims=2, max_dims=2)
    items = [  # (label, init, dtypes, defects, shapes, notes)
        ("Zeros()", ki.Zeros(), real, (), None, ""),
        ("Ones()", ki.Ones(), real, (), None, ""),
        ("Constant(0.5)", ki.Constant(0.5), real, (), None, ""),
        ("RandomNormal()", ki.RandomNormal(), real, low, None, ""),
        ("RandomUniform()", ki.RandomUniform(), real, low, None, ""),
        ("TruncatedNormal()", ki.TruncatedNormal(), real, low, None, ""),
        ("VarianceScaling()", ki.VarianceScaling(), real, low, None, ""),
        (
            "VarianceScaling(2.0, 'fan_out', 'untruncated_normal')",
            ki.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
            real,
            low,
            None,
            "",
        ),
        (
            "VarianceScaling(0.5, 'fan_avg', 'uniform')",
            ki.VarianceScaling(0.5, "fan_avg", "uniform"),
            real,
            low,
            None,
            "",
        ),
        *[(f"{name}()", getattr(ki, name)(), real, low, None, "") for name in KERAS_PRESETS],
        ("Orthogonal()", ki.Orthogonal(), wide_dtypes(), (), None, ""),
        ("Identity()", ki.Identity(), real, (), two_d, "2-D shapes only (Keras raises ValueError on others)"),
        (
            "STFT()",
            ki.STFT(),
            wide_dtypes(),
            (KERAS_STFT_INPUT_CHANNELS,),
            st.sampled_from(STFT_SHAPES),
            "16-bit dtypes: not checked (Keras computes the phase in the dtype, so no table holds there)",
        ),
    ]
    entries = []
    for label, init, dtypes, defects, shapes, notes in items:
        name = label.split("(")[0]
        entries.append(
            CatalogEntry(
                f"keras.initializers.{label}",
                "keras",
                adapters.from_keras(init),
                keras_law(name, init),
                dtypes=dtypes,
                defects=defects,
                configurations=strategies.keras_initializers(names=[name]),
                notes=notes or "complex dtypes: not checked (Keras documents float dtypes for initializers)",
                shapes=shapes,
            )
        )
    return entries
