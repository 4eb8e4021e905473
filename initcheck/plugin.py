"""``pytest --initcheck``: one item per (declared initializer or model, property).

Off unless ``--initcheck`` is given (``-p no:initcheck`` removes it). What to check comes from
``[tool.initcheck]`` in ``pyproject.toml`` or the ini keys ``initcheck_*``; options win over both::

    [tool.initcheck]
    modules = ["mypkg.inits"]          # scanned for @initcheck.expects(...) initializers
    models = ["mypkg.models:mlp"]      # zero-argument callables returning (model, *inputs) to audit
    frameworks = ["jax"]               # built-in catalog entries to include (jax, flax, haiku, initcheck)
    profile = "ci"
    seed = 0
    time_limit = 120                   # seconds per initializer call (or model init) before it counts as hung
    isolate = true                     # check each target in a child process (a crash or a hang stays there)
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
from typing import Any

import pytest

from initcheck import _document as document
from initcheck import _isolation, _runner, _xla, lock
from initcheck._api import assert_conforms, check
from initcheck._audit import audit
from initcheck._catalog import CatalogEntry, check_entry
from initcheck._defects import Triage
from initcheck._plugin_report import PROPERTY_KEY, InitcheckReporter, split_nodeid
from initcheck._plugin_settings import Settings, load_settings
from initcheck._properties import PROPERTIES
from initcheck._record import Model
from initcheck._targets import LOCK, Target, declared
from initcheck._verdict import ERROR, FAIL, SKIP, Case, Conformance, Verdict

__all__ = [
    "MARKER",
    "ConformanceFailure",
    "InitcheckCollector",
    "InitcheckItem",
    "InitcheckSession",
    "initcheck",
    "pytest_addoption",
    "pytest_configure",
]

MARKER = "initcheck"
"""The marker of every initcheck item: `pytest -m initcheck` selects them."""
UPDATE_HINT = "rewrite the lock with pytest --initcheck --initcheck-lock-update (or initcheck lock --update)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The `initcheck` option group (`--initcheck`, `--initcheck-*`) and the `initcheck_*` ini keys."""
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
        "--initcheck-no-isolate",
        action="store_true",
        default=False,
        help="check targets in this process, not in a child process of their own (a crash or a hang then "
        "ends the session; for debugging)",
    )
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
    parser.addini(
        "initcheck_memory", "the model audits' memory budget, e.g. 6GB (default: 80% of the free memory)", default=""
    )
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
    controller's choice reaches xdist workers and the targets' child processes through JAX's
    variable), unless the user set that variable or turned the cache off."""
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
    state = InitcheckSession(settings)
    config.add_cleanup(state.close)
    config.stash[_SESSION] = state
    config.pluginmanager.register(state, "initcheck-session")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(InitcheckReporter(settings), "initcheck-reporter")


class ConformanceFailure(Exception):
    """Raised by an item whose property failed; its text is all the item shows."""


class InitcheckSession:
    """One ``pytest --initcheck`` session in this process (the controller or an xdist worker): its
    settings, one check per target (run in a child process of its own unless ``isolate`` is off),
    and the item that told each broken target's error."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.checked: dict[str, Checked | Exception] = {}
        self.errors_shown: dict[str, str] = {}  # target -> the item whose failure shows why it could not be checked
        self.lock = lock.Lock.read(settings.lock) if settings.lock is not None else None  # read once per process
        self.child = (
            _isolation.Isolated((__name__, "_start_child", (settings, _jax_config()))) if settings.isolate else None
        )

    def close(self) -> None:
        if self.child is not None:
            self.child.close()

    def conformance(self, target: Target) -> Checked | Exception:
        """The target's check, run once in this process (its error, if it could not be checked)."""
        if target.name not in self.checked:
            try:
                self.checked[target.name] = self._checked(target)
            except Exception as exc:  # noqa: BLE001 - one broken target is its own errored items
                self.checked[target.name] = exc
        return self.checked[target.name]

    def _checked(self, target: Target) -> Checked:
        if self.child is None or target.kind == "broken":
            return run_target(target, self.settings)
        report, triage = self.child.call(__name__, "_check_in_child", target.name, limit=self._init_limit)
        return Checked(report, target.load() if target.kind == "catalog" else None, triage)

    def _init_limit(self, line: str) -> float | None:
        """A model's factory and eager init (progress lines ``_INIT_LINES``) get the time limit of
        one call; the rest of a check is bounded call by call, inside the child."""
        return self.settings.profile_object.time_limit_s if line.startswith(_INIT_LINES) else None

    def lock_outcome(self, target: Target) -> lock.Outcome:
        """The target's values against the session's lock (``Lock.read`` before the run: every
        process compares with the same file, which the controller rewrites at the end)."""
        if self.child is not None:
            return self.child.call(__name__, "_lock_in_child", target.name, limit=self._init_limit)
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

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        """A skipped conformance item is told at the item (``initcheck::<id>[<property>]: why``),
        not at the line of the plugin that called ``pytest.skip``."""
        report = yield
        skip = report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple)
        if isinstance(item, InitcheckItem) and skip:
            report.longrepr = (item.nodeid, None, report.longrepr[2])
        return report


_SESSION = pytest.StashKey[InitcheckSession]()
_NOTHING_TO_CHECK = {  # why a property item has no verdict at all, where "does not apply" would not say
    "intent": "no expect= law given for any value (intent compares a value's declared law with the expect= law "
    "given for it)",
}
_INIT_LINES = ("calling the model factory", "initializing")  # progress lines of a model's own code running
_JAX_CONFIG = ("jax_enable_x64", "jax_default_prng_impl", "jax_threefry_partitionable")  # the child takes these
_CHILD: dict[str, Any] = {}  # in a target's child process: its session and targets by name


def _jax_config() -> dict[str, Any]:
    import jax  # lazy: read when the session starts

    return {name: getattr(jax.config, name) for name in _JAX_CONFIG}


def _start_child(settings: Settings, config: dict[str, Any], progress) -> None:
    """Set up a target's child process: the parent's JAX settings, a session that checks in process."""
    import jax  # lazy: the child's own JAX

    for name, value in config.items():
        jax.config.update(name, value)
    _CHILD["session"] = InitcheckSession(dataclasses.replace(settings, isolate=False))


def _child_target(name: str) -> Target:
    if "targets" not in _CHILD:  # collected as the parent did: the same names
        settings = _CHILD["session"].settings
        _CHILD["targets"] = {t.name: t for t in declared(settings.modules, settings.models, settings.frameworks)}
    return _CHILD["targets"][name]


def _check_in_child(name: str, progress) -> tuple[Conformance, Triage | None]:
    """The target's check in its child process: what the parent needs of it (the catalog entry,
    which does not pickle, is the parent's own)."""
    checked = run_target(_child_target(name), _CHILD["session"].settings, progress)
    return checked.report, checked.triage


def _lock_in_child(name: str, progress) -> lock.Outcome:
    return _CHILD["session"].lock_outcome(_child_target(name))


def run_target(target: Target, settings: Settings, progress=None) -> Checked:
    """The target's conformance: a catalog entry checked and triaged, a declared initializer
    checked on its declared cases, a model factory's model audited (``progress`` is told of each
    step of an audit)."""
    thing = target.load()
    profile = settings.profile_object
    if target.kind == "catalog":
        triage = check_entry(thing, profile=profile, seed=settings.seed)
        return Checked(triage.report, thing, triage)
    if target.kind == "initializer":
        return Checked(_check_declared(thing, profile, settings.seed, target.origin))
    if progress is not None:
        progress(f"calling the model factory {target.name}")
    model = Model.of(thing(), rng=settings.seed)  # a Model says its own rng
    memory = model.memory if model.memory is not None else settings.memory
    return Checked(
        audit(model, profile=profile, seed=settings.seed, origin=target.origin, memory=memory, progress=progress)
    )


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
    """The session's targets (declared initializers, models, catalog entries), one item per property."""

    def collect(self):
        settings = self.config.stash[_SESSION].settings
        for target in declared(settings.modules, settings.models, settings.frameworks):
            for prop in target.properties(lock=settings.lock is not None):
                yield InitcheckItem.from_parent(self, name=f"{target.name}[{prop}]", target=target, prop=prop)


class InitcheckItem(pytest.Item):
    """One property of one target; its failure shows the conformance message only."""

    def __init__(self, *, target: Target, prop: str, **kwargs):
        super().__init__(**kwargs)
        self.target, self.prop = target, prop
        self.result: Checked | lock.Outcome | Exception | None = None  # set by setup
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

    def setup(self):
        """Check the target (once per process); a target that could not be checked at all makes
        each of its items an error: its traceback shown in full under the first, a line under
        the others."""
        state = self.config.stash[_SESSION]
        self.result = state.conformance(self.target) if self.prop != LOCK else self._lock_outcome(state)
        if not isinstance(self.result, Exception):
            return
        error = _isolation.described(self.result)
        if self.prop == LOCK:  # its own error: a lock may fail alone
            self._record(error=f"lock: {error}", verdicts=[])
            pytest.fail(
                f"[initcheck] {self.target.name}: its initial values could not be derived for the lock: {error}",
                pytrace=False,
            )
        self._record(error=error, verdicts=[])
        shown = state.errors_shown.setdefault(self.target.name, self.nodeid)
        if shown != self.nodeid:  # one error, told once: the other items point to it
            pytest.fail(
                f"[initcheck] {self.target.name} could not be checked (the error is shown once, under {shown})",
                pytrace=False,
            )
        told = self.target.kind == "broken" or isinstance(self.result, (_isolation.Crashed, _isolation.Hung))
        trace = "" if told else f"\n\n{_isolation.trace_of(self.result).rstrip()}"
        pytest.fail(f"[initcheck] {self.target.name} could not be checked: {error}{trace}", pytrace=False)

    def runtest(self):
        result = self.result
        assert result is not None and not isinstance(result, Exception)  # setup stops an unchecked target
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
            pytest.skip(
                verdicts[0].message if verdicts else _NOTHING_TO_CHECK.get(self.prop, f"{self.prop} does not apply")
            )

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
            return split_nodeid(nodeid)[0] if nodeid.startswith("initcheck::") else nodeid

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
    """initcheck's API bound to the session's `--initcheck-profile` and `--initcheck-seed`."""
    state = request.config.stash.get(_SESSION, None)
    settings = state.settings if state is not None else load_settings(request.config)
    return _Bound(settings.profile_object if settings.time_limit else settings.profile, settings.seed)
