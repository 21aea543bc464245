"""The `notifications` table: the only module that knows its SQL.

Alerting inserts a notification in the same transaction as the state change that
caused it (`AlertRepository.save_cycle`); the router takes the `pending` ones and,
in the transaction that queues their deliveries, marks each `routed` (or
`no_destination`); the outbox settles each as `delivered` or `failed` from its
deliveries' outcomes. Methods that are one step of a caller's transaction take
its connection. The payload column holds the typed event's JSON
(`events.event_to_json`); rows written by earlier releases (the dicts of
Alertmanager's field names) decode to the same types.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from monitor.alerting.events import event_from_json, event_to_json
from monitor.alerting.notifications import PENDING, Notification, NotificationKind
from monitor.store import StateStore
from monitor.timeutil import from_unix, iso_z

# A notification's life: pending -> routed (deliveries queued) or no_destination
# (nothing subscribed) -> delivered (every delivery was) or failed (one gave up).
# A retried delivery puts its notification back to routed.
ROUTED = "routed"
NO_DESTINATION = "no_destination"
DELIVERED = "delivered"
FAILED = "failed"

# A notification goes once it is routed, no delivery references it any more, and
# none of the alerts it shows has a transition left at or before it: it then
# belongs to episodes already pruned (so a still-open episode keeps its first page,
# which the report's time to detect needs). `alerts` (group events) and `alert`
# (rollback events) carry the fingerprints, in today's rows and earlier releases'.
_PRUNE = """
    DELETE FROM notifications WHERE id IN (
        SELECT n.id FROM notifications n WHERE n.created_at < :horizon AND n.status != 'pending'
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id)
            AND NOT EXISTS (
                SELECT 1 FROM (SELECT json_extract(j.value, '$.fingerprint') AS fingerprint
                               FROM json_each(IIF(json_valid(n.payload), n.payload, '{}'), '$.alerts') j
                               UNION ALL SELECT json_extract(IIF(json_valid(n.payload), n.payload, '{}'),
                                                             '$.alert.fingerprint')) shown
                JOIN alert_transitions e ON e.fingerprint = shown.fingerprint AND e.at <= n.created_at)
        ORDER BY n.created_at LIMIT :batch)
"""
# The same on PostgreSQL (its JSON functions; the payload column is TEXT there too, and only
# ever holds an event's JSON object, which the LIKE guard stands in for SQLite's json_valid).
_PRUNE_POSTGRESQL = """
    DELETE FROM notifications WHERE id IN (
        SELECT n.id FROM notifications n
            CROSS JOIN LATERAL (SELECT CASE WHEN n.payload LIKE '{%' THEN CAST(n.payload AS jsonb)
                                            ELSE CAST('{}' AS jsonb) END AS doc) p
        WHERE n.created_at < :horizon AND n.status != 'pending'
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id)
            AND NOT EXISTS (
                SELECT 1 FROM (SELECT j.value ->> 'fingerprint' AS fingerprint
                               FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.doc -> 'alerts') = 'array'
                                                         THEN p.doc -> 'alerts' ELSE CAST('[]' AS jsonb) END) j
                               UNION ALL SELECT p.doc #>> '{alert,fingerprint}') shown
                JOIN alert_transitions e ON e.fingerprint = shown.fingerprint AND e.at <= n.created_at)
        ORDER BY n.created_at LIMIT :batch)
"""


@dataclass(frozen=True)
class QueuedNotification:
    id: int
    notification: Notification
    cycle_id: int | None
    status: str


class NotificationRepository:
    """Reads and writes the `notifications` table through a `StateStore`."""

    def __init__(self, store: StateStore):
        self.store = store

    # -- reads ------------------------------------------------------------------------

    def notifications(self, cycle_id: int | None = None, status: str | None = None) -> list[QueuedNotification]:
        """Queued notifications, oldest first, optionally of one cycle and/or status."""
        sql, params = "SELECT * FROM notifications WHERE 1=1", []
        if cycle_id is not None:
            sql, params = sql + " AND cycle_id = ?", params + [cycle_id]
        if status is not None:
            sql, params = sql + " AND status = ?", params + [status]
        return [_from_row(r) for r in self.store.query(sql + " ORDER BY id", tuple(params))]

    def pending(self, conn: sqlite3.Connection) -> list[QueuedNotification]:
        """The notifications not routed yet, oldest first (inside the router's transaction)."""
        return [_from_row(r) for r in conn.execute("SELECT * FROM notifications WHERE status = ? ORDER BY id",
                                                   (PENDING,)).fetchall()]

    # -- writes (each one step of the caller's transaction) ------------------------

    def insert(self, conn: sqlite3.Connection, notification: Notification,
               cycle_id: int | None) -> QueuedNotification | None:
        """Queue `notification` as pending; None when its idempotency key was queued before."""
        cursor = conn.execute(
            "INSERT INTO notifications (idempotency_key, kind, created_at, cycle_id, payload, status) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (notification.idempotency_key, notification.kind.value, notification.created_at.timestamp(),
             cycle_id, event_to_json(notification.payload), PENDING))
        if not cursor.rowcount:
            return None
        return QueuedNotification(int(cursor.lastrowid), notification, cycle_id, PENDING)

    def mark_routed(self, conn: sqlite3.Connection, notification_id: int, deliveries: int) -> None:
        """The router queued `deliveries` deliveries for it (none: nothing subscribed to it)."""
        self._set_status(conn, notification_id, ROUTED if deliveries else NO_DESTINATION)

    def mark_rerouted(self, conn: sqlite3.Connection, notification_id: int) -> None:
        """One of its deliveries was queued again by hand: it is on its way again."""
        self._set_status(conn, notification_id, ROUTED)

    def settle(self, conn: sqlite3.Connection, notification_id: int, any_failed: bool) -> None:
        """Every delivery of it finished: `failed` if any gave up, else `delivered`."""
        self._set_status(conn, notification_id, FAILED if any_failed else DELIVERED)

    def prune(self, conn: sqlite3.Connection, horizon: datetime, batch: int) -> int:
        """Delete up to `batch` finished notifications older than `horizon` (see _PRUNE); returns how many."""
        sql = _PRUNE_POSTGRESQL if self.store.dialect == "postgresql" else _PRUNE
        return conn.execute(sql, {"horizon": horizon.timestamp(), "batch": int(batch)}).rowcount

    def _set_status(self, conn: sqlite3.Connection, notification_id: int, status: str) -> None:
        conn.execute("UPDATE notifications SET status = ? WHERE id = ?", (status, notification_id))


def _from_row(row: sqlite3.Row) -> QueuedNotification:
    created_at = from_unix(row["created_at"])
    kind = NotificationKind(row["kind"])
    event = event_from_json(kind.value, row["payload"], iso_z(created_at))
    return QueuedNotification(row["id"], Notification(row["idempotency_key"], kind, created_at, event),
                              row["cycle_id"], row["status"])

