"""Every property initcheck checks, in one registry: what each needs, where it applies, and which
groups of known defects show as its failures. The check's property list and run order, the audit's,
``--properties``, the plugin's items, the report's columns and each known defect's properties all
derive from :data:`REGISTRY` (in the report's column order).

A property *needs* one of:

- ``values``: only the values (a sample of them): it applies to an initializer's draws and to a
  model's values alike;
- ``initializer``: the initializer itself, called again (on other shapes, dtypes, keys, under
  ``jit``): a model's audited value is what the model made, so it applies to ``check`` only;
- ``draws``: many independent draws (over many keys, or more values than one array holds): a model
  has one value per parameter, so it applies to ``check`` only;
- ``model``: the model (its keys, its forward pass, its author's intent): ``audit`` only.
"""

from __future__ import annotations

import dataclasses

VALUES, INITIALIZER, DRAWS, MODEL = "values", "initializer", "draws", "model"
CHECK, AUDIT = "check", "audit"


@dataclasses.dataclass(frozen=True)
class Property:
    """One property: its ``name``, the one-line ``promise`` it checks, what it ``needs``, where it
    ``applies`` (``check``, ``audit`` or both) and the known-defect ``groups`` that cover it."""

    name: str
    promise: str
    needs: str
    groups: tuple[str, ...] = ()

    @property
    def applies(self) -> tuple[str, ...]:
        """``check`` for what an initializer's draws show, ``audit`` for what a model's values show."""
        if self.needs == VALUES:
            return (CHECK, AUDIT)
        return (AUDIT,) if self.needs == MODEL else (CHECK,)


# known-defect groups: the failures a kind of defect shows
LOW_PRECISION = "low-precision sampling"  # a 16-bit sampler coarser than the dtype allows
WRONG_SCALE = "wrong scale"  # values from a law of another variance or support
WRONG_SHAPE = "wrong shape"  # an array of another shape than asked
RAISES = "raises"  # an error where the law promises values
WEAK_TYPE = "weak type"  # a weak-typed array (a Python scalar without a dtype) where a dtype was asked

REGISTRY: tuple[Property, ...] = (
    Property(
        "contract",
        "callable as (key, shape, dtype), exact shape and dtype, finite, jit-able, legacy and typed keys",
        INITIALIZER,
        (WRONG_SHAPE, RAISES, WEAK_TYPE),
    ),
    Property("determinism", "the same key gives the same output, eager and jitted", INITIALIZER),
    Property("key_sensitivity", "other keys give other, independent outputs (random laws)", DRAWS),
    Property("independence", "the elements are mutually independent where the law says i.i.d.", VALUES),
    Property("bounds", "every value inside the law's support", VALUES, (WRONG_SCALE,)),
    Property("distribution", "goodness of fit to the law", VALUES, (LOW_PRECISION, WRONG_SCALE)),
    Property("moments", "scale and location against the law, with stated power", VALUES, (LOW_PRECISION, WRONG_SCALE)),
    Property("precision", "16-bit outputs against the law rounded to the dtype", DRAWS, (LOW_PRECISION,)),
    Property("structure", "orthogonal, delta-orthogonal, identity or constant as promised", VALUES),
    Property("errors", "documented failure modes raise clear errors", INITIALIZER, (WRONG_SHAPE,)),
    Property("derivation", "each value is its declared initializer on the key the framework derives", MODEL),
    Property("intent", "the declared initializer promises the law the author intends (expect=)", MODEL),
    Property("effective_fan", "a variance-scaling law's fan is the fan the forward pass contracts over", MODEL),
)
BY_NAME = {p.name: p for p in REGISTRY}


def names(where: str) -> tuple[str, ...]:
    """The properties that apply to ``where`` (``check`` or ``audit``), in the registry's order."""
    return tuple(p.name for p in REGISTRY if where in p.applies)


def covered_by(group: str) -> tuple[str, ...]:
    """The properties whose failures a defect of ``group`` shows, in the registry's order."""
    return tuple(p.name for p in REGISTRY if group in p.groups)


CHECK_PROPERTIES = names(CHECK)
# the audit runs derivation first: a value that is not its declared initializer's is reported as such
AUDIT_PROPERTIES = ("derivation", *(n for n in names(AUDIT) if n != "derivation"))
