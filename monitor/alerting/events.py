"""The typed events alerting hands to outputs: one alert group notification, one rollback event.

Alerting decides *what* happened (`plan_group_notifications`, `plan_rollbacks`);
every integration (Slack, PagerDuty, Teams, email, Alertmanager-style webhooks,
the signed rollback webhooks) renders *how it is said* from these types, never
from loose dicts. An event is serialised once, into the notifications table and
the outbox body, as JSON in Alertmanager's webhook field names (labels,
annotations, startsAt, endsAt, fingerprint, groupKey, groupLabels), so rows
written by earlier releases, which stored exactly those dicts, still decode.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

ALERT_GROUP_KINDS = ("firing", "resolved", "repeat")
ROLLBACK_KINDS = ("rollback.requested", "rollback.cancelled")
REPORT_PUBLISHED = "report.published"


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN or infinity: a value without a finite number is no data."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


@dataclass(frozen=True)
class AlertEvent:
    """One alert as notifications carry it: Alertmanager's webhook fields, plus our evidence."""

    status: str                        # "firing" | "resolved" (Alertmanager's two)
    state: str                         # ours: pending, firing, resolved, no_data...
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str | None              # ISO 8601 UTC with Z
    ends_at: str | None
    fingerprint: str
    active_since: str | None = None
    value: float | None = None
    evidence: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "state": self.state, "labels": dict(self.labels),
                "annotations": dict(self.annotations), "startsAt": self.starts_at,
                "activeSince": self.active_since, "endsAt": self.ends_at, "fingerprint": self.fingerprint,
                "value": finite_or_none(self.value),
                "evidence": {k: finite_or_none(v) for k, v in self.evidence.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AlertEvent":
        return cls(status=str(data.get("status") or "firing"), state=str(data.get("state") or data.get("status")
                                                                          or "firing"),
                   labels=_text_map(data.get("labels")), annotations=_text_map(data.get("annotations")),
                   starts_at=data.get("startsAt"), ends_at=data.get("endsAt"),
                   fingerprint=str(data.get("fingerprint") or ""), active_since=data.get("activeSince"),
                   value=finite_or_none(data.get("value")),
                   evidence={str(k): finite_or_none(v) for k, v in (data.get("evidence") or {}).items()})


@dataclass(frozen=True)
class AlertGroupEvent:
    """One notification for one alert group on one route: firing, repeat or resolved.

    `receiver` and `route_id` say which route of `outputs.route` grouped it (the
    legacy single-channel config is the root route's receiver, `default`).
    `links` are filled by the router when it queues the event (report, graph,
    runbook, dashboard, silence); alerting leaves them empty.
    """

    kind: str                          # one of ALERT_GROUP_KINDS
    status: str                        # "firing" while any alert fires, else "resolved"
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[AlertEvent, ...]
    created_at: str                    # ISO 8601 UTC with Z: when alerting decided to notify
    receiver: str = "default"
    route_id: str = ""
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def firing_count(self) -> int:
        return sum(1 for a in self.alerts if a.firing)

    @property
    def resolved_count(self) -> int:
        return sum(1 for a in self.alerts if not a.firing)

    @property
    def common_labels(self) -> dict[str, str]:
        if not self.alerts:
            return dict(self.group_labels)
        first = dict(self.alerts[0].labels)
        return {k: v for k, v in first.items() if all(a.labels.get(k) == v for a in self.alerts[1:])}

    @property
    def common_annotations(self) -> dict[str, str]:
        if not self.alerts:
            return {}
        first = dict(self.alerts[0].annotations)
        return {k: v for k, v in first.items() if all(a.annotations.get(k) == v for a in self.alerts[1:])}

    def with_links(self, links: Mapping[str, str]) -> "AlertGroupEvent":
        return replace(self, links=dict(links))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "groupKey": self.group_key,
                "groupLabels": dict(self.group_labels), "alerts": [a.to_dict() for a in self.alerts],
                "firing": self.firing_count, "resolved": self.resolved_count, "createdAt": self.created_at,
                "receiver": self.receiver, "routeId": self.route_id, "links": dict(self.links)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], created_at: str | None = None) -> "AlertGroupEvent":
        return cls(kind=str(data.get("kind") or "firing"), status=str(data.get("status") or "firing"),
                   group_key=str(data.get("groupKey") or ""), group_labels=_text_map(data.get("groupLabels")),
                   alerts=tuple(AlertEvent.from_dict(a) for a in data.get("alerts") or ()),
                   created_at=str(data.get("createdAt") or created_at or ""),
                   receiver=str(data.get("receiver") or "default"), route_id=str(data.get("routeId") or ""),
                   links=_text_map(data.get("links")))


@dataclass(frozen=True)
class RollbackEvent:
    """Roll `model` back from `bad_version` to `last_known_good_version`, because `reason` (or cancel that)."""

    kind: str                          # one of ROLLBACK_KINDS
    model: str
    bad_version: str
    reason: str
    alert: AlertEvent
    created_at: str
    last_known_good_version: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def evidence(self) -> Mapping[str, float | None]:
        return self.alert.evidence

    def with_links(self, links: Mapping[str, str]) -> "RollbackEvent":
        return replace(self, links=dict(links))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "model": self.model, "bad_version": self.bad_version,
                "last_known_good_version": self.last_known_good_version, "reason": self.reason,
                "alert": self.alert.to_dict(), "evidence": dict(self.alert.to_dict()["evidence"]),
                "createdAt": self.created_at, "links": dict(self.links)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], created_at: str | None = None) -> "RollbackEvent":
        return cls(kind=str(data.get("type") or data.get("kind") or ""), model=str(data.get("model") or ""),
                   bad_version=str(data.get("bad_version") or ""), reason=str(data.get("reason") or ""),
                   alert=AlertEvent.from_dict(data.get("alert") or {}),
                   created_at=str(data.get("createdAt") or created_at or ""),
                   last_known_good_version=data.get("last_known_good_version"),
                   links=_text_map(data.get("links")))


@dataclass(frozen=True)
class ReportEvent:
    """A weekly report was written: announce it to the receivers in `reports.announce`.

    `headline` is the report's headline as sentences (the bullets readers see first);
    `html_path` is the written page on the daemon's disk (the email carries the page
    itself), `url` where people open it (`outputs.report_url`, when set).
    """

    kind: str                          # REPORT_PUBLISHED
    week: str                          # the period's key, "2026-W47"
    title: str                         # "Week 47, 2026 (16–22 Nov)"
    headline: tuple[str, ...]
    created_at: str
    html_path: str = ""
    url: str | None = None
    # The receivers to tell (`reports.announce` when the report was written).
    receivers: tuple[str, ...] = ()
    # The page drawn for email (charts as PNG attachments), when one was written.
    email_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "week": self.week, "title": self.title, "headline": list(self.headline),
                "createdAt": self.created_at, "htmlPath": self.html_path, "url": self.url,
                "receivers": list(self.receivers), "emailPath": self.email_path}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], created_at: str | None = None) -> "ReportEvent":
        return cls(kind=str(data.get("kind") or REPORT_PUBLISHED), week=str(data.get("week") or ""),
                   title=str(data.get("title") or data.get("week") or ""),
                   headline=tuple(str(s) for s in data.get("headline") or ()),
                   created_at=str(data.get("createdAt") or created_at or ""),
                   html_path=str(data.get("htmlPath") or ""), url=data.get("url") or None,
                   receivers=tuple(str(r) for r in data.get("receivers") or ()),
                   email_path=str(data.get("emailPath") or ""))


Event = AlertGroupEvent | RollbackEvent | ReportEvent


def event_to_json(event: Event) -> str:
    return json.dumps(event.to_dict(), separators=(",", ":"), allow_nan=False, sort_keys=True)


def event_from_json(kind: str, text: str | Mapping[str, Any], created_at: str | None = None) -> Event:
    """Decode a stored event of notification kind `kind` (today's rows and earlier releases' dicts)."""
    data = json.loads(text) if isinstance(text, str) else text
    # The row's kind is authoritative: a payload may not repeat it (earlier releases' group dicts did,
    # their rollback dicts not always).
    if kind in ROLLBACK_KINDS:
        return RollbackEvent.from_dict({**data, "type": kind}, created_at)
    if kind in ALERT_GROUP_KINDS:
        return AlertGroupEvent.from_dict({**data, "kind": kind}, created_at)
    if kind == REPORT_PUBLISHED:
        return ReportEvent.from_dict(data, created_at)
    raise ValueError(f"unknown notification kind {kind!r}")
