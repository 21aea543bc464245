"""The outbox's tables in the state store: the only module that knows their SQL.

`deliveries` (one row per notification and destination), `delivery_results` (attempt
outcomes per destination, for /metrics), `disabled_destinations` (receivers that
answered 410) and `slack_threads` (the parent message of each alert group's Slack
thread). The policy (retries, backoff, expiry, ordering) is `monitor.outputs.outbox`'s;
this module only reads and writes rows. Methods that are one step of a caller's
transaction take its connection; the others read through the store.

Claiming: before a delivery worker sends a destination's head it claims it
(`claim_head`), marking the row with who claimed it until when. On PostgreSQL the
head is read `FOR UPDATE SKIP LOCKED`, so two workers of two replicas never take the
same row; a row claimed by a worker that died is free again once its claim lapses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Sequence

from monitor.store import StateStore


class DeliveryStatus(Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DISABLED = "disabled"


FINISHED_FAILED = (DeliveryStatus.EXPIRED, DeliveryStatus.DISABLED)


@dataclass(frozen=True)
class Delivery:
    id: int
    notification_id: int | None
    notification_key: str
    destination: str
    event_type: str
    message_id: str
    group_key: str | None
    body: str
    status: DeliveryStatus
    attempts: int
    failures: int
    created_at: float
    next_attempt_at: float
    expires_at: float
    last_attempt_at: float | None
    finished_at: float | None
    last_status_code: int | None
    last_error: str | None
    progress: dict[str, Any] = field(default_factory=dict)
    claimed_by: str | None = None
    claimed_until: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The delivery as `monitor deliveries --json` shows it (the body is left out: it can be large)."""
        return {
            "id": self.id, "notification_key": self.notification_key, "destination": self.destination,
            "event_type": self.event_type, "message_id": self.message_id, "status": self.status.value,
            "attempts": self.attempts, "failures": self.failures, "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at if self.status is DeliveryStatus.PENDING else None,
            "expires_at": self.expires_at, "last_attempt_at": self.last_attempt_at,
            "finished_at": self.finished_at, "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class NewDelivery:
    """A row to queue (the outbox decided its status and times)."""

    notification_id: int | None
    notification_key: str
    destination: str
    event_type: str
    message_id: str
    group_key: str | None
    body: str
    status: DeliveryStatus
    created_at: float
    next_attempt_at: float
    expires_at: float
    finished_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class SlackThread:
    destination: str
    group_key: str
    channel: str
    ts: str
    open: bool


_PENDING = DeliveryStatus.PENDING.value


class OutboxRepository:
    """Reads and writes deliveries, delivery_results and disabled_destinations."""

    def __init__(self, store: StateStore):
        self.store = store

    # -- steps of the caller's transaction ------------------------------------------------

    def disabled_names(self, conn: Any) -> set[str]:
        return {r[0] for r in conn.execute("SELECT destination FROM disabled_destinations")}

    def insert(self, conn: Any, rows: Iterable[NewDelivery]) -> int:
        """Queue rows, skipping any already queued (same notification and destination); returns how many
        were new."""
        added = 0
        for row in rows:
            added += conn.execute(
                "INSERT INTO deliveries (notification_id, notification_key, destination, event_type, message_id, "
                "group_key, body, status, created_at, next_attempt_at, expires_at, finished_at, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (notification_key, destination) DO NOTHING",
                (row.notification_id, row.notification_key, row.destination, row.event_type, row.message_id,
                 row.group_key, row.body, row.status.value, row.created_at, row.next_attempt_at, row.expires_at,
                 row.finished_at, row.last_error)).rowcount
        return added

    def get_in(self, conn: Any, delivery_id: int) -> Delivery | None:
        row = conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return _delivery_from_row(row) if row is not None else None

    def count_attempt(self, conn: Any, delivery_id: int, now: float) -> None:
        conn.execute("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
                     (now, delivery_id))

    def claim_head(self, conn: Any, destination: str, now: float, claimant: str, claim_s: float) -> Delivery | None:
        """Claim the destination's head (its oldest pending delivery) for `claimant` until `now + claim_s`,
        counting the attempt; None when there is no head, it is not due, or another live claim holds it."""
        lock = " FOR UPDATE SKIP LOCKED" if self.store.dialect == "postgresql" else ""
        row = conn.execute(
            "SELECT * FROM deliveries WHERE id = (SELECT MIN(id) FROM deliveries WHERE destination = ? "
            f"AND status = ?){lock}", (destination, _PENDING)).fetchone()
        if row is None:   # nothing pending, or another worker holds the head's row right now
            return None
        head = _delivery_from_row(row)
        if head.next_attempt_at > now:
            return None
        if head.claimed_by not in (None, claimant) and (head.claimed_until or 0.0) > now:
            return None
        conn.execute("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, claimed_by = ?, "
                     "claimed_until = ? WHERE id = ?", (now, claimant, now + claim_s, head.id))
        return self.get_in(conn, head.id)

    def count_result(self, conn: Any, destination: str, result: str) -> None:
        conn.execute("INSERT INTO delivery_results (destination, result, count) VALUES (?, ?, 1) "
                     "ON CONFLICT (destination, result) DO UPDATE SET count = delivery_results.count + 1",
                     (destination, result))

    def finish(self, conn: Any, delivery_id: int, status: DeliveryStatus, now: float, status_code: int | None,
               error: str | None, progress: dict[str, Any], failures: int | None = None) -> None:
        conn.execute("UPDATE deliveries SET status = ?, finished_at = ?, last_status_code = ?, last_error = ?, "
                     "progress = ?, failures = COALESCE(?, failures), claimed_by = NULL, claimed_until = NULL "
                     "WHERE id = ?",
                     (status.value, now, status_code, error, json.dumps(progress), failures, delivery_id))

    def schedule_retry(self, conn: Any, delivery_id: int, failures: int, next_attempt_at: float,
                       status_code: int | None, error: str | None, progress: dict[str, Any]) -> None:
        conn.execute("UPDATE deliveries SET failures = ?, next_attempt_at = ?, last_status_code = ?, "
                     "last_error = ?, progress = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                     (failures, next_attempt_at, status_code, error, json.dumps(progress), delivery_id))

    def disable_destination(self, conn: Any, destination: str, target_digest: str, now: float, reason: str,
                            status_code: int | None) -> list[int | None]:
        """Record the destination as disabled and finish its pending deliveries as disabled; returns the
        notification ids of those deliveries."""
        conn.execute("INSERT INTO disabled_destinations (destination, target_digest, disabled_at, reason) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET "
                     "target_digest = excluded.target_digest, disabled_at = excluded.disabled_at, "
                     "reason = excluded.reason", (destination, target_digest, now, reason))
        rows = conn.execute("SELECT notification_id FROM deliveries WHERE destination = ? AND status = ?",
                            (destination, _PENDING)).fetchall()
        conn.execute("UPDATE deliveries SET status = ?, finished_at = ?, last_status_code = ?, last_error = ?, "
                     "claimed_by = NULL, claimed_until = NULL WHERE destination = ? AND status = ?",
                     (DeliveryStatus.DISABLED.value, now, status_code, reason, destination, _PENDING))
        return [r[0] for r in rows]

    def statuses_of_notification(self, conn: Any, notification_id: int) -> set[str]:
        return {r[0] for r in conn.execute("SELECT status FROM deliveries WHERE notification_id = ?",
                                           (notification_id,))}

    def enable_destinations(self, conn: Any, names: Sequence[str] | None = None) -> list[str]:
        """Forget the 410 of `names` (all when None); returns the names that were disabled."""
        disabled = [r[0] for r in conn.execute("SELECT destination FROM disabled_destinations ORDER BY 1")]
        gone = disabled if names is None else [n for n in disabled if n in set(names)]
        conn.executemany("DELETE FROM disabled_destinations WHERE destination = ?", [(n,) for n in gone])
        return gone

    def disabled_digests(self, conn: Any) -> dict[str, str]:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT destination, target_digest FROM disabled_destinations ORDER BY 1")}

    def disabled_reason(self, conn: Any, destination: str) -> str | None:
        row = conn.execute("SELECT reason FROM disabled_destinations WHERE destination = ?",
                           (destination,)).fetchone()
        return row[0] if row is not None else None

    def newer_delivered(self, conn: Any, delivery: Delivery) -> int | None:
        """The id of a later delivery of the same group to the same destination that was delivered."""
        row = conn.execute(
            "SELECT id FROM deliveries WHERE destination = ? AND group_key = ? AND id > ? AND status = ? "
            "ORDER BY id DESC LIMIT 1",
            (delivery.destination, delivery.group_key, delivery.id, DeliveryStatus.DELIVERED.value)).fetchone()
        return row[0] if row is not None else None

    def requeue(self, conn: Any, delivery_id: int, now: float, expires_at: float) -> None:
        conn.execute("UPDATE deliveries SET status = ?, failures = 0, next_attempt_at = ?, expires_at = ?, "
                     "finished_at = NULL, last_status_code = NULL, last_error = NULL, claimed_by = NULL, "
                     "claimed_until = NULL WHERE id = ?", (_PENDING, now, expires_at, delivery_id))

    def prune(self, conn: Any, finished_before: float, batch: int) -> int:
        """Delete up to `batch` finished deliveries older than `finished_before`, oldest first."""
        return conn.execute(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE finished_at < ? "
            "AND status != ? ORDER BY finished_at LIMIT ?)", (finished_before, _PENDING, int(batch))).rowcount

    # -- reads -----------------------------------------------------------------------------

    def get(self, delivery_id: int) -> Delivery | None:
        rows = self.store.query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery_from_row(rows[0]) if rows else None

    def head(self, destination: str) -> Delivery | None:
        rows = self.store.query("SELECT * FROM deliveries WHERE destination = ? AND status = ? ORDER BY id LIMIT 1",
                                (destination, _PENDING))
        return _delivery_from_row(rows[0]) if rows else None

    def deliveries(self, failed_only: bool = False, destination: str | None = None) -> list[Delivery]:
        sql, params = "SELECT * FROM deliveries WHERE 1=1", []
        if failed_only:
            sql += " AND (status IN (?, ?) OR (status = ? AND failures > 0))"
            params += [DeliveryStatus.EXPIRED.value, DeliveryStatus.DISABLED.value, _PENDING]
        if destination is not None:
            sql, params = sql + " AND destination = ?", params + [destination]
        return [_delivery_from_row(r) for r in self.store.query(sql + " ORDER BY id", tuple(params))]

    def is_disabled(self, destination: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM disabled_destinations WHERE destination = ?", (destination,)))

    def results(self) -> dict[tuple[str, str], int]:
        return {(r["destination"], r["result"]): r["count"]
                for r in self.store.query("SELECT destination, result, count FROM delivery_results")}

    def counts_by_status(self) -> dict[str, dict[str, int]]:
        """status -> destination -> deliveries."""
        by_status: dict[str, dict[str, int]] = {s.value: {} for s in DeliveryStatus}
        for r in self.store.query("SELECT status, destination, COUNT(*) AS n FROM deliveries "
                                  "GROUP BY status, destination"):
            by_status[r["status"]][r["destination"]] = int(r["n"])
        return by_status


class SlackThreadRepository:
    """The parent message of each alert group's current episode, per destination (`slack_threads`)."""

    def __init__(self, store: StateStore, destination: str):
        self.store = store
        self.destination = destination

    def get(self, group_key: str) -> SlackThread | None:
        rows = self.store.query("SELECT * FROM slack_threads WHERE destination = ? AND group_key = ?",
                                (self.destination, group_key))
        if not rows:
            return None
        row = rows[0]
        return SlackThread(row["destination"], row["group_key"], row["channel"], row["ts"], bool(row["open"]))

    def start(self, group_key: str, channel: str, ts: str, now: float) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO slack_threads (destination, group_key, channel, ts, open, updated_at) "
                         "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (destination, group_key) DO UPDATE SET "
                         "channel = excluded.channel, ts = excluded.ts, open = 1, updated_at = excluded.updated_at",
                         (self.destination, group_key, channel, ts, now))

    def close(self, group_key: str, now: float) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE slack_threads SET open = 0, updated_at = ? WHERE destination = ? AND group_key = ?",
                         (now, self.destination, group_key))


def _delivery_from_row(row: Any) -> Delivery:
    keys = row.keys()
    return Delivery(
        id=row["id"], notification_id=row["notification_id"], notification_key=row["notification_key"],
        destination=row["destination"], event_type=row["event_type"], message_id=row["message_id"],
        group_key=row["group_key"], body=row["body"], status=DeliveryStatus(row["status"]),
        attempts=row["attempts"], failures=row["failures"], created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"], expires_at=row["expires_at"],
        last_attempt_at=row["last_attempt_at"], finished_at=row["finished_at"],
        last_status_code=row["last_status_code"], last_error=row["last_error"],
        progress=json.loads(row["progress"] or "{}"),
        claimed_by=row["claimed_by"] if "claimed_by" in keys else None,
        claimed_until=row["claimed_until"] if "claimed_until" in keys else None,
    )
