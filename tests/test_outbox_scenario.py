"""End to end on the simulated fleet: `monitor run --once` queues, `monitor deliver --once` delivers.

ranker's v2 canary drifts from 30h before the fleet's end: its drift alert must
reach Slack and a signed `rollback.requested` naming v2 and the last-known-good v1
must reach the deployer's webhook. recommender's 40-minute error spike (20h before
the end) pages and resolves: the resolve must land in the page's Slack thread.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from standins.configs import new_webhook_secret
from standins.slack_api import SlackStandIn
from standins.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-scenario-token"


def test_drift_reaches_slack_and_the_deployer_and_a_resolve_reaches_the_thread(fleet_end, fleet_config_path,
                                                                               tmp_path, monkeypatch, capsys):
    secret = new_webhook_secret()
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("DEPLOYER_SECRET", secret)
    with SlackStandIn(TOKEN) as slack, WebhookReceiver(secret) as deployer:
        config = yaml.safe_load(fleet_config_path.read_text())
        config["rules"] = [str(REPO / "monitor" / "default_rules" / "*.yaml")]
        config["state"] = {"path": str(tmp_path / "state.db")}
        # v1 counts as last-known-good after an hour of clean serving (default 24h),
        # so one cycle before v2's deploy is enough history.
        config["alerting"] = {"last_known_good_after": "1h"}
        config["outputs"] = {
            "retry_schedule": ["0s", "200ms"],
            "report_url": "https://reports.example/2026-W47.html",
            "slack": {"channel": "#ml-alerts", "token_env": "SLACK_TOKEN", "base_url": slack.base_url,
                      "allow_private": True},
            "webhooks": [{"name": "deployer", "url": deployer.url, "secret_env": "DEPLOYER_SECRET",
                          "allow_private": True, "match": {"model": "ranker"}}],
        }
        path = fleet_config_path.parent / "scenario-delivery.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))

        def cli(*args: str) -> str:
            code = main([*args, "--config", str(path)])
            captured = capsys.readouterr()
            assert code == 0, captured.err
            return captured.out

        # The page resolves on the first evaluation after keep_firing_for (5m) has passed since
        # its condition first evaluated false (at -18.5h), as test_pipeline_scenarios shows.
        for offset_h in (-32, -29, -28.5, -28, -20 + 1 / 3, -18.5, -18):
            cli("run", "--once", "--at", (fleet_end + timedelta(hours=offset_h)).isoformat())
            cli("deliver", "--once")
        deliveries = json.loads(cli("deliveries", "--json"))["deliveries"]

    assert slack.problems == []
    assert deliveries and all(d["status"] == "delivered" for d in deliveries), deliveries

    # The drift alert reached Slack as a new channel message.
    titles = [(c.method, c.args["blocks"][0]["text"]["text"], c.args.get("thread_ts")) for c in slack.accepted()]
    drift_posts = [t for t in titles if "ModelPredictionDrift" in t[1]]
    assert drift_posts[0] == ("chat.postMessage", "[FIRING:1] ModelPredictionDrift ranker v2", None)

    # A signed rollback.requested naming the bad and last-known-good versions reached the deployer, once.
    assert deployer.attempts and all(a.valid for a in deployer.attempts)
    events = [deployer.events[i] for i in deployer.order]
    requested = [e for e in events if e["type"] == "rollback.requested"]
    assert len(requested) == 1
    data = requested[0]["data"]
    assert (data["model"], data["bad_version"], data["last_known_good_version"]) == ("ranker", "v2", "v1")
    assert data["alert"]["labels"]["alertname"] == "ModelPredictionDrift"
    assert data["evidence"], "the numbers that fired it travel with the request"
    assert data["links"]["report"] == "https://reports.example/2026-W47.html"

    # recommender's page fired in the channel and its resolve landed in that thread, updating the parent.
    page = [c for c in slack.accepted() if "SLOErrorBudgetBurnPage" in c.args["blocks"][0]["text"]["text"]]
    parent = next(c for c in page if c.method == "chat.postMessage" and "thread_ts" not in c.args)
    assert parent.args["blocks"][0]["text"]["text"].startswith("[FIRING:1] SLOErrorBudgetBurnPage")
    resolve = next(c for c in page if c.method == "chat.postMessage" and c.args.get("thread_ts"))
    assert resolve.args["thread_ts"] == parent.ts
    assert resolve.args["blocks"][0]["text"]["text"].startswith("[RESOLVED] SLOErrorBudgetBurnPage")
    assert slack.messages[parent.ts]["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
