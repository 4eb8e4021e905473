"""Hypothesis profiles for the suite: derandomized (same examples every run), no deadline (the first
JAX compile of a shape exceeds any sensible deadline), no example database.

XLA compiles with the command line's fast-compile settings here (see initcheck/_xla.py): the suite's
cost is compiles; the verdicts do not depend on them. The compile cache of the command lines and
pytest sessions the suite starts is a temporary folder, never the user's. Under xdist each worker runs on its own CPUs,
as ``initcheck report``'s workers do (``_runner.cpu_shares``): unpinned JAX processes spin on every
core and slow each other down."""

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

from initcheck import _runner, _xla

_xla.prefer_fast_compiles()
# The command line and the plugin keep compiled code in the user's cache folder by default; the
# suite's runs (and their subprocesses) keep theirs in a folder of this process instead.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="initcheck-tests-cache-")
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    _shares = _runner.cpu_shares(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), _runner.available_cpus())
    _runner.run_on(_shares[int(os.environ["PYTEST_XDIST_WORKER"][2:]) % len(_shares)])  # before JAX's backend starts

settings.register_profile(
    "default",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
pytest_plugins = ["pytester"]


CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run and the README's test command install it


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright. Missing Chromium skips locally and fails under CI."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install chromium (the README's test command does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_report(browser):
    """``open_report(path)``: a page showing the HTML report at ``path``, offline. Every request that
    is not the file itself is blocked and recorded in ``page.requests``; console errors and page
    errors in ``page.errors``."""
    pages = []

    def open_(path):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.errors, page.requests = [], []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        url = path.resolve().as_uri()

        def route(r):
            if r.request.url == url:
                return r.continue_()
            page.requests.append(r.request.url)
            return r.abort()

        page.route("**/*", route)
        page.goto(url)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
