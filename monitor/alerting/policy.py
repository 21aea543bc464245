"""Who is told, and when: silences, inhibition, grouping, repeats, rollback requests.

Pure functions of (alert states, policy state, now), as Alertmanager's stages are:

- silences mute matching alerts (`silences.py`);
- inhibition mutes a target alert while a source alert with the same `equal`
  labels fires (default: an SLO's page mutes its ticket);
- routing sends each alert down the route tree (`routes.py`): it reaches every
  route `RouteTree.match` returns (more than one through `continue`);
- grouping batches a route's alerts by that route's `group_by` labels into one
  notification per group: a new group waits `group_wait`, later changes wait
  `group_interval`, and an unchanged group is re-sent every `repeat_interval`,
  each the route's own. Whether a group needs a
  notification is Alertmanager's `DedupStage.needsUpdate`: new firing alerts,
  newly resolved ones (with `send_resolved`), or the repeat interval elapsed;
- rollback requests go out per alert, not per group: a deployer acts on each.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Mapping, Sequence

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.alerting.lifecycle import Alert, AlertState, fingerprint
from monitor.alerting.notifications import Notification, NotificationKind, alert_event, iso
from monitor.alerting.routes import DEFAULT_RECEIVER, ROOT_ROUTE_ID, RouteMatch, RouteTree
from monitor.alerting.rule_spec import Rule
from monitor.alerting.silences import Silence, silencing
from monitor.alerting.versions import (ModelVersion, VersionKey, is_newer, last_known_good,
                                       mark_rollback_fired)
from monitor.config import AlertingConfig, InhibitRule, RouteConfig

ALL_LABELS = "..."


@dataclass(frozen=True)
class GroupState:
    """What the last notification of a group said (Alertmanager's notification log entry)."""

    group_key: str
    group_labels: Mapping[str, str]
    first_seen_at: datetime
    last_notified_at: datetime | None = None
    notified_firing: frozenset[str] = field(default_factory=frozenset)
    notified_resolved: frozenset[str] = field(default_factory=frozenset)
    # The route that grouped it, and the receiver it notified: a group's resolve goes
    # where its firing went, even after a reload moved or removed its route.
    route_id: str = ROOT_ROUTE_ID
    receiver: str = DEFAULT_RECEIVER


def apply_silences(alerts: Mapping[str, Alert], silences: Sequence[Silence], at: datetime) -> dict[str, Alert]:
    """Mark each pending or firing alert with the silences muting it now."""
    out = {}
    for fp, alert in alerts.items():
        active = alert.state in (AlertState.PENDING, AlertState.FIRING)
        ids = silencing(alert.labels, silences, at) if active else ()
        out[fp] = replace(alert, silenced_by=ids) if ids != alert.silenced_by else alert
    return out


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(k, "") == v for k, v in match.items())


def _equal_values(labels: Mapping[str, str], names: Sequence[str]) -> tuple[str, ...] | None:
    """An alert's values of an inhibit rule's `equal` labels; None when one is missing or empty.

    Unlike Alertmanager, a label missing from both is not "equal": otherwise the
    default page-mutes-ticket rule (equal: [slo_id]) would let any page, say a
    drift page, mute every ticket that has no SLO at all.
    """
    values = tuple(labels.get(k) or "" for k in names)
    return values if all(values) else None


def _inhibiting_sources(rule: InhibitRule, firing: Sequence[Alert]) -> dict[tuple[str, ...], set[str]]:
    """The firing alerts able to inhibit under `rule`, by their `equal` label values."""
    index: dict[tuple[str, ...], set[str]] = {}
    for source in firing:
        # A source that is also a target of this rule must not mute itself or its peers
        # (Alertmanager's rule).
        if _matches(source.labels, rule.source_match) and not _matches(source.labels, rule.target_match):
            values = _equal_values(source.labels, rule.equal)
            if values is not None:
                index.setdefault(values, set()).add(source.fingerprint)
    return index


def apply_inhibition(alerts: Mapping[str, Alert], rules: Sequence[InhibitRule]) -> dict[str, Alert]:
    """Mark alerts muted by a firing source alert that shares the rule's `equal` labels.

    Sources are indexed per rule by their `equal` values first, so a cycle costs
    alerts x rules lookups, not alerts x firing alerts comparisons.
    """
    firing = [a for a in alerts.values() if a.state is AlertState.FIRING]
    sources = [(rule, _inhibiting_sources(rule, firing)) for rule in rules]
    out = {}
    for fp, alert in alerts.items():
        inhibited = alert.state in (AlertState.PENDING, AlertState.FIRING) and any(
            _matches(alert.labels, rule.target_match)
            and bool(by_values.get(_equal_values(alert.labels, rule.equal), set()) - {fp})
            for rule, by_values in sources)
        out[fp] = replace(alert, inhibited=inhibited) if inhibited != alert.inhibited else alert
    return out


def group_labels_of(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    if ALL_LABELS in group_by:
        return dict(labels)
    return {k: labels.get(k, "") for k in group_by}


def group_key_of(group_labels: Mapping[str, str], route_id: str = ROOT_ROUTE_ID) -> str:
    """A group's id: the fingerprint of its group-by labels, as an alert's is of its labels.

    The root route's groups keep exactly that (so group state stored before routes
    existed carries on); a deeper route's key also covers its route id, as
    Alertmanager's group key does, so one alert set grouped on two routes is two groups.
    """
    if route_id == ROOT_ROUTE_ID:
        return fingerprint(group_labels)
    text = json.dumps([route_id, sorted(group_labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_group_notifications(alerts: Mapping[str, Alert], groups: Mapping[str, GroupState],
                             config: AlertingConfig, at: datetime, tree: RouteTree | None = None
                             ) -> tuple[list[Notification], dict[str, GroupState]]:
    """The group notifications due at `at`, and the groups' state after sending them.

    `tree` is the compiled `outputs.route` (default: one root route to the `default`
    receiver with `config`'s grouping, which is what a config without routes means).
    """
    tree = tree or RouteTree(RouteConfig(receiver=DEFAULT_RECEIVER), config)
    routes = tree.routes()
    members: dict[str, list[Alert]] = {}
    new_state: dict[str, GroupState] = {}
    for alert in alerts.values():
        for match in tree.match(alert.labels):
            labels = group_labels_of(alert.labels, match.group_by)
            key = group_key_of(labels, match.route_id)
            members.setdefault(key, []).append(alert)
            new_state.setdefault(key, GroupState(key, labels, first_seen_at=at, route_id=match.route_id,
                                                 receiver=match.receiver))

    notifications: list[Notification] = []
    new_groups: dict[str, GroupState] = {}
    for key in sorted(set(members) | set(groups)):
        in_group = members.get(key, [])
        firing = {a.fingerprint for a in in_group if a.state is AlertState.FIRING and not a.suppressed}
        state = groups.get(key)
        if state is None:
            if not firing:
                continue
            state = new_state[key]
        # A group whose route a reload removed keeps its receiver, with the root's timing.
        route = routes.get(state.route_id) or routes[ROOT_ROUTE_ID]
        # Resolved = told firing before, resolved (or gone) now, even if a reload routes
        # it elsewhere now. An alert that went silent, inhibited or no-data simply drops
        # out: none of those means "resolved".
        resolved = {fp for fp in state.notified_firing
                    if fp not in alerts or alerts[fp].state is AlertState.RESOLVED}
        due = (state.first_seen_at + route.group_wait if state.last_notified_at is None
               else state.last_notified_at + route.group_interval)
        kind = _needs_update(state, firing, resolved, route, config.send_resolved, at) if at >= due else None
        if kind is not None:
            shown = [alerts[fp] for fp in sorted(firing | resolved) if fp in alerts]
            shown.sort(key=lambda a: (a.state is not AlertState.FIRING, a.alertname, sorted(a.labels.items())))
            event = AlertGroupEvent(
                kind=kind.value, status="firing" if firing else "resolved", group_key=key,
                group_labels=dict(state.group_labels), alerts=tuple(alert_event(a) for a in shown),
                created_at=iso(at) or "", receiver=state.receiver, route_id=state.route_id)
            notifications.append(Notification(f"{kind.value}:{key}:{iso(at)}", kind, at, event))
            state = replace(state, last_notified_at=at, notified_firing=frozenset(firing),
                            notified_resolved=frozenset(resolved))
        if state.notified_firing or firing:
            new_groups[key] = state
    return notifications, new_groups


def _needs_update(state: GroupState, firing: set[str], resolved: set[str], route: RouteMatch,
                  send_resolved: bool, at: datetime) -> NotificationKind | None:
    if state.last_notified_at is None:
        return NotificationKind.FIRING if firing else None
    if not firing <= state.notified_firing:
        return NotificationKind.FIRING
    if not firing:
        # Everything the receivers were told about has ended, or has only gone quiet
        # (no data, silenced): tell them about what really resolved, and nothing else.
        return NotificationKind.RESOLVED if resolved - state.notified_resolved else None
    if send_resolved and not resolved <= state.notified_resolved:
        return NotificationKind.RESOLVED
    if at - state.last_notified_at >= route.repeat_interval:
        return NotificationKind.REPEAT
    return None


@dataclass(frozen=True)
class RollbackPlan:
    notifications: list[Notification]
    alerts: dict[str, Alert]
    versions: dict[VersionKey, ModelVersion]


def plan_rollbacks(alerts: Mapping[str, Alert], rules_by_name: Mapping[str, Rule],
                   versions: Mapping[VersionKey, ModelVersion], config: AlertingConfig,
                   at: datetime) -> RollbackPlan:
    """Rollback requests for firing rollback alerts on a version newer than the last-known-good,
    and cancellations for requested ones that resolved."""
    notifications: list[Notification] = []
    out = dict(alerts)
    versions = dict(versions)
    for fp, alert in sorted(alerts.items()):
        rule = rules_by_name.get(alert.alertname)
        if rule is None or not rule.requests_rollback or alert.is_no_data_alert:
            continue  # no data says nothing about a version: never a reason to roll it back
        model, version = alert.labels.get("model", ""), alert.labels.get("version", "")
        if alert.state is AlertState.FIRING:
            versions = mark_rollback_fired(versions, model, version, alert.fired_at or at)
        if alert.state is AlertState.FIRING and alert.rollback_requested_at is None and not alert.silenced_by:
            good = last_known_good(versions, model, config.last_known_good_after)
            if good is None or good.version == version or not is_newer(versions, model, version, good):
                continue  # nothing safer to roll back to
            event = RollbackEvent(
                kind=NotificationKind.ROLLBACK_REQUESTED.value, model=model, bad_version=version,
                reason=alert.annotations.get("summary") or f"{alert.alertname} firing for {model} {version}",
                alert=alert_event(alert), created_at=iso(at) or "", last_known_good_version=good.version)
            notifications.append(Notification(f"rollback.requested:{fp}:{iso(alert.fired_at)}",
                                              NotificationKind.ROLLBACK_REQUESTED, at, event))
            out[fp] = replace(alert, rollback_requested_at=at)
        elif alert.rollback_requested_at is not None and alert.state is AlertState.RESOLVED:
            event = RollbackEvent(
                kind=NotificationKind.ROLLBACK_CANCELLED.value, model=model, bad_version=version,
                reason=f"{alert.alertname} resolved at {iso(alert.resolved_at)}", alert=alert_event(alert),
                created_at=iso(at) or "")
            notifications.append(Notification(f"rollback.cancelled:{fp}:{iso(alert.fired_at)}",
                                              NotificationKind.ROLLBACK_CANCELLED, at, event))
            out[fp] = replace(alert, rollback_requested_at=None)
    return RollbackPlan(notifications, out, versions)
