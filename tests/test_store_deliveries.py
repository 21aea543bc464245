"""Outbox tidy-ups: a 410 disables a receiver until the config is reloaded (or its target changes),
and `monitor deliveries retry ID` re-sends a failed delivery; against a real receiver on loopback."""

from __future__ import annotations

import json
import random

import pytest

from monitor.alerting.events import RollbackEvent
from monitor.daemon import Daemon
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem, RetryRefused
from monitor.outputs.results import SendOutcome, SendResult
from monitor.store import StateStore
from hostile import assert_handled, run_in_process
from standins.clock import ManualClock
from standins.configs import new_webhook_secret, write_config
from standins.webhook_receiver import WebhookReceiver

PAYLOAD = {"type": "rollback.requested", "model": "ranker", "bad_version": "v2", "last_known_good_version": "v1",
           "reason": "drift", "alert": {"labels": {"alertname": "ModelScoreDrift", "model": "ranker",
                                                   "version": "v2"}, "annotations": {}},
           "evidence": {}}


@pytest.fixture
def secret(monkeypatch):
    value = new_webhook_secret()
    monkeypatch.setenv("HOOK_SECRET", value)
    return value


@pytest.fixture
def receiver(secret):
    with WebhookReceiver(secret) as running:
        yield running


def configure(tmp_path, url: str):
    return write_config(tmp_path, f"""
        retry_schedule: [0s, 200ms, 500ms]
        webhooks:
          - name: deployer
            url: {url}
            secret_env: HOOK_SECRET
            allow_private: true
            timeout: 2s
    """)


def start(config, store):
    """What a new process does: build the delivery service for `config` on the state file."""
    clock = ManualClock()
    return clock, build_delivery(config, store, clock, rng=random.Random(7))


def queue(service, clock, key: str) -> None:
    service.outbox.enqueue(service.router.route(key, RollbackEvent.from_dict(PAYLOAD, "2026-11-22T21:05:00Z")),
                           clock.now())


def disabled_by_410(tmp_path, receiver):
    config = configure(tmp_path, receiver.url)
    store = StateStore(tmp_path / "state.db")
    clock, service = start(config, store)
    receiver.answer_with(410)
    queue(service, clock, "first")
    service.worker.run_until_idle()
    assert service.outbox.is_disabled("webhook:deployer")
    return config, store


def test_a_restart_with_the_same_target_keeps_a_410_receiver_disabled(tmp_path, receiver):
    config, store = disabled_by_410(tmp_path, receiver)
    receiver.answer_with(200)
    clock, service = start(config, store)
    queue(service, clock, "after restart")
    service.worker.run_until_idle()
    assert service.outbox.is_disabled("webhook:deployer")
    assert len(receiver.attempts) == 1
    assert [d.status for d in service.outbox.deliveries()] == [DeliveryStatus.DISABLED] * 2


def test_a_restart_with_a_changed_url_sends_to_the_receiver_again(tmp_path, receiver, secret):
    _, store = disabled_by_410(tmp_path, receiver)
    with WebhookReceiver(secret) as moved:
        clock, service = start(configure(tmp_path, moved.url), store)
        assert not service.outbox.is_disabled("webhook:deployer")
        queue(service, clock, "to the new url")
        service.worker.run_until_idle()
        assert len(moved.attempts) == 1 and moved.attempts[0].valid
    assert service.outbox.deliveries()[-1].status is DeliveryStatus.DELIVERED


def test_a_config_reload_re_enables_a_410_receiver(tmp_path, receiver):
    config, store = disabled_by_410(tmp_path, receiver)
    store.close()
    receiver.answer_with(200)
    daemon = Daemon(config.source_path, report_writer=None)
    try:
        assert daemon.delivery.outbox.is_disabled("webhook:deployer")  # a start with the same URL
        assert daemon.reload()
        assert not daemon.delivery.outbox.is_disabled("webhook:deployer")
    finally:
        daemon._stop_outbox(5)
        daemon.store.close()


def test_retry_re_sends_an_expired_delivery_with_the_same_webhook_id(tmp_path, receiver, capsys):
    config = configure(tmp_path, receiver.url)
    store = StateStore(tmp_path / "state.db")
    clock, service = start(config, store)
    receiver.answer_with(500)
    queue(service, clock, "doomed")
    service.worker.run_until_idle()
    expired = service.outbox.deliveries()[0]
    assert expired.status is DeliveryStatus.EXPIRED and len(receiver.attempts) == 3

    receiver.answer_with(200)
    outcome = run_in_process(["deliveries", "retry", str(expired.id), "--config", config.source_path], capsys)
    assert outcome.code == 0, outcome.stderr
    assert f"delivery {expired.id}" in outcome.stdout and "queued again" in outcome.stdout
    again = service.outbox.get(expired.id)
    assert (again.status, again.failures, again.finished_at) == (DeliveryStatus.PENDING, 0, None)

    service.worker.run_until_idle()
    assert service.outbox.get(expired.id).status is DeliveryStatus.DELIVERED
    assert len(receiver.attempts) == 4 and receiver.attempts[-1].valid
    assert len({a.webhook_id for a in receiver.attempts}) == 1  # the receiver can dedup on it
    listed = run_in_process(["deliveries", "--json", "--config", config.source_path], capsys)
    assert [d["status"] for d in json.loads(listed.stdout)["deliveries"]] == ["delivered"]


def test_retry_refuses_a_delivered_delivery_in_one_line(tmp_path, receiver, capsys):
    config = configure(tmp_path, receiver.url)
    store = StateStore(tmp_path / "state.db")
    clock, service = start(config, store)
    receiver.answer_with(200)
    queue(service, clock, "fine")
    service.worker.run_until_idle()
    delivered = service.outbox.deliveries()[0]
    outcome = run_in_process(["deliveries", "retry", str(delivered.id), "--config", config.source_path], capsys)
    assert_handled(outcome, f"delivery {delivered.id} to webhook:deployer was already delivered")
    assert_handled(run_in_process(["deliveries", "retry", "999", "--config", config.source_path], capsys),
                   "no delivery with id 999")
    assert len(receiver.attempts) == 1


def test_retry_refuses_a_delivery_whose_destination_left_the_config(tmp_path, receiver, capsys):
    config = configure(tmp_path, receiver.url)
    store = StateStore(tmp_path / "state.db")
    clock, service = start(config, store)
    receiver.answer_with(500)
    queue(service, clock, "doomed")
    service.worker.run_until_idle()
    expired = service.outbox.deliveries()[0]
    write_config(tmp_path, "retry_schedule: [0s]")
    outcome = run_in_process(["deliveries", "retry", str(expired.id), "--config", config.source_path], capsys)
    assert_handled(outcome, "webhook:deployer is not in the config's outputs any more")
    assert service.outbox.get(expired.id).status is DeliveryStatus.EXPIRED


def test_retry_refuses_while_the_destination_is_disabled(tmp_path, receiver, capsys):
    config, store = disabled_by_410(tmp_path, receiver)
    delivery = Outbox(store).deliveries()[0]
    outcome = run_in_process(["deliveries", "retry", str(delivery.id), "--config", config.source_path], capsys)
    assert_handled(outcome, "webhook:deployer is disabled")
    assert "reload the config" in outcome.stderr


def test_retry_refuses_an_old_message_a_newer_one_of_its_group_has_overtaken(tmp_path, open_state):
    with open_state() as store:
        outbox = Outbox(store)
        outbox.enqueue([OutboxItem(key, "slack", kind, "{}", group_key="g1")
                        for key, kind in (("k1", "firing"), ("k2", "resolved"))], now=1000.0)
        first, second = outbox.deliveries()
        outbox.record(outbox.begin_attempt(first, 1000.0), SendResult(SendOutcome.REFUSED, 400, error="HTTP 400"),
                      1000.0)
        outbox.record(outbox.begin_attempt(second, 1001.0), SendResult.delivered(), 1001.0)
        with pytest.raises(RetryRefused, match=f"delivery {second.id}"):
            outbox.retry(first.id, 2000.0)
        assert outbox.get(first.id).status is DeliveryStatus.EXPIRED
