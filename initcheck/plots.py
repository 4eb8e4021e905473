"""Inline SVG plots of a sample against its law, drawn with Matplotlib from a verdict's ``plot`` data
(see ``properties.elementwise.plot_data``): a histogram with the law's expected counts, and a QQ plot."""

from __future__ import annotations

import io
import itertools
import re

_ids = itertools.count()


def sample_vs_law_svg(plot: dict, title: str) -> str:
    """One figure, two panels: the histogram of the sample over the law's expected counts per bin,
    and sample quantiles against the law's (on the diagonal when the sample follows the law)."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    variable = plot.get("variable", "x")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"initcheck-{next(_ids)}",
                                "font.size": 8, "axes.titlesize": 9}):
        figure = Figure(figsize=(7.2, 2.7), layout="constrained")
        histogram, qq = figure.subplots(1, 2)
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
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside HTML
    return _COORDINATES.sub(lambda m: m.group(1) + _DIGITS.sub(r"\1", m.group(2)) + '"', svg)


# Coordinates to a tenth of a point (finer than the eye; a third off the file). Text is left alone.
_COORDINATES = re.compile(r'( (?:d|x|y|width|height|transform)=")([^"]*)"')
_DIGITS = re.compile(r"(\d\.\d)\d+")
