"""Take docs/report.png, the catalog's report (reports/conformance.html) as a person first sees it,
in Debian's headless Chromium, and write docs/report.json beside it: the number of catalog entries
the report shows, a SHA-256 of their ids and one of the picture, which tests/test_docs.py compares
with the catalog and the file.

One command, from the repository root (after a change to the catalog, or to the report's page):

    .venv/bin/python docs/screenshot.py

It runs `initcheck report --out reports/` first when reports/conformance.json is missing or does
not list today's catalog (every framework, in order); `--report` runs it in any case.
"""

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys

from playwright.sync_api import sync_playwright

from initcheck import catalog
from initcheck._frameworks import FRAMEWORKS

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
SIDECAR = ROOT / "docs" / "report.json"


def ids_digest(ids: list[str]) -> str:
    """The SHA-256 of the ids, one per line, in order (the test computes the same of the catalog)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def report_ids() -> list[str] | None:
    """The catalog entries reports/conformance.json lists, in order; None without one."""
    path = REPORTS / "conformance.json"
    if not path.exists():
        return None
    return [t["id"] for t in json.loads(path.read_text())["targets"] if t.get("kind", "catalog") == "catalog"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="run `initcheck report --out reports/` first")
    args = parser.parse_args()
    ids = [entry.id for entry in catalog(FRAMEWORKS)]  # every framework: install the equinox and keras extras
    if args.report or report_ids() != ids:
        print("reports/conformance.json is missing or stale: initcheck report --out reports/", flush=True)
        # its exit status says whether every entry conforms; the screenshot shows the report either way
        subprocess.run([sys.executable, "-m", "initcheck.cli", "report", "--out", str(REPORTS)], cwd=ROOT)
        if report_ids() != ids:
            sys.exit("initcheck report did not write today's catalog to reports/conformance.json")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
        page.goto((REPORTS / "conformance.html").as_uri())
        page.screenshot(path=str(ROOT / "docs" / "report.png"))
        browser.close()
    png = hashlib.sha256((ROOT / "docs" / "report.png").read_bytes()).hexdigest()
    sidecar = {"entries": len(ids), "ids_sha256": ids_digest(ids), "png_sha256": png}
    SIDECAR.write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote docs/report.png and docs/report.json ({len(ids)} catalog entries)")


if __name__ == "__main__":
    main()
