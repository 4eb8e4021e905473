"""What a person sees in the HTML report (read in a real browser), and what the JSON says."""

from __future__ import annotations

import json

CELL_ORDER = ("error", "fail", "known", "pass", "skip")  # the worst present is shown


def expected_cell(verdicts) -> str:
    """The rule the report documents, written out here (not document.cell_status, which the matrix
    tests check): a failure or error a known defect explains shows as ``known``, else the worst
    status present shows."""
    shown = {"known" if v.get("known_defect") and v["status"] in ("fail", "error") else v["status"] for v in verdicts}
    return next(s for s in CELL_ORDER if s in shown)


def shown_matrix(page) -> dict:
    """The matrix as shown: {target: [result badge, {property: cell status}]}."""
    return page.evaluate("""() => {
        const out = {};
        for (const tr of document.querySelectorAll('#matrix tbody tr')) {
            const cells = {};
            for (const td of tr.querySelectorAll('td.cell'))
                cells[td.dataset.property] = td.className.replace('cell', '').trim();
            out[tr.querySelector('th.target').innerText.trim()] =
                [tr.querySelector('.badge').innerText.trim().toLowerCase(), cells];
        }
        return out;
    }""")


def json_matrix(json_path) -> dict:
    """The same matrix from the JSON report's verdicts."""
    data = json.loads(json_path.read_text())
    matrix = {}
    for target in data["targets"]:
        cells = {}
        for prop in data["properties"]:
            verdicts = [v for v in target["verdicts"] if v["property"] == prop]
            items = [i for i in target.get("items", ()) if i["property"] == prop]
            if verdicts:
                cells[prop] = expected_cell(verdicts)
            elif any(i["outcome"] in ("failed", "error") for i in items):
                cells[prop] = "error"
            else:
                cells[prop] = ""
        matrix[target["id"]] = [target["result"], cells]
    return matrix
