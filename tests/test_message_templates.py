"""Receiver message templates: sandboxed Jinja2 files, escaped for their target, falling back when they fail."""

from __future__ import annotations

import logging
import os

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.outputs.message_templates import MAX_OUTPUT_CHARS, render_override, template_error_counts
from monitor.outputs.metrics import DaemonMetrics
from monitor.outputs.slack_messages import build_alert_group_message

HOSTILE = "<!channel> & <script>alert(1)</script>"


def event(service: str = HOSTILE, description: str = "d", count: int = 1) -> AlertGroupEvent:
    alerts = tuple(AlertEvent(status="firing", state="firing",
                              labels={"alertname": "SLOErrorBudgetBurnPage", "service": service, "n": str(i)},
                              annotations={"summary": "burning", "description": description},
                              starts_at="2026-11-22T21:00:00Z", ends_at=None, fingerprint=f"f{i}")
                   for i in range(count))
    return AlertGroupEvent(kind="firing", status="firing", group_key="g", group_labels={"alertname": "SLOErrorBudgetBurnPage"},
                           alerts=alerts, created_at="2026-11-22T21:05:00Z", receiver="ranking")


def write(tmp_path, text: str, name: str = "t.j2") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def exported_errors(integration: str) -> float:
    text = generate_latest(DaemonMetrics().registry).decode()
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "monitor_template_errors"]
    [value] = [s.value for s in family.samples if s.labels == {"integration": integration}]
    return value


@pytest.mark.parametrize("escape, expected", [
    ("html", "<b>[firing] &lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</b> to ranking"),
    ("mrkdwn", "<b>[firing] &lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</b> to ranking"),
    ("none", f"<b>[firing] {HOSTILE}</b> to ranking"),
], ids=["html escapes every value but not the template's own markup",
        "mrkdwn escapes Slack's three control characters in values",
        "none prints values as they are (PagerDuty's plain summary)"])
def test_values_are_escaped_for_the_target_format(tmp_path, escape, expected):
    path = write(tmp_path, "<b>[{{ status }}] {{ commonLabels.service }}</b> to {{ receiver }}")
    assert render_override(path, event(), integration="email", escape=escape, fallback="built-in") == expected


def test_the_template_sees_alertmanagers_fields_and_loops_over_alerts(tmp_path):
    path = write(tmp_path, "{% for a in alerts %}{{ a.labels.n }}:{{ a.annotations.summary }} {% endfor %}"
                           "{{ groupLabels.alertname }} {{ alerts | length }} {{ event.firing_count }}")
    out = render_override(path, event(service="ranker", count=3), integration="email", escape="none", fallback="x")
    assert out == "0:burning 1:burning 2:burning SLOErrorBudgetBurnPage 3 3"


@pytest.mark.parametrize("source, error", [
    (None, "cannot read the file"),
    ("{% for a in alerts %}{{ a.labels.n }", "invalid template"),
    ("{{ status.format(1) }}", "fails when rendered"),
    ("{% set x = 1 %}{{ x }}", "invalid template"),
    ("{% for a in alerts %}{{ a.annotations.description }}{% endfor %}", "output is longer than"),
], ids=["a missing file falls back", "a syntax error falls back", "a forbidden call falls back",
        "a statement the sandbox refuses falls back", "output past the limit falls back"])
def test_a_failing_template_falls_back_is_logged_once_and_counted(tmp_path, caplog, source, error):
    path = str(tmp_path / "missing.j2") if source is None else write(tmp_path, source)
    big = event(description="x" * (MAX_OUTPUT_CHARS // 4), count=5)
    before = template_error_counts().get("pagerduty", 0)
    with caplog.at_level(logging.WARNING, logger="monitor.outputs.message_templates"):
        for _ in range(3):
            assert render_override(path, big, integration="pagerduty", escape="none", fallback="built-in") == "built-in"
    assert template_error_counts()["pagerduty"] == before + 3
    assert exported_errors("pagerduty") == before + 3
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and path in logged[0] and error in logged[0], logged


def test_an_edited_template_is_read_again(tmp_path):
    path = write(tmp_path, "one {{ status }}")
    assert render_override(path, event(), integration="slack", escape="mrkdwn", fallback="x") == "one firing"
    with open(path, "w") as handle:
        handle.write("two {{ status }}")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert render_override(path, event(), integration="slack", escape="mrkdwn", fallback="x") == "two firing"


def test_slack_uses_the_receivers_template_for_its_text_and_falls_back_when_it_breaks(tmp_path):
    good = write(tmp_path, "*{{ commonLabels.alertname }}* for {{ commonLabels.service }}", "good.j2")
    message = build_alert_group_message(event(), good)
    expected = "*SLOErrorBudgetBurnPage* for &lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
    assert message.text == expected
    assert any(b.get("text", {}).get("text") == expected for b in message.blocks)
    huge = build_alert_group_message(event(count=120, description="&<>" * 2000), good)
    assert len(huge.blocks) <= 50 and huge.text == expected
    broken = write(tmp_path, "{{ oops", "broken.j2")
    assert build_alert_group_message(event(), broken).text == build_alert_group_message(event()).text


def test_a_template_path_is_relative_to_the_config_file_not_the_working_directory(tmp_path, monkeypatch):
    from monitor.config import load_config

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "templates").mkdir()
    (tmp_path / "conf" / "templates" / "pd.j2").write_text("{{ groupLabels.alertname }} on {{ receiver }}")
    (tmp_path / "conf" / "monitor.yaml").write_text(
        "outputs:\n"
        "  slack: {channel: '#a', token_env: T, template: templates/pd.j2}\n"
        "  route: {receiver: pager}\n"
        "  receivers:\n"
        "    - name: pager\n"
        "      pagerduty_configs: [{routing_key_env: K, template: templates/pd.j2}]\n")
    monkeypatch.chdir(tmp_path)  # not the config's directory
    config = load_config(tmp_path / "conf" / "monitor.yaml")
    expected = str(tmp_path / "conf" / "templates" / "pd.j2")
    assert config.outputs.receivers[0].pagerduty_configs[0].template == expected
    assert config.outputs.slack.template == expected
