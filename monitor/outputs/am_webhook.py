"""A generic webhook whose body is Alertmanager's webhook payload, version 4 (`webhook_configs`).

Receivers written for Alertmanager (incident bots, ticketing bridges, chat relays)
work unchanged: the body has exactly the fields Alertmanager documents
(prometheus.io/docs/alerting/latest/configuration/#webhook_config), with its
conventions: an unset `endsAt` is Go's zero time `0001-01-01T00:00:00Z`, `groupKey`
is the route's key and the group labels (`{}/{severity="page"}/0:{alertname="X"}`),
`max_alerts` keeps the first N alerts and says how many were cut in
`truncatedAlerts`, and `send_resolved: false` leaves resolved alerts out (a
notification with nothing left is not sent, and reported delivered).

`generatorURL` is the alert's graph (its PromQL, or the daemon's exported series);
`externalURL`, Alertmanager's back link, is the dashboard or else the weekly report.

Retries follow Alertmanager's webhook notifier: a 5xx (or 429, or no answer) is
retried, any other 4xx is the receiver refusing this body and is not.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.addresses import http_url_problem
from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.config import AlertmanagerWebhookConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.clock import Clock
from monitor.outputs.links import DASHBOARD, GRAPH, REPORT, alert_graph_key, promql_string
from monitor.outputs.outbox import Delivery
from monitor.outputs.receivers import alert_group_of
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.secrets import read_secret

VERSION = "4"
# Go's zero time.Time, which Alertmanager sends for an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"


def group_key(event: AlertGroupEvent) -> str:
    """Alertmanager's group key: the route's key, then the group labels as a Prometheus label set."""
    labels = ", ".join(f"{name}={promql_string(value)}" for name, value in sorted(event.group_labels.items()))
    return f"{event.route_id or '{}'}:{{{labels}}}"


def render_webhook_payload(event: AlertGroupEvent, config: AlertmanagerWebhookConfig) -> dict[str, Any] | None:
    """The version 4 payload for `event`, or None when `send_resolved: false` leaves no alert to send."""
    alerts = [a for a in event.alerts if config.send_resolved or a.firing]
    if not alerts:
        return None
    kept = alerts[: config.max_alerts] if config.max_alerts > 0 else alerts
    common = AlertGroupEvent(event.kind, event.status, event.group_key, event.group_labels, tuple(alerts),
                             event.created_at)
    return {
        "version": VERSION,
        "groupKey": group_key(event),
        "truncatedAlerts": len(alerts) - len(kept),
        "status": "firing" if any(a.firing for a in alerts) else "resolved",
        "receiver": event.receiver,
        "groupLabels": dict(event.group_labels),
        "commonLabels": common.common_labels,
        "commonAnnotations": common.common_annotations,
        "externalURL": event.links.get(DASHBOARD) or event.links.get(REPORT) or "",
        "alerts": [_alert(a, event) for a in kept],
    }


def _alert(alert: AlertEvent, event: AlertGroupEvent) -> dict[str, Any]:
    return {
        "status": "firing" if alert.firing else "resolved",
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": alert.starts_at or ZERO_TIME,
        # A firing alert has not ended, whatever a stored row says.
        "endsAt": (alert.ends_at or ZERO_TIME) if not alert.firing else ZERO_TIME,
        "generatorURL": event.links.get(alert_graph_key(alert)) or event.links.get(GRAPH) or "",
        "fingerprint": alert.fingerprint,
    }


class AlertmanagerWebhookDestination:
    """Posts alert group notifications to one Alertmanager-compatible webhook receiver."""

    def __init__(self, name: str, config: AlertmanagerWebhookConfig, resolver: Resolver = system_resolver,
                 clock: Clock | None = None):
        self.name = name
        self.config = config
        self.resolver = resolver
        self.clock = clock

    def send(self, delivery: Delivery) -> SendResult:
        event = alert_group_of(delivery, "an Alertmanager webhook")
        if isinstance(event, SendResult):
            return event
        payload = render_webhook_payload(event, self.config)
        if payload is None:
            return SendResult.delivered(None)  # send_resolved: false, and only resolved alerts: nothing to say
        try:
            url = self.config.url or read_secret(self.config.url_env, self.config.url_file, "webhook url")
        except MonitorError as exc:  # names where the secret was looked for, never its value
            return SendResult(SendOutcome.FAILED, error=str(exc))
        where = "url" if self.config.url else (self.config.url_env or self.config.url_file)
        if http_url_problem(url):
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: the URL in {where} is not http(s) with a host")
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            answer = http_transport.post_url(url, body, {"content-type": "application/json",
                                                         "user-agent": "monitor (alertmanager-webhook/4)"},
                                             timeout_s=self.config.timeout.total_seconds(),
                                             allow_private=self.config.allow_private, resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: the URL in {where} is not http(s) with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: {exc}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED, error=f"{self.name}: no answer: {http_transport.describe_os_error(exc)}")
        return _result(self.name, answer)


def _result(name: str, answer: http_transport.HttpAnswer) -> SendResult:
    retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
    outcome = classify_http_status(answer.status, retry_after_s)
    if outcome is SendOutcome.DELIVERED:
        return SendResult(outcome, answer.status)
    if 400 <= answer.status < 500 and answer.status not in (408, 429):
        outcome = SendOutcome.REFUSED  # Alertmanager does not retry a 4xx: this body will not be accepted
    note = http_transport.REDIRECT_NOTE if answer.is_redirect else ""
    return SendResult(outcome, answer.status, retry_after_s, f"{name}: HTTP {answer.status}{note}")


__all__ = ["AlertmanagerWebhookDestination", "render_webhook_payload", "group_key", "VERSION", "ZERO_TIME"]
