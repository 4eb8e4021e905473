"""Deliberately broken initializers, one or more for every class of bug initcheck
promises to catch (wrong scale or fan, wrong distribution, truncation, bounds, correlated or
key-ignoring output, precision, orthogonality, contract violations: see the README).

Each entry: (id, initializer, law, shapes, dtypes, the property that must fail).
"""

from __future__ import annotations

import math
import random

import jax
import jax.numpy as jnp
import numpy as np

from initcheck import laws

normal, uniform = jax.random.normal, jax.random.uniform


def _transposed(key, shape, dtype):
    return normal(key, tuple(reversed(shape)), dtype)


def _ignores_dtype(key, shape, dtype):
    return normal(key, shape)


def _nan(key, shape, dtype):
    return normal(key, shape, dtype).at[(0,) * len(shape)].set(jnp.nan)


def _numpy_rng(key, shape, dtype):
    return jnp.asarray(np.random.standard_normal(shape), dtype)


def _python_random(key, shape, dtype):
    return jnp.asarray([random.gauss(0.0, 1.0) for _ in range(math.prod(shape))], dtype).reshape(shape)


def _hidden_state():
    calls = [0]

    def init(key, shape, dtype):
        calls[0] += 1
        return normal(jax.random.fold_in(key, calls[0]), shape, dtype)

    return init


def _fixed_key(key, shape, dtype):
    return normal(jax.random.PRNGKey(0), shape, dtype)


def _first_word_only(key, shape, dtype):
    return normal(jax.random.PRNGKey(jax.random.key_data(key)[0]), shape, dtype)


def _eight_bits(key, shape, dtype):
    return normal(jax.random.fold_in(jax.random.PRNGKey(0), jax.random.key_data(key)[-1] & 0xFF), shape, dtype)


def _broadcast_row(key, shape, dtype):
    return jnp.broadcast_to(normal(key, shape[1:], dtype), shape)


def _tiled(key, shape, dtype):
    block = normal(key, (shape[0] // 4, shape[1] // 2), dtype)
    return jnp.tile(block, (4, 2))


def _halves_one_key(key, shape, dtype):
    half = normal(key, (shape[0] // 2,) + shape[1:], dtype)
    return jnp.concatenate([half, half * 1.0 + 0.0], axis=0)


def _halves_normal_uniform(key, shape, dtype):
    half = (shape[0] // 2,) + shape[1:]
    u = uniform(key, half, dtype, -math.sqrt(3), math.sqrt(3))
    return jnp.concatenate([normal(key, half, dtype), u], axis=0)


def _truncated_at(sigmas):
    return lambda key, shape, dtype: jax.random.truncated_normal(key, -sigmas, sigmas, shape, dtype)


def _clipped(key, shape, dtype):
    return jnp.clip(normal(key, shape, dtype), -2.0, 2.0)


def _uniform(low, high):
    return lambda key, shape, dtype: uniform(key, shape, dtype, low, high)


def _student_t(key, shape, dtype):
    return (jax.random.t(key, 5.0, shape) * math.sqrt(3 / 5)).astype(dtype)


def _threshold(threshold):
    def init(key, shape, dtype):
        u = uniform(key, shape, dtype, -10.0, 10.0)
        return u * (jnp.abs(u) >= threshold)

    return init


def _mixture_weights(key, shape, dtype):
    k1, k2 = jax.random.split(key)
    pick = uniform(k1, shape)
    magnitude = uniform(k2, shape, dtype, 5.0, 10.0)
    return jnp.where(pick < 0.5, 0.0, jnp.where(pick < 0.8, magnitude, -magnitude)).astype(dtype)


def _no_truncation_correction(key, shape, dtype):
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * math.sqrt(2.0 / shape[-2])


def _mean_drift(key, shape, dtype):
    return normal(key, shape, dtype) * 0.5 + 0.01


def _clipped_bf16_tails(key, shape, dtype):
    return jnp.clip(normal(key, shape, jnp.float32), -2.5, 2.5).astype(dtype)


def _qr_without_sign_fix(key, shape, dtype):
    q, _ = jnp.linalg.qr(normal(key, shape, jnp.float32))
    return q.astype(dtype)


def _normalized_columns(key, shape, dtype):
    a = normal(key, shape, dtype)
    return a / jnp.linalg.norm(a, axis=0, keepdims=True)


def _noisy_delta(key, shape, dtype):
    k1, k2 = jax.random.split(key)
    return jax.nn.initializers.delta_orthogonal()(k1, shape, dtype) + 1e-3 * normal(k2, shape, dtype)


def _variance_scaling_any_rank(key, shape, dtype):
    fan_in = shape[-2] if len(shape) >= 2 else 1
    return normal(key, shape, dtype) * math.sqrt(1.0 / max(fan_in, 1))


def _wrong_zero_size(key, shape, dtype):
    if math.prod(shape) == 0:
        return jnp.zeros((1,), dtype)
    return normal(key, shape, dtype)


VS = laws.VarianceScaling
D2 = [(64, 32)]
F32, BF16 = ["float32"], ["bfloat16"]
THRESHOLD_LAW = laws.Mixture([(0.5, laws.Constant(0.0)), (0.25, laws.Uniform(5, 10)), (0.25, laws.Uniform(-10, -5))])

BROKEN = [
    ("jnp.zeros as initializer", jnp.zeros, laws.Constant(0.0), D2, F32, "contract"),
    ("transposed shape", _transposed, laws.Normal(1.0), D2, F32, "contract"),
    ("ignored dtype", _ignores_dtype, laws.Normal(1.0), D2, BF16, "contract"),
    ("NaN in output", _nan, laws.Normal(1.0), D2, F32, "contract"),
    ("numpy global RNG", _numpy_rng, laws.Normal(1.0), D2, F32, "determinism"),
    ("Python random", _python_random, laws.Normal(1.0), [(4, 4)], F32, "determinism"),
    ("hidden state", _hidden_state(), laws.Normal(1.0), D2, F32, "determinism"),
    ("fixed internal key", _fixed_key, laws.Normal(1.0), D2, F32, "key_sensitivity"),
    ("key ignored but for its first word", _first_word_only, laws.Normal(1.0), [(4, 4)], F32, "key_sensitivity"),
    ("only 8 bits of the key used", _eight_bits, laws.Normal(1.0), [(4, 4)], F32, "key_sensitivity"),
    ("one row broadcast to all rows", _broadcast_row, laws.Normal(1.0), D2, F32, "independence"),
    ("a tiled block", _tiled, laws.Normal(1.0), D2, F32, "independence"),
    ("two halves drawn from one key", _halves_one_key, laws.Normal(1.0), D2, F32, "independence"),
    ("two halves from one key, normal and uniform", _halves_normal_uniform, laws.Normal(1.0), D2, F32, "independence"),
    ("truncation at 3 sigma instead of 2", _truncated_at(3.0), laws.TruncatedNormal(1.0), D2, F32, "bounds"),
    ("clipping instead of truncating", _clipped, laws.TruncatedNormal(1.0), D2, F32, "bounds"),
    ("uniform on the wrong interval", _uniform(0.0, 1.25), laws.Uniform(0.0, 1.0), D2, F32, "bounds"),
    ("heavy tails with the right variance", _student_t, laws.Normal(1.0), D2, F32, "distribution"),
    ("uniform instead of normal", _uniform(-math.sqrt(3), math.sqrt(3)), laws.Normal(1.0), D2, F32, "distribution"),
    ("wrong mixture weights", _mixture_weights, THRESHOLD_LAW, D2, F32, "distribution"),
    ("threshold 4 instead of 5", _threshold(4.0), THRESHOLD_LAW, D2, F32, "distribution"),
    (
        "wrong fan mode",
        jax.nn.initializers.variance_scaling(2.0, "fan_out", "truncated_normal"),
        VS(2.0, "fan_in", "truncated_normal"),
        D2,
        F32,
        "moments",
    ),
    (
        "missing 0.8796 truncation correction",
        _no_truncation_correction,
        VS(2.0, "fan_in", "truncated_normal"),
        D2,
        F32,
        "moments",
    ),
    (
        "gain applied twice",
        jax.nn.initializers.variance_scaling(4.0, "fan_in", "normal"),
        VS(2.0, "fan_in", "normal"),
        D2,
        F32,
        "moments",
    ),
    ("2% mean drift", _mean_drift, laws.Normal(0.5), D2, F32, "moments"),
    ("clipped bfloat16 tails", _clipped_bf16_tails, laws.Normal(1.0), D2, BF16, "precision"),
    (
        "generated in bfloat16 instead of rounded from float32",
        jax.nn.initializers.normal(1.0),
        laws.Normal(1.0),
        D2,
        BF16,
        "precision",
    ),
    ("QR without sign correction", _qr_without_sign_fix, laws.Orthogonal(), [(8, 8)], F32, "structure"),
    ("normalized but not orthogonal columns", _normalized_columns, laws.Orthogonal(), [(16, 8)], F32, "structure"),
    ("noise off the centre tap", _noisy_delta, laws.DeltaOrthogonal(), [(3, 3, 4, 8)], F32, "structure"),
    ("silent output on a 1-D shape", _variance_scaling_any_rank, VS(1.0, "fan_in", "normal"), D2, F32, "errors"),
    ("wrong output on a zero-size shape", _wrong_zero_size, laws.Normal(1.0), D2, F32, "errors"),
]
