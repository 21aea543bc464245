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
import os
import random
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from monitor.alerting.notification_repository import NotificationRepository
from monitor.errors import MonitorError
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.outbox_repository import (FINISHED_FAILED, Delivery, DeliveryStatus, NewDelivery,
                                               OutboxRepository)
from monitor.outputs.results import SendOutcome, SendResult
from monitor.store import StateStore

# How long a claimed delivery is reserved for the worker that claimed it (see `claim`): past it, a
# worker that died mid-send has its delivery sent by another.
DEFAULT_CLAIM_S = 120.0


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
    """The outbox's policy (ordering, retries, expiry, disabling) over `OutboxRepository`'s tables;
    times are unix seconds passed in by the caller."""

    def __init__(self, store: StateStore, schedule: RetrySchedule | None = None,
                 expire_after_s: float | None = None, rng: random.Random | None = None):
        self.store = store
        self.rows = OutboxRepository(store)
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
        # Who this process's delivery worker claims deliveries as (`claim`). One SQLite file has one
        # writer, so a restarted process takes over its predecessor's claims at once; on a shared
        # database each process claims as itself (the leader lease may set the replica's name).
        self.claimant = "local" if store.dialect == "sqlite" else \
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- writing ----------------------------------------------------------------------

    def enqueue(self, items: Iterable[OutboxItem], now: float, conn: Any | None = None) -> int:
        """Queue deliveries (idempotent per notification and destination); returns how many are new.

        Pass `conn` to write inside a caller's transaction (with the state change that caused them).
        """
        if conn is None:
            with self.store.transaction() as own:
                return self._insert(own, items, now)
        return self._insert(conn, items, now)

    def _insert(self, conn: Any, items: Iterable[OutboxItem], now: float) -> int:
        disabled = self.rows.disabled_names(conn)
        rows = []
        for item in items:
            off = item.destination in disabled
            rows.append(NewDelivery(
                item.notification_id, item.notification_key, item.destination, item.event_type,
                message_id_for(item.notification_key, item.destination), item.group_key, item.body,
                DeliveryStatus.DISABLED if off else DeliveryStatus.PENDING, now,
                now + self.schedule.delays[0].total_seconds(), now + self.expire_after_s, now if off else None,
                "destination disabled (it answered 410 Gone)" if off else None))
        return self.rows.insert(conn, rows)

    def begin_attempt(self, delivery: Delivery, now: float) -> Delivery:
        """Count the attempt before the request leaves, so a crash mid-send is still visible."""
        with self.store.transaction() as conn:
            self.rows.count_attempt(conn, delivery.id, now)
        return self.get(delivery.id)

    def claim(self, destination: str, now: float, claimant: str, claim_s: float = DEFAULT_CLAIM_S
              ) -> Delivery | None:
        """Take the destination's head to send it, if it is due and no other worker holds it: the attempt
        is counted before the request leaves, and the row is reserved for `claimant` for `claim_s` (so two
        replicas' workers never send the same delivery). None when there is nothing to send now."""
        with self.store.transaction() as conn:
            return self.rows.claim_head(conn, destination, now, claimant, claim_s)

    def record(self, delivery: Delivery, result: SendResult, now: float) -> Delivery:
        """Commit an attempt's outcome: delivered, retry later, expired or disabled."""
        progress = {**delivery.progress, **result.progress}
        with self.store.transaction() as conn:
            self.rows.count_result(conn, delivery.destination, result.outcome.value)
            if result.outcome is SendOutcome.DELIVERED:
                self.rows.finish(conn, delivery.id, DeliveryStatus.DELIVERED, now, result.status_code, None,
                                 progress)
            elif result.outcome is SendOutcome.GONE:
                self._disable_destination(conn, delivery.destination, now, result)
            elif result.outcome is SendOutcome.REFUSED:
                self.rows.finish(conn, delivery.id, DeliveryStatus.EXPIRED, now, result.status_code, result.error,
                                 progress)
            else:
                self._schedule_retry(conn, delivery, result, now, progress)
            self._update_notification_status(conn, delivery.notification_id)
        return self.get(delivery.id)

    def _schedule_retry(self, conn: Any, delivery: Delivery, result: SendResult, now: float,
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
            self.rows.finish(conn, delivery.id, DeliveryStatus.EXPIRED, now, result.status_code, why, progress,
                             failures=failures)
            return
        self.rows.schedule_retry(conn, delivery.id, failures, now + delay_s, result.status_code, result.error,
                                 progress)

    def _disable_destination(self, conn: Any, destination: str, now: float, result: SendResult) -> None:
        """410 Gone: stop sending to this destination; what was queued for it stays visible."""
        reason = f"destination disabled: it answered {result.status_code or 410} Gone"
        for notification_id in self.rows.disable_destination(conn, destination,
                                                             self.target_digests.get(destination, ""), now,
                                                             reason, result.status_code):
            self._update_notification_status(conn, notification_id)

    def _update_notification_status(self, conn: Any, notification_id: int | None) -> None:
        """A queued notification is `delivered` once every delivery of it is, `failed` if any gave up."""
        if notification_id is None:
            return
        statuses = self.rows.statuses_of_notification(conn, notification_id)
        if DeliveryStatus.PENDING.value in statuses or not statuses:
            return
        failed = statuses & {s.value for s in FINISHED_FAILED}
        self.notifications.settle(conn, notification_id, any_failed=bool(failed))

    def enable_destination(self, destination: str) -> bool:
        """Send to a destination again after a 410 (e.g. its URL was fixed); True if it was disabled."""
        with self.store.transaction() as conn:
            return bool(self.rows.enable_destinations(conn, [destination]))

    def enable_all_destinations(self) -> list[str]:
        """A config reload: every destination disabled by a 410 is sent to again (if it still answers
        410 it is disabled again after one request). Returns the names re-enabled."""
        with self.store.transaction() as conn:
            return self.rows.enable_destinations(conn)

    def enable_changed_destinations(self) -> list[str]:
        """At start: re-enable each disabled destination whose configured target is no longer the one
        that answered 410 (per `target_digests`; one no longer configured is forgotten too)."""
        with self.store.transaction() as conn:
            changed = [name for name, digest in self.rows.disabled_digests(conn).items()
                       if self.target_digests.get(name) != digest]
            return self.rows.enable_destinations(conn, changed)

    def retry(self, delivery_id: int, now: float, configured: Iterable[str] | None = None) -> Delivery:
        """Queue a failed (expired or disabled) delivery again with a fresh retry schedule, due now;
        a pending one is made due now. Raises RetryRefused (delivered, unknown, its destination not in
        `configured` or still disabled, or it would overtake a newer message of its group)."""
        with self.store.transaction() as conn:
            delivery = self.rows.get_in(conn, delivery_id)
            if delivery is None:
                raise RetryRefused(f"no delivery with id {delivery_id} (see `monitor deliveries`)")
            if delivery.status is DeliveryStatus.DELIVERED:
                raise RetryRefused(f"delivery {delivery_id} to {delivery.destination} was already delivered; "
                                   f"nothing to retry")
            if configured is not None and delivery.destination not in set(configured):
                raise RetryRefused(f"delivery {delivery_id}: {delivery.destination} is not in the config's "
                                   f"outputs any more, so nothing would send it")
            disabled = self.rows.disabled_reason(conn, delivery.destination)
            if disabled is not None:
                raise RetryRefused(f"delivery {delivery_id}: {delivery.destination} is disabled ({disabled}); "
                                   f"fix its target and reload the config (SIGHUP), then retry")
            if delivery.group_key is not None:
                newer = self.rows.newer_delivered(conn, delivery)
                if newer is not None:
                    raise RetryRefused(f"delivery {delivery_id}: a newer message of its alert group was already "
                                       f"delivered to {delivery.destination} (delivery {newer}); re-sending "
                                       f"this older one would overtake it")
            self.rows.requeue(conn, delivery_id, now, now + self.expire_after_s)
            if delivery.notification_id is not None:
                self.notifications.mark_rerouted(conn, delivery.notification_id)
        return self.get(delivery_id)

    def prune(self, finished_before: float, batch: int) -> int:
        """Delete up to `batch` deliveries finished (delivered, expired, disabled) before `finished_before`,
        oldest first; pending ones are never deleted. Returns how many were deleted."""
        with self.store.transaction() as conn:
            return self.rows.prune(conn, finished_before, batch)

    # -- reading ----------------------------------------------------------------------

    def get(self, delivery_id: int) -> Delivery:
        delivery = self.rows.get(delivery_id)
        if delivery is None:
            raise KeyError(delivery_id)
        return delivery

    def head(self, destination: str) -> Delivery | None:
        """The oldest pending delivery for a destination: the only one that may be sent next."""
        return self.rows.head(destination)

    def ready_at(self, head: Delivery) -> float:
        """When this process may send `head`: when it is due, or, while another worker's claim on it
        holds (a replica sending it now), when that claim lapses."""
        if head.claimed_by not in (None, self.claimant) and head.claimed_until is not None:
            return max(head.next_attempt_at, head.claimed_until)
        return head.next_attempt_at

    def next_due_at(self, destinations: Iterable[str]) -> float | None:
        """When the earliest head among `destinations` may be sent, or None when nothing is pending."""
        times = [self.ready_at(d) for d in (self.head(name) for name in destinations) if d is not None]
        return min(times) if times else None

    def deliveries(self, failed_only: bool = False, destination: str | None = None) -> list[Delivery]:
        """Deliveries, oldest first; `failed_only` keeps expired, disabled and still-failing pending ones."""
        return self.rows.deliveries(failed_only, destination)

    def is_disabled(self, destination: str) -> bool:
        return self.rows.is_disabled(destination)

    def counts(self) -> OutboxCounts:
        by_status = self.rows.counts_by_status()
        return OutboxCounts(self.rows.results(), by_status["pending"], by_status["expired"], by_status["disabled"])

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.deliveries())


__all__ = ["Delivery", "DeliveryStatus", "FINISHED_FAILED", "Outbox", "OutboxCounts", "OutboxItem", "RetryRefused",
           "message_id_for"]
