"""A webhook receiver that verifies every request with `standardwebhooks` (the spec's reference
implementation) and dedups on `webhook-id`, as the spec tells receivers to.

It records every attempt (valid or not) and the distinct events it accepted. Faults:
`fail_next(n, status)` answers the next n requests with an error (and optional
Retry-After), `answer_with(status)` answers every request so (e.g. 410), and a
receiver built with a port but not started refuses connections: it is down.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .http_base import LoopbackServer, QuietHandler


@dataclass
class WebhookAttempt:
    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    body: bytes
    valid: bool
    answered: int
    received_at: float


@dataclass
class WebhookReceiver:
    secret: str
    port: int = 0
    attempts: list[WebhookAttempt] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)   # webhook-id -> first accepted event
    order: list[str] = field(default_factory=list)                   # webhook-ids in first-accepted order
    _fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _always: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = LoopbackServer(_Handler, self, self.port)
        self.verifier = Webhook(self.secret)

    def start(self) -> "WebhookReceiver":
        self.server.start()
        self.port = self.server.port
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/monitor"

    def fail_next(self, count: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._fail.extend([(status, headers or {})] * count)

    def answer_with(self, status: int | None) -> None:
        with self._lock:
            self._always = status

    def ids_seen(self) -> list[str | None]:
        return [a.webhook_id for a in self.attempts]

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self._lock:
            try:
                event = self.verifier.verify(body, headers)
                valid = True
            except WebhookVerificationError:
                event, valid = None, False
            status, extra = 200, {}
            if not valid:
                status = 400
            elif self._always is not None:
                status = self._always
            elif self._fail:
                status, extra = self._fail.pop(0)
            webhook_id = headers.get("webhook-id")
            self.attempts.append(WebhookAttempt(webhook_id, headers.get("webhook-timestamp"),
                                                headers.get("webhook-signature"), body, valid, status, time.time()))
            if valid and 200 <= status < 300 and webhook_id not in self.events:
                self.events[webhook_id] = event
                self.order.append(webhook_id)
            return status, extra


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        receiver: WebhookReceiver = self.server.standin  # type: ignore[attr-defined]
        body = self.read_body()
        status, headers = receiver.handle(body, {k.lower(): v for k, v in self.headers.items()})
        self.answer(status, json.dumps({"status": status}).encode(), headers)
