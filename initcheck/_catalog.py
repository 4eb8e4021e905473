"""The built-in catalog: the public initializers of JAX, Flax (linen and nnx), Haiku and Keras, and
the default initialization of every Equinox layer, each with the law its documentation promises.
Entries that are the very same object as a JAX initializer say so (``same_as``) and are still
checked."""

from __future__ import annotations

from collections.abc import Sequence

import jax

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import _api as api
from initcheck import _defects, _frameworks, inits, laws
from initcheck._entries import (
    NO_16BIT_QR,
    NO_COMPLEX_SAMPLER,
    CatalogEntry,
    complex_dtypes,
    real_dtypes,
    wide_dtypes,
)
from initcheck._frameworks import FRAMEWORKS, JAX_PRESETS
from initcheck._profiles import get as get_profile


def _jax_like(prefix: str, framework: str, mod) -> list[CatalogEntry]:
    """Every builder of a ``jax.nn.initializers``-like module in its default configuration, with the
    dtypes, refusals and known defects of JAX's implementation (Flax re-exports it)."""

    real, cplx, random_defects = real_dtypes(), complex_dtypes(), (_defects.LOW_PRECISION_SAMPLING,)
    no_complex = dict.fromkeys(cplx, NO_COMPLEX_SAMPLER)
    no_16bit = dict.fromkeys(("bfloat16", "float16"), NO_16BIT_QR)
    items = [  # (name, attribute, init, law, dtypes, refusals, defects)
        ("zeros", "zeros", mod.zeros, laws.Constant(0.0), real + cplx, {}, ()),
        ("ones", "ones", mod.ones, laws.Constant(1.0), real + cplx, {}, ()),
        ("constant(0.5)", "constant", mod.constant(0.5), laws.Constant(0.5), real + cplx, {}, ()),
        ("normal()", "normal", mod.normal(), laws.Normal(0.01), real + cplx, {}, random_defects),
        ("uniform()", "uniform", mod.uniform(), laws.Uniform(0.0, 0.01), real, no_complex, random_defects),
        (
            "truncated_normal()",
            "truncated_normal",
            mod.truncated_normal(),
            laws.TruncatedNormal(0.01),
            real,
            no_complex,
            random_defects,
        ),
        ("orthogonal()", "orthogonal", mod.orthogonal(), laws.Orthogonal(), wide_dtypes(), no_16bit, ()),
        (
            "delta_orthogonal()",
            "delta_orthogonal",
            mod.delta_orthogonal(),
            laws.DeltaOrthogonal(),
            wide_dtypes(),
            no_16bit,
            (),
        ),
    ]
    for name, args in JAX_PRESETS.items():
        items.append(
            (
                f"{name}()",
                name,
                getattr(mod, name)(),
                laws.VarianceScaling(*args),
                real + cplx,
                {},
                _jax_scaling_defects(args[2]),
            )
        )
    default_vs = (
        [(1.0, "fan_in", "truncated_normal")]
        if framework == "flax"
        else [(1.0, mode, d) for mode in laws.MODES for d in laws.DISTRIBUTIONS]
    )
    for args in default_vs:
        items.append(
            (
                f"variance_scaling({', '.join(map(repr, args))})",
                "variance_scaling",
                mod.variance_scaling(*args),
                laws.VarianceScaling(*args),
                real + cplx,
                {},
                _jax_scaling_defects(args[2]),
            )
        )
    entries = []
    for name, attr, init, law, dtypes, refusals, defects in items:
        same = getattr(mod, attr) is getattr(jax.nn.initializers, attr, None) and framework != "jax"
        configurations = None if attr in ("zeros", "ones") else strategies.jax_initializers(names=[attr], module=mod)
        for reason in dict.fromkeys(refusals.values()):
            law = law.refusing([d for d, r in refusals.items() if r == reason], reason)
        entries.append(
            CatalogEntry(
                f"{prefix}.{name}",
                framework,
                init,
                law,
                dtypes=dtypes,
                same_as=f"jax.nn.initializers.{name}" if same else None,
                defects=defects,
                configurations=configurations,
                notes="complex dtypes: not checked (initcheck has no unitary law yet)"
                if attr.endswith("orthogonal")
                else "",
            )
        )
    return entries


def _jax_scaling_defects(distribution: str) -> tuple[_defects.KnownDefect, ...]:
    complex_defect = (_defects.JAX_COMPLEX_TRUNCATED_NORMAL,) if distribution == "truncated_normal" else ()
    return (_defects.LOW_PRECISION_SAMPLING,) + complex_defect


def _jax() -> list[CatalogEntry]:
    return _jax_like("jax.nn.initializers", "jax", jax.nn.initializers)


def _flax() -> list[CatalogEntry]:
    import flax.linen as nn  # lazy: Flax loads only when a Flax target is used
    import flax.nnx as nnx  # lazy: Flax loads only when a Flax target is used

    entries = []
    for prefix, mod in (("flax.linen.initializers", nn.initializers), ("flax.nnx.initializers", nnx.initializers)):
        entries += _jax_like(prefix, "flax", mod)
        for name, value in (("zeros_init", 0.0), ("ones_init", 1.0)):
            entries.append(
                CatalogEntry(
                    f"{prefix}.{name}()",
                    "flax",
                    getattr(mod, name)(),
                    laws.Constant(value),
                    dtypes=real_dtypes() + complex_dtypes(),
                    configurations=strategies.flax_initializers(names=[name], module=mod),
                )
            )
    return entries


def _haiku() -> list[CatalogEntry]:
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    hi = hk.initializers
    real, cplx = real_dtypes(), complex_dtypes()
    low = (_defects.HAIKU_LOW_PRECISION_SAMPLING,)
    no_complex = "jax.random.uniform has no complex dtypes (ValueError)"
    items = [  # (name, init, law, dtypes, defects)
        ("Constant(0.5)", hi.Constant(0.5), laws.Constant(0.5), real + cplx, ()),
        ("RandomNormal()", hi.RandomNormal(), laws.Normal(1.0), real + cplx, low),
        ("RandomUniform()", hi.RandomUniform(), laws.Uniform(0.0, 1.0).refusing(cplx, no_complex), real, low),
        ("TruncatedNormal()", hi.TruncatedNormal(), laws.TruncatedNormal(1.0), real, low),
        (
            "UniformScaling(2.0)",
            hi.UniformScaling(2.0),
            laws.VarianceScaling(4.0, "fan_in", "uniform", fans="haiku_input_size").refusing(cplx, no_complex),
            real,
            low,
        ),
        (
            "Orthogonal()",
            hi.Orthogonal(),
            laws.Orthogonal().refusing(("bfloat16", "float16"), NO_16BIT_QR),
            wide_dtypes(),
            (),
        ),
        ("Identity()", hi.Identity(), laws.Identity(), real + cplx, ()),
    ]
    for mode in ("fan_in", "fan_out", "fan_avg"):
        for distribution in laws.DISTRIBUTIONS:
            defects = low + {
                "truncated_normal": (_defects.HAIKU_COMPLEX_TRUNCATED_NORMAL,),
                "uniform": (_defects.HAIKU_COMPLEX_UNIFORM,),
            }.get(distribution, ())
            items.append(
                (
                    f"VarianceScaling(1.0, {mode!r}, {distribution!r})",
                    hi.VarianceScaling(1.0, mode, distribution),
                    laws.VarianceScaling(1.0, mode, distribution, fans="haiku"),
                    real + cplx,
                    defects,
                )
            )
    notes = {
        "TruncatedNormal": "complex dtypes: not checked (Haiku draws the real and imaginary parts "
        "independently; no law states that promise)",
        "Orthogonal": "complex dtypes: not checked (initcheck has no unitary law yet)",
    }
    entries = []
    for name, init, law, dtypes, defects in items:
        cls = name.split("(")[0]
        entries.append(
            CatalogEntry(
                f"haiku.initializers.{name}",
                "haiku",
                init,
                law,
                dtypes=dtypes,
                defects=defects,
                configurations=strategies.haiku_initializers(names=[cls]),
                notes=notes.get(cls, ""),
            )
        )
    return entries


def _initcheck() -> list[CatalogEntry]:
    real = real_dtypes()
    builds = [
        (
            "variance_scaling(1.0, 'fan_in', 'truncated_normal')",
            inits.variance_scaling(1.0, "fan_in", "truncated_normal"),
            real + complex_dtypes(),
        ),
        (
            "variance_scaling(2.0, 'fan_avg', 'uniform')",
            inits.variance_scaling(2.0, "fan_avg", "uniform"),
            real + complex_dtypes(),
        ),
        (
            "variance_scaling(1.0, 'fan_out', 'normal')",
            inits.variance_scaling(1.0, "fan_out", "normal"),
            real + complex_dtypes(),
        ),
        ("kaiming_uniform()", inits.kaiming_uniform(), real),
        ("kaiming_normal()", inits.kaiming_normal(), real),
        ("xavier_uniform()", inits.xavier_uniform(), real),
        ("xavier_normal()", inits.xavier_normal(), real),
        ("torch_default_weight()", inits.torch_default_weight(), real),
        ("torch_default_bias(64)", inits.torch_default_bias(64), real),
        ("trunc_normal()", inits.trunc_normal(), real),
        ("scaled_normal(1.0)", inits.scaled_normal(1.0), real),
        ("threshold_uniform()", inits.threshold_uniform(), real),
        ("sparse(0.1)", inits.sparse(0.1), real),
        ("dirac()", inits.dirac(), real),
        ("eye()", inits.eye(), real),
        ("keras_default()", inits.keras_default(), real),
        ("keras_embedding()", inits.keras_embedding(), real),
        ("mxnet_default()", inits.mxnet_default(), real),
        ("normal(0.02)", inits.normal(0.02), real),
        ("uniform(-0.1, 0.1)", inits.uniform(-0.1, 0.1), real),
    ]
    return [
        CatalogEntry(
            f"initcheck.inits.{name}",
            "initcheck",
            init,
            init.__initcheck_law__,
            dtypes=dtypes,
            configurations=strategies.initcheck_initializers(names=[name.split("(")[0]]),
        )
        for name, init, dtypes in builds
    ]


def _equinox() -> list[CatalogEntry]:
    from initcheck._catalog_ecosystem import equinox_entries  # lazy: Equinox is optional

    return equinox_entries()


def _keras() -> list[CatalogEntry]:
    from initcheck._catalog_ecosystem import keras_entries  # lazy: Keras is optional

    return keras_entries()


_BUILDERS = {
    "jax": _jax,
    "flax": _flax,
    "haiku": _haiku,
    "initcheck": _initcheck,
    "equinox": _equinox,
    "keras": _keras,
}


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
    return [entry for framework in chosen for entry in _BUILDERS[framework]()]


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
