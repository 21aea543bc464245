"""Routing alert group events to their receiver's integrations, one outbox destination each."""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timezone

import pytest

from monitor.alerting.events import AlertEvent, AlertGroupEvent, event_from_json
from monitor.alerting.notification_repository import NotificationRepository
from monitor.alerting.notifications import Notification, NotificationKind
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus, Outbox
from monitor.outputs.routing import Router, route_pending_notifications
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import write_config
from standins.slack_api import SlackStandIn

TOKEN = "xoxb-routing-test"
T0 = datetime(2026, 11, 22, 21, 5, tzinfo=timezone.utc)


def group(receiver: str, key: str = "g1", kind: str = "firing", service: str = "ranker") -> AlertGroupEvent:
    status = "resolved" if kind == "resolved" else "firing"
    alert = AlertEvent(status=status, state=status,
                       labels={"alertname": "SLOBudgetBurnPage", "service": service, "severity": "page"},
                       annotations={"summary": f"{service} burns its error budget"},
                       starts_at="2026-11-22T21:00:00Z",
                       ends_at="2026-11-22T22:00:00Z" if status == "resolved" else None,
                       fingerprint=f"fp-{service}", value=15.2, evidence={"burn_rate_1h": 15.2})
    return AlertGroupEvent(kind=kind, status=status, group_key=key, group_labels={"service": service},
                           alerts=(alert,), created_at="2026-11-22T21:05:00Z", receiver=receiver,
                           route_id='{}/{severity="page"}/0' if receiver != "default" else "{}")


RECEIVERS = """
    route:
      receiver: default
      routes:
        - matchers: [severity=page]
          receiver: ranking
    receivers:
      - name: ranking
        slack_configs:
          - {channel: "#ranking", token_env: SLACK_TOKEN}
          - {channel: "#ranking-oncall", token_env: SLACK_TOKEN}
        pagerduty_configs:
          - {routing_key_env: PD_KEY}
        msteams_configs:
          - {webhook_url_env: TEAMS_URL}
      - name: finance
        email_configs:
          - {to: [finance@example.com]}
      - name: nobody
"""


def test_an_event_goes_to_every_integration_of_its_receiver_named_per_destination(tmp_path):
    config = write_config(tmp_path, RECEIVERS + """
    slack: {channel: "#legacy", token_env: SLACK_TOKEN}
    alertmanager: {url: "http://127.0.0.1:9093", allow_private: true}
    """)
    router = Router(config.outputs)
    event = group("ranking")
    items = router.route("firing:g1", event, 7)
    assert [i.destination for i in items] == ["ranking/slack", "ranking/slack#2", "ranking/pagerduty",
                                              "ranking/msteams", "alertmanager"]
    assert {(i.notification_key, i.event_type, i.group_key, i.notification_id) for i in items} == \
        {("firing:g1", "firing", "g1", 7)}
    # Each integration gets the event itself (with its links); Alertmanager its API's alerts.
    for item in items[:-1]:
        assert event_from_json(item.event_type, item.body) == event.with_links(json.loads(item.body)["links"])
    assert [a["labels"] for a in json.loads(items[-1].body)] == [dict(event.alerts[0].labels)]
    assert [i.destination for i in router.route("firing:g2", group("finance"))] == ["finance/email",
                                                                                    "alertmanager"]
    # The implicit `default` receiver is the legacy single channel, under its old name.
    assert [i.destination for i in router.route("firing:g3", group("default"))] == ["slack", "alertmanager"]
    assert set(router.destinations()) == {"slack", "ranking/slack", "ranking/slack#2", "ranking/pagerduty",
                                          "ranking/msteams", "finance/email", "alertmanager"}
    assert set(router.target_digests()) == set(router.destinations())


def test_a_receiver_named_default_replaces_the_legacy_slack(tmp_path):
    config = write_config(tmp_path, """
    slack: {channel: "#legacy", token_env: SLACK_TOKEN}
    receivers:
      - name: default
        msteams_configs:
          - {webhook_url_env: TEAMS_URL}
    """)
    assert [i.destination for i in Router(config.outputs).route("k", group("default"))] == ["default/msteams"]


def test_an_event_whose_receiver_has_no_integration_is_no_destination_and_logged_once(tmp_path, caplog):
    config = write_config(tmp_path, RECEIVERS)
    with StateStore(tmp_path / "state.db") as store:
        repository = NotificationRepository(store)
        with store.transaction() as conn:
            for i in range(3):
                repository.insert(conn, Notification(f"firing:n{i}", NotificationKind.FIRING, T0,
                                                     group("nobody", key=f"n{i}")), None)
            repository.insert(conn, Notification("firing:r", NotificationKind.FIRING, T0, group("ranking")), None)
        outbox = Outbox(store)
        caplog.set_level(logging.WARNING, logger="monitor.outputs.routing")
        assert route_pending_notifications(outbox, Router(config.outputs), T0.timestamp()) == 4
        assert [q.status for q in repository.notifications()] == ["no_destination"] * 3 + ["routed"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'nobody'" in warnings[0] and "no integrations" in warnings[0]


@pytest.fixture
def slack(monkeypatch):
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    with SlackStandIn(TOKEN) as standin:
        yield standin


def test_each_slack_destination_threads_the_same_group_in_its_own_channel(tmp_path, slack):
    slack_config = f"token_env: SLACK_TOKEN, base_url: '{slack.base_url}', allow_private: true, timeout: 2s"
    config = write_config(tmp_path, f"""
    retry_schedule: [0s, 200ms]
    slack: {{channel: "#legacy", {slack_config}}}
    receivers:
      - name: ranking
        slack_configs:
          - {{channel: "#ranking", {slack_config}}}
          - {{channel: "#ranking-oncall", {slack_config}}}
    """)
    clock = ManualClock()
    service = build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1))
    for key, event in [("firing:g1", group("ranking")), ("firing:d1", group("default")),
                       ("resolved:g1", group("ranking", kind="resolved"))]:
        service.outbox.enqueue(service.router.route(key, event), clock.now())
    service.worker.run_until_idle()
    assert slack.problems == []
    posts = slack.accepted("chat.postMessage")
    parents = {p.args["channel"]: p for p in posts if "thread_ts" not in p.args}
    assert set(parents) == {"#ranking", "#ranking-oncall", "#legacy"}
    replies = [p for p in posts if "thread_ts" in p.args]
    # The resolve of group g1 lands in each ranking channel's own thread, never in another's.
    assert sorted((r.args["channel"], r.args["thread_ts"]) for r in replies) == \
        sorted((c, parents[c].ts) for c in ("#ranking", "#ranking-oncall"))
    assert {d.destination: d.status for d in service.outbox.deliveries()} == {
        "ranking/slack": DeliveryStatus.DELIVERED, "ranking/slack#2": DeliveryStatus.DELIVERED,
        "slack": DeliveryStatus.DELIVERED}
