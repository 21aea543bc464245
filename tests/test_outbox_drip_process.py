"""`monitor run` as a process: a webhook receiver dripping its answers delays only its own deliveries.

The daemon replays the simulated fleet against the real Prometheus while a
deployer's webhook receiver drips every answer a byte a second. A rollback request
for the deployer is queued first; while the daemon is held on it, a page is
queued for Slack (both as the alerting stage leaves them: `pending` rows in the
state file's notifications table). The page must reach the Slack stand-in within
a couple of seconds, while the drip is still going on; the dripped request must be
cut at its 6s timeout, and retried on the configured 2s schedule.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from monitor.outputs.outbox import DeliveryStatus, Outbox
from monitor.simulate.local_prometheus import free_port
from monitor.store import StateStore
from standins.configs import new_webhook_secret
from standins.drip_receiver import DripReceiver
from standins.slack_api import SlackStandIn

pytestmark = pytest.mark.prometheus

TOKEN = "xoxb-drip-process-token"
WEBHOOK_TIMEOUT_S = 6.0
RETRY_DELAY_S = 2.0
JITTER_SHARE = 0.1          # the outbox's default: up to 10% added to each delay
ON_TIME_S = 2.0             # a page must reach Slack this soon after it was queued
SCHEDULING_SLACK_S = 1.5    # threads and a loaded machine; far below what a stall would cost


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def queue_notification(state_path: Path, key: str, kind: str, payload: dict) -> float:
    """Queue a notification as the alerting stage does; returns when it was committed (wall clock)."""
    with StateStore(state_path) as store:
        with store.transaction() as conn:
            conn.execute("INSERT INTO notifications (idempotency_key, kind, created_at, payload, status) "
                         "VALUES (?, ?, ?, ?, 'pending')", (key, kind, time.time(), json.dumps(payload)))
    return time.time()


ROLLBACK = {"model": "ranker", "bad_version": "v2", "last_known_good_version": "v1",
            "reason": "ranker v2 prediction scores drifted",
            "alert": {"labels": {"alertname": "ModelScoreDrift", "model": "ranker", "version": "v2"},
                      "annotations": {}, "startsAt": "2026-11-22T21:00:00Z"}}
PAGE = {"kind": "firing", "status": "firing", "groupKey": "drip-probe", "groupLabels": {"alertname": "DripProbePage"},
        "alerts": [{"status": "firing", "labels": {"alertname": "DripProbePage", "service": "ranker",
                                                   "severity": "page"},
                    "annotations": {"summary": "ranker is burning its error budget"},
                    "startsAt": "2026-11-22T21:00:00Z"}], "firing": 1, "resolved": 0}


def write_daemon_config(sim_dir: Path, prometheus_url: str, tmp_path: Path, slack: SlackStandIn,
                        drip: DripReceiver) -> Path:
    config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    config["prometheus"] = {"url": prometheus_url, "timeout": "5s"}
    config["state"] = {"path": str(tmp_path / "state.db")}
    config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    config["rules"] = [str(sim_dir / "rules" / "*.yaml")]
    for model in config["models"]:
        log = model.get("drift", {}).get("log")
        if log:
            log["path"] = str(sim_dir / log["path"])
    config["schedule"] = {"evaluate_every": "2s"}
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    config["reports"] = {"dir": str(tmp_path / "reports")}
    config["outputs"] = {
        "retry_schedule": ["0s"] + [f"{RETRY_DELAY_S:g}s"] * 9,
        "slack": {"channel": "#ml-alerts", "token_env": "DRIP_SLACK_TOKEN", "base_url": slack.base_url,
                  "allow_private": True, "timeout": "5s"},
        "webhooks": [{"name": "deployer", "url": drip.url, "secret_env": "DRIP_DEPLOYER_SECRET",
                      "allow_private": True, "timeout": f"{WEBHOOK_TIMEOUT_S:g}s"}],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_dripping_webhook_delays_only_itself_and_the_slack_page_arrives_on_time(
        sim_dir, prometheus, fleet_end, tmp_path):
    with SlackStandIn(TOKEN) as slack, DripReceiver(interval_s=1.0) as drip:
        config_path = write_daemon_config(sim_dir, prometheus.url, tmp_path, slack, drip)
        state_path = tmp_path / "state.db"
        queue_notification(state_path, "rollback.requested:drip", "rollback.requested", ROLLBACK)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DRIP_SLACK_TOKEN": TOKEN,
               "DRIP_DEPLOYER_SECRET": new_webhook_secret()}
        # Inside recommender's error spike: real pages go to Slack too, while the drip goes on.
        replay_from = (fleet_end - timedelta(hours=19, minutes=40)).isoformat()
        with open(tmp_path / "daemon.log", "wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config_path), "--log-format", "json",
                 "--replay-from", replay_from], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(lambda: drip.holding_at(time.time()), 120, "the daemon to be held by the dripping receiver")
            queued_at = queue_notification(state_path, "firing:drip-probe", "firing", PAGE)

            def probe_page():
                return next((c for c in slack.accepted("chat.postMessage")
                             if "DripProbePage" in json.dumps(c.args.get("blocks"))), None)

            page = wait_for(probe_page, 60, "the page to reach Slack")
            assert page.received_at - queued_at < ON_TIME_S, \
                f"the page took {page.received_at - queued_at:.1f}s behind a dripping webhook"
            assert drip.holding_at(page.received_at), "the drip had ended: nothing was shown"

            wait_for(lambda: len(drip.finished()) >= 3, 3 * (WEBHOOK_TIMEOUT_S + RETRY_DELAY_S) + 30,
                     "three dripped attempts")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(WEBHOOK_TIMEOUT_S + 30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()

    # Each dripped attempt was cut at its deadline, and the next began on the schedule.
    attempts = sorted(drip.finished(), key=lambda c: c.accepted_at)[:3]
    for connection in attempts:
        assert WEBHOOK_TIMEOUT_S - 0.5 <= connection.held_s() <= WEBHOOK_TIMEOUT_S + SCHEDULING_SLACK_S, \
            [c.held_s() for c in attempts]
    for before, after in zip(attempts, attempts[1:]):
        gap_s = after.accepted_at - before.closed_at
        assert RETRY_DELAY_S - 0.2 <= gap_s <= RETRY_DELAY_S * (1 + JITTER_SHARE) + SCHEDULING_SLACK_S, gap_s

    with StateStore(state_path) as store:
        deliveries = Outbox(store).deliveries()
    (rollback,) = [d for d in deliveries if d.notification_key == "rollback.requested:drip"]
    assert rollback.status is DeliveryStatus.PENDING and rollback.attempts >= 3
    assert f"within {WEBHOOK_TIMEOUT_S:g}s" in rollback.last_error, rollback.last_error
    (probe,) = [d for d in deliveries if d.notification_key == "firing:drip-probe"]
    assert probe.status is DeliveryStatus.DELIVERED and probe.attempts == 1
    assert slack.problems == []
