"""Slack through the outbox to a Web API stand-in on loopback: threads, resolves, 429s, incoming webhooks."""

from __future__ import annotations

import random

import pytest

from monitor.alerting.events import AlertGroupEvent
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import write_config
from standins.slack_api import SlackStandIn

TOKEN = "xoxb-test-0000-secret-token"


def group_payload(key: str, kind: str, status: str, service: str = "ranker") -> AlertGroupEvent:
    alert_status = "resolved" if status == "resolved" else "firing"
    return AlertGroupEvent.from_dict({"kind": kind, "status": status, "groupKey": key, "groupLabels": {"alertname": "SLOBudgetBurnPage"},
            "alerts": [{"status": alert_status, "labels": {"alertname": "SLOBudgetBurnPage", "service": service,
                                                           "severity": "page"},
                        "annotations": {"summary": f"{service} is burning its error budget"},
                        "startsAt": "2026-11-22T21:00:00Z", "value": 15.2,
                        "endsAt": "2026-11-22T22:00:00Z" if alert_status == "resolved" else None,
                        "evidence": {"burn_rate_1h": 15.2, "burn_rate_5m": 20.0}}],
            "firing": int(alert_status == "firing"), "resolved": int(alert_status == "resolved")},
        "2026-11-22T21:05:00Z")


@pytest.fixture
def slack(monkeypatch):
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    with SlackStandIn(TOKEN) as standin:
        yield standin


def setup(tmp_path, slack: SlackStandIn, slack_yaml: str | None = None):
    slack_yaml = slack_yaml or f"""
          channel: "#ml-alerts"
          token_env: SLACK_TOKEN
          base_url: {slack.base_url}
          allow_private: true
          timeout: 2s"""
    config = write_config(tmp_path, f"""
        retry_schedule: [0s, 200ms, 500ms]
        expire_after: 10m
        slack:{slack_yaml}
    """)
    clock = ManualClock()
    return clock, build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1))


def queue(service, clock, key, payload):
    service.outbox.enqueue(service.router.route(key, payload), clock.now())


def test_a_firing_group_posts_and_its_resolve_lands_in_the_thread_and_updates_the_parent(tmp_path, slack):
    clock, service = setup(tmp_path, slack)
    queue(service, clock, "firing:g1", group_payload("g1", "firing", "firing"))
    queue(service, clock, "resolved:g1", group_payload("g1", "resolved", "resolved"))
    service.worker.run_until_idle()
    assert slack.problems == []
    parent, reply = slack.accepted("chat.postMessage")
    (update,) = slack.accepted("chat.update")
    assert parent.authorization == f"Bearer {TOKEN}" and parent.args["channel"] == "#ml-alerts"
    assert "thread_ts" not in parent.args
    assert parent.args["blocks"][0]["text"]["text"] == "[FIRING:1] SLOBudgetBurnPage ranker"
    assert reply.args["thread_ts"] == parent.ts
    assert reply.args["blocks"][0]["text"]["text"] == "[RESOLVED] SLOBudgetBurnPage ranker"
    assert update.args["ts"] == parent.ts
    assert slack.messages[parent.ts]["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
    assert [d.status for d in service.outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2


def test_a_repeat_is_a_broadcast_thread_reply_and_a_new_episode_starts_a_new_message(tmp_path, slack):
    clock, service = setup(tmp_path, slack)
    for key, kind, status in (("f1", "firing", "firing"), ("r1", "repeat", "firing"), ("x1", "resolved", "resolved"),
                              ("f2", "firing", "firing")):
        queue(service, clock, key, group_payload("g1", kind, status))
    service.worker.run_until_idle()
    assert slack.problems == []
    posts = slack.accepted("chat.postMessage")
    assert [("thread_ts" in p.args, p.args.get("reply_broadcast")) for p in posts] == [
        (False, None), (True, True), (True, False), (False, None)]
    assert posts[3].ts != posts[0].ts


def test_five_429s_with_retry_after_2_then_everything_arrives_in_order_once(tmp_path, slack):
    clock, service = setup(tmp_path, slack)
    queue(service, clock, "firing:a", group_payload("a", "firing", "firing", service="ranker"))
    queue(service, clock, "firing:b", group_payload("b", "firing", "firing", service="recommender"))
    queue(service, clock, "resolved:a", group_payload("a", "resolved", "resolved", service="ranker"))
    slack.rate_limit_next(5, retry_after="2")
    service.worker.run_until_idle()
    assert slack.problems == []
    assert [c.answered for c in slack.calls[:5]] == [429] * 5
    assert clock.slept[:5] == [2.0] * 5, "each 429 waited exactly its Retry-After"
    accepted = [(c.method, c.args["blocks"][0]["text"]["text"]) for c in slack.accepted()]
    assert accepted == [
        ("chat.postMessage", "[FIRING:1] SLOBudgetBurnPage ranker"),
        ("chat.postMessage", "[FIRING:1] SLOBudgetBurnPage recommender"),
        ("chat.postMessage", "[RESOLVED] SLOBudgetBurnPage ranker"),
        ("chat.update", "[RESOLVED] SLOBudgetBurnPage ranker"),
    ]
    first = service.outbox.deliveries()[0]
    assert (first.status, first.attempts, first.failures) == (DeliveryStatus.DELIVERED, 6, 0)
    assert service.outbox.counts().results[("slack", "rate_limited")] == 5


def test_a_429_during_the_parent_update_does_not_repost_the_thread_reply(tmp_path, slack):
    clock, service = setup(tmp_path, slack)
    queue(service, clock, "f", group_payload("g", "firing", "firing"))
    service.worker.run_until_idle()
    queue(service, clock, "r", group_payload("g", "resolved", "resolved"))
    original_handle = slack.handle

    def limit_the_update(method, args, authorization):
        if method == "chat.update" and not getattr(limit_the_update, "done", False):
            limit_the_update.done = True
            slack.rate_limit_next(1, "1")
        return original_handle(method, args, authorization)

    slack.handle = limit_the_update
    service.worker.run_until_idle()
    replies = [c for c in slack.accepted("chat.postMessage") if "thread_ts" in c.args]
    assert len(replies) == 1
    assert len(slack.accepted("chat.update")) == 1


def test_a_wrong_token_fails_and_is_retried_then_expires_visibly(tmp_path, slack, monkeypatch):
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-wrong")
    clock, service = setup(tmp_path, slack)
    queue(service, clock, "f", group_payload("g", "firing", "firing"))
    service.worker.run_until_idle()
    (delivery,) = service.outbox.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 3)
    assert "invalid_auth" in delivery.last_error
    assert "xoxb-wrong" not in delivery.last_error


def test_an_incoming_webhook_url_is_an_alternative_to_a_bot_token(tmp_path, slack, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{slack.server.port}/services/T0/B0/secretpath")
    clock, service = setup(tmp_path, slack, """
          webhook_url_env: SLACK_WEBHOOK_URL
          allow_private: true""")
    queue(service, clock, "f", group_payload("g", "firing", "firing"))
    queue(service, clock, "r", group_payload("g", "resolved", "resolved"))
    slack.rate_limit_next(1, "1")
    service.worker.run_until_idle()
    assert slack.problems == []
    sent = [c.args["blocks"][0]["text"]["text"] for c in slack.accepted("incoming-webhook")]
    assert sent == ["[FIRING:1] SLOBudgetBurnPage ranker", "[RESOLVED] SLOBudgetBurnPage ranker"]
