"""``pytest --initcheck``: one item per (declared initializer or model, property).

Off unless ``--initcheck`` is given (``-p no:initcheck`` removes it). What to check comes from
``[tool.initcheck]`` in ``pyproject.toml`` or the ini keys ``initcheck_*``; options win over both::

    [tool.initcheck]
    modules = ["mypkg.inits"]          # scanned for @initcheck.expects(...) initializers
    models = ["mypkg.models:mlp"]      # zero-argument callables returning (model, *inputs) to audit
    frameworks = ["jax"]               # built-in catalog entries to include (jax, flax, haiku, initcheck)
    profile = "ci"
    seed = 0
    time_limit = 120                   # seconds per call before an initializer counts as hung
    strict = false                     # true: a PARTIAL model (values without a known law or derivation) fails

Items carry the ``initcheck`` marker; a failure shows the conformance message, not a traceback; a
catalog failure that a known framework defect explains is an expected failure (xfail). A model also
gets a ``[coverage]`` item: it passes when every value had a known law and a modelled derivation, and
otherwise is skipped as PARTIAL (failed with ``--initcheck-strict``).
Every item's verdicts travel in ``user_properties``, so under xdist the controller alone writes
``--initcheck-json`` and ``--initcheck-report`` with every worker's results (a crashed worker's
items are errors there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from initcheck import _document as document
from initcheck import _frameworks, _output, _runner, _xla, lock
from initcheck import _profiles as profiles
from initcheck._api import assert_conforms, check
from initcheck._audit import audit
from initcheck._catalog import CatalogEntry, check_entry
from initcheck._defects import Triage
from initcheck._frameworks import FRAMEWORKS
from initcheck._properties import PROPERTIES
from initcheck._record import Model
from initcheck._targets import LOCK, Target, declared, names, read_table
from initcheck._verdict import ERROR, FAIL, SKIP, Case, Conformance, Verdict

MARKER = "initcheck"
PROPERTY_KEY = "initcheck"
KEYS = ("modules", "models", "frameworks", "profile", "seed", "time_limit", "strict", "compile_cache", "lock")
UPDATE_HINT = "rewrite the lock with pytest --initcheck --initcheck-lock-update (or initcheck lock --update)"
NO_CACHE = ("none", "false", "off")  # compile_cache values that turn the compile cache off


@dataclasses.dataclass(frozen=True)
class Settings:
    modules: tuple[str, ...]
    models: tuple[str, ...]
    frameworks: tuple[str, ...]
    profile: str
    seed: int
    time_limit: float | None = None
    strict: bool = False
    compile_cache: str | None = ""  # the cache root ("": the default root; None: no compile cache)
    lock: Path | None = None  # the lock file compared with (None: no lock)
    lock_update: bool = False  # rewrite the lock from this run

    @property
    def profile_object(self):
        """The profile, with ``time_limit`` as its per-call limit when one is set."""

        profile = profiles.get(self.profile)
        return profile if self.time_limit is None else dataclasses.replace(profile, time_limit_s=self.time_limit)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("initcheck", "initializer conformance (initcheck)")
    group.addoption(
        "--initcheck",
        action="store_true",
        default=False,
        help="collect conformance items for the initializers and models of [tool.initcheck]",
    )
    group.addoption("--initcheck-json", metavar="PATH", default=None, help="write every verdict as JSON to PATH")
    group.addoption(
        "--initcheck-report",
        metavar="PATH.html",
        default=None,
        help="write the HTML conformance report (matrix, failure details, plots) to PATH.html",
    )
    group.addoption(
        "--initcheck-frameworks",
        metavar="jax,flax,haiku,initcheck",
        default=None,
        help="also check these frameworks of initcheck's built-in catalog",
    )
    group.addoption("--initcheck-profile", metavar="NAME", default=None, help="quick, ci or thorough (default: ci)")
    group.addoption("--initcheck-seed", metavar="N", type=int, default=None, help="base seed of every key (default 0)")
    group.addoption(
        "--initcheck-strict",
        action="store_true",
        default=None,
        help="a PARTIAL model (some values without a known law or a modelled key derivation) fails",
    )
    parser.addini("initcheck_modules", "modules scanned for @initcheck.expects initializers", type="linelist")
    parser.addini("initcheck_models", "module:callable returning (model, *inputs) to audit", type="linelist")
    parser.addini("initcheck_profile", "quick, ci or thorough", default="")
    parser.addini("initcheck_seed", "base seed", default="")
    parser.addini("initcheck_frameworks", "frameworks of the built-in catalog to include", type="linelist")
    parser.addini("initcheck_time_limit", "seconds per initializer call before it counts as hung", default="")
    parser.addini("initcheck_strict", "true: a PARTIAL model fails", type="bool", default=None)
    group.addoption(
        "--initcheck-compile-cache",
        metavar="DIR",
        default=None,
        help="keep XLA's compiled code under DIR, in a subfolder of this machine's identity "
        "(default: $XDG_CACHE_HOME/initcheck/xla, else ~/.cache/initcheck/xla)",
    )
    group.addoption(
        "--initcheck-no-compile-cache",
        action="store_true",
        default=False,
        help="keep no compiled code between sessions",
    )
    parser.addini("initcheck_compile_cache", "the compile cache's folder, or none to turn it off", default="")
    group.addoption(
        "--initcheck-lock",
        metavar="PATH",
        default=None,
        help="compare every target's exact initial values with the lock file PATH (written on the first run; "
        "a changed value fails with its likely cause)",
    )
    group.addoption(
        "--initcheck-lock-update",
        action="store_true",
        default=False,
        help="rewrite the lock from this run's values (changes are reported, not failed)",
    )
    parser.addini("initcheck_lock", "the lock file of exact initial values (relative to the rootdir)", default="")


def _table(rootpath: Path) -> dict:
    try:
        return read_table(rootpath / "pyproject.toml")
    except ValueError as exc:
        raise pytest.UsageError(f"initcheck: {exc}") from None


def _names(value, where: str) -> tuple[str, ...]:
    try:
        return names(value, where)
    except ValueError as exc:
        raise pytest.UsageError(f"initcheck: {exc}") from None


def _framework_names(value, where: str) -> tuple[str, ...]:
    chosen = _frameworks.parse(value)
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown:
        shown = value if isinstance(value, str) else list(value)
        raise pytest.UsageError(
            f"initcheck: {where}={shown!r} names unknown frameworks {unknown}; choose from {', '.join(FRAMEWORKS)}"
        )
    for framework in chosen:
        if reason := _frameworks.missing_reason(framework):
            raise pytest.UsageError(f"initcheck: {where} names {framework}: {reason}")
    return tuple(chosen)


def load_settings(config) -> Settings:
    """Options, then ini keys, then ``[tool.initcheck]``, then the defaults."""

    table = _table(config.rootpath)
    unknown = set(table) - set(KEYS)
    if unknown:
        raise pytest.UsageError(
            f"initcheck: [tool.initcheck] has unknown keys {sorted(unknown)}; use {', '.join(KEYS)}"
        )
    modules = config.getini("initcheck_modules") or _names(table.get("modules", []), "[tool.initcheck] modules")
    models = config.getini("initcheck_models") or _names(table.get("models", []), "[tool.initcheck] models")
    option = config.getoption("initcheck_frameworks")
    if option is not None:
        frameworks = _framework_names(option, "--initcheck-frameworks")
    elif config.getini("initcheck_frameworks"):
        frameworks = _framework_names(config.getini("initcheck_frameworks"), "initcheck_frameworks")
    else:
        frameworks = _framework_names(
            _names(table.get("frameworks", []), "[tool.initcheck] frameworks"), "[tool.initcheck] frameworks"
        )
    profile = config.getoption("initcheck_profile") or config.getini("initcheck_profile") or table.get("profile", "ci")
    if profile not in profiles.PROFILES:
        raise pytest.UsageError(f"initcheck: profile={profile!r} is not one of {', '.join(profiles.PROFILES)}")
    seed = config.getoption("initcheck_seed")
    if seed is None:
        seed = config.getini("initcheck_seed") or table.get("seed", 0)
    try:
        seed = int(seed)
        if seed < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise pytest.UsageError(f"initcheck: seed={seed!r} must be a non-negative int") from None
    given = config.getini("initcheck_time_limit") or table.get("time_limit")
    limit = None
    if given is not None:
        try:
            limit = float(given)
            if not limit > 0:
                raise ValueError
        except (TypeError, ValueError):
            raise pytest.UsageError(f"initcheck: time_limit={given!r} must be a positive number of seconds") from None
    strict = config.getoption("initcheck_strict")
    if strict is None:
        strict = config.getini("initcheck_strict")
    if strict is None:
        strict = table.get("strict", False)
    if not isinstance(strict, bool):
        raise pytest.UsageError(f"initcheck: [tool.initcheck] strict={strict!r} must be true or false")
    cache = config.getoption("initcheck_compile_cache") or config.getini("initcheck_compile_cache")
    cache = cache or table.get("compile_cache", "")
    if not isinstance(cache, str):
        raise pytest.UsageError(f"initcheck: compile_cache={cache!r} must be a folder, or 'none' to turn it off")
    if config.getoption("initcheck_no_compile_cache") or cache.lower() in NO_CACHE:
        cache = None
    lock_path, update = _lock_path(config, table), bool(config.getoption("initcheck_lock_update"))
    if update and lock_path is None:
        raise pytest.UsageError(
            "initcheck: --initcheck-lock-update rewrites a lock, and none is given; add --initcheck-lock=initcheck.lock "
            'or lock = "initcheck.lock" to [tool.initcheck]'
        )
    return Settings(tuple(modules), tuple(models), frameworks, profile, seed, limit, strict, cache, lock_path, update)


def _lock_path(config, table: dict) -> Path | None:
    """``--initcheck-lock`` (relative to the directory pytest was started in), else the ini key or
    ``[tool.initcheck] lock`` (relative to the rootdir); the file is read now, so that a damaged
    lock stops the session before any check runs."""
    given, where, base = config.getoption("initcheck_lock"), "--initcheck-lock", config.invocation_params.dir
    if not given:
        given, where, base = (
            config.getini("initcheck_lock") or table.get("lock"),
            "[tool.initcheck] lock",
            config.rootpath,
        )
    if not given:
        return None
    if not isinstance(given, str):
        raise pytest.UsageError(f'initcheck: {where}={given!r} must be a file path, e.g. "initcheck.lock"')
    path = Path(base, given)
    problem = document.file_problem(path)
    if problem:
        raise pytest.UsageError(f"initcheck: {where}={given}: {problem}")
    return path


def _pin_worker(config) -> None:
    """An xdist worker runs on its own share of the CPUs, taken before JAX starts: unpinned, each
    JAX process keeps every core busy (XLA's threads wait by spinning) and two workers run no
    faster than one."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return

    shares = _runner.cpu_shares(int(workerinput.get("workercount", 1)), _runner.available_cpus())
    _runner.run_on(shares[int(str(workerinput.get("workerid", "gw0"))[2:] or 0) % len(shares)])


def _use_compile_cache(config, settings: Settings) -> None:
    """Keep compiled code in this machine's folder of the compile cache for the session (the
    controller's choice reaches xdist workers through JAX's variable), unless the user set that
    variable or turned the cache off."""
    if settings.compile_cache is None or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    root = settings.compile_cache or _xla.default_cache_root()
    problem = document.folder_problem(str(root))
    if problem:
        raise pytest.UsageError(f"initcheck: compile_cache {root}: {problem}")
    folder = _xla.ready_machine_folder(root)
    stack = contextlib.ExitStack()
    stack.enter_context(_xla.compile_cache(folder))
    config.add_cleanup(stack.close)


def pytest_configure(config: pytest.Config) -> None:
    """With ``--initcheck``: this process's session state (workers too), and on the controller
    the reporter that gathers every item's verdicts into the session's report."""
    config.addinivalue_line("markers", f"{MARKER}: a conformance item of initcheck (pytest --initcheck)")
    if not config.getoption("initcheck"):
        return
    _pin_worker(config)
    settings = load_settings(config)
    for option in ("initcheck_report", "initcheck_json"):
        path = config.getoption(option)
        problem = path and document.file_problem(path)
        if problem:  # refused now, not after every check has run
            raise pytest.UsageError(f"initcheck: --{option.replace('_', '-')}={path}: {problem}")
    _use_compile_cache(config, settings)
    try:
        state = InitcheckSession(settings)  # reads the lock: a damaged one stops the session before any check
    except lock.LockError as exc:
        raise pytest.UsageError(f"initcheck: {exc}") from None
    config.stash[_SESSION] = state
    config.pluginmanager.register(state, "initcheck-session")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(InitcheckReporter(settings), "initcheck-reporter")


class ConformanceFailure(Exception):
    """Raised by an item whose property failed; its text is all the item shows."""


class InitcheckSession:
    """One ``pytest --initcheck`` session in this process (the controller or an xdist worker): its
    settings, one check per target, and the item that told each broken target's error."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.checked: dict[str, Checked | Exception] = {}
        self.errors_shown: dict[str, str] = {}  # target -> the item whose failure shows why it could not be checked
        self.lock = lock.Lock.read(settings.lock) if settings.lock is not None else None  # read once per process

    def conformance(self, target: Target) -> Checked | Exception:
        """The target's check, run once in this process (its error, if it could not be checked)."""
        if target.name not in self.checked:
            try:
                self.checked[target.name] = run_target(target, self.settings)
            except Exception as exc:  # noqa: BLE001 - one broken target is its own errored items
                self.checked[target.name] = exc
        return self.checked[target.name]

    def lock_outcome(self, target: Target) -> lock.Outcome:
        """The target's values against the session's lock (``Lock.read`` before the run: every
        process compares with the same file, which the controller rewrites at the end)."""
        assert self.lock is not None and self.settings.lock is not None
        derive = lock.target_digests(target.kind, target.load(), seed=self.settings.seed)
        return lock.check_target(
            target.name,
            target.kind,
            derive,
            self.lock,
            lock.backend(),
            update=self.settings.lock_update,
            update_hint=UPDATE_HINT,
            seed=self.settings.seed,
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list) -> None:
        """Add the conformance items before ``-m``/``-k`` select among all items, reported like any
        collected node (so that "collected N items" counts them)."""
        from _pytest.runner import collect_one_node  # lazy: pytest internals, only here

        report = collect_one_node(InitcheckCollector.from_parent(session, name="initcheck", nodeid="initcheck"))
        config.hook.pytest_collectreport(report=report)
        items.extend(item for item in report.result if isinstance(item, pytest.Item))

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Under ``pytest -n`` with xdist's default ``--dist load``: the items of one target go to
        one worker together, which checks the target once (spread over workers, each would check it
        again); every other test is scheduled as xdist's load would."""
        if config.getvalue("dist") != "load":
            return None
        return _target_scheduling(config, log)


_SESSION = pytest.StashKey[InitcheckSession]()


def run_target(target: Target, settings: Settings) -> Checked:
    """The target's conformance: a catalog entry checked and triaged, a declared initializer
    checked on its declared cases, a model factory's model audited."""
    thing = target.load()
    profile = settings.profile_object
    if target.kind == "catalog":
        triage = check_entry(thing, profile=profile, seed=settings.seed)
        return Checked(triage.report, thing, triage)
    if target.kind == "initializer":
        return Checked(_check_declared(thing, profile, settings.seed, target.origin))
    model = Model.of(thing(), rng=settings.seed)  # a Model says its own rng
    return Checked(audit(model, profile=profile, seed=settings.seed, origin=target.origin))


def _check_declared(init, profile, seed: int, origin: str):
    """``check`` of an ``@expects`` initializer on its declared cases, less the properties its
    declaration opts out of (each a skip with the declaration's reason)."""

    cases = getattr(init, "__initcheck_cases__", None) or {}
    skip = getattr(init, "__initcheck_skip__", None) or {}
    report = check(
        init,
        init.__initcheck_law__,
        profile=profile,
        seed=seed,
        shapes=cases.get("shapes"),
        dtypes=cases.get("dtypes"),
        properties=[p for p in PROPERTIES if p not in skip],
        origin=origin,
    )
    for prop, why in skip.items():
        report.verdicts.append(
            Verdict(prop, SKIP, None, None, 0.0, 0, Case((), "", ""), f"skipped by its declaration: {why}", "")
        )
    return report


@dataclasses.dataclass
class Checked:
    """A target's conformance, with its catalog entry and triage for catalog targets."""

    report: Conformance
    entry: CatalogEntry | None = None
    triage: Triage | None = None

    def unexplained(self, verdicts) -> list:
        return [v for v in verdicts if v.status in (FAIL, ERROR) and not v.known_defect]

    def missing_defects(self, prop: str) -> list:
        """Known defects on ``prop`` that this framework version should show and did not."""
        if self.triage is None:
            return []
        return [d for d in self.triage.unobserved if d.expected_now and prop in d.properties]


class InitcheckCollector(pytest.Collector):
    def collect(self):
        settings = self.config.stash[_SESSION].settings
        for target in declared(settings.modules, settings.models, settings.frameworks):
            for prop in target.properties(lock=settings.lock is not None):
                yield InitcheckItem.from_parent(self, name=f"{target.name}[{prop}]", target=target, prop=prop)


class InitcheckItem(pytest.Item):
    def __init__(self, *, target: Target, prop: str, **kwargs):
        super().__init__(**kwargs)
        self.target, self.prop = target, prop
        self.add_marker(MARKER)

    def _record(self, **data) -> None:
        """This item's part of the report; it travels to the xdist controller in user_properties."""
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        self.user_properties.append(
            (
                PROPERTY_KEY,
                json.dumps(
                    {
                        "target": self.target.name,
                        "kind": self.target.kind,
                        "order": self.target.order,
                        "property": self.prop,
                        "worker": worker,
                        **data,
                    }
                ),
            )
        )

    def runtest(self):
        state = self.config.stash[_SESSION]
        result = state.conformance(self.target) if self.prop != LOCK else self._lock_outcome(state)
        if isinstance(result, Exception) and self.prop == LOCK:  # its own error: a lock may fail alone
            self._record(error=f"lock: {type(result).__name__}: {result}", verdicts=[])
            raise ConformanceFailure(
                f"[initcheck] {self.target.name}: its initial values could not be derived for the lock: "
                f"{type(result).__name__}: {result}"
            )
        if isinstance(result, Exception):
            error = f"{type(result).__name__}: {result}"
            self._record(error=error, verdicts=[])
            shown = state.errors_shown.setdefault(self.target.name, self.nodeid)
            if shown != self.nodeid:  # one error, told once: the other items point to it
                raise ConformanceFailure(
                    f"[initcheck] {self.target.name} could not be checked (the error is shown once, under {shown})"
                )
            raise ConformanceFailure(f"[initcheck] {self.target.name} could not be checked: {error}")
        if isinstance(result, lock.Outcome):
            return self._lock(result)
        report = result.report
        verdicts = [v for v in report.verdicts if v.property == self.prop]
        facts = document.catalog_facts(result.entry, result.triage) if result.triage is not None else {}
        if self.prop == "coverage" and report.signal is not None:
            facts["signal"] = report.signal.as_dict()  # the model's signal profile: one item carries it
        self._record(
            law=report.law,
            seconds=report.seconds,
            verdicts=[v.to_dict() for v in verdicts],
            coverage=report.coverage.to_dict(),
            **facts,
        )
        if self.prop == "coverage":
            return self._coverage(report)
        failures = result.unexplained(verdicts)
        missing = result.missing_defects(self.prop)
        if failures or missing:
            lines = [f"[initcheck] {self.target.name}: property {self.prop} failed against {report.law}"]
            for v in failures:
                lines += v.failure_lines(named=False, figures=True)
            for d in missing:
                lines.append(
                    f"- known defect {d.name} was expected with {d.package} {d.installed} but not seen: "
                    "fixed upstream, or an initcheck regression?"
                )
            raise ConformanceFailure("\n".join(lines))
        known = sorted({v.known_defect for v in verdicts if v.known_defect})
        if known:
            pytest.xfail(f"known defect{'s' * (len(known) > 1)} {', '.join(known)} (see the report)")
        if not verdicts or all(v.status == SKIP for v in verdicts):
            pytest.skip(verdicts[0].message if verdicts else f"{self.prop} does not apply")

    def _lock_outcome(self, state: InitcheckSession) -> lock.Outcome | Exception:
        try:
            return state.lock_outcome(self.target)
        except Exception as exc:  # noqa: BLE001 - a target that cannot be loaded or derived is its error
            return exc

    def _lock(self, outcome: lock.Outcome) -> None:
        """The target's values against the lock: a change fails with its cause; a target the lock
        lacks is recorded (skipped: nothing was compared)."""
        verdict = outcome.verdict()
        self._record(verdicts=[verdict.to_dict()], lock=outcome.to_dict())
        if verdict.status == FAIL:
            where = self.config.stash[_SESSION].settings.lock
            lines = outcome.lines()
            lines[0] = f"[initcheck] {self.target.name}: initial values against the lock {where}: {lines[0]}"
            raise ConformanceFailure("\n".join(lines))
        if verdict.status == SKIP:
            pytest.skip(verdict.message)

    def _coverage(self, report) -> None:
        """PASS needs every value covered: a PARTIAL model is skipped, or failed when strict."""
        coverage = report.coverage
        if coverage.complete:
            return
        text = f"PARTIAL: {self.target.name}: {coverage}; not covered: " + "; ".join(coverage.gaps)
        if self.config.stash[_SESSION].settings.strict:
            raise ConformanceFailure(f"[initcheck] {text} (strict: a PARTIAL model fails)")
        pytest.skip(text)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"initcheck {self.name}"


def _target_scheduling(config: pytest.Config, log: Any) -> Any:
    """xdist's LoadScopeScheduling with a target's items as one scope."""
    from xdist.scheduler import LoadScopeScheduling  # lazy: only when pytest-xdist runs the session

    class TargetScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _split_nodeid(nodeid)[0] if nodeid.startswith("initcheck::") else nodeid

        def remove_node(self, node):
            """A crashed worker's item is reported (by xdist) and not run again; the rest of its
            work goes back to the queue (xdist's loadscope would run the crashing item again)."""
            workload = self.assigned_work.pop(node)
            if not self._pending_of(workload):
                return None
            scope, crashitem = next(
                (scope, nodeid) for scope, unit in workload.items() for nodeid, done in unit.items() if not done
            )
            workload[scope][crashitem] = True
            self.workqueue.update({s: unit for s, unit in workload.items() if not all(unit.values())})
            for other in self.assigned_work:
                self._reschedule(other)
            return crashitem

    return TargetScheduling(config, log)


def _split_nodeid(nodeid: str) -> tuple[str, str]:
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
        name, prop = _split_nodeid(nodeid)
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
    targets = [
        document.target(
            name,
            row["kind"] or "unknown",
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


class _Bound:
    """The API with the session's profile and seed as defaults (the ``initcheck`` fixture)."""

    def __init__(self, profile: str, seed: int):
        self.profile, self.seed = profile, seed

    def check(self, init, expect, **options):
        return check(init, expect, **{"profile": self.profile, "seed": self.seed, **options})

    def assert_conforms(self, init, expect, **options):
        return assert_conforms(init, expect, **{"profile": self.profile, "seed": self.seed, **options})

    def audit(self, model, *inputs, **options):
        return audit(model, *inputs, **{"profile": self.profile, "seed": self.seed, **options})


@pytest.fixture
def initcheck(request: pytest.FixtureRequest) -> _Bound:
    """initcheck's API bound to the session's ``--initcheck-profile`` and ``--initcheck-seed``."""
    state = request.config.stash.get(_SESSION, None)
    settings = state.settings if state is not None else load_settings(request.config)
    return _Bound(settings.profile_object if settings.time_limit else settings.profile, settings.seed)
