"""The HTML conformance report: one self-contained file (inline CSS, JS and SVG; no network),
rendered with Jinja2 from a conformance document (``initcheck._document``)."""

from __future__ import annotations

import re

import jinja2

from initcheck import _document as doc
from initcheck import _plots as plots

SYMBOLS = {"pass": "✓", "fail": "✗", "error": "!", "known": "K", "skip": "–", "": ""}
MAX_PLOTS_PER_TARGET = 3  # one per failing dtype (and parameter), at most this many: the file stays small


def _slug(text: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _number(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def _cell(target: dict, prop: str) -> dict:
    verdicts = [v for v in target["verdicts"] if v["property"] == prop]
    items = [i for i in target.get("items", ()) if i["property"] == prop]
    if not verdicts:
        broken = next((i for i in items if i["outcome"] in ("failed", "error")), None)
        if broken is not None or (target["error"] and items):
            message = (broken or {}).get("message") or target["error"] or "the item errored"
            return {"status": "error", "title": f"{prop}: error: {message[:300]}"}
        return {"status": "", "title": f"{prop}: not checked"}
    status = doc.cell_status(verdicts)
    pvalues = [v["pvalue"] for v in verdicts if v["pvalue"] is not None]
    lines = [f"{prop}: {status} ({len(verdicts)} verdict{'s' * (len(verdicts) > 1)})"]
    if pvalues:
        lines.append(f"smallest p-value {min(pvalues):.3g} (alpha {max(v['alpha'] for v in verdicts):g})")
    worst = next((v for v in verdicts if doc.cell_status([v]) == status), verdicts[0])
    lines.append(worst["message"][:300])
    return {"status": status, "title": "\n".join(lines)}


def _case_text(case: dict) -> str:
    where = f"{case['path']} " if case.get("path") else ""
    if case.get("collection") and case["collection"] not in ("params", "Param"):
        where += f"[{case['collection']}] "
    return f"{where}shape=({', '.join(map(str, case['shape']))}{',' if len(case['shape']) == 1 else ''}) dtype={case['dtype']}"


def _case_of(verdict: dict) -> tuple:
    case = verdict["case"]
    return tuple(case["shape"]), case["dtype"], case.get("path", "")


def _plotted(target: dict) -> dict[tuple, dict]:
    """The plot of each case's sample (a ``distribution`` verdict's), by case."""
    plotted: dict[tuple, dict] = {}
    for v in target["verdicts"]:
        if v.get("plot"):
            plotted.setdefault(_case_of(v), v["plot"])
    return plotted


def _failure(v: dict, target: dict, plot: dict | None, title: str) -> dict:
    return {
        **v,
        "case_text": _case_text(v["case"]),
        "statistic_text": _number(v["statistic"]),
        "pvalue_text": _number(v["pvalue"]),
        "svg": (plot, title) if plot else None,
        "cell": "known" if v.get("known_defect") else v["status"],
        "target": target["id"],
    }


def _broken(v: dict) -> bool:
    return v["status"] in ("fail", "error")


def _details(target: dict, draw: bool = True) -> dict:
    """What the section of one target shows: its failures that no known defect explains (those are
    shown once per defect, see ``_defects``), each with the plot of its case's sample (its own, or
    the ``distribution`` verdict's on the same sample) unless not ``draw``, and the values its
    coverage misses."""
    plotted = _plotted(target)
    failures, drawn = [], set[tuple]()
    for v in target["verdicts"]:
        if not _broken(v) or v.get("known_defect"):
            continue
        case = _case_of(v)
        plot = v.get("plot") or plotted.get(case)
        where = case[1:]  # (dtype, parameter path)
        show = draw and plot and where not in drawn and len(drawn) < MAX_PLOTS_PER_TARGET
        if show:
            drawn.add(where)
        failures.append(_failure(v, target, plot if show else None, f"{target['id']}: {_case_text(v['case'])}"))
    broken_items = [
        i
        for i in target.get("items", ())
        if i["outcome"] in ("failed", "error")
        and i.get("message")
        and not any(v["property"] == i["property"] for v in target["verdicts"])
    ]
    coverage = target.get("coverage") or {}
    return {"failures": failures, "broken_items": broken_items, "gaps": coverage.get("gaps", [])}


def _defect_examples(target: dict) -> dict[str, tuple[dict, dict | None]]:
    """For each known defect the target shows: its first failure, and a plot of it if there is one."""
    plotted, out = _plotted(target), dict[str, tuple[dict, dict | None]]()
    for v in target["verdicts"]:
        name = v.get("known_defect")
        if not name or not _broken(v):
            continue
        plot = v.get("plot") or plotted.get(_case_of(v))
        if name not in out or (out[name][1] is None and plot):
            out[name] = (v, plot)
    return out


def _defect_title(name: str, target: dict, v: dict) -> str:
    return f"{name}: {target['id']}: {_case_text(v['case'])}"


def _defects(targets: list[dict], draw: bool = True) -> list[dict]:
    """One section per known framework defect: what it is, its reference, the targets it hits and
    one representative failure (with its plot), instead of the same failure in every target."""
    sections: dict[str, dict] = {}
    for target in targets:
        facts = {d["name"]: d for d in target.get("known_defects", ())}
        for name, (v, plot) in _defect_examples(target).items():
            fact = facts.get(name, {})
            section = sections.setdefault(
                name,
                {
                    "name": name,
                    "slug": _slug("defect-" + name),
                    "summary": fact.get("summary", ""),
                    "reference": fact.get("reference", ""),
                    "package": fact.get("package", ""),
                    "last_seen": fact.get("last_seen", ""),
                    "targets": [],
                    "example": None,
                },
            )
            section["targets"].append({"id": target["id"], "slug": "row-" + _slug(target["id"])})
            if section["example"] is None or (section["example"]["svg"] is None and plot and draw):
                section["example"] = _failure(v, target, plot if draw else None, _defect_title(name, target, v))
    return list(sections.values())


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("initcheck", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def _shown_details(target: dict, draw: bool = True) -> dict | None:
    """The section of ``target`` (see ``_details``), None when there is nothing to show: a target
    that passes, or whose failures are all known defects (shown in their own sections)."""
    if target["result"] == "pass":
        return None
    details = _details(target, draw)
    if not (
        details["failures"]
        or details["broken_items"]
        or target.get("error")
        or (target["result"] == "partial" and details["gaps"])
        or target.get("expected_defect_missing")
    ):
        return None
    return details


def plot_requests(target: dict) -> list[tuple[dict, str]]:
    """The ``(plot, title)`` of each plot that ``render`` may show for ``target`` (drawn alone):
    its own failures' and one per known defect it shows."""
    details = _shown_details(target)
    own = [f["svg"] for f in details["failures"] if f["svg"]] if details else []
    defects = [(plot, _defect_title(name, target, v)) for name, (v, plot) in _defect_examples(target).items() if plot]
    return own + defects


def render(document: dict, jobs: int = 1, drawn: dict[str, str] | None = None) -> str:
    """The HTML text of ``document``; its plots are drawn on ``jobs`` processes, except those in
    ``drawn`` (SVGs by title, from ``plots.draw_all``)."""
    properties = document["properties"]
    ids = {target["id"] for target in document["targets"]}
    rows = []
    for target in document["targets"]:
        # a target sharing another's verdicts links to that one's plots instead of drawing them again
        original = target.get("verdicts_of") if target.get("verdicts_of") in ids else None
        rows.append(
            {
                **target,
                "slug": _slug(target["id"]),
                "original_slug": original and _slug(original),
                "cells": [_cell(target, p) for p in properties],
                "coverage_text": _coverage_text(target),
                "details": _shown_details(target, draw=not original),
                "signal": target.get("signal"),
                "signal_svg": _signal_svg(target),
                "fan_note": _fan_note(target),
            }
        )
    defects = _defects(
        [t for t in document["targets"] if t.get("verdicts_of") not in ids]
        + [t for t in document["targets"] if t.get("verdicts_of") in ids],
        draw=True,
    )
    failures = [f for row in rows if row["details"] for f in row["details"]["failures"] if f["svg"]]
    failures += [d["example"] for d in defects if d["example"]["svg"]]
    for failure, svg in zip(failures, plots.many_svgs([f["svg"] for f in failures], jobs, drawn)):
        failure["svg"] = svg
    if "effective_fan" in properties:  # the model's note on effective_fan, where its cell is hovered
        column = properties.index("effective_fan")
        for row in rows:
            if row["fan_note"]:
                row["cells"][column]["title"] = f"{row['fan_note']}\n{row['cells'][column]['title']}"
    defect_slugs = {d["name"]: d["slug"] for d in defects}
    for row in rows:
        row["defect_links"] = _defect_links(row, properties, defect_slugs)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        document=document,
        rows=rows,
        properties=properties,
        symbols=SYMBOLS,
        defects=defects,
        show_coverage=any(row["coverage_text"] for row in rows),  # coverage is a model audit's
    )


def _signal_svg(target: dict) -> str | None:
    """The plot of an audited model's signal profile, when it has one with layers."""
    signal = target.get("signal")
    if not signal or not signal.get("layers"):
        return None
    title = f"{target['id']}: signal at init"
    return plots.signal_svg(signal, title, plots.salt_of(title))


def _fan_note(target: dict) -> str | None:
    """Once per audited model: what ``effective_fan`` checked (the values whose variance-scaling
    law divides by a fan, against the fan their layer contracts over) and why it does not apply to
    the others (a law without a fan, a value no contraction uses), instead of one skip per value."""
    verdicts = [v for v in target["verdicts"] if v["property"] == "effective_fan"]
    if target.get("kind") != "model" or not verdicts:
        return None
    checked = [v for v in verdicts if v["status"] in ("pass", "fail")]
    failed = sum(1 for v in checked if v["status"] == "fail")
    no_fan = [v for v in verdicts if v["status"] == "skip" and v["message"].startswith("not applicable: ")]
    unused = [v for v in verdicts if v["status"] == "skip" and "feeds no contraction" in v["message"]]
    other = [v for v in verdicts if v["status"] == "skip" and v not in no_fan and v not in unused]
    parts = [
        f"effective_fan compared the fan of {len(checked)} value{'s' * (len(checked) != 1)} with the fan its layer "
        f"contracts over in the forward pass ({len(checked) - failed} agree{'s' * (len(checked) - failed == 1)}"
        f"{f', {failed} differ' if failed else ''})"
    ]
    if no_fan:
        kinds = sorted({v["message"].removeprefix("not applicable: ").split(" has no fan")[0] for v in no_fan})
        parts.append(
            f"{len(no_fan)} value{'s' * (len(no_fan) != 1)} have laws that divide by no fan ({', '.join(kinds[:4])}"
            f"{', ...' if len(kinds) > 4 else ''}): not applicable, not a gap"
        )
    if unused:
        parts.append(
            f"{len(unused)} value{'s' * (len(unused) != 1)} feed{'s' * (len(unused) == 1)} no contraction (biases, "
            "scales, embeddings looked up by gather): no fan to compare"
        )
    if other:
        parts.append(f"{len(other)} other value{'s' * (len(other) != 1)} could not be checked (see each verdict)")
    return "; ".join(parts) + "."


def _coverage_text(target: dict) -> str:
    coverage = target.get("coverage") or {}
    if not coverage or (coverage.get("values", 1) <= 1 and coverage.get("covered", 1) == coverage.get("values", 1)):
        return ""
    return f"{coverage['covered']}/{coverage['values']}"


def _defect_links(target: dict, properties: list[str], slugs: dict[str, str]) -> list[str | None]:
    """For each matrix cell: the section of the known defect it shows, if it shows one."""
    links = []
    for prop in properties:
        name = next(
            (
                v.get("known_defect")
                for v in target["verdicts"]
                if v["property"] == prop and v.get("known_defect") and _broken(v)
            ),
            None,
        )
        links.append(slugs.get(name) if name else None)
    return links
