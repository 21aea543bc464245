"""A PagerDuty Events API v2 stand-in: `POST /v2/enqueue`, validated and answered as the docs say.

The request schema below is written from PagerDuty's documentation of alert events
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/, the
PagerDuty/developer-docs file docs/events-API-v2/02-Trigger-Events.md): a 32-character
`routing_key`; `event_action` trigger, acknowledge or resolve; `dedup_key` at most 255
characters (required to acknowledge or resolve); a trigger's `payload` with `summary`
(at most 1024 characters), `source` and `severity` (critical, error, warning, info),
optional `timestamp` (ISO 8601), `component`, `group`, `class` and `custom_details`
(an object); `links` of {href, text}; `images` of {src (https), href, alt}; `client`
and `client_url`. It is stricter than PagerDuty in one way: unknown fields are refused,
so a misspelt field fails a test instead of being silently ignored.

Answers (docs/events-API-v2/01-Overview.md, "Response Codes & Retry Logic"): 202
with `dedup_key`; 400 `invalid event` with `errors`; 429 when told to throttle
(PagerDuty sends no Retry-After); 5xx when told to fail. Events are at most 512 KB.

It also keeps PagerDuty's alert model, so a test can count incidents: a trigger
opens an alert unless one is open with the same dedup_key *and* routing_key; a
resolve closes that alert, or is dropped when none is open.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from .faults import Fault, FaultQueue
from .http_base import LoopbackServer, QuietHandler

ENQUEUE_PATH = "/v2/enqueue"
MAX_EVENT_BYTES = 512 * 1024

_STRING = {"type": "string"}
EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "PagerDuty Events API v2 alert event",
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": _STRING,
                "component": _STRING,
                "group": _STRING,
                "class": _STRING,
                "custom_details": {"type": "object"},
            },
        },
        "images": {"type": "array", "items": {
            "type": "object", "required": ["src"], "additionalProperties": False,
            "properties": {"src": {"type": "string", "pattern": "^https://"}, "href": _STRING, "alt": _STRING}}},
        "links": {"type": "array", "items": {
            "type": "object", "required": ["href"], "additionalProperties": False,
            "properties": {"href": _STRING, "text": _STRING}}},
        "client": _STRING,
        "client_url": _STRING,
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}, "required": ["event_action"]},
         "then": {"required": ["payload"]}},
        {"if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}, "required": ["event_action"]},
         "then": {"required": ["dedup_key"]}},
    ],
}
Draft202012Validator.check_schema(EVENT_SCHEMA)
_VALIDATOR = Draft202012Validator(EVENT_SCHEMA)


def schema_errors(event: Any) -> list[str]:
    """Every way `event` breaks the documented schema (empty when it is valid)."""
    errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '(event)'}: {e.message}"
              for e in sorted(_VALIDATOR.iter_errors(event), key=lambda e: list(map(str, e.absolute_path)))]
    if errors or not isinstance(event, dict):
        return errors
    # Formats the schema keywords above leave unchecked without extra packages.
    timestamp = (event.get("payload") or {}).get("timestamp")
    if timestamp is not None:
        try:
            datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"payload.timestamp: {timestamp!r} is not ISO 8601")
    for where, url in [("client_url", event.get("client_url"))] + [
            (f"links.{i}.href", link["href"]) for i, link in enumerate(event.get("links") or [])]:
        if url is not None and not _is_http_url(url):
            errors.append(f"{where}: {url!r} is not an http(s) URL")
    return errors


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass
class PagerDutyRequest:
    path: str
    content_type: str | None
    raw: bytes
    event: dict[str, Any] | None
    answered: int
    errors: list[str]
    received_at: float


@dataclass
class PagerDutyAlert:
    routing_key: str
    dedup_key: str
    status: str                                  # "triggered" | "resolved"
    log: list[dict[str, Any]] = field(default_factory=list)   # every event applied to it, in order


@dataclass
class PagerDutyStandIn:
    port: int = 0
    requests: list[PagerDutyRequest] = field(default_factory=list)
    alerts: list[PagerDutyAlert] = field(default_factory=list)     # every alert ever opened, in order
    dropped: list[dict[str, Any]] = field(default_factory=list)    # resolves/acks with no open alert
    faults: FaultQueue = field(default_factory=FaultQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = LoopbackServer(_Handler, self, self.port)

    def __enter__(self) -> "PagerDutyStandIn":
        self.server.start()
        self.port = self.server.port
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{ENQUEUE_PATH}"

    # -- faults ----------------------------------------------------------------------

    def throttle_next(self, count: int, retry_after: str | None = None) -> None:
        """429 for the next `count` requests (PagerDuty sends no Retry-After; a test may add one)."""
        body = json.dumps({"status": "throttle event",
                           "message": "Requests for this service are arriving too quickly. Please retry later."})
        self.faults.add(count, Fault(429, {"Retry-After": retry_after} if retry_after else {}, body.encode()))

    def fail_next(self, count: int, status: int = 500) -> None:
        self.faults.add(count, Fault(status, {}, b'{"status":"error","message":"Internal Server Error"}'))

    def slow_next(self, count: int, delay_s: float) -> None:
        self.faults.add(count, Fault(None, delay_s=delay_s))

    # -- reading what arrived ------------------------------------------------------------

    def accepted(self) -> list[dict[str, Any]]:
        return [r.event for r in self.requests if r.answered == 202 and r.event is not None]

    def open_alerts(self) -> list[PagerDutyAlert]:
        return [a for a in self.alerts if a.status == "triggered"]

    # -- handling --------------------------------------------------------------------

    def handle(self, path: str, content_type: str | None, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        fault = self.faults.take()
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        with self._lock:
            request = PagerDutyRequest(path, content_type, raw, None, 0, [], time.time())
            self.requests.append(request)
            try:
                request.event = json.loads(raw)
            except ValueError:
                request.event = None
            if fault is not None and fault.status is not None:
                request.answered = fault.status
                return fault.status, fault.headers, fault.body
            if path != ENQUEUE_PATH:
                request.answered = 404
                return 404, {}, b'{"status":"not found"}'
            request.errors = self._request_errors(content_type, raw, request.event)
            if request.errors:
                request.answered = 400
                return 400, {}, json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                            "errors": request.errors}).encode()
            assert request.event is not None
            dedup_key = self._apply(request.event)
            request.answered = 202
            return 202, {}, json.dumps({"status": "success", "message": "Event processed",
                                        "dedup_key": dedup_key}).encode()

    def _request_errors(self, content_type: str | None, raw: bytes, event: Any) -> list[str]:
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            return [f"Content-Type must be application/json, not {content_type!r}"]
        if len(raw) > MAX_EVENT_BYTES:
            return [f"Event of {len(raw)} bytes is over the {MAX_EVENT_BYTES}-byte limit"]
        if event is None:
            return ["Request body is not valid JSON"]
        return schema_errors(event)

    def _apply(self, event: dict[str, Any]) -> str:
        """PagerDuty's alert model: one open alert per (routing_key, dedup_key); returns the dedup_key."""
        # A trigger without a dedup_key gets a fresh one: it always opens a new alert.
        key = (event["routing_key"], event.get("dedup_key") or f"generated-{len(self.requests)}")
        open_alert = next((a for a in self.alerts if (a.routing_key, a.dedup_key) == key
                           and a.status == "triggered"), None)
        if event["event_action"] == "trigger":
            if open_alert is None:
                open_alert = PagerDutyAlert(*key, status="triggered")
                self.alerts.append(open_alert)
            open_alert.log.append(event)
        elif open_alert is None:
            self.dropped.append(event)
        else:
            open_alert.log.append(event)
            if event["event_action"] == "resolve":
                open_alert.status = "resolved"
        return key[1]


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        standin: PagerDutyStandIn = self.server.standin  # type: ignore[attr-defined]
        status, headers, body = standin.handle(self.path, self.headers.get("content-type"), self.read_body())
        self.answer(status, body, headers)
