"""The settings of ``pytest --initcheck``: its options, ini keys and ``[tool.initcheck]``, read once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from initcheck import _document as document
from initcheck import _frameworks, lock
from initcheck import _profiles as profiles
from initcheck._audit import parse_memory
from initcheck._frameworks import FRAMEWORKS
from initcheck._targets import names, read_table

KEYS = (
    "modules",
    "models",
    "frameworks",
    "profile",
    "seed",
    "time_limit",
    "strict",
    "compile_cache",
    "lock",
    "memory",
    "isolate",
)
NO_CACHE = ("none", "false", "off")  # compile_cache values that turn the compile cache off


@dataclasses.dataclass(frozen=True)
class Settings:
    """What ``pytest --initcheck`` checks, and how: options, then ini keys, then ``[tool.initcheck]``."""

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
    memory: int | str | None = None  # the model audits' memory budget (None: from the free memory)
    isolate: bool = True  # check each target in a child process (a crash or a hang stays there)

    @property
    def profile_object(self):
        """The profile, with ``time_limit`` as its per-call limit when one is set."""

        profile = profiles.get(self.profile)
        return profile if self.time_limit is None else dataclasses.replace(profile, time_limit_s=self.time_limit)


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
    memory = config.getini("initcheck_memory") or table.get("memory")
    if memory is not None:
        try:
            parse_memory(memory)
        except (TypeError, ValueError) as exc:
            raise pytest.UsageError(f"initcheck: {exc}") from None
    isolate = not config.getoption("initcheck_no_isolate") and table.get("isolate", True)
    if not isinstance(isolate, bool):
        raise pytest.UsageError(f"initcheck: [tool.initcheck] isolate={isolate!r} must be true or false")
    return Settings(
        tuple(modules),
        tuple(models),
        frameworks,
        profile,
        seed,
        limit,
        strict,
        cache,
        lock_path,
        update,
        memory,
        isolate,
    )


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
    try:
        lock.Lock.read(path)
    except lock.LockError as exc:
        raise pytest.UsageError(f"initcheck: {where}: {exc}") from None
    return path
