"""Forward alerts to an existing Alertmanager (`POST /api/v2/alerts`), keeping an organisation's routing.

Each alert group notification becomes Alertmanager's postable alerts: labels,
annotations, startsAt, and endsAt once resolved. Alertmanager dedups on the label
set, so a re-send after a crash is harmless. It also resolves an alert by itself
when it has not been re-sent within its `resolve_timeout` (5m by default): the
daemon should re-push firing alerts each cycle (`AlertmanagerDestination.push`),
as Prometheus does; the outbox carries the transitions so none is lost.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.config import AlertmanagerConfig
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.outbox import Delivery
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status

DESTINATION = "alertmanager"
ALERTS_PATH = "/api/v2/alerts"


def postable_alerts(alerts: Sequence[AlertEvent], generator_url: str | None = None) -> list[dict[str, Any]]:
    """Alerts in Alertmanager's API v2 shape (`postableAlerts`)."""
    out: list[dict[str, Any]] = []
    for alert in alerts:
        item: dict[str, Any] = {"labels": dict(alert.labels), "annotations": dict(alert.annotations)}
        if alert.starts_at:
            item["startsAt"] = alert.starts_at
        if not alert.firing and alert.ends_at:
            item["endsAt"] = alert.ends_at
        if generator_url:
            item["generatorURL"] = generator_url
        out.append(item)
    return out


def alerts_body(event: AlertGroupEvent, generator_url: str | None = None) -> str:
    """The body forwarding one alert group notification's alerts."""
    return json.dumps(postable_alerts(event.alerts, generator_url), separators=(",", ":"))


class AlertmanagerDestination:
    """Posts alerts to one Alertmanager."""

    name = DESTINATION

    def __init__(self, config: AlertmanagerConfig, resolver: Resolver = system_resolver):
        self.url = config.url.rstrip("/") + ALERTS_PATH
        self.timeout_s = config.timeout.total_seconds()
        # Alertmanager usually runs inside the cluster: the README says to set allow_private.
        self.allow_private = config.allow_private
        self.resolver = resolver

    def send(self, delivery: Delivery) -> SendResult:
        return self.post(delivery.body)

    def push(self, alerts: Sequence[Mapping[str, Any]]) -> SendResult:
        """Post already-shaped alerts now (the per-cycle re-push of what is firing)."""
        return self.post(json.dumps(list(alerts), separators=(",", ":")))

    def post(self, body: str) -> SendResult:
        try:
            answer = http_transport.post_url(self.url, body.encode(), {"content-type": "application/json"},
                                             timeout_s=self.timeout_s, allow_private=self.allow_private,
                                             resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED, error="alertmanager: URL is not http(s) with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"alertmanager: {exc}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED,
                              error=f"alertmanager: no answer: {http_transport.describe_os_error(exc)}")
        retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
        outcome = classify_http_status(answer.status, retry_after_s)
        if answer.status == 400:
            # Alertmanager rejected the alerts themselves: re-sending cannot fix them.
            text = answer.body[:300].decode("utf-8", errors="replace")
            return SendResult(SendOutcome.REFUSED, 400, error=f"alertmanager: HTTP 400: {text}")
        error = None if outcome is SendOutcome.DELIVERED else (
            f"alertmanager: HTTP {answer.status}" + (http_transport.REDIRECT_NOTE if answer.is_redirect else ""))
        return SendResult(outcome, answer.status, retry_after_s, error)
