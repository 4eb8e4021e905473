"""Keras 3's initializers (``keras.initializers``, JAX backend): the one law table of its classes,
from each object's class and config, written from Keras 3.15.1's documentation and sources, for
the catalog and the audit alike; and Keras imported on the JAX backend."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import scipy.signal

from initcheck import _property_registry as groups
from initcheck import laws
from initcheck._defects import KnownDefect
from initcheck._entries import NO_16BIT_QR
from initcheck._frameworks import FrameworkUnavailable, jax_laws, require

KERAS_DISTRIBUTIONS = {"truncated_normal": "truncated_normal", "untruncated_normal": "normal", "uniform": "uniform"}
STFT_SHAPES = ((8, 1, 5), (16, 1, 9))  # (frame_length, 1, fft_length // 2 + 1): see KERAS_STFT_INPUT_CHANNELS


def keras_law(name: str, init) -> laws.Law:
    """The law a Keras initializer object promises, from its class and config. Keras's fans are
    Haiku's (``compute_fans``: (n, n) for 1-D, receptive field times the last two axes, divided by
    max(1, n)), or, when the config names ``input_axes`` and ``output_axes`` (as ``EinsumDense``
    sets them), the products of those axes."""
    config = init.get_config()
    if name in ("Zeros", "Ones", "Constant"):
        return laws.Constant({"Zeros": 0.0, "Ones": 1.0}.get(name, config.get("value")))
    if name == "RandomNormal":
        return laws.Normal(config["stddev"], config["mean"])
    if name == "RandomUniform":
        return laws.Uniform(config["minval"], config["maxval"])
    if name == "TruncatedNormal":  # jax.random.truncated_normal(-2, 2) * stddev + mean
        return laws.TruncatedNormal(config["stddev"], -2.0, 2.0, config["mean"])
    if name == "Orthogonal":
        return laws.Orthogonal(config["gain"]).refusing(("bfloat16", "float16"), NO_16BIT_QR)
    if name == "Identity":
        return laws.Identity(init.gain)  # (its get_config() leaves the gain out)
    if name == "STFT":
        return laws.Deterministic(stft_table(**config), ulps=stft_ulps(max(s[0] for s in STFT_SHAPES)))
    scale = config.get("scale", 1.0)
    mode = config.get("mode", "fan_in")
    distribution = KERAS_DISTRIBUTIONS[config.get("distribution", "truncated_normal")]
    if name != "VarianceScaling":  # the presets' config holds only the seed and axes
        scale, mode, distribution = KERAS_PRESETS[name]
    inputs, outputs = config.get("input_axes"), config.get("output_axes")
    if inputs is not None and outputs is not None:  # fans from the named axes only (EinsumDense's kernels)
        return laws.VarianceScaling(
            scale, mode, distribution, in_axis=tuple(inputs), out_axis=tuple(outputs), fans="jax"
        )
    return laws.VarianceScaling(scale, mode, distribution, fans="haiku")


KERAS_PRESETS = {  # as documented by keras.initializers
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "LecunNormal": (1.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"),
}


def stft_table(side="real", window="hann", scaling="density", periodic=False):
    """``keras.initializers.STFT``'s documented kernel, in float64 from the definition: for a
    (T, C, K) kernel, phase(t, k) = -2 pi t k / (2 (K - 1)); cos (side 'real') or sin ('imag') of it,
    times the window w(t) over sqrt(sum w^2) ('density') or sum |w| ('spectrum'); the same for every
    input channel."""

    def table(shape, dtype):
        frames, channels, bins = shape
        phase = -2 * np.pi * np.outer(np.arange(frames), np.arange(bins)) / (2 * (bins - 1))
        kernel = np.cos(phase) if side == "real" else np.sin(phase)
        if window is not None:
            w = scipy.signal.get_window(window, frames, periodic) if isinstance(window, str) else np.asarray(window)
            norm = {"density": np.sqrt(np.sum(w**2)), "spectrum": np.sum(np.abs(w))}.get(scaling, 1.0)
            # an all-zero window (a symmetric Hann window of 2 frames) gives 0/0 = NaN, as Keras's own division does
            with np.errstate(invalid="ignore", divide="ignore"):
                kernel = kernel * w[:, None] / norm
        return np.broadcast_to(kernel[:, None, :], (frames, channels, bins))

    table.__qualname__ = f"stft_table(side={side!r}, window={window!r}, scaling={scaling!r}, periodic={periodic!r})"
    return table


def stft_ulps(frames: int) -> int:
    """Keras computes the phase in the dtype: four float32 roundings of a phase up to pi (T - 1)
    move cos and sin by up to 4 pi (T - 1) ulps of 1, then the window product and the norm (a sum
    of T squares) add about 2 T + 8 ulps."""
    return math.ceil(4 * math.pi * (frames - 1) + 2 * frames + 8)


def import_keras():
    """``keras`` on the JAX backend (KERAS_BACKEND=jax unless the user chose one); FrameworkUnavailable
    with the fix when Keras is missing or runs on another backend, since initcheck samples on JAX."""
    require(["keras"])
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras  # lazy: Keras loads only when a Keras target is used

    backend = keras.backend.backend()
    if backend != "jax":
        raise FrameworkUnavailable(
            f"Keras runs on the {backend!r} backend here; initcheck checks Keras on JAX: set the environment "
            "variable KERAS_BACKEND=jax before Keras is imported"
        )
    return keras


KERAS_LOW_PRECISION_SAMPLING = dataclasses.replace(
    jax_laws.LOW_PRECISION_SAMPLING,
    name="keras-low-precision-sampling",
    package="keras",
    last_seen="3.15.1",
    summary="Keras's JAX backend calls jax.random in the requested dtype and inherits its 16-bit "
    "coarseness: " + jax_laws.LOW_PRECISION_SAMPLING.summary,
    reference="https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/jax/random.py "
    "(normal, uniform, truncated_normal pass the dtype to jax.random)",
)
KERAS_STFT_INPUT_CHANNELS = KnownDefect(
    "keras-stft-input-channels",
    "keras",
    "3.15.1",
    groups.WRONG_SHAPE,
    ("float32", "float64"),
    "keras.initializers.STFT ignores the input-channel axis of its (frame_length, input_channels, "
    "bins) shape: any input_channels other than 1 (0 or 2, say) gets an array of shape "
    "(frame_length, 1, bins) instead of the shape asked for or an error",
    "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/initializers/constant_initializers.py "
    "(STFT.__call__ unpacks input_channels and never uses it)",
)
SAMPLING_DEFECTS = (KERAS_LOW_PRECISION_SAMPLING,)


def owns(module: str) -> bool:
    """An initializer defined in ``module`` is Keras's."""
    return module.startswith("keras")
