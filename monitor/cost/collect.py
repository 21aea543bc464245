"""Collect cost inputs from Prometheus and hand them to the pure allocation.

The only module in monitor.cost that talks to Prometheus, through the query engine
(`PrometheusSource.run`). Several equal windows (the days of a week, this week and
the last) are measured with one range query per figure, stepping by the window
length, rather than one query per window; and a figure that models read from the
same metric is one query across the models (queries.py's families), split per model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

import numpy as np

from monitor.config import Config, ModelConfig, PlacementConfig, kube_pod_label_name
from monitor.cost import queries

from monitor.cost.allocation import (CostReport, GpuKey, GpuUsage, ModelUsage, PodTime, allocate,
                                     cost_per_1k_change, gpu_price)
from monitor.cost.compute import ComputeFigure, ComputeUsage, Resource, compute_figures, compute_hours, priced
from monitor.cost.tokens import cost_per_1m_tokens_change, token_increase
from monitor.cost.idle import IdlePeriod, idle_runs, to_datetime
from monitor.cost.presets import gpu_matchers, resolve_model_metrics
from monitor.errors import MonitorError
from monitor.sources.folding import Family
from monitor.sources.prometheus import Answer, PrometheusSource, Query, QueryError, RangeQuery, RangeResult
from monitor.timeutil import utc

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


class CostWindowError(MonitorError):
    """A cost window is empty, reversed, or not a whole number of days where days are needed."""


@dataclass(frozen=True)
class PeriodComparison:
    """Two consecutive equal periods and the relative change of cost per 1k between them."""

    current: CostReport
    previous: CostReport
    cost_per_1k_change: Mapping[tuple[str, str | None], float | None]
    cost_per_1m_tokens_change: Mapping[tuple[str, str | None], float | None] = field(default_factory=dict)


def compute_costs(source: PrometheusSource, config: Config, start: datetime, end: datetime) -> CostReport:
    """Cost per model and per version over [start, end]."""
    start, end = utc(start), utc(end)
    if end <= start:
        raise CostWindowError(f"the cost window must end after it starts ({start:%Y-%m-%dT%H:%M:%SZ} .. "
                              f"{end:%Y-%m-%dT%H:%M:%SZ})")
    return compute_cost_windows(source, config, first_end=end, count=1, window=end - start)[0]


def daily_costs(source: PrometheusSource, config: Config, start: datetime, end: datetime) -> list[CostReport]:
    """One report per day from `start` to `end` (a whole number of days), oldest first."""
    start, end = utc(start), utc(end)
    days = (end - start) / DAY
    if days < 1 or days != int(days):
        raise CostWindowError(f"a daily breakdown needs a whole number of days, got {end - start}")
    return compute_cost_windows(source, config, first_end=start + DAY, count=int(days), window=DAY)


def period_over_period(source: PrometheusSource, config: Config, end: datetime,
                       period: timedelta = WEEK) -> PeriodComparison:
    """This period (ending at `end`) against the one before it, with the change in cost per 1k."""
    end = utc(end)
    previous, current = compute_cost_windows(source, config, first_end=end - period, count=2, window=period)
    return PeriodComparison(current, previous, cost_per_1k_change(current, previous),
                            cost_per_1m_tokens_change(current, previous))


def week_over_week(source: PrometheusSource, config: Config, end: datetime) -> PeriodComparison:
    """The 7 days ending at `end` against the 7 days before."""
    return period_over_period(source, config, end, WEEK)


def compute_cost_windows(source: PrometheusSource, config: Config, first_end: datetime, count: int,
                         window: timedelta) -> list[CostReport]:
    """Reports for `count` consecutive windows of length `window`, the first ending at `first_end`."""
    windows = CostWindows.plan(config, first_end, count, window)
    return windows.reports(source.run(windows.range_queries()))


Answers = Mapping[Query, Answer]
# A figure's query: a family member (one query across models) or a query of its own.
Figure = Family | str


@dataclass(frozen=True)
class CostWindows:
    """The range queries behind consecutive equal cost windows, and the reports built from their answers.

    Planning apart from running lets a caller send several plans' queries (and others)
    to the query engine as one batch instead of one batch after another.
    """

    config: Config
    ends: tuple[datetime, ...]
    window: timedelta
    plans: tuple[_ModelPlan, ...]

    @classmethod
    def plan(cls, config: Config, first_end: datetime, count: int, window: timedelta) -> "CostWindows":
        """`count` windows of length `window`, the first ending at `first_end`."""
        first_end = utc(first_end)
        return cls(config, tuple(first_end + i * window for i in range(count)), window,
                   tuple(_ModelPlan.of(m, window) for m in config.models))

    def range_queries(self) -> list[RangeQuery]:
        """One range query per figure, stepping by the window from the first end to the last."""
        wanted: list[Figure] = [queries.node_gpu_hourly_cost(self.window)]
        for plan in self.plans:
            wanted += plan.all_queries()
        return [self.range_query(figure) for figure in dict.fromkeys(wanted)]

    def range_query(self, figure: Figure) -> RangeQuery:
        """The range query of one figure over these windows (how its answer is keyed)."""
        if isinstance(figure, Family):
            return RangeQuery.member(figure, self.ends[0], self.ends[-1], self.window)
        return RangeQuery(figure, self.ends[0], self.ends[-1], self.window)

    def reports(self, answers: Answers) -> list[CostReport]:
        """One report per window from the answers to `range_queries()`; raises the first failed query."""
        results: dict[str, RangeResult] = {}
        for wanted in self.range_queries():
            answer = answers[wanted]
            if isinstance(answer, QueryError):
                raise answer
            assert isinstance(answer, RangeResult)
            results[wanted.query] = answer  # a member's own text
        warnings = sorted({w for r in results.values() for w in r.warnings})
        price_result = results[queries.node_gpu_hourly_cost(self.window)]
        reports = []
        for end in self.ends:
            node_prices = {s.labels.get("node", ""): v for s, v in _values_at(price_result, end) if v is not None}
            usages = [plan.usage(results, end) for plan in self.plans]
            reports.append(allocate(end - self.window, end, usages, self.config.cost.pricing, node_prices,
                                    warnings))
        return reports


# The per-(unit, pod) figures of a model's GPUs, by name: grid minutes and utilisation sums of
# each utilisation metric, and its processes' SM share where the exporter gives it per pod.
_POD_FIGURES = (
    ("util_minutes", "count_over_time", queries.GPU_UTIL_METRIC, "max"),
    ("util_sum", "sum_over_time", queries.GPU_UTIL_METRIC, "max"),
    ("mig_minutes", "count_over_time", queries.MIG_UTIL_METRIC, "max"),
    ("mig_sum", "sum_over_time", queries.MIG_UTIL_METRIC, "max"),
    # Several processes of one pod on one GPU add up.
    ("process_sm_sum", "sum_over_time", queries.PROCESS_SM_METRIC, "sum"),
)


@dataclass(frozen=True)
class _ModelPlan:
    """The queries one model needs for one window length."""

    model: str
    inferences: Figure
    version_label: str | None
    gpu_selector: str | None
    unit_minutes: Figure | None
    pod_figures: Mapping[str, Figure]
    placement: PlacementConfig | None
    pod_versions: Figure | None
    # CPU and RAM per node (monitor.cost.compute) and token counts (monitor.cost.tokens).
    compute: tuple[ComputeFigure, ...] = ()
    prompt_tokens: Figure | None = None
    generation_tokens: Figure | None = None

    @classmethod
    def of(cls, model: ModelConfig, window: timedelta) -> "_ModelPlan":
        metrics = resolve_model_metrics(model)
        matchers = gpu_matchers(model)
        pod_figures = {name: queries.gpu_pod_family(function, metric, matchers, window, combine)
                       for name, function, metric, combine in _POD_FIGURES} if matchers else {}
        placement = model.placement if matchers else None
        pod_versions = (queries.kube_pod_versions(kube_pod_label_name(placement.pod_label), window)
                        if placement and placement.pod_label else None)
        return cls(
            model.name, queries.inference_increase_family(metrics, window), metrics.version_label,
            model.gpus if matchers else None,
            queries.gpu_unit_minutes_family(matchers, window) if matchers else None, pod_figures,
            placement, pod_versions,
            tuple(compute_figures(model, window)),
            token_increase(metrics.prompt_tokens, metrics.version_label, window) if metrics.prompt_tokens else None,
            (token_increase(metrics.generation_tokens, metrics.version_label, window)
             if metrics.generation_tokens else None))

    def all_queries(self) -> list[Figure]:
        compute = [q for f in self.compute for q in (f.query, f.price_query) if q]
        return [q for q in (self.inferences, self.unit_minutes, *self.pod_figures.values(), self.pod_versions,
                            *compute, self.prompt_tokens, self.generation_tokens) if q]

    def usage(self, results: Mapping[str, RangeResult], end: datetime) -> ModelUsage:
        compute = tuple(self._compute(results, end))
        return ModelUsage(self.model, self._by_version(results, self.inferences, end), self._gpus(results, end),
                          compute_hours(compute, Resource.CPU), compute_hours(compute, Resource.RAM),
                          self.gpu_selector,
                          self._by_version(results, self.prompt_tokens, end),
                          self._by_version(results, self.generation_tokens, end), compute,
                          self.placement is not None)

    def _by_version(self, results: Mapping[str, RangeResult], figure: Figure | None, end: datetime
                    ) -> dict[str, float] | None:
        """A counter's increase per version label value; None when it has no series (no data)."""
        if figure is None:
            return None
        by_version: dict[str, float] = {}
        for series, value in _values_at(results[_text(figure)], end):
            if value is None:
                continue
            version = series.labels.get(self.version_label, "") if self.version_label else ""
            by_version[version] = by_version.get(version, 0.0) + value
        return by_version or None

    def _compute(self, results: Mapping[str, RangeResult], end: datetime) -> list[ComputeUsage]:
        """CPU and RAM per node, priced by OpenCost's node prices where they exist."""
        out = []
        for figure in self.compute:
            prices = ({s.labels.get("node", ""): v for s, v in _values_at(results[figure.price_query], end)
                       if v is not None} if figure.price_query else {})
            for series, value in _values_at(results[figure.query], end):
                if value is not None:
                    out.append(priced(figure.resource, series.labels.get("node", ""),
                                      value * figure.hours_per_unit, prices))
        return out

    def _gpus(self, results: Mapping[str, RangeResult], end: datetime) -> tuple[GpuUsage, ...]:
        """The model's GPU units with their pods: a unit's minutes from the unit figure, its pods' minutes
        and utilisation from DCGM_FI_DEV_GPU_UTIL, or (a MIG instance has none) its engine activity."""
        if self.unit_minutes is None:
            return ()
        figures = {name: _by_pod(results[_text(figure)], end) for name, figure in self.pod_figures.items()}
        versions = self._pod_versions(results, end)
        gpus = []
        for series, minutes in _values_at(results[_text(self.unit_minutes)], end):
            if not minutes:
                continue
            key = _gpu_key(series.labels)
            util = figures["util_minutes"].get(key)
            if util:
                minutes_by_pod, sums, scale = util, figures["util_sum"].get(key, {}), 1.0
            else:
                minutes_by_pod, sums = figures["mig_minutes"].get(key, {}), figures["mig_sum"].get(key, {})
                scale = 100.0
            pod_minutes = sum(minutes_by_pod.values())
            if not pod_minutes:
                continue
            # The unit's utilisation: its pods' mean (the one reading of the GPU each pod's series
            # carries), over the unit's minutes; exactly their sum when pods never overlapped.
            util_sum = sum(sums.values()) * scale
            if pod_minutes != minutes:
                util_sum = util_sum / pod_minutes * minutes
            sm = figures["process_sm_sum"].get(key, {})
            pods = tuple(PodTime(namespace, pod, n, self._version(versions, namespace, pod),
                                 sm.get((namespace, pod)))
                         for (namespace, pod), n in sorted(minutes_by_pod.items()) if n)
            gpus.append(GpuUsage(key, minutes, util_sum, pods if any(p.pod for p in pods) else ()))
        return tuple(gpus)

    def _pod_versions(self, results: Mapping[str, RangeResult], end: datetime) -> dict[tuple[str, str], str]:
        if self.pod_versions is None or self.placement is None or self.placement.pod_label is None:
            return {}
        label = kube_pod_label_name(self.placement.pod_label)
        out = {}
        for series, _ in _values_at(results[_text(self.pod_versions)], end):
            labels = series.labels
            namespace = labels.get("exported_namespace") or labels.get("namespace", "")
            pod = labels.get("exported_pod") or labels.get("pod", "")
            out[(namespace, pod)] = labels.get(label, "")
        return out

    def _version(self, versions: Mapping[tuple[str, str], str], namespace: str, pod: str) -> str | None:
        """The version a pod serves, by the model's placement; None when not known."""
        if self.placement is None:
            return None
        if self.placement.pod_pattern is not None:
            found = re.search(self.placement.pod_pattern, pod)
            return found.group("version") if found and found.group("version") else None
        return versions.get((namespace, pod)) or None


def _by_pod(result: RangeResult, end: datetime) -> dict[GpuKey, dict[tuple[str, str], float]]:
    """unit -> (namespace, pod) -> value, at one evaluation time."""
    out: dict[GpuKey, dict[tuple[str, str], float]] = {}
    for series, value in _values_at(result, end):
        if value is not None:
            labels = series.labels
            out.setdefault(_gpu_key(labels), {})[(labels.get("namespace", ""), labels.get("pod", ""))] = value
    return out


def _text(figure: Figure) -> str:
    return figure.query if isinstance(figure, Family) else figure


def _gpu_key(labels: Mapping[str, str]) -> GpuKey:
    node = labels.get("Hostname") or labels.get("hostname") or ""
    return GpuKey(node, labels.get("gpu", ""), labels.get("UUID", ""), labels.get("modelName", ""),
                  labels.get("GPU_I_PROFILE", ""), labels.get("GPU_I_ID", ""))


def _values_at(result: RangeResult, at: datetime) -> list[tuple[object, float | None]]:
    """Each series' value at one evaluation time of a range result (series without a point there are left out)."""
    t = at.timestamp()
    out = []
    for series in result.series:
        hits = [i for i, ts in enumerate(series.timestamps) if abs(ts - t) < 0.5]
        if hits:
            value = float(series.values[hits[0]])
            out.append((series, None if value != value else value))
    return out


IDLE_STEP = timedelta(minutes=5)


def gpu_idle_periods(source: PrometheusSource, config: Config, start: datetime, end: datetime,
                     below: float = 0.10, min_duration: timedelta = timedelta(hours=1)) -> list[IdlePeriod]:
    """Periods of at least `min_duration` where a model's GPU ran below `below` utilisation (0..1).

    Sampled every 5 minutes; a gauge's sample holds until the next, so each stands for the 5
    minutes after it. Idle cost
    is priced like `compute_costs` (OpenCost's node price first), before any sharing.
    """
    start, end = utc(start), utc(end)
    # The node prices and every model's utilisation grid in one batch (one grid query
    # across the models that share dcgm-exporter's series).
    price_query = RangeQuery(queries.node_gpu_hourly_cost(end - start), end, end, end - start)
    grids = {model.name: RangeQuery.member(queries.gpu_utilization_grid_family(matchers), start + IDLE_STEP, end,
                                           IDLE_STEP)
             for model in config.models if (matchers := gpu_matchers(model))}
    answers = source.run([price_query, *grids.values()])
    prices = _raised(answers[price_query])
    node_prices = {s.labels.get("node", ""): v for s, v in _values_at(prices, end) if v is not None}
    periods: list[IdlePeriod] = []
    for model in config.models:
        if model.name not in grids:
            continue
        result = _raised(answers[grids[model.name]])
        for series in result.series:
            key = _gpu_key(series.labels)
            utilization = series.values / 100.0
            price, _ = gpu_price(key, config.cost.pricing, node_prices)
            for i, j in idle_runs(series.timestamps, utilization, below, min_duration, IDLE_STEP):
                hours = (j - i) * IDLE_STEP.total_seconds() / 3600.0
                mean = float(np.mean(utilization[i:j]))
                periods.append(IdlePeriod(model.name, key.name, to_datetime(series.timestamps[i]),
                                          to_datetime(series.timestamps[j - 1]) + IDLE_STEP, mean, hours,
                                          hours * price * (1.0 - mean)))
    return sorted(periods, key=lambda p: (p.start, p.model, p.gpu))


def _raised(answer: Answer) -> RangeResult:
    if isinstance(answer, QueryError):
        raise answer
    assert isinstance(answer, RangeResult)
    return answer
