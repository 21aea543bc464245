"""OpenSLO `openslo/v1alpha` (as Sloth reads it) and `openslo/v1` SLO documents, converted to `SloSpec`.

OpenSLO counts *good* events where Sloth counts *bad* ones; we keep event counts
rather than folding good/total into a raw ratio as Sloth does, so the error budget
is computed from counted events: bad = total - good. Only the "Occurrences"
budgeting method is an event ratio; time-slice budgets are a different SLO and are
rejected with a clear message. Documents of other kinds (Service, DataSource,
AlertPolicy...) are accepted and ignored; `kind: SLI` documents serve `indicatorRef`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from monitor.durations import MAX_DURATION
from monitor.slo.spec import WINDOW_PLACEHOLDER, CalendarPeriod, EventsSli, RawSli, SloSpec, summed, zone
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
    labels: Any = None
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


def _require_window(doc: YamlFile, node: yaml.Node, where: str, query: str) -> None:
    if not WINDOW_PLACEHOLDER.search(query):
        doc.error(node, f"{where}: the query must use the {{{{.window}}}} template variable "
                        f"(the window each burn rate is computed over)")


def _labels(metadata: Metadata) -> dict[str, str]:
    if not isinstance(metadata.labels, dict):
        return {}
    out = {}
    for key, value in metadata.labels.items():
        # OpenSLO v1 allows a label to hold a list of values; Prometheus labels hold one.
        out[str(key)] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


# -- openslo/v1alpha -----------------------------------------------------------

@dataclass(frozen=True)
class V1alphaMetric:
    query: str
    source: str = "prometheus"
    queryType: str = "promql"
    metadata: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if self.source.lower() not in ("prometheus", "sloth"):
            problems.append(("source", f"only Prometheus sources can be evaluated, got {self.source!r}"))
        if self.queryType.lower() != "promql":
            problems.append(("queryType", f"must be 'promql', got {self.queryType!r}"))
        return problems


@dataclass(frozen=True)
class V1alphaRatioMetrics:
    total: V1alphaMetric
    good: V1alphaMetric | None = None
    bad: V1alphaMetric | None = None
    incremental: bool | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if (self.good is None) == (self.bad is None):
            return [(None, "needs exactly one of 'good' or 'bad' beside 'total'")]
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
        problems: list[tuple[str | None, str]] = []
        if not 0 < self.target < 1:
            problems.append(("target", f"must be a ratio between 0 and 1 (e.g. 0.999), got {self.target:g}"))
        if self.ratioMetrics is None:
            problems.append((None, "needs 'ratioMetrics' (threshold metrics cannot be evaluated as an event ratio)"))
        return problems


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
    indicator: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _budgeting_problem(self.budgetingMethod)
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


def _budgeting_problem(method: str) -> list[tuple[str | None, str]]:
    if method != "Occurrences":
        return [("budgetingMethod", f"only 'Occurrences' (an event ratio) is supported, got {method!r}")]
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
        metrics = objective.ratioMetrics
        for role in ("good", "bad", "total"):
            metric = getattr(metrics, role)
            if metric is not None:
                _require_window(doc, objective_node, f"spec.objectives[{index}].ratioMetrics.{role}", metric.query)
        if period is None:
            continue
        # Sloth names each objective `<name>-<index>` (its id `<service>-<name>-<index>`); we do the same
        # so recorded series and dashboards line up with Sloth's.
        out.append(SloSpec(
            service=slo.spec.service, name=f"{slo.metadata.name}-{index}", objective=objective.target,
            sli=_events(metrics.total.query, metrics.good.query if metrics.good else None,
                        metrics.bad.query if metrics.bad else None),
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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if self.type is not None and self.type.lower() != "prometheus":
            problems.append(("type", f"only Prometheus metric sources can be evaluated, got {self.type!r}"))
        if not isinstance(self.spec.get("query"), str) or not self.spec["query"].strip():
            problems.append(("spec", "needs a PromQL 'query'"))
        return problems


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
    thresholdMetric: Any = None
    description: str = ""

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.ratioMetric is None:
            return [(None, "needs 'ratioMetric' (threshold metrics cannot be evaluated as an event ratio)")]
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
        problems = _budgeting_problem(self.budgetingMethod)
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
        sli = _v1_sli(doc, objective_node, where, indicator.spec.ratioMetric)
        if sli is None or period is None:
            continue
        out.append(SloSpec(
            service=slo.spec.service, name=f"{slo.metadata.name}-{index}" if several else slo.metadata.name,
            objective=objective.ratio, sli=sli, period=period, description=slo.spec.description,
            labels=_labels(slo.metadata), spec_format="openslo/v1", source=f"{doc.path}:{node_line(objective_node)}"))
    return out


def _v1_sli(doc: YamlFile, node: yaml.Node, where: str, ratio: RatioMetric) -> EventsSli | RawSli | None:
    queries = {role: getattr(ratio, role).metricSource.query for role in ("good", "bad", "total", "raw")
               if getattr(ratio, role) is not None}
    for role, query in queries.items():
        _require_window(doc, node, f"{where}: ratioMetric.{role}", query)
    if ratio.raw is not None:
        raw = queries["raw"].strip()
        return RawSli(raw if ratio.rawType == "failure" else f"1 - ({raw})")
    return _events(queries["total"], queries.get("good"), queries.get("bad"))


def specs_from_document(doc: YamlFile, node: yaml.Node, api_version: str, default_period: timedelta,
                        indicators: dict[str, Indicator]) -> list[SloSpec]:
    """Build the SloSpecs of one OpenSLO `kind: SLO` document; problems are recorded on `doc`."""
    if api_version == V1ALPHA:
        return _v1alpha_specs(doc, node, default_period)
    return _v1_specs(doc, node, default_period, indicators)
