"""Known defects of the frameworks' initializers: measured, referenced, version-aware.

Each framework's law module defines its own (``jax_laws.LOW_PRECISION_SAMPLING``, ...), and
``_frameworks.registry.sampling_defects`` finds those of a framework's initializer. A known defect is still reported as a failure (never hidden); it only marks the failing verdicts
with its name and reference, so that a catalog run can tell them from unexpected failures. Each
defect records the newest version of its package in which initcheck measured it (``last_seen``).
Up to that version, a run that does not see the defect is a regression of initcheck; after it, the
framework may have fixed it, and the run says so.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata

from packaging.version import Version

from initcheck._property_registry import covered_by
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
        return covered_by(self.group)

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
