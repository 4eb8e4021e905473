"""Writing a report document (``initcheck._document``: plain data) as JSON and as HTML."""

from __future__ import annotations

import json
from pathlib import Path

from initcheck import _html as html


def write(
    document: dict, *, json_path=None, html_path=None, jobs: int = 1, drawn: dict[str, str] | None = None
) -> list[Path]:
    """Save ``document`` as JSON and/or HTML (parent folders are made; the HTML's plots are drawn
    on ``jobs`` processes, except those already ``drawn``, see ``html.render``); returns the paths
    written."""
    written = []
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1))
        written.append(path)
    if html_path is not None:
        path = Path(html_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html.render(document, jobs, drawn), encoding="utf-8")
        written.append(path)
    return written
