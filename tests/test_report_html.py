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

    # Failure details start open (a failure is what the reader came for); the failed cell links to them.
    details = page.locator("details#t-wrong_scale")
    moments = details.locator(".failure", has_text="moments fail")
    assert moments.is_visible()
    details.locator("summary").click()  # closed by hand, the failed cell opens them again
    assert not moments.is_visible()
    cell.locator("a").click()
    page.wait_for_function("document.getElementById('t-wrong_scale').open")
    assert moments.is_visible()
    text = moments.inner_text()
    assert "variance" in text, text
    assert "p-value" in text, text
    assert "initcheck.check(init, Normal(std=0.05" in text, text
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


def test_coverage_is_a_column_only_where_a_row_has_coverage_with_a_dash_and_a_legend_for_the_others(
    report_files, defects_and_partial_report, open_report
):
    page = open_report(report_files[0])  # initializers only: no coverage anywhere, no empty column
    assert page.locator("#matrix thead th", has_text="coverage").count() == 0
    assert page.locator("#matrix td.coverage").count() == 0
    page = open_report(defects_and_partial_report[0])  # models too: the column, "—" where it does not apply
    assert page.locator("#matrix thead th", has_text="coverage").count() == 1
    catalog_row = page.locator("#matrix tr", has_text="jax.nn.initializers.normal()")
    assert catalog_row.locator("td.coverage").inner_text() == "—"
    assert "coverage applies to model audits" in catalog_row.locator("td.coverage").get_attribute("title")
    assert "it applies to model audits" in page.locator(".controls .legend").inner_text()


def _open_at(open_report, path, fragment):
    """A fresh page loading ``path`` with ``#fragment`` in its URL (a link someone shared)."""
    page = open_report(path)
    page.goto("about:blank")
    page.goto(f"{path.resolve().as_uri()}#{fragment}")
    page.wait_for_load_state("load")
    return page


def _in_view(page, selector) -> bool:
    return page.evaluate(
        """s => { const r = document.querySelector(s).getBoundingClientRect();
                  return r.top >= -1 && r.top < window.innerHeight && r.height > 0; }""",
        selector,
    )


def test_a_url_with_a_target_fragment_opens_that_target_or_shows_its_row(report_files, open_report):
    html_path = report_files[0]
    page = _open_at(open_report, html_path, "t-raises")
    assert page.errors == []
    assert page.evaluate("document.getElementById('t-raises').open")
    assert _in_view(page, "#t-raises") and page.evaluate("window.scrollY") > 0
    assert page.locator("details#t-raises .failure", has_text="contract").first.is_visible()
    # A target without a section of its own (it passes) is shown at its matrix row, highlighted.
    page = _open_at(open_report, html_path, "t-good")
    row = page.locator("tr#row-t-good")
    assert "targeted" in row.get_attribute("class") and row.is_visible()
    assert _in_view(page, "#row-t-good")


def test_failed_targets_start_expanded_and_the_others_collapsed(defects_and_partial_report, open_report):
    page = open_report(defects_and_partial_report[0])
    opened = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('details.target')].map(d => [d.id, d.open]))"
    )
    assert opened == {"t-partial_model": False, "t-wide_model": True}
    assert page.locator("details#t-wide_model .failure").first.is_visible()


TOKEN_MODEL = """
import flax.linen as nn
import jax.numpy as jnp


class Tagger(nn.Module):
    @nn.compact
    def __call__(self, ids):
        x = nn.Embed(50, 16)(ids)
        for _ in range(3):
            x = nn.Dense(16, kernel_init=nn.initializers.normal(0.02))(x)
        return nn.Dense(4)(x)
"""


@pytest.fixture(scope="module")
def token_model_report(tmp_path_factory):
    """An audited model fed token ids (integers) with normal(0.02) kernels (no fan), its signal profiled."""
    namespace: dict = {}
    exec(TOKEN_MODEL, namespace)
    ids = jax.numpy.arange(8, dtype=jax.numpy.int32).reshape(1, 8)
    report = initcheck.audit(
        namespace["Tagger"](), ids, rng=0, profile="quick", properties=["effective_fan", "derivation", "signal"]
    )
    row = document.target(
        "tagger",
        "model",
        verdicts=[v.to_dict() for v in report.verdicts],
        law=report.law,
        coverage=report.coverage.to_dict(),
        signal=report.signal.as_dict(),
    )
    folder = tmp_path_factory.mktemp("tagger")
    data = document.build("test_report_html", [row], profile="quick", seed=0, seconds=1.0)
    _output.write(data, json_path=folder / "r.json", html_path=folder / "r.html")
    return report, folder / "r.html", folder / "r.json"


def test_token_id_inputs_are_said_to_be_integers_not_a_nan_second_moment(token_model_report, open_report):
    report, html_path, json_path = token_model_report
    assert report.signal.inputs_text == "inputs: token ids (integers): not a second moment"
    assert "nan" not in report.signal.table().splitlines()[0]
    signal = json.loads(json_path.read_text())["targets"][0]["signal"]  # valid JSON: no NaN
    assert signal["inputs"] is None and signal["integer_inputs"] == 1
    page = open_report(html_path)
    header = page.locator("section.signal p.sub").first.inner_text()
    assert "token ids (integers): not a second moment" in header and "nan" not in header


def test_the_signal_plot_has_whole_layer_numbers_on_its_depth_axis(token_model_report, open_report):
    _, html_path, _ = token_model_report
    page = open_report(html_path)
    svg = page.locator("figure.signal-plot svg")
    assert svg.count() == 1
    labels = svg.evaluate("s => [...s.querySelectorAll('text')].map(t => t.textContent.trim())")
    ticks = [t for t in labels if t.replace(".", "", 1).replace("−", "").isdigit()]
    assert ticks and all(t.isdigit() for t in ticks), ticks  # 0 1 2 3, never 0.5 or 1.5
    assert {"0", "1", "2", "3"} <= set(ticks)  # four Dense layers (the embedding is a gather)


def test_effective_fan_says_once_per_model_what_it_checked_and_that_a_law_without_a_fan_does_not_apply(
    token_model_report, open_report
):
    report, html_path, _ = token_model_report
    fan = [v for v in report.verdicts if v.property == "effective_fan"]
    normal = [v for v in fan if "Normal(std=0.02" in v.message]
    assert len(normal) == 3 and all(v.status == "skip" for v in normal)
    assert all(v.message.startswith("not applicable: Normal(std=0.02, mean=0.0) has no fan") for v in normal)
    assert not any("does not divide by a fan" in v.message for v in fan)
    page = open_report(html_path)
    note = page.locator("li.fan-note[data-target=tagger]").inner_text()
    checked = sum(1 for v in fan if v.status in ("pass", "fail"))
    assert f"effective_fan compared the fan of {checked} value" in note
    assert "3 values have laws that divide by no fan (Normal(std=0.02, mean=0.0)): not applicable, not a gap" in note
    assert "5 values feed no contraction" in note and "could not be checked" not in note
    cell = page.locator("#matrix tr", has_text="tagger").locator("td[data-property=effective_fan]")
    assert "effective_fan compared the fan of" in cell.get_attribute("title")


BATCHNORM_MODEL = """
import equinox as eqx
import jax


class Net(eqx.Module):
    linear: eqx.nn.Linear
    norm: eqx.nn.BatchNorm

    def __init__(self, key):
        self.linear = eqx.nn.Linear(8, 8, key=key)
        self.norm = eqx.nn.BatchNorm(8, axis_name="batch", mode="batch")

    def __call__(self, x, state):
        return self.norm(self.linear(x), state)
"""


def test_a_value_no_property_applies_to_has_one_skip_naming_the_properties(tmp_path, open_report):
    """Equinox's BatchNorm counter is bookkeeping computed at init: one skip verdict for the value,
    naming the properties that do not apply (not the same reason once per property)."""
    import equinox as eqx

    namespace: dict = {}
    exec(BATCHNORM_MODEL, namespace)
    report = initcheck.audit(lambda key: eqx.nn.make_with_state(namespace["Net"])(key), rng=0, profile="quick")
    counter = [v for v in report.verdicts if v.case.path == "norm/batch_counter"]
    assert len(counter) == 1 and counter[0].status == "skip" and counter[0].property == "derivation"
    assert counter[0].message.startswith("norm/batch_counter: batch_counter: BatchNorm's bookkeeping")
    assert "computed at init, not an initial value (derivation, independence, bounds, distribution, moments" in (
        counter[0].message
    )
    row = document.target(
        "net", "model", verdicts=[v.to_dict() for v in report.verdicts], coverage=report.coverage.to_dict()
    )
    data = document.build("test_report_html", [row], profile="quick", seed=0, seconds=1.0)
    _output.write(data, json_path=tmp_path / "r.json", html_path=tmp_path / "r.html")
    page = open_report(tmp_path / "r.html")
    assert page.errors == [] and shown_matrix(page) == json_matrix(tmp_path / "r.json")
