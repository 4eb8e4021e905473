"""A small, safe text syntax for laws (`initcheck check --expect "normal(std=0.01)"`).

The text is parsed with `ast.parse` and only these nodes are accepted, never evaluated:

```text
law      := NAME "(" [argument ("," argument)*] ")"  |  "stats." NAME "(" ... ")"
argument := [NAME "="] value
value    := number | -number | string | True | False | None | law | "[" value, ... "]" | "(" value, ... ")"
```

NAME is a law of `initcheck.laws` in snake_case or CamelCase (`normal`, `truncated_normal`,
`VarianceScaling`, ...); `stats.NAME` is a continuous `scipy.stats` distribution, frozen with
the arguments (`stats.laplace(scale=0.1)`). `deterministic("MODULE:ATTR", ulps=4)` is an exact
table: the one string names the table function `(shape, dtype) -> array`, which is imported (as
`initcheck check` imports its target), never called by the parser. `literal_call` uses the same
rules for `MODULE:ATTR(args)` on the command line.

Example:
    ```python
    from initcheck.law_syntax import parse_law

    parse_law("normal(std=0.01)")  # Normal(std=0.01, mean=0.0)
    parse_law('variance_scaling(2.0, "fan_in", "truncated_normal")')
    parse_law("mixture([(0.9, constant(0)), (0.1, normal(1))])")
    ```
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import inspect
import pathlib
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initcheck import laws

# The law names, written out (checked against the classes by `_laws`): importing this module, and
# the command line's help that quotes EXAMPLES, imports neither JAX nor scipy.
LAW_NAMES = (
    "Normal",
    "Uniform",
    "Constant",
    "TruncatedNormal",
    "VarianceScaling",
    "Orthogonal",
    "DeltaOrthogonal",
    "Identity",
    "Dirac",
    "Sparse",
    "Mixture",
    "Deterministic",
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@functools.cache
def _laws() -> dict[str, type]:
    """Each law class by its CamelCase and snake_case names."""
    from initcheck import laws

    classes = {name: getattr(laws, name) for name in LAW_NAMES}
    return {**{_snake(n): cls for n, cls in classes.items()}, **classes}


EXAMPLES = (
    'normal(std=0.01), uniform(-0.1, 0.1), truncated_normal(0.02), variance_scaling(2.0, "fan_in", '
    '"truncated_normal"), orthogonal(), mixture([(0.9, constant(0)), (0.1, normal(1))]), stats.laplace(scale=0.1)'
)


def _closest(word: str, choices, *, n: int = 3) -> list[str]:
    """The names of `choices` closest to `word`, closest first (none when nothing is close)."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


def _did_you_mean(word: str, choices) -> str:
    close = _closest(word, choices)
    return f"; did you mean {' or '.join(close)}?" if close else ""


class LawSyntaxError(ValueError):
    """The text is not a law of this syntax; the message says where and what would be.

    A `ValueError`.
    """


def _parse(text: str, what: str) -> ast.expr:
    if not isinstance(text, str) or not text.strip():
        raise LawSyntaxError(f"{what}={text!r} is empty; write a law such as {EXAMPLES}")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise LawSyntaxError(
            f"{what}={text!r} is not valid syntax at column {exc.offset}: {exc.msg}; write a law such as {EXAMPLES}"
        ) from None


def _value(node: ast.expr, text: str, what: str, allow_laws: bool = True):
    """The value of a literal node (numbers, strings, booleans, None, lists, tuples, and laws)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_value(e, text, what, allow_laws) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if allow_laws and isinstance(node, ast.Call):
        return _law(node, text, what)
    snippet = ast.get_source_segment(text, node) or type(node).__name__
    raise LawSyntaxError(
        f"{what}={text!r}: {snippet!r} is not allowed here; arguments are numbers, strings, "
        f"True/False/None, lists, tuples and laws (nothing is evaluated)"
    )


def _arguments(call: ast.Call, text: str, what: str, allow_laws: bool = True) -> tuple[list, dict]:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise LawSyntaxError(f"{what}={text!r}: * and ** arguments are not allowed")
    args = [_value(a, text, what, allow_laws) for a in call.args]
    kwargs = {k.arg: _value(k.value, text, what, allow_laws) for k in call.keywords}
    return args, kwargs


def _law(call: ast.Call, text: str, what: str):
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "stats":
        import scipy.stats

        from initcheck import laws

        dist = getattr(scipy.stats, func.attr, None)
        if not isinstance(dist, scipy.stats.rv_continuous):
            continuous = [n for n, d in vars(scipy.stats).items() if isinstance(d, scipy.stats.rv_continuous)]
            raise LawSyntaxError(
                f"{what}={text!r}: stats.{func.attr} is not a continuous scipy.stats distribution"
                + _did_you_mean(func.attr, continuous)
            )
        args, kwargs = _arguments(call, text, what, allow_laws=False)
        try:
            return laws.as_law(dist(*args, **kwargs))
        except (TypeError, ValueError) as exc:
            raise LawSyntaxError(f"{what}={text!r}: stats.{func.attr}: {exc}") from None
    name = func.id if isinstance(func, ast.Name) else ast.get_source_segment(text, func)
    cls = _laws().get(name or "")
    if cls is None:
        close = _closest(name or "", [_snake(n) for n in LAW_NAMES]) or _closest(name or "", LAW_NAMES)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise LawSyntaxError(
            f"{what}={text!r}: unknown law {name!r}; {hint}use one of "
            f"{', '.join(_snake(n) for n in LAW_NAMES)} or stats.NAME(...) for a scipy.stats distribution"
        )
    args, kwargs = _arguments(call, text, what)
    _check_keywords(cls, kwargs, text, what)
    if cls.__name__ == "Deterministic":
        if not args or not isinstance(args[0], str):
            raise LawSyntaxError(
                f'{what}={text!r}: deterministic takes the table function as "MODULE:ATTR", '
                'e.g. deterministic("mypkg.tables:sincos", ulps=4)'
            )
        args[0] = resolve(args[0], what)
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise LawSyntaxError(f"{what}={text!r}: {exc} (see help(initcheck.laws.{cls.__name__}))") from None
    except ValueError as exc:
        raise LawSyntaxError(f"{what}={text!r}: {exc}") from None


def _check_keywords(cls: type, kwargs: dict, text: str, what: str) -> None:
    """Refuse a keyword the law does not take, naming the closest it does (`sd` -> `std`)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: the constructor says it
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for keyword in kwargs:
        if keyword not in known:
            raise LawSyntaxError(
                f"{what}={text!r}: unexpected keyword argument {keyword!r} of {_snake(cls.__name__)}"
                + _did_you_mean(keyword, known)
                + f" ({_snake(cls.__name__)}'s keywords: {', '.join(known)})"
            )


def _missing(obj, part: str) -> str:
    """What `obj` offers instead of the missing `part`: its callables, closest first."""
    names = [n for n in dir(obj) if (part.startswith("_") or not n.startswith("_")) and callable(getattr(obj, n, None))]
    if not names:
        return ""
    ordered = difflib.get_close_matches(part, names, n=len(names), cutoff=0.0)
    shown = ", ".join(ordered[:12]) + (f", ... ({len(ordered) - 12} more)" if len(ordered) > 12 else "")
    close = _closest(part, names, n=1)
    return (f"; did you mean {close[0]}? Its" if close else "; its") + f" callables, closest first: {shown}"


def resolve(spec: str, what: str):
    """The object `MODULE:ATTR` names (ATTR dotted), importing MODULE from the current folder too (like `python -m`).

    Args:
        spec: `MODULE:ATTR`, e.g. `mypkg.tables:sincos`.
        what: What the text is, for the error message (e.g. `"expect"`).

    Returns:
        (Any): The object.

    Raises:
        LawSyntaxError: `spec` is not `MODULE:ATTR`, MODULE cannot be imported, or has no ATTR
            (a `ValueError` that names what is missing).
    """
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise LawSyntaxError(f"{what}={spec!r} must be MODULE:ATTR, e.g. mypkg.tables:sincos")
    if str(pathlib.Path.cwd()) not in sys.path:
        sys.path.insert(0, str(pathlib.Path.cwd()))
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise LawSyntaxError(f"{what}={spec!r}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LawSyntaxError(f"{what}={spec!r}: {module_name} has no attribute {attr!r}{_missing(obj, part)}")
        obj = getattr(obj, part)
    return obj


def parse_law(text: str, what: str = "expect") -> laws.Law:
    """The law written in `text`, in the syntax above; nothing is evaluated.

    Args:
        text: The law, e.g. `"normal(std=0.01)"` or `"stats.laplace(scale=0.1)"`.
        what: What the text is, for the error message (e.g. `"expect"`).

    Returns:
        The law.

    Raises:
        LawSyntaxError: The text is not a law of this syntax, or the law refuses its arguments;
            the message names the problem.
    """
    node = _parse(text, what)
    if not isinstance(node, ast.Call):
        raise LawSyntaxError(f"{what}={text!r} is not a law; write a call such as {EXAMPLES}")
    return _law(node, text, what)


def literal_call(text: str, what: str) -> tuple[str, list, dict] | None:
    """`name(args)` with literal arguments, parsed (never evaluated).

    Args:
        text: `NAME` or `NAME(literal arguments)`, NAME possibly dotted: the ATTR of
            `MODULE:ATTR(args)`, e.g. `builder(2.0, "fan_in")`.
        what: What the text is, for the error message.

    Returns:
        (dotted name, args, kwargs), or None for a bare name.

    Raises:
        LawSyntaxError: The text is neither, or an argument is not a literal.
    """
    node = _parse(text, what)
    if isinstance(node, (ast.Name, ast.Attribute)):
        return None
    if not isinstance(node, ast.Call):
        raise LawSyntaxError(f"{what}={text!r} must be NAME or NAME(literal arguments)")
    args, kwargs = _arguments(node, text, what, allow_laws=False)
    return ast.get_source_segment(text, node.func) or "", args, kwargs


__all__ = ["LawSyntaxError", "literal_call", "parse_law", "resolve"]
