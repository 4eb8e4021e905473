"""initcheck: property-based verification of neural-network parameter initializers.

The public names are imported on first use (PEP 562), so that `import initcheck` (and the
`initcheck` command's `--help`) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initcheck._version import __version__ as __version__

if TYPE_CHECKING:
    from initcheck import laws
    from initcheck._api import assert_conforms, check, expects
    from initcheck._audit import audit
    from initcheck._catalog import CatalogEntry, catalog
    from initcheck._profiles import Profile
    from initcheck._record import Model
    from initcheck._verdict import Case, Conformance, ConformanceError, Verdict

_WHERE = {  # public name -> the module that defines it
    "Case": "initcheck._verdict",
    "CatalogEntry": "initcheck._catalog",
    "Conformance": "initcheck._verdict",
    "ConformanceError": "initcheck._verdict",
    "Model": "initcheck._record",
    "Profile": "initcheck._profiles",
    "Verdict": "initcheck._verdict",
    "assert_conforms": "initcheck._api",
    "audit": "initcheck._audit",
    "catalog": "initcheck._catalog",
    "check": "initcheck._api",
    "expects": "initcheck._api",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # once: later look-ups do not come here
        return value
    if name.startswith("__"):
        raise AttributeError(f"module 'initcheck' has no attribute {name!r}")
    try:  # a submodule (`initcheck.laws`, `initcheck.adapters`, ...), as after an eager import
        return importlib.import_module(f"initcheck.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"initcheck.{name}":
            raise
    raise AttributeError(f"module 'initcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Case",
    "CatalogEntry",
    "Conformance",
    "ConformanceError",
    "Model",
    "Profile",
    "Verdict",
    "assert_conforms",
    "audit",
    "catalog",
    "check",
    "expects",
    "laws",
]
