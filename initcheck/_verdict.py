"""Results: one `Verdict` per (property, case); a `Conformance` holds them all."""

from __future__ import annotations

import builtins
import dataclasses
import enum
import math
from typing import Any


class Status(enum.StrEnum):
    """A verdict's outcome; a `StrEnum`, so `Status.FAIL == "fail"` and JSON writes the text."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


PASS, FAIL, ERROR, SKIP = Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP
PARTIAL = "partial"  # a target's result: nothing failed, but not every value was covered
KNOWN = "known"  # a target's result: every failure shows a known framework defect


@dataclasses.dataclass(frozen=True)
class Case:
    """What was sampled: shape, dtype and how the keys were derived.

    `str(case)` reads `"Dense_0/kernel shape=(3, 4) dtype=float32"`.

    Attributes:
        shape: The shape asked for.
        dtype: The dtype's name.
        key: How the keys were derived (e.g. the seed and the fold).
        path: The value's path, for a case of an audited model (else empty).
        collection: The value's collection (linen), `"params"`/`"state"` (Haiku) or Variable type
            (nnx); empty outside audits.
    """

    shape: tuple[int, ...]
    dtype: str
    key: str
    path: str = ""  # the value's path, for a case of an audited model
    collection: str = ""  # the value's collection (linen), "params"/"state" (Haiku) or Variable type (nnx)

    def __str__(self):
        where = f"{self.path} " if self.path else ""
        if self.collection and self.collection not in ("params", "Param"):
            where += f"[{self.collection}] "
        return f"{where}shape={self.shape} dtype={self.dtype}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One property on one case.

    Attributes:
        property: The property's name (e.g. `"moments"`, `"structure"`).
        status: `pass`, `fail`, `error` or `skip` (a `Status`, which compares equal to the text).
        statistic: The test's statistic, when the property is statistical.
        pvalue: The test's p-value, when the property is statistical.
        alpha: The false-alarm level of the verdict; 0 for deterministic checks.
        n: The number of values the verdict looked at.
        case: What was sampled.
        message: What was found, for a person.
        reproduce: Python that reproduces a failure (empty when it passes).
        mde: The minimum detectable relative scale error (power 0.99) where the property measures
            scale.
        plot: The data of the report's plot, if any.
        known_defect: The name of the known framework defect this failure shows, if any.
        gated: Not run because the case's contract failed (an error).
    """

    property: str
    status: Status
    statistic: float | None
    pvalue: float | None
    alpha: float
    n: int
    case: Case
    message: str
    reproduce: str
    mde: float | None = None
    plot: dict[str, Any] | None = None
    known_defect: str | None = None  # name of the known framework defect this failure shows
    gated: bool = False  # not run because the case's contract failed (an error)

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))

    @builtins.property  # (the field `property` hides the builtin in this class body)
    def passed(self) -> bool:
        """The verdict is a pass."""
        return self.status is PASS

    @builtins.property
    def statistical(self) -> bool:
        """A statistical test (`alpha > 0`) that ran to a pass or a fail."""
        return self.alpha > 0 and self.status in (PASS, FAIL)

    def failure_lines(self, *, named: bool = True, figures: bool = False) -> list[str]:
        """This failed verdict for a person: what failed on which case and why, then the snippet that reproduces it.

        Args:
            named: Name the property in the first line.
            figures: Add the test's statistic, p-value, n and alpha.

        Returns:
            The lines of text.
        """
        what = f"property {self.property} {self.status}" if named else str(self.status)
        stats = ""
        if figures and self.pvalue is not None:
            stats = f" (statistic {self.statistic:.4g}, p={self.pvalue:.3g}, n={self.n}, alpha={self.alpha:g})"
        lines = [f"- {what} on {self.case}: {self.message}{stats}"]
        if self.reproduce:
            lines.append("  reproduce:\n" + "\n".join("    " + line for line in self.reproduce.splitlines()))
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The verdict as the JSON report writes it.

        Returns:
            A dict of JSON values (NaN as None).
        """

        def num(x):
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "property": self.property,
            "status": str(self.status),
            "passed": self.passed,
            "statistic": num(self.statistic),
            "pvalue": num(self.pvalue),
            "alpha": float(self.alpha),
            "n": int(self.n),
            "mde": num(self.mde),
            "case": {
                "shape": list(self.case.shape),
                "dtype": self.case.dtype,
                "key": self.case.key,
                **({"path": self.case.path} if self.case.path else {}),
                **({"collection": self.case.collection} if self.case.collection else {}),
            },
            "message": self.message,
            "reproduce": self.reproduce,
            "plot": self.plot,
            "known_defect": self.known_defect,
        }


@dataclasses.dataclass(frozen=True)
class Coverage:
    """How much of a target initcheck could check: of its `values` (an audited model's parameters,
    variables and random state), how many had a known law and how many a modelled key derivation.
    `gaps` says, one line per value not covered, what is missing and why, and what else the audit
    could not check (the fans, when the forward pass could not be traced)."""

    values: int
    law_known: int
    derived: int
    covered: int
    gaps: tuple[str, ...] = ()
    computed: tuple[str, ...] = ()  # values the model computed at init (not initial values), not counted

    @property
    def share(self) -> float:
        return self.covered / self.values if self.values else 0.0

    @property
    def complete(self) -> bool:
        """Every value covered, nothing the audit could not check (`gaps`), and at least one
        value (a model that made none was not audited)."""
        return self.covered == self.values > 0 and not self.gaps

    def __str__(self) -> str:
        computed = f"; {len(self.computed)} computed values not counted" if self.computed else ""
        return (
            f"coverage {self.covered}/{self.values} values ({self.share:.0%}): law known for {self.law_known}, "
            f"derivation modelled for {self.derived}{computed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "law_known": self.law_known,
            "derived": self.derived,
            "covered": self.covered,
            "share": self.share,
            "gaps": list(self.gaps),
            "computed": list(self.computed),
        }


FULL = Coverage(1, 1, 1, 1)  # an initializer checked against the law it was given


class ConformanceError(AssertionError):
    """Raised by [`assert_conforms`][initcheck.assert_conforms]; the message lists every failed verdict.

    An `AssertionError`, so pytest shows it as a failed assertion.
    """


@dataclasses.dataclass
class Conformance:
    """All verdicts of one initializer against one law (or of one audited model).

    True when it passes; `str(report)` is the table of verdicts, and `to_dict()` the JSON report.

    Attributes:
        initializer: What was checked, for a person.
        law: The law's repr (Python that rebuilds it).
        verdicts: Every verdict.
        profile: The profile's name.
        seed: The seed.
        device: The device the values were drawn on.
        seconds: How long the check took.
        coverage: How much of the target was covered (all of it for an initializer).
        signal: An audit's signal profile, when it was asked for.
        signal_unavailable: Why an audit that asked for the signal profile has none.
    """

    initializer: str
    law: str
    verdicts: list[Verdict]
    profile: str
    seed: int
    device: str
    seconds: float = 0.0
    coverage: Coverage = FULL
    signal: Any = None  # an audit's signal profile (`initcheck._audit.Signal`), when it was asked for
    signal_unavailable: str = ""  # why an audit that asked for the signal profile has none

    @property
    def passed(self) -> bool:
        """Nothing failed or errored (a PARTIAL result passes; see `result`)."""
        return all(v.status in (PASS, SKIP) for v in self.verdicts)

    @property
    def result(self) -> str:
        """`pass`, `partial`, `known` or `fail`.

        `partial`: nothing failed, but some values had no known law or no modelled derivation (see
        `coverage`); `known`: every failure shows a known framework defect.
        """
        if not self.passed:
            return KNOWN if not self.unexplained else FAIL
        return PASS if self.coverage.complete else PARTIAL

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[Verdict]:
        """The verdicts that failed or errored."""
        return [v for v in self.verdicts if v.status in (FAIL, ERROR)]

    @property
    def unexplained(self) -> list[Verdict]:
        """The failures no known framework defect explains."""
        return [v for v in self.failures if not v.known_defect]

    @property
    def false_alarm_bound(self) -> float:
        """Bonferroni bound on the chance that a correct initializer fails this run: sum of alphas."""
        return sum(v.alpha for v in self.verdicts if v.statistical)

    def failure_text(self) -> str:
        """Every failure for a person, as `ConformanceError` shows them.

        Returns:
            A heading line, then each failure with the snippet that reproduces it.
        """
        lines = [
            f"[initcheck] {self.initializer} does not conform to {self.law} "
            f"({len(self.failures)} of {len(self.verdicts)} verdicts failed):"
        ]
        for v in self.failures:
            lines += v.failure_lines()
        return "\n".join(lines)

    def __str__(self) -> str:
        head = (
            f"initcheck: {self.initializer} vs {self.law}\n"
            f"profile={self.profile} seed={self.seed} device={self.device} "
            f"false-alarm bound={self.false_alarm_bound:.2g} time={self.seconds:.1f}s"
        )
        rows = [("property", "case", "statistic", "p-value", "n", "verdict")]
        for v in self.verdicts:
            rows.append((v.property, str(v.case), _fmt(v.statistic), _fmt(v.pvalue), str(v.n), v.status.upper()))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
        verdict = {
            PASS: "CONFORMS",
            PARTIAL: "CONFORMS PARTIALLY (PARTIAL)",
            FAIL: "DOES NOT CONFORM",
            KNOWN: "DOES NOT CONFORM, BY KNOWN FRAMEWORK DEFECTS ONLY",
        }[self.result]
        text = f"{head}\n{table}\n{verdict}"
        if self.coverage is not FULL:
            text += f"\n{self.coverage}" + "".join(f"\n- not covered: {gap}" for gap in self.coverage.gaps)
        if self.signal is not None:
            text += "\n" + self.signal.table()
        elif self.signal_unavailable:
            text += f"\nsignal at init: not profiled ({self.signal_unavailable})"
        if not self.passed:
            text += "\n" + self.failure_text()
        return text

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON writes it (see the report schema).

        Returns:
            A dict of JSON values.
        """
        return {
            "initializer": self.initializer,
            "law": self.law,
            "passed": self.passed,
            "result": self.result,
            "coverage": self.coverage.to_dict(),
            "profile": self.profile,
            "seed": self.seed,
            "device": self.device,
            "seconds": self.seconds,
            "false_alarm_bound": self.false_alarm_bound,
            "verdicts": [v.to_dict() for v in self.verdicts],
            **({"signal": self.signal.as_dict()} if self.signal is not None else {}),
            **({"signal_unavailable": self.signal_unavailable} if self.signal_unavailable else {}),
        }


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3g}"


# Reproduction snippets: Python that runs as printed in a fresh interpreter, with public names
# only. What cannot be rebuilt that way (an initializer made inside a function, a lambda typed in
# a REPL) is said in the snippet, which then stops with that message instead of guessing.


def import_text(obj: Any, name: str) -> str | None:
    """Python that binds `name` to `obj` by importing it from the module that holds it, or None.

    The module is the one `obj` names (`__module__`, `__qualname__`), else the first imported
    module (its own first, then public ones, by name) that holds `obj` at its top level (a
    builder's result bound there: `too_wide = make_init(0.04)`). `__main__` is never one: a fresh
    interpreter has another.
    """
    import sys

    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module != "__main__" and "<" not in qualname:
        found = sys.modules.get(module)
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is obj:
            return _from_import(module, qualname, name)
    for module_name in sorted(sys.modules, key=lambda n: (n != module, n.startswith("_") or "._" in n, n)):
        held = sys.modules.get(module_name)
        if module_name == "__main__" or held is None:
            continue
        try:
            items = list(vars(held).items())
        except TypeError:
            continue
        for attr, value in items:
            if value is obj and attr.isidentifier() and not attr.startswith("__"):
                return _from_import(module_name, attr, name)
    return None


def _from_import(module: str, dotted: str, name: str) -> str:
    head = dotted.split(".")[0]
    if dotted == head:
        return f"from {module} import {head}" + ("" if head == name else f" as {name}")
    return f"from {module} import {head}\n{name} = {dotted}"


def literal_text(value: Any) -> str | None:
    """Python that rebuilds `value` exactly, or None: numbers, strings, booleans, None, tuples,
    lists and dicts of them, laws whose `repr` reads back, and arrays of one repeated value
    (`jnp.full(shape, value, dtype)`, what `jnp.ones((1, 8))` is)."""
    import ast

    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, (tuple, list)):
        items = [literal_text(v) for v in value]
        if any(i is None for i in items):
            return None
        inner = ", ".join(items) + ("," if isinstance(value, tuple) and len(items) == 1 else "")  # type: ignore[arg-type]
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        pairs = [(literal_text(k), literal_text(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    from initcheck import laws

    if isinstance(value, laws.Law):
        text = repr(value)
        try:
            ast.parse(text, mode="eval")
        except SyntaxError:
            return None
        return None if "<" in text else text
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and hasattr(value, "__array__"):
        import numpy as np

        try:
            array = np.asarray(value)
        except TypeError:  # a typed PRNG key, or another array NumPy cannot hold
            return None
        if array.size == 0 or array.dtype.kind not in "biuf" or not (array == array.flat[0]).all():
            return None
        first = array.flat[0].item()
        if not math.isfinite(first):
            return None
        return f"jnp.full({shape!r}, {first!r}, dtype={array.dtype.name!r})"
    return None


def unavailable_text(name: str, what: str, how: str) -> str:
    """A snippet's stand-in for `name`, which initcheck cannot rebuild: `name = ...` with a comment
    saying what to put there, then a check that stops the snippet run as printed with
    `NotImplementedError` and the same message (never an undefined name, never a guess)."""
    message = f"define {name} ({what}) here: initcheck cannot import it; {how}"
    return (
        f"{name} = ...  # replace ... with Python that defines {name} ({what})\n"
        f"if {name} is ...:\n    raise NotImplementedError({message!r})"
    )
