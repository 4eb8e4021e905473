"""initcheck's own initializers, in the canonical `init(key, shape, dtype=float32)` form.

Each builder returns an initializer that carries its law (`init.__initcheck_law__`, as
`@initcheck.expects` sets it), so `initcheck.check(init, init.__initcheck_law__)` checks it.
They sample in float32 (float64 for 64-bit dtypes) and round to the requested dtype at the end,
so bfloat16 and float16 outputs follow the law rounded to the dtype, tails included.

Fans follow JAX's convention: `in_axis`/`out_axis` name the input and output axes and the
remaining axes are the receptive field. PyTorch's own layout `(out, in, *kernel)` is
`in_axis=1, out_axis=0`.

PyTorch parity (`torch.nn.init`), with `gain = calculate_gain(nonlinearity, a)`:

* `kaiming_uniform`: U(-b, b), b = gain * sqrt(3 / fan); `kaiming_normal`: N(0, gain² / fan).
* `xavier_uniform`: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)); `xavier_normal`:
  N(0, 2 gain² / (fan_in + fan_out)).
* `torch_default_weight`: `nn.Linear`/`nn.ConvNd` weights, `kaiming_uniform(a=sqrt(5))` =
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)); `torch_default_bias(fan_in)`: the same bound for the bias.
* `trunc_normal(mean, std, a, b)`: N(mean, std²) truncated to the *absolute* interval [a, b].
* `sparse`, `dirac`, `eye`: `sparse_`, `dirac_`, `eye_`.

Example:
    ```python
    import jax
    import initcheck
    from initcheck import inits

    init = inits.kaiming_normal(nonlinearity="relu")
    w = init(jax.random.key(0), (256, 128))
    initcheck.assert_conforms(init, init.__initcheck_law__)
    ```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import jax
import jax.numpy as jnp

from initcheck import _fans, laws


class Initializer(Protocol):
    """`init(key, shape, dtype) -> Array`, carrying the law it promises (`__initcheck_law__`)."""

    __initcheck_law__: laws.Law

    def __call__(self, key: Any, shape: Sequence[int], dtype: Any = ...) -> jax.Array: ...


NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)


def _with_law(init: Callable[..., jax.Array], law: laws.Law, name: str) -> Initializer:
    init.__qualname__ = init.__name__ = name
    init.__module__ = __name__
    init.__initcheck_law__ = law  # type: ignore[attr-defined]
    return cast(Initializer, init)


def _compute_dtype(dtype) -> jnp.dtype:
    """float64 for 64-bit (complex128) requests, float32 otherwise: sample there, then round."""
    real = jnp.finfo(jnp.dtype(dtype)).dtype
    return jnp.dtype(jnp.float64) if real.itemsize == 8 else jnp.dtype(jnp.float32)


def _check_float(dtype, name: str, complex_ok: bool = False):
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact) or (jnp.issubdtype(dtype, jnp.complexfloating) and not complex_ok):
        kinds = "float or complex" if complex_ok else "float"
        raise TypeError(f"{name}: dtype={dtype} is not a {kinds} dtype; use e.g. jnp.float32 or jnp.bfloat16")
    return dtype


def _real_init(
    name: str,
    law: laws.Law,
    sample: Callable[[jax.Array, tuple, jnp.dtype], jax.Array],
    check_shape: Callable[[tuple], None] | None = None,
) -> Initializer:
    """An initializer that draws `sample(key, shape, compute_dtype)` and rounds it to `dtype`."""

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(s) for s in shape)
        dtype = _check_float(dtype, name)
        if check_shape is not None:
            check_shape(shape)
        return sample(key, shape, _compute_dtype(dtype)).astype(dtype)

    return _with_law(init, law, name)


def _fan(shape, mode: str, in_axis, out_axis, batch_axis=()) -> float:
    fan_in, fan_out = _fans.jax_fans(shape, in_axis, out_axis, batch_axis)
    n = _fans.fan_denominator(mode, fan_in, fan_out)
    if not n > 0:
        raise ValueError(f"shape={shape} has {mode}={n:g}; variance scaling needs a non-zero fan")
    return n


def calculate_gain(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """`torch.nn.init.calculate_gain`: the recommended gain for a nonlinearity.

    1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a²)) for leaky_relu
    (a = `param`, default 0.01), 3/4 for selu.

    Args:
        nonlinearity: One of `NONLINEARITIES` (`"linear"`, `"conv1d"`, ..., `"relu"`,
            `"leaky_relu"`, `"selu"`).
        param: leaky_relu's negative slope (default 0.01); ignored otherwise.

    Returns:
        The gain.

    Raises:
        ValueError: An unknown `nonlinearity`, or a `param` that is not a number.
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"calculate_gain: nonlinearity={nonlinearity!r} is not one of {', '.join(NONLINEARITIES)}")
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: param={param!r} is not a valid negative slope; pass a number")
        return math.sqrt(2.0 / (1 + slope**2))
    return 1.0


def variance_scaling(
    scale: float, mode: str, distribution: str, in_axis=-2, out_axis=-1, batch_axis: Sequence[int] | int = ()
) -> Initializer:
    """Zero mean, variance `scale / n` (n the fan of `mode`), exactly the law `laws.VarianceScaling` states.

    For real and complex dtypes:

    * truncated normal: |x| < 2 sd of a normal whose sd is sqrt(v) / 0.87962566; complex: a complex
      normal with modulus truncated at 2, |z|² = v T / E[T] with T ~ Exp(1) truncated to [0, 4]
      (E[T] = 0.92538..., so the std correction is 0.96196..., not JAX's 0.95311...);
    * normal: N(0, v); complex: independent N(0, v/2) parts;
    * uniform: U(-sqrt(3v), sqrt(3v)); complex: uniform on the disk of radius sqrt(2v).

    Samples in float32 (float64 for 64-bit dtypes) and rounds to `dtype`.

    Args:
        scale: The variance's numerator, > 0.
        mode: `"fan_in"`, `"fan_out"`, `"fan_avg"` or `"fan_geo_avg"`.
        distribution: `"truncated_normal"`, `"normal"` or `"uniform"`.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).
        batch_axis: The batch axes, in neither fan.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law. It raises `TypeError` for a non-float
            dtype and `ValueError` for a shape whose fan is 0.

    Raises:
        TypeError: `scale` is not a real number.
        ValueError: A parameter is refused, as by [`laws.VarianceScaling`][initcheck.laws.VarianceScaling].
    """
    law = laws.VarianceScaling(scale, mode, distribution, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(s) for s in shape)
        dtype = _check_float(dtype, "variance_scaling", complex_ok=True)
        variance = scale / _fan(shape, mode, in_axis, out_axis, batch_axis)
        compute = _compute_dtype(dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return _complex_sample(key, shape, compute, variance, distribution).astype(dtype)
        if distribution == "normal":
            x = jax.random.normal(key, shape, compute) * math.sqrt(variance)
        elif distribution == "uniform":
            limit = math.sqrt(3 * variance)
            x = jax.random.uniform(key, shape, compute, -limit, limit)
        else:
            x = jax.random.truncated_normal(key, -2.0, 2.0, shape, compute) * (
                math.sqrt(variance) / laws.TRUNCATED_NORMAL_STD
            )
        return x.astype(dtype)

    return _with_law(init, law, f"variance_scaling({scale!r}, {mode!r}, {distribution!r})")


def _complex_sample(key, shape, compute, variance: float, distribution: str) -> jax.Array:
    """A circular complex sample with E|z|² = variance: modulus from its law, phase uniform."""
    radius_key, phase_key = jax.random.split(key)
    u = jax.random.uniform(radius_key, shape, compute)
    if distribution == "normal":
        modulus2 = -jnp.log1p(-u) * variance  # Exp(mean v)
    elif distribution == "uniform":
        modulus2 = 2 * variance * u  # uniform disk: |z|² ~ U[0, 2v]
    else:  # Exp(1) truncated to [0, 4] by inverting its CDF, rescaled to mean v
        modulus2 = -jnp.log1p(-u * -math.expm1(-4.0)) * (variance / laws.COMPLEX_TRUNCATED_MODULUS2_MEAN)
    phase = jax.random.uniform(phase_key, shape, compute, 0.0, 2 * math.pi)
    return jnp.sqrt(modulus2) * jax.lax.complex(jnp.cos(phase), jnp.sin(phase))


def kaiming_uniform(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", in_axis=-2, out_axis=-1
) -> Initializer:
    """`torch.nn.init.kaiming_uniform_`: U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    Args:
        a: The negative slope of leaky_relu (the `param` of `calculate_gain`).
        mode: `"fan_in"` or `"fan_out"`.
        nonlinearity: As for `calculate_gain`.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: An unknown `mode` or `nonlinearity`.
    """
    gain = calculate_gain(nonlinearity, a)
    return _torch_scaling(
        "kaiming_uniform",
        gain,
        _kaiming_mode(mode),
        "uniform",
        in_axis,
        out_axis,
        f"a={a!r}, mode={mode!r}, nonlinearity={nonlinearity!r}",
    )


def kaiming_normal(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", in_axis=-2, out_axis=-1
) -> Initializer:
    """`torch.nn.init.kaiming_normal_`: N(0, gain² / fan), gain = calculate_gain(nonlinearity, a).

    Args:
        a: The negative slope of leaky_relu (the `param` of `calculate_gain`).
        mode: `"fan_in"` or `"fan_out"`.
        nonlinearity: As for `calculate_gain`.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: An unknown `mode` or `nonlinearity`.
    """
    gain = calculate_gain(nonlinearity, a)
    return _torch_scaling(
        "kaiming_normal",
        gain,
        _kaiming_mode(mode),
        "normal",
        in_axis,
        out_axis,
        f"a={a!r}, mode={mode!r}, nonlinearity={nonlinearity!r}",
    )


def xavier_uniform(gain: float = 1.0, in_axis=-2, out_axis=-1) -> Initializer:
    """`torch.nn.init.xavier_uniform_`: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).

    Args:
        gain: The gain, > 0.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: `gain` is not a positive number.
    """
    return _torch_scaling("xavier_uniform", gain, "fan_avg", "uniform", in_axis, out_axis, f"gain={gain!r}")


def xavier_normal(gain: float = 1.0, in_axis=-2, out_axis=-1) -> Initializer:
    """`torch.nn.init.xavier_normal_`: N(0, 2 gain² / (fan_in + fan_out)).

    Args:
        gain: The gain, > 0.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: `gain` is not a positive number.
    """
    return _torch_scaling("xavier_normal", gain, "fan_avg", "normal", in_axis, out_axis, f"gain={gain!r}")


def torch_default_weight(in_axis=-2, out_axis=-1) -> Initializer:
    """The weight of PyTorch's `nn.Linear` and `nn.ConvNd`: `kaiming_uniform(a=sqrt(5))`.

    That is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Args:
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.
    """
    init = kaiming_uniform(math.sqrt(5), in_axis=in_axis, out_axis=out_axis)
    return _with_law(init, init.__initcheck_law__, "torch_default_weight()")


def torch_default_bias(fan_in: int) -> Initializer:
    """The bias of PyTorch's `nn.Linear` and `nn.ConvNd`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Args:
        fan_in: The layer's inputs (times the receptive field for convolutions): the weight's
            fan_in, an int >= 1.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: `fan_in` is not an int >= 1.
    """
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 1:
        raise ValueError(f"torch_default_bias: fan_in={fan_in!r} must be an int >= 1 (the weight's fan_in)")
    bound = 1 / math.sqrt(fan_in)
    init = uniform(-bound, bound)
    return _with_law(init, init.__initcheck_law__, f"torch_default_bias({fan_in})")


def _kaiming_mode(mode: str) -> str:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode={mode!r} must be 'fan_in' or 'fan_out'")
    return mode


def _torch_scaling(name, gain, mode, distribution, in_axis, out_axis, args) -> Initializer:
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0 or not math.isfinite(gain):
        raise ValueError(f"{name}: gain={gain!r} must be a positive number")
    init = variance_scaling(float(gain) ** 2, mode, distribution, in_axis=in_axis, out_axis=out_axis)
    return _with_law(init, init.__initcheck_law__, f"{name}({args})")


def uniform(low: float, high: float) -> Initializer:
    """U[low, high).

    Args:
        low: The lower bound.
        high: The upper bound, > `low`.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        TypeError: A bound is not a real number.
        ValueError: A bound is not finite, or `low >= high`.
    """
    law = laws.Uniform(low, high)
    return _real_init(
        f"uniform({low!r}, {high!r})", law, lambda key, shape, dt: jax.random.uniform(key, shape, dt, law.low, law.high)
    )


def normal(std: float, mean: float = 0.0) -> Initializer:
    """N(mean, std²).

    Args:
        std: The standard deviation, > 0.
        mean: The mean.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        TypeError: A parameter is not a real number.
        ValueError: `std` is not > 0, or a value is not finite.
    """
    law = laws.Normal(std, mean)
    return _real_init(
        f"normal({std!r}, mean={mean!r})",
        law,
        lambda key, shape, dt: jax.random.normal(key, shape, dt) * law.std + law.mean,
    )


def trunc_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Initializer:
    """`torch.nn.init.trunc_normal_`: N(mean, std²) truncated to the absolute interval [a, b].

    Args:
        mean: The mean of the untruncated normal.
        std: The std of the untruncated normal, > 0.
        a: The lower bound, as a value.
        b: The upper bound, as a value, > `a`.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        TypeError: A parameter is not a real number.
        ValueError: `std` is not > 0, a value is not finite, or `a >= b`.
    """
    law = laws.TruncatedNormal.absolute(a, b, std=std, mean=mean)
    return _real_init(
        f"trunc_normal(mean={mean!r}, std={std!r}, a={a!r}, b={b!r})",
        law,
        lambda key, shape, dt: jax.random.truncated_normal(key, law.lower, law.upper, shape, dt) * law.std + law.mean,
    )


def scaled_normal(init_scale: float = 1.0, in_axis=-2, out_axis=-1) -> Initializer:
    """N(0, init_scale² / fan_in): a normal whose std is `init_scale / sqrt(fan_in)`.

    Args:
        init_scale: The scale, > 0.
        in_axis (int | Sequence[int]): The input axes (JAX's convention; PyTorch's layout is
            `in_axis=1`).
        out_axis (int | Sequence[int]): The output axes (PyTorch's layout: `out_axis=0`).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.

    Raises:
        ValueError: `init_scale` is not a positive number.
    """
    if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) or not init_scale > 0:
        raise ValueError(f"scaled_normal: init_scale={init_scale!r} must be a positive number")
    init = variance_scaling(float(init_scale) ** 2, "fan_in", "normal", in_axis=in_axis, out_axis=out_axis)
    return _with_law(init, init.__initcheck_law__, f"scaled_normal({init_scale!r})")


def threshold_uniform() -> Initializer:
    """U(-10, 10) with every |w| < 5 set to 0 (the thresholded uniform of the d2l book).

    Its law is a `laws.Mixture`: an atom of mass 1/2 at 0, and U(5, 10), U(-10, -5) with 1/4 each.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.
    """
    law = laws.Mixture([(0.5, laws.Constant(0.0)), (0.25, laws.Uniform(5.0, 10.0)), (0.25, laws.Uniform(-10.0, -5.0))])

    def sample(key, shape, dt):
        w = jax.random.uniform(key, shape, dt, -10.0, 10.0)
        return jnp.where(jnp.abs(w) >= 5, w, 0)

    return _real_init("threshold_uniform()", law, sample)


def sparse(sparsity: float, std: float = 0.01) -> Initializer:
    """`torch.nn.init.sparse_`: a 2-D matrix with exactly ceil(sparsity * rows) zeros per column.

    The zeros are at random rows, the rest N(0, std²).

    Args:
        sparsity: The share of zeros per column, in [0, 1).
        std: The std of the non-zero elements, > 0.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law. It raises `ValueError` for a shape that is not 2-D.

    Raises:
        TypeError: A parameter is not a real number.
        ValueError: `sparsity` is not in [0, 1), or `std` is not > 0.
    """
    law = laws.Sparse(sparsity, std)

    def check_shape(shape):
        if len(shape) != 2:
            raise ValueError(f"sparse: shape={shape} must be 2-D (rows, columns); sparse_ only defines matrices")

    def sample(key, shape, dt):
        values_key, rows_key = jax.random.split(key)
        values = jax.random.normal(values_key, shape, dt) * law.std
        rank = jnp.argsort(jnp.argsort(jax.random.uniform(rows_key, shape), axis=0), axis=0)
        return jnp.where(rank < law.zeros_per_column(shape[0]), 0, values)

    return _real_init(f"sparse({sparsity!r}, std={std!r})", law, sample, check_shape)


def dirac(groups: int = 1) -> Initializer:
    """`torch.nn.init.dirac_` in JAX's (spatial..., in, out) layout.

    1 at the centre tap from input d to output g * out // groups + d, 0 elsewhere (see
    [`laws.Dirac`][initcheck.laws.Dirac]).

    Args:
        groups: The number of groups, an int >= 1.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law. It raises `ValueError` for a shape the
            law refuses.

    Raises:
        ValueError: `groups` is not an int >= 1.
    """
    law = laws.Dirac(groups)

    def check_shape(shape):
        if reason := law.error_reason(shape, "float32"):
            raise ValueError(f"dirac: {reason}")

    return _real_init(
        f"dirac(groups={groups})", law, lambda key, shape, dt: jnp.asarray(law.expected(shape, dt), dt), check_shape
    )


def eye() -> Initializer:
    """`torch.nn.init.eye_`: the identity matrix; for more than 2 dims, a batch of them.

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law. It raises `ValueError` for a shape of
            fewer than 2 dims.
    """
    law = laws.Identity(1.0)

    def check_shape(shape):
        if len(shape) < 2:
            raise ValueError(f"eye: shape={shape} must have at least 2 dims; an identity is a matrix")

    return _real_init(
        "eye()",
        law,
        lambda key, shape, dt: jnp.broadcast_to(jnp.eye(shape[-2], shape[-1], dtype=dt), shape),
        check_shape,
    )


def keras_default() -> Initializer:
    """Keras's default kernel initializer (`Dense`, `Conv`): glorot_uniform.

    U(-b, b) with b = sqrt(6 / (fan_in + fan_out)).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.
    """
    init = xavier_uniform(1.0)
    return _with_law(init, init.__initcheck_law__, "keras_default()")


def keras_embedding() -> Initializer:
    """Keras's default `Embedding` initializer: U(-0.05, 0.05).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.
    """
    init = uniform(-0.05, 0.05)
    return _with_law(init, init.__initcheck_law__, "keras_embedding()")


def mxnet_default() -> Initializer:
    """MXNet's default initializer (`mx.init.Uniform()`): U(-0.07, 0.07).

    Returns:
        The initializer `init(key, shape, dtype=float32)`, carrying its law.
    """
    init = uniform(-0.07, 0.07)
    return _with_law(init, init.__initcheck_law__, "mxnet_default()")


__all__ = [
    "calculate_gain",
    "dirac",
    "eye",
    "kaiming_normal",
    "kaiming_uniform",
    "keras_default",
    "keras_embedding",
    "mxnet_default",
    "normal",
    "scaled_normal",
    "sparse",
    "threshold_uniform",
    "torch_default_bias",
    "torch_default_weight",
    "trunc_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
]
