"""Data freshness and "no data" periods, so a quiet week is not mistaken for a healthy one.

Pipelines: every series named `*_last_success_timestamp_seconds` (the Prometheus
convention for batch jobs) is one pipeline; its values are the success times
themselves, so the week's successes are read exactly, whatever the sample step.
A pipeline is stale from the first run it missed (last success + its usual
interval, the median gap between successes) until its next success.

Models: stretches of at least NO_TRAFFIC_MIN_DURATION where a model served no
inferences, or its counter had no samples at all.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

from monitor.config import Config
from monitor.cost import queries
from monitor.cost.presets import ModelMetricsError, resolve_model_metrics
from monitor.report.intervals import Interval, runs_below
from monitor.report.model import FreshnessSection, NoDataPeriod, PipelineFreshness, SectionStatus
from monitor.report.period import ReportPeriod
from monitor.sources.prometheus import PrometheusSource, QueryError

PIPELINE_SUCCESS_SELECTOR = '{__name__=~".+_last_success_timestamp_seconds"}'
PIPELINE_LABEL = "pipeline"
# A step well under any sensible run interval, so no success goes unseen.
PIPELINE_STEP = timedelta(minutes=5)
TRAFFIC_STEP = timedelta(minutes=5)
NO_TRAFFIC_MIN_DURATION = timedelta(minutes=30)
# A gap counts as a missed run when it exceeds the usual interval by this factor.
MISSED_RUN_FACTOR = 1.5


def build_freshness_section(source: PrometheusSource, config: Config, period: ReportPeriod) -> FreshnessSection:
    """Pipelines' staleness and models' no-traffic periods within `period`."""
    problems: list[str] = []
    try:
        pipelines = pipeline_freshness(source, period)
    except QueryError as exc:
        pipelines, problems = [], [f"pipelines: {exc}"]
    no_data: list[NoDataPeriod] = []
    for model in config.models:
        try:
            metrics = resolve_model_metrics(model)
        except ModelMetricsError:
            continue
        # Summed over versions: a model is quiet when none of its versions serve.
        query = f"sum({queries.inference_rate(metrics, TRAFFIC_STEP)})"
        try:
            result = source.range(query, period.start + TRAFFIC_STEP, period.end, TRAFFIC_STEP)
        except QueryError as exc:
            problems.append(f"{model.name}: {exc}")
            continue
        grid, values = _dense(result, period.start + TRAFFIC_STEP, period.end, TRAFFIC_STEP)
        for interval in runs_below(grid, values, 1e-12, TRAFFIC_STEP, NO_TRAFFIC_MIN_DURATION,
                                   missing_counts=True, until=period.end):
            no_data.append(NoDataPeriod("no traffic", model.name, interval))
    return FreshnessSection(tuple(pipelines), tuple(no_data), SectionStatus(True, "; ".join(problems)))


def pipeline_freshness(source: PrometheusSource, period: ReportPeriod) -> list[PipelineFreshness]:
    """Each pipeline's last success and stale periods, from its success-timestamp gauge."""
    result = source.range(PIPELINE_SUCCESS_SELECTOR, period.start, period.end, PIPELINE_STEP)
    out = []
    for series in sorted(result.series, key=lambda s: _pipeline_name(s.labels)):
        successes = sorted({float(v) for v in series.values.tolist() if v == v and v > 0})
        out.append(_freshness(_pipeline_name(series.labels), successes, period))
    return out


def _freshness(name: str, successes: list[float], period: ReportPeriod) -> PipelineFreshness:
    """Stale periods from success times (unix s): pure, so tests can feed it directly."""
    end = period.end.timestamp()
    gaps = [b - a for a, b in zip(successes, successes[1:])]
    usual = statistics.median(gaps) if gaps else None
    stale: list[Interval] = []
    if usual:
        # Successes after the period's end are not visible to a report on the period.
        for before, after in zip(successes, [*successes[1:], end]):
            if after - before > usual * MISSED_RUN_FACTOR:
                start = max(before + usual, period.start.timestamp())
                if start < after:
                    stale.append(Interval(_at(start), _at(min(after, end))))
    return PipelineFreshness(name, _at(successes[-1]) if successes else None,
                             timedelta(seconds=usual) if usual else None, tuple(stale))


def _pipeline_name(labels) -> str:
    metric = labels.get("__name__", "").removesuffix("_last_success_timestamp_seconds")
    return labels.get(PIPELINE_LABEL) or metric


def _dense(result, start: datetime, end: datetime, step: timedelta) -> tuple[list[float], list[float | None]]:
    """A regular grid from start to end with the (single) series' values; None where absent."""
    count = int((end - start) / step) + 1
    grid = [start.timestamp() + i * step.total_seconds() for i in range(count)]
    values: list[float | None] = [None] * count
    for series in result.series:
        for t, v in zip(series.timestamps.tolist(), series.values.tolist()):
            i = round((t - grid[0]) / step.total_seconds())
            if 0 <= i < count and v == v:
                values[i] = v
    return grid, values


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
