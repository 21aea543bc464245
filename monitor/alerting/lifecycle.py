"""Each alert's state machine: inactive -> pending -> firing -> resolved, and no-data.

An alert is one rule's instance, identified by its labels (the rule's labels over
the instance's, plus `alertname`), as in Prometheus. Per evaluation:

- condition TRUE: inactive/resolved -> pending (since now); pending -> firing once
  it has held for the rule's `for`; a `for` of 0 fires at once.
- condition FALSE: pending -> inactive; firing -> resolved, unless the rule has
  `keep_firing_for`, which holds it firing until the condition stays false that long.
- condition UNKNOWN (no data: NaN, empty, a series that vanished; never 0): -> no_data,
  keeping pending-since and fired-at, so a gap in the data neither resolves an
  alert nor restarts its `for` clock. When data returns, a no_data alert that had
  fired goes back to firing, one that was pending goes back to pending with its
  original start.

No data is not silence: once an alert has had no data for its rule's `no_data_for`,
the rule's `no_data` policy decides (Grafana's model):

- `alert` (the default): a no-data alert fires beside it, with the same labels plus
  `alertstate="nodata"` and a summary saying since when; it resolves when data returns.
- `ok`: no data counts as the condition not holding: a firing alert resolves, a
  pending one ends (and an alert that was not active stays quiet).
- `keep`: the alert stays in no_data, as it was, until data returns.

Pure: takes the previous states, this cycle's outcomes and `at`, returns the new
states and the transitions. Persisting them is `repository.py`'s job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Mapping, Sequence

from monitor.alerting.condition import Instance, Truth
from monitor.alerting.rule_spec import NoDataPolicy, Rule
from monitor.alerting.templates import render
from monitor.durations import format_duration
from monitor.timeutil import iso_z

# The label that tells a no-data alert from the alert it stands for (Grafana's `alertstate`).
NO_DATA_LABEL = "alertstate"
NO_DATA_VALUE = "nodata"


class AlertState(Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    alertname: str
    rule: str                 # "group/alert", for finding the rule again
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    last_evaluated_at: datetime
    active_since: datetime | None = None   # when the condition started holding (pending since)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    false_since: datetime | None = None    # keep_firing_for: when the condition stopped holding
    value: float | None = None
    evidence: Mapping[str, float | None] = field(default_factory=dict)
    # Set by the notification policy each cycle.
    silenced_by: tuple[str, ...] = ()
    inhibited: bool = False
    rollback_requested_at: datetime | None = None
    # When its condition last went from having data to having none (set while no_data).
    no_data_since: datetime | None = None

    @property
    def is_no_data_alert(self) -> bool:
        """The alert that says another one has had no data for too long (`no_data: alert`)."""
        return self.labels.get(NO_DATA_LABEL) == NO_DATA_VALUE

    @property
    def has_fired(self) -> bool:
        """Fired in its current episode (a no_data alert may have)."""
        return self.fired_at is not None and self.resolved_at is None

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by) or self.inhibited


@dataclass(frozen=True)
class Transition:
    fingerprint: str
    alertname: str
    labels: Mapping[str, str]
    from_state: AlertState
    to_state: AlertState
    at: datetime
    value: float | None


def rule_key(rule: Rule) -> str:
    return f"{rule.group}/{rule.alert}"


def alert_labels(rule: Rule, instance_labels: Mapping[str, str]) -> dict[str, str]:
    """An instance's labels as the alert carries them (rule labels win, as in Prometheus)."""
    labels = {k: v for k, v in instance_labels.items() if k != "__name__"}
    labels.update(rule.labels)
    labels["alertname"] = rule.alert
    return labels


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id for a label set."""
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def advance(previous: Mapping[str, Alert], rules: Sequence[Rule],
            outcomes: Mapping[str, Sequence[Instance]], at: datetime,
            absent_means: Mapping[str, Truth] | None = None) -> tuple[dict[str, Alert], list[Transition]]:
    """Step every alert one evaluation at `at`.

    `outcomes` maps a rule's alert name to its instances this cycle; a rule missing
    from it was not evaluated, and its alerts are left exactly as they were.
    `absent_means` says what a tracked alert with no instance this cycle means, per
    rule: FALSE for PromQL rules (a filtered vector drops what no longer matches),
    UNKNOWN for signal rules (a signal that stops being produced is no data).
    """
    absent_means = absent_means or {}
    current: dict[str, Alert] = dict(previous)
    transitions: list[Transition] = []
    for rule in rules:
        if rule.alert not in outcomes:
            continue
        seen: set[str] = set()
        stepped: dict[str, tuple[dict[str, str], Alert | None]] = {}
        for instance in outcomes[rule.alert]:
            labels = alert_labels(rule, instance.labels)
            fp = fingerprint(labels)
            if fp in seen:
                continue
            seen.add(fp)
            before = previous.get(fp)
            after = _step(rule, before, labels, fp, instance.truth, instance.value, instance.evidence, at)
            _record(current, transitions, before, after, fp, labels, at)
            stepped[fp] = (labels, after)
        absent_truth = absent_means.get(rule.alert, Truth.UNKNOWN)
        for fp, before in previous.items():
            if before.alertname != rule.alert or fp in seen or before.is_no_data_alert:
                continue
            if before.state in (AlertState.INACTIVE, AlertState.RESOLVED) and absent_truth is not Truth.TRUE:
                continue
            after = _step(rule, before, dict(before.labels), fp, absent_truth, None, {}, at)
            _record(current, transitions, before, after, fp, dict(before.labels), at)
            stepped[fp] = (dict(before.labels), after)
        if rule.no_data is NoDataPolicy.ALERT:
            _advance_no_data_alerts(rule, previous, current, transitions, stepped, at)
    return current, transitions


def _advance_no_data_alerts(rule: Rule, previous: Mapping[str, Alert], current: dict[str, Alert],
                            transitions: list[Transition], stepped: Mapping[str, tuple[dict[str, str], Alert | None]],
                            at: datetime) -> None:
    """Fire a no-data alert for each of the rule's alerts that has had no data for `no_data_for`,
    and resolve the ones whose alert has data again (or is no longer tracked)."""
    handled: set[str] = set()
    for labels, after in stepped.values():
        since = after.no_data_since if after is not None and after.state is AlertState.NO_DATA else None
        silent_since = since if since is not None and at - since >= rule.no_data_for else None
        no_data_labels = {**labels, NO_DATA_LABEL: NO_DATA_VALUE}
        fp = fingerprint(no_data_labels)
        handled.add(fp)
        before = previous.get(fp)
        _record(current, transitions, before, _no_data_step(rule, before, no_data_labels, fp, silent_since, at),
                fp, no_data_labels, at)
    for fp, before in previous.items():
        if before.alertname == rule.alert and before.is_no_data_alert and fp not in handled:
            _record(current, transitions, before, _no_data_step(rule, before, dict(before.labels), fp, None, at),
                    fp, dict(before.labels), at)


def _no_data_step(rule: Rule, before: Alert | None, labels: dict[str, str], fp: str,
                  silent_since: datetime | None, at: datetime) -> Alert | None:
    """A no-data alert after one evaluation: firing while its alert has had no data since
    `silent_since` (None: it has data, or not for long enough)."""
    if silent_since is not None:
        if before is not None and before.state is AlertState.FIRING:
            return replace(before, last_evaluated_at=at)
        return Alert(fp, rule.alert, rule_key(rule), labels, _no_data_annotations(rule, labels, silent_since),
                     AlertState.FIRING, at, active_since=silent_since, fired_at=at)
    if before is None:
        return None
    if before.state is AlertState.FIRING:
        return replace(before, state=AlertState.RESOLVED, resolved_at=at, last_evaluated_at=at)
    return replace(before, last_evaluated_at=at)


def _no_data_annotations(rule: Rule, labels: Mapping[str, str], since: datetime) -> dict[str, str]:
    """The rule's own annotations (a runbook link...), with a summary and description about the silence."""
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                      if v and k not in ("alertname", "severity", NO_DATA_LABEL))  # an empty label is no label
    annotations = {key: render(template, labels, None, {}) for key, template in rule.annotations.items()
                   if key not in ("summary", "description")}
    annotations["summary"] = f"{rule.alert}{' for ' + shown if shown else ''}: no data since {iso_z(since)}"
    annotations["description"] = (
        f"The condition of {rule.alert} has had no data (its series are absent or NaN) since {iso_z(since)}, "
        f"for more than its no_data_for of {format_duration(rule.no_data_for)}. This alert resolves when data "
        f"returns; set the rule's no_data to ok or keep to change this.")
    return annotations


def _record(current: dict[str, Alert], transitions: list[Transition], before: Alert | None,
            after: Alert | None, fp: str, labels: Mapping[str, str], at: datetime) -> None:
    from_state = before.state if before else AlertState.INACTIVE
    to_state = after.state if after else AlertState.INACTIVE
    if after is None:
        current.pop(fp, None)
    else:
        current[fp] = after
    if from_state is not to_state:
        transitions.append(Transition(fp, labels["alertname"], dict(labels), from_state, to_state, at,
                                      after.value if after else None))


def _step(rule: Rule, before: Alert | None, labels: dict[str, str], fp: str, truth: Truth,
          value: float | None, evidence: Mapping[str, float | None], at: datetime) -> Alert | None:
    """The alert after one evaluation; None when it is (or becomes) inactive with nothing to keep."""
    state = before.state if before else AlertState.INACTIVE
    if truth is Truth.UNKNOWN:
        if rule.no_data is NoDataPolicy.OK:
            if before is None or state in (AlertState.INACTIVE, AlertState.RESOLVED):
                return _step(rule, before, labels, fp, Truth.FALSE, None, {}, at)  # quiet, and no data is ok
            since = (before.no_data_since or at) if state is AlertState.NO_DATA else at
            if at - since >= rule.no_data_for:
                # As a false condition since the data stopped (keep_firing_for counts from then too).
                after = _step(rule, replace(before, state=AlertState.FIRING if before.has_fired else state,
                                            false_since=since), labels, fp, Truth.FALSE, None, {}, at)
                if after is not None and after.state is AlertState.FIRING:  # held by keep_firing_for
                    return replace(after, state=AlertState.NO_DATA, no_data_since=since)
                return after
        if before is None or state is AlertState.RESOLVED:
            # Nothing was happening: record that there is no data, with no history.
            return Alert(fp, rule.alert, rule_key(rule), labels, _annotations(rule, labels, None, {}),
                         AlertState.NO_DATA, at, value=None, no_data_since=at)
        since = (before.no_data_since or at) if state is AlertState.NO_DATA else at
        return replace(before, state=AlertState.NO_DATA, last_evaluated_at=at, value=None, no_data_since=since)

    if truth is Truth.TRUE:
        annotations = _annotations(rule, labels, value, evidence)
        if before is None or state in (AlertState.INACTIVE, AlertState.RESOLVED) or (
                state is AlertState.NO_DATA and before.active_since is None):
            alert = Alert(fp, rule.alert, rule_key(rule), labels, annotations, AlertState.PENDING, at,
                          active_since=at, value=value, evidence=dict(evidence))
        else:
            alert = replace(before, labels=labels, annotations=annotations, last_evaluated_at=at, value=value,
                            evidence=dict(evidence), false_since=None, no_data_since=None,
                            state=AlertState.FIRING if before.has_fired else AlertState.PENDING)
        if alert.state is AlertState.PENDING and at - alert.active_since >= rule.for_duration:
            alert = replace(alert, state=AlertState.FIRING, fired_at=at)
        return alert

    # FALSE
    if before is None or state is AlertState.INACTIVE:
        return None
    if state is AlertState.RESOLVED:
        return replace(before, last_evaluated_at=at)
    if not before.has_fired:
        return None  # pending (or no_data before firing) -> inactive
    false_since = before.false_since or at
    if state is AlertState.FIRING and at - false_since < rule.keep_firing_for:
        return replace(before, last_evaluated_at=at, false_since=false_since, value=value, no_data_since=None)
    return replace(before, state=AlertState.RESOLVED, resolved_at=at, last_evaluated_at=at,
                   false_since=None, value=value, no_data_since=None)


def _annotations(rule: Rule, labels: Mapping[str, str], value: float | None,
                 evidence: Mapping[str, float | None]) -> dict[str, str]:
    return {key: render(template, labels, value, evidence) for key, template in rule.annotations.items()}
