"""The conformance document: everything a report says, as plain JSON data (schema below, versioned).

``initcheck report`` and ``pytest --initcheck`` both build one; ``write`` saves it as JSON and/or
renders it as HTML, so the two files always say the same thing. The schema is documented in
``docs/report-schema.md``; bump ``SCHEMA_VERSION`` on any incompatible change.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax

from initcheck import _profiles as profiles
from initcheck import _sampler as sampler
from initcheck._property_registry import REGISTRY
from initcheck._version import __version__

SCHEMA_VERSION = 4
RESULTS = ("pass", "partial", "known", "fail", "error")  # a target's result, best to worst
FULL_COVERAGE = {"values": 1, "law_known": 1, "derived": 1, "covered": 1, "share": 1.0, "gaps": [], "computed": []}
STATUS_ORDER = ("error", "fail", "known", "pass", "skip")  # a matrix cell shows the first present


def package_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions, the device and the JAX settings that change what initializers draw."""

    return {
        "initcheck": __version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": package_version("jaxlib"),
        "flax": package_version("flax"),
        "haiku": package_version("dm-haiku"),
        "backend": jax.default_backend(),
        "device": sampler.device_description(),
        "x64": bool(jax.config.jax_enable_x64),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "default_prng_impl": str(jax.config.jax_default_prng_impl),
    }


def cell_status(verdicts: Sequence[dict]) -> str:
    """One (target, property) cell: ``known`` for failures a known defect explains, else the worst
    status among the verdicts (error, fail, pass, skip)."""
    statuses = {
        "known" if v.get("known_defect") and v["status"] in ("fail", "error") else v["status"] for v in verdicts
    }
    return next((s for s in STATUS_ORDER if s in statuses), "skip")


def target_result(
    verdicts: Sequence[dict],
    *,
    error: str | None = None,
    expected_defect_missing: bool = False,
    coverage: dict | None = None,
) -> str:
    """``error`` when the target could not be checked, ``fail`` when a failure is unexplained (or a
    known defect that should show did not), ``known`` when known defects explain every failure,
    ``partial`` when nothing failed but not every value was covered (``coverage``), else ``pass``."""
    if error:
        return "error"
    cells = {cell_status([v]) for v in verdicts}
    if cells & {"fail", "error"} or expected_defect_missing:
        return "fail"
    if "known" in cells:
        return "known"
    return "partial" if coverage is not None and coverage["covered"] < coverage["values"] else "pass"


def target(
    id: str,
    kind: str,
    *,
    verdicts: Sequence[dict] = (),
    law: str | None = None,
    error: str | None = None,
    framework: str | None = None,
    seconds: float = 0.0,
    expected_defect_missing: bool = False,
    coverage: dict | None = None,
    **extra,
) -> dict:
    """One row of the report (a catalog entry, a declared initializer or an audited model) from its
    verdicts and coverage as JSON data; ``extra`` keys are kept (catalog facts, pytest items)."""
    verdicts = list(verdicts)
    coverage = coverage or FULL_COVERAGE
    return {
        "id": id,
        "kind": kind,
        "framework": framework,
        "law": law,
        "result": target_result(
            verdicts, error=error, expected_defect_missing=expected_defect_missing, coverage=coverage
        ),
        "error": error,
        "seconds": seconds,
        "coverage": coverage,
        "false_alarm_bound": sum(v["alpha"] for v in verdicts if v["alpha"] > 0 and v["status"] in ("pass", "fail")),
        "verdicts": verdicts,
        **extra,
    }


def catalog_facts(entry, triage) -> dict:
    """What a catalog entry's row adds: its identity, dtypes, notes and known defects (and whether
    each showed in ``triage``)."""
    return {
        "framework": entry.framework,
        "same_as": entry.same_as,
        "dtypes": list(entry.dtypes),
        "notes": entry.notes,
        "expected_defect_missing": any(d.expected_now for d in triage.unobserved),
        "known_defects": [
            {
                "name": d.name,
                "package": d.package,
                "last_seen": d.last_seen,
                "summary": d.summary,
                "reference": d.reference,
                "observed": d in triage.observed,
                "expected_now": d.expected_now,
            }
            for d in entry.defects
        ],
    }


def catalog_target(entry, triage, verdicts_of: str | None = None) -> dict:
    """A catalog entry's row from its triaged check; ``verdicts_of`` names the entry whose check it
    shares (the same function: see ``_runner.duplicates``)."""
    report = triage.report
    row = target(
        entry.id,
        "catalog",
        verdicts=[v.to_dict() for v in report.verdicts],
        law=report.law,
        seconds=0.0 if verdicts_of else report.seconds,
        verdicts_of=verdicts_of,
        **catalog_facts(entry, triage),
    )
    if verdicts_of:
        row["false_alarm_bound"] = 0.0  # the same verdicts as ``verdicts_of``: no second chance of a false alarm
    return row


def build(
    generator: str,
    targets: Iterable[dict],
    *,
    profile,
    seed: int,
    seconds: float,
    eager_calls: str | None = None,
    lock: dict | None = None,
) -> dict:
    """The whole document; ``generator`` says what made it (``initcheck report``, ``pytest --initcheck``);
    ``eager_calls`` says in which dtypes a catalog run called the initializers eagerly; ``lock`` is
    the lock section of a run compared with a lock (``initcheck.lock.section``)."""

    prof = profiles.get(profile)
    targets = list(targets)
    seen = dict.fromkeys(v["property"] for t in targets for v in t["verdicts"])
    seen.update(
        dict.fromkeys(i["property"] for t in targets for i in t.get("items", ()) if i["property"] != "coverage")
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": generator,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "profile": {"name": prof.name, "n": prof.n, "cases": prof.cases, "alpha": prof.alpha},
        "seed": seed,
        "seconds": seconds,
        "false_alarm_bound": sum(t["false_alarm_bound"] for t in targets),
        "counts": {r: sum(1 for t in targets if t["result"] == r) for r in RESULTS},
        "properties": _ordered_properties(seen),
        "targets": targets,
        **({"eager_calls": eager_calls} if eager_calls else {}),
        **({"lock": lock} if lock is not None else {}),
    }


def _ordered_properties(seen: Iterable[str]) -> list[str]:
    """The checked properties in the registry's order (``initcheck._property_registry``), then the lock."""

    order = [p.name for p in REGISTRY] + ["lock"]
    seen = list(seen)
    return sorted(seen, key=lambda p: (order.index(p) if p in order else len(order), p))


def file_problem(path) -> str | None:
    """Why a report could not be written to the file ``path`` (checked before any work is done),
    or None. Missing parent folders are fine: ``write`` makes them."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder; give a file path"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return _folder_problem(path.parent)


def folder_problem(path) -> str | None:
    """Why reports could not be written into the folder ``path``, or None."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} is a file; give a folder (it is made if missing)"
    return _folder_problem(path)


def _folder_problem(folder: Path) -> str | None:
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{existing} is a file, so no folder can be made inside it"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    try:  # what os.access cannot tell (a read-only or virtual file system such as /proc, as root too)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"no file can be made in {existing} ({exc.strerror or exc})"
    return None
