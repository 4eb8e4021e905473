"""Writing a report document (``initcheck._document``: plain data) as JSON and as HTML.

A run whose document says what the JSON report already at its path says, apart from when it ran and
how long it took, leaves both files as they were, byte for byte: a clone whose ``reports/`` is
regenerated with no verdict changed has no modified files."""

from __future__ import annotations

import json
from pathlib import Path

from initcheck import _html as html


def write(
    document: dict, *, json_path=None, html_path=None, jobs: int = 1, drawn: dict[str, str] | None = None
) -> list[Path]:
    """Save ``document`` as JSON and/or HTML (parent folders are made; the HTML's plots are drawn
    on ``jobs`` processes, except those already ``drawn``, see ``html.render``); returns the paths
    written. When the JSON report at ``json_path`` differs from ``document`` only in what changes on
    every run (see ``steady``), both files keep its values of those."""
    written = []
    if json_path is not None:
        path = Path(json_path)
        document = _as_before(document, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_text(path, json.dumps(document, indent=1))
        written.append(path)
    if html_path is not None:
        path = Path(html_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_text(path, html.render(document, jobs, drawn))
        written.append(path)
    return written


def steady(document: dict) -> dict:
    """``document`` less what changes on every run of the same checks: when it was created, the
    seconds of the run and of each target, the xdist worker that ran each item."""
    return {
        **{k: v for k, v in document.items() if k not in ("created", "seconds", "targets")},
        "targets": [
            {
                **{k: v for k, v in target.items() if k not in ("seconds", "items")},
                **(
                    {"items": [{k: v for k, v in i.items() if k != "worker"} for i in target["items"]]}
                    if "items" in target
                    else {}
                ),
            }
            for target in document.get("targets", [])
        ],
    }


def _as_before(document: dict, json_path: Path) -> dict:
    """The JSON report at ``json_path`` when it says what ``document`` says apart from the volatile
    values (compared as JSON, so a NaN equals a NaN); else ``document``."""
    try:
        before = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return document
    if not isinstance(before, dict) or not isinstance(before.get("targets"), list):
        return document
    same = json.dumps(steady(before), sort_keys=True) == json.dumps(steady(document), sort_keys=True)
    return before if same else document


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless the file already holds exactly that (its time stamp stays)."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.write_text(text, encoding="utf-8")
