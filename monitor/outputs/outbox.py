"""The durable outbox: every delivery is written before any attempt and kept until it is done.

A delivery is one notification for one destination (`slack`, `webhook:NAME`,
`alertmanager`, or one receiver's integration: `RECEIVER/INTEGRATION`). Its life: `pending` -> `delivered` after a 2xx, or `expired` when
the retry schedule runs out, or `disabled` when the receiver answered 410. Every
attempt is counted in the row *before* the request leaves (so a crash mid-send
still shows the attempt), and the outcome is committed after the answer. A crash
between the receiver's 2xx and that commit leaves the row pending: it is sent again
with the same `message_id`, so receivers dedup on it. At least once, never lost.

Per destination, deliveries go out strictly in the order they were queued: while
the oldest is waiting for a retry, the ones behind it wait too, so a resolve never
overtakes its firing message.

A failed delivery can be queued again by hand (`retry`, `monitor deliveries retry`);
finished ones are pruned after `state.retention` (`prune`, run by monitor.retention).
A destination disabled by a 410 is sent to again after a config reload, or at a
start whose configured target for it changed (`target_digests`).
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Iterator

from monitor.alerting.notification_repository import NotificationRepository
from monitor.errors import MonitorError
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.results import SendOutcome, SendResult
from monitor.store import StateStore


class DeliveryStatus(Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DISABLED = "disabled"


FINISHED_FAILED = (DeliveryStatus.EXPIRED, DeliveryStatus.DISABLED)


class RetryRefused(MonitorError):
    """`monitor deliveries retry` cannot re-send this delivery; the message says why."""


@dataclass(frozen=True)
class OutboxItem:
    """What to queue: one notification for one destination, with the exact body to send."""

    notification_key: str
    destination: str
    event_type: str
    body: str
    group_key: str | None = None
    notification_id: int | None = None


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
class OutboxCounts:
    """What /metrics exports: results per destination (monotonic) and the queue's state now."""

    results: dict[tuple[str, str], int]   # (destination, result) -> attempts with that result
    pending: dict[str, int]               # destination -> deliveries waiting
    expired: dict[str, int]
    disabled: dict[str, int]


def message_id_for(notification_key: str, destination: str) -> str:
    """The id a receiver dedups on: the same on every attempt, different per destination."""
    digest = hashlib.sha256(f"{notification_key}\x00{destination}".encode()).hexdigest()[:26]
    return f"msg_{digest}"


class Outbox:
    """The deliveries table behind a small interface; times are unix seconds passed in by the caller."""

    def __init__(self, store: StateStore, schedule: RetrySchedule | None = None,
                 expire_after_s: float | None = None, rng: random.Random | None = None):
        self.store = store
        # The notifications table is alerting's: the outbox only settles a notification's status.
        self.notifications = NotificationRepository(store)
        self.schedule = schedule or RetrySchedule()
        # A delivery that keeps being rate limited (which does not use up the schedule)
        # still gives up after this long. Default: the schedule with its largest jitter,
        # plus an hour, so the schedule's own last attempt always happens.
        default_s = self.schedule.total.total_seconds() * (1 + self.schedule.jitter_share) + 3600
        self.expire_after_s = expire_after_s if expire_after_s is not None else default_s
        self.rng = rng or random.Random()
        # destination -> digest of its configured target, stored when a 410 disables it,
        # so a restart with a changed target sends to it again (build_delivery fills it).
        self.target_digests: dict[str, str] = {}

    # -- writing ----------------------------------------------------------------------

    def enqueue(self, items: Iterable[OutboxItem], now: float, conn: sqlite3.Connection | None = None) -> int:
        """Queue deliveries (idempotent per notification and destination); returns how many are new.

        Pass `conn` to write inside a caller's transaction (with the state change that caused them).
        """
        if conn is None:
            with self.store.transaction() as own:
                return self._insert(own, items, now)
        return self._insert(conn, items, now)

    def _insert(self, conn: sqlite3.Connection, items: Iterable[OutboxItem], now: float) -> int:
        disabled = {r[0] for r in conn.execute("SELECT destination FROM disabled_destinations")}
        added = 0
        for item in items:
            status = DeliveryStatus.DISABLED if item.destination in disabled else DeliveryStatus.PENDING
            cursor = conn.execute(
                "INSERT OR IGNORE INTO deliveries (notification_id, notification_key, destination, event_type, "
                "message_id, group_key, body, status, created_at, next_attempt_at, expires_at, finished_at, "
                "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item.notification_id, item.notification_key, item.destination, item.event_type,
                 message_id_for(item.notification_key, item.destination), item.group_key, item.body,
                 status.value, now, now + self.schedule.delays[0].total_seconds(), now + self.expire_after_s,
                 now if status is DeliveryStatus.DISABLED else None,
                 "destination disabled (it answered 410 Gone)" if status is DeliveryStatus.DISABLED else None))
            added += cursor.rowcount
        return added

    def begin_attempt(self, delivery: Delivery, now: float) -> Delivery:
        """Count the attempt before the request leaves, so a crash mid-send is still visible."""
        with self.store.transaction() as conn:
            conn.execute("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
                         (now, delivery.id))
        return self.get(delivery.id)

    def record(self, delivery: Delivery, result: SendResult, now: float) -> Delivery:
        """Commit an attempt's outcome: delivered, retry later, expired or disabled."""
        progress = {**delivery.progress, **result.progress}
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO delivery_results (destination, result, count) VALUES (?, ?, 1) "
                         "ON CONFLICT (destination, result) DO UPDATE SET count = count + 1",
                         (delivery.destination, result.outcome.value))
            if result.outcome is SendOutcome.DELIVERED:
                self._finish(conn, delivery, DeliveryStatus.DELIVERED, now, result, None, progress)
            elif result.outcome is SendOutcome.GONE:
                self._disable_destination(conn, delivery.destination, now, result)
            elif result.outcome is SendOutcome.REFUSED:
                self._finish(conn, delivery, DeliveryStatus.EXPIRED, now, result, result.error, progress)
            else:
                self._schedule_retry(conn, delivery, result, now, progress)
            self._update_notification_status(conn, delivery.notification_id)
        return self.get(delivery.id)

    def _schedule_retry(self, conn: sqlite3.Connection, delivery: Delivery, result: SendResult, now: float,
                        progress: dict[str, Any]) -> None:
        failures = delivery.failures
        if result.outcome is SendOutcome.RATE_LIMITED:
            # The server said when: honour it, without using up a scheduled retry.
            delay_s: float | None = result.retry_after_s or 0.0
        else:
            failures += 1
            delay_s = self.schedule.delay_after_failures_s(failures, self.rng)
            if delay_s is not None and result.retry_after_s is not None:
                delay_s = max(delay_s, result.retry_after_s)
        if delay_s is None or now + delay_s > delivery.expires_at:
            why = f"gave up after {delivery.attempts} attempt(s): {result.error or 'failed'}"
            conn.execute("UPDATE deliveries SET failures = ? WHERE id = ?", (failures, delivery.id))
            self._finish(conn, delivery, DeliveryStatus.EXPIRED, now, result, why, progress)
            return
        conn.execute("UPDATE deliveries SET failures = ?, next_attempt_at = ?, last_status_code = ?, "
                     "last_error = ?, progress = ? WHERE id = ?",
                     (failures, now + delay_s, result.status_code, result.error, json.dumps(progress),
                      delivery.id))

    def _finish(self, conn: sqlite3.Connection, delivery: Delivery, status: DeliveryStatus, now: float,
                result: SendResult, error: str | None, progress: dict[str, Any]) -> None:
        conn.execute("UPDATE deliveries SET status = ?, finished_at = ?, last_status_code = ?, last_error = ?, "
                     "progress = ? WHERE id = ?",
                     (status.value, now, result.status_code, error, json.dumps(progress), delivery.id))

    def _disable_destination(self, conn: sqlite3.Connection, destination: str, now: float,
                             result: SendResult) -> None:
        """410 Gone: stop sending to this destination; what was queued for it stays visible."""
        reason = f"destination disabled: it answered {result.status_code or 410} Gone"
        conn.execute("INSERT OR REPLACE INTO disabled_destinations (destination, target_digest, disabled_at, "
                     "reason) VALUES (?, ?, ?, ?)", (destination, self.target_digests.get(destination, ""), now,
                                                     reason))
        rows = conn.execute("SELECT notification_id FROM deliveries WHERE destination = ? AND status = ?",
                            (destination, DeliveryStatus.PENDING.value)).fetchall()
        conn.execute("UPDATE deliveries SET status = ?, finished_at = ?, last_status_code = ?, last_error = ? "
                     "WHERE destination = ? AND status = ?",
                     (DeliveryStatus.DISABLED.value, now, result.status_code, reason, destination,
                      DeliveryStatus.PENDING.value))
        for (notification_id,) in rows:
            self._update_notification_status(conn, notification_id)

    def _update_notification_status(self, conn: sqlite3.Connection, notification_id: int | None) -> None:
        """A queued notification is `delivered` once every delivery of it is, `failed` if any gave up."""
        if notification_id is None:
            return
        statuses = {r[0] for r in conn.execute("SELECT status FROM deliveries WHERE notification_id = ?",
                                               (notification_id,))}
        if DeliveryStatus.PENDING.value in statuses or not statuses:
            return
        failed = statuses & {s.value for s in FINISHED_FAILED}
        self.notifications.settle(conn, notification_id, any_failed=bool(failed))

    def enable_destination(self, destination: str) -> bool:
        """Send to a destination again after a 410 (e.g. its URL was fixed); True if it was disabled."""
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM disabled_destinations WHERE destination = ?",
                                (destination,)).rowcount > 0

    def enable_all_destinations(self) -> list[str]:
        """A config reload: every destination disabled by a 410 is sent to again (if it still answers
        410 it is disabled again after one request). Returns the names re-enabled."""
        with self.store.transaction() as conn:
            names = [r[0] for r in conn.execute("SELECT destination FROM disabled_destinations ORDER BY 1")]
            conn.execute("DELETE FROM disabled_destinations")
        return names

    def enable_changed_destinations(self) -> list[str]:
        """At start: re-enable each disabled destination whose configured target is no longer the one
        that answered 410 (per `target_digests`; one no longer configured is forgotten too)."""
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT destination, target_digest FROM disabled_destinations ORDER BY 1").fetchall()
            changed = [name for name, digest in rows if self.target_digests.get(name) != digest]
            conn.executemany("DELETE FROM disabled_destinations WHERE destination = ?", [(n,) for n in changed])
        return changed

    def retry(self, delivery_id: int, now: float, configured: Iterable[str] | None = None) -> Delivery:
        """Queue a failed (expired or disabled) delivery again with a fresh retry schedule, due now;
        a pending one is made due now. Raises RetryRefused (delivered, unknown, its destination not in
        `configured` or still disabled, or it would overtake a newer message of its group)."""
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchall()
            if not rows:
                raise RetryRefused(f"no delivery with id {delivery_id} (see `monitor deliveries`)")
            delivery = _delivery_from_row(rows[0])
            if delivery.status is DeliveryStatus.DELIVERED:
                raise RetryRefused(f"delivery {delivery_id} to {delivery.destination} was already delivered; "
                                   f"nothing to retry")
            if configured is not None and delivery.destination not in set(configured):
                raise RetryRefused(f"delivery {delivery_id}: {delivery.destination} is not in the config's "
                                   f"outputs any more, so nothing would send it")
            disabled = conn.execute("SELECT reason FROM disabled_destinations WHERE destination = ?",
                                    (delivery.destination,)).fetchall()
            if disabled:
                raise RetryRefused(f"delivery {delivery_id}: {delivery.destination} is disabled ({disabled[0][0]}); "
                                   f"fix its target and reload the config (SIGHUP), then retry")
            if delivery.group_key is not None:
                newer = conn.execute(
                    "SELECT id FROM deliveries WHERE destination = ? AND group_key = ? AND id > ? AND status = ? "
                    "ORDER BY id DESC LIMIT 1",
                    (delivery.destination, delivery.group_key, delivery.id, DeliveryStatus.DELIVERED.value)
                ).fetchall()
                if newer:
                    raise RetryRefused(f"delivery {delivery_id}: a newer message of its alert group was already "
                                       f"delivered to {delivery.destination} (delivery {newer[0][0]}); re-sending "
                                       f"this older one would overtake it")
            conn.execute("UPDATE deliveries SET status = ?, failures = 0, next_attempt_at = ?, expires_at = ?, "
                         "finished_at = NULL, last_status_code = NULL, last_error = NULL WHERE id = ?",
                         (DeliveryStatus.PENDING.value, now, now + self.expire_after_s, delivery_id))
            if delivery.notification_id is not None:
                self.notifications.mark_rerouted(conn, delivery.notification_id)
        return self.get(delivery_id)

    def prune(self, finished_before: float, batch: int) -> int:
        """Delete up to `batch` deliveries finished (delivered, expired, disabled) before `finished_before`,
        oldest first; pending ones are never deleted. Returns how many were deleted."""
        with self.store.transaction() as conn:
            return conn.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE finished_at < ? "
                "AND status != ? ORDER BY finished_at LIMIT ?)",
                (finished_before, DeliveryStatus.PENDING.value, batch)).rowcount

    # -- reading ----------------------------------------------------------------------

    def get(self, delivery_id: int) -> Delivery:
        rows = self.store.query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        if not rows:
            raise KeyError(delivery_id)
        return _delivery_from_row(rows[0])

    def head(self, destination: str) -> Delivery | None:
        """The oldest pending delivery for a destination: the only one that may be sent next."""
        rows = self.store.query("SELECT * FROM deliveries WHERE destination = ? AND status = ? ORDER BY id LIMIT 1",
                                (destination, DeliveryStatus.PENDING.value))
        return _delivery_from_row(rows[0]) if rows else None

    def next_due_at(self, destinations: Iterable[str]) -> float | None:
        """When the earliest head among `destinations` is due, or None when nothing is pending."""
        times = [d.next_attempt_at for d in (self.head(name) for name in destinations) if d is not None]
        return min(times) if times else None

    def deliveries(self, failed_only: bool = False, destination: str | None = None) -> list[Delivery]:
        """Deliveries, oldest first; `failed_only` keeps expired, disabled and still-failing pending ones."""
        sql, params = "SELECT * FROM deliveries WHERE 1=1", []
        if failed_only:
            sql += " AND (status IN (?, ?) OR (status = ? AND failures > 0))"
            params += [DeliveryStatus.EXPIRED.value, DeliveryStatus.DISABLED.value, DeliveryStatus.PENDING.value]
        if destination is not None:
            sql, params = sql + " AND destination = ?", params + [destination]
        return [_delivery_from_row(r) for r in self.store.query(sql + " ORDER BY id", tuple(params))]

    def is_disabled(self, destination: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM disabled_destinations WHERE destination = ?", (destination,)))

    def counts(self) -> OutboxCounts:
        results = {(r["destination"], r["result"]): r["count"]
                   for r in self.store.query("SELECT destination, result, count FROM delivery_results")}
        by_status: dict[str, dict[str, int]] = {s.value: {} for s in DeliveryStatus}
        for r in self.store.query("SELECT status, destination, COUNT(*) AS n FROM deliveries "
                                  "GROUP BY status, destination"):
            by_status[r["status"]][r["destination"]] = r["n"]
        return OutboxCounts(results, by_status["pending"], by_status["expired"], by_status["disabled"])

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.deliveries())


def _delivery_from_row(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"], notification_id=row["notification_id"], notification_key=row["notification_key"],
        destination=row["destination"], event_type=row["event_type"], message_id=row["message_id"],
        group_key=row["group_key"], body=row["body"], status=DeliveryStatus(row["status"]),
        attempts=row["attempts"], failures=row["failures"], created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"], expires_at=row["expires_at"],
        last_attempt_at=row["last_attempt_at"], finished_at=row["finished_at"],
        last_status_code=row["last_status_code"], last_error=row["last_error"],
        progress=json.loads(row["progress"] or "{}"),
    )
