"""initcheck: property-based verification of neural-network parameter initializers."""

from initcheck import laws
from initcheck._catalog import CatalogEntry, catalog
from initcheck.api import assert_conforms, check, expects
from initcheck.audit import Model, audit
from initcheck.profiles import Profile
from initcheck.verdict import Case, Conformance, ConformanceError, Verdict

__version__ = "0.1.0"

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
