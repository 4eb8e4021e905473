"""A target's values against the lock, and the likely cause of a change, found by trying.

A changed value is re-derived under each setting that the lock recorded differently (one at a time,
then all together), then under each setting flipped blind (every other PRNG implementation): the
first under which every value equals the lock's names the cause. When none does, the cause is what
differs between the lock's environment and this run's (versions, XLA's flags, the seed), or, when
nothing does, the code that makes the values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from initcheck._verdict import FAIL, PASS, SKIP, Case, Verdict
from initcheck.lock import _settings as settings
from initcheck.lock._file import Lock

MATCHED = "matched"
"""A target's values are the lock's, bit for bit."""
CHANGED = "changed"
"""A target's values differ from the lock's (the outcome names the cause when a setting explains it)."""
UPDATED = "updated"
"""A target's values differed from the lock's and this run rewrites them (`--update`)."""
NEW = "new"
"""A target the lock does not have yet (for this backend): its values are recorded."""
BACKEND = "backend"
"""A target new to this backend's section whose values differ from another backend's: a backend
difference, recorded for this backend, never a failure."""
UNREPRODUCIBLE = "unreproducible"
"""A target whose values differ between two inits at the same key in one process: it cannot be locked."""
STATUSES = (CHANGED, UNREPRODUCIBLE, UPDATED, BACKEND, NEW, MATCHED)
"""Every status, worst first."""
SHOWN = 8  # value names listed in a message

Derive = Callable[[], dict[str, str]]  # the target's digests, computed now under the settings in force


@dataclasses.dataclass
class Outcome:
    """One target against the lock: ``values`` are its digests now; ``changed``, ``added`` and
    ``gone`` name the values that differ from, are missing from or only in the lock's."""

    target: str
    kind: str
    status: str
    values: dict[str, str]
    changed: list[str] = dataclasses.field(default_factory=list)
    added: list[str] = dataclasses.field(default_factory=list)
    gone: list[str] = dataclasses.field(default_factory=list)
    cause: str = ""
    compared_with: str = ""  # the backend whose lock values were compared

    @property
    def recordable(self) -> bool:
        """Its values may go into the lock (an unreproducible target's may not)."""
        return self.status != UNREPRODUCIBLE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Outcome:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def message(self) -> str:
        n = len(self.values)
        what = _differences_text(self.changed, self.added, self.gone)
        if self.status == MATCHED:
            extra = f" (the same values as the lock's {self.compared_with} values)" if self.compared_with else ""
            return f"{n} values match the lock{extra}"
        if self.status == NEW:
            return f"not in the lock: its {n} values are recorded"
        if self.status == BACKEND:
            return (
                f"{what} differ from the lock's {self.compared_with} values: a backend difference (backends may compute "
                f"the same draw to other last bits), not a failure; its values are recorded for this backend"
            )
        if self.status == UNREPRODUCIBLE:
            return f"cannot be locked: {self.cause}"
        verb = "changed since the lock" if self.status == CHANGED else "changed and rewritten in the lock (update)"
        return f"{what} {verb}; {self.cause}"

    def lines(self) -> list[str]:
        """``message()`` for a terminal: what changed, then each part of the cause on a line."""
        first, _, cause = self.message().partition("; ")
        return [first, *(f"  {part}" for part in cause.split("; ") if part)]

    def verdict(self) -> Verdict:
        status = {MATCHED: PASS, CHANGED: FAIL, UNREPRODUCIBLE: FAIL}.get(self.status, SKIP)
        case = Case((), "", "fixed keys" if self.kind != "model" else "the audit's rng")
        return Verdict("lock", status, None, None, 0.0, len(self.values), case, self.message(), "")


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _differences_text(changed: list[str], added: list[str], gone: list[str]) -> str:
    parts = []
    if changed:
        parts.append(f"{len(changed)} value{'s' * (len(changed) != 1)} ({_names(changed)})")
    if added:
        parts.append(f"{len(added)} value{'s' * (len(added) != 1)} not in the lock ({_names(added)})")
    if gone:
        parts.append(f"{len(gone)} value{'s' * (len(gone) != 1)} of the lock no longer made ({_names(gone)})")
    return "; ".join(parts) or "no values"


def differences(recorded: dict[str, str], now: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(changed, added, gone) value names, sorted."""
    changed = sorted(k for k in recorded.keys() & now.keys() if recorded[k] != now[k])
    return changed, sorted(now.keys() - recorded.keys()), sorted(recorded.keys() - now.keys())


def check_target(
    target: str, kind: str, derive: Derive, lock: Lock, backend: str, *, update: bool, update_hint: str, seed: int
) -> Outcome:
    """``target``'s values now against ``lock``'s for ``backend``; with a cause when they changed.
    A target the lock lacks for this backend is derived twice (values that differ between two inits
    cannot be locked) and compared with another backend's values where the lock has them."""
    values = derive()
    section = lock.sections.get(backend)
    recorded = section.values(target) if section is not None else None
    if section is not None and recorded is not None:
        changed, added, gone = differences(recorded, values)
        if not (changed or added or gone):
            return Outcome(target, kind, MATCHED, values)
        cause = find_cause(derive, recorded, values, section.environment, update_hint, seed)
        status = UPDATED if update else (UNREPRODUCIBLE if cause.startswith(NOT_REPRODUCIBLE) else CHANGED)
        return Outcome(target, kind, status, values, changed, added, gone, cause)
    again = derive()
    if again != values:
        changed, added, gone = differences(values, again)
        return Outcome(target, kind, UNREPRODUCIBLE, values, changed, added, gone, _unreproducible(changed))
    for other, other_values in lock.other_backends(backend, target):
        changed, added, gone = differences(other_values, values)
        if changed or added or gone:
            return Outcome(target, kind, BACKEND, values, changed, added, gone, compared_with=other)
        return Outcome(target, kind, NEW, values, compared_with=other)
    return Outcome(target, kind, NEW, values)


NOT_REPRODUCIBLE = "two inits in this process at the same key gave different values"


def _unreproducible(names: list[str]) -> str:
    return (
        f"{NOT_REPRODUCIBLE} ({_names(names)}): a random source outside the key (numpy's or Python's global "
        "RNG, an unseeded keras SeedGenerator: call keras.utils.set_random_seed in the factory, the time)"
    )


def _candidates(lock_settings: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings to try: each one the lock recorded differently, then all of those together, then
    each setting flipped blind (every other value worth trying)."""
    differing = {n: v for n, v in lock_settings.items() if n in settings.BY_NAME and now.get(n) != v}
    candidates = [{n: v} for n, v in differing.items()]
    if len(differing) > 1:
        candidates.append(differing)
    for s in settings.SETTINGS:
        if s.name in now:
            candidates += [{s.name: v} for v in s.blind(now[s.name]) if {s.name: v} not in candidates]
    return candidates


def find_cause(
    derive: Derive,
    recorded: dict[str, str],
    values: dict[str, str],
    lock_environment: dict,
    update_hint: str,
    seed: int,
) -> str:
    """Why the values differ from ``recorded``, in words."""
    again = derive()
    if again != values:
        return _unreproducible(differences(values, again)[0])
    now = settings.current()
    lock_settings = dict(lock_environment.get("settings", {}))
    tried, unavailable = [], []
    for candidate in _candidates(lock_settings, now):
        text = ", ".join(f"{n}={v!r}" for n, v in candidate.items())
        try:
            with settings.applied(candidate):
                found = derive()
        except settings.Unavailable as exc:
            unavailable.append(f"{text} ({exc})")
            continue
        except Exception as exc:  # noqa: BLE001 - an init that fails under a setting does not reproduce it
            tried.append(f"{text} (raised {type(exc).__name__})")
            continue
        if found == recorded:
            return _reproduced(candidate, lock_settings, now, lock_environment, update_hint)
        tried.append(text)
    return _unexplained(tried, unavailable, lock_environment, update_hint, seed)


def _version_changes(lock_environment: dict) -> list[str]:
    was, now = lock_environment.get("versions", {}), settings.versions()
    return [f"{p} {was.get(p)} -> {now.get(p)}" for p in sorted(set(was) | set(now)) if was.get(p) != now.get(p)]


def _reproduced(candidate: dict, lock_settings: dict, now: dict, lock_environment: dict, update_hint: str) -> str:
    shown = ", ".join(f"{n}={v!r}" for n, v in candidate.items())
    parts = [f"the values match the lock with {shown}"]
    for name, value in candidate.items():
        setting = settings.BY_NAME[name]
        recorded = (
            f"the lock was made with {name}={lock_settings[name]!r}, this run has {now.get(name)!r}"
            if lock_settings.get(name) == value
            else f"this run has {name}={now.get(name)!r} although the lock recorded {lock_settings.get(name)!r} "
            "(the code that made the lock's values set it itself)"
        )
        parts.append(f"{recorded}: {setting.history}")
        parts.append(f"to reproduce the old values set {setting.how(value)}")
    if versions := _version_changes(lock_environment):
        parts.append(f"versions since the lock: {', '.join(versions)}")
    parts.append(f"to accept the new values, {update_hint}")
    return "; ".join(parts)


def _unexplained(tried: list[str], unavailable: list[str], lock_environment: dict, update_hint: str, seed: int) -> str:
    parts = [f"no setting reproduces the lock (tried {', '.join(tried) or 'none'})"]
    if unavailable:
        parts.append(f"could not try {', '.join(unavailable)}")
    now = settings.environment(seed)
    differing = []
    if lock_environment.get("seed", seed) != seed:
        differing.append(f"the lock was made with seed {lock_environment['seed']}, this run uses seed {seed}")
    if versions := _version_changes(lock_environment):
        differing.append(
            f"versions that differ between the lock and now: {', '.join(versions)} (an upgrade can change an "
            "initializer's sampler, dtype rule or key derivation; pin the lock's versions to reproduce its values)"
        )
    if lock_environment.get("xla_flags", "") != now["xla_flags"]:
        differing.append(
            f"XLA_FLAGS differ (lock {lock_environment.get('xla_flags', '')!r}, now {now['xla_flags']!r}): XLA's "
            "compiler settings change the last bits of some computed values"
        )
    if "device" in lock_environment and lock_environment["device"] != now["device"]:
        differing.append(f"the device differs (lock {lock_environment['device']!r}, now {now['device']!r})")
    parts += differing or [
        "the versions, settings and XLA flags are the lock's: the code that makes these values changed "
        "(an edited initializer, scale or model)"
    ]
    parts.append(f"if the change is intended, {update_hint}")
    return "; ".join(parts)
