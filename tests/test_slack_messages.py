"""Block Kit messages for alert groups: Alertmanager-like titles, the numbers, escaping, Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.lifecycle import fingerprint
from monitor.outputs.slack_messages import (
    MAX_BLOCKS, build_alert_group_message, escape_mrkdwn, slack_date, title, truncate)

STARTS_AT = "2026-11-22T21:00:00Z"
STARTS_AT_UNIX = int(datetime(2026, 11, 22, 21, 0, tzinfo=timezone.utc).timestamp())


def alert(name="SLOBudgetBurnPage", status="firing", value=15.2, **labels):
    labels = {"alertname": name, "severity": "page", **labels}
    return AlertEvent(status=status, state=status, labels=labels,
                      annotations={"summary": f"{labels.get('service', 'svc')} burning error budget",
                                   "runbook_url": "https://runbooks.example/slo"},
                      starts_at=STARTS_AT, ends_at="2026-11-22T22:00:00Z" if status == "resolved" else None,
                      fingerprint=fingerprint(labels), value=value,
                      evidence={"burn_rate_1h": 15.2, "burn_rate_5m": 21.7})


def group(alerts, status="firing", kind="firing", group_labels=None, links=None):
    return AlertGroupEvent(kind=kind, status=status, group_key="g1",
                           group_labels=group_labels or {"alertname": alerts[0].labels["alertname"]},
                           alerts=tuple(alerts), created_at="2026-11-22T21:05:00Z", links=links or {})


@pytest.mark.parametrize("payload, expected", [
    (group([alert(service="ranker"), alert(service="ranker", slo="latency")]), "[FIRING:2] SLOBudgetBurnPage ranker"),
    (group([alert(service="ranker", status="resolved")], status="resolved"), "[RESOLVED] SLOBudgetBurnPage ranker"),
    (group([alert(service="a"), alert(service="b")]), "[FIRING:2] SLOBudgetBurnPage"),
    (group([alert(service="ranker")], group_labels={"alertname": "SLOBudgetBurnPage", "service": "ranker"}),
     "[FIRING:1] SLOBudgetBurnPage ranker"),
], ids=["two firing alerts of one service name it", "a resolved group says RESOLVED without a count",
        "alerts of different services name none", "a grouping label's value follows the alert name"])
def test_the_title_reads_like_alertmanagers(payload, expected):
    assert title(payload) == expected
    message = build_alert_group_message(payload)
    assert message.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": expected}}
    assert message.text.startswith(expected)


def test_the_message_shows_severity_the_numbers_and_links():
    message = build_alert_group_message(group(
        [alert(service="ranker")],
        links={"report": "https://reports.example/w47.html", "prometheus": "https://prom.example/graph?g0.expr=x"}))
    text = json.dumps(message.blocks)
    assert "*Severity:* page" in text
    assert "burn_rate_1h" in text and "15.2" in text and "21.7" in text
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
    assert buttons == {"Report": "https://reports.example/w47.html",
                       "Prometheus graph": "https://prom.example/graph?g0.expr=x",
                       "Runbook": "https://runbooks.example/slo"}


@pytest.mark.parametrize("raw, escaped", [
    ("<!channel>", "&lt;!channel&gt;"), ("a & b", "a &amp; b"), ("<https://evil|click>", "&lt;https://evil|click&gt;"),
    ("<@U123>", "&lt;@U123&gt;"),
], ids=["a channel ping is defused", "an ampersand is escaped", "a forged link is defused", "a user ping is defused"])
def test_label_values_cannot_ping_or_link(raw, escaped):
    assert escape_mrkdwn(raw) == escaped
    payload = group([replace(alert(service=raw), annotations={"summary": raw, "description": raw})])
    message = build_alert_group_message(payload)
    mrkdwn = [message.text] + [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(raw not in t for t in mrkdwn)
    assert any(escaped in t for t in mrkdwn)


def test_a_huge_group_stays_within_50_blocks_and_3000_characters():
    alerts = [replace(a, annotations={**a.annotations, "description": "&<>" * 2000})
              for a in (alert(service=f"svc-{i}", description="x" * 5000) for i in range(120))]
    message = build_alert_group_message(group(alerts))
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    assert "more alert(s) in this group" in json.dumps(message.blocks)
    assert len(message.text) <= 3000


def test_truncation_never_splits_an_escaped_entity():
    cut = truncate(escape_mrkdwn("a" * 2998 + "<b"), 3000)
    assert len(cut) <= 3000 and cut.endswith("a…")


def test_times_are_slack_dates_in_the_readers_zone_with_iso_utc_fallback():
    assert slack_date(STARTS_AT) == f"<!date^{STARTS_AT_UNIX}^{{date_short_pretty}} {{time}}|{STARTS_AT}>"
    assert slack_date("2026-11-22T22:00:00.250+01:00") == \
        f"<!date^{STARTS_AT_UNIX}^{{date_short_pretty}} {{time}}|{STARTS_AT}>"
    assert slack_date("<!channel>") == "&lt;!channel&gt;"
    message = build_alert_group_message(group([alert(service="ranker", status="resolved")], status="resolved"))
    [section] = [b for b in message.blocks if b["type"] == "section" and "burning" in b["text"]["text"]]
    resolved_unix = STARTS_AT_UNIX + 3600
    assert f"since <!date^{STARTS_AT_UNIX}^" in section["text"]["text"]
    assert f"resolved <!date^{resolved_unix}^{{date_short_pretty}} {{time}}|2026-11-22T22:00:00Z>" \
        in section["text"]["text"]


def test_each_alert_has_its_graph_and_the_group_its_dashboard_and_silence_commands():
    a, b = alert(service="ranker", model="m1"), alert(service="ranker", model="m2")
    command = "monitor silence add --match 'alertname=\"SLOBudgetBurnPage\"' --for 1h --comment x"
    links = {f"graph:{a.fingerprint}": "https://prom.example/graph?g0.expr=a",
             f"graph:{b.fingerprint}": "https://prom.example/graph?g0.expr=b",
             "dashboard": "https://grafana.example/d/x?var-service=ranker",
             "silence_command_1h": command, "silence_command_4h": command.replace("1h", "4h"),
             "silence_command_24h": command.replace("1h", "24h")}
    message = build_alert_group_message(group([a, b], links=links))
    graphs = [blk["accessory"]["url"] for blk in message.blocks if "accessory" in blk]
    assert graphs == ["https://prom.example/graph?g0.expr=a", "https://prom.example/graph?g0.expr=b"]
    [actions] = [blk for blk in message.blocks if blk["type"] == "actions"]
    assert {"Dashboard": "https://grafana.example/d/x?var-service=ranker"}.items() <= \
        {e["text"]["text"]: e["url"] for e in actions["elements"]}.items()
    # Silence commands are not URLs: never a button, shown as code to paste, escaped for mrkdwn.
    assert all(e["url"].startswith("https://") for e in actions["elements"])
    [silence] = [blk for blk in message.blocks if "*Silence*" in blk.get("text", {}).get("text", "")]
    for duration in ("1h", "4h", "24h"):
        assert f"{duration}: ```{escape_mrkdwn(command.replace('1h', duration))}```" in silence["text"]["text"]
    resolved = build_alert_group_message(group([replace(a, status="resolved")], status="resolved", links=links))
    assert "*Silence*" not in json.dumps(resolved.blocks)
