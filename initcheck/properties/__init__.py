"""The properties, in the order they run. Each is ``check_<property>(ctx) -> Verdict``."""

from initcheck.properties._context import CaseContext, NotApplicable
from initcheck.properties.contract import check_contract, check_errors
from initcheck.properties.elementwise import check_bounds, check_distribution, check_independence, check_moments
from initcheck.properties.keys import check_determinism, check_key_sensitivity
from initcheck.properties.precision import check_precision
from initcheck.properties.structure import check_structure

PROPERTIES = {
    "contract": check_contract,
    "determinism": check_determinism,
    "key_sensitivity": check_key_sensitivity,
    "independence": check_independence,
    "bounds": check_bounds,
    "distribution": check_distribution,
    "moments": check_moments,
    "precision": check_precision,
    "structure": check_structure,
    "errors": check_errors,
}
PER_INITIALIZER = ("errors",)  # run once per initializer, not once per case

__all__ = ["PROPERTIES", "PER_INITIALIZER", "CaseContext", "NotApplicable"]
