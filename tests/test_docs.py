"""The documentation against the code.

- The API reference as built: every public entry point and every law has its heading and its
  parameter table, and no raw reStructuredText reaches the page. The docs are built once
  (`mkdocs build --strict`, as the house test does) and the built `api/index.html` is read with
  the standard library's HTML parser.
- Every ```python block of README.md and docs/*.md runs as written (Sybil), in order, one
  namespace per page; a block that cannot run says why in a `<!-- skip: next "reason" -->` comment.
- The figures and lists the pages state: the catalog's entry counts, the frameworks the pitches
  name, the screenshot's catalog (docs/report.json, written by docs/screenshot.py), the CI page's
  YAML and its cache folder.
"""

import hashlib
import html.parser
import importlib.util
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys
import unittest

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from initcheck import _xla, laws
from initcheck._catalog import catalog
from initcheck._frameworks import FRAMEWORKS, OPTIONAL, registry

ROOT = pathlib.Path(__file__).resolve().parent.parent

ENTRY_POINTS = [
    "initcheck.check",
    "initcheck.assert_conforms",
    "initcheck.expects",
    "initcheck.audit",
    "initcheck.Model",
    "initcheck.catalog",
]
LAW_CLASSES = [
    f"initcheck.laws.{name}"
    for name in laws.__all__
    if inspect.isclass(getattr(laws, name)) and issubclass(getattr(laws, name), laws.Law)
]
# The base class has no constructor parameters: its table is of the attributes every law sets.
SECTION = {"initcheck.laws.Law": "Attributes"}

RST = ("``", ":func:", ":class:", ":meth:", ":data:", ":attr:", ":mod:")


class _Page(html.parser.HTMLParser):
    """The page as a flat list of events: ("heading", id, level) for every heading with an id,
    ("section", title) for every mkdocstrings section title, ("table",) for every table, and
    ("text", data) for the text (code included, scripts and styles not)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.events: list[tuple] = []
        self._title = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag) and attrs.get("id"):
            self.events.append(("heading", attrs["id"], int(tag[1])))
        elif tag == "span" and "doc-section-title" in (attrs.get("class") or "").split():
            self._title = True
        elif tag == "table":
            self.events.append(("table",))
        elif tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "span" and self._title:
            self._title = False
        elif tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._title:
            self.events.append(("section", data.strip().rstrip(":")))
        elif not self._skip:
            self.events.append(("text", data))


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> list[tuple]:
    site = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    parser = _Page()
    parser.feed((site / "api" / "index.html").read_text(encoding="utf-8"))
    return parser.events


def _object(events: list[tuple], ident: str) -> list[tuple]:
    """The events of the object whose heading has id `ident`, up to the next heading."""
    starts = [i for i, e in enumerate(events) if e[0] == "heading" and e[1] == ident]
    assert starts, f"the API page has no heading for {ident} (no element id={ident!r})"
    assert len(starts) == 1, f"the API page has {len(starts)} headings for {ident}"
    rest = events[starts[0] + 1 :]
    end = next((i for i, e in enumerate(rest) if e[0] == "heading"), len(rest))
    return rest[:end]


def _has_table(events: list[tuple], title: str) -> bool:
    """A section titled `title` whose table follows it (before any other section title)."""
    for i, event in enumerate(events):
        if event == ("section", title):
            for after in events[i + 1 :]:
                if after[0] == "table":
                    return True
                if after[0] == "section":
                    return False
    return False


@pytest.mark.parametrize(
    "name",
    ENTRY_POINTS + LAW_CLASSES,
)
def test_object_has_heading_and_parameter_table(page, name):
    title = SECTION.get(name, "Parameters")
    events = _object(page, name)
    assert _has_table(events, title), (
        f"{name}: no '{title}:' table under its heading; give its docstring a Google-style "
        f"{'Args' if title == 'Parameters' else title}: section"
    )


def test_every_law_class_is_covered():
    # (a guard on the guard: the parametrization above is taken from laws.__all__)
    assert "initcheck.laws.Normal" in LAW_CLASSES and "initcheck.laws.Mixture" in LAW_CLASSES
    assert len(LAW_CLASSES) == len({*LAW_CLASSES})


def _sections(events: list[tuple]) -> dict[str, str]:
    """The page's text per h2 section (the modules of the API page), keyed by the h2's id."""
    out: dict[str, list[str]] = {}
    current = None
    for event in events:
        if event[0] == "heading" and event[2] == 2:
            current = event[1]
            out[current] = []
        elif event[0] == "text" and current is not None:
            out[current].append(event[1])
    return {k: "".join(v) for k, v in out.items()}


SECTIONS = [
    "initcheck_1",
    "initchecklaws",
    "initchecklock",
    "initcheckinits",
    "initcheckadapters",
    "initcheckderivation",
    "initchecklaw_syntax",
    "initcheckstrategies",
]


@pytest.mark.parametrize(
    "section",
    SECTIONS,
)
def test_no_raw_rst_in_page(page, section):
    texts = _sections(page)
    assert section in texts, f"the API page has no section #{section}; it has {sorted(texts)}"
    text = texts[section]
    found = [
        text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
        for marker in RST
        for m in re.finditer(re.escape(marker), text)
    ]
    assert not found, f"raw reStructuredText in #{section}: {found}"


# -- the examples run as written -------------------------------------------------------------------

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_FENCE = re.compile(r"^```python\n", flags=re.M)
SKIP = re.compile(r"<!--\s*skip:(.*?)-->", flags=re.S)
EXAMPLES = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])


def _name(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", [p for p in PAGES if PYTHON_FENCE.search(p.read_text())], ids=_name)
def test_the_python_examples_run_as_written(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    document = EXAMPLES.parse(path)
    blocks = [e for e in document if e.region.evaluator is not EXAMPLES.parsers[1].skipper]
    assert len(blocks) == len(PYTHON_FENCE.findall(path.read_text())), "a ```python block Sybil does not see"
    for example in document:  # in order: a block may use what an earlier block of its page defined
        try:
            example.evaluate()  # an error's traceback names the page and its line
        except unittest.SkipTest:
            continue


def test_every_skipped_example_says_why():
    skips = [(_name(p), m.group(1).strip()) for p in PAGES for m in SKIP.finditer(p.read_text())]
    assert skips, "the pages mark the blocks that cannot run (a user's own model or package)"
    bad = [(page, s) for page, s in skips if not re.fullmatch(r'next\s+"[^"]{10,}"', s)]
    assert not bad, f'write <!-- skip: next "why it cannot run" --> before each such block: {bad}'


# -- the figures and lists the pages state -----------------------------------------------------------

SHOWN = {"jax": "JAX", "flax": "Flax", "haiku": "Haiku", "equinox": "Equinox", "keras": "Keras", "initcheck": None}
NOT_COVERED = ("PyTorch", "TensorFlow", "Objax", "Trax", "MXNet")  # frameworks no pitch may claim
COUNT = re.compile(r"\b(\d[\d,]*) (?:catalog )?(?:entries|initializers|targets)\b")
WITHOUT_OPTIONAL = re.compile(r"without\s+(?:them|Equinox)|before\s+Equinox|JAX,\s+Flax,\s+Haiku\s+and\s+initcheck\b")


@pytest.fixture(scope="module")
def catalog_ids() -> dict[str, list[str]]:
    """The ids of the whole catalog (every framework, as `initcheck report` and `initcheck list`
    count them) and of the catalog without the optional frameworks."""
    whole = catalog(FRAMEWORKS)
    return {
        "whole": [e.id for e in whole],
        "without optional": [e.id for e in whole if e.framework not in OPTIONAL],
    }


def _units(text: str) -> list[str]:
    """Paragraphs, and each table row on its own."""
    units = []
    for paragraph in re.split(r"\n\s*\n", text):
        rows = [line for line in paragraph.splitlines() if line.startswith("|")]
        units += rows or [paragraph]
    return units


def _first_paragraph(path: pathlib.Path) -> str:
    return path.read_text().split("\n\n")[1]


def wrong_counts(pages: dict[str, str], whole: int, without_optional: int) -> list[tuple[str, str]]:
    """(page, phrase) for every "N entries/initializers/targets" said of the catalog (in a paragraph
    or table row that says "catalog") that is not the catalog's: ``whole``, or ``without_optional``
    where the same paragraph says so ("without Equinox", "JAX, Flax, Haiku and initcheck")."""
    wrong = []
    for page, text in pages.items():
        for unit in filter(lambda u: "catalog" in u.lower(), _units(text)):
            for m in COUNT.finditer(unit):
                n = int(m.group(1).replace(",", ""))
                if not (n == whole or (n == without_optional and WITHOUT_OPTIONAL.search(unit))):
                    wrong.append((page, m.group(0)))
    return wrong


def test_every_catalog_count_the_pages_state_is_the_catalogs(catalog_ids):
    whole, without_optional = len(catalog_ids["whole"]), len(catalog_ids["without optional"])
    pages = {_name(p): p.read_text() for p in [*PAGES, ROOT / "mkdocs.yml"]}
    wrong = wrong_counts(pages, whole, without_optional)
    assert not wrong, f"the catalog has {whole} entries ({without_optional} without Equinox and Keras): {wrong}"
    report = pages["README.md"].split("## The report", 1)[1].split("\n## ", 1)[0]
    for page, text in [("README.md, The report", report), ("docs/index.md", pages["docs/index.md"])]:
        assert f"{whole} entries" in text, f"{page} should say the catalog's {whole} entries"


def test_the_count_check_sees_a_stale_count():
    text = (
        "The built-in catalog of 108 initializers.\n\nThe catalog (150 entries, 108 without Equinox).\n\n"
        "| cache | 609 entries |\n| the catalog | 12 targets |\n| the catalog of JAX, Flax, Haiku and initcheck | 108 entries |"
    )
    assert wrong_counts({"page": text}, 150, 108) == [("page", "108 initializers"), ("page", "12 targets")]


def test_the_pitches_name_every_framework_and_no_other():
    assert set(SHOWN) == set(FRAMEWORKS), "a framework was added: say how the pages name it in SHOWN"
    site = re.search(r"^site_description: (.+)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M).group(1)
    package = re.search(r'^description = "(.+)"$', (ROOT / "pyproject.toml").read_text(), flags=re.M).group(1)
    readme, index = _first_paragraph(ROOT / "README.md"), _first_paragraph(ROOT / "docs" / "index.md")
    pitches = {"README.md": readme, "docs/index.md": index, "mkdocs.yml": site, "pyproject.toml": package}
    for where, pitch in pitches.items():
        missing = [name for name in SHOWN.values() if name and not re.search(rf"\b{name}\b", pitch)]
        claimed = [name for name in NOT_COVERED if name in pitch]
        assert not missing and not claimed, f"{where}'s pitch: missing {missing}, not covered {claimed}: {pitch!r}"
    kinds = {framework.name.rpartition(".")[2] for framework in registry.MODEL_FRAMEWORKS}  # linen, nnx, ...
    for where in ("README.md", "docs/index.md"):
        missing = [kind for kind in sorted(kinds) if kind not in pitches[where].lower()]
        assert not missing, f"{where}'s pitch does not name the model kinds {missing}"


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("docs_screenshot", ROOT / "docs" / "screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_screenshot_shows_todays_catalog(catalog_ids):
    ids = catalog_ids["whole"]
    sidecar = json.loads((ROOT / "docs" / "report.json").read_text())
    retake = "docs/report.png shows another catalog: retake it with .venv/bin/python docs/screenshot.py"
    assert sidecar["entries"] == len(ids), f"{retake} ({sidecar['entries']} entries; the catalog has {len(ids)})"
    assert sidecar["ids_sha256"] == _screenshot_module().ids_digest(ids), f"{retake} (the same count, other ids)"
    png = hashlib.sha256((ROOT / "docs" / "report.png").read_bytes()).hexdigest()
    assert sidecar["png_sha256"] == png, "docs/report.png was replaced without docs/screenshot.py"


def _yaml_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```$", path.read_text(), flags=re.S | re.M)


def test_the_yaml_on_the_pages_parses():
    yaml = pytest.importorskip("yaml")
    blocks = [block for page in PAGES for block in _yaml_blocks(page)]
    assert blocks
    for block in blocks:
        yaml.safe_load(block)  # a YAMLError names the line


def test_the_ci_workflow_caches_the_compile_cache_and_uploads_the_report(monkeypatch):
    yaml = pytest.importorskip("yaml")
    workflow, pre_commit = (yaml.safe_load(b) for b in _yaml_blocks(ROOT / "docs" / "ci.md"))
    (job,) = workflow["jobs"].values()
    steps = {step.get("uses", step.get("name")).partition("@")[0]: step for step in job["steps"]}
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # the suite's conftest sets its own
    cache = pathlib.Path(steps["actions/cache"]["with"]["path"]).expanduser()
    assert cache == _xla.default_cache_root(), "the workflow must cache the folder pytest --initcheck uses"
    (run,) = [s["run"] for s in job["steps"] if "pytest --initcheck" in s.get("run", "")]
    report = re.search(r"--initcheck-report=(\S+)", run).group(1)
    upload = steps["actions/upload-artifact"]
    assert upload["if"] == "always()" and report in upload["with"]["path"]
    (hook,) = pre_commit["repos"][0]["hooks"]
    assert pre_commit["repos"][0]["repo"] == "local" and hook["entry"].startswith("pytest --initcheck")
