"""deploy/prometheus/ha-rules.yaml under Prometheus's own tools: `promtool check rules`, and
`promtool test rules` on replica series shaped like a failover, an outage of every leader,
a scrape of nobody, and a lease that keeps changing hands."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "ha-rules.yaml"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: install Prometheus (make test does)"
    return found


def no_leader(eval_time: str, fires: bool, **labels: str) -> dict:
    alerts = [{"exp_labels": {"severity": "page", **labels},
               "exp_annotations": yaml.safe_load(RULES.read_text())["groups"][0]["rules"][0]["annotations"]}]
    return {"eval_time": eval_time, "alertname": "MonitorNoLeader", "exp_alerts": alerts if fires else []}


def leader_series(a: str, b: str) -> list[dict]:
    return [{"series": 'monitor_leader{job="monitor",instance="a"}', "values": a},
            {"series": 'monitor_leader{job="monitor",instance="b"}', "values": b}]


UNIT_TESTS = {
    "rule_files": [str(RULES)],
    "evaluation_interval": "1m",
    "tests": [
        {   # a leads for 10m and dies; b takes over a minute later: one minute without a leader is a failover
            "interval": "1m",
            "input_series": leader_series("1x9 0x20", "0x10 1x19"),
            "alert_rule_test": [no_leader("10m", False), no_leader("12m", False), no_leader("20m", False)],
        },
        {   # both replicas up, neither leads from minute 6 (the database is gone): pending, then firing at 8m
            "interval": "1m",
            "input_series": leader_series("1x5 0x20", "0x25"),
            "alert_rule_test": [no_leader("5m", False), no_leader("7m", False), no_leader("8m", True),
                                no_leader("20m", True)],
        },
        {   # every replica's series goes stale at minute 4 (none is scraped): absent() fires 2m later
            "interval": "1m",
            "input_series": leader_series("1 1 1 1 stale", "0 0 0 0 stale"),
            "alert_rule_test": [no_leader("3m", False), no_leader("5m", False), no_leader("6m", True, job="monitor")],
        },
        {   # the lease changes hands every 5m for an hour: a ticket; once a term, no alert
            "interval": "1m",
            "input_series": [
                {"series": 'monitor_leader_changes_total{job="monitor",instance="a"}', "values": "0+0.2x90"},
                {"series": 'monitor_leader_changes_total{job="monitor",instance="b"}', "values": "3+0x90"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "MonitorLeaderFlapping", "exp_alerts": []},
                {"eval_time": "70m", "alertname": "MonitorLeaderFlapping",
                 "exp_alerts": [{"exp_labels": {"severity": "ticket"},
                                 "exp_annotations": {
                                     "summary": "the monitor leader changed 12 times in the last hour",
                                     "description": "Leases that lapse between renewals; see the replicas' "
                                                    "'stepped down' log lines.",
                                     "runbook_url": "https://github.com/monitor-dev/monitor/blob/main/README.md"
                                                    "#monitorleaderflapping"}}]},
            ],
        },
    ],
}


def test_the_ha_rules_pass_promtool_check():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_no_leader_fires_after_two_intervals_without_one_and_not_during_a_failover(tmp_path):
    tests = tmp_path / "ha-rules.test.yaml"
    tests.write_text(yaml.safe_dump(UNIT_TESTS, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_can_fail(tmp_path):
    """The same tests against a rule that never fires must fail: they check something."""
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "vector(0) > 1"
    rules = tmp_path / "broken.yaml"
    rules.write_text(yaml.safe_dump(broken, sort_keys=False))
    tests = tmp_path / "broken.test.yaml"
    tests.write_text(yaml.safe_dump({**UNIT_TESTS, "rule_files": [str(rules)]}, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode != 0
