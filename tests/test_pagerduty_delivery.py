"""PagerDuty Events API v2 through the real outbox and worker to a stand-in that validates the documented schema.

Events are built as the router will queue them (`event_to_json` of an
AlertGroupEvent, destination `RECEIVER/pagerduty`); the stand-in keeps PagerDuty's
alert model, so "one incident, never two" is counted, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time

import pytest

from monitor.alerting.events import AlertEvent, AlertGroupEvent, event_to_json
from monitor.config import PagerDutyConfig
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem
from monitor.outputs.pagerduty import (MAX_SUMMARY_CHARS, THROTTLE_BACKOFF_S, PagerDutyDestination, dedup_key,
                                       group_severity, render_pagerduty)
from monitor.outputs.receivers import integration_destination
from monitor.outputs.worker import OutboxWorker
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import write_config
from standins.pagerduty import PagerDutyStandIn, schema_errors

ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY42"   # 32 characters, as PagerDuty's integration keys
GROUP_KEY = '{}/{severity="page"}:{alertname="SLOBudgetBurnPage", service="ranker"}'
LINKS = {"runbook": "https://github.com/example/monitor#slobudgetburnpage",
         "dashboard": "https://grafana.example/d/slo?var-service=ranker",
         "silence_1h": "monitor silence add alertname=SLOBudgetBurnPage service=ranker --for 1h"}


def alert(status: str = "firing", service: str = "ranker", severity: str = "page", **labels: str) -> AlertEvent:
    return AlertEvent(status=status, state=status,
                      labels={"alertname": "SLOBudgetBurnPage", "service": service, "severity": severity, **labels},
                      annotations={"summary": f"{service} is burning its error budget",
                                   "runbook_url": LINKS["runbook"]},
                      starts_at="2026-11-22T21:00:00Z",
                      ends_at="2026-11-22T22:00:00Z" if status == "resolved" else None,
                      fingerprint=hashlib.sha256(service.encode()).hexdigest()[:16], value=15.2,
                      evidence={"burn_rate_1h": 15.2, "burn_rate_5m": 20.0})


def group(kind: str = "firing", alerts: tuple[AlertEvent, ...] | None = None, group_key: str = GROUP_KEY,
          receiver: str = "ranking", links: dict[str, str] | None = None) -> AlertGroupEvent:
    status = "resolved" if kind == "resolved" else "firing"
    alerts = alerts if alerts is not None else (alert("resolved" if kind == "resolved" else "firing"),)
    return AlertGroupEvent(kind=kind, status=status, group_key=group_key,
                           group_labels={"alertname": "SLOBudgetBurnPage", "service": "ranker"}, alerts=alerts,
                           created_at="2026-11-22T21:05:00Z", receiver=receiver, route_id="0.ranking",
                           links=LINKS if links is None else links)


@pytest.fixture
def pagerduty(monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    with PagerDutyStandIn() as standin:
        yield standin


def setup(tmp_path, standin: PagerDutyStandIn, extra: str = "", timeout: str = "2s"):
    """A config with one receiver whose PagerDuty integration points at the stand-in; the real outbox and worker."""
    config = write_config(tmp_path, f"""
        retry_schedule: [0s, 5s, 5m]
        route:
          receiver: ranking
        receivers:
          - name: ranking
            pagerduty_configs:
              - routing_key_env: PD_ROUTING_KEY
                url: {standin.url}
                allow_private: true
                timeout: {timeout}
                source: monitor-test-host
                client_url: https://monitor.example/
{extra}
    """)
    pd_config = config.outputs.receivers[0].pagerduty_configs[0]
    name = integration_destination("ranking", "pagerduty")
    clock = ManualClock()
    outbox = Outbox(StateStore(tmp_path / "state.db"), RetrySchedule(tuple(config.outputs.retry_schedule)),
                    rng=random.Random(3))
    worker = OutboxWorker(outbox, {name: PagerDutyDestination(name, pd_config, clock=clock)}, clock)
    return pd_config, clock, outbox, worker, name


def queue(outbox: Outbox, clock: ManualClock, name: str, key: str, event: AlertGroupEvent) -> None:
    outbox.enqueue([OutboxItem(key, name, event.kind, event_to_json(event), event.group_key)], clock.now())


def test_trigger_then_resolve_open_and_close_one_alert_with_the_identical_dedup_key(tmp_path, pagerduty):
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    assert name == "ranking/pagerduty"
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "repeat:g1", group("repeat"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    worker.run_until_idle()
    assert [r.errors for r in pagerduty.requests] == [[], [], []]
    trigger, repeat, resolve = pagerduty.accepted()
    assert [e["event_action"] for e in (trigger, repeat, resolve)] == ["trigger", "trigger", "resolve"]
    expected_key = "monitor/" + hashlib.sha256(f"ranking\x00{GROUP_KEY}".encode()).hexdigest()
    assert trigger["dedup_key"] == repeat["dedup_key"] == resolve["dedup_key"] == expected_key
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": expected_key}
    (incident,) = pagerduty.alerts
    assert incident.status == "resolved" and len(incident.log) == 3 and pagerduty.dropped == []
    payload = trigger["payload"]
    assert payload["summary"] == "[FIRING:1] SLOBudgetBurnPage ranker: ranker is burning its error budget"
    assert (payload["severity"], payload["source"], payload["class"], payload["component"]) == (
        "critical", "monitor-test-host", "SLOBudgetBurnPage", "ranker")
    assert payload["timestamp"] == "2026-11-22T21:05:00Z"
    details = payload["custom_details"]
    assert details["alerts"][0]["labels"]["service"] == "ranker"
    assert details["alerts"][0]["value"] == 15.2
    assert details["alerts"][0]["evidence"] == {"burn_rate_1h": 15.2, "burn_rate_5m": 20.0}
    assert details["commands"] == {"silence_1h": LINKS["silence_1h"]}
    assert trigger["links"] == [{"href": LINKS["runbook"], "text": "Runbook"},
                                {"href": LINKS["dashboard"], "text": "Dashboard"}]
    assert (trigger["client"], trigger["client_url"]) == ("monitor", "https://monitor.example/")
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 3


def test_a_5xx_then_a_429_are_retried_with_the_same_dedup_key_and_open_one_incident(tmp_path, pagerduty):
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    pagerduty.fail_next(1, 503)
    pagerduty.throttle_next(1)
    worker.run_until_idle()
    assert [r.answered for r in pagerduty.requests] == [503, 429, 202]
    keys = {r.event["dedup_key"] for r in pagerduty.requests}
    assert keys == {dedup_key(group("firing"))}
    assert len(pagerduty.alerts) == 1
    # The 429 carried no Retry-After (PagerDuty sends none): it waits at least the documented 30 s.
    assert clock.slept[0] >= 5.0 and clock.slept[1] >= THROTTLE_BACKOFF_S
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts, delivery.failures) == (DeliveryStatus.DELIVERED, 3, 2)


def test_a_429_with_retry_after_waits_exactly_that_long_without_using_up_the_schedule(tmp_path, pagerduty):
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    pagerduty.throttle_next(4, retry_after="7")
    worker.run_until_idle()
    assert [r.answered for r in pagerduty.requests] == [429] * 4 + [202]
    assert clock.slept == [7.0] * 4
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts, delivery.failures) == (DeliveryStatus.DELIVERED, 5, 0)


def test_a_timeout_after_pagerduty_took_the_event_is_retried_into_the_same_alert(tmp_path, pagerduty, caplog):
    """The worst retry: PagerDuty processed the trigger but the answer came too late. Still one alert."""
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty, timeout="300ms")
    queue(outbox, clock, name, "firing:g1", group("firing"))
    pagerduty.slow_next(1, 0.8)
    with caplog.at_level(logging.INFO):
        worker.run_until_idle()
    deadline = time.monotonic() + 5
    while len(pagerduty.requests) < 2 and time.monotonic() < deadline:   # the slow one finishes late
        time.sleep(0.05)
    assert [r.answered for r in pagerduty.requests] == [202, 202], "both reached PagerDuty"
    (incident,) = pagerduty.alerts
    assert len(incident.log) == 2 and {e["dedup_key"] for e in incident.log} == {dedup_key(group("firing"))}
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts, delivery.failures) == (DeliveryStatus.DELIVERED, 2, 1)
    assert "no answer from PagerDuty: timed out" in caplog.text


def test_a_failover_replica_sending_the_same_group_reaches_the_same_open_alert(tmp_path, pagerduty):
    """Two daemons (two state files) trigger the same group: PagerDuty sees one alert, resolved by either."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, clock_a, outbox_a, worker_a, name = setup(tmp_path / "a", pagerduty)
    _, clock_b, outbox_b, worker_b, _ = setup(tmp_path / "b", pagerduty)
    queue(outbox_a, clock_a, name, "firing:g1", group("firing"))
    worker_a.run_until_idle()
    queue(outbox_b, clock_b, name, "firing:g1", group("repeat"))
    queue(outbox_b, clock_b, name, "resolved:g1", group("resolved"))
    worker_b.run_until_idle()
    (incident,) = pagerduty.alerts
    assert incident.status == "resolved" and len(incident.log) == 3


def test_an_invalid_event_is_refused_at_once_and_the_servers_errors_are_in_last_error(tmp_path, pagerduty,
                                                                                    monkeypatch, caplog):
    monkeypatch.setenv("PD_ROUTING_KEY", "short-key-not-32")
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    with caplog.at_level(logging.DEBUG):
        worker.run_until_idle()
    assert [r.answered for r in pagerduty.requests] == [400], "a 400 is never retried"
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.EXPIRED, 400)
    assert delivery.last_error.startswith("ranking/pagerduty: HTTP 400 invalid event: Event object is invalid; ")
    assert "routing_key: 'short-key-not-32' is too short" not in delivery.last_error
    assert "routing_key" in delivery.last_error and "too short" in delivery.last_error
    assert "short-key-not-32" not in caplog.text + json.dumps(delivery.as_json())


def test_the_routing_key_never_appears_in_errors_or_logs(tmp_path, pagerduty, caplog):
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    pagerduty.fail_next(2, 500)
    pagerduty.throttle_next(1)
    with caplog.at_level(logging.DEBUG):
        worker.run_until_idle()
        pagerduty.server.stop()                   # PagerDuty unreachable: the connection error is logged too
        queue(outbox, clock, name, "firing:g2", group("firing", group_key="other"))
        worker.run_until_idle()
    errors = [d.last_error or "" for d in outbox.deliveries()]
    assert any("no answer from PagerDuty" in e for e in errors)
    assert any("HTTP 500" in r.getMessage() or "HTTP 429" in r.getMessage() for r in caplog.records)
    assert ROUTING_KEY not in caplog.text
    assert ROUTING_KEY not in json.dumps([d.as_json() for d in outbox.deliveries()])


def test_a_missing_routing_key_fails_naming_the_variable_and_is_retried(tmp_path, pagerduty, monkeypatch):
    monkeypatch.delenv("PD_ROUTING_KEY")
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    worker.run_until_idle()
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 3)
    assert "PD_ROUTING_KEY is not set" in delivery.last_error
    assert pagerduty.requests == []


def test_send_resolved_false_reports_the_resolve_delivered_without_a_request(tmp_path, pagerduty):
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty, extra="                send_resolved: false")
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    worker.run_until_idle()
    assert [e["event_action"] for e in pagerduty.accepted()] == ["trigger"]
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2


HOSTILE = "<script>alert(1)</script> [click me](https://evil.example/) **bold** @channel\n\u202e"


def test_hostile_labels_render_within_the_documented_limits(tmp_path, pagerduty):
    hostile_alerts = tuple(
        alert(service=f"svc-{i}-{HOSTILE}", severity="page", notes="x" * 10_000, **{f"l{j}": "y" * 2000
                                                                                    for j in range(80)})
        for i in range(60))
    event = AlertGroupEvent(kind="firing", status="firing", group_key="hostile" * 100,
                            group_labels={"alertname": HOSTILE * 200}, alerts=hostile_alerts,
                            created_at="2026-11-22T21:05:00Z", receiver="ranking", links=LINKS)
    _, clock, outbox, worker, name = setup(tmp_path, pagerduty)
    queue(outbox, clock, name, "firing:hostile", event)
    worker.run_until_idle()
    (request,) = pagerduty.requests
    assert (request.answered, request.errors) == (202, [])
    payload = request.event["payload"]
    assert len(payload["summary"]) == MAX_SUMMARY_CHARS and payload["summary"].endswith("…")
    assert "\n" not in payload["summary"]
    assert len(request.event["dedup_key"]) <= 255
    assert len(request.raw) < 512 * 1024
    details = payload["custom_details"]
    shown = len(details["alerts"])
    assert 0 < shown < 60 and details["alerts_not_shown"] == 60 - shown
    assert all(len(v) <= 1024 for a in details["alerts"] for v in a["labels"].values())
    assert details["alerts"][0]["labels"]["…"] == f"and {84 - 64} more"


def test_dedup_keys_differ_between_groups_and_receivers_and_never_collide_on_a_missing_group_key():
    keys = {dedup_key(group("firing")), dedup_key(group("firing", receiver="finance")),
            dedup_key(group("firing", group_key="other")),
            dedup_key(AlertGroupEvent(kind="firing", status="firing", group_key="", group_labels={"a": "1"},
                                      alerts=(), created_at="")),
            dedup_key(AlertGroupEvent(kind="firing", status="firing", group_key="", group_labels={"a": "2"},
                                      alerts=(), created_at=""))}
    assert len(keys) == 5 and all(k.startswith("monitor/") and len(k) <= 255 for k in keys)


@pytest.mark.parametrize("severities, expected", [
    (("page",), "critical"),
    (("ticket",), "warning"),
    (("info",), "info"),
    (("warning",), "warning"),
    (("sev1",), "error"),
    (("",), "error"),
    (("ticket", "page", "info"), "critical"),
    (("info", "ticket"), "warning"),
], ids=["a page is critical", "a ticket is a warning", "info stays info", "PagerDuty's own word passes through",
        "an unknown severity is an error", "no severity label is an error",
        "the most severe firing alert decides", "a ticket outranks info"])
def test_severity_maps_from_our_severity_label(severities, expected):
    event = group("firing", alerts=tuple(alert(service=f"s{i}", severity=s) for i, s in enumerate(severities)))
    assert group_severity(event) == expected


def test_every_rendered_event_satisfies_the_documented_schema():
    config = PagerDutyConfig(routing_key_env="PD_ROUTING_KEY")
    for kind in ("firing", "repeat", "resolved"):
        for links in ({}, LINKS):
            body = render_pagerduty(group(kind, links=links), config, ROUTING_KEY)
            assert schema_errors(body) == [], (kind, links)


VALID = render_pagerduty(group("firing"), PagerDutyConfig(routing_key_env="PD_ROUTING_KEY"), ROUTING_KEY)


@pytest.mark.parametrize("event", [
    {k: v for k, v in VALID.items() if k != "payload"},
    {**VALID, "event_action": "escalate"},
    {**VALID, "dedup_key": "k" * 256},
    {**VALID, "payload": {**VALID["payload"], "summary": "s" * 1025}},
    {**VALID, "payload": {**VALID["payload"], "severity": "page"}},
    {**VALID, "payload": {k: v for k, v in VALID["payload"].items() if k != "source"}},
    {**VALID, "payload": {**VALID["payload"], "custom_details": "text"}},
    {**VALID, "payload": {**VALID["payload"], "timestamp": "yesterday"}},
    {**VALID, "links": [{"text": "no href"}]},
    {**VALID, "client_url": "monitor.example"},
    {**VALID, "routing_key": "short"},
    {"routing_key": ROUTING_KEY, "event_action": "resolve"},
    {**VALID, "payload_typo": 1},
], ids=["a trigger without a payload", "an unknown event_action", "a dedup_key over 255 characters",
        "a summary over 1024 characters", "our severity word instead of PagerDuty's", "a payload without source",
        "custom_details that are not an object", "a timestamp that is not ISO 8601", "a link without href",
        "a client_url that is not a URL", "a routing key that is not 32 characters", "a resolve without dedup_key",
        "an unknown top-level field"])
def test_the_standin_refuses_what_pagerduty_documents_as_invalid(event):
    assert schema_errors(VALID) == []
    assert schema_errors(event) != []


def test_a_private_pagerduty_url_is_refused_without_allow_private(tmp_path, pagerduty):
    """Loopback is a private address: without allow_private the SSRF guard refuses it before any request."""
    _, clock, outbox, _, name = setup(tmp_path, pagerduty)
    config = PagerDutyConfig(routing_key_env="PD_ROUTING_KEY", url=pagerduty.url)
    worker = OutboxWorker(outbox, {name: PagerDutyDestination(name, config, clock=clock)}, clock)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    worker.run_until_idle()
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 1)
    assert delivery.last_error.startswith("ranking/pagerduty: ") and "127.0.0.1" in delivery.last_error
    assert pagerduty.requests == [] and ROUTING_KEY not in delivery.last_error
