"""Render the report model to HTML with Jinja2, and write files atomically.

Autoescape is forced on for every template whatever its file name (not
`select_autoescape`, which keys on extensions and would leave `*.j2` unescaped):
a label value such as `<script>alert(1)</script>` renders as text. Charts are the
only markup passed through unescaped, and matplotlib escapes the text inside them.
"""

from __future__ import annotations

import json
import sysconfig
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

import jinja2
from markupsafe import Markup

import monitor
from monitor.errors import MonitorError
from monitor.report.files import ReportWriteError, write_all_atomic, write_atomic
from monitor.report.model import ReportModel, report_json
from monitor.report.period import ReportPeriod
from monitor.report.present import FILTERS

TEMPLATE_NAMES = ("base.html.j2", "style.css.j2", "weekly.html.j2", "archive.html.j2")
# Where pyproject.toml's [tool.setuptools.data-files] installs reports/ (relative to the prefix).
INSTALLED_TEMPLATE_DIR = "share/monitor/reports"


class ReportTemplateError(MonitorError):
    """The report templates cannot be found or fail to render."""


def template_directory() -> Path:
    """reports/ in a source checkout, else the copy `pip install` put under <prefix>/share/monitor/reports."""
    checkout = Path(monitor.__file__).resolve().parent.parent / "reports"
    if (checkout / "weekly.html.j2").is_file():
        return checkout
    # The installed copy: wherever the wheel's data files went for this install
    # (a venv, --user, a --prefix), as recorded in the distribution's RECORD.
    for distribution in metadata.distributions(name="monitor"):
        for file in distribution.files or []:
            if file.as_posix().endswith(f"{INSTALLED_TEMPLATE_DIR}/weekly.html.j2"):
                return Path(file.locate()).resolve().parent
    prefix_copy = Path(sysconfig.get_path("data")) / INSTALLED_TEMPLATE_DIR
    if (prefix_copy / "weekly.html.j2").is_file():
        return prefix_copy
    raise ReportTemplateError(f"report templates not found in {checkout} nor in the installed package's "
                              f"{INSTALLED_TEMPLATE_DIR}")


def template_environment(directory: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment for report templates: autoescape on, undefined names are errors."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory or template_directory())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(FILTERS)
    environment.filters["period_title"] = period_title
    return environment


def period_title(period: ReportPeriod) -> str:
    """The period as people name it: "Week 47, 2026 (16–22 Nov)" for an ISO week, else a date range."""
    start, end = period.start, period.end
    whole_days = start.time() == end.time() == datetime.min.time()
    last_day = end - timedelta(days=1) if whole_days else end
    if whole_days:
        if start.year != last_day.year:
            days = f"{start:%-d %b %Y} \N{EN DASH} {last_day:%-d %b %Y}"
        elif start.month != last_day.month:
            days = f"{start:%-d %b} \N{EN DASH} {last_day:%-d %b}"
        elif start.date() != last_day.date():
            days = f"{start:%-d}\N{EN DASH}{last_day:%-d %b}"
        else:
            days = f"{start:%-d %b}"
    else:
        days = f"{start:%-d %b %Y %H:%M} \N{EN DASH} {end:%-d %b %Y %H:%M} UTC"
    year, week, weekday = start.isocalendar()
    if whole_days and weekday == 1 and end - start == timedelta(days=7):
        return f"Week {week}, {year} ({days})"
    if whole_days and start.year == last_day.year:
        return f"{days} {start.year}"
    return days


@dataclass(frozen=True)
class ReportCharts:
    """The report's charts as trusted SVG markup, keyed as the template looks them up."""

    burn_rate: dict[str, Markup]
    distribution: list[Markup]
    daily_cost: Markup | None


def draw_charts(model: ReportModel) -> ReportCharts:
    """Every chart the page shows, drawn from the model's numbers."""
    # matplotlib only where charts are drawn: the daemon imports this module but draws weekly.
    from monitor.report import charts

    burn_rate = {row.slo_id: Markup(charts.burn_rate_chart(row.burn_rate, f"{row.slo_id} burn rate",
                                                           row.burn_rate_window, row.page_burn_rate_threshold))
                 for row in model.slos.rows if row.burn_rate is not None and row.burn_rate.timestamps_s}
    distribution = [Markup(charts.distribution_chart(d, f"{d.model} {d.version} predictions"))
                    for d in model.drift.distributions]
    daily = Markup(charts.daily_cost_chart(model.cost.daily)) if model.cost.daily else None
    return ReportCharts(burn_rate, distribution, daily)


def render_report_html(model: ReportModel, environment: jinja2.Environment | None = None,
                       charts: ReportCharts | None = None) -> str:
    """The report page: one self-contained HTML file (inline CSS and SVG, no scripts).

    `charts` defaults to drawing them from the model (given: the benchmark's baseline).
    """
    environment = environment or template_environment()
    template = environment.get_template("weekly.html.j2")
    return template.render(report=model, charts=charts or draw_charts(model), version=monitor.__version__)


@dataclass(frozen=True)
class EmailReport:
    """The page for an email: charts as `cid:` images, their PNGs by Content-ID (without <>)."""

    html: str
    images: dict[str, bytes]


def render_report_email_html(model: ReportModel, environment: jinja2.Environment | None = None) -> EmailReport:
    """The same page with its charts drawn as PNG attachments (mail clients do not all draw SVG)."""
    from monitor.report import charts

    with charts.charts_as_png() as images:
        drawn = draw_charts(model)
    return EmailReport(render_report_html(model, environment, drawn), dict(images))


@dataclass(frozen=True)
class WrittenReport:
    html: Path
    json: Path
    archive_index: Path
    # What was written, for whoever announces it (the email renders its own copy of the page).
    model: ReportModel | None = field(default=None, compare=False, repr=False)


def write_report(model: ReportModel, out_dir: Path, environment: jinja2.Environment | None = None,
                 charts: ReportCharts | None = None) -> WrittenReport:
    """Write DIR/<period>/index.html and report.json, then refresh DIR/index.html (the archive)."""
    environment = environment or template_environment()
    report_dir = Path(out_dir) / model.period.key
    html = render_report_html(model, environment, charts)
    json_path, html_path = report_dir / "report.json", report_dir / "index.html"
    try:
        # Both or neither: the archive index is built from the report.json files, and
        # must not list a report whose page is missing.
        write_all_atomic({json_path: json.dumps(report_json(model), indent=1, sort_keys=False, allow_nan=False)
                          + "\n", html_path: html})
        index = write_archive_index(Path(out_dir), model.generated_at, environment)
    except OSError as exc:
        where = exc.filename or report_dir
        raise ReportWriteError(f"cannot write the report to {where}: {exc.strerror or exc}") from None
    return WrittenReport(html_path, json_path, index, model)


@dataclass(frozen=True)
class ArchiveEntry:
    key: str
    label: str
    start: str
    slos_met: int | None
    slos_at_risk: int | None
    slos_missed: int | None
    incidents: int | None
    rollbacks: int | None
    cost_per_1k: float | None
    cost_per_1k_wow_change: float | None


def archive_entries(out_dir: Path) -> list[ArchiveEntry]:
    """Every report under `out_dir` (one per <period>/report.json), newest period first."""
    entries = []
    for path in sorted(Path(out_dir).glob("*/report.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            period, headline = doc["period"], doc["headline"]
            entries.append(ArchiveEntry(
                key=path.parent.name, label=str(period.get("label", path.parent.name)), start=str(period["start"]),
                slos_met=headline.get("slos_met"), slos_at_risk=headline.get("slos_at_risk"),
                slos_missed=headline.get("slos_missed"), incidents=headline.get("incidents"),
                rollbacks=headline.get("rollbacks"), cost_per_1k=headline.get("cost_per_1k"),
                cost_per_1k_wow_change=headline.get("cost_per_1k_wow_change")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or a foreign file: the archive lists what it can read
    entries.sort(key=lambda e: (e.start, e.key), reverse=True)
    return entries


def write_archive_index(out_dir: Path, generated_at: datetime, environment: jinja2.Environment | None = None
                        ) -> Path:
    """Rewrite DIR/index.html listing every report in DIR."""
    environment = environment or template_environment()
    html = environment.get_template("archive.html.j2").render(
        entries=archive_entries(out_dir), generated_at=generated_at, version=monitor.__version__)
    path = Path(out_dir) / "index.html"
    write_atomic(path, html)
    return path
