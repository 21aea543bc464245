"""`monitor routes test`: the receivers a label set reaches, checked row by row against amtool.

The same tree is written as an Alertmanager config and asked of `amtool config routes
test` (Alertmanager's own routing code), so every expected row is confirmed by an
independent implementation, not only by the table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hostile import assert_handled, run_in_process

# The tree under test: `continue`, nested routes that inherit receiver and timings,
# regex and negative matchers, and matchers on labels an alert may not carry.
ROUTE = """\
  route:
    receiver: fallback
    group_by: [alertname]
    group_wait: 10s
    routes:
      - matchers: [severity=page]
        receiver: pager
        continue: true
      - matchers: ['service=~"rank.*"']
        receiver: ranking
        group_by: [alertname, model]
        group_interval: 2m
        routes:
          - matchers: ['env!~"prod|staging"']
            receiver: dev-null
          - matchers: [severity=ticket]
            repeat_interval: 12h
      - matchers: ['team=""', severity=ticket]
        receiver: triage
      - matchers: ['team!=finance', 'alertname=~"Cost.*"']
        receiver: finance-ops
      - matchers: ['alertname=~"Cost.*"']
        receiver: finance
"""

RECEIVERS = ("fallback", "pager", "ranking", "dev-null", "triage", "finance-ops", "finance")

CONFIG = "outputs:\n  receivers:\n" + "".join(
    f"    - name: {name}\n      webhook_configs: [{{url: 'https://hooks.example/{name}'}}]\n" for name in RECEIVERS
) + ROUTE

AM_CONFIG = "receivers:\n" + "".join(f"  - name: {name}\n" for name in RECEIVERS) + "\n".join(
    line[2:] for line in ROUTE.splitlines()) + "\n"

ROWS = [
    pytest.param([], ["fallback"], id="no labels at all reach the root's receiver"),
    pytest.param(["severity=page"], ["pager"], id="a page goes to the pager and, continuing, nowhere else matches"),
    pytest.param(["severity=page", "service=ranker", "env=prod"], ["pager", "ranking"],
                 id="continue lets a page reach the pager and the ranking team"),
    pytest.param(["severity=page", "service=ranker"], ["pager", "dev-null"],
                 id="a missing env label is the empty string, which the negative regex accepts"),
    pytest.param(["service=ranker", "env=staging"], ["ranking"],
                 id="a nested route that does not match leaves the alert on its parent"),
    pytest.param(["service=ranker", "env=prod", "severity=ticket"], ["ranking"],
                 id="a nested route without a receiver inherits its parent's"),
    pytest.param(["service=ranking-v2", "env=dev"], ["dev-null"],
                 id="a regex matches the whole value, prefix included"),
    pytest.param(["service=xranker", "env=prod"], ["fallback"], id="a regex is anchored at the start"),
    pytest.param(["severity=ticket"], ["triage"], id="an empty-value matcher matches a label the alert lacks"),
    pytest.param(["severity=ticket", "team=search"], ["fallback"], id="an empty-value matcher rejects a set label"),
    pytest.param(["alertname=CostPer1kRising"], ["finance-ops"],
                 id="a negative matcher on a missing label matches, so the first of two cost routes wins"),
    pytest.param(["alertname=CostPer1kRising", "team=finance"], ["finance"],
                 id="a negative matcher rejects its value and the next sibling is tried"),
    pytest.param(['alertname="CostIdle"', "team=finance"], ["finance"], id="a double-quoted value is the value inside"),
]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG)
    return path


def amtool_receivers(tmp_path: Path, labels: list[str]) -> list[str]:
    """Alertmanager's answer for the same tree (amtool ships with prometheus-alertmanager)."""
    amtool = shutil.which("amtool")
    assert amtool, "amtool is not installed (apt-get install prometheus-alertmanager)"
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(AM_CONFIG)
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={am_config}", *labels],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


@pytest.mark.parametrize("labels, expected", ROWS)
def test_receivers_reached(labels, expected, config_path, tmp_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, *labels], capsys)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.strip() == ",".join(expected)
    assert amtool_receivers(tmp_path, labels) == expected


def test_json_shows_each_route_with_inherited_settings(config_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, "--json",
                              "service=ranker", "env=prod", "severity=ticket"], capsys)
    assert outcome.code == 0, outcome.stderr
    out = json.loads(outcome.stdout)
    assert out["receivers"] == ["ranking"]
    assert out["labels"] == {"service": "ranker", "env": "prod", "severity": "ticket"}
    [route] = out["routes"]
    # The ticket child sets only repeat_interval; everything else comes from ranking and the root.
    assert route["route_id"] == '{}/{service=~"rank.*"}/1/{severity="ticket"}/1'
    assert route["receiver"] == "ranking"
    assert route["group_by"] == ["alertname", "model"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (10, 120, 12 * 3600)
    assert "verified" not in out


def test_tree_marks_the_routes_an_alert_lands_on(config_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, "--tree",
                              "severity=page", "service=ranker", "env=prod"], capsys)
    assert outcome.code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0] == "Routing tree:"
    assert lines[1].startswith("default-route  receiver: fallback")
    marked = [line for line in lines if "* {" in line]
    assert len(marked) == 2
    assert '{severity="page"}  receiver: pager' in marked[0] and "continue: true" in marked[0]
    assert '{service=~"rank.*"}  receiver: ranking' in marked[1] and "group_interval: 2m" in marked[1]
    assert lines[-1] == "pager,ranking"


@pytest.mark.parametrize("expected, code", [
    pytest.param("pager,ranking", 0, id="the receivers reached verify"),
    pytest.param("ranking,pager", 1, id="the same receivers in another order do not, as in amtool"),
    pytest.param("pager", 1, id="a missing receiver fails the verification"),
])
def test_verify_receivers(expected, code, config_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, "--verify-receivers", expected,
                              "severity=page", "service=ranker", "env=prod"], capsys)
    assert outcome.code == code
    assert outcome.stdout.strip() == "pager,ranking"
    if code:
        assert outcome.stderr.strip() == (f"monitor routes test: labels reach pager,ranking, expected {expected}")
    else:
        assert outcome.stderr == ""


def test_verify_receivers_in_json(config_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, "--json", "--verify-receivers", "triage",
                              "severity=page"], capsys)
    assert outcome.code == 1
    out = json.loads(outcome.stdout)
    assert (out["receivers"], out["expected_receivers"], out["verified"]) == (["pager"], ["triage"], False)


def test_legacy_config_routes_everything_to_the_default_receiver(tmp_path, capsys):
    path = tmp_path / "monitor.yaml"
    path.write_text("outputs:\n  slack: {channel: '#alerts', token_env: SLACK_TOKEN}\n")
    outcome = run_in_process(["routes", "test", "--config", path, "severity=page"], capsys)
    assert (outcome.code, outcome.stdout.strip()) == (0, "default")


@pytest.mark.parametrize("argv, names, code", [
    pytest.param(["severity"], "LABEL=VALUE", 2, id="a label without a value is a usage error"),
    pytest.param(["1severity=page"], "'1severity' is not a label name", 2, id="an invalid label name is refused"),
    pytest.param(["team=a", "team=b"], "label 'team' given twice", 2, id="a label given twice with two values"),
    pytest.param(["--verify-receivers", "a,,b", "x=y"], "--verify-receivers", 2,
                 id="an empty receiver name in the verification list"),
])
def test_bad_arguments(argv, names, code, config_path, capsys):
    outcome = run_in_process(["routes", "test", "--config", config_path, *argv], capsys)
    assert_handled(outcome, names, codes=(code,), max_lines=4)
    assert outcome.stderr.strip().splitlines()[-1].startswith("monitor routes test: error:")


def test_a_route_to_an_unknown_receiver_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "monitor.yaml"
    path.write_text("outputs:\n  receivers: [{name: ops}]\n  route:\n    receiver: ops\n    routes:\n"
                    "      - {matchers: [severity=page], receiver: pagr}\n")
    outcome = run_in_process(["routes", "test", "--config", path, "severity=page"], capsys)
    assert_handled(outcome, f"{path}:6: outputs.route.routes[0].receiver: unknown receiver 'pagr'", codes=(1,))
