"""One broken definition among the fleet's is isolated, not fatal: the others page exactly as before.

On the real Prometheus with the simulated fleet, stepped with `monitor run --once --at`
through recommender's SLO incident. Three kinds of definition are broken in ways the
offline parser accepts but the server rejects at query time (so `monitor check`
cannot catch them): an SLO with a 422 `execution` error, a rule with a 400
`bad_data` (a function this server does not have), and a model whose prediction
selector has a regex RE2 refuses. A fourth, a copy of recommender's SLO, works
until its page fires, is then broken, and later fixed: its page keeps firing
while broken (never resolved by the error) and resolves only once it is fixed.

Syntax errors are another matter: `monitor check` and the daemon's reload refuse
them offline, with Prometheus stopped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import promql_parser
import pytest
import requests
import yaml
from prometheus_client import generate_latest

from monitor.cli import main
from monitor.config import load_config
from monitor.cost import cost_signals
from monitor.daemon import Daemon
from test_pipeline_scenarios import Scenario, hours, page_condition

pytestmark = pytest.mark.prometheus

SHADOW_ID = "recommender-shadow-requests-availability"
TYPO_ID = "checkout-availability"
ERROR_5XX = 'http_requests_total{service="recommender",code=~"5.."}'
TOTAL = 'http_requests_total{service="recommender"}'

GOOD_SHADOW = f"""\
version: prometheus/v1
service: recommender-shadow
slos:
  - name: requests-availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate({ERROR_5XX}[{{{{.window}}}}]))
        total_query: sum(rate({TOTAL}[{{{{.window}}}}]))
"""
# Parses (the parser knows Prometheus 3's experimental functions); the server has no
# such function (2.x) or does not enable it (3.x): 400 bad_data.
BROKEN_SHADOW = GOOD_SHADOW.replace(f"sum(rate({ERROR_5XX}[{{{{.window}}}}]))",
                                    f'sum(sort_by_label(rate({ERROR_5XX}[{{{{.window}}}}]), "code"))')
# A many-to-many match: valid syntax, rejected when evaluated (422 execution).
TYPO_SLO = """\
version: prometheus/v1
service: checkout
slos:
  - name: availability
    objective: 99.5
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]) * on() group_left rate(http_requests_total[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
"""
BROKEN_RULE = """\
version: monitor/v1
groups:
  - name: extra
    rules:
      - alert: TopRequestSeries
        expr: limitk(1, rate(http_requests_total[5m])) > 0
        labels: {severity: ticket}
"""
# RE2 refuses a repeat count over 1000; the offline parser's regex engine does not.
BROKEN_MODEL = {"name": "shadow-ranker", "inferences": 'nv_inference_count{model="ranker"}',
                "predictions": 'model_prediction_score_bucket{model="ranker",version=~"v.{0,1001}"}',
                "drift": {"reference": "3d", "current": "1h"}}

# recommender's incident, as in test_pipeline_scenarios: (offset in hours, break the shadow SLO first?).
STEPS = [(-20 - 1 / 6, None), (-20 + 1 / 3, None), (-19, BROKEN_SHADOW), (-18.5, None), (-18, None),
         (-17.5, GOOD_SHADOW), (-17, None)]
BROKEN_STEPS = {2, 3, 4}


def make_scenario(name: str, fleet_config_path: Path, tmp_path: Path, capsys, broken: bool) -> Scenario:
    # One notification group per SLO: the broken ones' alerts never share a message with the others'.
    alerting = {"group_by": ["alertname", "slo_id"]}
    tmp_path.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(name, fleet_config_path, tmp_path, capsys,
                        extra_rules=BROKEN_RULE if broken else None, alerting=alerting)
    if broken:
        config = yaml.safe_load(scenario.config.read_text())
        (tmp_path / "shadow.yaml").write_text(GOOD_SHADOW)
        (tmp_path / "typo.yaml").write_text(TYPO_SLO)
        config["slos"] += [str(tmp_path / "shadow.yaml"), str(tmp_path / "typo.yaml")]
        config["models"].append(BROKEN_MODEL)
        scenario.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return scenario


def per_alert(scenario: Scenario) -> dict[tuple, list[tuple[int, str, str]]]:
    """(step, notification kind, alert status) for every alert in every queued notification."""
    out: dict[tuple, list[tuple[int, str, str]]] = defaultdict(list)
    for step, cycle in enumerate(scenario.cycles):
        for n in cycle["notifications"]:
            for a in n["payload"].get("alerts", [n["payload"].get("alert")] if "alert" in n["payload"] else []):
                out[tuple(sorted(a["labels"].items()))].append((step, n["kind"], a["status"]))
    return dict(out)


def owned_by_broken(labels: tuple) -> bool:
    found = dict(labels)
    return (found.get("slo_id") in (SHADOW_ID, TYPO_ID) or found.get("model") == "shadow-ranker"
            or found["alertname"] in ("MonitorDefinitionBroken", "TopRequestSeries"))


def test_the_broken_queries_parse_offline_so_only_the_cycle_can_catch_them():
    for query in ['sum(sort_by_label(rate(x[5m]), "code"))', "limitk(1, rate(x[5m])) > 0",
                  'sum(rate(x[5m]) * on() group_left rate(y[5m]))', 'x{version=~"v.{0,1001}"}']:
        promql_parser.parse(query)


def test_a_broken_slo_rule_and_model_are_isolated_and_the_others_page_as_before(
        fleet, fleet_end, fleet_config_path, prometheus, tmp_path, capsys):
    baseline = make_scenario("isolation-base", fleet_config_path, tmp_path / "base", capsys, broken=False)
    broken = make_scenario("isolation-broken", fleet_config_path, tmp_path / "broken", capsys, broken=True)
    # The server's own verdicts on the three broken kinds: a query's fault (4xx), not the server's.
    for query, status in [(f'sum(sort_by_label(rate({ERROR_5XX}[5m]), "code"))', 400),
                          ("limitk(1, rate(http_requests_total[5m])) > 0", 400),
                          ("sum(rate(http_requests_total[5m]) * on() group_left rate(http_requests_total[5m]))", 422),
                          ('model_prediction_score_bucket{version=~"v.{0,1001}"}', 400)]:
        answer = requests.post(f"{prometheus.url}/api/v1/query", data={"query": query,
                                                                        "time": fleet_end.timestamp() - 72000})
        assert answer.status_code == status, (query, answer.text)
    shadow_page = {"alertname": "SLOErrorBudgetBurnPage", "slo_id": SHADOW_ID}
    for step, (offset, rewrite) in enumerate(STEPS):
        at = fleet_end + hours(offset)
        if rewrite is not None:
            (tmp_path / "broken" / "shadow.yaml").write_text(rewrite)
        base_cycle = baseline.run(at)
        cycle = broken.run(at)
        assert cycle["cycle"]["status"] == "ok" and base_cycle["cycle"]["status"] == "ok"
        errors = {(e["kind"], e["name"]) for e in cycle["cycle"]["definition_errors"]}
        expected = {("slo", TYPO_ID), ("rule", "extra/TopRequestSeries"), ("model", "shadow-ranker")}
        assert errors == expected | ({("slo", SHADOW_ID)} if step in BROKEN_STEPS else set()), step
        # Recommender's own page, from the raw series: the others keep paging.
        recommender = broken.state("SLOErrorBudgetBurnPage", slo_id="recommender-requests-availability")
        assert recommender == baseline.state("SLOErrorBudgetBurnPage", slo_id="recommender-requests-availability")
        if step == 1:
            assert page_condition(fleet, "recommender", at) and recommender == "firing"
            assert broken.state(**shadow_page) == "firing"  # the copy pages with it while it works
        if step in BROKEN_STEPS:
            # Broken: frozen as it was, never resolved by the error, even once recommender's resolves.
            assert broken.state(**shadow_page) == "firing", step
    assert baseline.state("SLOErrorBudgetBurnPage", slo_id="recommender-requests-availability") == "resolved"
    assert not page_condition(fleet, "recommender", fleet_end + hours(-18))
    # Fixed at -17.5h: evaluated again, its condition is false, keep_firing_for (5m) runs, then it resolves.
    assert broken.state(**shadow_page) == "resolved"
    shadow = per_alert(broken)[tuple(sorted({**shadow_page, "severity": "page", "service": "recommender-shadow",
                                             "slo": "requests-availability"}.items()))]
    assert [(step, kind) for step, kind, _ in shadow] == [(1, "firing"), (6, "resolved")]

    # Every other alert was notified exactly as without the broken definitions.
    base_notified = per_alert(baseline)
    broken_notified = {labels: told for labels, told in per_alert(broken).items() if not owned_by_broken(labels)}
    assert base_notified and broken_notified == base_notified
    assert any(kind == "firing" for told in base_notified.values() for _, kind, _ in told)

    # The self-alert fired for each broken definition, with the server's error in its annotation.
    alerts = broken.alerts("--all")
    self_alerts = {(a["labels"]["kind"], a["labels"]["name"]): a for a in alerts["alerts"]
                   if a["labels"]["alertname"] == "MonitorDefinitionBroken"}
    assert {key: a["state"] for key, a in self_alerts.items()} == {
        ("slo", TYPO_ID): "firing", ("rule", "extra/TopRequestSeries"): "firing",
        ("model", "shadow-ranker"): "firing", ("slo", SHADOW_ID): "resolved"}
    typo = self_alerts[("slo", TYPO_ID)]
    assert typo["labels"]["severity"] == "ticket"
    assert typo["annotations"]["summary"] == f"slo {TYPO_ID} is not evaluated: Prometheus rejects its query"
    # The series it tripped on are elided: they may change between cycles, the alert must not.
    assert typo["annotations"]["description"].startswith(
        "execution: found duplicate series for the match group {…} on the right hand-side of the operation: […]")
    rule_error = self_alerts[("rule", "extra/TopRequestSeries")]["labels"]["error"]
    assert rule_error.startswith("bad_data: ") and "limitk" in rule_error
    assert self_alerts[("model", "shadow-ranker")]["labels"]["error"].startswith("bad_data: 1:")
    assert "invalid repeat count" in self_alerts[("model", "shadow-ranker")]["labels"]["error"]
    told = per_alert(broken)
    [typo_told] = [t for labels, t in told.items() if dict(labels).get("name") == TYPO_ID]
    # Through the ordinary notification path, from the first cycle, and never as resolved.
    assert typo_told[0] == (0, "firing", "firing") and {status for _, _, status in typo_told} == {"firing"}
    # The broken rule and model produced no alerts of their own.
    assert not [a for a in alerts["alerts"] if a["labels"]["alertname"] == "TopRequestSeries"
                or a["labels"].get("model") == "shadow-ranker" and a["labels"]["alertname"].startswith("ModelPred")]

    # `monitor alerts` lists the definitions in error, in JSON and as text.
    listed = {(e["kind"], e["name"]): e for e in alerts["definition_errors"]}
    assert set(listed) == {("slo", TYPO_ID), ("rule", "extra/TopRequestSeries"), ("model", "shadow-ranker")}
    assert listed[("slo", TYPO_ID)]["since"] == (fleet_end + hours(STEPS[0][0])).isoformat().replace("+00:00", "Z")
    assert listed[("slo", TYPO_ID)]["error"] == typo["labels"]["error"]
    code, out, err = broken.cli("alerts")
    assert code == 0, err
    assert f"error    slo {TYPO_ID} since " in out and "error    rule extra/TopRequestSeries since " in out
    assert alerts["cycles"] == {"ok": len(STEPS), "failed": 0}

    # The daemon exports them: one series per broken definition, without the error text.
    daemon = Daemon(str(broken.config), replay_from=fleet_end + hours(-17))
    try:
        report = daemon.run_one_cycle()
        assert report is not None and report.ok
        exported = generate_latest(daemon.metrics.registry).decode()
    finally:
        daemon.store.close()
        daemon.source.close()
    series = sorted(line for line in exported.splitlines() if line.startswith("monitor_definition_errors{"))
    assert series == ['monitor_definition_errors{kind="model",name="shadow-ranker"} 1.0',
                      'monitor_definition_errors{kind="rule",name="extra/TopRequestSeries"} 1.0',
                      f'monitor_definition_errors{{kind="slo",name="{TYPO_ID}"}} 1.0']
    budgets = [line for line in exported.splitlines() if line.startswith("monitor_slo_error_budget_remaining_ratio{")]
    assert any('sloth_id="recommender-requests-availability"' in line for line in budgets)
    assert not any(TYPO_ID in line for line in budgets)  # no number, not a 0 that reads as healthy


def test_prometheus_down_still_freezes_everything_and_reports_no_definition_error(
        fleet_end, fleet_config_path, prometheus, tmp_path, capsys):
    scenario = make_scenario("isolation-outage", fleet_config_path, tmp_path, capsys, broken=True)
    scenario.run(fleet_end + hours(-20 + 1 / 3))
    before = scenario.alerts("--all")
    prometheus.stop()
    try:
        failed = scenario.run(fleet_end + hours(-19), expect_ok=False)
    finally:
        prometheus.start()
    assert failed["cycle"]["status"] == "failed" and "connection refused" in failed["cycle"]["error"]
    assert failed["cycle"]["definition_errors"] == [] and failed["transitions"] == []
    # The definitions in error are those of the last successful cycle; no alert changed.
    assert scenario.alerts("--all") == {**before, "cycles": {"ok": 1, "failed": 1}}


# -- syntax errors: refused offline -----------------------------------------------------

SYNTAX_TYPO = GOOD_SHADOW.replace(f"sum(rate({ERROR_5XX}[{{{{.window}}}}]))",
                                  f"sum(rate({ERROR_5XX}[{{{{.window}}}}])")


def test_check_refuses_an_slo_syntax_typo_offline_with_prometheus_stopped(fleet_config_path, prometheus, tmp_path,
                                                                         capsys):
    config = yaml.safe_load(fleet_config_path.read_text())
    (tmp_path / "typo.yaml").write_text(SYNTAX_TYPO)
    config["slos"] = [str(fleet_config_path.parent / "slos" / "*.yaml"), str(tmp_path / "typo.yaml")]
    path = fleet_config_path.parent / "check-typo.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    prometheus.stop()
    try:
        code = main(["check", "--config", str(path)])
    finally:
        prometheus.start()
    err = capsys.readouterr().err
    assert code == 1
    assert (f"{tmp_path / 'typo.yaml'}:4: SLO 'recommender-shadow-requests-availability': error query: invalid "
            f"PromQL: unclosed left parenthesis: sum(rate({ERROR_5XX}[{{{{.window}}}}])") in err.splitlines()
    assert err.splitlines()[-1] == "1 problem(s) found"


def test_the_daemons_reload_refuses_a_syntax_typo_offline_and_keeps_its_definitions(
        fleet_config_path, prometheus, tmp_path, caplog):
    config = yaml.safe_load(fleet_config_path.read_text())
    (tmp_path / "shadow.yaml").write_text(GOOD_SHADOW)
    config["slos"] = [str(tmp_path / "shadow.yaml")]
    config["state"] = {"path": str(tmp_path / "state.db")}
    path = fleet_config_path.parent / "reload-typo.yaml"  # beside the fleet's files, for its relative paths
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    prometheus.stop()
    daemon = Daemon(str(path))
    try:
        before = daemon.definitions
        (tmp_path / "shadow.yaml").write_text(SYNTAX_TYPO)
        with caplog.at_level(logging.ERROR, logger="monitor.daemon"):
            assert daemon.reload() is False
        assert daemon.definitions is before
        rejected = [r.getMessage() for r in caplog.records if "reload rejected" in r.getMessage()]
        assert rejected == [f"config reload rejected, keeping the running config: {tmp_path / 'shadow.yaml'}:4: "
                            f"SLO 'recommender-shadow-requests-availability': error query: invalid PromQL: unclosed "
                            f"left parenthesis: sum(rate({ERROR_5XX}[{{{{.window}}}}])"]
    finally:
        daemon.store.close()
        daemon.source.close()
        prometheus.start()


# -- a model's cost selector, rejected by the server -------------------------------------

def signal_table(signals) -> dict[tuple, float | None]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in signals}


@pytest.mark.parametrize("key, value, cotenants", [
    ("inferences", 'nv_inference_count{model=~"legacy-tagger|x{1001}"}', {"fraud-detector"}),
    ("gpus", '{namespace=~"shared-inference|x{1001}"}', "every model with GPUs"),
], ids=["its inference counter: the model sharing its GPUs loses only its cost split",
        "its GPU selector: which GPUs it shares is unknown, so every GPU cost split is"])
def test_a_model_whose_cost_query_is_rejected_is_withheld_and_the_others_are_unchanged(
        prom, fleet_config_path, fleet_end, key, value, cotenants):
    config = load_config(fleet_config_path)
    at = fleet_end - hours(2)
    baseline = signal_table(cost_signals(prom, config, at))
    models = [replace(m, **{key: value}) if m.name == "legacy-tagger" else m for m in config.models]
    got = cost_signals(prom, replace(config, models=models), at)
    [error] = [s for s in got if s.name == "definition_error"]
    assert error.labels["kind"] == "model" and error.labels["name"] == "legacy-tagger"
    assert error.labels["error"].startswith("bad_data: ") and "invalid repeat count" in error.labels["error"]
    table = signal_table(s for s in got if s.name != "definition_error")
    if cotenants == "every model with GPUs":
        cotenants = {m.name for m in config.models if m.gpus} - {"legacy-tagger"}
    split = {"cost_per_1k", "cost_per_1k_wow_change", "cost_usd", "idle_cost_usd", "gpu_hours", "cost_allocation_info",
             "cost_per_1m_tokens", "cost_per_1m_tokens_wow_change"}
    fleet = {"fleet_gpu_hours", "fleet_gpu_utilization", "fleet_idle_cost_usd"}
    assert fleet <= {k[0] for k, v in baseline.items() if v is not None}
    expected = {k: v for k, v in baseline.items() if k[0] not in fleet and dict(k[1])["model"] != "legacy-tagger"
                and not (k[0] in split and dict(k[1])["model"] in cotenants)}
    # Nothing of the broken model, no split cost for its co-tenants, no fleet figure (it would leave
    # the broken model's GPUs out), every other number as before.
    assert table == expected
    assert any(k[0] == "cost_per_1k" and dict(k[1])["model"] == "ranker" for k in table) == (key == "inferences")
    # A CPU-only model shares no GPU: its cost per 1k stands either way.
    assert table[("cost_per_1k", (("model", "iris"), ("version", "")))] is not None
    assert any(dict(k[1])["model"] == "fraud-detector" and k[0] == "model_inference_rate" for k in table)
