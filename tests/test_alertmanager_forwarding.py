"""Alerts forwarded through the outbox to Debian's prometheus-alertmanager on loopback."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from monitor.alerting.events import AlertGroupEvent
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus
from monitor.store import StateStore
from standins.alertmanager import LocalAlertmanager, find_alertmanager
from standins.clock import ManualClock
from standins.configs import write_config


@pytest.fixture(scope="module")
def alertmanager():
    if find_alertmanager() is None:  # CI installs it (make prometheus); say so loudly rather than skip
        pytest.fail("alertmanager not found: install Debian's prometheus-alertmanager (make prometheus)")
    running = LocalAlertmanager().start()
    yield running
    running.stop()


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def payload(kind: str, status: str, starts: datetime, ends: datetime | None = None) -> AlertGroupEvent:
    return AlertGroupEvent.from_dict({"kind": kind, "status": status, "groupKey": "g", "groupLabels": {"alertname": "ModelScoreDrift"},
            "alerts": [{"status": status, "labels": {"alertname": "ModelScoreDrift", "model": "ranker",
                                                     "version": "v2", "severity": "page"},
                        "annotations": {"summary": "ranker v2 scores drifted"}, "startsAt": iso(starts),
                        "endsAt": iso(ends) if ends else None, "value": 0.31, "evidence": {}}],
            "firing": int(status == "firing"), "resolved": int(status == "resolved")}, iso(ends or starts))


def test_firing_then_resolved_alerts_reach_alertmanager(tmp_path, alertmanager):
    config = write_config(tmp_path, f"""
        retry_schedule: [0s, 200ms]
        alertmanager:
          url: {alertmanager.url}
          timeout: 5s
          allow_private: true
    """)
    clock = ManualClock()
    service = build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1))
    started = datetime.now(timezone.utc) - timedelta(minutes=10)
    firing = payload("firing", "firing", started)
    service.outbox.enqueue(service.router.route("f", firing), clock.now())
    service.worker.run_until_idle()
    (alert,) = [a for a in alertmanager.alerts() if a["labels"].get("model") == "ranker"]
    assert alert["labels"]["alertname"] == "ModelScoreDrift"
    assert alert["annotations"] == {"summary": "ranker v2 scores drifted"}
    assert alert["status"]["state"] == "active"
    assert alert["startsAt"].startswith(iso(started)[:19])

    ended = datetime.now(timezone.utc) - timedelta(seconds=5)
    resolved = payload("resolved", "resolved", started, ended)
    service.outbox.enqueue(service.router.route("r", resolved), clock.now())
    service.worker.run_until_idle()
    # Alertmanager's GET lists active alerts by default; a resolved one has left that list.
    assert [a for a in alertmanager.alerts() if a["labels"].get("model") == "ranker"] == []
    assert [d.status for d in service.outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2


def test_an_unreachable_alertmanager_is_retried_not_dropped(tmp_path):
    config = write_config(tmp_path, """
        retry_schedule: [0s, 200ms, 500ms]
        alertmanager:
          url: http://127.0.0.1:9
          timeout: 1s
          allow_private: true
    """)
    clock = ManualClock()
    service = build_delivery(config, StateStore(tmp_path / "state.db"), clock)
    started = datetime.now(timezone.utc)
    service.outbox.enqueue(service.router.route("f", payload("firing", "firing", started)),
                           clock.now())
    service.worker.drain_due()
    (delivery,) = service.outbox.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error.startswith("alertmanager: no answer")
