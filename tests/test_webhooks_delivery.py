"""Rollback webhooks through the outbox to a real receiver on loopback that verifies every signature."""

from __future__ import annotations

import json
import random
import socket
from datetime import datetime, timezone

import pytest

from monitor.alerting.events import AlertEvent, RollbackEvent
from monitor.cli import main
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import new_webhook_secret, write_config
from standins.webhook_receiver import WebhookReceiver

def rollback_payload(model: str = "ranker", bad: str = "v2", good: str = "v1",
                     kind: str = "rollback.requested") -> RollbackEvent:
    alert = AlertEvent(
        status="firing", state="firing",
        labels={"alertname": "ModelScoreDrift", "model": model, "version": bad, "severity": "page"},
        annotations={"summary": "ranker v2 prediction scores drifted",
                     "runbook_url": "https://runbooks.example/drift"},
        starts_at="2026-11-22T21:00:00Z", ends_at=None, fingerprint=f"fp-{model}-{bad}",
        evidence={"psi": 0.31, "ks": 0.18})
    return RollbackEvent(kind=kind, model=model, bad_version=bad, reason=f"{model} {bad} prediction scores drifted",
                         alert=alert, created_at="2026-11-22T21:05:00Z", last_known_good_version=good)


@pytest.fixture
def secret(monkeypatch):
    value = new_webhook_secret()
    monkeypatch.setenv("HOOK_SECRET", value)
    return value


@pytest.fixture
def receiver(secret):
    with WebhookReceiver(secret) as running:
        yield running


def setup(tmp_path, url: str, schedule: str = "[0s, 200ms, 500ms]", extra: str = ""):
    config = write_config(tmp_path, f"""
        retry_schedule: {schedule}
        report_url: https://reports.example/2026-W47.html
        webhooks:
          - name: deployer
            url: {url}
            secret_env: HOOK_SECRET
            allow_private: true
            timeout: 2s
        {extra}
    """)
    store = StateStore(tmp_path / "state.db")
    clock = ManualClock()
    return config, store, clock, build_delivery(config, store, clock, rng=random.Random(7))


def queue(service, clock, key: str, kind: str = "rollback.requested", payload: RollbackEvent | None = None) -> int:
    items = service.router.route(key, payload or rollback_payload(kind=kind))
    return service.outbox.enqueue(items, clock.now())


def test_a_rollback_request_arrives_once_signed_with_the_documented_body(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url)
    assert queue(service, clock, "rollback.requested:fp1:t1") == 1
    service.worker.run_until_idle()
    assert [a.valid for a in receiver.attempts] == [True]
    event = receiver.events[receiver.order[0]]
    assert event["type"] == "rollback.requested"
    assert event["timestamp"] == "2026-11-22T21:05:00Z"
    data = event["data"]
    assert (data["model"], data["bad_version"], data["last_known_good_version"]) == ("ranker", "v2", "v1")
    assert data["alert"]["labels"]["alertname"] == "ModelScoreDrift" and data["alert"]["startsAt"]
    assert data["evidence"] == {"psi": 0.31, "ks": 0.18}
    assert data["links"] == {"report": "https://reports.example/2026-W47.html",
                             "runbook": "https://runbooks.example/drift"}
    assert service.outbox.deliveries()[0].status is DeliveryStatus.DELIVERED


def test_queuing_the_same_notification_twice_delivers_it_once(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url)
    assert queue(service, clock, "k") == 1
    assert queue(service, clock, "k") == 0
    service.worker.run_until_idle()
    assert len(receiver.attempts) == 1


def test_a_receiver_answering_503_for_the_first_attempts_gets_every_event_once_in_order(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url, schedule="[0s, 200ms, 500ms, 1s, 2s]")
    for i in range(3):
        queue(service, clock, f"event-{i}", payload=rollback_payload(bad=f"v{i + 2}"))
    receiver.fail_next(3)
    service.worker.run_until_idle()
    assert all(a.valid for a in receiver.attempts), "every attempt carries a valid signature"
    assert len(receiver.events) == 3
    assert [receiver.events[i]["data"]["bad_version"] for i in receiver.order] == ["v2", "v3", "v4"]
    first = service.outbox.deliveries()[0]
    assert receiver.ids_seen()[:4] == [first.message_id] * 4, "one webhook-id for the event on every retry"
    assert (first.attempts, first.failures) == (4, 3)
    # Every retry waited its scheduled delay (with at most 10% jitter added).
    assert clock.slept[:3] == pytest.approx([0.2, 0.5, 1.0], rel=0.1)
    assert all(s >= d for s, d in zip(clock.slept[:3], [0.2, 0.5, 1.0]))


def test_a_receiver_that_is_down_then_comes_up_gets_the_event_once(tmp_path, secret):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    receiver = WebhookReceiver(secret, port=port)
    _, _, clock, service = setup(tmp_path, receiver.url, schedule="[0s, 200ms, 500ms, 1s]")
    queue(service, clock, "while-down")
    for _ in range(2):  # two attempts against a closed port
        service.worker.drain_due()
        clock.advance(1.0)
    delivery = service.outbox.deliveries()[0]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 2)
    assert "no answer" in delivery.last_error
    with receiver:
        service.worker.run_until_idle()
        assert len(receiver.attempts) == 1 and receiver.attempts[0].valid
        assert receiver.order == [delivery.message_id]
    assert service.outbox.get(delivery.id).status is DeliveryStatus.DELIVERED


def test_retry_after_on_503_is_honoured_beyond_the_schedule(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url)
    receiver.fail_next(1, 503, {"Retry-After": "7"})
    queue(service, clock, "k")
    service.worker.run_until_idle()
    assert clock.slept[0] == pytest.approx(7.0)
    assert len(receiver.events) == 1


def test_an_exhausted_schedule_expires_the_delivery_and_it_stays_visible(tmp_path, receiver, capsys):
    config, store, clock, service = setup(tmp_path, receiver.url)
    receiver.answer_with(500)
    queue(service, clock, "doomed")
    service.worker.run_until_idle()
    delivery = service.outbox.deliveries()[0]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 3)
    assert "gave up after 3 attempt(s)" in delivery.last_error and "HTTP 500" in delivery.last_error
    assert service.outbox.counts().expired == {"webhook:deployer": 1}
    store.close()
    assert main(["deliveries", "--failed", "--json", "--config", config.source_path]) == 0
    shown = json.loads(capsys.readouterr().out)["deliveries"]
    assert [(d["status"], d["attempts"], d["destination"]) for d in shown] == [("expired", 3, "webhook:deployer")]


def test_410_gone_disables_the_subscription_and_nothing_more_is_sent(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url)
    receiver.answer_with(410)
    queue(service, clock, "first")
    queue(service, clock, "second")
    service.worker.run_until_idle()
    queue(service, clock, "after")
    service.worker.run_until_idle()
    assert len(receiver.attempts) == 1
    assert [d.status for d in service.outbox.deliveries()] == [DeliveryStatus.DISABLED] * 3
    assert service.outbox.counts().disabled == {"webhook:deployer": 3}
    assert all("410" in d.last_error for d in service.outbox.deliveries(failed_only=True))


def test_redirects_are_not_followed(tmp_path, receiver):
    with WebhookReceiver(receiver.secret) as elsewhere:
        receiver.answer_with(None)
        receiver.fail_next(5, 302, {"Location": elsewhere.url})
        _, _, clock, service = setup(tmp_path, receiver.url)
        queue(service, clock, "k")
        service.worker.run_until_idle()
        assert elsewhere.attempts == []
    assert "redirects are not followed" in service.outbox.deliveries()[0].last_error


@pytest.mark.parametrize("extra, kind, labels, wanted", [
    ("", "rollback.requested", {"model": "ranker"}, True),
    ("", "rollback.cancelled", {"model": "ranker"}, True),
    ("match: {model: ranker}", "rollback.requested", {"model": "recommender"}, False),
    ("match: {model: ranker}", "rollback.requested", {"model": "ranker"}, True),
    ("events: [rollback.requested]", "rollback.cancelled", {"model": "ranker"}, False),
], ids=["requested events are sent by default", "cancelled events are sent by default",
        "a label filter drops other models", "a label filter keeps its model",
        "an event-type filter drops unlisted types"])
def test_subscriptions_filter_by_event_type_and_labels(tmp_path, extra, kind, labels, wanted):
    config = write_config(tmp_path, f"""
        webhooks:
          - name: deployer
            url: http://127.0.0.1:9/hook
            secret_env: HOOK_SECRET
            {extra}
    """)
    payload = rollback_payload(model=labels["model"], kind=kind)
    service = build_delivery(config, StateStore(tmp_path / "state.db"), ManualClock())
    items = service.router.route("k", payload)
    assert bool(items) is wanted


def test_webhooks_test_sends_a_signed_ping(tmp_path, receiver, capsys):
    config, *_ = setup(tmp_path, receiver.url)
    assert main(["webhooks", "test", "deployer", "--config", config.source_path]) == 0
    assert "ok: deployer answered HTTP 200" in capsys.readouterr().out
    assert [a.valid for a in receiver.attempts] == [True]
    assert receiver.events[receiver.order[0]]["type"] == "ping"


def test_webhooks_test_names_unknown_subscriptions_and_failures(tmp_path, receiver, capsys):
    config, *_ = setup(tmp_path, receiver.url)
    assert main(["webhooks", "test", "nope", "--config", config.source_path]) == 1
    assert "no webhook subscription named 'nope' (known: deployer)" in capsys.readouterr().err
    receiver.answer_with(500)
    assert main(["webhooks", "test", "deployer", "--config", config.source_path]) == 1
    assert "HTTP 500" in capsys.readouterr().err


def test_each_attempt_is_signed_with_a_current_timestamp(tmp_path, receiver):
    _, _, clock, service = setup(tmp_path, receiver.url)
    receiver.fail_next(2)
    queue(service, clock, "k")
    service.worker.run_until_idle()
    now_s = datetime.now(timezone.utc).timestamp()
    assert len(receiver.attempts) == 3
    assert all(abs(int(a.timestamp) - now_s) < 60 for a in receiver.attempts)
