"""Known defects of the frameworks' initializers: measured, referenced, version-aware.

A known defect is still reported as a failure (never hidden); it only marks the failing verdicts
with its name and reference, so that a catalog run can tell them from unexpected failures. Each
defect records the newest version of its package in which initcheck measured it (``last_seen``).
Up to that version, a run that does not see the defect is a regression of initcheck; after it, the
framework may have fixed it, and the run says so.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata

from packaging.version import Version

from initcheck import _property_registry as registry
from initcheck._verdict import ERROR, FAIL, Conformance, Verdict


@dataclasses.dataclass(frozen=True)
class KnownDefect:
    """A defect of ``group`` (``initcheck._property_registry``) shows as failures of the properties
    that group covers on cases of ``dtypes``. ``contract`` covers the verdicts it gates too
    (``Verdict.gated``: not run because the contract failed)."""

    name: str
    package: str
    last_seen: str
    group: str
    dtypes: tuple[str, ...]
    summary: str
    reference: str

    @property
    def properties(self) -> tuple[str, ...]:
        """The properties whose failures it shows (the registry's properties of its group)."""
        return registry.covered_by(self.group)

    def covers(self, verdict: Verdict) -> bool:
        if verdict.status not in (FAIL, ERROR) or verdict.case.dtype not in self.dtypes:
            return False
        return verdict.property in self.properties or ("contract" in self.properties and verdict.gated)

    @property
    def installed(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    @property
    def expected_now(self) -> bool:
        """True when the installed version is no newer than the last one measured (so it must show)."""
        installed = self.installed
        return installed is not None and Version(installed) <= Version(self.last_seen)

    def text(self) -> str:
        return f"known defect {self.name}: {self.summary} (see {self.reference})"


_JAX = "https://github.com/jax-ml/jax/blob/jax-v0.10.2/jax/_src"

LOW_PRECISION_SAMPLING = KnownDefect(
    "jax-low-precision-sampling",
    "jax",
    "0.10.2",
    registry.LOW_PRECISION,
    ("bfloat16", "float16"),
    "jax.random.uniform/normal/truncated_normal draw 16-bit outputs from only m mantissa bits "
    "(128 distinct bfloat16 values, 1024 float16 values, no normal tail beyond about 2.9 sd in "
    "bfloat16) instead of sampling in float32 and rounding: too few distinct values (precision), "
    "tails cut short and single values far more frequent than the rounded law allows "
    "(distribution), and moments off from those of the law rounded to the dtype",
    f"{_JAX}/random/core.py (_uniform builds 16-bit floats from nmant random bits); initcheck.inits "
    "samples in float32 and rounds",
)
HAIKU_LOW_PRECISION_SAMPLING = dataclasses.replace(
    LOW_PRECISION_SAMPLING,
    name="haiku-low-precision-sampling",
    summary="Haiku's initializers call jax.random in the requested dtype and inherit its 16-bit "
    "coarseness: " + LOW_PRECISION_SAMPLING.summary,
)
KERAS_LOW_PRECISION_SAMPLING = dataclasses.replace(
    LOW_PRECISION_SAMPLING,
    name="keras-low-precision-sampling",
    package="keras",
    last_seen="3.15.1",
    summary="Keras's JAX backend calls jax.random in the requested dtype and inherits its 16-bit "
    "coarseness: " + LOW_PRECISION_SAMPLING.summary,
    reference="https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/jax/random.py "
    "(normal, uniform, truncated_normal pass the dtype to jax.random)",
)
EQUINOX_LOW_PRECISION_SAMPLING = dataclasses.replace(
    LOW_PRECISION_SAMPLING,
    name="equinox-low-precision-sampling",
    package="equinox",
    last_seen="0.13.8",
    summary="Equinox's layers draw with jax.random in the layer's dtype and inherit its 16-bit "
    "coarseness: " + LOW_PRECISION_SAMPLING.summary,
    reference="https://github.com/patrick-kidger/equinox/blob/v0.13.8/equinox/nn/_misc.py "
    "(default_init: jax.random.uniform(key, shape, dtype, ...)); Embedding: jax.random.normal",
)
KERAS_STFT_INPUT_CHANNELS = KnownDefect(
    "keras-stft-input-channels",
    "keras",
    "3.15.1",
    registry.WRONG_SHAPE,
    ("float32", "float64"),
    "keras.initializers.STFT ignores the input-channel axis of its (frame_length, input_channels, "
    "bins) shape: any input_channels other than 1 (0 or 2, say) gets an array of shape "
    "(frame_length, 1, bins) instead of the shape asked for or an error",
    "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/initializers/constant_initializers.py "
    "(STFT.__call__ unpacks input_channels and never uses it)",
)
JAX_COMPLEX_TRUNCATED_NORMAL = KnownDefect(
    "jax-complex-truncated-normal-variance",
    "jax",
    "0.10.2",
    registry.WRONG_SCALE,
    ("complex64", "complex128"),
    "complex truncated-normal variance scaling divides by 0.95311164380491208, which is not the std "
    "of the modulus-truncated complex normal (0.96196...): E|z|^2 is 1.87% too large and |z| "
    "exceeds the promised truncation radius",
    f"{_JAX}/nn/initializers.py (variance_scaling, distribution='truncated_normal'); the constant is "
    "sqrt(E[T]), T ~ Exp(1) truncated to [0, 4]: initcheck.laws.COMPLEX_TRUNCATED_MODULUS2_MEAN",
)
HAIKU_COMPLEX_TRUNCATED_NORMAL = KnownDefect(
    "haiku-complex-truncated-normal-variance",
    "dm-haiku",
    "0.0.17",
    registry.WRONG_SCALE,
    ("complex64", "complex128"),
    "complex VarianceScaling with distribution='truncated_normal' draws the real and imaginary parts "
    "each with the full target variance: E|z|^2 is twice scale / n",
    "https://github.com/google-deepmind/dm-haiku/blob/v0.0.17/haiku/_src/initializers.py "
    "(VarianceScaling -> TruncatedNormal on shape [2, *shape])",
)
HAIKU_COMPLEX_UNIFORM = KnownDefect(
    "haiku-complex-uniform-raises",
    "dm-haiku",
    "0.0.17",
    registry.RAISES,
    ("complex64", "complex128"),
    "complex VarianceScaling with distribution='uniform' raises ValueError (jax.random.uniform has "
    "no complex dtypes) although its normal and truncated-normal siblings accept complex dtypes",
    "https://github.com/google-deepmind/dm-haiku/blob/v0.0.17/haiku/_src/initializers.py "
    "(VarianceScaling -> RandomUniform)",
)


def of_initializer(init) -> tuple[KnownDefect, ...]:
    """The known defects a framework's own initializer ``init`` (already unwrapped of metadata and
    partials) shows when the framework calls it in a 16-bit dtype: JAX's and Flax's samplers, and
    Haiku's initializers, which call them, Keras's initializers and Equinox's layers (``init`` is then
    the layer's class). A user's own initializer is never excused."""
    if not callable(init) or getattr(init, "__initcheck_law__", None) is not None:
        return ()
    module = getattr(init, "__module__", None)
    module = module if isinstance(module, str) else type(init).__module__
    if module.startswith("haiku"):
        return (HAIKU_LOW_PRECISION_SAMPLING,)
    if module.startswith("keras"):
        return (KERAS_LOW_PRECISION_SAMPLING,)
    if module.startswith("equinox"):
        return (EQUINOX_LOW_PRECISION_SAMPLING,)
    if module.split(".")[0] in ("jax", "flax"):
        return (LOW_PRECISION_SAMPLING,)
    return ()


def mark(verdicts, defects) -> list[Verdict]:
    """``verdicts`` with the failures that ``defects`` explain marked with the defect (still failures)."""
    out = []
    for verdict in verdicts:
        defect = next((d for d in defects if d.covers(verdict)), None)
        out.append(
            verdict
            if defect is None
            else dataclasses.replace(verdict, known_defect=defect.name, message=f"{verdict.message} [{defect.text()}]")
        )
    return out


@dataclasses.dataclass
class Triage:
    """A catalog entry's report with its known defects marked; ``unexpected`` failures are the
    ones no known defect explains; ``unobserved`` the defects it should have shown but did not."""

    report: Conformance
    unexpected: list[Verdict]
    observed: list[KnownDefect]
    unobserved: list[KnownDefect]

    @property
    def ok(self) -> bool:
        """Nothing unexpected failed (known defects may have)."""
        return not self.unexpected


def triage(report: Conformance, defects) -> Triage:
    """Mark the verdicts of ``report`` that ``defects`` explain (in place) and sort the rest."""
    report.verdicts = mark(report.verdicts, defects)
    unexpected = [v for v in report.verdicts if v.status in (FAIL, ERROR) and not v.known_defect]
    observed = [d for d in defects if any(v.known_defect == d.name for v in report.verdicts)]
    checked = {(v.property, v.case.dtype) for v in report.verdicts}
    unobserved = [
        d for d in defects if d not in observed and any((p, t) in checked for p in d.properties for t in d.dtypes)
    ]
    return Triage(report, unexpected, observed, unobserved)
