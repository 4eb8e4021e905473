"""JAX's initializers in the catalog: every builder of ``jax.nn.initializers`` (and of Flax's
modules, which re-export them) in its default configuration, its law read from the one law table
(``jax_laws``), with the dtypes, refusals and known defects of JAX's implementation."""

from __future__ import annotations

from collections.abc import Callable

import jax

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import _defects, laws
from initcheck._entries import NO_16BIT_QR, NO_COMPLEX_SAMPLER, CatalogEntry, complex_dtypes, real_dtypes, wide_dtypes
from initcheck._frameworks import jax_laws

ORTHOGONAL_NOTE = "complex dtypes: not checked (initcheck has no unitary law yet)"


RANDOM = (jax_laws.LOW_PRECISION_SAMPLING,)  # the known defects of JAX's random builders


def _scaling_defects(distribution: str) -> tuple[_defects.KnownDefect, ...]:
    complex_defect = (jax_laws.JAX_COMPLEX_TRUNCATED_NORMAL,) if distribution == "truncated_normal" else ()
    return RANDOM + complex_defect


def _builds(mod, reexported: bool) -> list[tuple[str, str, Callable, tuple[str, ...], dict, tuple]]:
    """``(label, attribute, init, dtypes, refusals, known defects)`` of each default configuration."""
    real, cplx = real_dtypes(), complex_dtypes()
    no_complex = dict.fromkeys(cplx, NO_COMPLEX_SAMPLER)
    no_16bit = dict.fromkeys(("bfloat16", "float16"), NO_16BIT_QR)
    builds = [
        ("zeros", "zeros", mod.zeros, real + cplx, {}, ()),
        ("ones", "ones", mod.ones, real + cplx, {}, ()),
        ("constant(0.5)", "constant", mod.constant(0.5), real + cplx, {}, ()),
        ("normal()", "normal", mod.normal(), real + cplx, {}, RANDOM),
        ("uniform()", "uniform", mod.uniform(), real, no_complex, RANDOM),
        ("truncated_normal()", "truncated_normal", mod.truncated_normal(), real, no_complex, RANDOM),
        ("orthogonal()", "orthogonal", mod.orthogonal(), wide_dtypes(), no_16bit, ()),
        ("delta_orthogonal()", "delta_orthogonal", mod.delta_orthogonal(), wide_dtypes(), no_16bit, ()),
    ]
    for name, (_scale, _mode, distribution) in jax_laws.PRESETS.items():
        builds.append((f"{name}()", name, getattr(mod, name)(), real + cplx, {}, _scaling_defects(distribution)))
    defaults = (
        [(1.0, "fan_in", "truncated_normal")]  # a re-export of JAX's builder: one configuration suffices
        if reexported
        else [(1.0, mode, d) for mode in laws.MODES for d in laws.DISTRIBUTIONS]
    )
    for args in defaults:
        label = f"variance_scaling({', '.join(map(repr, args))})"
        defects = _scaling_defects(args[2])
        builds.append((label, "variance_scaling", mod.variance_scaling(*args), real + cplx, {}, defects))
    return builds


def jax_like(prefix: str, framework: str, mod, *, reexported: bool) -> list[CatalogEntry]:
    """Every builder of a ``jax.nn.initializers``-like module ``mod`` in its default configuration,
    as catalog entries of ``framework``; ``reexported``: ``mod`` re-exports JAX's builders (Flax's
    modules), so an entry that is JAX's very object says so (``same_as``)."""
    entries = []
    for label, attr, init, dtypes, refusals, defects in _builds(mod, reexported):
        law = jax_laws.law_of(init)
        if law is None:
            raise RuntimeError(f"{prefix}.{label}: jax_laws.law_of does not know it (another JAX version?)")
        for reason in dict.fromkeys(refusals.values()):
            law = law.refusing([d for d, r in refusals.items() if r == reason], reason)
        same = reexported and getattr(mod, attr) is getattr(jax.nn.initializers, attr, None)
        entries.append(
            CatalogEntry(
                f"{prefix}.{label}",
                framework,
                init,
                law,
                dtypes=dtypes,
                same_as=f"jax.nn.initializers.{label}" if same else None,
                defects=defects,
                configurations=None
                if attr in ("zeros", "ones")
                else strategies.jax_initializers(names=[attr], module=mod),
                notes=ORTHOGONAL_NOTE if attr.endswith("orthogonal") else "",
            )
        )
    return entries


def catalog_entries() -> list[CatalogEntry]:
    """``jax.nn.initializers``."""
    return jax_like("jax.nn.initializers", "jax", jax.nn.initializers, reexported=False)
