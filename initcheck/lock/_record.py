"""What a run does to the lock (``merged``) and what its report says about it (``section``).

A run without ``update`` never changes a value the lock holds for its backend: it adds the targets
(and the backend) the lock lacks. ``update`` rewrites the backend's section from this run: every
target it derived, the lock's values of declared targets it did not run (deselected), and nothing
of targets no longer declared.
"""

from __future__ import annotations

from collections.abc import Iterable

from initcheck.lock._compare import NEW, STATUSES, Outcome
from initcheck.lock._file import Lock, Section

REMOVED = "removed"
"""A target the lock has that this run no longer declares."""


def removed(lock: Lock, backend: str, declared: Iterable[str] | None) -> list[str]:
    """Targets the lock holds for ``backend`` that are no longer declared (none when the declared
    targets are not known)."""
    section = lock.sections.get(backend)
    if section is None or declared is None:
        return []
    names = set(declared)
    return sorted(t for t in section.targets if t not in names)


def merged(
    lock: Lock,
    backend: str,
    outcomes: Iterable[Outcome],
    *,
    environment: dict,
    update: bool,
    declared: Iterable[str] | None = None,
) -> Lock:
    """The lock after this run (a new object; ``lock`` is unchanged)."""
    outcomes = [o for o in outcomes if o.recordable]
    fresh = {o.target: {"kind": o.kind, "values": dict(o.values)} for o in outcomes}
    sections = dict(lock.sections)
    old = sections.get(backend)
    if old is None or update:
        gone = set(removed(lock, backend, declared)) if update else set()
        kept = {t: v for t, v in (old.targets if old else {}).items() if t not in fresh and t not in gone}
        sections[backend] = Section(dict(environment), {**kept, **fresh})
    else:
        added = {o.target: fresh[o.target] for o in outcomes if o.status == NEW and o.target not in old.targets}
        sections[backend] = Section(old.environment, {**old.targets, **added})
    return Lock(lock.path, sections, exists=lock.exists)


def section(
    lock: Lock,
    backend: str,
    outcomes: Iterable[Outcome],
    *,
    update: bool,
    written: bool,
    declared: Iterable[str] | None = None,
) -> dict:
    """The report's lock section: counts by status, every target's outcome and the removed ones."""
    outcomes = sorted(outcomes, key=lambda o: (STATUSES.index(o.status), o.target))
    gone = removed(lock, backend, declared)
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in reversed(STATUSES)}
    recorded = lock.sections.get(backend)
    return {
        "path": str(lock.path),
        "backend": backend,
        "existed": lock.exists,
        "update": update,
        "written": written,
        "environment": recorded.environment if recorded is not None else None,
        "counts": {**counts, REMOVED: len(gone)},
        "targets": [{**o.to_dict(), "message": o.message(), "values": len(o.values)} for o in outcomes],
        "removed": gone,
    }
