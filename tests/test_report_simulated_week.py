"""The report for the simulated week (ISO 2026-W47), checked section by section against
the simulation's truth.json and independent computations on the raw simulated series.

The alert history comes from the daemon's own cycle (`run_cycle`) stepped through
the last 54 hours every STEP (54h: the drifting canary's baseline v1 must have
served `last_known_good_after` = 24h before v2 drifts, for a rollback to be
requested). To keep this module fast the scenario's producers are the pipeline's
SLO and drift producers, and cost's *recent* signals (inference rate, GPU
utilisation) without the trailing-week cost windows, which no simulated incident
trips; drift reads the prediction histograms, not the feature log. The report
itself is built once, by `monitor report`'s code path, and shared by every test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from monitor.alerting.rule_spec import load_rules
from monitor.config import load_config
from monitor.cost.allocation import CostReport
from monitor.cost.signals import inference_rates, recent_utilization, report_signals
from monitor.drift.prediction_drift import compute_config_drift
from monitor.drift.signals import drift_signals
from monitor.outputs.report import write_period_report
from monitor.pipeline import run_cycle
from monitor.report.model import SloStatus
from monitor.report.period import iso_week_period
from monitor.slo import evaluate_slos, load_slo_specs, slo_signals
from monitor.sources.prometheus import PrometheusSource
from monitor.simulate.writers import fleet_config
from monitor.store import StateStore
from test_report_checks import external_references, html5_errors
from test_cost_cpu import _seldon_v1_inferences, _seldon_v2_inferences
from test_cost_tokens import _truth as _vllm_truth

pytestmark = pytest.mark.prometheus

STEP = timedelta(minutes=15)
SCENARIO = timedelta(hours=54)


def _iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def truth(sim_dir) -> dict:
    return json.loads((sim_dir / "truth.json").read_text())


@pytest.fixture(scope="module")
def week_report(sim_dir, prometheus, fleet_end, tmp_path_factory):
    """(report.json, page HTML, written paths, config) for 2026-W47 after stepping the daemon."""
    config = load_config(sim_dir / "monitor.yaml")
    config = replace(config, prometheus=replace(config.prometheus, url=prometheus.url))
    histogram_only = replace(config, models=[replace(m, drift=replace(m.drift, log=None)) if m.drift else m
                                             for m in config.models])
    specs, rules = load_slo_specs(config), load_rules(config)

    def slo(source, _config, at, _store):
        return slo_signals(evaluate_slos(source, specs, at))

    def drift(source, _config, at, store):
        return drift_signals(compute_config_drift(source, histogram_only, at, store))

    def recent_cost(source, _config, at, _store):
        return report_signals(CostReport(at, at, ()), {}, inference_rates(source, config, at),
                              recent_utilization(source, config, at))

    out = tmp_path_factory.mktemp("reports")
    store = StateStore(out / "state.db")
    with PrometheusSource(prometheus.url, timeout=30) as source:
        at = fleet_end - SCENARIO
        while at <= fleet_end:
            assert run_cycle(config, store, source, at, rules=rules, producers=(slo, drift, recent_cost)).ok
            at += STEP
    written = write_period_report(config, iso_week_period("2026-W47"), out_dir=out / "site",
                                  prometheus_url=prometheus.url, store=store,
                                  generated_at=datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))
    store.close()
    return json.loads(written.json.read_text()), written.html.read_text(), written, config


def _incidents(doc, alertname: str, **labels: str) -> list[dict]:
    return [r for r in doc["incidents"]["rows"]
            if r["alertname"] == alertname and all(r["labels"].get(k) == v for k, v in labels.items())]


def test_the_week_is_the_iso_week_in_utc(week_report):
    doc, html, written, _ = week_report
    assert doc["period"]["start"] == "2026-11-16T00:00:00Z" and doc["period"]["end"] == "2026-11-23T00:00:00Z"
    assert written.html.parent.name == "2026-W47" and written.archive_index.exists()
    assert "2026-W47/index.html" in written.archive_index.read_text()


@pytest.mark.parametrize("kind, alertname, labels, start_tolerance", [
    ("error_spike", "SLOErrorBudgetBurnPage", {"slo_id": "recommender-requests-availability"}, 10),
    ("slow_burn", "SLOErrorBudgetBurnTicket", {"slo_id": "fraud-detector-requests-availability"}, 10),
    ("latency_regression", "SLOErrorBudgetBurnPage", {"slo_id": "search-embedder-requests-latency"}, 10),
], ids=["the recommender error spike is listed from its start, paged and resolved",
        "the fraud-detector slow burn is traced back to its start and ticketed",
        "the search-embedder latency regression is listed from its start"])
def test_slo_incidents_are_listed_with_their_times(week_report, truth, kind, alertname, labels, start_tolerance):
    doc = week_report[0]
    incident = next(i for i in truth["incidents"] if i["kind"] == kind)
    rows = _incidents(doc, alertname, **labels)
    assert len(rows) == 1, rows
    row = rows[0]
    start, end = _iso(incident["start"]), _iso(incident["end"])
    assert row["start_basis"] == "slo burn"
    assert abs((_iso(row["started_at"]) - start).total_seconds()) <= start_tolerance * 60
    notified = _iso(row["first_notified_at"])
    assert start < notified <= _iso(row["condition_held_at"]) + STEP
    assert row["time_to_detect"] == pytest.approx((notified - _iso(row["started_at"])).total_seconds())
    # Resolved after the errors stopped: burn-rate windows clear some time after.
    assert _iso(row["resolved_at"]) > end
    assert row["time_to_resolve"] == pytest.approx(
        (_iso(row["resolved_at"]) - _iso(row["started_at"])).total_seconds())


@pytest.mark.parametrize("kind, alertname, labels", [
    ("gpu_idle", "GPUIdle", {"model": "churn-scorer"}),
    ("traffic_stopped", "ModelNoInferences", {"model": "legacy-tagger"}),
    ("pipeline_stale", "FeaturePipelineStale", {"pipeline": "user-features"}),
    ("drift", "ModelPredictionDrift", {"model": "ranker", "version": "v2"}),
], ids=["the churn-scorer idle GPU alert is listed within the idle period",
        "legacy-tagger's stopped traffic is listed and still open",
        "the stale feature pipeline is listed and resolved after it recovered",
        "ranker v2's prediction drift is listed with a rollback requested"])
def test_other_incidents_are_listed_with_their_times(week_report, truth, kind, alertname, labels):
    doc = week_report[0]
    incident = next(i for i in truth["incidents"] if i["kind"] == kind)
    rows = _incidents(doc, alertname, **labels)
    assert len(rows) == 1, [r["alertname"] for r in doc["incidents"]["rows"]]
    row = rows[0]
    start, end = _iso(incident["start"]), _iso(incident["end"])
    started = _iso(row["started_at"])
    assert start <= started <= start + timedelta(hours=7), "condition held after the incident began"
    # A ticket can be inhibited by a page (alerting.inhibit) and never notified: then
    # there is no time to detect, rather than a made-up one.
    if row["first_notified_at"] is None:
        assert row["time_to_detect"] is None
    else:
        assert _iso(row["first_notified_at"]) >= started
    if end is None:
        assert row["resolved_at"] is None
    else:
        assert end <= _iso(row["resolved_at"]) <= end + timedelta(hours=1)
    assert row["rollback_requested"] is (kind == "drift")


def test_mttr_per_severity_is_the_mean_of_resolved_incidents(week_report):
    doc = week_report[0]
    for entry in doc["incidents"]["mttr"]:
        mine = [r for r in doc["incidents"]["rows"] if r["severity"] == entry["severity"]]
        resolved = [r["time_to_resolve"] for r in mine if r["time_to_resolve"] is not None]
        assert entry["incidents"] == len(mine) and entry["resolved"] == len(resolved)
        assert entry["mean_time_to_resolve"] == (pytest.approx(np.mean(resolved)) if resolved else None)


def test_change_health_counts_the_canary_as_deployed_and_rolled_back(week_report, truth):
    doc = week_report[0]
    drift = next(i for i in truth["incidents"] if i["kind"] == "drift")
    versions = {(v["model"], v["version"]): v for v in doc["changes"]["versions"]}
    v2 = versions[("ranker", "v2")]
    assert v2["deployed_in_period"] and v2["rollback_requested"]
    assert abs((_iso(v2["first_seen"]) - _iso(drift["start"])).total_seconds()) <= STEP.total_seconds()
    # v1s were serving when the daemon started: not deployments.
    assert not any(v["deployed_in_period"] for key, v in versions.items() if key != ("ranker", "v2"))
    assert doc["changes"]["deployed"] == 1 and doc["changes"]["change_failure_rate"] == 1.0
    assert doc["headline"]["rollbacks"] == 1


def _increase(fleet, name: str, start: datetime, end: datetime, **labels: str) -> float:
    # A series that did not exist yet (ranker v2 before its deploy) starts from 0.
    return sum(np.nan_to_num(fleet.value_at(s, end)) - np.nan_to_num(fleet.value_at(s, start))
               for s in fleet.find(name, **labels))


@pytest.mark.parametrize("service, expected_status", [
    ("recommender", "met"), ("fraud-detector", "missed"), ("legacy-tagger", "met"),
], ids=["a 40-minute spike leaves the week's availability objective met",
        "a 36-hour slow burn misses the week's availability objective",
        "a service that went quiet is judged on the traffic it had"])
def test_slo_attainment_matches_the_raw_counters(week_report, fleet, fleet_end, service, expected_status):
    doc = week_report[0]
    row = next(r for r in doc["slos"]["rows"] if r["slo_id"] == f"{service}-requests-availability")
    start = fleet_end - timedelta(days=7)
    bad = _increase(fleet, "http_requests_total", start, fleet_end, service=service, code="500")
    total = _increase(fleet, "http_requests_total", start, fleet_end, service=service)
    assert row["attainment"] == pytest.approx(1 - bad / total, abs=2e-5)
    assert row["status"] == expected_status
    assert len(row["burn_rate"]["values"]) == 7 * 24


def test_the_latency_regression_misses_its_objective_and_pages_in_the_burn_chart(week_report, truth):
    doc = week_report[0]
    row = next(r for r in doc["slos"]["rows"] if r["slo_id"] == "search-embedder-requests-latency")
    assert row["status"] == SloStatus.MISSED.value
    incident = next(i for i in truth["incidents"] if i["kind"] == "latency_regression")
    burn = dict(zip(row["burn_rate"]["timestamps_s"], row["burn_rate"]["values"]))
    inside = [v for t, v in burn.items() if _iso(incident["start"]).timestamp() < t <= _iso(incident["end"]).timestamp()]
    outside = [v for t, v in burn.items() if t < _iso(incident["start"]).timestamp() - 3600]
    assert min(inside) > row["page_burn_rate_threshold"] and max(outside) < 1.0


def test_the_headline_counts_match_the_sections(week_report):
    doc = week_report[0]
    statuses = [r["status"] for r in doc["slos"]["rows"]]
    headline = doc["headline"]
    assert (headline["slos_met"], headline["slos_at_risk"], headline["slos_missed"]) == (
        statuses.count("met"), statuses.count("at_risk"), statuses.count("missed"))
    assert headline["incidents"] == len(doc["incidents"]["rows"])
    assert headline["cost_per_1k"] == doc["cost"]["fleet_cost_per_1k"]
    assert any("missed" in s for s in headline["sentences"])


def test_the_drifting_version_is_ranker_v2(week_report):
    doc = week_report[0]
    assert doc["drift"]["prediction_drifting"] == [["ranker", "v2"]]
    # Coverage: the models with a predictions histogram (the placement scenarios have none).
    config = fleet_config("x")["models"]
    assert doc["drift"]["coverage"] == sum("predictions" in m for m in config) / len(config)
    chart = next(d for d in doc["drift"]["distributions"] if d["model"] == "ranker" and d["version"] == "v2")
    assert chart["reference_version"] == "v1"
    assert sum(chart["reference_share"]) == pytest.approx(1) and sum(chart["current_share"]) == pytest.approx(1)
    # v2's scores follow Beta(4, 3), v1's Beta(2, 5): the current mass sits higher.
    centre = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
    assert np.dot(centre, chart["current_share"]) > np.dot(centre, chart["reference_share"]) + 0.15


def test_the_idle_gpu_period_is_churn_scorers(week_report, truth, fleet):
    doc = week_report[0]
    incident = next(i for i in truth["incidents"] if i["kind"] == "gpu_idle")
    periods = doc["cost"]["idle_periods"]
    assert [(p["model"], p["gpu"]) for p in periods] == [("churn-scorer", "gpu-node-4/gpu0")]
    interval = periods[0]["interval"]
    assert interval["start"] == incident["start"] and interval["end"] == incident["end"]
    util = fleet.find("DCGM_FI_DEV_GPU_UTIL", hostname="gpu-node-4")[0]
    mask = (fleet.timestamps >= _iso(incident["start"]).timestamp()) & \
           (fleet.timestamps < _iso(incident["end"]).timestamp()) & (fleet.timestamps % 300 == 0)
    assert periods[0]["mean_utilization"] == pytest.approx(util.values[mask].mean() / 100, abs=1e-9)


def test_fleet_cost_per_1k_is_total_cost_over_total_inferences(week_report, fleet, fleet_end, truth):
    doc = week_report[0]
    models = [r for r in doc["cost"]["rows"] if r["version"] is None]
    start = fleet_end - timedelta(days=7)
    inferences = sum(_increase(fleet, "nv_inference_count", start, fleet_end, model=m["name"])
                     for m in truth["models"] + truth["placement_models"])
    # The models on vLLM and Seldon, each counted as its preset counts inferences.
    inferences += (_vllm_truth(fleet, start, fleet_end)["inferences"] + _seldon_v2_inferences(fleet, start, fleet_end)
                   + sum(_seldon_v1_inferences(fleet, start, fleet_end).values()))
    assert doc["cost"]["fleet_inferences"] == pytest.approx(inferences, rel=2e-3)
    assert doc["cost"]["fleet_cost_usd"] == pytest.approx(sum(m["cost_usd"] for m in models))
    assert doc["cost"]["fleet_cost_per_1k"] == pytest.approx(
        doc["cost"]["fleet_cost_usd"] / doc["cost"]["fleet_inferences"] * 1000)
    for row in models:
        assert row["cost_per_1k"] == pytest.approx(row["cost_usd"] / row["inferences"] * 1000)
    # No history before the simulated week: week over week is "no data", never 0%.
    assert doc["cost"]["fleet_previous_cost_per_1k"] is None and doc["headline"]["cost_per_1k_wow_change"] is None
    assert len(doc["cost"]["daily"]) == 7
    daily_total = sum(v for day in doc["cost"]["daily"] for v in day["cost_usd_by_model"].values())
    assert daily_total == pytest.approx(doc["cost"]["fleet_cost_usd"], rel=1e-3)


def test_freshness_shows_the_stale_pipeline_and_the_quiet_model(week_report, truth):
    doc = week_report[0]
    stale = next(i for i in truth["incidents"] if i["kind"] == "pipeline_stale")
    pipeline = next(p for p in doc["freshness"]["pipelines"] if p["pipeline"] == "user-features")
    assert [(s["start"], s["end"]) for s in pipeline["stale_periods"]] == [(stale["start"], stale["end"])]
    assert pipeline["expected_interval"] == 1800
    stopped = next(i for i in truth["incidents"] if i["kind"] == "traffic_stopped")
    quiet = [p for p in doc["freshness"]["no_data"]]
    assert [(p["subject"], p["kind"]) for p in quiet] == [("legacy-tagger", "no traffic")]
    assert abs((_iso(quiet[0]["interval"]["start"]) - _iso(stopped["start"])).total_seconds()) <= 300
    assert quiet[0]["interval"]["end"] == doc["period"]["end"]


def test_the_page_is_valid_self_contained_html_with_every_section(week_report):
    doc, html, _, _ = week_report
    assert html5_errors(html) == [] and external_references(html) == []
    for section in ("summary", "slos", "incidents", "changes", "drift", "cost", "freshness"):
        assert f'<section id="{section}">' in html
    assert html.count("<svg") == len(doc["slos"]["rows"]) + len(doc["drift"]["distributions"]) + 1
    assert "ranker" in html and "gpu-node-4/gpu0" in html


def test_the_headline_states_fleet_utilisation_gpu_hours_and_idle_cost(week_report, fleet):
    from test_cost_fleet import _fleet_frame, _truth

    doc, html = week_report[0], week_report[1]
    period = doc["period"]
    want = _truth(_fleet_frame(fleet, _iso(period["start"]), _iso(period["end"])))
    cost, headline = doc["cost"], doc["headline"]
    assert cost["fleet_gpus"] == want["gpus"]
    for key in ("gpu_hours", "gpu_utilization", "idle_cost_usd"):
        assert cost[f"fleet_{key}"] == pytest.approx(want[key], rel=1e-9), key
        assert headline[f"fleet_{key}"] == cost[f"fleet_{key}"]
    sentence = (f"Fleet GPU utilisation {want['gpu_utilization'] * 100:.0f}% over {want['gpu_hours']:,.0f} "
                f"GPU-hours on {want['gpus']} GPU(s); idle cost ${want['idle_cost_usd']:,.0f}.")
    assert sentence in headline["sentences"]
    assert f"<li>{sentence}</li>" in html
