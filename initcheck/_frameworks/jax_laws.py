"""JAX's initializers (``jax.nn.initializers``, which Flax re-exports): the one law table of its
builders, read back from an initializer's closure, for the catalog and the audit alike; the
code objects the audit watches for; and the JAX settings that change every draw.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.nn.initializers as jinit
import numpy as np

from initcheck import _property_registry as groups
from initcheck import laws
from initcheck._defects import KnownDefect
from initcheck._frameworks._protocol import Setting, Unavailable

JAX_MODULE = "jax._src.nn.initializers"  # where JAX's builders' closures are defined
PRESETS = {  # name: (scale, mode, distribution), as documented by jax.nn.initializers
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "xavier_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "xavier_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "kaiming_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "kaiming_normal": (2.0, "fan_in", "truncated_normal"),
}
BUILDERS = (  # the builders whose closures keep their arguments
    "constant",
    "uniform",
    "normal",
    "truncated_normal",
    "variance_scaling",
    "orthogonal",
    "delta_orthogonal",
)
PRNG_IMPLS = ("threefry2x32", "threefry4x32", "rbg", "unsafe_rbg", "philox2x32", "philox4x32")


def law_of_builder(builder: str, v) -> laws.Law | None:
    """The law of the initializer ``jax.nn.initializers.<builder>(**v)`` (``v``: its arguments, as
    the closure keeps them)."""
    if builder == "variance_scaling":
        return laws.VarianceScaling(
            float(v["scale"]),
            v["mode"],
            v["distribution"],
            in_axis=_axes(v["in_axis"]),
            out_axis=_axes(v["out_axis"]),
            batch_axis=_axes(v["batch_axis"]),
        )
    if builder == "normal":
        return laws.Normal(float(v["stddev"]))
    if builder == "uniform":
        return laws.Uniform(0.0, float(v["scale"]))
    if builder == "truncated_normal":
        return laws.TruncatedNormal(float(v["stddev"]), float(v["lower"]), float(v["upper"]))
    if builder == "constant":
        return laws.Constant(float(v["value"]))
    if builder == "orthogonal":
        return laws.Orthogonal(float(v["scale"]), int(v["column_axis"]))
    if builder == "delta_orthogonal":
        return laws.DeltaOrthogonal(float(v["scale"]), int(v["column_axis"]))
    return None


def _axes(axis):
    """An axis argument as JAX's fan computation reads it: an int, or a tuple of ints (MaxText
    passes numpy ranges)."""
    if isinstance(axis, (int, np.integer)):
        return int(axis)
    return tuple(int(a) for a in axis)


def law_of(init) -> laws.Law | None:
    """The law of a JAX initializer (``zeros``, ``ones``, a builder's closure, or
    ``jax.random.normal``/``uniform`` used as ``(key, shape, dtype)``), or None."""
    if init is jinit.zeros:
        return laws.Constant(0.0)
    if init is jinit.ones:
        return laws.Constant(1.0)
    if init is jax.random.normal:
        return laws.Normal(1.0)
    if init is jax.random.uniform:
        return laws.Uniform(0.0, 1.0)
    if getattr(init, "__module__", None) != JAX_MODULE:
        return None
    builder = init.__qualname__.split(".<locals>")[0]
    return law_of_builder(builder, inspect.getclosurevars(init).nonlocals)


def _inner_code(builder) -> types.CodeType:
    return next(c for c in builder.__code__.co_consts if inspect.iscode(c) and c.co_name == "init")


def _reader(name: str, builder):
    parameters = list(inspect.signature(builder).parameters)

    def read(frame_locals) -> tuple[laws.Law | None, object, str]:
        config = {p: frame_locals[p] for p in parameters if p in frame_locals}
        law = law_of_builder(name, config)
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return law, builder(**config), f"jax.nn.initializers.{name}({args})"

    return read


def known_codes() -> dict:
    """code object -> reader(frame locals) -> (law, re-runnable init, name), for JAX's builders."""
    codes: dict = {}
    for name in BUILDERS:
        builder = getattr(jinit, name)
        codes[_inner_code(builder)] = _reader(name, builder)
    for fn, value in ((jinit.zeros, 0.0), (jinit.ones, 1.0)):
        codes[fn.__code__] = (lambda f, v: lambda _: (laws.Constant(v), f, f"jax.nn.initializers.{f.__name__}"))(
            fn, value
        )
    return codes


@contextlib.contextmanager
def _jax_value(name: str, value) -> Iterator[None]:
    saved = getattr(jax.config, name)
    try:
        jax.config.update(name, value)
    except (ValueError, AttributeError, KeyError) as exc:
        raise Unavailable(f"the installed jax refuses {name}={value!r} ({exc})") from None
    try:
        yield
    finally:
        jax.config.update(name, saved)


def _jax_read(name: str) -> Callable[[], Any]:
    def read():
        value = getattr(jax.config, name)
        return str(value) if name == "jax_default_prng_impl" else bool(value)

    return read


def _jax_setting(name: str, blind: Callable[[Any], list], history: str) -> Setting:
    return Setting(
        name,
        _jax_read(name),
        lambda value: _jax_value(name, value),
        blind,
        lambda value: (
            f"jax.config.update({name!r}, {value!r}) before the first key is drawn "
            f"(or the environment variable {name.upper()}={str(value).lower()})"
        ),
        history,
    )


SETTINGS: tuple[Setting, ...] = (
    _jax_setting(
        "jax_threefry_partitionable",
        lambda now: [not now],
        "it changes the bits of every jax.random draw and the keys of jax.random.split (JAX's default is True "
        "since 0.5.0, False before)",
    ),
    _jax_setting(
        "jax_default_prng_impl",
        lambda now: [impl for impl in PRNG_IMPLS if impl != now],
        "it is the PRNG implementation of every key made from an int seed (jax.random.key, PRNGKey), and each "
        "implementation draws other bits (JAX's default is threefry2x32)",
    ),
    _jax_setting(
        "jax_enable_x64",
        lambda now: [not now],
        "64-bit mode changes default dtypes (jnp.zeros, the draws of an initializer called without a dtype)",
    ),
)


_JAX = "https://github.com/jax-ml/jax/blob/jax-v0.10.2/jax/_src"

LOW_PRECISION_SAMPLING = KnownDefect(
    "jax-low-precision-sampling",
    "jax",
    "0.10.2",
    groups.LOW_PRECISION,
    ("bfloat16", "float16"),
    "jax.random.uniform/normal/truncated_normal draw 16-bit outputs from only m mantissa bits "
    "(128 distinct bfloat16 values, 1024 float16 values, no normal tail beyond about 2.9 sd in "
    "bfloat16) instead of sampling in float32 and rounding: too few distinct values (precision), "
    "tails cut short and single values far more frequent than the rounded law allows "
    "(distribution), and moments off from those of the law rounded to the dtype",
    f"{_JAX}/random/core.py (_uniform builds 16-bit floats from nmant random bits); initcheck.inits "
    "samples in float32 and rounds",
)
JAX_COMPLEX_TRUNCATED_NORMAL = KnownDefect(
    "jax-complex-truncated-normal-variance",
    "jax",
    "0.10.2",
    groups.WRONG_SCALE,
    ("complex64", "complex128"),
    "complex truncated-normal variance scaling divides by 0.95311164380491208, which is not the std "
    "of the modulus-truncated complex normal (0.96196...): E|z|^2 is 1.87% too large and |z| "
    "exceeds the promised truncation radius",
    f"{_JAX}/nn/initializers.py (variance_scaling, distribution='truncated_normal'); the constant is "
    "sqrt(E[T]), T ~ Exp(1) truncated to [0, 4]: initcheck.laws.COMPLEX_TRUNCATED_MODULUS2_MEAN",
)
SAMPLING_DEFECTS = (LOW_PRECISION_SAMPLING,)  # what JAX's samplers show in a 16-bit dtype


def owns(module: str) -> bool:
    """An initializer defined in ``module`` is JAX's (and draws with JAX's samplers)."""
    return module.split(".")[0] == "jax"
