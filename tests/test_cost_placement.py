"""Per-version placement, MIG slices and time-sliced GPUs against the real Prometheus.

The truth is computed with pandas from the simulator's raw series (PLACEMENT_FLEET),
read the way Prometheus serves them (tests/test_cost_prometheus.py explains the view:
written samples held for the 5-minute lookback on the one-minute grid over (start, end]):
one row per (GPU unit, pod, grid minute). Versions come from the raw series too: the
pod name for `chat`, the raw `kube_pod_labels` series for `summarizer`. MIG slice sizes
are NVIDIA's (MIG user guide, "Supported MIG Profiles": 3g.40gb holds 3/7 of an A100
80GB's SMs, 2g.20gb 2/7), written here, not read from the code under test.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import load_config
from monitor.cost import compute_costs, cost_signals
from monitor.outputs.metrics import SignalCollector
from monitor.simulate.fleet import CONFIG_GPU_PRICE, PLACEMENT_FLEET
from test_cost_prometheus import LOOKBACK_MINUTES, _inferences, _written

pytestmark = pytest.mark.prometheus
REL = 1e-9
# NVIDIA MIG user guide, A100 80GB: fraction of SMs per profile; 1g.10gb is priced per instance.
SM_FRACTION = {"3g.40gb": 3 / 7, "2g.20gb": 2 / 7, "1g.10gb": 1 / 7}
INSTANCE_PRICE = {"1g.10gb": 0.40}

WINDOWS = [
    pytest.param(timedelta(days=7), timedelta(0), id="the whole week, mostly 5-minute history"),
    pytest.param(timedelta(hours=40), timedelta(hours=10), id="a window inside the 1-minute tail"),
]


def _grid(fleet, values: np.ndarray, start: datetime, end: datetime, raw: bool = False) -> pd.Series:
    """The values Prometheus sees at each grid minute in (start, end], indexed by the minute
    (`raw`: every simulated minute, what a perfect scraper would have seen)."""
    grid = (fleet.timestamps > start.timestamp()) & (fleet.timestamps <= end.timestamp())
    if raw:
        keep = grid & ~np.isnan(values)
        return pd.Series(values[keep], index=fleet.timestamps[keep])
    index = np.arange(len(values))
    written = _written(fleet) & ~np.isnan(values)
    latest = np.maximum.accumulate(np.where(written, index, -1))
    held = latest[grid]
    ok = (held >= 0) & (index[grid] - held <= LOOKBACK_MINUTES)
    return pd.Series(values[held[ok]], index=fleet.timestamps[grid][ok])


def _workload(labels: dict, name: str) -> str:
    return labels.get(f"exported_{name}", labels.get(name, ""))


def unit_frame(fleet, start: datetime, end: datetime, raw: bool = False) -> pd.DataFrame:
    """One row per (GPU unit, pod, grid minute) of the placement fleet: utilisation in percent,
    and each pod's processes' SM share where the raw series have it."""
    namespaces = {spec.namespace for spec in PLACEMENT_FLEET}
    rows = []
    for name, scale in (("DCGM_FI_DEV_GPU_UTIL", 1.0), ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 100.0)):
        for series in fleet.find(name):
            labels = series.labels
            if _workload(labels, "namespace") not in namespaces:
                continue
            seen = _grid(fleet, series.values * scale, start, end, raw)
            rows.append(pd.DataFrame({
                "uuid": labels["UUID"], "node": labels.get("hostname") or labels.get("Hostname"),
                "gpu": labels["gpu"], "profile": labels.get("GPU_I_PROFILE", ""),
                "instance": labels.get("GPU_I_ID", ""), "namespace": _workload(labels, "namespace"),
                "pod": _workload(labels, "pod"), "t": seen.index, "util": seen.values}))
    frame = pd.concat(rows, ignore_index=True)
    sm = []
    for series in fleet.find("monitor_gpu_process_sm_utilization_ratio"):
        seen = _grid(fleet, series.values, start, end, raw)
        sm.append(pd.DataFrame({"uuid": series.labels["UUID"], "pod": series.labels["pod"], "t": seen.index,
                                "sm": seen.values}))
    sm_frame = pd.concat(sm).groupby(["uuid", "pod", "t"], as_index=False)["sm"].sum()
    return frame.merge(sm_frame, on=["uuid", "pod", "t"], how="left")


def unit_truth(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, pod): its minutes, the unit's minutes and utilisation, its share of the unit, the
    unit's fraction of its GPU and price per GPU-hour, and the pod's GPU-hours and cost."""
    frame = frame.assign(unit=frame["uuid"] + "/" + frame["instance"])
    units = frame.groupby("unit").agg(unit_minutes=("t", "nunique"), unit_util=("util", "mean"),
                                      profile=("profile", "first"))
    pods = frame.groupby(["unit", "namespace", "pod"], as_index=False).agg(minutes=("t", "size"),
                                                                           sm=("sm", "sum"),
                                                                           has_sm=("sm", "count"))
    pods = pods.merge(units, left_on="unit", right_index=True)
    per_unit = pods.groupby("unit")
    pods["time_sliced"] = per_unit["minutes"].transform("sum") > pods["unit_minutes"]
    by_sm = pods["time_sliced"] & (per_unit["has_sm"].transform("min") > 0)
    weight = np.where(by_sm, pods["sm"], pods["minutes"])
    pods["share"] = weight / pd.Series(weight, index=pods.index).groupby(pods["unit"]).transform("sum")
    pods["sharing"] = np.where(~pods["time_sliced"], "exclusive",
                               np.where(by_sm, "time_slicing_utilization", "time_slicing_even"))
    pods["fraction"] = [SM_FRACTION.get(p, 1.0) for p in pods["profile"]]
    pods["price"] = [INSTANCE_PRICE[p] / SM_FRACTION[p] if p in INSTANCE_PRICE else CONFIG_GPU_PRICE
                     for p in pods["profile"]]
    pods["gpu_hours"] = pods["unit_minutes"] / 60.0 * pods["fraction"] * pods["share"]
    pods["cost"] = pods["gpu_hours"] * pods["price"]
    pods["idle"] = pods["cost"] * (1 - pods["unit_util"] / 100.0)
    return pods


def _spec(name: str):
    return next(s for s in PLACEMENT_FLEET if s.name == name)


def _model_pods(truth: pd.DataFrame, model: str) -> pd.DataFrame:
    spec = _spec(model)
    pods = truth[truth["namespace"] == spec.namespace]
    return pods[pods["pod"].str.match(spec.pod_selector)] if spec.pod_selector else pods


def _kube_versions(fleet) -> dict[tuple[str, str], str]:
    return {(s.labels["namespace"], s.labels["pod"]): s.labels["label_app_kubernetes_io_version"]
            for s in fleet.find("kube_pod_labels")}


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


@pytest.mark.parametrize("ago, to_ago", WINDOWS)
def test_a_canary_on_its_own_gpus_pays_for_them_and_its_cost_per_1k_differs_by_the_truths_ratio(
        prom, config, fleet, fleet_end, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    report = compute_costs(prom, config, start, end)
    pods = _model_pods(unit_truth(unit_frame(fleet, start, end)), "chat")
    # The version from the raw pod name: chat-<version>-<replicaset>-<suffix>.
    pods = pods.assign(version=pods["pod"].str.split("-").str[1])
    cost = pods.groupby("version")["cost"].sum()
    hours = pods.groupby("version")["gpu_hours"].sum()
    per_1k = {v: cost[v] / _inferences(fleet, "chat", start, end, v) * 1000 for v in ("v1", "v2")}
    v1, v2 = report.entry("chat", "v1"), report.entry("chat", "v2")
    assert (v1.gpu_hours, v2.gpu_hours) == (pytest.approx(hours["v1"], rel=REL), pytest.approx(hours["v2"], rel=REL))
    assert v1.cost_usd == pytest.approx(cost["v1"], rel=REL) and v2.cost_usd == pytest.approx(cost["v2"], rel=REL)
    assert v1.cost_per_1k == pytest.approx(per_1k["v1"], rel=REL)
    assert v2.cost_per_1k / v1.cost_per_1k == pytest.approx(per_1k["v2"] / per_1k["v1"], rel=REL)
    # Half the GPUs for a ninth of the traffic: about 4.5 times the cost per 1k, not the same.
    assert 4.0 < v2.cost_per_1k / v1.cost_per_1k < 5.0
    assert v1.allocation.value == v2.allocation.value == "placement"
    assert v1.cost_usd + v2.cost_usd == pytest.approx(report.entry("chat").cost_usd, rel=REL)


def test_versions_from_kube_pod_labels_with_exported_workload_labels(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=7)
    report = compute_costs(prom, config, start, fleet_end)
    pods = _model_pods(unit_truth(unit_frame(fleet, start, fleet_end)), "summarizer")
    versions = _kube_versions(fleet)
    pods = pods.assign(version=[versions[(n, p)] for n, p in zip(pods["namespace"], pods["pod"])])
    for version, group in pods.groupby("version"):
        got = report.entry("summarizer", version)
        assert got.allocation.value == "placement"
        assert got.gpu_hours == pytest.approx(group["gpu_hours"].sum(), rel=REL)
        assert got.cost_usd == pytest.approx(group["cost"].sum(), rel=REL)
        assert got.idle_cost_usd == pytest.approx(group["idle"].sum(), rel=REL)
        want = group["cost"].sum() / _inferences(fleet, "summarizer", start, fleet_end, version) * 1000
        assert got.cost_per_1k == pytest.approx(want, rel=REL)
    # Two GPUs each, a quarter of the traffic for the canary: three times the stable cost per 1k.
    ratio = report.entry("summarizer", "canary").cost_per_1k / report.entry("summarizer", "stable").cost_per_1k
    assert 2.7 < ratio < 3.3


def test_a_mig_sliced_gpus_cost_splits_by_profile(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=7)
    report = compute_costs(prom, config, start, fleet_end)
    truth = unit_truth(unit_frame(fleet, start, fleet_end))
    for model in ("ocr", "moderation"):
        pods, got = _model_pods(truth, model), report.entry(model)
        assert got.gpu_hours == pytest.approx(pods["gpu_hours"].sum(), rel=REL)
        assert got.cost_usd == pytest.approx(pods["cost"].sum(), rel=REL)
        assert got.idle_cost_usd == pytest.approx(pods["idle"].sum(), rel=REL)
        by_profile = {g.gpu.mig_profile: g for g in got.gpus}
        for profile, group in pods.groupby("profile"):
            assert by_profile[profile].cost_usd == pytest.approx(group["cost"].sum(), rel=REL), profile
            assert by_profile[profile].slice_fraction == pytest.approx(SM_FRACTION[profile])
        assert by_profile["1g.10gb"].price_source.value == "mig_profiles"
    # The four slices fill the GPU: their GPU-hours add up to the GPU's hours.
    mig = truth[truth["profile"] != ""].drop_duplicates("unit")
    assert sorted(mig["profile"]) == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    assert (report.entry("ocr").gpu_hours + report.entry("moderation").gpu_hours ==
            pytest.approx(mig["unit_minutes"].max() / 60.0, rel=REL))


def test_time_sliced_gpus_split_by_process_utilisation_else_evenly_and_say_so(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=7)
    report = compute_costs(prom, config, start, fleet_end)
    truth = unit_truth(unit_frame(fleet, start, fleet_end))
    for model in ("embed-a", "embed-b"):
        pods, got = _model_pods(truth, model), report.entry(model)
        assert got.cost_usd == pytest.approx(pods["cost"].sum(), rel=REL)
        assert got.gpu_hours == pytest.approx(pods["gpu_hours"].sum(), rel=REL)
        sharing = {g.gpu.index: g.sharing.value for g in got.gpus}
        assert sorted(sharing.values()) == sorted(pods["sharing"]) == ["time_slicing_even", "time_slicing_utilization"]
        even = next(g for g in got.gpus if g.sharing.value == "time_slicing_even")
        assert even.share == pytest.approx(0.5, rel=REL)
    by_sm = truth[truth["sharing"] == "time_slicing_utilization"].set_index("pod")["share"]
    embed_a = next(g for g in report.entry("embed-a").gpus if g.sharing.value == "time_slicing_utilization")
    assert embed_a.share == pytest.approx(by_sm.filter(like="embed-a").iloc[0], rel=REL)
    assert 0.7 < embed_a.share < 0.8  # its processes use three times embed-b's SM time
    # The GPU counts once: the two models' GPU-hours add up to its hours.
    assert (report.entry("embed-a").gpu_hours + report.entry("embed-b").gpu_hours ==
            pytest.approx(truth.groupby("unit")["unit_minutes"].max()[
                truth[truth["namespace"] == "pool"]["unit"].unique()].sum() / 60.0, rel=REL))


def test_cost_json_and_metrics_say_which_allocation_each_figure_used(
        prom, config, fleet_config_path, fleet_end, capsys):
    start = fleet_end - timedelta(days=7)
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat(), "--json"]) == 0
    entries = {(m["model"], m["version"]): m for m in json.loads(capsys.readouterr().out)["models"]}
    assert entries[("chat", "v2")]["allocation"] == "placement"
    assert entries[("summarizer", "canary")]["allocation"] == "placement"
    # ranker has versions but no placement: the fallback, labelled.
    assert entries[("ranker", "v2")]["allocation"] == "inference_share"
    assert entries[("ranker", "v1")]["cost_per_1k"] == pytest.approx(entries[("ranker", "v2")]["cost_per_1k"])
    assert entries[("chat", "v2")]["cost_per_1k"] > 4 * entries[("chat", "v1")]["cost_per_1k"]
    assert {g["sharing"] for g in entries[("embed-a", None)]["gpus"]} == {"time_slicing_utilization",
                                                                         "time_slicing_even"}
    assert {g["mig_profile"] for g in entries[("ocr", None)]["gpus"]} == {"3g.40gb", "1g.10gb"}

    collector = SignalCollector()
    collector.update(cost_signals(prom, config, fleet_end))
    registry = CollectorRegistry()
    registry.register(collector)
    info = {(s.labels["model"], s.labels["version"]): s.labels
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples if s.name == "monitor_cost_allocation_info"}
    assert info[("chat", "v2")]["allocation"] == "placement"
    assert info[("ranker", "v2")]["allocation"] == "inference_share"
    assert info[("embed-b", "")]["sharing"] in ("time_slicing_utilization", "time_slicing_even")


def test_the_reports_cost_table_says_how_each_row_was_charged(prom, config, fleet_end):
    from dataclasses import replace

    from monitor.report.cost_section import build_cost_section
    from monitor.report.period import custom_period
    from monitor.report.render import render_report_html
    from monitor.report.synthetic import synthetic_report

    period = custom_period(fleet_end - timedelta(days=1), fleet_end)
    section = build_cost_section(prom, config, period)
    rows = {(r.model, r.version): r for r in section.rows}
    assert (rows[("chat", "v2")].allocation, rows[("ranker", "v2")].allocation) == ("placement", "inference_share")
    assert rows[("embed-a", None)].sharing.startswith("time_slicing")
    html = render_report_html(replace(synthetic_report(period, 1, 1), cost=section))
    def row(model: str, version: str) -> str:
        return re.search(f"<tr><td>{model}</td><td>{version}</td>.*?</tr>", html).group(0)

    assert re.search(r"<td>own pods(&#39;|') GPUs</td>", row("chat", "v2"))
    assert "<td>share of inferences</td>" in row("ranker", "v2")
