"""kill -9 between the receiver's 2xx and the outbox's commit: the event is sent again, never lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from monitor.outputs.outbox import DeliveryStatus, Outbox
from monitor.store import StateStore
from standins.configs import new_webhook_secret, write_config
from standins.webhook_receiver import WebhookReceiver

REPO = Path(__file__).resolve().parent.parent


def queue_rollback_notification(store: StateStore) -> int:
    """A rollback request as the alerting stage leaves it: a `pending` row in `notifications`."""
    payload = {"type": "rollback.requested", "model": "ranker", "bad_version": "v2",
               "last_known_good_version": "v1", "reason": "ranker v2 prediction scores drifted",
               "alert": {"labels": {"alertname": "ModelScoreDrift", "model": "ranker", "version": "v2"},
                         "annotations": {}, "startsAt": "2026-11-22T21:00:00Z"},
               "evidence": {"psi": 0.31}}
    with store.transaction() as conn:
        cursor = conn.execute("INSERT INTO notifications (idempotency_key, kind, created_at, payload, status) "
                              "VALUES (?, ?, ?, ?, 'pending')",
                              ("rollback.requested:fp:2026-11-22T21:00:00Z", "rollback.requested", time.time(),
                               json.dumps(payload)))
        return int(cursor.lastrowid)


def deliver_once(config_path: str, secret: str, failpoint: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOOK_SECRET": secret, "PYTHONPATH": str(REPO)}
    env.pop("MONITOR_FAILPOINT", None)
    if failpoint:
        env["MONITOR_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "monitor", "deliver", "--once", "--config", config_path],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_sigkill_after_the_2xx_before_the_commit_resends_with_the_same_webhook_id(tmp_path):
    secret = new_webhook_secret()
    with WebhookReceiver(secret) as receiver:
        config = write_config(tmp_path, f"""
            webhooks:
              - name: deployer
                url: {receiver.url}
                secret_env: HOOK_SECRET
                allow_private: true
        """)
        with StateStore(tmp_path / "state.db") as store:
            notification_id = queue_rollback_notification(store)

        killed = deliver_once(config.source_path, secret, failpoint="outbox.after_send")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert [(a.answered, a.valid) for a in receiver.attempts] == [(200, True)]
        with StateStore(tmp_path / "state.db") as store:
            (delivery,) = Outbox(store).deliveries()
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1), "the 2xx was never committed"

        restarted = deliver_once(config.source_path, secret, failpoint=None)
        assert restarted.returncode == 0, restarted.stderr
        assert "pending: 0, failed: 0" in restarted.stdout

    first_id, second_id = receiver.ids_seen()
    assert first_id == second_id == delivery.message_id
    assert all(a.valid for a in receiver.attempts)
    assert receiver.order == [first_id], "the receiver's dedup on webhook-id sees one event"
    with StateStore(tmp_path / "state.db") as store:
        (after,) = Outbox(store).deliveries()
        assert (after.status, after.attempts) == (DeliveryStatus.DELIVERED, 2)
        status = store.query("SELECT status FROM notifications WHERE id = ?", (notification_id,))[0][0]
        assert status == "delivered"
