"""initcheck: property-based verification of neural-network parameter initializers."""

from initcheck import laws
from initcheck._api import assert_conforms, check, expects
from initcheck._audit import audit
from initcheck._catalog import CatalogEntry, catalog
from initcheck._profiles import Profile
from initcheck._record import Model
from initcheck._verdict import Case, Conformance, ConformanceError, Verdict
from initcheck._version import __version__ as __version__

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
