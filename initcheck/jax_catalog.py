"""The JAX part of the built-in catalog: every ``jax.nn.initializers`` builder in its default
configuration (plus the fan modes and distributions of ``variance_scaling``), with its law."""

from __future__ import annotations

import dataclasses

import jax

from initcheck import laws


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    init: object
    law: laws.Law


def jax_entries() -> list[Entry]:
    ji = jax.nn.initializers
    vs = laws.VarianceScaling
    entries = [
        Entry("jax.nn.initializers.zeros", ji.zeros, laws.Constant(0.0)),
        Entry("jax.nn.initializers.ones", ji.ones, laws.Constant(1.0)),
        Entry("jax.nn.initializers.constant(0.5)", ji.constant(0.5), laws.Constant(0.5)),
        Entry("jax.nn.initializers.normal()", ji.normal(), laws.Normal(0.01)),
        Entry("jax.nn.initializers.uniform()", ji.uniform(), laws.Uniform(0.0, 0.01)),
        Entry("jax.nn.initializers.truncated_normal()", ji.truncated_normal(), laws.TruncatedNormal(0.01)),
        Entry("jax.nn.initializers.orthogonal()", ji.orthogonal(), laws.Orthogonal()),
        Entry("jax.nn.initializers.delta_orthogonal()", ji.delta_orthogonal(), laws.DeltaOrthogonal()),
    ]
    presets = {"glorot_uniform": (1.0, "fan_avg", "uniform"), "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
               "lecun_uniform": (1.0, "fan_in", "uniform"), "lecun_normal": (1.0, "fan_in", "truncated_normal"),
               "he_uniform": (2.0, "fan_in", "uniform"), "he_normal": (2.0, "fan_in", "truncated_normal")}
    for name, args in presets.items():
        entries.append(Entry(f"jax.nn.initializers.{name}()", getattr(ji, name)(), vs(*args)))
    for mode in laws.MODES:
        for distribution in laws.DISTRIBUTIONS:
            entries.append(Entry(f"jax.nn.initializers.variance_scaling(1.0, {mode!r}, {distribution!r})",
                                 ji.variance_scaling(1.0, mode, distribution), vs(1.0, mode, distribution)))
    return entries
