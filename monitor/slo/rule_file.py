"""Generate a Prometheus rule file for the SLOs: recording rules per window, Sloth's metadata, and alerts.

With the file loaded, Prometheus keeps each SLO's error ratio (and event rate) per
window as a series, and the daemon reads every SLO's value for a window with one
query (`evaluate_slos(..., mode=RECORDED)`). The series use Sloth's names, labels
and expressions (slok/sloth `pkg/common/conventions/slo.go`,
`internal/plugin/slo/core/{sli,metadata,alert}_rules_v1/plugin.go`) so Sloth's
Grafana dashboards ("SLO / Detail", "High level Sloth SLOs") work on them:

- `slo:sli_error:ratio_rate<window>{sloth_id, sloth_service, sloth_slo, sloth_window}`;
- `slo:objective:ratio`, `slo:error_budget:ratio`, `slo:time_period:days`,
  `slo:current_burn_rate:ratio` (the 5m window), `slo:period_burn_rate:ratio`,
  `slo:period_error_budget_remaining:ratio` and `sloth_slo_info`;
- the spec's labels (owner, tier, ...) and `--extra-labels` on every rule.

Unlike Sloth, the period's ratio is recorded from the counters over the whole
period, not as the mean of 5m ratios (that mean is not traffic-weighted: slok/sloth
issues 332, 618). `slo:sli_total:rate<window>` (the event rate) is ours: the daemon
needs event counts for its minimum-events rule.

Grouped SLOs (`SloSpec.group_by`) aggregate their SLI `sum by (<group labels>)`, so
every recorded series, metadata series that derives from them, and alert carries
the group's labels: each group is its own SLO instance in Prometheus.

Calendar periods (Pyrra-style "this month"; Sloth has none) change length at every
evaluation. Their metadata and alert thresholds use the calendar period's real
length, computed in PromQL at evaluation time (`days_in_month()`, leap years) for
periods that start on a calendar boundary; the period-so-far ratio is recorded from
a subquery over the period's longest length, keeping only the steps since the
period started (see `_calendar_period_ratio`).

One group per window keeps each group's evaluation short and lets Prometheus
run the windows in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Mapping

import yaml

from monitor import __version__
from monitor.slo.burn_rate import PAGE_CONDITIONS, TICKET_CONDITIONS, WINDOWS, BurnRateCondition
from monitor.slo.evaluate import DEFAULT_MIN_EVENTS, ERROR_RATIO_RECORD, TOTAL_RATE_RECORD, sli_queries
from monitor.slo.spec import AlertSettings, CalendarPeriod, EventsSli, SloSpec
from monitor.sources.prometheus import label_matcher

# Sloth's metadata series (slok/sloth pkg/common/conventions/slo.go).
OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
TIME_PERIOD_DAYS_RECORD = "slo:time_period:days"
CURRENT_BURN_RATE_RECORD = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE_RECORD = "slo:period_burn_rate:ratio"
PERIOD_BUDGET_REMAINING_RECORD = "slo:period_error_budget_remaining:ratio"
INFO_RECORD = "sloth_slo_info"
ID_LABELS = ("sloth_id", "sloth_service", "sloth_slo")
# Labels the generator sets itself; --extra-labels may not name them.
RESERVED_LABELS = frozenset({*ID_LABELS, "sloth_window", "sloth_severity", "sloth_version", "sloth_mode",
                             "sloth_spec", "sloth_objective"})

# Sloth's `sloth_mode` values: a plain rule file, or a Kubernetes PrometheusRule.
MODE_RULES = "cli-gen-prom"
MODE_PROMETHEUS_RULE = "cli-gen-k8s"

# Nominal calendar lengths, only for calendar periods whose real length PromQL
# cannot follow (several months, or not starting on a month boundary).
_NOMINAL_DAYS = {"d": 1, "w": 7, "M": 30, "Q": 91, "y": 365}
# 1 in a leap year, else 0, for the year of the evaluation instant.
_LEAP = "((year() % 4 == bool 0) - (year() % 100 == bool 0) + (year() % 400 == bool 0))"
# Subquery step for a calendar period so far: the period's start is on a whole hour.
_CALENDAR_STEP = timedelta(hours=1)


@dataclass(frozen=True)
class RuleOptions:
    """What `monitor slo rules` generates, besides the specs."""

    min_events: float = DEFAULT_MIN_EVENTS
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    recordings: bool = True
    alerts: bool = True
    mode: str = MODE_RULES


def rule_groups(specs: list[SloSpec], min_events: float = DEFAULT_MIN_EVENTS, *,
                options: RuleOptions | None = None) -> list[dict]:
    """The rule file's groups: recording rules per window, Sloth's metadata, then alerts."""
    options = options or RuleOptions(min_events=min_events)
    groups = []
    if options.recordings:
        windows: dict[str, None] = dict.fromkeys(WINDOWS)
        for spec in specs:
            windows.setdefault(spec.period_key)
        for key in windows:
            rules = []
            for spec in specs:
                if key in WINDOWS or spec.period_key == key:
                    rules += _recording_rules(spec, key, options)
            if rules:
                groups.append({"name": f"monitor-slo-sli-{key}", "rules": rules})
        meta = [rule for spec in specs for rule in _metadata_rules(spec, options)]
        if meta:
            groups.append({"name": "monitor-slo-meta", "rules": meta})
    if options.alerts:
        alerts = [rule for spec in specs for rule in _alert_rules(spec, options)]
        if alerts:
            groups.append({"name": "monitor-slo-alerts", "rules": alerts})
    return groups


def write_rule_file(specs: list[SloSpec], out: IO[str], min_events: float = DEFAULT_MIN_EVENTS, *,
                    options: RuleOptions | None = None) -> None:
    """Write the rule file as YAML to a stream."""
    out.write(rule_file_text(specs, options or RuleOptions(min_events=min_events)))


def rule_file_text(specs: list[SloSpec], options: RuleOptions) -> str:
    """The rule file (`groups:`) as YAML text."""
    return _HEADER + _dump({"groups": rule_groups(specs, options=options)})


def prometheus_rule_text(specs: list[SloSpec], options: RuleOptions, *, name: str, namespace: str | None = None,
                         labels: Mapping[str, str] | None = None) -> str:
    """The rules as a `monitoring.coreos.com/v1` PrometheusRule (prometheus-operator) as YAML text."""
    metadata: dict = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
           "spec": {"groups": rule_groups(specs, options=options)}}
    return _HEADER + _dump(doc)


_HEADER = "# Generated by `monitor slo rules` from the SLO specs; regenerate rather than edit.\n"


def _dump(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=1_000_000, allow_unicode=True)


def _id_labels(spec: SloSpec) -> dict[str, str]:
    return {"sloth_id": spec.id, "sloth_service": spec.service, "sloth_slo": spec.name}


def _labels(spec: SloSpec, options: RuleOptions, **more: str) -> dict[str, str]:
    """Labels of every recorded series: extra labels, the spec's labels, then Sloth's ids (which win)."""
    return {**options.extra_labels, **spec.labels, **_id_labels(spec), **more}


def _selector(spec: SloSpec) -> str:
    return "{" + ", ".join(label_matcher(k, v) for k, v in _id_labels(spec).items()) + "}"


def _recording_rules(spec: SloSpec, key: str, options: RuleOptions) -> list[dict]:
    labels = _labels(spec, options, sloth_window=key)
    if isinstance(spec.period, CalendarPeriod) and key == spec.period_key:
        exprs = _calendar_period_exprs(spec)
        ratio = exprs["ratio"]
    else:
        exprs = sli_queries(spec, key)
        # 0/0 (no events) records NaN, which reads back as "no data".
        ratio = exprs["ratio"] if "ratio" in exprs else f"({exprs['bad']})\n/\n({exprs['total']})"
    rules = [{"record": ERROR_RATIO_RECORD.format(window=key), "expr": ratio, "labels": labels}]
    if "total" in exprs:
        rules.append({"record": TOTAL_RATE_RECORD.format(window=key), "expr": exprs["total"], "labels": labels})
    return rules


def _calendar_period_exprs(spec: SloSpec) -> dict[str, str]:
    """Mean rates (or the mean raw ratio) over the calendar period so far, from hourly steps.

    PromQL ranges are constants, and "this month so far" is not. So the rule takes
    a subquery of hourly rates over the period's longest length and keeps the steps
    after the period's start: a step `s` belongs to the current period when the
    period containing `s` has the same start as the period containing the rule's
    evaluation instant (`@ end()`; a rule evaluation is an instant query, so that
    is the evaluation time). The mean of hourly rates over those steps is the rate
    over the period so far, up to the current partial hour.
    """
    assert isinstance(spec.period, CalendarPeriod)
    hours = int(_longest(spec.period) / _CALENDAR_STEP)
    # A step's rate covers the hour before it: the step belongs to the period its hour started in.
    start_at_step = _period_start(spec.period, "vector(time() - 3600)")
    start_now = _period_start(spec.period, "last_over_time(vector(time())[1m:1m] @ end())")
    member = f"(({start_at_step}) == bool on() ({start_now}))"
    exprs = sli_queries(spec, "1h")

    def total_over_period(expr: str) -> str:
        return f"sum_over_time((({expr}) * on() group_left() {member})[{hours}h:1h])"

    def steps_with_data(expr: str) -> str:
        return f"sum_over_time((({expr}) * 0 + on() group_left() {member})[{hours}h:1h])"

    if "ratio" in exprs:
        # A raw ratio has no weights: the mean of the hourly ratios the period has so far.
        return {"ratio": f"{total_over_period(exprs['ratio'])}\n/\n{steps_with_data(exprs['ratio'])}"}
    # Counted events over the period so far (a ratio of sums), and the event rate over the
    # hours elapsed (hours without a series had no events).
    elapsed_hours = f"on() group_left() sum_over_time({member}[{hours}h:1h])"
    return {"ratio": f"{total_over_period(exprs['bad'])}\n/\n{total_over_period(exprs['total'])}",
            "total": f"{total_over_period(exprs['total'])}\n/ {elapsed_hours}"}


def _longest(period: CalendarPeriod) -> timedelta:
    days = {"d": 1, "w": 7, "M": 31, "Q": 92, "y": 366}[period.unit] * period.count
    return timedelta(days=days)


def _period_start(period: CalendarPeriod, at: str) -> str:
    """PromQL that is equal for two instants exactly when they are in the same calendar period.

    Days and weeks: the period's start (Unix time). Months, quarters, years: the index
    of its first month. In UTC: a zone's period boundaries are taken at UTC's.
    """
    # PromQL's % keeps the dividend's sign (Go's math.Mod), so the anchor is moved back by
    # whole periods to the first one after the epoch: every difference is then positive.
    if period.unit in ("d", "w"):
        length = (7 if period.unit == "w" else 1) * period.count * 86400
        anchor = period.anchor.timestamp() % length
        return f"({at} - ((({at}) - {anchor:.0f}) % {length}))"
    # Months: the index of the period's first month (months since year 0), enough to compare periods.
    months = period.count * {"M": 1, "Q": 3, "y": 12}[period.unit]
    offset = (period.anchor.year * 12 + period.anchor.month - 1) % months
    index = f"(year({at}) * 12 + month({at}) - 1 - {offset})"
    return f"({index} - ({index} % {months}))"


def _period_days(spec: SloSpec) -> str:
    """PromQL (a number or a one-element vector expression) for the period's length in days now."""
    period = spec.period
    if not isinstance(period, CalendarPeriod):
        return f"{period / timedelta(days=1):.12g}"
    if period.unit in ("d", "w"):
        return f"{period.count * (7 if period.unit == 'w' else 1):g}"
    anchor = period.anchor
    on_boundary = anchor.day == 1 and (anchor.hour, anchor.minute, anchor.second) == (0, 0, 0) and period.count == 1
    if on_boundary and period.unit == "M":
        return "days_in_month()"
    if on_boundary and period.unit == "Q" and anchor.month in (1, 4, 7, 10):
        # Q1 is 90 days (91 in a leap year), Q2 91, Q3 and Q4 92.
        return f"(90 + {_LEAP} * (month() <= bool 3) + (month() > bool 3) + (month() > bool 6))"
    if on_boundary and period.unit == "y" and anchor.month == 1:
        return f"(365 + {_LEAP})"
    return f"{period.count * _NOMINAL_DAYS[period.unit]:g}"


def _is_expression(days: str) -> bool:
    try:
        float(days)
    except ValueError:
        return True
    return False


def _metadata_rules(spec: SloSpec, options: RuleOptions) -> list[dict]:
    """Sloth's metadata recording rules (internal/plugin/slo/core/metadata_rules_v1/plugin.go)."""
    labels = _labels(spec, options)
    selector = _selector(spec)
    days = _period_days(spec)
    objective = repr(spec.objective)  # the shortest exact text, as Go's %g writes it
    return [
        {"record": OBJECTIVE_RECORD, "expr": f"vector({objective})", "labels": labels},
        {"record": ERROR_BUDGET_RECORD, "expr": f"vector(1-{objective})", "labels": labels},
        {"record": TIME_PERIOD_DAYS_RECORD, "expr": days if _is_expression(days) else f"vector({days})",
         "labels": labels},
        {"record": CURRENT_BURN_RATE_RECORD, "expr": _burn_rate_expr("5m", selector), "labels": labels},
        {"record": PERIOD_BURN_RATE_RECORD, "expr": _burn_rate_expr(spec.period_key, selector), "labels": labels},
        {"record": PERIOD_BUDGET_REMAINING_RECORD, "expr": f"1 - {PERIOD_BURN_RATE_RECORD}{selector}",
         "labels": labels},
        {"record": INFO_RECORD, "expr": "vector(1)",
         "labels": {**labels, "sloth_version": f"monitor-{__version__}", "sloth_mode": options.mode,
                    "sloth_spec": spec.spec_format or "prometheus/v1",
                    "sloth_objective": f"{spec.objective * 100:.10g}"}},
    ]


def _burn_rate_expr(window_key: str, selector: str) -> str:
    # Sloth's burnRateRecordingExprTpl: the group_left keeps a grouped SLO's group labels.
    return (f"{ERROR_RATIO_RECORD.format(window=window_key)}{selector}\n"
            f"/ on({', '.join(('sloth_id', 'sloth_slo', 'sloth_service'))}) group_left\n"
            f"{ERROR_BUDGET_RECORD}{selector}\n")


def _threshold(spec: SloSpec, condition: BurnRateCondition) -> str:
    """The error ratio above which the condition's budget share goes within its long window."""
    budget = f"{spec.error_budget:.10g}"
    days = _period_days(spec)
    if _is_expression(days):
        # A calendar length known only at evaluation time: share x period / long window x budget.
        hours = WINDOWS[condition.long] / timedelta(hours=1)
        return f"({condition.budget_share:g} * 24 * scalar({days}) / {hours:g} * {budget})"
    return f"({condition.threshold(timedelta(days=float(days))):.10g} * {budget})"


def _burning(spec: SloSpec, key: str, threshold: str, min_events: float) -> str:
    selector = _selector(spec)
    clause = f"max({ERROR_RATIO_RECORD.format(window=key)}{selector} > {threshold}) without (sloth_window)"
    if isinstance(spec.sli, EventsSli) and min_events > 0:
        # The same minimum the daemon applies: too few events say nothing.
        seconds = WINDOWS[key].total_seconds()
        clause += (f"\n  and\n  max({TOTAL_RATE_RECORD.format(window=key)}{selector} * {seconds:g} >= "
                   f"{min_events:g}) without (sloth_window)")
    return clause


def _condition_expr(spec: SloSpec, conditions: tuple[BurnRateCondition, ...], min_events: float) -> str:
    parts = []
    for condition in conditions:
        threshold = _threshold(spec, condition)
        parts.append(f"(\n  {_burning(spec, condition.long, threshold, min_events)}\n  and\n"
                     f"  {_burning(spec, condition.short, threshold, min_events)}\n)")
    return "\nor\n".join(parts)


def _alert_name(spec: SloSpec) -> str:
    if spec.alert_name:
        return spec.alert_name
    return "".join(part[:1].upper() + part[1:] for part in spec.id.replace("_", "-").split("-") if part) + "SLO"


def _alert_rules(spec: SloSpec, options: RuleOptions) -> list[dict]:
    rules = []
    for severity, conditions, settings, what in (
            ("page", PAGE_CONDITIONS, spec.page_alert, "error budget burn rate is too fast"),
            ("ticket", TICKET_CONDITIONS, spec.ticket_alert, "error budget burn rate is too high")):
        if settings.disabled:
            continue
        rule: dict = {"alert": _alert_name(spec), "expr": _condition_expr(spec, conditions, options.min_events)}
        if settings.for_:
            rule["for"] = settings.for_
        rule["labels"] = {**options.extra_labels, **spec.labels, **spec.alert_labels, **settings.labels,
                          "sloth_severity": severity}
        rule["annotations"] = _annotations(spec, settings, what)
        rules.append(rule)
    return rules


def _annotations(spec: SloSpec, settings: AlertSettings, what: str) -> dict[str, str]:
    return {"title": "(" + "{{$labels.sloth_severity}}" + f") {spec.service} {spec.name} SLO {what}",
            "summary": f"{{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO {what}",
            **spec.alert_annotations, **settings.annotations}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line PromQL as `|` blocks, no YAML anchors: the file should read like a hand-written one."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockDumper.add_representer(str, _str_presenter)
