"""The HTML conformance report: one self-contained file (inline CSS, JS and SVG; no network),
rendered with Jinja2 from a conformance document (``initcheck.document``)."""

from __future__ import annotations

import re

import jinja2

from initcheck import document as doc
from initcheck import plots

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
    return f"{where}shape=({', '.join(map(str, case['shape']))}{',' if len(case['shape']) == 1 else ''}) dtype={case['dtype']}"


def _case_of(verdict: dict) -> tuple:
    case = verdict["case"]
    return tuple(case["shape"]), case["dtype"], case.get("path", "")


def _details(target: dict, draw: bool = True) -> dict:
    """What the failure section of one target shows: its failed verdicts, each with the plot of its
    case's sample (its own, or the ``distribution`` verdict's on the same sample) unless not ``draw``."""
    plotted: dict[tuple, dict] = {}
    for v in target["verdicts"]:
        if v.get("plot"):
            plotted.setdefault(_case_of(v), v["plot"])
    failures, drawn = [], set()
    for v in target["verdicts"]:
        if v["status"] not in ("fail", "error"):
            continue
        case = _case_of(v)
        plot = v.get("plot") or plotted.get(case)
        svg, where = None, case[1:]  # (dtype, parameter path)
        if draw and plot and where not in drawn and len(drawn) < MAX_PLOTS_PER_TARGET:
            drawn.add(where)
            svg = (plot, f"{target['id']}: {_case_text(v['case'])}")  # drawn by ``render``, all at once
        failures.append({**v, "case_text": _case_text(v["case"]), "statistic_text": _number(v["statistic"]),
                         "pvalue_text": _number(v["pvalue"]), "svg": svg,
                         "cell": "known" if v.get("known_defect") else v["status"]})
    broken_items = [i for i in target.get("items", ()) if i["outcome"] in ("failed", "error") and i.get("message")
                    and not any(v["property"] == i["property"] for v in target["verdicts"])]
    return {"failures": failures, "broken_items": broken_items}


_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("initcheck", "templates"),
                                  autoescape=jinja2.select_autoescape(default=True),
                                  trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _shown_details(target: dict, draw: bool = True) -> dict | None:
    """The failure section of ``target`` (see ``_details``), None for a target that passes."""
    return _details(target, draw) if target["result"] != "pass" else None


def plot_requests(target: dict) -> list[tuple[dict, str]]:
    """The ``(plot, title)`` of each plot that ``render`` shows for ``target`` (drawn alone)."""
    details = _shown_details(target)
    return [f["svg"] for f in details["failures"] if f["svg"]] if details else []


def render(document: dict, jobs: int = 1, drawn: dict[str, str] | None = None) -> str:
    """The HTML text of ``document``; its plots are drawn on ``jobs`` processes, except those in
    ``drawn`` (SVGs by title, from ``plots.draw_all``)."""
    properties = document["properties"]
    ids = {target["id"] for target in document["targets"]}
    rows = []
    for target in document["targets"]:
        # a target sharing another's verdicts links to that one's plots instead of drawing them again
        original = target.get("verdicts_of") if target.get("verdicts_of") in ids else None
        rows.append({**target, "slug": _slug(target["id"]), "original_slug": original and _slug(original),
                     "cells": [_cell(target, p) for p in properties],
                     "details": _shown_details(target, draw=not original)})
    failures = [f for row in rows if row["details"] for f in row["details"]["failures"] if f["svg"]]
    for failure, svg in zip(failures, plots.many_svgs([f["svg"] for f in failures], jobs, drawn)):
        failure["svg"] = svg
    return _ENVIRONMENT.get_template("report.html.j2").render(
        document=document, rows=rows, properties=properties, symbols=SYMBOLS)
