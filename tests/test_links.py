"""Links in every notification: runbook, dashboard, a graph per alert, and the silence command to paste."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import promql_parser
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.repository import AlertRepository
from monitor.alerting.lifecycle import fingerprint
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import Config
from monitor.outputs.links import (LinkBuilder, alert_graph_key, exported_series_selector, silence_commands,
                                   url_links)
from monitor.outputs.metrics import SIGNAL_UNIT_SCALE, SignalCollector
from monitor.signals import CATALOGUE, Signal
from monitor.store import StateStore

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RULES = sorted((REPO / "monitor" / "default_rules").glob("*.yaml"))
HOSTILE = "a\"b\\c\n{x=~\".*\"} or vector(1) '$(touch PWNED)' `touch PWNED`; touch PWNED #"


def alert(**labels) -> AlertEvent:
    labels = {"severity": "page", **labels}
    return AlertEvent(status="firing", state="firing", labels=labels, annotations={}, starts_at="2026-11-22T21:00:00Z",
                      ends_at=None, fingerprint=fingerprint(labels))


def group(*alerts: AlertEvent) -> AlertGroupEvent:
    return AlertGroupEvent(kind="firing", status="firing", group_key="g", group_labels={"alertname": alerts[0].alertname},
                           alerts=alerts, created_at="2026-11-22T21:05:00Z")


def default_links(**kwargs) -> LinkBuilder:
    """The links for the default rules, as the daemon builds them from a config."""
    rules = [rule for path in DEFAULT_RULES for rule in load_rule_file(path)]
    built = LinkBuilder.from_config(Config(), rules)
    return replace(built, prometheus_url="https://prom.example", report_url="https://reports.example/w47.html",
                   **kwargs)


def graph_expr(url: str) -> str:
    return parse_qs(urlsplit(url).query)["g0.expr"][0]


@pytest.mark.parametrize("signal", sorted(CATALOGUE), ids=lambda s: f"the {s} series is selected as /metrics exports it")
def test_a_selector_picks_exactly_the_series_the_daemon_exports(signal):
    names = CATALOGUE[signal][0]
    labels = {name: f"{HOSTILE}-{name}" for name in names}
    other = {name: f"other-{name}" for name in names}
    collector = SignalCollector()
    collector.update([Signal(signal, labels, 1.0), Signal(signal, other, 2.0)])
    registry = CollectorRegistry()
    registry.register(collector)
    samples = [s for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples]
    selector = exported_series_selector(signal, {**labels, "alertname": "X", "severity": "page"})
    parsed = promql_parser.parse(selector)
    matchers = {m.name: m.value for m in parsed.matchers.matchers}
    selected = [s for s in samples if s.name == parsed.name and all(s.labels.get(k, "") == v for k, v in matchers.items())]
    assert [s.value for s in selected] == [1.0 * SIGNAL_UNIT_SCALE.get(signal, 1.0)]  # hours -> seconds
    assert "alertname" not in matchers and "severity" not in matchers


def test_every_default_rule_gets_a_graph_per_alert():
    links = default_links()
    for path in DEFAULT_RULES:
        for rule in load_rule_file(path):
            labels = {name: "x" for signal in [links.signal_by_alertname.get(rule.alert)] if signal
                      for name in CATALOGUE[signal][0]}
            a = alert(alertname=rule.alert, **labels)
            built = links.for_event(group(a))
            expr = graph_expr(built[alert_graph_key(a)])
            promql_parser.parse(expr)  # raises on anything Prometheus would refuse
            if rule.expr:
                assert expr == rule.expr, rule.alert
            else:
                assert expr.startswith("monitor_"), rule.alert


def test_a_group_of_several_rules_has_a_graph_per_alert_but_none_for_the_group():
    links = default_links()
    slo = alert(alertname="SLOErrorBudgetBurnPage", slo_id="ranker-latency", service="ranker", slo="latency")
    drift = alert(alertname="ModelPredictionDrift", model="ranker", version="v2", column="prediction")
    built = links.for_event(group(slo, drift))
    assert "prometheus" not in built
    assert graph_expr(built[alert_graph_key(slo)]) == \
        'monitor_slo_page_alert{sloth_id="ranker-latency", sloth_service="ranker", sloth_slo="latency"}'
    assert graph_expr(built[alert_graph_key(drift)]) == \
        'monitor_drift_detected{model="ranker", version="v2", column="prediction"}'
    one = links.for_event(group(slo))
    assert graph_expr(one["prometheus"]) == graph_expr(one[alert_graph_key(slo)])


def test_the_runbook_report_and_dashboard_links_are_urls_and_the_silence_commands_are_not():
    links = default_links(dashboard_url="https://grafana.example/d/slo?var-service={{ labels.service }}"
                                        "&var-model={{ common_labels.model }}")
    a = AlertEvent(status="firing", state="firing", labels={"alertname": "SLOErrorBudgetBurnPage", "service": "r&d #1"},
                   annotations={"runbook_url": "https://rb.example/slo"}, starts_at=None, ends_at=None, fingerprint="f")
    built = links.for_event(group(a))
    assert built["runbook"] == "https://rb.example/slo" and built["report"] == "https://reports.example/w47.html"
    assert built["dashboard"] == "https://grafana.example/d/slo?var-service=r%26d%20%231&var-model="
    assert parse_qs(urlsplit(built["dashboard"]).query)["var-service"] == ["r&d #1"]
    assert set(silence_commands(built)) == {"1h", "4h", "24h"}
    assert not any(k.startswith("silence") for k in url_links(built))


@pytest.mark.parametrize("template, logged", [
    ("https://grafana.example/{{ labels.service", "does not render"),
    ("https://grafana.example/{{ labels.service.encode() }}", "does not render"),
    ("javascript:alert({{ labels.service }})", "not an http(s) URL"),
], ids=["a syntax error leaves the link out", "a sandbox escape leaves the link out",
        "a non-http URL leaves the link out"])
def test_a_broken_dashboard_template_is_logged_and_left_out(template, logged, caplog):
    links = default_links(dashboard_url=template)
    with caplog.at_level(logging.WARNING):
        built = links.for_event(group(alert(alertname="GPUIdle", model="m")))
        links.for_event(group(alert(alertname="GPUIdle", model="n")))
    assert "dashboard" not in built and "prometheus" in built
    assert len([r for r in caplog.records if logged in r.getMessage()]) == 1


def test_a_pasted_silence_command_silences_exactly_that_alert_even_with_hostile_labels(tmp_path):
    config = tmp_path / "monitor.yaml"
    config.write_text("state: {path: state.db}\n")
    labels = {"alertname": "ModelPredictionDrift", "model": HOSTILE, "version": "'quoted'", "column": "\"prediction\""}
    built = LinkBuilder(config_path=str(config)).for_event(group(alert(**labels)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = built["silence_command_4h"]
    assert shlex.split(command)[:3] == ["monitor", "silence", "add"]
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "PWNED").exists()
    with StateStore(tmp_path / "state.db") as store:
        [silence] = AlertRepository(store).silences()
    matchers = silence.matchers
    alert_labels = {**labels, "severity": "page"}
    assert all(m.matches(alert_labels) for m in matchers)
    assert {m.label for m in matchers} == set(alert_labels)
    assert not all(m.matches({**alert_labels, "model": "other"}) for m in matchers)
    assert (silence.ends_at - silence.starts_at).total_seconds() == 4 * 3600


def _github_anchor(heading: str) -> str:
    """GitHub's heading anchor: lower-case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_default_rule_links_to_a_readme_runbook_that_says_what_to_do():
    readme = (REPO / "README.md").read_text()
    sections = {_github_anchor(m.group(1)): m.group(2)
                for m in re.finditer(r"^### ([^\n]+)\n(.*?)(?=^#{2,3} |\Z)", readme, re.M | re.S)}
    rules = [rule for path in DEFAULT_RULES for rule in load_rule_file(path)]
    assert rules
    for rule in rules:
        runbook = rule.annotations.get("runbook_url", "")
        assert runbook.startswith("#"), f"{rule.alert} has no README runbook_url"
        section = sections.get(runbook[1:])
        assert section is not None, f"{rule.alert}: README has no heading for {runbook}"
        for part in ("What it means", "First checks", "Silence", "Fix"):
            assert f"**{part}" in section, (rule.alert, part)


def test_a_relative_runbook_is_resolved_against_the_configured_base():
    base = "https://wiki.example/ml/README.md"
    links = replace(default_links(), runbook_base_url=base)
    [rule] = [r for path in DEFAULT_RULES for r in load_rule_file(path) if r.alert == "GPUIdle"]
    a = AlertEvent(status="firing", state="firing", labels={"alertname": "GPUIdle", "model": "m"},
                   annotations=dict(rule.annotations), starts_at=None, ends_at=None, fingerprint="f")
    assert links.for_event(group(a))["runbook"] == "https://wiki.example/ml/README.md#gpuidle"
    [resolved] = links.with_absolute_runbooks(group(a)).alerts
    assert resolved.annotations["runbook_url"] == "https://wiki.example/ml/README.md#gpuidle"
    absolute = replace(a, annotations={"runbook_url": "https://rb.example/x"})
    assert links.for_event(group(absolute))["runbook"] == "https://rb.example/x"


def test_a_group_with_no_labels_in_common_offers_no_silence_that_would_mute_everything():
    event = AlertGroupEvent(kind="firing", status="firing", group_key="g", group_labels={}, alerts=(
        AlertEvent(status="firing", state="firing", labels={"a": "1"}, annotations={}, starts_at=None, ends_at=None,
                   fingerprint="1"),
        AlertEvent(status="firing", state="firing", labels={"b": "2"}, annotations={}, starts_at=None, ends_at=None,
                   fingerprint="2")), created_at="2026-11-22T21:05:00Z")
    assert silence_commands(LinkBuilder().for_event(event)) == {}


def test_the_silence_command_names_the_config_by_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "monitor.yaml").write_text("state: {path: state.db}\n")
    monkeypatch.chdir(tmp_path)
    from monitor.config import load_config
    built = LinkBuilder.from_config(load_config("monitor.yaml"), rules=[]).for_event(group(alert(alertname="X")))
    assert shlex.split(built["silence_command_1h"])[-2:] == ["--config", str(tmp_path / "monitor.yaml")]
