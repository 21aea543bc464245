"""Every default rule's notification, rendered for PagerDuty and Teams: valid for each, within each limit.

Each rule's annotations are rendered by the real annotation templates over labels
of the kind the daemon attaches (service, slo, model, version, ...), for a single
alert and for a group of many; then checked by the stand-ins' own validators (the
PagerDuty Events v2 schema, the Adaptive Card checks and markdown scan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import monitor.default_rules
from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.rule_spec import Rule, load_rule_file
from monitor.alerting.templates import render
from monitor.config import PagerDutyConfig, TeamsConfig
from monitor.outputs.pagerduty import MAX_SUMMARY_CHARS, render_pagerduty
from monitor.outputs.teams import message_bytes, render_teams
from standins.pagerduty import schema_errors
from standins.teams import MAX_MESSAGE_BYTES, message_markup, message_problems

RULE_FILES = sorted(Path(monitor.default_rules.__file__).parent.glob("*.yaml"))
DAEMON_LABELS = {"service": "ranker", "slo": "availability", "slo_id": "ranker-availability", "model": "ranker",
                 "version": "v2", "pipeline": "features", "name": "prometheus", "kind": "query",
                 "error": "connection refused", "namespace": "ml", "column": "score"}
EVIDENCE = {"burn_rate_1h": 15.2, "burn_rate_5m": 20.0, "burn_rate_6h": 7.1, "burn_rate_30m": None,
            "drift_psi": 0.31}
LINKS = {"runbook": "https://github.com/example/monitor#rule", "graph": "https://prometheus.example/graph?g0.expr=x",
         "silence_4h": "monitor silence add alertname=X --for 4h"}


def default_rules() -> list[Rule]:
    return [rule for path in RULE_FILES for rule in load_rule_file(path)]


def rule_alert(rule: Rule, index: int, status: str) -> AlertEvent:
    labels = {**DAEMON_LABELS, "alertname": rule.alert, **rule.labels, "instance": f"pod-{index}"}
    annotations = {k: render(v, labels, 0.42, EVIDENCE) for k, v in rule.annotations.items()}
    return AlertEvent(status=status, state=status, labels=labels, annotations=annotations,
                      starts_at="2026-11-22T21:00:00Z", ends_at=None, fingerprint=f"{rule.alert}-{index}",
                      value=0.42, evidence=EVIDENCE)


def rule_group(rule: Rule, count: int, kind: str) -> AlertGroupEvent:
    status = "resolved" if kind == "resolved" else "firing"
    return AlertGroupEvent(kind=kind, status=status, group_key=f"{{}}:{{alertname=\"{rule.alert}\"}}",
                           group_labels={"alertname": rule.alert},
                           alerts=tuple(rule_alert(rule, i, status) for i in range(count)),
                           created_at="2026-11-22T21:05:00Z", receiver="oncall", links=LINKS)


def test_the_default_rules_are_found():
    assert len(default_rules()) >= 9


@pytest.mark.parametrize("count", [1, 200], ids=["one alert", "a group of two hundred alerts"])
@pytest.mark.parametrize("kind", ["firing", "repeat", "resolved"])
def test_every_default_rule_renders_for_pagerduty_and_teams_within_their_limits(kind, count):
    pd_config = PagerDutyConfig(routing_key_env="PD_KEY")
    teams_config = TeamsConfig(webhook_url_env="TEAMS_URL")
    for rule in default_rules():
        event = rule_group(rule, count, kind)
        for alert in event.alerts[:1]:
            assert not any("template error" in v for v in alert.annotations.values()), (rule.alert, alert.annotations)
        body = render_pagerduty(event, pd_config, "R" * 32)
        assert schema_errors(body) == [], rule.alert
        if kind != "resolved":
            assert len(body["payload"]["summary"]) <= MAX_SUMMARY_CHARS
            assert body["payload"]["class"] == rule.alert
        message = render_teams(event, teams_config)
        assert message_problems(message) == [] and message_markup(message) == [], rule.alert
        assert len(message_bytes(message)) <= MAX_MESSAGE_BYTES, rule.alert
