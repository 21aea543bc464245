"""Builds the outbox, its destinations and the router from the config: the one place that wires outputs."""

from __future__ import annotations

import importlib
import logging
import random
from dataclasses import dataclass

from monitor.config import Config
from monitor.outputs.address_guard import Resolver, system_resolver
from monitor.outputs.alertmanager import AlertmanagerDestination
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.outbox import Outbox
from monitor.outputs.links import LinkBuilder
from monitor.outputs.receivers import Integration
from monitor.outputs.routing import Router, route_pending_notifications
from monitor.outputs.slack import SlackDestination
from monitor.outputs.webhooks import WebhookDestination
from monitor.outputs.worker import Destination, OutboxWorker
from monitor.store import StateStore

log = logging.getLogger(__name__)


@dataclass
class DeliveryService:
    """Everything that moves notifications out of the process, built once."""

    outbox: Outbox
    router: Router
    worker: OutboxWorker
    clock: Clock

    def route_pending(self) -> int:
        """Queue deliveries for the notifications the alerting stage left `pending`."""
        return route_pending_notifications(self.outbox, self.router, self.clock.now())

    def drain_once(self) -> None:
        """Route, then send everything due now."""
        self.route_pending()
        self.worker.drain_due()


def build_delivery(config: Config, store: StateStore, clock: Clock | None = None,
                   resolver: Resolver = system_resolver, rng: random.Random | None = None) -> DeliveryService:
    """The outbox, router and worker for `config.outputs`."""
    clock = clock or SystemClock()
    outputs = config.outputs
    schedule = RetrySchedule(tuple(outputs.retry_schedule)) if outputs.retry_schedule else RetrySchedule()
    expire_after_s = outputs.expire_after.total_seconds() if outputs.expire_after else None
    outbox = Outbox(store, schedule, expire_after_s, rng)
    router = Router(outputs, LinkBuilder.from_config(config))
    destinations: dict[str, Destination] = {}
    for integrations in router.integrations.values():
        for integration in integrations:
            destinations[integration.destination] = _integration_destination(integration, store, clock, resolver)
    for subscription in outputs.webhooks:
        webhook = WebhookDestination(subscription, clock, resolver)
        destinations[webhook.name] = webhook
    if outputs.alertmanager:
        destinations["alertmanager"] = AlertmanagerDestination(outputs.alertmanager, resolver)
    outbox.target_digests = router.target_digests()
    for name in outbox.enable_changed_destinations():
        log.info("destination %s re-enabled: its configured target changed since it answered 410 Gone", name)
    return DeliveryService(outbox, router, OutboxWorker(outbox, destinations, clock), clock)


# Integration kind -> (module, class) of its destination; each class is built as
# `Class(name, config, resolver=..., clock=...)`, the contract every integration module keeps.
# Slack is built here directly: its threads live in the state store.
INTEGRATION_DESTINATIONS: dict[str, tuple[str, str]] = {
    "pagerduty": ("monitor.outputs.pagerduty", "PagerDutyDestination"),
    "msteams": ("monitor.outputs.teams", "TeamsDestination"),
    "email": ("monitor.outputs.email", "EmailDestination"),
    "webhook": ("monitor.outputs.am_webhook", "AlertmanagerWebhookDestination"),
}


def _integration_destination(integration: Integration, store: StateStore, clock: Clock,
                             resolver: Resolver) -> Destination:
    """The destination sending one receiver integration's deliveries."""
    if integration.kind == "slack":
        return SlackDestination(integration.config, store, resolver=resolver, name=integration.destination)
    module, class_name = INTEGRATION_DESTINATIONS[integration.kind]
    # Imported when configured: a config without PagerDuty never loads its module.
    destination_class = getattr(importlib.import_module(module), class_name)
    return destination_class(integration.destination, integration.config, resolver=resolver, clock=clock)
