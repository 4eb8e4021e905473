"""The built-in catalog: the public initializers of JAX, Flax (linen and nnx), Haiku and Keras, and
the default initialization of every Equinox layer, each with the law its documentation promises
(each framework module gives its own entries: ``_frameworks.registry.CATALOGS``). Entries that are
the very same object as a JAX initializer say so (``same_as``) and are still checked."""

from __future__ import annotations

from collections.abc import Sequence

from initcheck import _api as api
from initcheck import _defects, _frameworks
from initcheck._entries import CatalogEntry
from initcheck._frameworks import FRAMEWORKS, registry
from initcheck._profiles import get as get_profile


def catalog(frameworks: Sequence[str] | None = None) -> list[CatalogEntry]:
    """The catalog entries of `frameworks`, in that order.

    The dtypes include float64 and complex128 when JAX's x64 mode is on.

    Args:
        frameworks: Framework names (`"jax"`, `"flax"`, `"haiku"`, `"initcheck"`, `"equinox"`,
            `"keras"`) or a comma-separated string of them (default: every installed one of
            `FRAMEWORKS`).

    Returns:
        One entry per public initializer: the configured initializer, its law, dtypes and known
            defects.

    Raises:
        ValueError: An unknown framework name.
        ImportError: A chosen framework is not installed.

    Example:
        ```python
        for entry in initcheck.catalog(["jax"]):
            print(entry.id, entry.law)
        ```
    """
    chosen = _frameworks.parse(frameworks)
    if not _frameworks.valid(chosen):
        raise ValueError(f"frameworks={frameworks!r}: choose from {', '.join(FRAMEWORKS)}")
    _frameworks.require(chosen)
    return [entry for framework in chosen for entry in registry.CATALOGS[framework]()]


def eager_dtype_of(index: int, dtypes: Sequence[str], profile) -> str | None:
    """The dtype in which entry ``index`` of a catalog run calls its initializer eagerly: under a
    profile without the full grid (``ci``), one dtype per entry, rotating over its ``dtypes`` with
    the entry's index so that every dtype is called eagerly across the catalog; None (every dtype)
    under ``thorough``."""
    if get_profile(profile).full_grid or not dtypes:
        return None
    return str(dtypes[index % len(dtypes)])


def check_entry(
    entry: CatalogEntry,
    *,
    profile="ci",
    seed: int = 0,
    dtypes: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    eager_dtype: str | None = None,
) -> _defects.Triage:
    """Check ``entry`` in its dtypes (or ``dtypes``), each on one of the drawn shapes and every
    drawn shape in one dtype at least (``api.paired_cases``; the whole grid under a
    ``full_grid`` profile), and mark the failures its known defects explain. ``eager_dtype``: the
    one dtype whose cases call the initializer eagerly (``eager_dtype_of``)."""

    origin = f"entry = next(e for e in initcheck.catalog() if e.id == {entry.id!r})\ninit, law = entry.init, entry.law"
    report = api.check_paired(
        entry.init,
        entry.law,
        shapes=entry.shapes,
        dtypes=list(dtypes or entry.dtypes),
        properties=properties,
        profile=profile,
        seed=seed,
        origin=origin,
        eager_dtype=eager_dtype,
    )
    report.initializer = entry.id
    return _defects.triage(report, entry.defects)
