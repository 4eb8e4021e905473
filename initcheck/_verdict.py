"""Results: one :class:`Verdict` per (property, case); a :class:`Conformance` holds them all."""

from __future__ import annotations

import builtins
import dataclasses
import enum
import math
from typing import Any


class Status(enum.StrEnum):
    """A verdict's outcome; a ``StrEnum``, so ``Status.FAIL == "fail"`` and JSON writes the text."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


PASS, FAIL, ERROR, SKIP = Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP
PARTIAL = "partial"  # a target's result: nothing failed, but not every value was covered
KNOWN = "known"  # a target's result: every failure shows a known framework defect


@dataclasses.dataclass(frozen=True)
class Case:
    """What was sampled: shape, dtype and how the keys were derived."""

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
    """One property on one case. ``alpha`` is 0 for deterministic checks; ``mde`` is the minimum
    detectable relative scale error (power 0.99) where the property measures scale."""

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

    @builtins.property  # (the field ``property`` hides the builtin in this class body)
    def passed(self) -> bool:
        return self.status is PASS

    @builtins.property
    def statistical(self) -> bool:
        return self.alpha > 0 and self.status in (PASS, FAIL)

    def failure_lines(self, *, named: bool = True, figures: bool = False) -> list[str]:
        """This failed verdict for a person: what failed on which case and why (with the test's
        statistic, p-value, n and alpha when ``figures``), then the snippet that reproduces it."""
        what = f"property {self.property} {self.status}" if named else str(self.status)
        stats = ""
        if figures and self.pvalue is not None:
            stats = f" (statistic {self.statistic:.4g}, p={self.pvalue:.3g}, n={self.n}, alpha={self.alpha:g})"
        lines = [f"- {what} on {self.case}: {self.message}{stats}"]
        if self.reproduce:
            lines.append("  reproduce:\n" + "\n".join("    " + line for line in self.reproduce.splitlines()))
        return lines

    def to_dict(self) -> dict[str, Any]:
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
    """How much of a target initcheck could check: of its ``values`` (an audited model's parameters,
    variables and random state), how many had a known law and how many a modelled key derivation.
    ``gaps`` says, one line per value not covered, what is missing and why."""

    values: int
    law_known: int
    derived: int
    covered: int
    gaps: tuple[str, ...] = ()
    computed: tuple[str, ...] = ()  # values the model computed at init (not initial values), not counted

    @property
    def share(self) -> float:
        return self.covered / self.values if self.values else 1.0

    @property
    def complete(self) -> bool:
        return self.covered == self.values

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
    """Raised by ``assert_conforms``; the message lists every failed verdict."""


@dataclasses.dataclass
class Conformance:
    """All verdicts of one initializer against one law."""

    initializer: str
    law: str
    verdicts: list[Verdict]
    profile: str
    seed: int
    device: str
    seconds: float = 0.0
    coverage: Coverage = FULL
    signal: Any = None  # an audit's signal profile (``initcheck.audit.Signal``), when it was asked for
    signal_unavailable: str = ""  # why an audit that asked for the signal profile has none

    @property
    def passed(self) -> bool:
        """Nothing failed or errored (a PARTIAL result passes; see ``result``)."""
        return all(v.status in (PASS, SKIP) for v in self.verdicts)

    @property
    def result(self) -> str:
        """``pass``, ``partial`` (nothing failed, but some values had no known law or no modelled
        derivation: see ``coverage``), ``known`` (every failure shows a known framework defect) or
        ``fail``."""
        if not self.passed:
            return KNOWN if not self.unexplained else FAIL
        return PASS if self.coverage.complete else PARTIAL

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[Verdict]:
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
