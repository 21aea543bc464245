"""Queued notification records: what the outbox will deliver, written with the state change.

Each record has a stable idempotency key (derived from what caused it, so
re-running the same cycle cannot queue it twice) and starts `pending`. Its
payload is a typed event (`monitor.alerting.events`): an alert group notification
or a rollback event, stored as the event's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from monitor.alerting.events import AlertEvent, Event, finite_or_none
from monitor.alerting.lifecycle import Alert, AlertState
from monitor.timeutil import iso_z


class NotificationKind(Enum):
    FIRING = "firing"
    RESOLVED = "resolved"
    REPEAT = "repeat"
    ROLLBACK_REQUESTED = "rollback.requested"
    ROLLBACK_CANCELLED = "rollback.cancelled"
    # Queued by the weekly report job, not by alerting (monitor.outputs.report_announce).
    REPORT_PUBLISHED = "report.published"


PENDING = "pending"


@dataclass(frozen=True)
class Notification:
    idempotency_key: str
    kind: NotificationKind
    created_at: datetime
    payload: Event


def iso(at: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    return None if at is None else iso_z(at)


def alert_event(alert: Alert) -> AlertEvent:
    """One alert as notifications carry it (Alertmanager's webhook fields, plus our evidence)."""
    return AlertEvent(
        status="resolved" if alert.state is AlertState.RESOLVED else "firing",
        state=alert.state.value,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=iso(alert.fired_at or alert.active_since),
        active_since=iso(alert.active_since),
        ends_at=iso(alert.resolved_at),
        fingerprint=alert.fingerprint,
        value=finite_or_none(alert.value),
        evidence={k: finite_or_none(v) for k, v in alert.evidence.items()},
    )
