"""What ``pytest --initcheck`` and ``initcheck lock`` check: the targets of ``[tool.initcheck]``
(declared initializers of ``modules``, model factories of ``models``, catalog entries of
``frameworks``), each with a loader that raises a clear error when it cannot be loaded."""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from initcheck import adapters
from initcheck._audit import AUDIT_PROPERTIES
from initcheck._catalog import catalog
from initcheck._properties import PROPERTIES
from initcheck._record import factory_origin

LOCK = "lock"  # the property of a target's values against the lock


def read_table(path: Path) -> dict:
    """``[tool.initcheck]`` of the ``pyproject.toml`` at ``path`` (empty when there is no file)."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text()).get("tool", {}).get("initcheck", {})
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None


def names(value, where: str, *, source: str = "") -> tuple[str, ...]:
    """A table's list of names (modules, models, frameworks), checked; ``source`` (`` in FILE``)
    follows the value in the message."""
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{where}={value!r}{source} must be a list of strings, e.g. ["mypkg.inits"]')
    return tuple(value)


def _returns(thing: Any) -> Callable[[], Any]:
    """A loader that returns ``thing`` (already loaded)."""
    return lambda: thing


@dataclasses.dataclass(frozen=True)
class Target:
    """Something to check: a declared initializer, a model factory or a catalog entry (``kind``);
    ``order`` is its place in the collection, the same in every xdist worker."""

    name: str
    kind: str
    load: Callable[[], Any]  # () -> the initializer, the model factory or the catalog entry; raises a clear error
    order: int = 0
    origin: str = ""  # Python that imports it, for reproduction snippets that run as printed

    def properties(self, lock: bool = False) -> tuple[str, ...]:
        """Its items' properties (``lock`` adds the lock's)."""
        if self.kind == "broken":
            return ("import",)
        found = (*AUDIT_PROPERTIES, "coverage") if self.kind == "model" else tuple(PROPERTIES)
        return (*found, LOCK) if lock else found


def _failing_load(message: str):
    def load():
        raise ImportError(message)

    return load


def _import_hint(module_name: str, exc: BaseException) -> str:
    """What to do when ``module_name``'s own top-level package is not importable (``""`` for any
    other error: a missing dependency, a module missing inside a package that imports)."""
    top = module_name.partition(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or exc.name != top:
        return ""
    return (
        f"; is {top} importable from the rootdir? install it (pip install -e .) "
        'or add pythonpath = ["."] under [tool.pytest.ini_options]'
    )


def _initializer_targets(module_name: str, seen: set[int]) -> list[Target]:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - reported as the module's errored item
        return [
            Target(
                module_name,
                "broken",
                _failing_load(
                    f"initcheck: cannot import modules entry {module_name!r}: {type(exc).__name__}: {exc}"
                    + _import_hint(module_name, exc)
                ),
            )
        ]
    found, marked = [], 0
    for name, obj in sorted(vars(module).items()):
        if getattr(obj, "__initcheck_law__", None) is None:
            continue
        marked += 1
        if id(obj) in seen:
            continue  # one bound in two declared modules is checked once, under the first
        seen.add(id(obj))
        wrap = (
            f"\ninit = initcheck.adapters.from_haiku({name})" if adapters.takes_haiku_form(obj) else f"\ninit = {name}"
        )
        origin = f"from {module_name} import {name}{wrap}\nlaw = {name}.__initcheck_law__"
        found.append(Target(f"{module_name}.{name}", "initializer", _returns(obj), origin=origin))
    if not marked:
        return [
            Target(
                module_name,
                "broken",
                _failing_load(
                    f"initcheck: module {module_name!r} has no @initcheck.expects(...) initializers; decorate them "
                    "or remove it from [tool.initcheck] modules"
                ),
            )
        ]
    return found


def _model_target(spec: str) -> Target:
    module_name, _, attr = spec.partition(":")

    def load():
        if not attr:
            raise ValueError(f"initcheck: models entry {spec!r} must be 'module:callable'")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            hint = _import_hint(module_name, exc)
            if not hint:
                raise
            raise ModuleNotFoundError(
                f"initcheck: cannot import models entry {spec!r}: {exc}{hint}", name=exc.name
            ) from exc
        factory = getattr(module, attr)
        if not callable(factory):
            raise TypeError(
                f"initcheck: models entry {spec!r} is not callable; give a function returning (model, *inputs)"
            )
        return factory

    return Target(spec, "model", load, origin=factory_origin(spec) or "")


def _catalog_targets(frameworks) -> list[Target]:
    return [Target(entry.id, "catalog", _returns(entry)) for entry in catalog(frameworks)] if frameworks else []


def declared(modules: Sequence[str], models: Sequence[str], frameworks: Sequence[str]) -> list[Target]:
    """Every target of ``[tool.initcheck]``, in collection order (``order`` set)."""
    seen: set[int] = set()  # one initializer bound in two declared modules: checked once
    targets = [t for m in modules for t in _initializer_targets(m, seen)]
    targets += [_model_target(spec) for spec in models]
    targets += _catalog_targets(frameworks)
    return [dataclasses.replace(t, order=order) for order, t in enumerate(targets)]
