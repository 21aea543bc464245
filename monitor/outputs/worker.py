"""Drains the outbox: sends each destination's due deliveries in order and records each outcome."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from monitor.outputs import failpoints
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.outbox import Delivery, DeliveryStatus, Outbox
from monitor.outputs.results import SendOutcome, SendResult

log = logging.getLogger(__name__)


class Destination(Protocol):
    """One output (Slack, one webhook subscription, Alertmanager): turns a delivery into a request."""

    name: str

    def send(self, delivery: Delivery) -> SendResult:
        """Make one attempt; never raise for a failed request, report it as a result."""


@dataclass
class DrainReport:
    """What one pass sent, by outcome."""

    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: SendOutcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())


class OutboxWorker:
    """Sends what is due, destination by destination, oldest first."""

    def __init__(self, outbox: Outbox, destinations: Mapping[str, Destination], clock: Clock | None = None):
        self.outbox = outbox
        self.destinations = dict(destinations)
        self.clock = clock or SystemClock()

    def drain_due(self) -> DrainReport:
        """One pass: every destination sends its due deliveries in order, stopping at one not yet due."""
        report = DrainReport()
        for name, destination in self.destinations.items():
            if self.outbox.is_disabled(name):
                continue
            while True:
                head = self.outbox.head(name)
                if head is None or head.next_attempt_at > self.clock.now():
                    break
                result = self._attempt(destination, head)
                report.add(result.outcome)
                if result.outcome not in (SendOutcome.DELIVERED, SendOutcome.REFUSED):
                    break  # in order: what is behind a failing delivery waits for it
        return report

    def _attempt(self, destination: Destination, delivery: Delivery) -> SendResult:
        delivery = self.outbox.begin_attempt(delivery, self.clock.now())
        try:
            result = destination.send(delivery)
        except Exception as exc:  # noqa: BLE001 - a bug in one output must not stop the others
            log.exception("delivery %s to %s raised", delivery.message_id, delivery.destination)
            result = SendResult(SendOutcome.FAILED, error=f"internal error: {type(exc).__name__}")
        if result.outcome is SendOutcome.DELIVERED:
            failpoints.hit("outbox.after_send")
        after = self.outbox.record(delivery, result, self.clock.now())
        level = logging.INFO if after.status in (DeliveryStatus.DELIVERED, DeliveryStatus.PENDING) else logging.WARNING
        log.log(level, "delivery %s (%s) to %s: %s (attempt %d, status %s)%s", delivery.message_id,
                delivery.event_type, delivery.destination, result.outcome.value, after.attempts, after.status.value,
                f": {result.error}" if result.error else "")
        return result

    def pending(self) -> bool:
        return self.outbox.next_due_at(self.destinations) is not None

    def run_until_idle(self, max_wait_s: float = float("inf")) -> None:
        """Drain, sleeping until the next retry is due, until nothing is pending (or `max_wait_s` passed)."""
        deadline = self.clock.now() + max_wait_s
        while True:
            self.drain_due()
            due_at = self.outbox.next_due_at(self.destinations)
            if due_at is None or due_at > deadline:
                return
            self.clock.sleep(max(0.0, due_at - self.clock.now()))

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0, before_pass=None) -> None:
        """The daemon's loop: pick up new notifications (`before_pass`), drain, sleep; until `stop` is set."""
        while not stop.is_set():
            if before_pass is not None:
                before_pass()
            self.drain_due()
            due_at = self.outbox.next_due_at(self.destinations)
            wait_s = poll_s if due_at is None else min(poll_s, max(0.0, due_at - self.clock.now()))
            stop.wait(wait_s)
