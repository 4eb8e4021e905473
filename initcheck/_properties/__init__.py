"""The properties ``check`` runs, in the registry's order (``initcheck._property_registry``). Each
is ``check_<property>(ctx) -> Verdict``."""

from initcheck._properties._context import CaseContext, NotApplicable
from initcheck._properties._exact import Exact
from initcheck._properties._exact import intervals as exact_intervals
from initcheck._properties._exact import verdict as exact_verdict
from initcheck._properties.contract import check_contract, check_errors, describe_error
from initcheck._properties.elementwise import check_bounds, check_distribution, check_independence, check_moments
from initcheck._properties.keys import check_determinism, check_key_sensitivity
from initcheck._properties.precision import check_precision
from initcheck._properties.structure import check_structure, first_problem
from initcheck._property_registry import CHECK_PROPERTIES

_CHECKS = {
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
PROPERTIES = {name: _CHECKS[name] for name in CHECK_PROPERTIES}  # a registered property without a check fails here
PER_INITIALIZER = ("errors",)  # run once per initializer, not once per case


def run_property(fn, ctx: CaseContext, name: str):
    """``fn(ctx)``; a property that does not apply is a skip, one that breaks is an errored verdict."""
    try:
        return fn(ctx)
    except NotApplicable as why:
        return ctx.skipped(name, str(why))
    except Exception as exc:  # noqa: BLE001 - one broken initializer is one errored verdict
        return ctx.errored(name, f"{name} could not run: {describe_error(exc)}")


def select_properties(properties, known, *, refusal: str = "unknown {}") -> list[str]:
    """``properties`` (a name, a list, or None for all of ``known``) in the order of ``known``;
    names outside ``known`` raise ValueError, worded by ``refusal``."""
    if properties is None:
        return list(known)
    if isinstance(properties, str):
        properties = [properties]
    unknown = [p for p in properties if p not in known]
    if unknown:
        raise ValueError(f"properties={list(properties)!r}: {refusal.format(unknown)}; choose from {', '.join(known)}")
    return [p for p in known if p in properties]


__all__ = [
    "PER_INITIALIZER",
    "PROPERTIES",
    "CaseContext",
    "Exact",
    "NotApplicable",
    "check_bounds",
    "check_distribution",
    "check_independence",
    "check_moments",
    "exact_intervals",
    "exact_verdict",
    "first_problem",
    "run_property",
    "select_properties",
]
