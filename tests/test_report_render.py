"""Rendering the report: escaping, self-containment, HTML5 validity, atomic writes, the archive.

Uses a generated report model (monitor.report.synthetic), so these run without
Prometheus; the simulated week's report is checked in test_report_simulated_week.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.report import charts
from monitor.report.headline import build_headline
from monitor.report.model import (ChangeSection, CostSection, DriftSection, FreshnessSection, IncidentSection,
                                  SloSection, report_json)
from monitor.report.period import iso_week_period
from monitor.report.render import (TEMPLATE_NAMES, archive_entries, render_report_html, template_directory,
                                   template_environment, write_atomic, write_report)
from monitor.report.synthetic import synthetic_report
from test_report_checks import external_references, html5_errors

HOSTILE = "<script>alert(1)</script>"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hostile_report():
    return synthetic_report(iso_week_period("2026-W47"), services=6, models=3, hostile_label=HOSTILE)


@pytest.fixture(scope="module")
def hostile_html(hostile_report) -> str:
    return render_report_html(hostile_report)


def test_a_label_value_with_a_script_tag_renders_as_text(hostile_html):
    assert "<script" not in hostile_html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html
    # In tables (service, model, pipeline names) and in the charts' SVG text and titles.
    assert hostile_html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_autoescape_is_on_for_every_template_whatever_its_file_name(tmp_path):
    (tmp_path / "plain.txt").write_text("{{ value }}")
    (tmp_path / "page.j2").write_text("{{ value }}")
    environment = template_environment(tmp_path)
    for name in ("plain.txt", "page.j2"):
        assert environment.get_template(name).render(value=HOSTILE) == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_the_page_passes_an_html5_parser_without_errors(hostile_html):
    assert html5_errors(hostile_html) == []


def test_the_page_loads_nothing_from_the_network(hostile_html):
    assert external_references(hostile_html) == []
    assert "<style>" in hostile_html  # inline CSS


def test_every_chart_is_inline_svg_that_scales_with_the_page(hostile_report, hostile_html):
    svgs = re.findall(r"<svg\b[^>]*>", hostile_html)
    expected = (sum(r.burn_rate is not None for r in hostile_report.slos.rows)
                + len(hostile_report.drift.distributions) + 1)
    assert len(svgs) == expected
    assert all('viewBox="' in s and " width=" not in s for s in svgs)
    ids = re.findall(r' id="([^"]+)"', hostile_html)
    assert len(ids) == len(set(ids)), "chart ids collide between charts"


def test_a_chart_is_drawn_from_its_data():
    from monitor.report.model import TimeSeries
    start = iso_week_period("2026-W47").start.timestamp()
    flat = charts.burn_rate_chart(TimeSeries((start + 3600, start + 7200), (0.5, 0.5)), "flat", "1h")
    spike = charts.burn_rate_chart(TimeSeries((start + 3600, start + 7200), (0.5, 30.0)), "spike", "1h", 14.4)
    assert flat != spike and "page (14.4×)" in spike and "page" not in flat.replace("budget pace", "")


def test_report_json_holds_the_same_numbers_as_the_page(tmp_path, hostile_report):
    written = write_report(hostile_report, tmp_path)
    doc = json.loads(written.json.read_text())
    assert doc == json.loads(json.dumps(report_json(hostile_report)))
    assert doc["period"]["key"] == "2026-W47" and doc["period"]["start"] == "2026-11-16T00:00:00Z"
    page = written.html.read_text()
    for row in doc["cost"]["rows"]:
        assert f"${row['cost_per_1k']:,.4f}" in page
    assert doc["headline"]["slos_missed"] == sum(r["status"] == "missed" for r in doc["slos"]["rows"])


def test_a_crash_while_writing_leaves_the_previous_report_whole(tmp_path):
    target = tmp_path / "index.html"
    write_atomic(target, "old report")


    with pytest.raises(TypeError):
        write_atomic(target, None)  # type: ignore[arg-type]  # fails mid-write
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"], "a temp file was left behind"


def test_the_archive_lists_every_report_newest_first(tmp_path):
    for week in ("2026-W45", "2026-W47", "2026-W46"):
        write_report(synthetic_report(iso_week_period(week), services=2, models=1), tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.json").write_text("not json")
    assert [e.key for e in archive_entries(tmp_path)] == ["2026-W47", "2026-W46", "2026-W45"]
    index = (tmp_path / "index.html").read_text()
    assert index.index("2026-W47/index.html") < index.index("2026-W46/index.html") < index.index("2026-W45")
    assert html5_errors(index) == [] and external_references(index) == []


def test_rendering_the_same_model_twice_gives_the_same_bytes(hostile_report):
    assert render_report_html(hostile_report) == render_report_html(hostile_report)


def test_templates_ship_with_the_package():
    # pyproject installs reports/*.j2 as data files; every template must match that glob.
    data_files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {Path(p).name for pattern in data_files["share/monitor/reports"] for p in REPO.glob(pattern)}
    on_disk = {p.name for p in (REPO / "reports").iterdir() if p.is_file()}
    assert on_disk == shipped and set(TEMPLATE_NAMES) <= shipped
    assert template_directory() == REPO / "reports"


@pytest.mark.parametrize("cost, sentence", [
    (CostSection(fleet_gpus=2, fleet_gpu_hours=1234.4, fleet_gpu_utilization=0.4149, fleet_idle_cost_usd=567.2),
     "Fleet GPU utilisation 41% over 1,234 GPU-hours on 2 GPU(s); idle cost $567."),
    (CostSection(), "Fleet GPU utilisation: no data (no GPU series in the period)."),
], ids=["the fleet's utilisation, GPU-hours and idle cost are one headline sentence",
        "without GPU series the fleet's utilisation is no data, never 0%"])
def test_the_headline_states_the_fleet_gpu_figures(cost, sentence):
    headline = build_headline(SloSection(), IncidentSection(), ChangeSection(), DriftSection(), cost,
                              FreshnessSection())
    assert sentence in headline.sentences
    report = replace(synthetic_report(iso_week_period("2026-W47"), services=1, models=1), headline=headline)
    assert f"<li>{sentence}</li>" in render_report_html(report)
