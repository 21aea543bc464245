"""On-call routing end to end on the simulated fleet, against the real Prometheus.

The route tree sends the ranking team's pages (recommender's SLO page, ranker's drift
page) to PagerDuty and the #ranking Slack channel, GPU and cost tickets to finance by
email, and everything else to #ml-alerts. `monitor run --once` steps the fleet's
history and `monitor deliver --once` sends through the real outbox to the PagerDuty and
Slack stand-ins and to a real SMTP server on loopback. PagerDuty answers the first
request of the page with a 500, so the retry is part of the story: one incident per
alert group, and its `dedup_key` the same on trigger, retry and resolve.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from smtp_server import SmtpServer
from standins.pagerduty import PagerDutyStandIn
from standins.slack_api import SlackStandIn

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-routing-scenario"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"


def _config(fleet_config_path: Path, tmp_path: Path, slack: SlackStandIn, pagerduty: PagerDutyStandIn,
            smtp: SmtpServer) -> Path:
    config = yaml.safe_load(fleet_config_path.read_text())
    config["rules"] = [str(REPO / "monitor" / "default_rules" / "*.yaml")]
    config["state"] = {"path": str(tmp_path / "state.db")}
    config["alerting"] = {"last_known_good_after": "1h"}
    slack_base = {"token_env": "SLACK_TOKEN", "base_url": slack.base_url, "allow_private": True}
    config["outputs"] = {
        "retry_schedule": ["0s", "200ms", "200ms"],
        "route": {
            "receiver": "ops",
            "routes": [
                {"matchers": ['severity="page"', 'service="recommender"'], "receiver": "ranking"},
                {"matchers": ['severity="page"', 'model="ranker"'], "receiver": "ranking"},
                {"matchers": ['alertname=~"GPUIdle|ModelCostPer1kIncrease"'], "receiver": "finance"},
            ],
        },
        "receivers": [
            {"name": "ops", "slack_configs": [{**slack_base, "channel": "#ml-alerts"}]},
            {"name": "ranking",
             "pagerduty_configs": [{"routing_key_env": "PD_ROUTING_KEY", "url": pagerduty.url,
                                    "allow_private": True}],
             "slack_configs": [{**slack_base, "channel": "#ranking"}]},
            {"name": "finance",
             "email_configs": [{"to": ["finance@example.com"], "from": "monitor@example.com",
                                "smarthost": smtp.smarthost, "require_tls": False, "allow_private": True}]},
        ],
    }
    path = fleet_config_path.parent / "scenario-routing.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_pages_reach_pagerduty_and_their_channel_tickets_reach_email_and_resolves_follow(
        fleet_end, fleet_config_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    with SlackStandIn(TOKEN) as slack, PagerDutyStandIn() as pagerduty, SmtpServer() as smtp:
        path = _config(fleet_config_path, tmp_path, slack, pagerduty, smtp)

        def cli(*args: str) -> str:
            code = main([*args, "--config", str(path)])
            captured = capsys.readouterr()
            assert code == 0, captured.err
            return captured.out

        assert cli("routes", "test", "severity=page", "service=recommender").strip() == "ranking"
        # ranker's drift pages from -30h; recommender's error spike pages at -20h and resolves by -18h;
        # churn-scorer's GPUs idle from -16h: the ticket fires 6h later and resolves after -8h.
        for offset_h in (-32, -29, -28.5, -28, -20 + 1 / 3, -18.5, -18, -15.75, -9.67, -7.5):
            if offset_h == -20 + 1 / 3:
                pagerduty.fail_next(1, 500)  # the first PagerDuty request of this step is retried
            cli("run", "--once", "--at", (fleet_end + timedelta(hours=offset_h)).isoformat())
            cli("deliver", "--once")
        deliveries = json.loads(cli("deliveries", "--json"))["deliveries"]

    assert slack.problems == []
    assert deliveries and all(d["status"] == "delivered" for d in deliveries), deliveries
    destinations = {d["destination"] for d in deliveries}
    assert {"ranking/pagerduty", "ranking/slack", "finance/email"} <= destinations

    # PagerDuty: one incident per page group (recommender's SLO page, ranker's drift), each opened
    # once; the request that got the 500 carried the dedup_key of one of them.
    summaries = {a.dedup_key: a.log[0]["payload"]["summary"] for a in pagerduty.alerts}
    assert len(pagerduty.alerts) == 2, summaries
    assert any("SLOErrorBudgetBurnPage" in s and "recommender" in s for s in summaries.values()), summaries
    assert any("ModelPredictionDrift" in s and "ranker" in s for s in summaries.values()), summaries
    failed = [r for r in pagerduty.requests if r.answered == 500]
    assert len(failed) == 1 and failed[0].event["dedup_key"] in summaries
    [page] = [a for a in pagerduty.alerts if "recommender" in a.log[0]["payload"]["summary"]]
    actions = [e["event_action"] for e in page.log]
    assert actions[0] == "trigger" and actions[-1] == "resolve" and page.status == "resolved", actions
    assert {e["dedup_key"] for e in page.log} == {page.dedup_key}
    assert all(e["payload"]["severity"] == "critical" for e in page.log if e["event_action"] == "trigger")
    assert pagerduty.dropped == []
    # Nothing but pages reached PagerDuty.
    assert not any("GPUIdle" in (e.get("payload") or {}).get("summary", "") for e in pagerduty.accepted())

    # Slack: the pages and their resolve in #ranking (the resolve in the page's thread), none in #ml-alerts.
    def texts(channel: str) -> list[tuple[str, str, str | None]]:
        return [(c.method, c.args["blocks"][0]["text"]["text"], c.args.get("thread_ts"))
                for c in slack.accepted() if c.args.get("channel") == channel and c.args.get("blocks")]

    ranking = texts("#ranking")
    page_posts = [t for t in ranking if "SLOErrorBudgetBurnPage" in t[1]]
    assert page_posts[0][0] == "chat.postMessage"
    assert page_posts[0][1].startswith("[FIRING:1] SLOErrorBudgetBurnPage recommender")
    assert any("RESOLVED" in t[1] for t in page_posts), page_posts
    assert any("ModelPredictionDrift" in t[1] for t in ranking)
    ops = texts("#ml-alerts")
    assert ops, "the root receiver has the other alerts"
    assert not any("SLOErrorBudgetBurnPage] recommender" in t[1] or "ModelPredictionDrift" in t[1]
                   or "GPUIdle" in t[1] for t in ops), ops
    assert not any("GPUIdle" in t[1] for t in ranking)

    # Email: the GPU ticket, firing then resolved, reached finance and only finance.
    subjects = [m.message["subject"] for m in smtp.received]
    gpu = [s for s in subjects if "GPUIdle" in s]
    assert [s.split("]")[0] for s in gpu] == ["[FIRING:1", "[RESOLVED"], subjects
    assert all(m.rcpt_tos == ("finance@example.com",) for m in smtp.received)
    assert not any("SLOErrorBudgetBurnPage" in s or "ModelPredictionDrift" in s for s in subjects)
