"""OpenSLO `openslo/v1alpha` (as Sloth reads it) and `openslo/v1` SLO documents, converted to `SloSpec`.

OpenSLO counts *good* events where Sloth counts *bad* ones; we keep event counts
rather than folding good/total into a raw ratio as Sloth does, so the error budget
is computed from counted events: bad = total - good. Documents of other kinds
(Service, DataSource, AlertPolicy...) are accepted and ignored; `kind: SLI` documents
serve `indicatorRef`. Only Prometheus metric sources can be evaluated; any other
(Datadog, AppDynamics, ...) is refused by name.

Queries may leave the rate window out, as OpenSLO's own examples do
(`sum(http_requests{...})` with `counter: true`): a counter selector, optionally in one
`sum`, gets `rate(...[{{.window}}])` (monitor.slo.counter_query); `counter: false`
(v1alpha `incremental: false`) without `{{.window}}` is refused, as gauges have no rate.

Budgeting methods:
- `Occurrences`: the event ratio.
- `Timeslices` (v1): the share of bad time slices. A slice of `timeSliceWindow` is good
  when its good ratio compares with `timeSliceTarget` as `op` says (default, and always
  for threshold metrics, whose `op` compares values: at least);
  slices without traffic are not counted. Evaluated as a raw ratio with a subquery
  stepping one slice at a time, so the error budget is the share of slices allowed bad.
- `RatioTimeslices` is refused.

Threshold metrics ("99% of requests under 250 ms"): over a histogram (a `<name>_bucket`
selector) the threshold is a bucket boundary and the SLI counts events
(monitor.slo.histogram_threshold); over any other query (a gauge), each sample on a one
minute grid is an occurrence, good when it compares with `value` as `op` says.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from monitor.durations import MAX_DURATION, format_duration, parse_duration
from monitor.slo.groups import group_by_problem
from monitor.slo.counter_query import NotACounterSelector, windowed_rate
from monitor.slo.histogram_threshold import Comparison, ThresholdError, threshold_sli
from monitor.slo.spec import (WINDOW_PLACEHOLDER, CalendarPeriod, EventsSli, RawSli, SloSpec, render_window, summed,
                              zone)
from monitor.typed_yaml import INVALID, YamlFile, mapping_get, node_line

V1ALPHA = "openslo/v1alpha"
V1 = "openslo/v1"

_V1_DURATION = re.compile(r"^(\d+)([mhdwMQY])$")
_V1ALPHA_UNITS = {"second": "s", "minute": "m", "hour": "h", "day": "d", "week": "w",
                  "month": "M", "quarter": "Q", "year": "Y"}
_ROLLING_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# The longest a calendar unit can be, in days, to bound a window at MAX_DURATION.
_CALENDAR_MAX_DAYS = {"d": 1, "w": 7, "M": 31, "Q": 92, "y": 366}


# -- shared pieces -------------------------------------------------------------

@dataclass(frozen=True)
class Metadata:
    name: str
    displayName: str | None = None
    # OpenSLO v1 allows a label to hold a list of values.
    labels: dict[str, str | list[str]] = field(default_factory=dict)
    annotations: Any = None
    namespace: str | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return [("name", "must not be empty")] if not self.name.strip() else []


@dataclass(frozen=True)
class Calendar:
    startTime: str
    timeZone: str | None = None


def _period(doc: YamlFile, node: yaml.Node, count: int, unit: str, rolling: bool,
            calendar: Calendar | None, default_period: timedelta) -> timedelta | CalendarPeriod | None:
    """A rolling timedelta or a CalendarPeriod; records a problem and returns None when invalid."""
    if count < 1:
        doc.error(node, "time window: the duration must be positive")
        return None
    longest_days = count * (_ROLLING_SECONDS.get(unit, 0) / 86400 if rolling else _CALENDAR_MAX_DAYS.get(unit, 0))
    if longest_days > MAX_DURATION.days:
        doc.error(node, f"time window: {count}{unit} is longer than the maximum, 10 years")
        return None
    if rolling:
        if unit not in _ROLLING_SECONDS:
            doc.error(node, f"time window: a rolling window must be in minutes, hours, days or weeks "
                            f"(got {count}{unit}); use a calendar window for months, quarters and years")
            return None
        return timedelta(seconds=count * _ROLLING_SECONDS[unit])
    unit = {"Y": "y"}.get(unit, unit)
    if unit not in ("d", "w", "M", "Q", "y"):
        doc.error(node, f"time window: a calendar window must be days, weeks, months, quarters or years "
                        f"(got {count}{unit})")
        return None
    if calendar is None:
        doc.error(node, "time window: a calendar window (isRolling: false) needs calendar.startTime")
        return None
    try:
        tz = zone(calendar.timeZone)
        start = datetime.fromisoformat(calendar.startTime.strip())
    except ValueError as exc:
        doc.error(node, f"time window: calendar: {exc}")
        return None
    try:
        start = start.replace(tzinfo=tz) if start.tzinfo is None else start.astimezone(tz)
        in_range = 1970 <= start.year < 2200
    except OverflowError:
        in_range = False
    if not in_range:
        doc.error(node, f"time window: calendar.startTime {calendar.startTime!r} is outside the years 1970 to 2199")
        return None
    return CalendarPeriod(count=count, unit=unit, anchor=start)


def _windowed(doc: YamlFile, node: yaml.Node, where: str, query: str, counter: bool | None) -> str | None:
    """The query with `{{.window}}`: as written, or a counter made into its rate; None (recorded) when neither."""
    if WINDOW_PLACEHOLDER.search(query):
        return query.strip()
    if counter is False:
        doc.error(node, f"{where}: the query has no {{{{.window}}}} and is not a counter (counter: false): "
                        f"write the window into the query as {{{{.window}}}}")
        return None
    try:
        return windowed_rate(query)
    except NotACounterSelector as exc:
        doc.error(node, f"{where}: the query {exc}")
        return None


def _source_problem(source: str) -> list[tuple[str | None, str]]:
    return [(None, f"{source} metric source not supported: only Prometheus queries can be evaluated")]


def _labels(metadata: Metadata) -> dict[str, str]:
    # Prometheus labels hold one value: a list becomes its values joined by commas.
    return {key: ",".join(value) if isinstance(value, list) else value for key, value in metadata.labels.items()}


_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _number(value: float) -> str:
    """A PromQL number literal with every digit the spec gave (`0.1234567`, `200.0`)."""
    return repr(float(value))


def _threshold_sli(doc: YamlFile, node: yaml.Node, where: str, query: str, op: str | None,
                   value: float | None) -> EventsSli | RawSli | None:
    """A threshold SLI: bucket events over a histogram, sampled occurrences over anything else."""
    if op not in _OPS or value is None:
        doc.error(node, f"{where}: a threshold metric needs op (one of {', '.join(_OPS)}) and value")
        return None
    if not math.isfinite(value):
        doc.error(node, f"{where}: value must be a finite number, got {value!r}")
        return None
    if WINDOW_PLACEHOLDER.search(query):
        doc.error(node, f"{where}: a threshold metric's query must not use {{{{.window}}}}: "
                        f"it is compared with the value as it is")
        return None
    name = query.strip().split("{", 1)[0].strip()
    if name.endswith("_bucket"):
        try:
            return threshold_sli(query, Comparison(op), value)
        except ThresholdError as exc:
            doc.error(node, f"{where}: {exc}")
            return None
    # Each sample on a one-minute grid is an occurrence, good when `query op value` holds.
    good = f"(({query.strip()}) {_OPS[op]} bool {_number(value)})[{{{{.window}}}}:1m]"
    return RawSli(f"1 - sum(sum_over_time({good})) / sum(count_over_time({good}))")


def _timeslices_sli(sli: EventsSli | RawSli, target: float, op: str | None, slice_window: str) -> RawSli:
    """The share of bad slices over `{{.window}}`: each slice good when its good ratio meets the target."""
    if isinstance(sli, EventsSli):
        bad = summed(render_window(sli.error_query, slice_window))
        total = summed(render_window(sli.total_query, slice_window))
        # `total > 0` drops slices without traffic: no slice, rather than a bad one.
        good_ratio = f"(1 - {bad} / ({total} > 0))"
    else:
        good_ratio = f"(1 - ({render_window(sli.error_ratio_query, slice_window)}))"
    comparison = _OPS.get(op or "gte", ">=")
    return RawSli(f"1 - avg_over_time(({good_ratio} {comparison} bool {_number(target)})"
                  f"[{{{{.window}}}}:{slice_window}])")


# -- openslo/v1alpha -----------------------------------------------------------

@dataclass(frozen=True)
class V1alphaMetric:
    query: str
    source: str = "prometheus"
    queryType: str = "promql"
    metadata: Any = None

    @property
    def supported(self) -> bool:
        return self.source.lower() in ("prometheus", "sloth")

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not self.supported:
            return []  # refused once, by the indicator holding it
        # OpenSLO's own Prometheus example says `query`; Sloth's says `promql`.
        if self.queryType.lower() not in ("promql", "query"):
            return [("queryType", f"must be 'promql', got {self.queryType!r}")]
        return []


@dataclass(frozen=True)
class V1alphaIndicator:
    thresholdMetric: V1alphaMetric

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return [] if self.thresholdMetric.supported else _source_problem(self.thresholdMetric.source)


@dataclass(frozen=True)
class V1alphaRatioMetrics:
    total: V1alphaMetric
    good: V1alphaMetric | None = None
    bad: V1alphaMetric | None = None
    incremental: bool | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if (self.good is None) == (self.bad is None):
            return [(None, "needs exactly one of 'good' or 'bad' beside 'total'")]
        for metric in (self.good, self.bad, self.total):
            if metric is not None and not metric.supported:
                return _source_problem(metric.source)
        return []


@dataclass(frozen=True)
class V1alphaObjective:
    target: float
    ratioMetrics: V1alphaRatioMetrics | None = None
    displayName: str | None = None
    value: float | None = None
    op: str | None = None
    timeSliceTarget: float | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not 0 < self.target < 1:
            return [("target", f"must be a ratio between 0 and 1 (e.g. 0.999), got {self.target:g}")]
        return []


@dataclass(frozen=True)
class V1alphaTimeWindow:
    count: int
    unit: str
    isRolling: bool = True
    calendar: Calendar | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.unit.lower() not in _V1ALPHA_UNITS:
            return [("unit", f"must be one of {', '.join(u.title() for u in _V1ALPHA_UNITS)}, got {self.unit!r}")]
        return []


@dataclass(frozen=True)
class V1alphaSpec:
    service: str
    objectives: list[V1alphaObjective]
    timeWindows: list[V1alphaTimeWindow] = field(default_factory=list)
    description: str = ""
    budgetingMethod: str = "Occurrences"
    indicator: V1alphaIndicator | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _budgeting_problem(self.budgetingMethod, ("Occurrences",))
        if not self.service.strip():
            problems.append(("service", "must not be empty"))
        if not self.objectives:
            problems.append(("objectives", "needs at least one objective"))
        if len(self.timeWindows) > 1:
            problems.append(("timeWindows", "only one time window is supported"))
        return problems


@dataclass(frozen=True)
class V1alphaSlo:
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: V1alphaSpec


def _budgeting_problem(method: str, supported: tuple[str, ...]) -> list[tuple[str | None, str]]:
    if method not in supported:
        return [("budgetingMethod", f"{method} budgeting not supported here (supported: {', '.join(supported)})")]
    return []


def _v1alpha_specs(doc: YamlFile, node: yaml.Node, default_period: timedelta) -> list[SloSpec]:
    slo = doc.build(V1alphaSlo, node, "")
    if slo is INVALID:
        return []
    spec_node = mapping_get(node, "spec")
    period: timedelta | CalendarPeriod | None = default_period
    if slo.spec.timeWindows:
        window = slo.spec.timeWindows[0]
        windows_node = mapping_get(spec_node, "timeWindows")
        period = _period(doc, windows_node.value[0], window.count, _V1ALPHA_UNITS[window.unit.lower()],
                         window.isRolling, window.calendar, default_period)
    objectives_node = mapping_get(spec_node, "objectives")
    out = []
    for index, objective in enumerate(slo.spec.objectives):
        objective_node = objectives_node.value[index]
        where = f"spec.objectives[{index}]"
        metrics = objective.ratioMetrics
        sli: EventsSli | RawSli | None = None
        if metrics is not None:
            queries = {role: _windowed(doc, objective_node, f"{where}.ratioMetrics.{role}",
                                       getattr(metrics, role).query, metrics.incremental)
                       for role in ("good", "bad", "total") if getattr(metrics, role) is not None}
            if None not in queries.values():
                sli = _events(queries["total"], queries.get("good"), queries.get("bad"))
        elif slo.spec.indicator is not None:
            sli = _threshold_sli(doc, objective_node, f"{where} (spec.indicator.thresholdMetric)",
                                 slo.spec.indicator.thresholdMetric.query, objective.op, objective.value)
        else:
            doc.error(objective_node, f"{where}: needs ratioMetrics, or spec.indicator.thresholdMetric with op "
                                      f"and value")
        if period is None or sli is None:
            continue
        # Sloth names each objective `<name>-<index>` (its id `<service>-<name>-<index>`); we do the same
        # so recorded series and dashboards line up with Sloth's.
        out.append(SloSpec(
            service=slo.spec.service, name=f"{slo.metadata.name}-{index}", objective=objective.target,
            sli=sli,
            period=period, description=slo.spec.description, labels=_labels(slo.metadata),
            spec_format="openslo/v1alpha", source=f"{doc.path}:{node_line(objective_node)}"))
    return out


def _events(total: str, good: str | None, bad: str | None) -> EventsSli:
    total = total.strip()
    if bad is not None:
        return EventsSli(error_query=bad.strip(), total_query=total)
    # bad = total - good, each summed first so differing label sets still subtract.
    return EventsSli(error_query=f"{summed(total)} - {summed(good)}", total_query=total)


# -- openslo/v1 ----------------------------------------------------------------

@dataclass(frozen=True)
class MetricSource:
    spec: dict[str, Any]
    type: str | None = None
    metricSourceRef: str | None = None

    @property
    def query(self) -> str:
        return str(self.spec.get("query", ""))

    @property
    def supported(self) -> bool:
        return self.type is None or self.type.lower() == "prometheus"

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not self.supported:
            return []  # refused once, by the indicator holding it
        if not isinstance(self.spec.get("query"), str) or not self.spec["query"].strip():
            return [("spec", "needs a PromQL 'query'")]
        return []


@dataclass(frozen=True)
class MetricRef:
    metricSource: MetricSource


@dataclass(frozen=True)
class RatioMetric:
    total: MetricRef | None = None
    good: MetricRef | None = None
    bad: MetricRef | None = None
    counter: bool | None = None
    rawType: str | None = None
    raw: MetricRef | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        for ref in (self.good, self.bad, self.total, self.raw):
            if ref is not None and not ref.metricSource.supported:
                return _source_problem(str(ref.metricSource.type))
        if self.raw is not None:
            if self.rawType not in ("success", "failure"):
                return [("rawType", "a 'raw' ratio needs rawType 'success' or 'failure'")]
            return []
        if self.total is None:
            return [(None, "needs 'total' (with 'good' or 'bad'), or 'raw' with 'rawType'")]
        if (self.good is None) == (self.bad is None):
            return [(None, "needs exactly one of 'good' or 'bad' beside 'total'")]
        return []


@dataclass(frozen=True)
class SliSpec:
    ratioMetric: RatioMetric | None = None
    thresholdMetric: MetricRef | None = None
    description: str = ""
    # Grouped SLOs, a monitor extension (OpenSLO v1 has no grouping): one SLO instance per
    # value set of these labels in the indicator's series, at most `maxGroups` of them.
    groupBy: list[str] = field(default_factory=list)
    maxGroups: int = 100

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if problem := group_by_problem(self.groupBy):
            return [("groupBy", problem)]
        if self.maxGroups < 1:
            return [("maxGroups", f"must be at least 1, got {self.maxGroups}")]
        if (self.ratioMetric is None) == (self.thresholdMetric is None):
            return [(None, "needs exactly one of 'ratioMetric' or 'thresholdMetric'")]
        if self.thresholdMetric is not None and not self.thresholdMetric.metricSource.supported:
            return _source_problem(str(self.thresholdMetric.metricSource.type))
        return []


@dataclass(frozen=True)
class Indicator:
    spec: SliSpec
    metadata: Metadata | None = None


@dataclass(frozen=True)
class V1TimeWindow:
    duration: str
    isRolling: bool = True
    calendar: Calendar | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not _V1_DURATION.match(self.duration):
            return [("duration", f"must be a number and one of m, h, d, w, M, Q, Y (e.g. 28d, 1M), "
                                 f"got {self.duration!r}")]
        return []


@dataclass(frozen=True)
class V1Objective:
    target: float | None = None
    targetPercent: float | None = None
    displayName: str | None = None
    op: str | None = None
    value: float | None = None
    timeSliceTarget: float | None = None
    timeSliceWindow: str | None = None
    compositeWeight: float | None = None
    indicator: Indicator | None = None
    indicatorRef: str | None = None

    @property
    def ratio(self) -> float:
        return self.target if self.target is not None else (self.targetPercent or 0.0) / 100.0

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if (self.target is None) == (self.targetPercent is None):
            return [(None, "needs exactly one of 'target' (a ratio, 0.999) or 'targetPercent' (99.9)")]
        if not 0 < self.ratio < 1:
            key = "target" if self.target is not None else "targetPercent"
            return [(key, f"must be below 100% and above 0, got {self.ratio:g} as a ratio")]
        return []


@dataclass(frozen=True)
class V1SloSpec:
    service: str
    objectives: list[V1Objective]
    timeWindow: list[V1TimeWindow] = field(default_factory=list)
    description: str = ""
    budgetingMethod: str = "Occurrences"
    indicator: Indicator | None = None
    indicatorRef: str | None = None
    alertPolicies: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _budgeting_problem(self.budgetingMethod, ("Occurrences", "Timeslices"))
        if not self.service.strip():
            problems.append(("service", "must not be empty"))
        if not self.objectives:
            problems.append(("objectives", "needs at least one objective"))
        if len(self.timeWindow) > 1:
            problems.append(("timeWindow", "only one time window is supported"))
        if self.indicator is not None and self.indicatorRef is not None:
            problems.append(("indicatorRef", "give either 'indicator' or 'indicatorRef', not both"))
        return problems


@dataclass(frozen=True)
class V1Slo:
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: V1SloSpec


@dataclass(frozen=True)
class V1Sli:
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: SliSpec


def sli_from_document(doc: YamlFile, node: yaml.Node) -> tuple[str, Indicator] | None:
    """A `kind: SLI` document as (name, Indicator), for SLOs that name it with `indicatorRef`."""
    sli = doc.build(V1Sli, node, "")
    if sli is INVALID:
        return None
    return sli.metadata.name, Indicator(spec=sli.spec, metadata=sli.metadata)


def _v1_specs(doc: YamlFile, node: yaml.Node, default_period: timedelta,
              indicators: dict[str, Indicator]) -> list[SloSpec]:
    slo = doc.build(V1Slo, node, "")
    if slo is INVALID:
        return []
    spec_node = mapping_get(node, "spec")
    period: timedelta | CalendarPeriod | None = default_period
    if slo.spec.timeWindow:
        window = slo.spec.timeWindow[0]
        match = _V1_DURATION.match(window.duration)
        period = _period(doc, mapping_get(spec_node, "timeWindow").value[0], int(match.group(1)), match.group(2),
                         window.isRolling, window.calendar, default_period)
    objectives_node = mapping_get(spec_node, "objectives")
    several = len(slo.spec.objectives) > 1
    out = []
    for index, objective in enumerate(slo.spec.objectives):
        objective_node = objectives_node.value[index]
        where = f"spec.objectives[{index}]"
        indicator = objective.indicator or slo.spec.indicator
        ref = objective.indicatorRef or slo.spec.indicatorRef
        if indicator is None and ref is not None:
            indicator = indicators.get(ref)
            if indicator is None:
                doc.error(objective_node, f"{where}: indicatorRef {ref!r} names no 'kind: SLI' document "
                                          f"in the loaded SLO files")
                continue
        if indicator is None:
            doc.error(objective_node, f"{where}: needs an SLI: spec.indicator or spec.indicatorRef")
            continue
        sli = _v1_sli(doc, objective_node, where, indicator.spec, objective)
        if sli is not None and slo.spec.budgetingMethod == "Timeslices":
            # A threshold metric's `op` compares its values with `value`, not slices with their target.
            slice_op = objective.op if indicator.spec.thresholdMetric is None else None
            sli = _v1_timeslices(doc, objective_node, where, sli, objective, slice_op)
        if sli is None or period is None:
            continue
        out.append(SloSpec(
            service=slo.spec.service, name=f"{slo.metadata.name}-{index}" if several else slo.metadata.name,
            objective=objective.ratio, sli=sli, period=period, description=slo.spec.description,
            labels=_labels(slo.metadata), group_by=tuple(indicator.spec.groupBy),
            max_groups=indicator.spec.maxGroups, spec_format="openslo/v1",
            source=f"{doc.path}:{node_line(objective_node)}"))
    return out


def _v1_sli(doc: YamlFile, node: yaml.Node, where: str, indicator: SliSpec,
            objective: V1Objective) -> EventsSli | RawSli | None:
    if indicator.thresholdMetric is not None:
        return _threshold_sli(doc, node, f"{where}: thresholdMetric", indicator.thresholdMetric.metricSource.query,
                              objective.op, objective.value)
    ratio = indicator.ratioMetric
    assert ratio is not None  # SliSpec.yaml_check: exactly one of them
    queries: dict[str, str | None] = {}
    for role in ("good", "bad", "total", "raw"):
        if getattr(ratio, role) is not None:
            query = getattr(ratio, role).metricSource.query
            if role == "raw":
                # A raw ratio is no counter: it must say where the window goes.
                queries[role] = _windowed(doc, node, f"{where}: ratioMetric.raw", query, counter=False)
            else:
                queries[role] = _windowed(doc, node, f"{where}: ratioMetric.{role}", query, ratio.counter)
    if None in queries.values():
        return None
    if ratio.raw is not None:
        raw = queries["raw"].strip()
        return RawSli(raw if ratio.rawType == "failure" else f"1 - ({raw})")
    return _events(queries["total"], queries.get("good"), queries.get("bad"))


def _v1_timeslices(doc: YamlFile, node: yaml.Node, where: str, sli: EventsSli | RawSli,
                   objective: V1Objective, op: str | None) -> RawSli | None:
    if objective.timeSliceTarget is None or objective.timeSliceWindow is None:
        doc.error(node, f"{where}: Timeslices budgeting needs timeSliceTarget and timeSliceWindow")
        return None
    if not 0 < objective.timeSliceTarget <= 1:
        doc.error(node, f"{where}: timeSliceTarget must be a ratio above 0 and at most 1, "
                        f"got {objective.timeSliceTarget:g}")
        return None
    if op is not None and op not in _OPS:
        doc.error(node, f"{where}: op must be one of {', '.join(_OPS)}, got {op!r}")
        return None
    try:
        slice_window = parse_duration(objective.timeSliceWindow)
    except ValueError as exc:
        doc.error(node, f"{where}: timeSliceWindow: {exc}")
        return None
    if slice_window < timedelta(minutes=1):
        doc.error(node, f"{where}: timeSliceWindow must be at least 1m (a rate needs two scrapes), "
                        f"got {objective.timeSliceWindow}")
        return None
    return _timeslices_sli(sli, objective.timeSliceTarget, op, format_duration(slice_window))


def specs_from_document(doc: YamlFile, node: yaml.Node, api_version: str, default_period: timedelta,
                        indicators: dict[str, Indicator]) -> list[SloSpec]:
    """Build the SloSpecs of one OpenSLO `kind: SLO` document; problems are recorded on `doc`."""
    if api_version == V1ALPHA:
        return _v1alpha_specs(doc, node, default_period)
    return _v1_specs(doc, node, default_period, indicators)
