"""Queued notification records: what the outbox will deliver, written with the state change.

Each record has a stable idempotency key (derived from what caused it, so
re-running the same cycle cannot queue it twice) and starts `pending`. Alert
payloads follow Alertmanager's webhook shape (labels, annotations, startsAt,
endsAt, fingerprint) so receivers that understand Alertmanager understand us.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Mapping

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
    payload: Mapping[str, Any]


def iso(at: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    return None if at is None else iso_z(at)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """One alert as notifications carry it (Alertmanager's webhook fields, plus our evidence)."""
    return {
        "status": "resolved" if alert.state is AlertState.RESOLVED else "firing",
        "state": alert.state.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": iso(alert.fired_at or alert.active_since),
        "activeSince": iso(alert.active_since),
        "endsAt": iso(alert.resolved_at),
        "fingerprint": alert.fingerprint,
        "value": finite_or_none(alert.value),
        "evidence": {k: finite_or_none(v) for k, v in alert.evidence.items()},
    }


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a value without a finite number is no data."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
