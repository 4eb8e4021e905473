"""The catalog's optional frameworks: every public initializer of Keras 3 (JAX backend), and the
default initialization of every array the public Equinox layers create (``_equinox``)."""

from __future__ import annotations

from hypothesis import strategies as st

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import _defects, _equinox, _frameworks, adapters
from initcheck._entries import CatalogEntry, real_dtypes, wide_dtypes
from initcheck._keras import KERAS_PRESETS, STFT_SHAPES, keras_law


def keras_entries() -> list[CatalogEntry]:
    keras = _frameworks.import_keras()
    ki = keras.initializers
    real = real_dtypes()
    low = (_defects.KERAS_LOW_PRECISION_SAMPLING,)
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
            (_defects.KERAS_STFT_INPUT_CHANNELS,),
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


def equinox_entries() -> list[CatalogEntry]:
    _frameworks.require(["equinox"])
    real = real_dtypes()
    entries = []
    for array in _equinox.layer_arrays():
        dtypes = ("float32",) if not array.typed else real
        entries.append(
            CatalogEntry(
                array.id,
                "equinox",
                array.initializer(),
                array.law,
                dtypes=dtypes,
                defects=(_defects.EQUINOX_LOW_PRECISION_SAMPLING,) if array.random else (),
                configurations=strategies.equinox_initializers(layers=[array.layer]),
                notes=_equinox_notes(array),
                shapes=array.shapes,
            )
        )
    return entries


def _equinox_notes(array: _equinox.LayerArray) -> str:
    if not array.typed:
        return f"16-bit dtypes: not checked ({array.layer} takes no dtype: its array is float32)"
    if array.random:
        return "complex dtypes: not checked (Equinox draws the real and imaginary parts independently; no law states that promise)"
    return ""
