"""The law a model's declared initializer promises.

Known: initializers marked with ``@initcheck.expects`` (and ``initcheck.inits``), the closures of
``jax.nn.initializers`` (which Flax re-exports; their parameters are read from the closure),
``hk.initializers`` objects, and ``jnp.zeros``/``jnp.ones`` (Haiku's default bias).
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp

from initcheck import laws

_JAX_MODULE = "jax._src.nn.initializers"


def _jax_law(init) -> laws.Law | None:
    import jax.nn.initializers as jinit

    if init is jinit.zeros:
        return laws.Constant(0.0)
    if init is jinit.ones:
        return laws.Constant(1.0)
    if getattr(init, "__module__", None) != _JAX_MODULE:
        return None
    builder = init.__qualname__.split(".<locals>")[0]
    v = inspect.getclosurevars(init).nonlocals
    if builder == "variance_scaling":
        return laws.VarianceScaling(float(v["scale"]), v["mode"], v["distribution"], in_axis=v["in_axis"],
                                    out_axis=v["out_axis"], batch_axis=v["batch_axis"])
    if builder == "normal":
        return laws.Normal(float(v["stddev"]))
    if builder == "uniform":
        return laws.Uniform(0.0, float(v["scale"]))
    if builder == "truncated_normal":
        return laws.TruncatedNormal(float(v["stddev"]), float(v["lower"]), float(v["upper"]))
    if builder == "constant":
        return laws.Constant(float(v["value"]))
    if builder == "orthogonal":
        return laws.Orthogonal(float(v["scale"]), v["column_axis"])
    if builder == "delta_orthogonal":
        return laws.DeltaOrthogonal(float(v["scale"]), v["column_axis"])
    return None


def _haiku_law(init) -> laws.Law | None:
    if not type(init).__module__.startswith("haiku."):
        return None
    from initcheck._catalog import haiku_input_size_fans

    name = type(init).__name__
    if name == "Constant":
        return laws.Constant(float(init.constant))
    if name == "RandomNormal":
        return laws.Normal(float(init.stddev), float(init.mean))
    if name == "RandomUniform":
        return laws.Uniform(float(init.minval), float(init.maxval))
    if name == "TruncatedNormal":
        return laws.TruncatedNormal(float(init.stddev), float(init.lower), float(init.upper), float(init.mean))
    if name == "VarianceScaling":
        return laws.VarianceScaling(float(init.scale), init.mode, init.distribution, fans="haiku",
                                    fan_in_axes=init.fan_in_axes)
    if name == "UniformScaling":
        return laws.VarianceScaling(float(init.scale) ** 2, "fan_in", "uniform", fans=haiku_input_size_fans)
    if name == "Orthogonal":
        return laws.Orthogonal(float(init.scale), init.axis)
    if name == "Identity":
        return laws.Identity(float(init.gain))
    return None


def declared_law(init) -> laws.Law | None:
    """The law ``init`` promises, or None when initcheck cannot know it (then declare it with
    ``@initcheck.expects(law)``)."""
    law = getattr(init, "__initcheck_law__", None)
    if law is not None:
        return law
    if init is jnp.zeros:
        return laws.Constant(0.0)
    if init is jnp.ones:
        return laws.Constant(1.0)
    try:
        return _jax_law(init) or _haiku_law(init)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a closure of another shape (another JAX version): unknown, never guessed
