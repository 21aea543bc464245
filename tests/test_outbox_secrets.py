"""Secrets (Slack token, incoming-webhook URL, webhook secrets) never reach a log, an error or `deliveries --json`."""

from __future__ import annotations

import json
import logging
import random

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.cli import main
from monitor.outputs.assembly import build_delivery
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import new_webhook_secret, write_config
from standins.slack_api import SlackStandIn
from standins.webhook_receiver import WebhookReceiver

TOKEN = "xoxb-1111-2222-verysecrettoken"


def test_no_secret_appears_in_logs_errors_or_deliveries_json(tmp_path, monkeypatch, caplog, capsys):
    hook_secret = new_webhook_secret()
    (tmp_path / "slack-token").write_text(TOKEN + "\n")
    (tmp_path / "hook-secret").write_text(hook_secret + "\n")
    monkeypatch.delenv("MISSING_SECRET", raising=False)
    caplog.set_level(logging.DEBUG)
    with SlackStandIn(TOKEN) as slack, WebhookReceiver(hook_secret) as receiver:
        webhook_url = f"http://127.0.0.1:{slack.server.port}/services/T0/B0/hushhush-path"
        monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook_url)
        config = write_config(tmp_path, f"""
            retry_schedule: [0s, 100ms]
            slack:
              channel: "#alerts"
              token_file: slack-token
              base_url: {slack.base_url}
              allow_private: true
            webhooks:
              - name: deployer
                url: {receiver.url}?token=url-embedded-credential
                secret_file: hook-secret
                allow_private: true
              - name: unconfigured
                url: {receiver.url}
                secret_env: MISSING_SECRET
                allow_private: true
        """)
        clock = ManualClock()
        store = StateStore(tmp_path / "state.db")
        service = build_delivery(config, store, clock, rng=random.Random(3))
        group = {"kind": "firing", "status": "firing", "groupKey": "g", "groupLabels": {"alertname": "A"},
                 "alerts": [{"status": "firing", "labels": {"alertname": "A", "model": "ranker", "version": "v2"},
                             "annotations": {}, "startsAt": "2026-11-22T21:00:00Z"}], "firing": 1, "resolved": 0}
        rollback = {"type": "rollback.requested", "model": "ranker", "bad_version": "v2", "last_known_good_version": "v1", "reason": "drift",
                    "alert": group["alerts"][0], "evidence": {}}
        service.outbox.enqueue(service.router.route("g1", AlertGroupEvent.from_dict(group, "2026-11-22T21:05:00Z")),
                               clock.now())
        service.outbox.enqueue(service.router.route("r1", RollbackEvent.from_dict(rollback, "2026-11-22T21:05:00Z")),
                               clock.now())
        slack.rate_limit_next(1, "1")
        receiver.fail_next(1, 500)
        service.worker.run_until_idle()
        # The incoming-webhook path too, failing once.
        (tmp_path / "wh").mkdir()
        webhook_config = write_config(tmp_path / "wh", """
            retry_schedule: [0s]
            slack:
              webhook_url_env: SLACK_WEBHOOK_URL
              allow_private: true
        """)
        wh_service = build_delivery(webhook_config, StateStore(tmp_path / "wh" / "state.db"), clock)
        wh_service.outbox.enqueue(wh_service.router.route("g1", AlertGroupEvent.from_dict(group, "x")), clock.now())
        slack.rate_limit_next(1, "1")
        wh_service.worker.run_until_idle()
        assert len(slack.accepted("incoming-webhook")) == 1
        store.close()

    assert main(["deliveries", "--json", "--config", config.source_path]) == 0
    shown = capsys.readouterr().out
    deliveries = json.loads(shown)["deliveries"]
    unconfigured = next(d for d in deliveries if d["destination"] == "webhook:unconfigured")
    assert "MISSING_SECRET" in unconfigured["last_error"], "the error names where the secret was looked for"

    secrets = [TOKEN, hook_secret, hook_secret.removeprefix("whsec_"), "hushhush-path", "url-embedded-credential"]
    texts = [shown] + [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    texts += [d["last_error"] or "" for d in deliveries]
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert leaks == [], f"secret leaked: {leaks[:1]}"
    assert len(caplog.records) > 0, "the deliveries were logged (without secrets)"
