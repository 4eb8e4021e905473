"""The HTML report, rendered from real checks and opened in headless Chromium: what a person sees.

The checks use the quick profile (alpha 1e-6 per statistical verdict, about 8 statistical verdicts
for the correct initializer, so a false alarm on it has probability < 1e-5); the wrong one is 2x off
in scale, far beyond the smallest effect the quick profile detects (about 3%)."""

from __future__ import annotations

import json

import jax
import pytest

import initcheck
from initcheck import _document as document
from initcheck import _output, laws
from tests.report_view import json_matrix, shown_matrix


def _wrong_scale(key, shape, dtype=jax.numpy.float32):
    return 0.1 * jax.random.normal(key, shape, dtype)


def _raises(key, shape, dtype=jax.numpy.float32):
    raise RuntimeError("cuda out of memory (simulated)")


@pytest.fixture(scope="module")
def report_files(tmp_path_factory):
    law = laws.Normal(0.05)
    rows = []
    for name, init in [("good", jax.nn.initializers.normal(0.05)), ("wrong_scale", _wrong_scale), ("raises", _raises)]:
        report = initcheck.check(init, law, shapes=[(64, 64)], profile="quick")
        rows.append(
            document.target(
                name,
                "initializer",
                verdicts=[v.to_dict() for v in report.verdicts],
                law=report.law,
                seconds=report.seconds,
            )
        )
    data = document.build("test_report_html", rows, profile="quick", seed=0, seconds=1.0)
    folder = tmp_path_factory.mktemp("report")
    _output.write(data, json_path=folder / "r.json", html_path=folder / "r.html")
    return folder / "r.html", folder / "r.json"


def test_matrix_header_and_failure_details_in_a_real_browser(report_files, open_report, tmp_path):
    html_path, json_path = report_files
    page = open_report(html_path)
    assert page.errors == [] and page.requests == []  # self-contained: nothing fetched, no script errors
    header = page.locator("header").inner_text()
    assert f"jax\t{jax.__version__}" in header
    device = jax.devices()[0]
    assert f"device\t{device.platform} ({device.device_kind})" in header  # the backend the report ran on
    assert "quick" in header and "seed 0" in header
    assert page.locator("#counts").inner_text().split() == [
        "1",
        "pass",
        "0",
        "partial",
        "0",
        "known",
        "defects",
        "only",
        "2",
        "fail",
        "0",
        "error",
    ]
    shown = shown_matrix(page)
    assert shown == json_matrix(json_path)
    assert shown["good"][0] == "pass" and set(shown["good"][1].values()) <= {"pass", "skip"}
    assert shown["wrong_scale"][1]["moments"] == "fail" and shown["raises"][1]["contract"] == "fail"
    cell = page.locator("#matrix tr", has_text="wrong_scale").locator("td[data-property=moments]")
    assert "smallest p-value" in cell.get_attribute("title")

    # Failure details start closed; clicking the failed cell opens them with the message and plots.
    details = page.locator("details#t-wrong_scale")
    moments = details.locator(".failure", has_text="moments fail")
    assert not moments.is_visible()
    cell.locator("a").click()
    page.wait_for_function("document.getElementById('t-wrong_scale').open")
    assert moments.is_visible()
    text = moments.inner_text()
    assert "variance" in text and "p-value" in text and "initcheck.check(init, Normal(std=0.05" in text
    plot = details.locator("figure.plot svg").first
    box = plot.bounding_box()
    assert box["width"] > 400 and box["height"] > 100
    labels = plot.evaluate("svg => svg.textContent")
    assert "QQ plot" in labels and "histogram against the law" in labels
    assert plot.locator("use").count() >= 49  # the QQ plot's quantile markers (and tick marks)
    assert page.locator("details#t-good").count() == 0  # passing targets have no failure section
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    # The filter hides what passes.
    page.locator("#only-problems").check()
    assert not page.locator("#matrix tr", has_text="good").is_visible()
    assert page.locator("#matrix tr", has_text="raises").is_visible()


def test_the_json_is_the_same_data_with_a_version(report_files):
    html_path, json_path = report_files
    data = json.loads(json_path.read_text())
    assert data["schema_version"] == document.SCHEMA_VERSION
    assert set(data["environment"]) >= {
        "initcheck",
        "jax",
        "jaxlib",
        "flax",
        "haiku",
        "backend",
        "device",
        "x64",
        "threefry_partitionable",
        "default_prng_impl",
    }
    assert [t["result"] for t in data["targets"]] == ["pass", "fail", "fail"]
    html = html_path.read_text()
    for target in data["targets"]:
        assert target["id"] in html
        for v in target["verdicts"]:
            if v["status"] == "fail":
                assert v["message"].split(";")[0].replace("'", "&#39;").replace('"', "&#34;") in html


def test_plots_drawn_on_two_processes_equal_those_drawn_on_one_and_their_ids_are_unique(report_files):
    import re

    from initcheck import _plots as plots

    data = json.loads(report_files[1].read_text())
    plot = next(v["plot"] for t in data["targets"] for v in t["verdicts"] if v.get("plot"))
    requests = [(plot, f"case {i}") for i in range(plots.PARALLEL_FROM)]
    serial, parallel = plots.many_svgs(requests, jobs=1), plots.many_svgs(requests, jobs=2)
    assert parallel == serial and all(f"case {i}" in svg for i, svg in enumerate(serial))
    ids = [i for svg in serial for i in re.findall(r' id="([^"]+)"', svg)]
    assert ids and len(ids) == len(set(ids)), "one page holds every plot: ids must not collide"
    for svg in serial:  # every reference (clip paths, markers) still finds its element
        assert set(re.findall(r'(?:url\(#|href="#)([^)"]+)', svg)) <= set(re.findall(r' id="([^"]+)"', svg))


def test_plots_drawn_ahead_by_the_check_workers_give_the_same_page_as_plots_drawn_at_the_end(report_files):
    from initcheck import _html as html
    from initcheck import _plots as plots

    data = json.loads(report_files[1].read_text())
    requests = [r for t in data["targets"] for r in html.plot_requests(t)]
    assert requests, "the fixture's report has failures with plots"
    drawn = plots.draw_all(requests[:1])  # one drawn ahead, the rest at the end
    assert html.render(data, drawn=drawn) == html.render(data)
    stale = {title: "<svg>not this one</svg>" for _, title in requests}
    assert "not this one" in html.render(data, drawn=stale), "the page uses what was drawn ahead"


def test_a_title_that_repeats_on_a_page_gets_a_plot_of_its_own_with_its_own_ids(report_files):
    import re

    from initcheck import _plots as plots

    data = json.loads(report_files[1].read_text())
    plot = next(v["plot"] for t in data["targets"] for v in t["verdicts"] if v.get("plot"))
    first, second = plots.many_svgs(
        [(plot, "same title"), (plot, "same title")], drawn=plots.draw_all([(plot, "same title")])
    )
    ids = [set(re.findall(r' id="([^"]+)"', svg)) for svg in (first, second)]
    assert ids[0] and not ids[0] & ids[1]


def test_a_target_sharing_verdicts_links_to_the_plots_of_the_original_instead_of_drawing_them(
    report_files, open_report, tmp_path
):
    data = json.loads(report_files[1].read_text())
    original = next(t for t in data["targets"] if t["id"] == "wrong_scale")
    data["targets"].append({**original, "id": "wrong_scale_alias", "verdicts_of": "wrong_scale"})
    html_path = tmp_path / "r.html"
    _output.write(data, html_path=html_path)
    page = open_report(html_path)
    assert page.errors == []
    alias, drawn = page.locator("details#t-wrong_scale_alias"), page.locator("details#t-wrong_scale")
    assert alias.locator("figure.plot").count() == 0 and drawn.locator("figure.plot").count() == 1
    page.locator("#matrix tr", has_text="wrong_scale_alias").locator("td[data-property=moments] a").click()
    page.wait_for_function("document.getElementById('t-wrong_scale_alias').open")
    assert alias.locator(".failure", has_text="moments fail").is_visible()  # the verdicts are all there
    link = alias.locator("a[href='#t-wrong_scale']")
    assert "plotted there" in alias.inner_text()
    link.click()
    page.wait_for_function("document.getElementById('t-wrong_scale').open")
    plot = drawn.locator("figure.plot svg").first
    assert plot.is_visible() and plot.bounding_box()["width"] > 400


@pytest.fixture(scope="module")
def defects_and_partial_report(tmp_path_factory):
    """Two catalog entries that show the same known defect (JAX's coarse bfloat16 sampling), a model
    whose kernel law is unknown (PARTIAL) and one whose kernel is twice too wide (fail)."""
    import flax.linen as nn

    from initcheck._catalog import catalog, check_entry

    entries = {e.id: e for e in catalog(["jax"])}
    rows = []
    for name in ("jax.nn.initializers.normal()", "jax.nn.initializers.uniform()"):
        triage = check_entry(entries[name], profile="quick", seed=0)
        rows.append(document.catalog_target(entries[name], triage))

    def unknown(key, shape, dtype=jax.numpy.float32):
        return 0.05 * jax.random.normal(key, shape, dtype)

    for name, init in (
        ("partial_model", unknown),
        (
            "wide_model",
            initcheck.expects(laws.Normal(0.05))(lambda k, s, d=jax.numpy.float32: 0.1 * jax.random.normal(k, s, d)),
        ),
    ):
        report = initcheck.audit(nn.Dense(64, kernel_init=init), jax.numpy.ones((1, 64)), rng=0, profile="quick")
        rows.append(
            document.target(
                name,
                "model",
                verdicts=[v.to_dict() for v in report.verdicts],
                law=report.law,
                coverage=report.coverage.to_dict(),
            )
        )
    data = document.build("test_report_html", rows, profile="quick", seed=0, seconds=1.0)
    folder = tmp_path_factory.mktemp("defects")
    _output.write(data, json_path=folder / "r.json", html_path=folder / "r.html")
    return folder / "r.html", data


def test_known_defects_are_one_section_each_and_partial_models_say_what_is_not_covered(
    defects_and_partial_report, open_report, tmp_path
):
    html_path, data = defects_and_partial_report
    assert [t["result"] for t in data["targets"]] == ["known", "known", "partial", "fail"]
    page = open_report(html_path)
    assert page.errors == [] and page.requests == []
    assert page.locator("#counts").inner_text().split()[:4] == ["0", "pass", "1", "partial"]
    sections = page.locator("section.defect")
    assert sections.count() == 1  # one section for the defect, not one per entry
    section = sections.first
    text = section.inner_text()
    assert "jax-low-precision-sampling" in text and "Hits 2 targets" in text
    assert "jax.nn.initializers.normal()" in text and "jax.nn.initializers.uniform()" in text
    assert section.locator("figure.plot svg").count() == 1  # one representative plot
    assert section.locator("a[href='#row-t-jax.nn.initializers.uniform']").count() == 1  # its matrix row
    assert page.locator("details#t-jax.nn.initializers.normal").count() == 0  # no section of its own
    known_cell = page.locator("#matrix tr", has_text="jax.nn.initializers.normal()").locator(
        "td[data-property=precision] a"
    )
    assert known_cell.get_attribute("href") == "#t-defect-jax-low-precision-sampling"

    row = page.locator("#matrix tr", has_text="partial_model")
    assert row.locator(".badge").inner_text().lower() == "partial" and row.locator("td.coverage").inner_text() == "1/2"
    details = page.locator("details#t-partial_model")
    details.locator("summary").click()
    gaps = details.inner_text()
    assert "PARTIAL: 1 of 2 values" in gaps and "mark it with @initcheck.expects(law)" in gaps
    assert page.locator("#matrix tr", has_text="wide_model").locator(".badge").inner_text().lower() == "fail"
    page.screenshot(path=str(tmp_path / "defects.png"), full_page=True)
