"""The simulated fleet: deterministic, realistic names, and incidents where truth.json says."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitor.cli import main
from monitor.simulate.fleet import generate_fleet


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def minutes_between(fleet, start: datetime, end: datetime) -> np.ndarray:
    return (fleet.timestamps >= start.timestamp()) & (fleet.timestamps < end.timestamp())


def error_ratio(fleet, service: str, start: datetime, end: datetime) -> float:
    def delta(code):
        s = fleet.find("http_requests_total", service=service, code=code)[0]
        return fleet.value_at(s, end) - fleet.value_at(s, start)
    bad = delta("500")
    return bad / (bad + delta("200") + delta("404"))


def test_the_same_seed_gives_the_same_fleet(fleet, fleet_end):
    again = generate_fleet(days=7, seed=1, end=fleet_end)
    assert [s.labels for s in again.series] == [s.labels for s in fleet.series]
    for a, b in zip(again.series, fleet.series):
        np.testing.assert_array_equal(a.values, b.values)


def test_counters_never_decrease_and_buckets_are_cumulative(fleet):
    for series in fleet.series:
        if series.kind == "counter":
            values = series.values[~np.isnan(series.values)]
            assert (np.diff(values) >= 0).all(), series.labels
    buckets = fleet.find("http_request_duration_seconds_bucket", service="ranker")
    stacked = np.vstack([b.values for b in sorted(buckets, key=lambda b: float(b.labels["le"]))])
    assert (np.diff(stacked, axis=0) >= 0).all()
    count = fleet.find("http_request_duration_seconds_count", service="ranker")[0]
    np.testing.assert_array_equal(stacked[-1], count.values)


def test_the_error_spike_is_where_truth_says_and_pages(fleet):
    spike = fleet.incident("error_spike")
    start, end = parse(spike["start"]), parse(spike["end"])
    assert error_ratio(fleet, "recommender", start, end) == pytest.approx(0.06, abs=0.005)
    before = error_ratio(fleet, "recommender", start - timedelta(hours=6), start)
    assert before < 0.001


def test_the_slow_burn_sits_between_ticket_and_page_thresholds(fleet):
    burn = fleet.incident("slow_burn")
    ratio = error_ratio(fleet, "fraud-detector", parse(burn["start"]), parse(burn["end"]))
    burn_rate = ratio / 0.001
    assert 3 < burn_rate < 6  # above the 1d ticket threshold, below the 6h page threshold


def test_the_stopped_model_gets_no_traffic_at_all(fleet):
    stop = parse(fleet.incident("traffic_stopped")["start"])
    counter = fleet.find("nv_inference_count", model="legacy-tagger")[0]
    assert fleet.value_at(counter, fleet.end) == fleet.value_at(counter, stop)


def test_the_drifting_version_appears_only_after_its_deploy(fleet):
    deploy = parse(fleet.incident("drift")["start"])
    v2 = fleet.find("nv_inference_count", model="ranker", version="v2")[0]
    before = ~np.isnan(v2.values) & (fleet.timestamps < deploy.timestamp())
    assert not before.any()
    share = (fleet.value_at(v2, fleet.end) - 0) / sum(
        fleet.value_at(s, fleet.end) - fleet.value_at(s, deploy) for s in fleet.find("nv_inference_count", model="ranker"))
    assert share == pytest.approx(0.3, abs=0.02)


def test_the_idle_gpu_idles_during_its_incident(fleet):
    idle = fleet.incident("gpu_idle")
    util = fleet.find("DCGM_FI_DEV_GPU_UTIL", hostname="gpu-node-4")[0]
    inside = minutes_between(fleet, parse(idle["start"]), parse(idle["end"]))
    assert util.values[inside].mean() < 5 and util.values[~inside].mean() > 20


def test_simulate_writes_metrics_truth_config_specs_and_logs(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--days", "2", "--seed", "3",
                 "--end", "2026-11-20T12:00:00+00:00"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["end"] == "2026-11-20T12:00:00Z" and truth["seed"] == 3
    assert {i["kind"] for i in truth["incidents"]} == {
        "error_spike", "slow_burn", "latency_regression", "drift", "gpu_idle", "traffic_stopped", "pipeline_stale",
        "endpoint_errors"}
    text = (out / "metrics.om").read_text()
    assert text.endswith("# EOF\n")
    for name in ("http_requests_total{", "gateway_requests_total{", "nv_inference_count{", "nv_inference_request_success{",
                 "nv_inference_request_failure{", "model_prediction_score_bucket{", "DCGM_FI_DEV_GPU_UTIL{",
                 "DCGM_FI_DEV_FB_USED{", "DCGM_FI_DEV_FB_FREE{", "DCGM_FI_DEV_POWER_USAGE{"):
        assert name in text
    log = pd.read_parquet(out / "predictions" / "ranker.parquet")
    assert {"timestamp", "version", "items_viewed", "country"} <= set(log.columns)
    assert main(["check", "--config", str(out / "monitor.yaml")]) == 0


def test_series_carry_the_exporters_real_label_sets(fleet):
    # dcgm-exporter: the GPU's own labels, the host as Hostname (older) or hostname (newer), and the
    # workload's pod/namespace/container, stored as exported_* when scraped with honorLabels: false.
    gpu_labels = {"gpu", "UUID", "device", "modelName"}
    workload = {"namespace", "pod", "container"}
    styles = set()
    for series in fleet.find("DCGM_FI_DEV_GPU_UTIL"):
        labels = set(series.labels)
        host = labels & {"Hostname", "hostname"}
        assert len(host) == 1 and gpu_labels | host | workload <= labels, series.labels
        exported = {f"exported_{k}" for k in workload}
        if exported <= labels:
            styles.add("exported")
            assert series.labels["namespace"] == "gpu-operator" and series.labels["exported_container"] == "triton"
        else:
            styles.add("plain")
            assert labels == gpu_labels | host | workload, series.labels
    assert styles == {"plain", "exported"}
    # Triton: failures by reason, each reason exported; gpu_uuid is the model's GPU's dcgm UUID.
    reasons = {s.labels["reason"] for s in fleet.find("nv_inference_request_failure", model="fraud-detector")}
    assert reasons == {"REJECTED", "CANCELED", "BACKEND", "OTHER"}
    [count] = fleet.find("nv_inference_count", model="search-embedder")
    [gpu] = fleet.find("DCGM_FI_DEV_GPU_UTIL", namespace="search-embedder")
    assert count.labels["gpu_uuid"] == gpu.labels["UUID"] and count.labels["namespace"] == "search-embedder"
    assert all("gpu_uuid" not in s.labels for s in fleet.find("nv_inference_count", model="ranker"))  # two GPUs
