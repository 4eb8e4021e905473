"""The built-in catalog: the public initializers of JAX, Flax (linen and nnx) and Haiku, each with
the law its documentation promises. Entries that are the very same object as a JAX initializer say
so (``same_as``) and are still checked."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from initcheck import laws

FRAMEWORKS = ("jax", "flax", "haiku")

JAX_PRESETS = {  # name: (scale, mode, distribution), as documented by jax.nn.initializers
    "glorot_uniform": (1.0, "fan_avg", "uniform"), "xavier_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"), "xavier_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"), "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"), "kaiming_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"), "kaiming_normal": (2.0, "fan_in", "truncated_normal"),
}


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One initializer of a framework, configured, with the law it promises."""

    id: str
    framework: str
    init: Callable
    law: laws.Law
    dtypes: tuple[str, ...] = ("float32",)
    same_as: str | None = None


def _defaults(prefix: str, mod) -> list[tuple[str, str, Callable, laws.Law]]:
    """(id, attribute, initializer, law) for every builder of a ``jax.nn.initializers``-like
    module in its default configuration, built from that module."""
    items = [
        ("zeros", "zeros", mod.zeros, laws.Constant(0.0)),
        ("ones", "ones", mod.ones, laws.Constant(1.0)),
        ("constant(0.5)", "constant", mod.constant(0.5), laws.Constant(0.5)),
        ("normal()", "normal", mod.normal(), laws.Normal(0.01)),
        ("uniform()", "uniform", mod.uniform(), laws.Uniform(0.0, 0.01)),
        ("truncated_normal()", "truncated_normal", mod.truncated_normal(), laws.TruncatedNormal(0.01)),
        ("orthogonal()", "orthogonal", mod.orthogonal(), laws.Orthogonal()),
        ("delta_orthogonal()", "delta_orthogonal", mod.delta_orthogonal(), laws.DeltaOrthogonal()),
    ]
    items += [(f"{name}()", name, getattr(mod, name)(), laws.VarianceScaling(*args)) for name, args in JAX_PRESETS.items()]
    return [(f"{prefix}.{name}", attr, init, law) for name, attr, init, law in items]


def _jax() -> list[CatalogEntry]:
    import jax

    ji = jax.nn.initializers
    entries = [CatalogEntry(id_, "jax", init, law) for id_, _, init, law in _defaults("jax.nn.initializers", ji)]
    for mode in laws.MODES:
        for distribution in laws.DISTRIBUTIONS:
            entries.append(CatalogEntry(
                f"jax.nn.initializers.variance_scaling(1.0, {mode!r}, {distribution!r})", "jax",
                ji.variance_scaling(1.0, mode, distribution), laws.VarianceScaling(1.0, mode, distribution)))
    return entries


def _flax() -> list[CatalogEntry]:
    import flax.linen as nn
    import flax.nnx as nnx
    import jax

    entries = []
    for prefix, mod in (("flax.linen.initializers", nn.initializers), ("flax.nnx.initializers", nnx.initializers)):
        for id_, attr, init, law in _defaults(prefix, mod):
            same = getattr(mod, attr) is getattr(jax.nn.initializers, attr)
            same_as = "jax.nn.initializers." + id_[len(prefix) + 1:] if same else None
            entries.append(CatalogEntry(id_, "flax", init, law, same_as=same_as))
        vs_args = (1.0, "fan_in", "truncated_normal")
        entries.append(CatalogEntry(
            f"{prefix}.variance_scaling(1.0, 'fan_in', 'truncated_normal')", "flax", mod.variance_scaling(*vs_args),
            laws.VarianceScaling(*vs_args),
            same_as="jax.nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal')"
            if mod.variance_scaling is jax.nn.initializers.variance_scaling else None))
        entries.append(CatalogEntry(f"{prefix}.zeros_init()", "flax", mod.zeros_init(), laws.Constant(0.0)))
        entries.append(CatalogEntry(f"{prefix}.ones_init()", "flax", mod.ones_init(), laws.Constant(1.0)))
    return entries


def haiku_input_size_fans(shape: Sequence[int]) -> tuple[float, float]:
    """Haiku's UniformScaling: the input size is prod(shape[:-1])."""
    return float(math.prod(shape[:-1])), float(shape[-1] if shape else 1)


def _haiku() -> list[CatalogEntry]:
    import haiku as hk

    hi = hk.initializers
    entries = [
        CatalogEntry("haiku.initializers.Constant(0.5)", "haiku", hi.Constant(0.5), laws.Constant(0.5)),
        CatalogEntry("haiku.initializers.RandomNormal()", "haiku", hi.RandomNormal(), laws.Normal(1.0)),
        CatalogEntry("haiku.initializers.RandomUniform()", "haiku", hi.RandomUniform(), laws.Uniform(0.0, 1.0)),
        CatalogEntry("haiku.initializers.TruncatedNormal()", "haiku", hi.TruncatedNormal(), laws.TruncatedNormal(1.0)),
        CatalogEntry("haiku.initializers.UniformScaling(2.0)", "haiku", hi.UniformScaling(2.0),
                     laws.VarianceScaling(4.0, "fan_in", "uniform", fans=haiku_input_size_fans)),
        CatalogEntry("haiku.initializers.Orthogonal()", "haiku", hi.Orthogonal(), laws.Orthogonal()),
        CatalogEntry("haiku.initializers.Identity()", "haiku", hi.Identity(), laws.Identity()),
    ]
    for mode in ("fan_in", "fan_out", "fan_avg"):
        for distribution in laws.DISTRIBUTIONS:
            entries.append(CatalogEntry(
                f"haiku.initializers.VarianceScaling(1.0, {mode!r}, {distribution!r})", "haiku",
                hi.VarianceScaling(1.0, mode, distribution), laws.VarianceScaling(1.0, mode, distribution, fans="haiku")))
    return entries


_BUILDERS = {"jax": _jax, "flax": _flax, "haiku": _haiku}


def catalog(frameworks: Sequence[str] | None = None) -> list[CatalogEntry]:
    """The catalog entries of ``frameworks`` (default: all of ``FRAMEWORKS``), in that order."""
    if isinstance(frameworks, str):
        frameworks = [f.strip() for f in frameworks.split(",") if f.strip()]
    chosen = list(FRAMEWORKS) if frameworks is None else list(frameworks)
    unknown = [f for f in chosen if f not in _BUILDERS]
    if unknown or not chosen:
        raise ValueError(f"frameworks={frameworks!r}: choose from {', '.join(FRAMEWORKS)}")
    return [entry for framework in chosen for entry in _BUILDERS[framework]()]
