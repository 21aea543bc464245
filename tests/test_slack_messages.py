"""Block Kit messages for alert groups: Alertmanager-like titles, the numbers, escaping, Slack's limits."""

from __future__ import annotations

import json

import pytest

from monitor.outputs.slack_messages import (
    MAX_BLOCKS, build_alert_group_message, escape_mrkdwn, title, truncate)


def alert(name="SLOBudgetBurnPage", status="firing", value=15.2, **labels):
    labels = {"alertname": name, "severity": "page", **labels}
    return {"status": status, "labels": labels, "startsAt": "2026-11-22T21:00:00Z",
            "annotations": {"summary": f"{labels.get('service', 'svc')} burning error budget",
                            "runbook_url": "https://runbooks.example/slo"},
            "value": value, "evidence": {"burn_rate_1h": 15.2, "burn_rate_5m": 21.7}}


def group(alerts, status="firing", kind="firing", group_labels=None):
    return {"kind": kind, "status": status, "groupKey": "g1",
            "groupLabels": group_labels or {"alertname": alerts[0]["labels"]["alertname"]}, "alerts": alerts,
            "firing": sum(a["status"] == "firing" for a in alerts),
            "resolved": sum(a["status"] == "resolved" for a in alerts)}


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
    message = build_alert_group_message(
        group([alert(service="ranker")]),
        {"report": "https://reports.example/w47.html", "prometheus": "https://prom.example/graph?g0.expr=x"})
    text = json.dumps(message.blocks)
    assert "*Severity:* page" in text
    assert "burn_rate_1h" in text and "15.2" in text and "21.7" in text
    buttons = {b["text"]["text"]: b["url"] for b in message.blocks[-2]["elements"]}
    assert buttons == {"Report": "https://reports.example/w47.html",
                       "Prometheus graph": "https://prom.example/graph?g0.expr=x",
                       "Runbook": "https://runbooks.example/slo"}


@pytest.mark.parametrize("raw, escaped", [
    ("<!channel>", "&lt;!channel&gt;"), ("a & b", "a &amp; b"), ("<https://evil|click>", "&lt;https://evil|click&gt;"),
    ("<@U123>", "&lt;@U123&gt;"),
], ids=["a channel ping is defused", "an ampersand is escaped", "a forged link is defused", "a user ping is defused"])
def test_label_values_cannot_ping_or_link(raw, escaped):
    assert escape_mrkdwn(raw) == escaped
    payload = group([{**alert(service=raw), "annotations": {"summary": raw, "description": raw}}])
    message = build_alert_group_message(payload)
    mrkdwn = [message.text] + [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(raw not in t for t in mrkdwn)
    assert any(escaped in t for t in mrkdwn)


def test_a_huge_group_stays_within_50_blocks_and_3000_characters():
    alerts = [alert(service=f"svc-{i}", description="x" * 5000) for i in range(120)]
    for a in alerts:
        a["annotations"]["description"] = "&<>" * 2000
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
