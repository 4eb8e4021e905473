"""Inline SVG plots of a sample against its law, drawn with Matplotlib from a verdict's ``plot`` data
(see ``properties.elementwise.plot_data``): a histogram with the law's expected counts, and a QQ plot."""

from __future__ import annotations

import collections
import concurrent.futures
import io
import multiprocessing
import re
import zlib
from collections.abc import Sequence

PARALLEL_FROM = 16  # plots: below this, starting worker processes costs more than it saves


def sample_vs_law_svg(plot: dict, title: str, salt: str = "0") -> str:
    """One figure, two panels: the histogram of the sample over the law's expected counts per bin,
    and sample quantiles against the law's (on the diagonal when the sample follows the law).
    ``salt`` makes the SVG's element ids unique among the plots of one page."""
    import matplotlib  # lazy: Matplotlib loads only to draw plots
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    variable = plot.get("variable", "x")
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"initcheck-{salt}", "font.size": 8, "axes.titlesize": 9}
    ):
        figure = Figure(figsize=(7.2, 2.7))  # a fixed layout: "constrained" doubles the drawing time
        histogram, qq = figure.subplots(
            1, 2, gridspec_kw={"left": 0.1, "right": 0.985, "bottom": 0.16, "top": 0.83, "wspace": 0.25}
        )
        edges = plot["edges"]
        histogram.stairs(plot["counts"], edges, fill=True, color="#9ab8d8", label="sample")
        histogram.stairs(plot["expected"], edges, color="#b3261e", linewidth=1.4, label="law (expected)")
        histogram.set_xlabel(variable)
        histogram.set_ylabel(f"count (n = {plot['n']:,})")
        histogram.set_title("histogram against the law")
        histogram.legend(frameon=False, loc="upper right")
        law_q, sample_q = plot["law_quantiles"], plot["sample_quantiles"]
        low, high = min(law_q + sample_q), max(law_q + sample_q)
        qq.plot([low, high], [low, high], color="#b3261e", linewidth=1, label="y = x")
        qq.plot(law_q, sample_q, "o", markersize=2.5, color="#1f4e79", label="quantiles 1%..99%")
        qq.set_xlabel(f"law quantile of {variable}")
        qq.set_ylabel(f"sample quantile of {variable}")
        qq.set_title("QQ plot")
        qq.legend(frameon=False, loc="upper left")
        figure.suptitle(title, fontsize=9)
        return _svg_text(figure)


def signal_svg(signal: dict, title: str, salt: str = "0") -> str:
    """The signal profile of an audited model (``initcheck._audit.Signal.as_dict()``) across depth,
    on a log scale: each layer's output second moment E[y^2] (forward) and the second moment E[g^2]
    of the loss's gradient at its output (backward). Flat lines near 1 keep the signal; a straight
    slope is a constant factor per layer (growth or decay)."""
    import matplotlib  # lazy: Matplotlib loads only to draw plots
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    layers = signal["layers"]
    depth = np.arange(len(layers))

    def positive(key):  # a log scale shows no zero: a dead layer's 0 is left out of the line
        values = np.array([layer[key] for layer in layers], dtype=float)
        return np.where(values > 0, values, np.nan)

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"initcheck-{salt}", "font.size": 8, "axes.titlesize": 9}
    ):
        figure = Figure(figsize=(7.2, 3.0))
        axes = figure.subplots(gridspec_kw={"left": 0.1, "right": 0.985, "bottom": 0.15, "top": 0.86})
        axes.set_yscale("log")
        axes.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--", label="1 (unit second moment)")
        axes.plot(
            depth, positive("forward"), "o-", markersize=3, color="#1f4e79", label="forward: E[y^2] of the output"
        )
        axes.plot(
            depth, positive("gradient"), "s-", markersize=3, color="#b3261e", label="backward: E[g^2] of its gradient"
        )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # a depth is a layer's index: no 0.5 ticks
        axes.set_xlabel("depth (layers in the order the forward pass runs them)")
        axes.set_ylabel("second moment (log scale)")
        axes.set_title("signal at init, layer by layer")
        axes.legend(frameon=False, loc="best")
        figure.suptitle(title, fontsize=9)
        return _svg_text(figure)


def _svg_text(figure) -> str:
    """The figure as SVG text to sit inside HTML, its coordinates rounded and its ids pruned."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML
    svg = _COORDINATES.sub(lambda m: m.group(1) + _DIGITS.sub(r"\1", m.group(2)) + '"', svg)
    # Matplotlib names every group (figure_1, axes_1, ...) alike in every figure; a page holds many
    # figures, so keep only the ids something refers to (clip paths and markers, salted by ``salt``).
    referenced = set(_REFERENCE.findall(svg))
    return _ID.sub(lambda m: m.group(0) if m.group(1) in referenced else "", svg)


# Coordinates to a tenth of a point (finer than the eye; a third off the file). Text is left alone.
_COORDINATES = re.compile(r'( (?:d|x|y|width|height|transform)=")([^"]*)"')
_DIGITS = re.compile(r"(\d\.\d)\d+")
_REFERENCE = re.compile(r"#([A-Za-z_][\w.-]*)")
_ID = re.compile(r' id="([^"]+)"')


def _draw(args: tuple[dict, str, str]) -> str:
    return sample_vs_law_svg(*args)


def salt_of(title: str) -> str:
    """The salt of a plot's element ids, from its title (unique on a page): the same plot gets the
    same SVG wherever it is drawn."""
    return f"{zlib.crc32(title.encode()):08x}"


def draw_all(requests: Sequence[tuple[dict, str]]) -> dict[str, str]:
    """{title: SVG} for each ``(plot, title)`` request, drawn here (e.g. by a check worker, for
    ``many_svgs(..., drawn=...)`` later)."""
    return {title: sample_vs_law_svg(plot, title, salt_of(title)) for plot, title in requests}


def many_svgs(requests: Sequence[tuple[dict, str]], jobs: int = 1, drawn: dict[str, str] | None = None) -> list[str]:
    """``sample_vs_law_svg(plot, title)`` for each request, salted by its title, on ``jobs``
    processes when there are many (0.1-0.2 s each). ``drawn`` holds SVGs drawn before, by title
    (``draw_all``); a title that repeats on the page gets its own salt and is drawn here."""
    drawn = drawn or {}
    seen: collections.Counter = collections.Counter()
    work, ready = [], {}
    for i, (plot, title) in enumerate(requests):
        seen[title] += 1
        if seen[title] == 1 and title in drawn:
            ready[i] = drawn[title]
        else:
            work.append((i, (plot, title, salt_of(title) + ("" if seen[title] == 1 else f"-{seen[title]}"))))
    if jobs <= 1 or len(work) < PARALLEL_FROM:
        svgs = [_draw(w) for _, w in work]
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            svgs = list(pool.map(_draw, [w for _, w in work], chunksize=4))
    ready.update((i, svg) for (i, _), svg in zip(work, svgs))
    return [ready[i] for i in range(len(requests))]
