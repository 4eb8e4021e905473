"""The framework modules, in one place: which one a model belongs to, each framework's catalog
entries, every setting that changes values (the lock's; each framework models its own in the
audit) and the known defects of the frameworks' samplers.

Adding a framework is adding its modules to this folder (a `Framework` for its models, a law table
with its settings and defects for its initializers) and naming them here: CONTRIBUTING.md,
"Adding a framework".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from initcheck._entries import CatalogEntry
from initcheck._frameworks import (
    equinox,
    flax_laws,
    haiku,
    haiku_laws,
    jax_laws,
    jax_nn,
    keras,
    linen,
    nnx,
    own,
)
from initcheck._frameworks._declared import KNOWN_DEFECTS, declared_law, declared_name, sampling_defects, unwrap
from initcheck._frameworks._protocol import Framework, Recording, Setting, Unavailable

# the order in which a model is recognised: an nnx factory is any callable, so it comes last
MODEL_FRAMEWORKS: tuple[Framework, ...] = (
    linen.FRAMEWORK,
    haiku.FRAMEWORK,
    keras.FRAMEWORK,
    equinox.FRAMEWORK,
    nnx.FRAMEWORK,
)
CATALOGS: dict[str, Callable[[], list[CatalogEntry]]] = {  # by framework, in FRAMEWORKS' order
    "jax": jax_nn.catalog_entries,
    "flax": lambda: linen.catalog_entries() + nnx.catalog_entries(),
    "haiku": haiku.catalog_entries,
    "initcheck": own.catalog_entries,
    "equinox": equinox.catalog_entries,
    "keras": keras.catalog_entries,
}
SETTINGS: tuple[Setting, ...] = (*jax_laws.SETTINGS, flax_laws.FIX_SEPARATOR, haiku_laws.RESERVE_SIZE)
UNKNOWN_MODEL = (
    "model={!r} is not a Flax linen Module, an nnx Module class or factory, a Haiku "
    "Transformed, an Equinox factory taking key= or a Keras model; wrap a Haiku function with "
    "hk.transform(f) first"
)


def of_model(model: Any) -> Framework:
    """The framework ``model`` belongs to; ``TypeError`` with the fix when it is none of them or
    cannot be audited as it is."""
    for framework in MODEL_FRAMEWORKS:
        if refusal := framework.refusal(model):
            raise TypeError(refusal)
        if framework.recognises(model):
            return framework
    raise TypeError(UNKNOWN_MODEL.format(model))


def checked_settings(settings: Mapping[str, Any] | None, framework: Framework) -> dict[str, Any]:
    """``settings`` (setting name -> value) that ``framework`` models its derivation with, refused
    with the names it models when one is not among them (JAX's own settings are read, never
    modelled: set them with ``jax.config.update`` before the audit)."""
    known = [s.name for s in framework.settings]
    given = dict(settings or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        models = f"models {', '.join(known)} only" if known else "models no setting"
        raise ValueError(
            f"settings={given!r}: {framework.name} {models}, not {unknown[0]!r} "
            "(JAX's settings are not modelled: set them with jax.config.update before the audit)"
        )
    return given


__all__ = [
    "CATALOGS",
    "KNOWN_DEFECTS",
    "MODEL_FRAMEWORKS",
    "SETTINGS",
    "Framework",
    "Recording",
    "Setting",
    "Unavailable",
    "checked_settings",
    "declared_law",
    "declared_name",
    "of_model",
    "sampling_defects",
    "unwrap",
]
