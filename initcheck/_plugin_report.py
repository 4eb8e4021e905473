"""The report of ``pytest --initcheck``: every item's verdicts gathered on the controller, built
into one document, written where asked and summarized at the end of the session."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from initcheck import _document as document
from initcheck import _output, lock
from initcheck._plugin_settings import Settings
from initcheck._targets import declared

PROPERTY_KEY = "initcheck"  # the user_properties key under which an item's part of the report travels


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``initcheck::<target>[<property>]`` -> (target, property)."""
    inner = nodeid.removeprefix("initcheck::")
    cut = inner.rfind("[")
    return inner[:cut], inner[cut + 1 : -1]


def conformance_document(results: dict, settings: Settings, seconds: float, lock_section: dict | None = None) -> dict:
    """The report of a session from its items' results, one row per target, in collection order."""

    rows: dict[str, dict] = {}
    for nodeid in sorted(results):
        item = results[nodeid]
        data = item["data"] or {}
        name, prop = split_nodeid(nodeid)
        row = rows.setdefault(
            name,
            {
                "kind": data.get("kind"),
                "order": data.get("order"),
                "facts": {},
                "law": None,
                "seconds": 0.0,
                "error": None,
                "verdicts": [],
                "items": [],
                "coverage": None,
            },
        )
        row["kind"] = row["kind"] or data.get("kind")
        row["order"] = row["order"] if row["order"] is not None else data.get("order")
        row["law"] = row["law"] or data.get("law")
        row["seconds"] = max(row["seconds"], data.get("seconds", 0.0))
        row["error"] = row["error"] or data.get("error") or (item.get("message") and f"{prop}: {item['message']}")
        row["verdicts"] += data.get("verdicts", [])
        row["coverage"] = row["coverage"] or data.get("coverage")
        row["facts"].update(
            {
                k: data[k]
                for k in (
                    "framework",
                    "same_as",
                    "dtypes",
                    "notes",
                    "known_defects",
                    "expected_defect_missing",
                    "signal",
                )
                if k in data
            }
        )
        row["items"].append(
            {
                "nodeid": nodeid,
                "property": prop,
                "outcome": item["outcome"],
                "worker": data.get("worker"),
                **({"message": item["message"]} if "message" in item else {}),
            }
        )
    ordered = sorted(rows.items(), key=lambda kv: (kv[1]["order"] is None, kv[1]["order"] or 0, kv[0]))
    if any(row["kind"] is None for _, row in ordered):  # no item of it reported back (its xdist worker died)
        declared_kinds = {t.name: t.kind for t in declared(settings.modules, settings.models, settings.frameworks)}
        for name, row in ordered:
            row["kind"] = row["kind"] or declared_kinds.get(name, "broken")
    targets = [
        document.target(
            name,
            row["kind"],
            verdicts=row["verdicts"],
            law=row["law"],
            error=row["error"],
            seconds=row["seconds"],
            items=row["items"],
            coverage=row["coverage"],
            **row["facts"],
        )
        for name, row in ordered
    ]
    return document.build(
        "pytest --initcheck",
        targets,
        profile=settings.profile_object,
        seed=settings.seed,
        seconds=seconds,
        lock=lock_section,
    )


class InitcheckReporter:
    """Controller-only work: keep every item's verdicts and outcome (the workers' too, under
    xdist), build the session's document once, write it where asked and summarize it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.results: dict[str, dict] = {}
        self.started = time.perf_counter()
        self.document: dict | None = None
        self.written: list[Path] = []
        self.lock_section: dict | None = None
        self.lock_problem: str | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.perf_counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith("initcheck::"):
            return
        data = next((json.loads(str(v)) for k, v in report.user_properties if k == PROPERTY_KEY), None)
        entry = self.results.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "data": None})
        if data is not None:
            entry["data"] = data
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            if data is None:  # e.g. a crashed xdist worker: no verdicts came back
                entry["message"] = str(report.longrepr)[-2000:]
        elif report.skipped and report.when in ("setup", "call"):
            entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Build the document once: written here, summarized by the terminal summary (after)."""
        if not self.results:
            return
        config = session.config
        outcomes = [
            lock.Outcome.from_dict(r["data"]["lock"]) for r in self.results.values() if "lock" in (r["data"] or {})
        ]
        if self.settings.lock is not None and outcomes:
            self.lock_section = self._update_lock(outcomes)
        self.document = conformance_document(
            self.results, self.settings, time.perf_counter() - self.started, lock_section=self.lock_section
        )
        json_path, html_path = config.getoption("initcheck_json"), config.getoption("initcheck_report")
        if json_path is not None or html_path is not None:
            self.written = _output.write(self.document, json_path=json_path, html_path=html_path)

    def _update_lock(self, outcomes: list[lock.Outcome]) -> dict:
        """Merge this run into the lock file (targets and backends it lacks; everything with
        ``--initcheck-lock-update``) and return the report's lock section."""
        settings = self.settings
        assert settings.lock is not None
        before = lock.Lock.read(settings.lock)
        names = [t.name for t in declared(settings.modules, settings.models, settings.frameworks) if t.kind != "broken"]
        backend = lock.backend()
        after = lock.merged(
            before,
            backend,
            outcomes,
            environment=lock.environment(settings.seed),
            update=settings.lock_update,
            declared=names,
        )
        try:
            written = after.write()
        except OSError as exc:
            written, self.lock_problem = False, f"could not write the lock {settings.lock}: {exc}"
        return lock.section(before, backend, outcomes, update=settings.lock_update, written=written, declared=names)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.document is not None:
            counts = ", ".join(f"{n} {r.upper()}" for r, n in self.document["counts"].items() if n)
            terminalreporter.write_line(f"initcheck: {len(self.document['targets'])} targets: {counts}")
            for target in self.document["targets"]:
                if target["result"] == "partial":
                    coverage = target["coverage"]
                    terminalreporter.write_line(
                        f"initcheck: PARTIAL {target['id']}: {coverage['covered']} of "
                        f"{coverage['values']} values covered (law known and derivation modelled)"
                    )
        if self.lock_section is not None:
            section = self.lock_section
            counts = ", ".join(f"{n} {status}" for status, n in section["counts"].items() if n)
            wrote = ""
            if section["written"]:
                wrote = (
                    "; rewritten" if section["update"] else "; added to the lock" if section["existed"] else "; written"
                )
            terminalreporter.write_line(f"initcheck: lock {section['path']} ({section['backend']}): {counts}{wrote}")
            for name in section["removed"]:
                terminalreporter.write_line(
                    f"initcheck: lock: {name} is no longer declared"
                    + ("; dropped from the lock" if section["update"] else "; --initcheck-lock-update drops it")
                )
        if self.lock_problem:
            terminalreporter.write_line(f"initcheck: {self.lock_problem}", red=True)
        for path in self.written:
            terminalreporter.write_line(f"initcheck: wrote {path}")
