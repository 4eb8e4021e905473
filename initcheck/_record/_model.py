"""What to audit and how to initialize it (``initcheck.Model``), and the laws its author intends for
some of its values (``expect``: path patterns to laws)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from initcheck import laws
from initcheck._element import RealLaw


@dataclasses.dataclass(frozen=True)
class Model:
    """A model with its inputs, for [`initcheck.audit`][initcheck.audit].

    The model is initialized as `model.init(rng, *args, **kwargs)` for a Flax linen Module or a
    Haiku `Transformed`, and `model(*args, **kwargs, rngs=nnx.Rngs(rng))` for an nnx Module class
    or factory.

    Args:
        model: The model (as for `initcheck.audit`).
        args: The model's inputs, a tuple.
        kwargs: The model's keyword inputs.
        rng: An int, a key or a dict of streams (`{"params": 0, "dropout": 1}`).
        expect: Value path patterns mapped to the laws the author intends (see `match`).
        call_args: The forward pass's inputs (default: `args` for linen and Haiku; an nnx module
            is called on `call_args`, which it needs).
        call_kwargs: The forward pass's keyword inputs (default: `kwargs` for linen and Haiku).
        memory: The audit's memory budget (as `initcheck.audit`'s `memory`).

    Raises:
        TypeError: `args` or `call_args` is not a tuple, `kwargs` or `call_kwargs` is not a
            mapping, or `expect` is not a mapping of path globs to laws.

    Example:
        ```python
        def make_model():  # a model factory, for `initcheck audit mypkg.models:make_model`
            return initcheck.Model(MyNet(), args=(jnp.ones((1, 28, 28, 1)),), rng={"params": 0, "dropout": 1})
        ```
    """

    model: Any
    args: tuple = ()
    kwargs: Mapping = dataclasses.field(default_factory=dict)
    rng: Any = 0
    expect: Mapping = dataclasses.field(default_factory=dict)
    call_args: tuple | None = None
    call_kwargs: Mapping = dataclasses.field(default_factory=dict)
    memory: int | str | None = None

    def __post_init__(self):
        if not isinstance(self.args, tuple):
            raise TypeError(f"Model: args={self.args!r} must be a tuple of inputs, e.g. args=(x,)")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"Model: kwargs={self.kwargs!r} must be a dict of keyword inputs")
        if self.call_args is not None and not isinstance(self.call_args, tuple):
            raise TypeError(f"Model: call_args={self.call_args!r} must be a tuple of inputs, e.g. call_args=(x,)")
        if not isinstance(self.call_kwargs, Mapping):
            raise TypeError(f"Model: call_kwargs={self.call_kwargs!r} must be a dict of keyword inputs")
        patterns(self.expect)  # bad patterns and laws are refused now, not after the model is built

    @classmethod
    def of(cls, made, rng=0) -> Model:
        """A model factory's result as a `Model`.

        Args:
            made (Any): A `Model` (kept, with its own rng), a `(model, *inputs)` tuple or a model alone.
            rng (Any): The rng of a tuple or a model alone (an int, a key or a dict of streams).

        Returns:
            The `Model`.

        Raises:
            TypeError: `made` is an empty tuple.
        """
        if isinstance(made, Model):
            return made
        if isinstance(made, tuple):
            if not made:
                raise TypeError(
                    "a model factory returned an empty tuple; return (model, *inputs) or "
                    "initcheck.Model(model, args=..., kwargs=..., rng=..., expect=...)"
                )
            return cls(made[0], tuple(made[1:]), rng=rng)
        return cls(made, rng=rng)


def factory_origin(spec: str) -> str | None:
    """Python that defines ``target`` from the model factory ``MODULE:FACTORY``, for reproduction
    snippets (None when FACTORY is not a plain name)."""
    module, _, attr = spec.partition(":")
    return f"from {module} import {attr}\ntarget = initcheck.Model.of({attr}())" if attr.isidentifier() else None


def _segment(text: str) -> str:
    return "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in text)


def pattern_regex(pattern: str) -> re.Pattern:
    """A value path glob as a regex: ``*`` and ``?`` within one path segment, ``**`` for any number
    of segments (none included): ``"**/bias"`` matches ``"bias"`` and ``"Dense_0/bias"``."""
    parts, regex = pattern.strip("/").split("/"), ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment(part) + ("" if last else "/")
    return re.compile(regex + r"\Z")


def patterns(expect) -> list[tuple[str, re.Pattern, laws.Law]]:
    """``expect`` checked: a mapping of non-empty string patterns to laws."""
    if not isinstance(expect, Mapping):
        raise TypeError(
            f"expect={expect!r} must be a dict of path patterns to laws, e.g. "
            "{'**/Dense_1/kernel': laws.VarianceScaling(1.0, 'fan_avg', 'uniform')}"
        )
    out = []
    for pattern, law in expect.items():
        if not isinstance(pattern, str) or not pattern.strip("/"):
            raise TypeError(f"expect: the pattern {pattern!r} must be a non-empty path glob such as '**/kernel'")
        try:
            law = laws.as_law(law)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"expect[{pattern!r}]: {exc}") from None
        out.append((pattern, pattern_regex(pattern), law))
    return out


def match(expect, paths: list[str]) -> dict[str, tuple[str, laws.Law]]:
    """path -> (pattern, intended law) for every path a pattern matches (the first pattern wins). A
    pattern that matches nothing is an error: a typo must not pass silently."""
    out: dict[str, tuple[str, laws.Law]] = {}
    for pattern, regex, law in patterns(expect):
        hits = [p for p in paths if regex.match(p)]
        if not hits:
            shown = ", ".join(paths[:12]) + (", ..." if len(paths) > 12 else "")
            raise ValueError(
                f"expect: the pattern {pattern!r} matches none of the model's values ({shown}); "
                "fix the pattern (* within a path segment, ** across segments)"
            )
        for path in hits:
            out.setdefault(path, (pattern, law))
    return out


LAW_TOLERANCE = 1e-6  # the Kolmogorov distance within which two laws of one value are the same law


def same_law(a: laws.Law, b: laws.Law, shape: tuple[int, ...] | None = None, dtype=None) -> bool:
    """Two laws promise the same thing (the refusals a catalog attaches aside): equal, or, on a
    value of ``shape`` and ``dtype``, element-wise laws whose element distributions are within
    ``LAW_TOLERANCE`` of each other in Kolmogorov distance, sup_x |F_a(x) - F_b(x)|
    (``Normal(0.02 * 8 ** -0.5)`` and ``Normal(0.02 / math.sqrt(8))``, whose floats differ in the
    last bit; ``VarianceScaling(1.0, "fan_in", "normal", out_axis=0)`` on a (1000, 64) table and
    ``Normal(0.125)``)."""
    if a.without_refusals() == b.without_refusals():
        return True
    if shape is None or a.has_structure or b.has_structure:
        return False
    try:
        ea, eb = a.element_law(tuple(shape), dtype), b.element_law(tuple(shape), dtype)
    except (NotImplementedError, ValueError, TypeError):
        return False
    if not (isinstance(ea, RealLaw) and isinstance(eb, RealLaw)):
        return False
    return kolmogorov_distance(ea, eb) <= LAW_TOLERANCE


def kolmogorov_distance(a: RealLaw, b: RealLaw) -> float:
    """sup_x |F_a(x) - F_b(x)|, on a grid over both laws' mass (within 10 standard deviations of
    their means) and at, just below and just after each atom."""
    centre, spread = (a.mean + b.mean) / 2, max(a.std, b.std, 1e-30)
    grid = np.linspace(centre - 10 * spread, centre + 10 * spread, 4001)
    atoms = np.array([v for v, _ in a.atoms + b.atoms], np.float64)
    points = np.concatenate([grid, atoms, np.nextafter(atoms, -np.inf)])
    return float(np.max(np.abs(a.cdf(points) - b.cdf(points))))


__all__ = ["Model", "factory_origin", "match", "pattern_regex", "patterns", "same_law"]
