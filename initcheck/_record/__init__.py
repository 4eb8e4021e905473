"""What a framework module records of a model's init, and what the audit reads: each value as a
:class:`Parameter`, the audited :class:`Model` with its inputs and intended laws, and the forward
pass as a function of the values (:class:`Forward`)."""

from initcheck._record._forward import (
    Forward,
    Leaves,
    NoForward,
    apply_inputs,
    key_of,
    mesh_of,
    nested,
    path_text,
    replaced,
    tracked,
    tree_values,
    unbound_axes,
    values_of,
    with_bound_axes,
)
from initcheck._record._model import Model, factory_origin, match, pattern_regex, patterns, same_law
from initcheck._record._parameter import (
    ULPS,
    Lazy,
    Parameter,
    compare,
    guarded,
    is_key,
    stack_axes,
    stacked_positions,
)

__all__ = [
    "ULPS",
    "Forward",
    "Lazy",
    "Leaves",
    "Model",
    "NoForward",
    "Parameter",
    "apply_inputs",
    "compare",
    "factory_origin",
    "guarded",
    "is_key",
    "key_of",
    "match",
    "mesh_of",
    "nested",
    "path_text",
    "pattern_regex",
    "patterns",
    "replaced",
    "same_law",
    "stack_axes",
    "stacked_positions",
    "tracked",
    "tree_values",
    "unbound_axes",
    "values_of",
    "with_bound_axes",
]
