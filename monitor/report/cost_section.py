"""The report's cost section: monitor.cost's figures for the period, the period before,
each day, and the stretches where a GPU sat idle.

Costs come from monitor.cost (`period_over_period`, `daily_costs`); this module only
adds the idle *periods* (when, on which GPU), which the cost report sums but does
not locate in time.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from monitor.config import Config
from monitor.cost import queries
from monitor.cost.allocation import CostReport
from monitor.cost.collect import daily_costs, period_over_period
from monitor.cost.fleet import fleet_figures
from monitor.cost.presets import ModelMetricsError, gpu_matchers
from monitor.report.intervals import runs_below
from monitor.report.model import CostRow, CostSection, DailyCost, GpuIdlePeriod, SectionStatus
from monitor.report.period import ReportPeriod
from monitor.sources.prometheus import PrometheusSource, QueryError

DAY = timedelta(days=1)
# A GPU under this utilisation for at least IDLE_MIN_DURATION is reported as idle.
IDLE_UTILIZATION_BELOW = 0.10
IDLE_MIN_DURATION = timedelta(hours=1)
IDLE_STEP = timedelta(minutes=5)


def build_cost_section(source: PrometheusSource, config: Config, period: ReportPeriod) -> CostSection:
    """Cost per model and version for `period`, week over week, per day, and GPU idle periods."""
    if not config.models:
        return CostSection(status=SectionStatus(True, "no models are configured"))
    comparison = period_over_period(source, config, period.end, period.length)
    current, previous = comparison.current, comparison.previous
    rows = []
    for cost in current.models:
        try:
            before = previous.entry(cost.model, cost.version).cost_per_1k
        except KeyError:
            before = None
        rows.append(CostRow(cost.model, cost.version, cost.inferences, cost.cost_usd, cost.cost_per_1k, before,
                            comparison.cost_per_1k_change.get((cost.model, cost.version)), cost.gpu_hours,
                            cost.gpu_utilization, cost.idle_cost_usd, cost.allocation.value,
                            cost.sharing.value if cost.sharing else "", cost.prompt_tokens, cost.generation_tokens,
                            cost.cost_per_1m_tokens,
                            comparison.cost_per_1m_tokens_change.get((cost.model, cost.version))))
    days = period.length / DAY
    daily = []
    if days >= 1 and days == int(days):
        daily = [DailyCost(report.start, {c.model: c.cost_usd for c in report.models if c.version is None})
                 for report in daily_costs(source, config, period.start, period.end)]
    fleet_cost, fleet_inferences, fleet_per_1k = _fleet_totals(current)
    _, _, previous_per_1k = _fleet_totals(previous)
    fleet = fleet_figures(current)
    return CostSection(tuple(rows), fleet_cost, fleet_inferences, fleet_per_1k, previous_per_1k, tuple(daily),
                       tuple(gpu_idle_periods(source, config, period)), IDLE_UTILIZATION_BELOW,
                       SectionStatus(True, "; ".join(current.warnings)), fleet.gpus, fleet.gpu_hours,
                       fleet.gpu_utilization, fleet.idle_cost_usd)


def _fleet_totals(report: CostReport) -> tuple[float | None, float | None, float | None]:
    """Total cost, inferences and cost per 1k over whole models; None unless every model has data."""
    models = [c for c in report.models if c.version is None]
    costs = [c.cost_usd for c in models]
    counts = [c.inferences for c in models]
    if not models or any(v is None for v in costs) or any(v is None for v in counts):
        return (sum(v for v in costs if v is not None) or None,
                sum(v for v in counts if v is not None) or None, None)
    total_cost, total_inferences = float(sum(costs)), float(sum(counts))
    return total_cost, total_inferences, (total_cost / total_inferences * 1000 if total_inferences else None)


def gpu_idle_periods(source: PrometheusSource, config: Config, period: ReportPeriod) -> list[GpuIdlePeriod]:
    """Per model and GPU, runs of utilisation under IDLE_UTILIZATION_BELOW lasting IDLE_MIN_DURATION."""
    found: list[GpuIdlePeriod] = []
    for model in config.models:
        try:
            matchers = gpu_matchers(model)
        except ModelMetricsError:
            continue  # `monitor check` reports it; the cost figures say "no data"
        if matchers is None:
            continue
        try:
            result = source.range(queries.gpu_utilization_grid(matchers), period.start, period.end, IDLE_STEP)
        except QueryError:
            continue
        for series in result.series:
            percent = series.values
            values = [None if v != v else v / 100.0 for v in percent.tolist()]
            # Missing samples are not idleness: the freshness section reports gaps.
            for interval in runs_below(series.timestamps.tolist(), values, IDLE_UTILIZATION_BELOW, IDLE_STEP,
                                       IDLE_MIN_DURATION, missing_counts=False, until=period.end):
                inside = (series.timestamps >= interval.start.timestamp()) & \
                         (series.timestamps < interval.end.timestamp()) & ~np.isnan(percent)
                mean = float(percent[inside].mean()) / 100.0 if inside.any() else None
                found.append(GpuIdlePeriod(model.name, _gpu_name(series.labels), interval, mean))
    return found


def _gpu_name(labels) -> str:
    node = labels.get("Hostname") or labels.get("hostname") or "?"
    return f"{node}/gpu{labels.get('gpu', '?')}"
