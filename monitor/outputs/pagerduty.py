"""PagerDuty Events API v2: an alert group triggers, repeats and resolves one PagerDuty alert.

The request (`POST /v2/enqueue`) is documented at
https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (fields, limits:
`dedup_key` at most 255 characters, `payload.summary` at most 1024, severity one of
critical/error/warning/info) and its answers at
https://developer.pagerduty.com/docs/events-api-v2/overview/#response-codes--retry-logic
(202 accepted; 400 invalid event, do not retry; 429 and 5xx, retry after some time;
a whole event at most 512 KB).

The `dedup_key` is what keeps one incident one incident: PagerDuty applies every
event with the same key (and the same routing key) to the same open alert. It is
derived from the receiver and the alert group's key alone, never from the attempt,
the replica or the time, so a retry, a repeat, a second daemon after a failover
and the final resolve all name the same alert.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any, Mapping
from urllib.parse import urlsplit

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.config import PagerDutyConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.alert_text import group_title, one_line, ordered_links, truncate
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.message_templates import render_override
from monitor.outputs.outbox import Delivery
from monitor.outputs.receivers import alert_group_of
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.secrets import read_secret, redact


USER_AGENT = "monitor-pagerduty/1"
DEDUP_KEY_PREFIX = "monitor/"
MAX_DEDUP_KEY_CHARS = 255
MAX_SUMMARY_CHARS = 1024
MAX_FIELD_CHARS = 255            # source, component, group, class: short identifiers in PagerDuty's UI
# PagerDuty refuses events over 512 KB; custom_details are cut well below that.
MAX_EVENT_BYTES = 512 * 1024
DETAILS_BUDGET_BYTES = 256 * 1024
MAX_DETAIL_ALERTS = 20
MAX_DETAIL_LABELS = 64           # labels or annotations per alert (or per common set)
MAX_DETAIL_VALUE_CHARS = 1024
# PagerDuty's 429 carries no Retry-After; its docs suggest retrying "30 seconds apart"
# (docs/events-API-v2/05-Rate-Limits.md) and "a backoff of a few minutes". So a 429
# without Retry-After is a failed attempt on the retry schedule, waiting at least this.
THROTTLE_BACKOFF_S = 30.0

SEVERITIES = ("info", "warning", "error", "critical")   # PagerDuty's, least to most severe
# Our `severity` label to PagerDuty's; PagerDuty's own words pass through; anything else is `error`.
SEVERITY_BY_LABEL = {"page": "critical", "ticket": "warning", "info": "info",
                     **{s: s for s in SEVERITIES}}
UNKNOWN_SEVERITY = "error"


def dedup_key(event: AlertGroupEvent) -> str:
    """`monitor/` + sha256(receiver, group key): the same on trigger, repeat, retry, failover and resolve."""
    # A group without a key (never written by this release) is named by its labels, so
    # unrelated groups can never share one incident.
    group = event.group_key or json.dumps(dict(event.group_labels), sort_keys=True)
    digest = hashlib.sha256(f"{event.receiver}\x00{group}".encode()).hexdigest()
    return DEDUP_KEY_PREFIX + digest


def alert_severity(alert: AlertEvent) -> str:
    return SEVERITY_BY_LABEL.get(alert.labels.get("severity", "").strip().lower(), UNKNOWN_SEVERITY)


def group_severity(event: AlertGroupEvent) -> str:
    """The most severe of the firing alerts (of all alerts when none fires)."""
    alerts = [a for a in event.alerts if a.firing] or list(event.alerts)
    if not alerts:
        return SEVERITY_BY_LABEL.get(event.group_labels.get("severity", "").strip().lower(), UNKNOWN_SEVERITY)
    return max((alert_severity(a) for a in alerts), key=SEVERITIES.index)


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def link_text(name: str) -> str:
    """`silence_1h` -> `Silence 1h`: a link's key as the text PagerDuty shows."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:]) if words else "Link"


def default_summary(event: AlertGroupEvent) -> str:
    summary = event.common_annotations.get("summary")
    if summary is None and len(event.alerts) == 1:
        summary = event.alerts[0].annotations.get("summary")
    title = group_title(event)
    return f"{title}: {summary}" if summary else title


def _bounded_map(values: Mapping[str, Any]) -> dict[str, str]:
    items = sorted(dict(values).items())
    out = {truncate(str(k), MAX_DETAIL_VALUE_CHARS): truncate(str(v), MAX_DETAIL_VALUE_CHARS)
           for k, v in items[:MAX_DETAIL_LABELS]}
    if len(items) > MAX_DETAIL_LABELS:
        out["…"] = f"and {len(items) - MAX_DETAIL_LABELS} more"
    return out


def _alert_details(alert: AlertEvent) -> dict[str, Any]:
    evidence = sorted(alert.evidence.items())[:MAX_DETAIL_LABELS]
    return {"status": alert.status, "state": alert.state, "labels": _bounded_map(alert.labels),
            "annotations": _bounded_map(alert.annotations), "value": alert.value,
            "evidence": {truncate(str(k), MAX_DETAIL_VALUE_CHARS): v for k, v in evidence},
            "starts_at": alert.starts_at, "ends_at": alert.ends_at}


def custom_details(event: AlertGroupEvent, command_links: dict[str, str]) -> dict[str, Any]:
    """What a responder needs in PagerDuty: the group, each alert's labels, value and evidence (bounded)."""
    details: dict[str, Any] = {
        "firing": event.firing_count, "resolved": event.resolved_count, "receiver": event.receiver,
        "group_labels": _bounded_map(event.group_labels), "common_labels": _bounded_map(event.common_labels),
        "common_annotations": _bounded_map(event.common_annotations),
        "alerts": [_alert_details(a) for a in event.alerts[:MAX_DETAIL_ALERTS]],
    }
    if event.route_id:
        details["route"] = truncate(event.route_id, MAX_DETAIL_VALUE_CHARS)
    if command_links:
        details["commands"] = {k: truncate(v, MAX_DETAIL_VALUE_CHARS) for k, v in command_links.items()}
    # Hostile or huge alerts: list alerts while the details fit (each alert's size plus a comma).
    alerts, details["alerts"] = details["alerts"], []
    used = _json_size(details)
    for item in alerts:
        used += _json_size(item) + 1
        if used > DETAILS_BUDGET_BYTES:
            break
        details["alerts"].append(item)
    shown = len(details["alerts"])
    if shown < len(event.alerts):
        details["alerts_not_shown"] = len(event.alerts) - shown
    return details


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())


def render_pagerduty(event: AlertGroupEvent, config: PagerDutyConfig, routing_key: str, *,
                     default_source: str = "monitor") -> dict[str, Any]:
    """The Events API v2 body for one alert group notification (no network, no clock, no secret read).

    A resolved group is `resolve` with the same dedup_key and no payload (as the docs'
    resolve example); anything still firing is `trigger`, which PagerDuty applies to
    the open alert with that key (a repeat adds to its log, never a second incident).
    """
    key = dedup_key(event)
    if event.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    summary = render_override(config.template, event, integration="pagerduty", escape="none",
                              fallback=default_summary(event))
    summary = truncate(one_line(summary) or one_line(default_summary(event)), MAX_SUMMARY_CHARS)
    common = event.common_labels
    payload: dict[str, Any] = {
        "summary": summary,
        "source": truncate(one_line(config.source or default_source) or "monitor", MAX_FIELD_CHARS),
        "severity": group_severity(event),
    }
    if event.created_at:
        payload["timestamp"] = event.created_at
    component = common.get("model") or common.get("service")
    if component:
        payload["component"] = truncate(one_line(component), MAX_FIELD_CHARS)
    if common.get("team"):
        payload["group"] = truncate(one_line(common["team"]), MAX_FIELD_CHARS)
    alertname = event.group_labels.get("alertname") or common.get("alertname")
    if alertname:
        payload["class"] = truncate(one_line(alertname), MAX_FIELD_CHARS)
    url_links = {k: v for k, v in ordered_links(event.links) if is_http_url(v)}
    # Links that are not URLs (the `monitor silence add ...` line to paste) go to the details.
    payload["custom_details"] = custom_details(event, {k: v for k, v in event.links.items() if k not in url_links})
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
                            "payload": payload, "client": truncate(config.client, MAX_FIELD_CHARS)}
    if config.client_url:
        body["client_url"] = config.client_url
    if url_links:
        body["links"] = [{"href": href, "text": link_text(name)} for name, href in url_links.items()]
    return body


class PagerDutyDestination:
    """One `pagerduty_configs` entry of one receiver: an outbox destination."""

    def __init__(self, name: str, config: PagerDutyConfig, resolver: Resolver = system_resolver,
                 clock: Clock | None = None):
        self.name = name
        self.config = config
        self.resolver = resolver
        self.clock = clock or SystemClock()
        # The daemon's host as `payload.source` unless configured: the same on every attempt from it.
        self.default_source = socket.gethostname() or "monitor"

    def send(self, delivery: Delivery) -> SendResult:
        event = alert_group_of(delivery, "PagerDuty")
        if isinstance(event, SendResult):
            return event
        if event.status == "resolved" and not self.config.send_resolved:
            return SendResult.delivered(None)   # send_resolved: false, as Alertmanager: nothing to send
        try:
            # Read on every attempt: a rotated key takes effect without a restart.
            routing_key = read_secret(self.config.routing_key_env, self.config.routing_key_file,
                                      f"{self.name} routing_key")
        except MonitorError as exc:
            return SendResult(SendOutcome.FAILED, error=str(exc))
        body = render_pagerduty(event, self.config, routing_key, default_source=self.default_source)
        return self.post(json.dumps(body, separators=(",", ":"), allow_nan=False).encode())

    def post(self, body: bytes) -> SendResult:
        if len(body) > MAX_EVENT_BYTES:  # custom_details are bounded well below; this is a bug if it happens
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: event of {len(body)} bytes is over "
                                                         f"PagerDuty's {MAX_EVENT_BYTES}")
        try:
            answer = http_transport.post_url(self.config.url, body,
                                             {"content-type": "application/json", "user-agent": USER_AGENT},
                                             timeout_s=self.config.timeout.total_seconds(),
                                             allow_private=self.config.allow_private, resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: URL is not http(s) with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: {exc}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED, error=f"{self.name}: no answer from PagerDuty: "
                                                        f"{http_transport.describe_os_error(exc)}")
        return self.classify(answer)

    def classify(self, answer: http_transport.HttpAnswer) -> SendResult:
        retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
        if 200 <= answer.status < 300:
            return SendResult.delivered(answer.status)
        if answer.status == 400:
            # "Bad Request - Check that the JSON is valid. Retry? No": the same event never succeeds.
            return SendResult(SendOutcome.REFUSED, 400,
                              error=f"{self.name}: HTTP 400 invalid event: {_server_errors(answer.body)}")
        if answer.status == 429 and retry_after_s is None:
            return SendResult(SendOutcome.FAILED, 429, THROTTLE_BACKOFF_S,
                              error=f"{self.name}: HTTP 429 throttled by PagerDuty")
        outcome = classify_http_status(answer.status, retry_after_s)
        return SendResult(outcome, answer.status, retry_after_s,
                          error=f"{self.name}: HTTP {answer.status}"
                                + (http_transport.REDIRECT_NOTE if answer.is_redirect else ""))


def _server_errors(body: bytes) -> str:
    """PagerDuty's `message` and `errors` from a 400, one line, bounded, with any secret scrubbed."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        errors = data.get("errors")
        parts = [str(data.get("message") or data.get("status") or "")]
        if isinstance(errors, list):
            parts += [str(e) for e in errors]
        text = "; ".join(p for p in parts if p)
    return truncate(one_line(redact(text)), 400) or "(no details)"
