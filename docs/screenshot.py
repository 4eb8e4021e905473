"""Take docs/report.png: the catalog's report (reports/conformance.html) as a person first sees it,
in Debian's headless Chromium. Run after `initcheck report --out reports/`:

    python docs/screenshot.py
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page.goto((ROOT / "reports" / "conformance.html").as_uri())
    page.screenshot(path=str(ROOT / "docs" / "report.png"))
    browser.close()
print("wrote docs/report.png")
