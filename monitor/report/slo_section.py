"""The report's SLO section: attainment over the period, budget, burn-rate history.

Talks to monitor.slo's API rather than redoing its math: `evaluate_slos` at the
period's start and end gives the error budget and its trend and the page/ticket
state; `sli_queries` renders each SLO's own queries for the period's length
(attainment) and for one-hour windows stepped through the period (the burn-rate
chart), and `error_ratio`/`burn_rate` turn their answers into figures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np

from monitor.durations import format_duration
from monitor.report.model import SectionStatus, SloRow, SloSection, SloStatus, TimeSeries
from monitor.report.period import ReportPeriod
from monitor.slo import SloSpec, evaluate_slos
from monitor.slo.burn_rate import PAGE_CONDITIONS, burn_rate, error_ratio
from monitor.slo.evaluate import DEFAULT_MIN_EVENTS, SloResult, sli_queries
from monitor.slo.groups import Group, group_of
from monitor.sources.prometheus import InstantResult, PrometheusSource, QueryError, RangeResult

BURN_RATE_WINDOW = timedelta(hours=1)
# Met, but with less than this share of the error budget left: at risk.
AT_RISK_BUDGET_BELOW = 0.25
RANGE_CONCURRENCY = 4


def classify(objective: float, attainment: float | None, budget_remaining: float | None,
             page: bool | None, ticket: bool | None, at_risk_below: float = AT_RISK_BUDGET_BELOW) -> SloStatus:
    """Missed when attainment fell short of the objective; at risk when met but the budget is
    nearly spent or a burn-rate alert holds at the end; no data when nothing was measured."""
    if attainment is None:
        return SloStatus.NO_DATA
    if attainment < objective:
        return SloStatus.MISSED
    if (budget_remaining is not None and budget_remaining < at_risk_below) or page or ticket:
        return SloStatus.AT_RISK
    return SloStatus.MET


def build_slo_section(source: PrometheusSource, specs: list[SloSpec], period: ReportPeriod,
                      min_events: float = DEFAULT_MIN_EVENTS) -> SloSection:
    """One row per SLO for `period`, in spec order; a grouped spec's instances (present at the
    period's end) each get a row, in label-value order."""
    if not specs:
        return SloSection((), SectionStatus(True, "no SLOs are defined in the config"))
    at_end = _by_spec(evaluate_slos(source, specs, period.end))
    at_start = _by_spec(evaluate_slos(source, specs, period.start))
    attainment = _attainments(source, specs, period, min_events)
    with ThreadPoolExecutor(RANGE_CONCURRENCY) as pool:
        burn = list(pool.map(lambda spec: _burn_rate_series(source, spec, period, min_events), specs))
    rows = []
    for index, spec in enumerate(specs):
        starts = {result.group: result for result in at_start.get(id(spec), [])}
        for end in at_end.get(id(spec), []):
            start = starts.get(end.group)
            attained = attainment[index].get(end.group)
            rows.append(SloRow(
                slo_id=end.id, service=spec.service, name=spec.name, description=spec.description,
                objective=spec.objective, attainment=attained,
                budget_remaining=end.error_budget_remaining,
                budget_remaining_at_start=start.error_budget_remaining if start else None,
                status=classify(spec.objective, attained, end.error_budget_remaining, end.page, end.ticket),
                page_firing_at_end=end.page, ticket_firing_at_end=end.ticket,
                burn_rate_window=format_duration(BURN_RATE_WINDOW),
                burn_rate=burn[index].get(end.group) if burn[index] is not None else None,
                page_burn_rate_threshold=PAGE_CONDITIONS[0].threshold(spec.period_length(period.end)),
                problems=tuple(dict.fromkeys([*end.problems, *(_problems(start) if start else [])]))))
    return SloSection(tuple(rows), SectionStatus(), AT_RISK_BUDGET_BELOW)


def _by_spec(results: list[SloResult]) -> dict[int, list[SloResult]]:
    """Results per spec object (a grouped spec has one per group)."""
    out: dict[int, list[SloResult]] = {}
    for result in results:
        out.setdefault(id(result.spec), []).append(result)
    return out


def _problems(result: SloResult) -> list[str]:
    return [f"at the period's start: {p}" for p in result.problems]


def _per_group(answer: InstantResult, spec: SloSpec) -> dict[Group, float | None]:
    if not spec.group_by:
        return {(): answer.scalar()}
    return {group_of(s.labels, spec.group_by): s.value for s in answer.samples}


def _attainments(source: PrometheusSource, specs: list[SloSpec], period: ReportPeriod,
                 min_events: float) -> list[dict[Group, float | None]]:
    """Per spec and group, 1 - error ratio over exactly the period, from its queries over a window of its length."""
    duration = format_duration(period.length)
    seconds = period.length.total_seconds()
    planned = [sli_queries(spec, duration) for spec in specs]
    answers = source.instant_many([q for queries in planned for q in queries.values()], period.end)

    def values(query: str, spec: SloSpec) -> dict[Group, float | None]:
        answer = answers[query]
        if isinstance(answer, QueryError):
            return {}
        return _per_group(answer, spec)

    out: list[dict[Group, float | None]] = []
    for spec, queries in zip(specs, planned):
        attained: dict[Group, float | None] = {}
        if "ratio" in queries:
            ratios = values(queries["ratio"], spec)
        else:
            bad, total = values(queries["bad"], spec), values(queries["total"], spec)
            ratios = {group: error_ratio(bad[group] * seconds if bad.get(group) is not None else None,
                                         total[group] * seconds if total.get(group) is not None else None,
                                         min_events)
                      for group in dict.fromkeys([*total, *bad])}
        for group, ratio in ratios.items():
            attained[group] = None if ratio is None else 1.0 - ratio
        out.append(attained)
    return out


def _burn_rate_series(source: PrometheusSource, spec: SloSpec, period: ReportPeriod,
                      min_events: float) -> dict[Group, TimeSeries] | None:
    """Per group, the burn rate over one-hour windows, one point per hour of the period."""
    queries = sli_queries(spec, format_duration(BURN_RATE_WINDOW))
    start = period.start + BURN_RATE_WINDOW
    grid = np.arange(start.timestamp(), period.end.timestamp() + 1, BURN_RATE_WINDOW.total_seconds())
    try:
        series = {role: _on_grid(source.range(q, start, period.end, BURN_RATE_WINDOW), grid, spec)
                  for role, q in queries.items()}
    except QueryError:
        return None
    seconds = BURN_RATE_WINDOW.total_seconds()
    groups = dict.fromkeys(group for per_group in series.values() for group in per_group)
    if not spec.group_by:
        groups = {(): None}
    nothing: list[float | None] = [None] * len(grid)
    out: dict[Group, TimeSeries] = {}
    for group in groups:
        values: list[float | None] = []
        for i in range(len(grid)):
            if "ratio" in series:
                ratio = series["ratio"].get(group, nothing)[i]
            else:
                bad, total = series["bad"].get(group, nothing)[i], series["total"].get(group, nothing)[i]
                ratio = error_ratio(None if bad is None else bad * seconds,
                                    None if total is None else total * seconds, min_events)
            values.append(burn_rate(ratio, spec.objective))
        out[group] = TimeSeries(tuple(float(t) for t in grid), tuple(values))
    return out


def _on_grid(result: RangeResult, grid: np.ndarray, spec: SloSpec) -> dict[Group, list[float | None]]:
    """Per group (one series, `()`, for an ungrouped spec), the values at each grid time; None where
    absent or NaN."""
    if len(result.series) > 1 and not spec.group_by:
        raise QueryError(result.query, f"expected one series, got {len(result.series)}")
    index = {float(t): i for i, t in enumerate(grid)}
    out: dict[Group, list[float | None]] = {}
    for series in result.series:
        values = out.setdefault(group_of(series.labels, spec.group_by), [None] * len(grid))
        for t, v in zip(series.timestamps.tolist(), series.values.tolist()):
            i = index.get(float(t))
            if i is not None and v == v:
                values[i] = v
    return out
