"""Every default rule's notification, as Slack and an Alertmanager webhook receive it: actionable and within limits."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from monitor.alerting import templates
from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.lifecycle import fingerprint
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import AlertmanagerWebhookConfig, Config
from monitor.outputs.am_webhook import render_webhook_payload
from monitor.outputs.links import LinkBuilder, alert_graph_key, silence_commands
from monitor.outputs.slack_messages import MAX_BLOCKS, build_alert_group_message
from monitor.signals import CATALOGUE
from test_am_webhook import SCHEMA

REPO = Path(__file__).resolve().parents[1]
RULES = [rule for path in sorted((REPO / "monitor" / "default_rules").glob("*.yaml")) for rule in load_rule_file(path)]


def notification(rule, links: LinkBuilder, count: int) -> AlertGroupEvent:
    signal = links.signal_by_alertname.get(rule.alert)
    names = CATALOGUE[signal][0] if signal else ("pipeline",)
    alerts = []
    for i in range(count):
        labels = {"alertname": rule.alert, **rule.labels, **{n: f"{n}-{i % 3}" for n in names}}
        evidence = {"burn_rate_1h": 15.2, "burn_rate_5m": 21.7, "drift_psi": 0.31}
        annotations = {k: templates.render(v, labels, 0.42, evidence) for k, v in rule.annotations.items()}
        alerts.append(AlertEvent(status="firing", state="firing", labels=labels, annotations=annotations,
                                 starts_at="2026-11-22T21:00:00Z", ends_at=None, fingerprint=fingerprint(labels),
                                 value=0.42, evidence=evidence))
    event = AlertGroupEvent(kind="firing", status="firing", group_key="g", group_labels={"alertname": rule.alert},
                            alerts=tuple(alerts), created_at="2026-11-22T21:05:00Z", receiver="ops")
    event = links.with_absolute_runbooks(event)
    return event.with_links(links.for_event(event))


@pytest.mark.parametrize("count", [1, 200], ids=["one alert", "a group of two hundred alerts"])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.alert)
def test_a_default_rules_notification_is_actionable_and_within_limits(rule, count):
    links = LinkBuilder.from_config(Config(), RULES)
    links = LinkBuilder(report_url="https://reports.example/w47.html", prometheus_url="https://prom.example",
                        expr_by_alertname=links.expr_by_alertname, signal_by_alertname=links.signal_by_alertname,
                        dashboard_url="https://grafana.example/d/ml?var-alert={{ common_labels.alertname }}",
                        runbook_base_url="https://wiki.example/README.md")
    event = notification(rule, links, count)
    message = build_alert_group_message(event)
    text = json.dumps(message.blocks)
    assert "template error" not in text and "template error" not in message.text
    assert len(message.blocks) <= MAX_BLOCKS and len(message.text) <= 3000
    for block in message.blocks:
        for part in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(part.get("text"), str):
                assert len(part["text"]) <= (150 if block["type"] == "header" else 3000)
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    buttons = {e["text"]["text"]: e["url"] for e in actions["elements"]}
    assert buttons["Runbook"] == f"https://wiki.example/README.md#{rule.alert.lower()}"
    assert buttons["Dashboard"] == f"https://grafana.example/d/ml?var-alert={rule.alert}"
    graphs = [b["accessory"]["url"] for b in message.blocks if "accessory" in b]
    assert graphs and all(g.startswith("https://prom.example/graph?g0.expr=") for g in graphs)
    assert set(silence_commands(event.links)) == {"1h", "4h", "24h"}
    payload = render_webhook_payload(event, AlertmanagerWebhookConfig(url="http://x"))
    jsonschema.validate(payload, SCHEMA)
    assert [a["generatorURL"] for a in payload["alerts"]] == [event.links[alert_graph_key(a)] for a in event.alerts]
    assert payload["alerts"][0]["annotations"]["runbook_url"] == buttons["Runbook"]


@pytest.mark.parametrize("count", [1, 200], ids=["one alert", "a group of two hundred alerts"])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.alert)
def test_a_default_rules_notification_renders_as_an_email_with_its_links(rule, count):
    from email import policy
    from email.parser import BytesParser

    from monitor.config import EmailConfig
    from monitor.outputs.email import render_email

    links = LinkBuilder.from_config(Config(), RULES)
    links = LinkBuilder(report_url="https://reports.example/w47.html", prometheus_url="https://prom.example",
                        expr_by_alertname=links.expr_by_alertname, signal_by_alertname=links.signal_by_alertname,
                        runbook_base_url="https://wiki.example/README.md")
    event = notification(rule, links, count)
    message = render_email(event, EmailConfig(to=["oncall@example.com"]), "msg_default_rules")
    # What a mail client reads: the bytes on the wire, parsed back.
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert parsed["subject"].startswith(f"[FIRING:{count}] {rule.alert}")
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "template error" not in text and "template error" not in html
    assert f"https://wiki.example/README.md#{rule.alert.lower()}" in html
    assert "https://prom.example/graph?g0.expr=" in html
    assert rule.alert in text
