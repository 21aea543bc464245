"""Trailing-week cost from closed hours: each hour is measured once, windows are sums.

The daemon's cost figures (cost per 1k, cost, idle cost, GPU-hours over the trailing
7 days, and the week-over-week change) describe the two weeks ending at the latest
closed hour (`monitor.incremental.closed_boundary`), not at the cycle's minute: they
move slowly, so they are recomputed once per hour and reused by the cycles between,
with their age exported (`figures_age_seconds{figure="cost_weekly"}`).

Each model's usage (inferences by version, per GPU unit its present grid minutes and
utilisation sum, per pod on it its minutes, version and processes' SM sum, tokens by
version, CPU and RAM per node) and OpenCost's node prices are
measured per closed hour, with the same queries `compute_costs` uses over a 1h
window, and stored (`monitor.incremental.PeriodRepository`). A week is the sum of
its 168 hours, then priced and split by the same `allocate`. Hours not yet stored
(a cold start, a restart after a gap, a new or edited model) are backfilled with
range queries of at most `MAX_HOURS_PER_QUERY` steps.

How close this is to `week_over_week(source, config, boundary)` computed directly:
- GPU minutes, utilisation sums, RAM and resource requests: exact. They are sums over a one-minute
  subquery grid, and Prometheus aligns subquery steps to absolute multiples of the
  step, so the hours' grids partition the week's grid point for point.
- Node prices: `avg_over_time` per hour, averaged over the hours that have a price.
  Exact when every hour holds the same number of price samples (a steady scrape);
  otherwise the hours are weighted equally rather than by sample count.
- CPU usage (cAdvisor's counter, `increase()` per hour) and tokens: like inferences below.
  OpenCost's CPU and RAM node prices price each hour's usage with that hour's price.
- Inferences: within 0.5% relative per (model, version) with at least
  `BOUND_MIN_INFERENCES` inferences in the week. `increase()` over one window
  extrapolates only at the window's two ends; over 168 hours it extrapolates at each
  hour boundary across the scrape gap straddling it, at the hour's average slope
  instead of the true increase in that gap. Each boundary's error is at most the
  gap's increase (one scrape interval of traffic, 5 minutes in the simulated
  history) and the errors have both signs, so they mostly cancel: the total error is
  bounded by sum |slope change at each boundary| x gap, under 0.1% for any traffic
  that does not jump by its own size within an hour, and well inside 0.5% for real
  diurnal traffic. A counter reset or a series starting or ending inside the week is
  handled by `increase()` in the hour it happens, exactly as in the week's window,
  apart from the same extrapolation at that hour's ends.
Cost and cost per 1k are products and ratios of these, so they inherit the bound
(cost per 1k at most about twice it: a ratio of two figures each within it).
Tests: tests/test_incremental_cost.py holds these bounds against the direct path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from monitor.config import Config, ModelConfig
from monitor.cost.allocation import CostReport, GpuKey, GpuUsage, ModelUsage, PodTime, allocate
from monitor.cost.collect import WEEK, CostWindows, _ModelPlan, _values_at
from monitor.cost.compute import ComputeUsage, Resource, compute_hours
from monitor.cost import queries
from monitor.incremental import HOUR, PeriodRepository, PeriodValue, closed_boundary, contiguous_runs, hour_ends
from monitor.sources.prometheus import Query, QueryError, RangeQuery, RangeResult
from monitor.timeutil import utc

# A cold start or a gap is backfilled a day at a time, one batch per day after
# another: each query reads at most the GPUs it selects x 24 x 60 grid points, and a
# two-week backfill of a hundred models never floods the server at once.
MAX_HOURS_PER_QUERY = 24
# Hours kept: two weeks for week over week, with room for a 30-day figure later.
RETENTION = timedelta(days=35)
BOUND_RELATIVE = 0.005
BOUND_MIN_INFERENCES = 1000.0
_PRICES_SET = "cost/node_gpu_hourly_cost"


@dataclass(frozen=True)
class WeekPair:
    """The week ending at `end` and the one before it, built from closed hours."""

    end: datetime
    previous: CostReport
    current: CostReport


def model_series_set(model: ModelConfig) -> str:
    """The series set of one model's hourly cost figures: its name and a digest of its queries."""
    plan = _ModelPlan.of(model, HOUR)
    texts = [getattr(figure, "query", figure) for figure in plan.all_queries()]  # a family member's own query
    # The placement too: a pod's version is stored with its hours.
    digest = hashlib.sha256(json.dumps([texts, plan.version_label, repr(model.placement)]).encode()).hexdigest()[:16]
    return f"cost/{model.name}/{digest}"


def trailing_weeks(source, config: Config, repository: PeriodRepository, now: datetime) -> WeekPair:
    """The two weeks ending at the latest closed hour at `now`, backfilling any hour not yet stored."""
    end = closed_boundary(now)
    start = end - 2 * WEEK
    warnings = backfill(source, config, repository, start, end, now)
    sets = {m.name: model_series_set(m) for m in config.models}
    previous = _week_report(config, repository, sets, start, end - WEEK, warnings)
    current = _week_report(config, repository, sets, end - WEEK, end, warnings)
    return WeekPair(end, previous, current)


def backfill(source, config: Config, repository: PeriodRepository, start: datetime, end: datetime,
             now: datetime) -> tuple[str, ...]:
    """Measure and store every hour in (start, end] that a model (or the node prices) lacks.

    Models missing the same hours share range queries (one batch per run of missing
    hours). Returns the server warnings met; hours answered with a warning are stored
    but not closed, so the next cycle asks again. Raises the first failed query.
    """
    wanted = hour_ends(start, end)
    if not wanted:
        return ()
    sets = {m.name: model_series_set(m) for m in config.models}
    closed = repository.closed([*sets.values(), _PRICES_SET], wanted[0], wanted[-1])
    by_missing: dict[tuple[datetime, ...], list[ModelConfig]] = {}
    for model in config.models:
        missing = tuple(t for t in wanted if t.timestamp() not in closed[sets[model.name]])
        if missing:
            by_missing.setdefault(missing, []).append(model)
    missing_prices = [t for t in wanted if t.timestamp() not in closed[_PRICES_SET]]
    # One batch per run of hours, oldest first: the engine folds the models of a group
    # into one query per figure.
    price_runs = [(run, RangeQuery(queries.node_gpu_hourly_cost(HOUR), run[0], run[-1], HOUR))
                  for run in contiguous_runs(missing_prices, MAX_HOURS_PER_QUERY)]
    model_runs = [(run, CostWindows.plan(replace(config, models=models), run[0], len(run), HOUR))
                  for missing, models in by_missing.items() for run in contiguous_runs(missing, MAX_HOURS_PER_QUERY)]
    by_range: dict[tuple[datetime, datetime], list[Query]] = {}
    for run, query in price_runs:
        by_range.setdefault((run[0], run[-1]), []).append(query)
    for run, windows in model_runs:
        by_range.setdefault((run[0], run[-1]), []).extend(windows.range_queries())
    if not by_range:
        return ()
    answers: dict[Query, object] = {}
    for _, batch in sorted(by_range.items()):
        answers.update(source.run(batch))
    warnings: set[str] = set()
    for run, query in price_runs:
        result = _answer(answers[query])
        hours = {end: [PeriodValue("price", s.labels.get("node", ""), v) for s, v in _values_at(result, end)
                       if v is not None] for end in run}
        repository.save({_PRICES_SET: hours}, closed=not result.warnings, now=now)
        warnings |= set(result.warnings)
    for run, windows in model_runs:
        results = {q.query: _answer(answers[q]) for q in windows.range_queries()}
        run_warnings = {w for r in results.values() for w in r.warnings}
        repository.save({sets[plan.model]: {end: _usage_values(plan.usage(results, end)) for end in run}
                         for plan in windows.plans}, closed=not run_warnings, now=now)
        warnings |= run_warnings
    repository.prune(end - RETENTION)
    return tuple(sorted(warnings))


def _answer(answer) -> RangeResult:
    if isinstance(answer, QueryError):
        raise answer
    assert isinstance(answer, RangeResult)
    return answer


def _gpu_key_text(gpu: GpuKey) -> str:
    # A MIG instance adds its profile and id (a whole GPU keeps the four fields stored before).
    fields = [gpu.node, gpu.index, gpu.uuid, gpu.model_name]
    return json.dumps(fields + [gpu.mig_profile, gpu.mig_instance] if gpu.mig_profile or gpu.mig_instance else fields)


def _usage_values(usage: ModelUsage) -> list[PeriodValue]:
    """One hour's usage as stored rows; a figure without data has no row (no data, never 0)."""
    values = [PeriodValue("inferences", version, n) for version, n in (usage.inferences_by_version or {}).items()]
    for gpu in usage.gpus:
        key = _gpu_key_text(gpu.gpu)
        values += [PeriodValue("gpu_minutes", key, gpu.present_minutes),
                   PeriodValue("gpu_util_sum", key, gpu.utilization_percent_sum)]
        for pod in gpu.pods:
            pod_key = json.dumps([key, pod.namespace, pod.pod, pod.version])
            values.append(PeriodValue("gpu_pod_minutes", pod_key, pod.minutes))
            if pod.sm_utilization_sum is not None:
                values.append(PeriodValue("gpu_pod_sm_sum", pod_key, pod.sm_utilization_sum))
    for figure, by_version in (("prompt_tokens", usage.prompt_tokens_by_version),
                               ("generation_tokens", usage.generation_tokens_by_version)):
        values += [PeriodValue(figure, version, n) for version, n in (by_version or {}).items()]
    # CPU and RAM per node, with the part OpenCost priced that hour: a week's sums price it
    # exactly as the week measured directly (monitor.cost.compute).
    for row in usage.compute:
        prefix = row.resource.value
        values += [PeriodValue(f"{prefix}_hours", row.node, row.hours),
                   PeriodValue(f"{prefix}_priced_hours", row.node, row.priced_hours),
                   PeriodValue(f"{prefix}_priced_usd", row.node, row.priced_cost_usd)]
    return values


def _week_report(config: Config, repository: PeriodRepository, sets: Mapping[str, str], start: datetime,
                 end: datetime, warnings: Sequence[str]) -> CostReport:
    totals = repository.totals([*sets.values(), _PRICES_SET], start, end)
    # The week's average price: the mean of its hourly averages (see the module doc).
    node_prices = {key: t.total / t.hours for (figure, key), t in totals[_PRICES_SET].items() if t.hours}
    usages = [_usage_from(model.name, totals[sets[model.name]], model.gpus, model.placement is not None)
              for model in config.models]
    return allocate(utc(start), utc(end), usages, config.cost.pricing, node_prices, warnings)


def _usage_from(model: str, totals: Mapping[tuple[str, str], object], gpu_selector: str | None,
                placement: bool = False) -> ModelUsage:
    inferences: dict[str, float] = {}
    minutes: dict[str, float] = {}
    util_sums: dict[str, float] = {}
    tokens: dict[str, dict[str, float]] = {"prompt_tokens": {}, "generation_tokens": {}}
    compute: dict[tuple[Resource, str], dict[str, float]] = {}
    pod_minutes: dict[str, tuple[float, float]] = {}   # total, hours with a value
    pod_sm: dict[str, tuple[float, float]] = {}
    for (figure, key), t in totals.items():
        if figure == "inferences":
            inferences[key] = t.total
        elif figure == "gpu_minutes":
            minutes[key] = t.total
        elif figure == "gpu_util_sum":
            util_sums[key] = t.total
        elif figure == "gpu_pod_minutes":
            pod_minutes[key] = (t.total, t.hours)
        elif figure == "gpu_pod_sm_sum":
            pod_sm[key] = (t.total, t.hours)
        elif figure in tokens:
            tokens[figure][key] = t.total
        elif figure.split("_", 1)[0] in ("cpu", "ram") and figure.endswith(("_hours", "_usd")):
            resource, part = figure.split("_", 1)
            compute.setdefault((Resource(resource), key), {})[part] = t.total
    pods: dict[str, list[PodTime]] = {}
    for pod_key, (n, hours) in sorted(pod_minutes.items()):
        unit, namespace, pod, version = json.loads(pod_key)
        if n:
            # A pod's SM sum counts only when every hour it ran had one (else: no data, not a part of it).
            sm_total, sm_hours = pod_sm.get(pod_key, (None, 0.0))
            pods.setdefault(unit, []).append(PodTime(namespace, pod, n, version,
                                                     sm_total if sm_hours == hours else None))
    gpus = tuple(GpuUsage(GpuKey(*json.loads(key)), n, util_sums.get(key, 0.0), tuple(pods.get(key, ())))
                 for key, n in sorted(minutes.items()) if n)
    rows = tuple(ComputeUsage(resource, node, parts.get("hours", 0.0), parts.get("priced_hours", 0.0),
                              parts.get("priced_usd", 0.0)) for (resource, node), parts in sorted(
                                  compute.items(), key=lambda item: (item[0][0].value, item[0][1])))
    return ModelUsage(model, inferences or None, gpus, compute_hours(rows, Resource.CPU),
                      compute_hours(rows, Resource.RAM), gpu_selector, tokens["prompt_tokens"] or None,
                      tokens["generation_tokens"] or None, rows, placement)

