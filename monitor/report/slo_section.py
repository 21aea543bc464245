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
from monitor.sources.prometheus import PrometheusSource, QueryError, RangeResult

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
    """One row per SLO for `period`, in spec order."""
    if not specs:
        return SloSection((), SectionStatus(True, "no SLOs are defined in the config"))
    at_end = evaluate_slos(source, specs, period.end)
    at_start = evaluate_slos(source, specs, period.start)
    attainment = _attainments(source, specs, period, min_events)
    with ThreadPoolExecutor(RANGE_CONCURRENCY) as pool:
        burn = list(pool.map(lambda spec: _burn_rate_series(source, spec, period, min_events), specs))
    rows = []
    for index, spec in enumerate(specs):
        end, start = at_end[index], at_start[index]
        rows.append(SloRow(
            slo_id=spec.id, service=spec.service, name=spec.name, description=spec.description,
            objective=spec.objective, attainment=attainment[index],
            budget_remaining=end.error_budget_remaining, budget_remaining_at_start=start.error_budget_remaining,
            status=classify(spec.objective, attainment[index], end.error_budget_remaining, end.page, end.ticket),
            page_firing_at_end=end.page, ticket_firing_at_end=end.ticket,
            burn_rate_window=format_duration(BURN_RATE_WINDOW), burn_rate=burn[index],
            page_burn_rate_threshold=PAGE_CONDITIONS[0].threshold(spec.period_length(period.end)),
            problems=tuple(dict.fromkeys([*end.problems, *_problems(start)]))))
    return SloSection(tuple(rows), SectionStatus(), AT_RISK_BUDGET_BELOW)


def _problems(result: SloResult) -> list[str]:
    return [f"at the period's start: {p}" for p in result.problems]


def _attainments(source: PrometheusSource, specs: list[SloSpec], period: ReportPeriod,
                 min_events: float) -> list[float | None]:
    """1 - error ratio over exactly the period, from each SLO's queries over a window of its length."""
    duration = format_duration(period.length)
    seconds = period.length.total_seconds()
    planned = [sli_queries(spec, duration) for spec in specs]
    answers = source.instant_many([q for queries in planned for q in queries.values()], period.end)

    def value(query: str) -> float | None:
        answer = answers[query]
        if isinstance(answer, QueryError):
            return None
        return answer.scalar()

    out: list[float | None] = []
    for queries in planned:
        if "ratio" in queries:
            ratio = value(queries["ratio"])
        else:
            bad, total = value(queries["bad"]), value(queries["total"])
            ratio = error_ratio(bad * seconds if bad is not None else None,
                                total * seconds if total is not None else None, min_events)
        out.append(None if ratio is None else 1.0 - ratio)
    return out


def _burn_rate_series(source: PrometheusSource, spec: SloSpec, period: ReportPeriod,
                      min_events: float) -> TimeSeries | None:
    """The burn rate over one-hour windows, one point per hour of the period."""
    queries = sli_queries(spec, format_duration(BURN_RATE_WINDOW))
    start = period.start + BURN_RATE_WINDOW
    grid = np.arange(start.timestamp(), period.end.timestamp() + 1, BURN_RATE_WINDOW.total_seconds())
    try:
        series = {role: _on_grid(source.range(q, start, period.end, BURN_RATE_WINDOW), grid)
                  for role, q in queries.items()}
    except QueryError:
        return None
    seconds = BURN_RATE_WINDOW.total_seconds()
    values: list[float | None] = []
    for i in range(len(grid)):
        if "ratio" in series:
            ratio = series["ratio"][i]
        else:
            bad, total = series["bad"][i], series["total"][i]
            ratio = error_ratio(None if bad is None else bad * seconds,
                                None if total is None else total * seconds, min_events)
        values.append(burn_rate(ratio, spec.objective))
    return TimeSeries(tuple(float(t) for t in grid), tuple(values))


def _on_grid(result: RangeResult, grid: np.ndarray) -> list[float | None]:
    """The single series' values at each grid time; None where absent or NaN."""
    out: list[float | None] = [None] * len(grid)
    if len(result.series) > 1:
        raise QueryError(result.query, f"expected one series, got {len(result.series)}")
    for series in result.series:
        index = {float(t): i for i, t in enumerate(grid)}
        for t, v in zip(series.timestamps.tolist(), series.values.tolist()):
            i = index.get(float(t))
            if i is not None and v == v:
                out[i] = v
    return out
