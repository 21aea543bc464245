"""Which destinations each queued notification goes to, and the body each will be sent.

An alert group event goes to every integration of its receiver (the route that
grouped it named the receiver: `outputs.route`, `outputs.receivers`), one outbox
destination per integration (`receivers.integration_destination`), and to the
legacy `outputs.alertmanager` forwarder. Rollback events go to every webhook
subscription that lists the event type and whose `match` labels the alert carries.
Routing takes the `pending` notifications (`NotificationRepository`) and, in one
transaction, writes the deliveries and marks the notification `routed`: a crash in
between routes it again, and the deliveries' unique key keeps that from queuing
anything twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from monitor.alerting.events import AlertGroupEvent, Event, ReportEvent, event_to_json
from monitor.alerting.notification_repository import NotificationRepository, QueuedNotification
from monitor.config import OutputsConfig
from monitor.outputs import alertmanager
from monitor.outputs.links import LinkBuilder
from monitor.outputs.outbox import Outbox, OutboxItem
from monitor.outputs.receivers import Integration, integrations_of, receivers_by_name
from monitor.outputs.report_announce import report_deliveries
from monitor.outputs.webhooks import destination_name, rollback_event_body, subscribed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Router:
    outputs: OutputsConfig
    links: LinkBuilder = field(default_factory=LinkBuilder)
    # Receivers an event went nowhere for, already logged (once per process, not per event).
    _unreachable_logged: set[str] = field(default_factory=set, compare=False, repr=False)

    @cached_property
    def integrations(self) -> dict[str, list[Integration]]:
        """Receiver name -> its integrations (the implicit `default` being the legacy `outputs.slack`);
        worked out once per config, not once per routed event."""
        return {name: integrations_of(receiver) for name, receiver in receivers_by_name(self.outputs).items()}

    def destinations(self) -> list[str]:
        """Every destination name this config sends to."""
        return list(self._targets())

    def target_digests(self) -> dict[str, str]:
        """Per destination, a digest of its configured target (URL, channel, secret names; never a
        secret's value): a destination disabled by a 410 is re-enabled when this changes."""
        return {name: hashlib.sha256(repr(config).encode()).hexdigest()[:32]
                for name, config in self._targets().items()}

    def _targets(self) -> dict[str, object]:
        targets: dict[str, object] = {}
        for integrations in self.integrations.values():
            targets.update((i.destination, i.config) for i in integrations)
        for subscription in self.outputs.webhooks:
            targets[destination_name(subscription)] = subscription
        if self.outputs.alertmanager:
            targets[alertmanager.DESTINATION] = self.outputs.alertmanager
        return targets

    def route(self, notification_key: str, event: Event, notification_id: int | None = None) -> list[OutboxItem]:
        """The deliveries for one notification."""
        if isinstance(event, AlertGroupEvent):
            return self._route_group(notification_key, event, notification_id)
        if isinstance(event, ReportEvent):
            return report_deliveries(event, self.outputs, notification_key, notification_id)
        event = replace(event, alert=self.links.with_absolute_runbook(event.alert))
        links = self.links.for_alerts([event.alert])
        body = rollback_event_body(event, links)
        return [OutboxItem(notification_key, destination_name(subscription), event.kind, body, None,
                           notification_id)
                for subscription in self.outputs.webhooks
                if subscribed(subscription, event.kind, event.alert.labels)]

    def _route_group(self, notification_key: str, event: AlertGroupEvent,
                     notification_id: int | None) -> list[OutboxItem]:
        event = self.links.with_absolute_runbooks(event)
        links = self.links.for_event(event)
        body = event_to_json(event.with_links(links))
        items = [OutboxItem(notification_key, integration.destination, event.kind, body, event.group_key,
                            notification_id)
                 for integration in self.integrations.get(event.receiver, [])]
        if self.outputs.alertmanager:
            items.append(OutboxItem(notification_key, alertmanager.DESTINATION, event.kind,
                                    alertmanager.alerts_body(event, links.get("prometheus")), event.group_key,
                                    notification_id))
        if not items and event.receiver not in self._unreachable_logged:
            self._unreachable_logged.add(event.receiver)
            log.warning("alert group notifications for receiver %r go nowhere: it has no integrations%s",
                        event.receiver, "" if event.receiver in self.integrations
                        else " (no receiver of that name is configured)")
        return items


def route_pending_notifications(outbox: Outbox, router: Router, now: float) -> int:
    """Move every `pending` notification into the outbox; returns how many deliveries were queued."""
    queued = 0
    notifications = outbox.notifications
    with outbox.store.transaction() as conn:
        for pending in notifications.pending(conn):
            queued += _route_one(conn, outbox, router, notifications, pending, now)
    return queued


def _route_one(conn: Any, outbox: Outbox, router: Router, notifications: NotificationRepository,
               pending: QueuedNotification, now: float) -> int:
    items = router.route(pending.notification.idempotency_key, pending.notification.payload, pending.id)
    added = outbox.enqueue(items, now, conn=conn)
    notifications.mark_routed(conn, pending.id, len(items))
    return added
