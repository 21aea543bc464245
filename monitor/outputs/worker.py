"""Drains the outbox: sends each destination's due deliveries in order and records each outcome.

In the daemon each destination has its own lane (a thread), so a receiver that is
slow, or drips its answer until the request's deadline, delays only its own
deliveries: a Slack page never waits behind a webhook. Within a lane deliveries
stay strictly in order. Lanes share the state store, which serialises its writes;
the network waits happen outside it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from monitor.outputs import failpoints
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.outbox import Delivery, DeliveryStatus, Outbox
from monitor.outputs.results import SendOutcome, SendResult
from monitor.store import StateError

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
        for name in self.destinations:
            self.drain_destination(name, report)
        return report

    def drain_destination(self, name: str, report: DrainReport | None = None,
                          stop: threading.Event | None = None) -> DrainReport:
        """Send one destination's due deliveries in order (until one fails, is not yet due, or `stop` is set)."""
        report = report if report is not None else DrainReport()
        destination = self.destinations[name]
        if self.outbox.is_disabled(name):
            return report
        while stop is None or not stop.is_set():
            # Claimed, not just read: another replica's worker never takes the same delivery.
            head = self.outbox.claim(name, self.clock.now(), self.outbox.claimant)
            if head is None:
                break
            result = self._attempt(destination, head)
            report.add(result.outcome)
            if result.outcome not in (SendOutcome.DELIVERED, SendOutcome.REFUSED):
                break  # in order: what is behind a failing delivery waits for it
        return report

    def _attempt(self, destination: Destination, delivery: Delivery) -> SendResult:
        """Send a claimed delivery (its attempt already counted) and commit the outcome."""
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

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0,
                    before_pass: Callable[[], int | None] | None = None) -> None:
        """The daemon's loop, until `stop` is set: one lane per destination, and this thread routing.

        `before_pass` picks up new notifications (returns how many deliveries it
        queued) every `poll_s`; lanes are woken when it queued any. Returns once
        every lane has finished its in-flight delivery (each bounded by its deadline);
        `stop` is set on the way out, whatever ended the loop, so no lane outlives it.
        """
        wake = {name: threading.Event() for name in self.destinations}
        lanes = [threading.Thread(target=self._run_lane, args=(name, stop, wake[name], poll_s),
                                  name=f"outbox:{name}", daemon=True) for name in self.destinations]
        for lane in lanes:
            lane.start()
        try:
            while not stop.is_set():
                if before_pass is not None:
                    try:
                        queued = before_pass()
                    except StateError as exc:  # the state's own fault (locked, unreachable, fenced out): one line
                        log.warning("routing new notifications failed: %s; trying again in %.0fs", exc, poll_s)
                        queued = 0
                    except Exception:  # noqa: BLE001 - routing fails this pass, the lanes go on
                        log.exception("routing new notifications failed; trying again in %.0fs", poll_s)
                        queued = 0
                    if queued:
                        for event in wake.values():
                            event.set()
                stop.wait(poll_s)
        finally:
            stop.set()
            for event in wake.values():
                event.set()
            for lane in lanes:
                lane.join()

    def _run_lane(self, name: str, stop: threading.Event, wake: threading.Event, poll_s: float) -> None:
        """One destination's loop: send what is due, then sleep until the head is due or new work arrives."""
        while not stop.is_set():
            try:
                self.drain_destination(name, stop=stop)
                head = self.outbox.head(name)
            except StateError as exc:
                # A locked or unreachable state, or a replica fenced out after it stepped down: the
                # StateError is the whole story, one line (a traceback would only repeat it).
                log.warning("outbox lane %s: %s; trying again in %.0fs", name, exc, poll_s)
                head = None
            except Exception:  # noqa: BLE001 - a bug: try again, never die silently
                log.exception("outbox lane %s failed; trying again in %.0fs", name, poll_s)
                head = None
            wait_s = poll_s if head is None else min(poll_s, max(0.0, self.outbox.ready_at(head) - self.clock.now()))
            wake.wait(wait_s)
            wake.clear()
