"""The frameworks initcheck covers, the JAX presets of variance scaling, and the one validation of
a ``frameworks`` argument that the catalog, the strategies, the CLI and the plugin share."""

from __future__ import annotations

from collections.abc import Iterable

FRAMEWORKS = ("jax", "flax", "haiku", "initcheck")

JAX_PRESETS = {  # name: (scale, mode, distribution), as documented by jax.nn.initializers
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


def parse(value: str | Iterable[str] | None) -> list[str]:
    """``value`` as a list of names: ``None`` is every framework, a string is comma-separated."""
    if value is None:
        return list(FRAMEWORKS)
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    return list(value)


def valid(chosen: list[str]) -> bool:
    """``chosen`` names at least one framework, and only frameworks."""
    return bool(chosen) and all(f in FRAMEWORKS for f in chosen)
