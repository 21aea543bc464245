"""Pyrra's `pyrra.dev/v1alpha1` `ServiceLevelObjective`, converted to `SloSpec`.

Field names and meanings follow Pyrra's `kubernetes/api/v1alpha1/servicelevelobjective_types.go`
(`ServiceLevelObjectiveSpec`, `validate()`, `Internal()`); the queries follow the burn-rate
expressions of Pyrra's `slo/rules.go` (`Objective.Burnrate`), so an SLO means what it meant
under Pyrra:

- `ratio`: `errors` and `total` are counter selectors; bad and total events are their
  `rate(...[window])`.
- `latency`: `success` is a histogram bucket selector with a numeric `le` matcher, `total`
  the histogram's `_count`; bad = total - success.
- `latencyNative`: a native histogram and a `latency` duration; good is
  `histogram_fraction(0, latency, ...)` of `histogram_count(...)`.
- `bool_gauge`: a 0/1 gauge (`probe_success`); the error ratio is the share of samples
  that are 0: `(count_over_time - sum_over_time) / count_over_time`. Samples are not
  per-second events, so this one is a raw ratio (no event counts, no minimum).

`target` is a percent string ("99.5"), `window` a Prometheus duration, and `grouping`
becomes `SloSpec.group_by` (one SLO instance per label value set). Pyrra has no service:
the SLO's service is its namespace (Kubernetes' "default" when none is given), its name
`metadata.name`, so its id is `<namespace>-<name>`. Labels are `namespace` and Pyrra's
propagated `pyrra.dev/<label>` labels (`slo.PropagationLabelsPrefix`), prefix removed.
`alerting` and the rule-output settings change Pyrra's generated rules, not the SLO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import promql_parser
import yaml

from monitor.durations import parse_duration
from monitor.promql_selectors import is_label_name
from monitor.slo.counter_query import WINDOW, NotACounterSelector, selector
from monitor.slo.spec import EventsSli, RawSli, SloSpec
from monitor.typed_yaml import INVALID, YamlFile, mapping_get, node_line

API_VERSION = "pyrra.dev/v1alpha1"
KIND = "ServiceLevelObjective"
# Pyrra's `slo.PropagationLabelsPrefix`: metadata labels with it are copied onto the SLO's series.
PROPAGATION_PREFIX = "pyrra.dev/"
_INDICATOR_KINDS = ("ratio", "latency", "latencyNative", "bool_gauge")


def _grouping_problems(grouping: list[str]) -> list[tuple[str | None, str]]:
    # Written into `sum by (...)`: anything but a label name would rewrite the query.
    bad = [name for name in grouping if not is_label_name(name)]
    if bad:
        return [("grouping", f"{bad[0]!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    if len(set(grouping)) != len(grouping):
        return [("grouping", "names a label twice")]
    return []


@dataclass(frozen=True)
class Query:
    metric: str

    def yaml_check(self) -> list[tuple[str | None, str]]:
        try:
            selector(self.metric)
        except NotACounterSelector as exc:
            return [("metric", str(exc))]
        return []


@dataclass(frozen=True)
class RatioIndicator:
    errors: Query
    total: Query
    grouping: list[str] = field(default_factory=list)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.errors.metric.strip() == self.total.metric.strip():
            return [("errors", "must not be the same metric as total")]
        return _grouping_problems(self.grouping)


@dataclass(frozen=True)
class LatencyIndicator:
    success: Query
    total: Query
    grouping: list[str] = field(default_factory=list)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        # Pyrra's validate(): the success selector carries an `le` matcher with a float value.
        le = _le_matcher(selector(self.success.metric))
        if le is None:
            return [("success", "the success metric must have an le label matcher (le=\"0.5\"): "
                                "the histogram bucket counting fast enough requests")]
        try:
            float(le)
        except ValueError:
            return [("success", f"the le matcher must be a number, got {le!r}")]
        return _grouping_problems(self.grouping)


@dataclass(frozen=True)
class NativeLatencyIndicator:
    total: Query
    latency: timedelta
    grouping: list[str] = field(default_factory=list)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.latency <= timedelta(0):
            return [("latency", "must be positive")]
        return _grouping_problems(self.grouping)


@dataclass(frozen=True)
class BoolGaugeIndicator:
    metric: str
    grouping: list[str] = field(default_factory=list)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return Query(self.metric).yaml_check() or _grouping_problems(self.grouping)


@dataclass(frozen=True)
class Indicator:
    ratio: RatioIndicator | None = None
    latency: LatencyIndicator | None = None
    latencyNative: NativeLatencyIndicator | None = None
    bool_gauge: BoolGaugeIndicator | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        given = [kind for kind in _INDICATOR_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            return [(None, f"needs exactly one indicator: {', '.join(_INDICATOR_KINDS)}"
                           + (f" (got {', '.join(given)})" if given else ""))]
        return []


@dataclass(frozen=True)
class Spec:
    target: str
    window: str
    indicator: Indicator
    description: str = ""
    alerting: Any = None
    partial_response_strategy: Any = None
    performanceOverAccuracy: Any = None
    ruleOutput: Any = None

    @property
    def objective(self) -> float:
        return round(float(self.target) / 100.0, 12)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        try:
            target = float(self.target)
        except ValueError:
            problems.append(("target", f"must be a percentage such as \"99.5\", got {self.target!r}"))
        else:
            # Below 1 is almost surely a ratio written the OpenSLO way (0.99 would allow 99.01%
            # errors): refused loudly, as monitor.slo.sloth does for Sloth's objective.
            if not 1 <= target < 100:
                problems.append(("target", f"must be a percentage from 1 to below 100 (e.g. \"99.5\"), got "
                                           f"{self.target!r}" + (" (a ratio? Pyrra targets are percentages)"
                                                                 if 0 < target < 1 else "")))
        try:
            if parse_duration(self.window) <= timedelta(0):
                problems.append(("window", "must be positive"))
        except ValueError as exc:
            problems.append(("window", str(exc)))
        return problems


@dataclass(frozen=True)
class Metadata:
    name: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # The rest of Kubernetes' ObjectMeta, as `kubectl get -o yaml` writes it: not the SLO.
    uid: Any = None
    resourceVersion: Any = None
    generation: Any = None
    creationTimestamp: Any = None
    generateName: Any = None
    finalizers: Any = None
    ownerReferences: Any = None
    managedFields: Any = None
    selfLink: Any = None
    deletionTimestamp: Any = None
    deletionGracePeriodSeconds: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return [("name", "must not be empty")] if not self.name.strip() else []


@dataclass(frozen=True)
class ServiceLevelObjective:
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: Spec
    status: Any = None


def specs_from_document(doc: YamlFile, node: yaml.Node) -> list[SloSpec]:
    """The SloSpec of one Pyrra `ServiceLevelObjective` document; problems are recorded on `doc`."""
    slo = doc.build(ServiceLevelObjective, node, "")
    if slo is INVALID:
        return []
    indicator = slo.spec.indicator
    sli, grouping = _sli(indicator)
    namespace = slo.metadata.namespace or "default"
    labels = {"namespace": namespace} if slo.metadata.namespace else {}
    labels.update({key.removeprefix(PROPAGATION_PREFIX): value for key, value in slo.metadata.labels.items()
                   if key.startswith(PROPAGATION_PREFIX)})
    indicator_node = mapping_get(mapping_get(node, "spec"), "indicator")
    return [SloSpec(
        service=namespace, name=slo.metadata.name, objective=slo.spec.objective, sli=sli,
        period=parse_duration(slo.spec.window), description=slo.spec.description, labels=labels,
        group_by=tuple(grouping), source=f"{doc.path}:{node_line(indicator_node or node)}")]


def _sli(indicator: Indicator) -> tuple[EventsSli | RawSli, list[str]]:
    if indicator.ratio is not None:
        ratio = indicator.ratio
        return (EventsSli(error_query=_rate(ratio.errors.metric), total_query=_rate(ratio.total.metric)),
                ratio.grouping)
    if indicator.latency is not None:
        latency = indicator.latency
        by = _by(latency.grouping)
        total, success = _rate(latency.total.metric), _rate(latency.success.metric)
        # bad = total - fast enough, each summed first so their label sets need not match (`le`).
        return (EventsSli(error_query=f"sum{by}({total}) - sum{by}({success})", total_query=total),
                latency.grouping)
    if indicator.latencyNative is not None:
        native = indicator.latencyNative
        histogram = f"sum{_by(native.grouping)}({_rate(native.total.metric)})"
        seconds = repr(native.latency.total_seconds())
        total = f"histogram_count({histogram})"
        return (EventsSli(error_query=f"{total} * (1 - histogram_fraction(0, {seconds}, {histogram}))",
                          total_query=total), native.grouping)
    gauge = indicator.bool_gauge
    assert gauge is not None  # Indicator.yaml_check: exactly one kind
    by, metric = _by(gauge.grouping), gauge.metric.strip()
    count = f"sum{by}(count_over_time({metric}[{WINDOW}]))"
    return RawSli(f"({count} - sum{by}(sum_over_time({metric}[{WINDOW}]))) / {count}"), gauge.grouping


def _rate(metric: str) -> str:
    return f"rate({metric.strip()}[{WINDOW}])"


def _by(grouping: list[str]) -> str:
    return f" by ({', '.join(grouping)}) " if grouping else ""


def _le_matcher(vector: promql_parser.VectorSelector) -> str | None:
    for matcher in vector.matchers.matchers:
        if matcher.name == "le":
            return str(matcher.value)
    return None


__all__ = ["API_VERSION", "KIND", "specs_from_document"]
