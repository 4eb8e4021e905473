"""The API reference as built: every public entry point and every law has its heading and its
parameter table, and no raw reStructuredText reaches the page.

The docs are built once (`mkdocs build --strict`, as the house test does) and the built
`api/index.html` is read with the standard library's HTML parser.
"""

import html.parser
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

from initcheck import laws

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
