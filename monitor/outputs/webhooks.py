"""Rollback webhooks: Standard Webhooks-signed events to the subscriptions in `outputs.webhooks`.

Each subscription is its own outbox destination (`webhook:NAME`), so one receiver
being down never holds up another. The body is fixed when the event is queued and
the `webhook-id` is the delivery's message id, both the same on every retry; the
timestamp and signatures are made fresh for each attempt, as the spec asks.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Mapping

from monitor.alerting.events import RollbackEvent, finite_or_none
from monitor.config import WebhookConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.outbox import Delivery, message_id_for
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.outputs.webhook_signing import parse_secrets, signed_headers
from monitor.secrets import read_secret
from monitor.timeutil import iso_z

log = logging.getLogger(__name__)

USER_AGENT = "monitor-webhooks/1"
DESTINATION_PREFIX = "webhook:"


def destination_name(subscription: WebhookConfig) -> str:
    return f"{DESTINATION_PREFIX}{subscription.name}"


def subscribed(subscription: WebhookConfig, event_type: str, labels: Mapping[str, str]) -> bool:
    """Whether a subscription wants this event: its type is listed and every `match` label agrees."""
    return event_type in subscription.events and all(labels.get(k) == v for k, v in subscription.match.items())


def rollback_event_body(event: RollbackEvent, links: Mapping[str, str]) -> str:
    """The JSON body of a rollback.requested / rollback.cancelled event (fixed at queue time)."""
    alert = event.alert
    body = {
        "type": event.kind,
        "timestamp": event.created_at,
        "data": {
            "model": event.model,
            "bad_version": event.bad_version,
            "last_known_good_version": event.last_known_good_version,
            "reason": event.reason,
            "alert": {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
                      "startsAt": alert.starts_at, "endsAt": alert.ends_at},
            "evidence": {k: finite_or_none(v) for k, v in event.evidence.items()},
            "links": dict(links),
        },
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def ping_body(at: datetime, subscription: str) -> str:
    return json.dumps({"type": "ping", "timestamp": iso_z(at),
                       "data": {"subscription": subscription}}, separators=(",", ":"))


class WebhookDestination:
    """One subscription: signs each attempt and POSTs it to the checked address."""

    def __init__(self, subscription: WebhookConfig, clock: Clock | None = None,
                 resolver: Resolver = system_resolver):
        self.subscription = subscription
        self.name = destination_name(subscription)
        self.clock = clock or SystemClock()
        self.resolver = resolver

    def send(self, delivery: Delivery) -> SendResult:
        return self.send_body(delivery.message_id, delivery.body)

    def send_body(self, message_id: str, body: str) -> SendResult:
        """One signed attempt of `body` with `message_id`."""
        sub = self.subscription
        try:
            # Read on every attempt: a rotated secret takes effect without a restart.
            keys = parse_secrets(read_secret(sub.secret_env, sub.secret_file, f"webhook {sub.name} secret"),
                                 f"webhook {sub.name}")
        except MonitorError as exc:
            return SendResult(SendOutcome.FAILED, error=str(exc))
        # The wall clock, not the outbox's: receivers reject timestamps far from their own.
        timestamp_s = int(SystemClock().now())
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   **signed_headers(keys, message_id, timestamp_s, body)}
        try:
            answer = http_transport.post_url(sub.url, body.encode(), headers, timeout_s=sub.timeout.total_seconds(),
                                             allow_private=sub.allow_private, resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED, error=f"webhook {sub.name}: URL is not http(s) with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"webhook {sub.name}: {exc}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED, error=f"webhook {sub.name}: no answer from "
                                                        f"{http_transport.Target.from_url(sub.url).host}: "
                                                        f"{http_transport.describe_os_error(exc)}")
        retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
        # Standard Webhooks: a 410 means "stop sending to this endpoint".
        outcome = classify_http_status(answer.status, retry_after_s, gone_unsubscribes=True)
        error = None if outcome is SendOutcome.DELIVERED else (
            f"webhook {sub.name}: HTTP {answer.status}" + (http_transport.REDIRECT_NOTE if answer.is_redirect else ""))
        return SendResult(outcome, answer.status, retry_after_s, error)

    def ping(self, now: datetime) -> tuple[str, SendResult]:
        """Send a signed `ping` now, outside the outbox; returns its message id and the result."""
        message_id = message_id_for(f"ping:{now.timestamp()}", self.name)
        return message_id, self.send_body(message_id, ping_body(now, self.subscription.name))
