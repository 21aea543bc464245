"""Scenarios over the simulated fleet in the real Prometheus, stepping `monitor run --once --at`.

Each step is a separate CLI invocation opening the state file afresh, exactly as a
daemon restarted between cycles would. Expected states are checked against the
raw simulated series (the `fleet` fixture), computed here with numpy.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.cli import main

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RULES = REPO / "monitor" / "default_rules" / "*.yaml"

# A ticket on the 2h burn rate: it fires together with recommender's page, so the
# default inhibition (page mutes ticket of the same slo_id) has something to mute.
FAST_TICKET_RULE = """\
version: monitor/v1
groups:
  - name: extra
    rules:
      - alert: SLOBurnTicket2h
        condition: slo_burn_rate{window="2h"} > 3
        labels: {severity: ticket}
"""


class Scenario:
    """A config and state file of its own, stepped through the fleet's history."""

    def __init__(self, name: str, fleet_config_path: Path, tmp_path: Path, capsys, extra_rules: str | None = None,
                 alerting: dict | None = None, outputs: dict | None = None):
        config = yaml.safe_load(fleet_config_path.read_text())
        config["rules"] = [str(DEFAULT_RULES)]
        if extra_rules:
            (tmp_path / "extra.yaml").write_text(extra_rules)
            config["rules"].append(str(tmp_path / "extra.yaml"))
        config["state"] = {"path": str(tmp_path / "state.db")}
        if alerting:
            config["alerting"] = alerting
        if outputs:
            config["outputs"] = {**(config.get("outputs") or {}), **outputs}
        # Beside the fleet's own config, so its relative paths (slos/, predictions/) resolve.
        self.config = fleet_config_path.parent / f"scenario-{name}.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.capsys = capsys
        self.cycles: list[dict] = []

    def cli(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(self.config)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def run(self, at: datetime, expect_ok: bool = True) -> dict:
        code, out, err = self.cli("run", "--once", "--at", at.isoformat(), "--json")
        assert code == (0 if expect_ok else 1), err
        cycle = json.loads(out)
        self.cycles.append(cycle)
        return cycle

    def alerts(self, *extra: str) -> dict:
        code, out, err = self.cli("alerts", "--json", *extra)
        assert code == 0, err
        return json.loads(out)

    def alert(self, alertname: str, **labels: str) -> dict | None:
        found = [a for a in self.alerts("--all")["alerts"] if a["labels"]["alertname"] == alertname
                 and all(a["labels"].get(k) == v for k, v in labels.items())]
        assert len(found) <= 1
        return found[0] if found else None

    def state(self, alertname: str, **labels: str) -> str:
        alert = self.alert(alertname, **labels)
        return alert["state"] if alert else "inactive"

    def notified(self, alertname: str, **labels: str) -> list[tuple[str, str]]:
        """(kind, alert status) for every queued notification carrying this alert, in order."""
        out = []
        for cycle in self.cycles:
            for n in cycle["notifications"]:
                for a in n["payload"].get("alerts", [n["payload"].get("alert")] if "alert" in n["payload"] else []):
                    if a["labels"]["alertname"] == alertname and all(a["labels"].get(k) == v
                                                                     for k, v in labels.items()):
                        out.append((n["kind"], a["status"]))
        return out


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


# -- the truth, from the raw simulated series -------------------------------------------

def increase(fleet, series, at: datetime, window: timedelta) -> float:
    return fleet.value_at(series, at) - fleet.value_at(series, at - window)


def error_ratio(fleet, service: str, at: datetime, window: timedelta) -> float:
    bad = sum(increase(fleet, s, at, window) for s in fleet.find("http_requests_total", service=service, code="500"))
    total = sum(increase(fleet, s, at, window) for s in fleet.find("http_requests_total", service=service))
    return bad / total


def page_condition(fleet, service: str, at: datetime, objective: float = 0.999) -> bool:
    """The SRE workbook's page: 1h & 5m burn > 14.4, or 6h & 30m burn > 6."""
    def burn(window: timedelta) -> float:
        return error_ratio(fleet, service, at, window) / (1 - objective)
    return (burn(hours(1)) > 14.4 and burn(timedelta(minutes=5)) > 14.4) or (
        burn(hours(6)) > 6 and burn(timedelta(minutes=30)) > 6)


def gpu_utilization(fleet, namespace: str, at: datetime, window: timedelta = timedelta(minutes=15)) -> float:
    [series] = fleet.find("DCGM_FI_DEV_GPU_UTIL", namespace=namespace)
    end = int((at - fleet.start).total_seconds() // 60)
    start = int((at - window - fleet.start).total_seconds() // 60)
    return float(np.mean(series.values[start + 1:end + 1])) / 100


# -- scenarios ------------------------------------------------------------------------

def test_slo_page_fires_once_resolves_after_the_incident_and_inhibits_its_ticket(fleet, fleet_end, fleet_config_path,
                                                                              tmp_path, capsys):
    scenario = Scenario("page", fleet_config_path, tmp_path, capsys, extra_rules=FAST_TICKET_RULE)
    page = {"alertname": "SLOErrorBudgetBurnPage", "service": "recommender"}
    steps = [(-20 - 1 / 6, "inactive"), (-20 + 1 / 3, "firing"), (-20 + 2 / 3, "firing"), (-19, "firing"),
             (-18.5, "firing"), (-18, "resolved")]
    for offset, expected in steps:
        at = fleet_end + hours(offset)
        cycle = scenario.run(at)
        assert scenario.state(**page) == expected, f"at {at}"
        if expected == "firing" and offset < -19:
            assert page_condition(fleet, "recommender", at)
            ticket = scenario.alert("SLOBurnTicket2h", service="recommender")
            assert ticket["state"] == "firing" and ticket["inhibited"] is True
        if expected == "inactive":
            assert not page_condition(fleet, "recommender", at)
        assert len(cycle["signals"]) > 0
    # -18.5h: the condition no longer holds but keep_firing_for (5m) counts from the first false evaluation.
    assert not page_condition(fleet, "recommender", fleet_end + hours(-18.5))

    [first, resolved] = [(i, t) for i, c in enumerate(scenario.cycles) for t in c["transitions"]
                         if t["labels"]["alertname"] == page["alertname"]]
    index, transition = first
    assert index == 1 and transition["from"] == "inactive" and transition["to"] == "firing"
    assert resolved[0] == 5 and (resolved[1]["from"], resolved[1]["to"]) == ("firing", "resolved")
    assert transition["labels"] == {"alertname": "SLOErrorBudgetBurnPage", "severity": "page",
                                    "service": "recommender", "slo": "requests-availability",
                                    "slo_id": "recommender-requests-availability"}
    # One firing and one resolved notification: no duplicates across the steps.
    assert scenario.notified(**page) == [("firing", "firing"), ("resolved", "resolved")]
    # While the page fired, its ticket was muted; the ticket alone is told once the page has resolved.
    told_ticket_at = [i for i, c in enumerate(scenario.cycles) for n in c["notifications"]
                      for a in n["payload"]["alerts"]
                      if a["labels"]["alertname"] == "SLOBurnTicket2h" and a["labels"]["service"] == "recommender"]
    assert all(i >= 5 for i in told_ticket_at), told_ticket_at
    # The other service's ticket is not muted by recommender's page.
    assert scenario.notified("SLOBurnTicket2h", service="fraud-detector")[0] == ("firing", "firing")


ROUTES = {
    "route": {"receiver": "default", "routes": [
        {"matchers": ["severity=page"], "receiver": "oncall", "group_by": ["service"], "continue": True},
        {"matchers": ["service=recommender"], "receiver": "recommender-chat"},
    ]},
    "receivers": [{"name": "oncall"}, {"name": "recommender-chat"}],
}


def test_routes_group_the_page_for_each_receiver_it_reaches_and_the_resolve_follows(
        fleet, fleet_end, fleet_config_path, tmp_path, capsys):
    scenario = Scenario("routes", fleet_config_path, tmp_path, capsys, extra_rules=FAST_TICKET_RULE, outputs=ROUTES)
    page = {"alertname": "SLOErrorBudgetBurnPage", "service": "recommender"}
    # As in the scenario above: firing from -20h+20m, resolved at -18h (keep_firing_for counts from -18.5h).
    for offset in (-20 - 1 / 6, -20 + 1 / 3, -19, -18.5, -18):
        scenario.run(fleet_end + hours(offset))
    assert page_condition(fleet, "recommender", fleet_end + hours(-20 + 1 / 3))

    def told(alertname: str, **labels: str) -> list[tuple[int, str, str, dict]]:
        return [(i, n["kind"], n["payload"]["receiver"], n["payload"]["groupLabels"])
                for i, c in enumerate(scenario.cycles) for n in c["notifications"]
                for a in n["payload"].get("alerts", [])
                if a["labels"]["alertname"] == alertname and all(a["labels"].get(k) == v for k, v in labels.items())]

    # The page reaches the on-call route (grouped by service) and, through `continue`, the
    # recommender route (the default grouping, by alertname); its resolve reaches both again.
    assert sorted(told(**page)) == [
        (1, "firing", "oncall", {"service": "recommender"}),
        (1, "firing", "recommender-chat", {"alertname": "SLOErrorBudgetBurnPage"}),
        (4, "resolved", "oncall", {"service": "recommender"}),
        (4, "resolved", "recommender-chat", {"alertname": "SLOErrorBudgetBurnPage"})]
    # Another service's ticket matches no child route: the root's receiver has it.
    assert {r for _, _, r, _ in told("SLOBurnTicket2h", service="fraud-detector")} == {"default"}


def test_gpu_idle_goes_pending_and_fires_6h_later_across_restarts(fleet, fleet_end, fleet_config_path, tmp_path,
                                                                  capsys):
    scenario = Scenario("gpu-idle", fleet_config_path, tmp_path, capsys)
    alert = {"alertname": "GPUIdle", "model": "churn-scorer"}
    steps = [(-16.5, "inactive"), (-15.75, "pending"), (-12, "pending"), (-9.84, "pending"), (-9.67, "firing"),
             (-8.5, "firing"), (-7.5, "resolved")]
    for offset, expected in steps:
        at = fleet_end + hours(offset)
        scenario.run(at)
        assert scenario.state(**alert) == expected, f"at {at}"
        assert (gpu_utilization(fleet, "churn-scorer", at) < 0.2) == (expected in ("pending", "firing")), at
    fired = scenario.alerts("--all")["alerts"]
    [record] = [a for a in fired if a["labels"]["alertname"] == "GPUIdle"]
    # Pending since the first idle evaluation, kept through every restart of the CLI.
    assert record["activeSince"] == "2026-11-22T08:15:00Z"
    assert record["startsAt"] == "2026-11-22T14:19:48Z"
    assert record["labels"] == {"alertname": "GPUIdle", "model": "churn-scorer", "severity": "ticket"}
    assert scenario.notified(**alert) == [("firing", "firing"), ("resolved", "resolved")]
    transitions = [(t["from"], t["to"]) for c in scenario.cycles for t in c["transitions"]
                   if t["labels"]["alertname"] == "GPUIdle"]
    assert transitions == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]


def test_feature_pipeline_freshness_fires_with_the_true_age_and_resolves(fleet, fleet_end, fleet_config_path,
                                                                         tmp_path, capsys):
    scenario = Scenario("freshness", fleet_config_path, tmp_path, capsys)
    [series] = fleet.find("feature_pipeline_last_success_timestamp_seconds", pipeline="user-features")
    alert = {"alertname": "FeaturePipelineStale", "pipeline": "user-features"}
    for offset, expected in [(-13.75, "inactive"), (-13.25, "firing"), (-10, "firing"), (-8.9, "resolved")]:
        at = fleet_end + hours(offset)
        scenario.run(at)
        age_s = at.timestamp() - fleet.value_at(series, at)
        assert (age_s > 3600) == (expected == "firing")
        record = scenario.alert(**alert)
        assert (record["state"] if record else "inactive") == expected
        if expected == "firing":
            assert record["value"] == pytest.approx(age_s)
            assert record["annotations"]["summary"] == (
                f"feature pipeline user-features last succeeded {int(age_s // 3600)}h{int(age_s % 3600 // 60)}m ago")
    assert scenario.notified(**alert) == [("firing", "firing"), ("resolved", "resolved")]


def test_a_silenced_alert_is_not_notified_until_the_silence_expires(fleet, fleet_end, fleet_config_path, tmp_path,
                                                                    capsys):
    scenario = Scenario("silence", fleet_config_path, tmp_path, capsys)
    code, out, err = scenario.cli("silence", "add", "--match", "model=legacy-tagger", "--start",
                                  (fleet_end - hours(6)).isoformat(), "--for", "12h", "--comment", "decommissioning")
    assert code == 0, err
    silence_id = out.strip()
    code, out, _ = scenario.cli("silence", "list", "--json", "--at", (fleet_end - hours(5)).isoformat())
    [listed] = json.loads(out)
    assert listed["id"] == silence_id and listed["matchers"] == ['model="legacy-tagger"']
    assert listed["status"] == "active" and listed["comment"] == "decommissioning"

    alert = {"alertname": "ModelNoInferences", "model": "legacy-tagger"}
    [series] = fleet.find("nv_inference_count", model="legacy-tagger")
    for offset, expected in [(-5.25, "inactive"), (-4.8, "pending"), (-4.2, "firing"), (-3.5, "firing")]:
        at = fleet_end + hours(offset)
        scenario.run(at)
        assert (increase(fleet, series, at, timedelta(minutes=5)) == 0) == (expected != "inactive")
        assert scenario.state(**alert) == expected
    assert scenario.alert(**alert)["silenced_by"] == [silence_id]
    assert scenario.notified(**alert) == []

    code, out, err = scenario.cli("silence", "expire", silence_id[:8], "--at", (fleet_end - hours(3.4)).isoformat())
    assert code == 0, err
    scenario.run(fleet_end - hours(3))
    assert scenario.alert(**alert)["silenced_by"] == []
    assert scenario.notified(**alert) == [("firing", "firing")]


def test_a_prometheus_outage_changes_no_alert_state_and_is_counted(fleet_end, fleet_config_path, prometheus, tmp_path,
                                                                   capsys):
    scenario = Scenario("outage", fleet_config_path, tmp_path, capsys)
    alert = {"alertname": "ModelNoInferences", "model": "legacy-tagger"}
    scenario.run(fleet_end - hours(4.8))
    assert scenario.state(**alert) == "pending"
    before = scenario.alerts("--all")
    prometheus.stop()
    try:
        failed = scenario.run(fleet_end - hours(4.2), expect_ok=False)  # would fire, were the data there
        assert failed["cycle"]["status"] == "failed" and "connection refused" in failed["cycle"]["error"]
        assert failed["transitions"] == [] and failed["notifications"] == []
        during = scenario.alerts("--all")
        assert during["alerts"] == before["alerts"]
        assert during["cycles"] == {"ok": 1, "failed": 1}
    finally:
        prometheus.start()
    scenario.run(fleet_end - hours(4.1))
    record = scenario.alert(**alert)
    assert record["state"] == "firing"
    assert record["activeSince"] == before["alerts"][[a["labels"]["alertname"] for a in before["alerts"]]
                                                     .index("ModelNoInferences")]["activeSince"]
    assert scenario.alerts()["cycles"] == {"ok": 2, "failed": 1}


def test_alerts_are_not_duplicated_over_a_day_of_coarse_steps(fleet_end, fleet_config_path, tmp_path, capsys):
    scenario = Scenario("day", fleet_config_path, tmp_path, capsys, alerting={"repeat_interval": "4h"})
    for offset in np.arange(-22, -10, 1.0):
        scenario.run(fleet_end + hours(float(offset)))
    firing = Counter()
    for cycle in scenario.cycles:
        for n in cycle["notifications"]:
            if n["kind"] == "firing":
                for a in n["payload"]["alerts"]:
                    firing[a["fingerprint"]] += a["status"] == "firing" and a["state"] == "firing"
    # A firing notification lists an alert again only when the group gains a new alert.
    keys = [n["idempotency_key"] for c in scenario.cycles for n in c["notifications"]]
    assert len(keys) == len(set(keys))
    # Every default rule's annotations render: no template error reaches Slack or a webhook.
    rendered = [value for c in scenario.cycles for n in c["notifications"]
                for a in n["payload"].get("alerts", []) for value in a["annotations"].values()]
    assert rendered and not [text for text in rendered if "template error" in text]
    ticket = scenario.alert("SLOErrorBudgetBurnTicket", service="fraud-detector")
    assert ticket["state"] == "firing"
    kinds = [k for k, _ in scenario.notified("SLOErrorBudgetBurnTicket", service="fraud-detector")]
    # Firing since before the first step; repeated every 4h at the 1h steps, never re-announced as new.
    assert kinds[0] == "firing" and set(kinds[1:]) <= {"repeat"} and len(kinds) == 1 + 11 // 4


def test_a_drifting_canary_fires_after_its_for_and_requests_a_rollback_to_the_last_known_good(
        fleet, fleet_end, fleet_config_path, tmp_path, capsys):
    incident = fleet.incident("drift")
    deployed = datetime.fromisoformat(incident["start"].replace("Z", "+00:00"))
    # Versions must serve an hour without a rollback alert to become last-known-good.
    scenario = Scenario("drift", fleet_config_path, tmp_path, capsys, alerting={"last_known_good_after": "1h"})
    alert = {"alertname": "ModelPredictionDrift", "model": incident["model"], "version": incident["version"]}
    for offset, expected in [(-1.0, "inactive"), (0.25, "pending"), (0.5, "firing"), (1.0, "firing")]:
        scenario.run(deployed + hours(offset))
        assert scenario.state(**alert) == expected
        # The canary only: v1 keeps its prediction distribution.
        assert scenario.state("ModelPredictionDrift", model="ranker", version="v1") == "inactive"
    [requested] = [n for c in scenario.cycles for n in c["notifications"] if n["kind"] == "rollback.requested"]
    payload = requested["payload"]
    assert (payload["model"], payload["bad_version"], payload["last_known_good_version"]) == (
        incident["model"], incident["version"], incident["last_known_good_version"])
    assert payload["alert"]["labels"] == {"alertname": "ModelPredictionDrift", "severity": "page", "model": "ranker",
                                          "version": "v2", "column": "prediction"}
    assert payload["alert"]["startsAt"] == (deployed + hours(0.5)).isoformat().replace("+00:00", "Z")
    assert payload["evidence"]["drift_detected"] == 1.0 and payload["evidence"]["n_current"] > 0
    # The numbers that fired it travel as evidence, and the default rule's annotations render them.
    assert payload["evidence"]["drift_psi"] > 0.2
    annotations = payload["alert"]["annotations"]
    assert "template error" not in " ".join(annotations.values())
    assert annotations["description"].startswith("PSI ")
    assert requested["status"] == "pending" and requested["idempotency_key"].startswith("rollback.requested:")
    assert [k for k, _ in scenario.notified(**alert)] == ["firing", "rollback.requested"]
