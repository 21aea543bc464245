"""Alertmanager-compatible webhooks: the version 4 payload, checked against Alertmanager's documented JSON,
and delivered through the outbox to a real receiver on loopback."""

from __future__ import annotations

import json
import random
import re
import threading
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from monitor.alerting.events import AlertEvent, AlertGroupEvent, event_to_json
from monitor.alerting.lifecycle import fingerprint
from monitor.config import AlertmanagerWebhookConfig
from monitor.outputs.am_webhook import AlertmanagerWebhookDestination, render_webhook_payload
from monitor.outputs.links import LinkBuilder
from monitor.outputs.outbox import Delivery, DeliveryStatus, Outbox, OutboxItem
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.results import SendOutcome
from monitor.outputs.worker import OutboxWorker
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import write_config
from standins.http_base import LoopbackServer, QuietHandler

DOCUMENTED = Path(__file__).parent / "fixtures" / "alertmanager" / "webhook_v4_documented.txt"
# RFC 3339 date-time, as Go's time.Time marshals it (fractional seconds optional).
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def documented_schema() -> dict:
    """A JSON schema read off Alertmanager's documented payload: every field it lists, nothing else.

    `<string>`, `<int>` and `<object>` (label and annotation maps: string values) are
    types, `"<a|b>"` an enum, `"<rfc3339>"` a timestamp, a quoted literal a constant,
    and `...` after an array's item means more items of that shape.
    """
    text = "\n".join(line for line in DOCUMENTED.read_text().splitlines() if not line.startswith("#"))
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r",\s*\.\.\.", "", text)
    text = re.sub(r"<(string|int|object)>", r'"<<\1>>"', text)
    return _schema(json.loads(text))


def _schema(doc):
    if isinstance(doc, dict):
        return {"type": "object", "properties": {k: _schema(v) for k, v in doc.items()}, "required": list(doc),
                "additionalProperties": False}
    if isinstance(doc, list):
        return {"type": "array", "items": _schema(doc[0])}
    if doc == "<<string>>":
        return {"type": "string"}
    if doc == "<<int>>":
        return {"type": "integer", "minimum": 0}
    if doc == "<<object>>":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if doc == "<rfc3339>":
        return {"type": "string", "pattern": RFC3339}
    if doc.startswith("<") and "|" in doc:
        return {"enum": doc.strip("<>").split("|")}
    return {"const": doc}


SCHEMA = documented_schema()


def alert(status="firing", **labels) -> AlertEvent:
    labels = {"alertname": "SLOErrorBudgetBurnPage", "severity": "page", "service": "ranker", **labels}
    return AlertEvent(status=status, state=status, labels=labels,
                      annotations={"summary": f"{labels['service']} burning", "runbook_url": "https://rb.example/slo"},
                      starts_at="2026-11-22T21:00:00Z", ends_at="2026-11-22T22:00:00Z" if status == "resolved" else None,
                      fingerprint=fingerprint(labels), value=15.2, evidence={"burn_rate_1h": 15.2})


def group(*alerts: AlertEvent, status="firing", kind="firing", links=None) -> AlertGroupEvent:
    return AlertGroupEvent(kind=kind, status=status, group_key="abc", group_labels={"alertname": alerts[0].alertname},
                           alerts=alerts, created_at="2026-11-22T21:05:00Z", receiver="ranking",
                           route_id='{}/{severity="page"}/0', links=links or {})


def test_the_schema_is_alertmanagers_and_it_is_strict():
    assert set(SCHEMA["properties"]) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                                         "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert set(SCHEMA["properties"]["alerts"]["items"]["required"]) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    payload = render_webhook_payload(group(alert()), AlertmanagerWebhookConfig(url="http://x"))
    jsonschema.validate(payload, SCHEMA)
    broken = json.loads(json.dumps(payload))
    del broken["alerts"][0]["fingerprint"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "version": 4}, SCHEMA)


@pytest.mark.parametrize("event, config", [
    (group(alert(model="a"), alert(model="b")), AlertmanagerWebhookConfig(url="http://x")),
    (group(alert(status="resolved"), status="resolved", kind="resolved"), AlertmanagerWebhookConfig(url="http://x")),
    (group(*(alert(model=f"m{i}") for i in range(5))), AlertmanagerWebhookConfig(url="http://x", max_alerts=2)),
    (group(alert(service='x"}, evil="1', model="<!channel>\n")), AlertmanagerWebhookConfig(url="http://x")),
], ids=["a firing group of two", "a resolved group", "max_alerts cuts a group of five to two",
        "hostile label values stay strings"])
def test_every_payload_matches_alertmanagers_documented_json(event, config):
    jsonschema.validate(render_webhook_payload(event, config), SCHEMA)


def test_the_payload_carries_alertmanagers_conventions():
    a, b, c = alert(model="a"), alert(model="b"), alert(status="resolved", model="c")
    links = {"prometheus": "https://prom.example/graph?g0.expr=group", f"graph:{a.fingerprint}": "https://prom.example/a",
             "dashboard": "https://grafana.example/d/slo", "report": "https://reports.example/w47.html"}
    payload = render_webhook_payload(group(a, b, c, links=links), AlertmanagerWebhookConfig(url="http://x", max_alerts=2))
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}/{severity="page"}/0:{alertname="SLOErrorBudgetBurnPage"}'
    assert payload["truncatedAlerts"] == 1 and len(payload["alerts"]) == 2
    assert payload["status"] == "firing" and payload["receiver"] == "ranking"
    # Common labels over all three alerts (before truncation), computed independently here.
    expected_common = dict(set.intersection(*(set(x.labels.items()) for x in (a, b, c))))
    assert payload["commonLabels"] == expected_common and "model" not in payload["commonLabels"]
    assert payload["externalURL"] == "https://grafana.example/d/slo"
    first, second = payload["alerts"]
    assert first["endsAt"] == second["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["generatorURL"] == "https://prom.example/a"
    assert second["generatorURL"] == "https://prom.example/graph?g0.expr=group"  # no graph of its own: the group's
    assert first["fingerprint"] == a.fingerprint and first["labels"] == dict(a.labels)
    resolved = render_webhook_payload(group(c, status="resolved"), AlertmanagerWebhookConfig(url="http://x"))
    assert resolved["alerts"][0]["endsAt"] == "2026-11-22T22:00:00Z" and resolved["status"] == "resolved"


def test_send_resolved_false_leaves_resolved_alerts_out():
    config = AlertmanagerWebhookConfig(url="http://x", send_resolved=False)
    assert render_webhook_payload(group(alert(status="resolved"), status="resolved"), config) is None
    mixed = render_webhook_payload(group(alert(model="a"), alert(status="resolved", model="b")), config)
    assert [x["labels"]["model"] for x in mixed["alerts"]] == ["a"] and mixed["truncatedAlerts"] == 0


class AlertmanagerStyleReceiver:
    """A receiver written for Alertmanager: decodes the documented payload and answers as told."""

    def __init__(self, answers: list[int] | None = None):
        self.answers = list(answers or [])
        self.bodies: list[dict] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self.server = LoopbackServer(_Handler, self)

    def __enter__(self) -> "AlertmanagerStyleReceiver":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/alerts"


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        receiver: AlertmanagerStyleReceiver = self.server.standin  # type: ignore[attr-defined]
        body = json.loads(self.read_body())
        with receiver._lock:
            receiver.attempts += 1
            status = receiver.answers.pop(0) if receiver.answers else 200
            if status == 200 and self.headers.get("content-type") == "application/json":
                receiver.bodies.append(body)
        self.answer(status, b"{}")


def deliver(tmp_path, receiver_url: str, events: list[AlertGroupEvent], extra: str = ""):
    config = write_config(tmp_path, f"""
        prometheus_url: https://prom.example
        dashboard_url: "https://grafana.example/d/slo?var-service={{{{ labels.service }}}}"
        route: {{receiver: ops}}
        receivers:
          - name: ops
            webhook_configs:
              - url: {receiver_url}
                allow_private: true
                timeout: 2s
                {extra}
    """)
    [receiver_config] = config.outputs.receivers
    store = StateStore(tmp_path / "state.db")
    clock = ManualClock()
    outbox = Outbox(store, RetrySchedule(tuple(timedelta(seconds=s) for s in (0, 0.2, 0.5))), None, random.Random(7))
    destination = AlertmanagerWebhookDestination("ops/webhook", receiver_config.webhook_configs[0], clock=clock)
    links = LinkBuilder.from_config(config, rules=[])
    items = [OutboxItem(f"{e.kind}:{e.group_key}", destination.name, e.kind,
                        event_to_json(e.with_links(links.for_event(e))), e.group_key) for e in events]
    outbox.enqueue(items, clock.now())
    worker = OutboxWorker(outbox, {destination.name: destination}, clock)
    worker.run_until_idle(max_wait_s=30)
    return outbox


def test_a_receiver_written_for_alertmanager_gets_the_v4_payload_through_the_outbox(tmp_path):
    firing = group(alert(model="a"), alert(model="b"))
    resolved = group(alert(status="resolved", model="a"), alert(status="resolved", model="b"),
                     status="resolved", kind="resolved")
    with AlertmanagerStyleReceiver(answers=[503]) as receiver:
        outbox = deliver(tmp_path, receiver.url, [firing, resolved])
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2
    assert receiver.attempts == 3  # the 503 was retried
    for body in receiver.bodies:
        jsonschema.validate(body, SCHEMA)
    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[0]["externalURL"] == "https://grafana.example/d/slo?var-service=ranker"
    assert receiver.bodies[0]["groupKey"] == receiver.bodies[1]["groupKey"]


def test_a_4xx_is_not_retried_and_send_resolved_false_sends_nothing(tmp_path):
    with AlertmanagerStyleReceiver(answers=[400]) as receiver:
        outbox = deliver(tmp_path, receiver.url, [group(alert())])
    [delivery] = outbox.deliveries()
    assert receiver.attempts == 1 and delivery.status is not DeliveryStatus.PENDING
    assert "HTTP 400" in (delivery.last_error or "")
    with AlertmanagerStyleReceiver() as receiver:
        (tmp_path / "b").mkdir()
        outbox = deliver(tmp_path / "b", receiver.url,
                         [group(alert(status="resolved"), status="resolved", kind="resolved")],
                         extra="send_resolved: false")
    assert receiver.attempts == 0
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED]


def test_a_url_from_a_secret_never_shows_in_an_error(tmp_path, monkeypatch):
    secret_url = "http://127.0.0.1:1/hooks/TOKEN-s3cr3t"
    monkeypatch.setenv("HOOK_URL", secret_url)
    destination = AlertmanagerWebhookDestination(
        "ops/webhook", AlertmanagerWebhookConfig(url_env="HOOK_URL", allow_private=True))
    delivery = Delivery(1, None, "k", "ops/webhook", "firing", "m", None, event_to_json(group(alert())),
                        DeliveryStatus.PENDING, 0, 0, 0.0, 0.0, 0.0, None, None, None, None)
    result = destination.send(delivery)
    assert result.outcome is SendOutcome.FAILED and "s3cr3t" not in (result.error or "")
