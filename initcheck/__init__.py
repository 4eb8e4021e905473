"""initcheck: property-based verification of neural-network parameter initializers."""

from initcheck import laws
from initcheck._catalog import CatalogEntry, catalog
from initcheck._version import __version__ as __version__
from initcheck.api import assert_conforms, check, expects
from initcheck.audit import Model, audit
from initcheck.profiles import Profile
from initcheck.verdict import Case, Conformance, ConformanceError, Verdict

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
