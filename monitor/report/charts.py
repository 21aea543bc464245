"""The report's charts as inline SVG, drawn with matplotlib's SVG backend.

Each function takes report data and returns an `<svg>` element as text, ready to
embed: no XML prolog, ids prefixed so several charts can share one HTML document,
a viewBox and no fixed size so it scales to a phone or a printed page. Text stays
text (`svg.fonttype: none`): smaller files, and matplotlib escapes it as XML.

For email (`charts_as_png`), the same functions return an `<img src="cid:…">` tag
instead and hand over the chart as a PNG: Gmail and Outlook do not draw inline SVG,
and an email must not fetch its images from anywhere.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import math
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # never a GUI backend, even if a display is around

import matplotlib.dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from monitor.report.model import DailyCost, PredictionDistribution, TimeSeries  # noqa: E402

_RC = {
    "svg.fonttype": "none",
    # Fixed hash salt: the same data draws the same bytes (reproducible reports).
    "svg.hashsalt": "monitor-report",
    "font.family": "sans-serif",
    # Sized for the rendered page: the 5in charts are drawn two to a row, ~410px wide
    # (a scale of ~1.1), so 9-10pt here reads as 10-11px there.
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "path.simplify": True,
}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_ID = re.compile(r' id="([^"]+)"')
_REFERENCE = re.compile(r'(?:url\(#|href="#)([^)"]+)')
_REFERENCE_TOKEN = re.compile(r'(url\(#|href="#)([^)"]+)')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_STYLE_DEFS = re.compile(r"\s*<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", re.S)
_WHITESPACE = re.compile(r"\s*\n\s*")
# The style matplotlib puts in every SVG; render.py's page CSS includes it once.
SVG_BASE_CSS = "svg.chart *{stroke-linejoin:round;stroke-linecap:butt}"


# Sizes for secondary text (legends, threshold labels, bucket ticks) and titles.
_SMALL = 9
_TITLE = 11


def _plain(text: str) -> str:
    """Text drawn as written: matplotlib reads `$...$` as maths (and fails on `v$1$`-like
    labels), so every dollar is escaped; backslashes and underscores are literal outside maths."""
    return str(text).replace("$", r"\$")


def _figure(width_in: float = 5.0, height_in: float = 2.4, right: float = 0.97) -> Figure:
    # Fixed margins rather than constrained layout: half the drawing time, and the
    # text is drawn by the browser's font anyway (svg.fonttype none). Margins are in
    # inches so tick labels and the axis label fit whatever the figure's width.
    figure = Figure(figsize=(width_in, height_in), dpi=72)
    figure.subplots_adjust(left=0.62 / width_in, right=right, top=1 - 0.36 / height_in, bottom=0.36 / height_in)
    return figure


def _styled(draw):
    """Run a chart function under the report's matplotlib style (read when artists are made)."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)
    wrapper.__doc__ = draw.__doc__
    wrapper.__name__ = draw.__name__
    return wrapper


# 2x the 72-dpi layout: sharp on high-density screens.
PNG_DPI = 144
# Inside `charts_as_png`: Content-ID -> PNG bytes of each chart drawn.
_PNG_SINK: contextvars.ContextVar[dict[str, bytes] | None] = contextvars.ContextVar("png_sink", default=None)


@contextmanager
def charts_as_png() -> Iterator[dict[str, bytes]]:
    """Within the block, chart functions return `<img src="cid:ID">` and put the PNG under ID in the dict."""
    images: dict[str, bytes] = {}
    token = _PNG_SINK.set(images)
    try:
        yield images
    finally:
        _PNG_SINK.reset(token)


def _to_png_img(figure: Figure, title: str, sink: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    data = buffer.getvalue()
    content_id = f"chart{len(sink) + 1}.{hashlib.sha1(data).hexdigest()[:12]}@monitor"
    sink[content_id] = data
    # The page's charts are ~1.3 CSS px per point (96/72); never wider than the mail's column.
    max_width_px = round(figure.get_figwidth() * 96)
    return (f'<img class="chart" src="cid:{content_id}" alt="{_attr(title)}" width="{max_width_px}" '
            f'style="display:block;width:100%;max-width:{max_width_px}px;height:auto">')


def _to_svg(figure: Figure, title: str) -> str:
    if (sink := _PNG_SINK.get()) is not None:
        return _to_png_img(figure, title, sink)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = _METADATA.sub("", svg)
    # The page's CSS carries matplotlib's one style rule once, not once per chart.
    svg = _STYLE_DEFS.sub("", svg)
    svg = _WHITESPACE.sub(" ", svg).replace("> <", "><")
    # Only clip paths and markers are referenced (url(#id), href="#id"); drop the other
    # ids, and prefix the rest with a digest of the chart so charts sharing one HTML
    # document never collide, and the same chart always gets the same bytes.
    referenced = set(_REFERENCE.findall(svg))
    svg = _ID.sub(lambda m: m.group(0) if m.group(1) in referenced else "", svg)
    prefix = "c" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    svg = _ID.sub(lambda m: f' id="{prefix}{m.group(1)}"', svg)
    svg = _REFERENCE_TOKEN.sub(lambda m: m.group(1) + prefix + m.group(2), svg)
    # Scale with the page: drop the fixed size in points, keep the viewBox.
    svg = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1', svg, count=1)
    svg = svg.replace("<svg", f'<svg role="img" class="chart" aria-label="{_attr(title)}"', 1)
    return svg.strip()


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _times(timestamps_s: Sequence[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t, tz=timezone.utc) for t in timestamps_s]


def _date_axis(axes) -> None:
    # A tick a day over a week (the report); over a month (the UI's period charts) every few days.
    low, high = axes.get_xlim()
    every = max(1, math.ceil((high - low) / 8))
    axes.xaxis.set_major_locator(mdates.DayLocator(interval=every, tz=timezone.utc))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%a %d", tz=timezone.utc))


@_styled
def burn_rate_chart(series: TimeSeries, title: str, window: str, page_threshold: float | None = None) -> str:
    """The burn rate through the period, with the page threshold and budget pace as dashed lines."""
    thresholds = [(1.0, "budget pace")]
    if page_threshold is not None:
        thresholds.append((page_threshold, f"page ({page_threshold:g}×)"))
    series_label = _plain(f"burn rate ({window})")
    # Two charts share a row of the page: 5in keeps their text near the page's size.
    figure = _figure(5.0, 2.4)
    axes = figure.add_subplot()
    values = [float("nan") if v is None else v for v in series.values]
    axes.plot(_times(series.timestamps_s), values, color=_COLORS[0], linewidth=1.2,
              label=series_label)
    top = max([v for v in values if v == v] + [1.0])
    for level, label in thresholds:
        if level <= top * 1.2:
            axes.axhline(level, linestyle="--", linewidth=0.8, color="#d62728" if level > 1 else "#7f7f7f")
            axes.annotate(label, (1.0, level), xycoords=("axes fraction", "data"), fontsize=_SMALL,
                          ha="right", va="bottom", color="#555555")
    axes.set_ylim(bottom=0)
    axes.set_ylabel("× budget")
    axes.set_title(_plain(title), loc="left", fontsize=_TITLE)
    _date_axis(axes)
    return _to_svg(figure, title)


@_styled
def distribution_chart(distribution: PredictionDistribution, title: str) -> str:
    """Prediction-score histogram shares, reference vs current window, side by side."""
    figure = _figure(5.0, 2.4)
    axes = figure.add_subplot()
    labels = [f"≤{b:g}" if b != float("inf") else "+Inf" for b in distribution.bucket_upper_bounds]
    positions = range(len(labels))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], distribution.reference_share, width,
             label="reference", color=_COLORS[0])
    axes.bar([p + width / 2 for p in positions], distribution.current_share, width,
             label="current", color=_COLORS[1])
    axes.set_xticks(list(positions), labels, fontsize=_SMALL)
    axes.set_ylabel("share")
    axes.legend(fontsize=_SMALL, frameon=False)
    axes.set_title(_plain(title), loc="left", fontsize=_TITLE)
    return _to_svg(figure, title)


@_styled
def daily_cost_chart(daily: Sequence[DailyCost], title: str = "Daily serving cost by model (USD)") -> str:
    """Stacked bars of each day's cost per model."""
    figure = _figure(7.0, 2.8, right=0.78)
    axes = figure.add_subplot()
    models = sorted({m for day in daily for m in day.cost_usd_by_model})
    days = [d.day.strftime("%a %d") for d in daily]
    bottoms = [0.0] * len(daily)
    for index, model in enumerate(models):
        heights = [d.cost_usd_by_model.get(model) or 0.0 for d in daily]
        axes.bar(days, heights, bottom=bottoms, label=_plain(model), color=_COLORS[index % len(_COLORS)])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axes.set_ylabel("USD")
    if models:
        axes.legend(fontsize=_SMALL, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_title(_plain(title), loc="left", fontsize=_TITLE)
    return _to_svg(figure, title)


@_styled
def error_budget_chart(series: TimeSeries, title: str) -> str:
    """The share of the error budget left through the period (1 = untouched, 0 = spent), with 0 dashed."""
    figure = _figure(5.0, 2.4)
    axes = figure.add_subplot()
    values = [float("nan") if v is None else v * 100.0 for v in series.values]
    axes.plot(_times(series.timestamps_s), values, color=_COLORS[2], linewidth=1.2, label="budget left")
    axes.axhline(0.0, linestyle="--", linewidth=0.8, color="#d62728")
    present = [v for v in values if v == v]
    axes.set_ylim(min(present + [0.0]) - 5, max(present + [100.0]) + 5)
    axes.set_ylabel("% budget left")
    axes.set_title(_plain(title), loc="left", fontsize=_TITLE)
    _date_axis(axes)
    return _to_svg(figure, title)
