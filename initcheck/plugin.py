"""``pytest --initcheck``: one item per (declared initializer or model, property).

Off unless ``--initcheck`` is given (``-p no:initcheck`` removes it). What to check comes from
``[tool.initcheck]`` in ``pyproject.toml`` or the ini keys ``initcheck_*``; options win over both::

    [tool.initcheck]
    modules = ["mypkg.inits"]          # scanned for @initcheck.expects(...) initializers
    models = ["mypkg.models:mlp"]      # zero-argument callables returning (model, *inputs) to audit
    profile = "ci"
    seed = 0

Items carry the ``initcheck`` marker; a failure shows the conformance message, not a traceback.
Every item's verdicts travel in ``user_properties``, so under xdist the controller alone writes
``--initcheck-json`` with every worker's results (a crashed worker's items are errors there).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import tomllib
from pathlib import Path

import pytest

MARKER = "initcheck"
PROPERTY_KEY = "initcheck"
JSON_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    modules: tuple[str, ...]
    models: tuple[str, ...]
    profile: str
    seed: int


def pytest_addoption(parser):
    group = parser.getgroup("initcheck", "initializer conformance (initcheck)")
    group.addoption("--initcheck", action="store_true", default=False,
                    help="collect conformance items for the initializers and models of [tool.initcheck]")
    group.addoption("--initcheck-json", metavar="PATH", default=None, help="write every verdict as JSON to PATH")
    group.addoption("--initcheck-profile", metavar="NAME", default=None, help="quick, ci or thorough (default: ci)")
    group.addoption("--initcheck-seed", metavar="N", type=int, default=None, help="base seed of every key (default 0)")
    parser.addini("initcheck_modules", "modules scanned for @initcheck.expects initializers", type="linelist")
    parser.addini("initcheck_models", "module:callable returning (model, *inputs) to audit", type="linelist")
    parser.addini("initcheck_profile", "quick, ci or thorough", default="")
    parser.addini("initcheck_seed", "base seed", default="")


def _table(rootpath: Path) -> dict:
    path = rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text()).get("tool", {}).get("initcheck", {})
    except tomllib.TOMLDecodeError as exc:
        raise pytest.UsageError(f"initcheck: {path} is not valid TOML ({exc})") from None


def _names(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise pytest.UsageError(f"initcheck: {where}={value!r} must be a list of strings, e.g. [\"mypkg.inits\"]")
    return tuple(value)


def load_settings(config) -> Settings:
    """Options, then ini keys, then ``[tool.initcheck]``, then the defaults."""
    from initcheck import profiles

    table = _table(config.rootpath)
    unknown = set(table) - {"modules", "models", "profile", "seed"}
    if unknown:
        raise pytest.UsageError(f"initcheck: [tool.initcheck] has unknown keys {sorted(unknown)}; "
                                "use modules, models, profile, seed")
    modules = config.getini("initcheck_modules") or _names(table.get("modules", []), "[tool.initcheck] modules")
    models = config.getini("initcheck_models") or _names(table.get("models", []), "[tool.initcheck] models")
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
    return Settings(tuple(modules), tuple(models), profile, seed)


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARKER}: a conformance item of initcheck (pytest --initcheck)")
    if config.getoption("initcheck"):
        config.stash[_SETTINGS] = load_settings(config)


_SETTINGS = pytest.StashKey[Settings]()


class ConformanceFailure(Exception):
    """Raised by an item whose property failed; its text is all the item shows."""


_CACHE: dict = {}  # (target, settings) -> Conformance or exception: one check per target and process


def _conformance(target: Target, settings: Settings):
    key = (target.name, settings)
    if key not in _CACHE:
        try:
            _CACHE[key] = target.run(settings)
        except Exception as exc:  # noqa: BLE001 - one broken target is its own errored items
            _CACHE[key] = exc
    return _CACHE[key]


@dataclasses.dataclass(frozen=True)
class Target:
    """Something to check: a declared initializer (``kind="initializer"``) or a model factory."""

    name: str
    kind: str
    load: object  # () -> the initializer or the model factory; raises a clear error

    def properties(self) -> tuple[str, ...]:
        from initcheck.audit import AUDIT_PROPERTIES
        from initcheck.properties import PROPERTIES

        if self.kind == "broken":
            return ("import",)
        return tuple(PROPERTIES) if self.kind == "initializer" else AUDIT_PROPERTIES

    def run(self, settings: Settings):
        import initcheck

        thing = self.load()
        if self.kind == "initializer":
            return initcheck.check(thing, thing.__initcheck_law__, profile=settings.profile, seed=settings.seed)
        made = thing()
        model, *inputs = made if isinstance(made, tuple) else (made,)
        return initcheck.audit(model, *inputs, rng=settings.seed, profile=settings.profile, seed=settings.seed)


def _failing_load(message: str):
    def load():
        raise ImportError(message)
    return load


def _initializer_targets(module_name: str) -> list[Target]:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - reported as the module's errored item
        return [Target(module_name, "broken",
                       _failing_load(f"initcheck: cannot import modules entry {module_name!r}: "
                                     f"{type(exc).__name__}: {exc}"))]
    found = [Target(f"{module_name}.{name}", "initializer", (lambda obj=obj: obj))
             for name, obj in sorted(vars(module).items())
             if callable(obj) and getattr(obj, "__initcheck_law__", None) is not None
             and getattr(obj, "__module__", module_name) == module_name]
    if not found:
        return [Target(module_name, "broken", _failing_load(
            f"initcheck: module {module_name!r} has no @initcheck.expects(...) initializers; decorate them "
            "or remove it from [tool.initcheck] modules"))]
    return found


def _model_target(spec: str) -> Target:
    module_name, _, attr = spec.partition(":")

    def load():
        if not attr:
            raise ValueError(f"initcheck: models entry {spec!r} must be 'module:callable'")
        factory = getattr(importlib.import_module(module_name), attr)
        if not callable(factory):
            raise TypeError(f"initcheck: models entry {spec!r} is not callable; give a function returning "
                            "(model, *inputs)")
        return factory

    return Target(spec, "model", load)


class InitcheckCollector(pytest.Collector):
    def collect(self):
        settings = self.config.stash[_SETTINGS]
        targets = [t for m in settings.modules for t in _initializer_targets(m)]
        targets += [_model_target(spec) for spec in settings.models]
        for target in targets:
            for prop in target.properties():
                yield InitcheckItem.from_parent(self, name=f"{target.name}[{prop}]", target=target, prop=prop)


class InitcheckItem(pytest.Item):
    def __init__(self, *, target: Target, prop: str, **kwargs):
        super().__init__(**kwargs)
        self.target, self.prop = target, prop
        self.add_marker(MARKER)

    def runtest(self):
        from initcheck.verdict import ERROR, FAIL, SKIP

        result = _conformance(self.target, self.config.stash[_SETTINGS])
        if isinstance(result, Exception):
            self.user_properties.append((PROPERTY_KEY, json.dumps({"target": self.target.name, "property": self.prop,
                                                                   "error": str(result), "verdicts": []})))
            raise ConformanceFailure(f"[initcheck] {self.target.name} could not be checked: "
                                     f"{type(result).__name__}: {result}")
        verdicts = [v for v in result.verdicts if v.property == self.prop]
        self.user_properties.append((PROPERTY_KEY, json.dumps({
            "target": self.target.name, "property": self.prop, "law": result.law,
            "verdicts": [v.to_dict() for v in verdicts]})))
        failures = [v for v in verdicts if v.status in (FAIL, ERROR)]
        if failures:
            lines = [f"[initcheck] {self.target.name}: property {self.prop} failed against {result.law}"]
            for v in failures:
                stats = "" if v.pvalue is None else f" (statistic {v.statistic:.4g}, p={v.pvalue:.3g}, n={v.n}, alpha={v.alpha:g})"
                lines.append(f"- {v.status} on {v.case}: {v.message}{stats}")
                if v.reproduce:
                    lines.append("  reproduce:\n" + "\n".join("    " + line for line in v.reproduce.splitlines()))
            raise ConformanceFailure("\n".join(lines))
        if not verdicts or all(v.status == SKIP for v in verdicts):
            pytest.skip(verdicts[0].message if verdicts else f"{self.prop} does not apply")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"initcheck {self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Add the conformance items before ``-m``/``-k`` select among all items."""
    if _SETTINGS in config.stash:
        items.extend(InitcheckCollector.from_parent(session, name="initcheck", nodeid="initcheck").collect())


def pytest_runtest_logreport(report):
    """Keep each item's verdicts (on the controller too, under xdist)."""
    if _results is None or not report.nodeid.startswith("initcheck::"):
        return
    data = next((json.loads(v) for k, v in report.user_properties if k == PROPERTY_KEY), None)
    entry = _results.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "verdicts": []})
    if data is not None:
        entry.update({k: v for k, v in data.items() if k != "verdicts"})
        entry["verdicts"] = data["verdicts"]
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        if data is None:  # e.g. a crashed xdist worker: no verdicts came back
            entry["message"] = str(report.longrepr)[-2000:]
    elif report.skipped and report.when in ("setup", "call"):
        entry["outcome"] = "skipped"


_results: dict | None = None


def pytest_sessionstart(session):
    global _results
    _results = {} if _SETTINGS in session.config.stash else None


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    path = config.getoption("initcheck_json")
    if _results is None or path is None or hasattr(config, "workerinput"):
        return
    from initcheck import __version__

    settings = config.stash[_SETTINGS]
    payload = {"schema_version": JSON_SCHEMA_VERSION, "initcheck": __version__, "profile": settings.profile,
               "seed": settings.seed, "items": sorted(_results.values(), key=lambda e: e["nodeid"])}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1))


class _Bound:
    """The API with the session's profile and seed as defaults (the ``initcheck`` fixture)."""

    def __init__(self, profile: str, seed: int):
        self.profile, self.seed = profile, seed

    def check(self, init, expect, **options):
        import initcheck

        return initcheck.check(init, expect, **{"profile": self.profile, "seed": self.seed, **options})

    def assert_conforms(self, init, expect, **options):
        import initcheck

        return initcheck.assert_conforms(init, expect, **{"profile": self.profile, "seed": self.seed, **options})

    def audit(self, model, *inputs, **options):
        import initcheck

        return initcheck.audit(model, *inputs, **{"profile": self.profile, "seed": self.seed, **options})


@pytest.fixture
def initcheck(request):
    """initcheck's API bound to the session's ``--initcheck-profile`` and ``--initcheck-seed``."""
    settings = request.config.stash.get(_SETTINGS, None) or load_settings(request.config)
    return _Bound(settings.profile, settings.seed)
