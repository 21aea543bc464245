"""Fleet figures (GPU-hours, GPU-hour-weighted utilisation, idle cost) against the real Prometheus.

The truth is computed with pandas from the simulator's raw DCGM series: one row per
GPU and minute as Prometheus sees it (the written samples held for the 5-minute
lookback on the one-minute grid, as tests/test_cost_prometheus.py explains), grouped
by GPU. Each GPU counts once, however many models select it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import Pricing, load_config
from monitor.cost import compute_costs, cost_signals
from monitor.cost.allocation import GpuKey, GpuUsage, ModelUsage, allocate
from monitor.cost.fleet import fleet_figures
from monitor.outputs.metrics import SignalCollector
from monitor.simulate.fleet import CONFIG_GPU_PRICE, FLEET, NODE_GPU_HOURLY_COST, VLLM_MODEL
from test_cost_placement import INSTANCE_PRICE, SM_FRACTION, unit_frame
from test_cost_prometheus import _grid_values, _raw_minutes, _workload_gpus

REL = 1e-9


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


def _fleet_frame(fleet, start: datetime, end: datetime, seen=_grid_values) -> pd.DataFrame:
    """One row per GPU and grid minute over (start, end]: the GPU, its node's price and its utilisation."""
    rows = []
    for namespace in sorted({m.gpu_namespace for m in FLEET} | {VLLM_MODEL.namespace}):
        # Each physical GPU once, its workload labels plain or exported_*, a MIG instance by its
        # engine activity (the same reading of the raw series as tests/test_cost_prometheus.py).
        for labels, percent in _workload_gpus(fleet, namespace):
            node = labels.get("Hostname") or labels.get("hostname")
            gpu = labels["UUID"]
            values = seen(fleet, percent, start, end)
            rows.append(pd.DataFrame({"gpu": gpu, "model": namespace, "util": values / 100.0,
                                      "price": NODE_GPU_HOURLY_COST.get(node, CONFIG_GPU_PRICE)}))
    frame = pd.concat(rows, ignore_index=True).assign(unit=lambda f: f["gpu"], fraction=1.0)
    # The placement fleet's GPU units (tests/test_cost_placement.py): each unit once, a MIG
    # instance weighted by its share of the GPU, priced per GPU-hour.
    units = unit_frame(fleet, start, end, raw=seen is _raw_minutes)
    if len(units):
        units = units.drop_duplicates(["uuid", "instance", "t"]).assign(
            unit=lambda f: f["uuid"] + "/" + f["instance"], gpu=lambda f: f["uuid"], model=lambda f: f["namespace"],
            util=lambda f: f["util"] / 100.0, fraction=lambda f: [SM_FRACTION.get(p, 1.0) for p in f["profile"]],
            price=lambda f: [INSTANCE_PRICE[p] / SM_FRACTION[p] if p in INSTANCE_PRICE else CONFIG_GPU_PRICE
                             for p in f["profile"]])
        frame = pd.concat([frame, units[frame.columns]], ignore_index=True)
    return frame


def _truth(frame: pd.DataFrame) -> dict:
    per_gpu = frame.groupby("unit").agg(minutes=("util", "size"), util=("util", "mean"), price=("price", "first"),
                                        fraction=("fraction", "first"), gpu=("gpu", "first"))
    per_gpu["hours"] = per_gpu["minutes"] / 60.0 * per_gpu["fraction"]
    per_model = frame.groupby("model")["util"].mean()
    return {"gpus": per_gpu["gpu"].nunique(), "gpu_hours": per_gpu["hours"].sum(),
            "gpu_utilization": (per_gpu["util"] * per_gpu["hours"]).sum() / per_gpu["hours"].sum(),
            "idle_cost_usd": (per_gpu["hours"] * per_gpu["price"] * (1 - per_gpu["util"])).sum(),
            "mean_of_model_means": per_model.mean()}


WINDOWS = [
    pytest.param(timedelta(days=7), timedelta(0), id="the whole week, mostly 5-minute history"),
    pytest.param(timedelta(hours=40), timedelta(hours=10), id="a window inside the 1-minute tail"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize("ago, to_ago", WINDOWS)
def test_fleet_figures_match_the_raw_dcgm_series(prom, config, fleet, fleet_end, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    got = fleet_figures(compute_costs(prom, config, start, end))
    want = _truth(_fleet_frame(fleet, start, end))
    assert got.gpus == want["gpus"]
    assert got.gpu_hours == pytest.approx(want["gpu_hours"], rel=REL)
    assert got.gpu_utilization == pytest.approx(want["gpu_utilization"], rel=REL)
    assert got.idle_cost_usd == pytest.approx(want["idle_cost_usd"], rel=REL)
    # Weighted by GPU-hours: the mean of the models' means is far outside the tolerance above.
    assert got.gpu_utilization != pytest.approx(want["mean_of_model_means"], rel=1e-4)
    # Against every raw minute (a perfect scraper): close over 5-minute history, exact in the tail.
    raw = _fleet_frame(fleet, start, end, seen=_raw_minutes)
    assert got.gpu_utilization == pytest.approx(_truth(raw)["gpu_utilization"], abs=0.005)


@pytest.mark.prometheus
def test_a_gpu_shared_by_two_models_counts_once(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=1)
    report = compute_costs(prom, config, start, fleet_end)
    shared = {g.gpu for m in report.models if m.version is None for g in m.gpus if g.shared_with}
    assert shared, "the simulated fleet has a GPU shared by fraud-detector and legacy-tagger"
    per_model_hours = sum(g.hours for m in report.models if m.version is None for g in m.gpus)
    got = fleet_figures(report)
    assert got.gpu_hours < per_model_hours  # summing the models' GPUs would count the shared one twice
    assert got.gpu_hours == pytest.approx(_truth(_fleet_frame(fleet, start, fleet_end))["gpu_hours"], rel=REL)


@pytest.mark.prometheus
def test_cost_json_and_metrics_carry_the_fleet(prom, config, fleet_config_path, fleet, fleet_end, capsys):
    start = fleet_end - timedelta(days=7)
    want = _truth(_fleet_frame(fleet, start, fleet_end))
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat(), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fleet"]["gpus"] == want["gpus"]
    for key in ("gpu_hours", "gpu_utilization", "idle_cost_usd"):
        assert out["fleet"][key] == pytest.approx(want[key], rel=REL), key
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat()]) == 0
    assert (f"fleet: {want['gpus']} GPU(s), {want['gpu_hours']:,.1f} GPU-hours, utilisation "
            f"{want['gpu_utilization']:.0%} (weighted by GPU-hours)") in capsys.readouterr().out

    collector = SignalCollector()
    collector.update(cost_signals(prom, config, fleet_end))
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {s.name: s for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    # GPU time in seconds on /metrics (Prometheus base units), hours everywhere else.
    assert samples["monitor_fleet_gpu_usage_seconds"].value == pytest.approx(want["gpu_hours"] * 3600, rel=REL)
    assert samples["monitor_fleet_gpu_utilization_ratio"].value == pytest.approx(want["gpu_utilization"], rel=REL)
    assert samples["monitor_fleet_idle_cost_usd"].value == pytest.approx(want["idle_cost_usd"], rel=REL)
    assert samples["monitor_fleet_gpu_usage_seconds"].labels == {}


@pytest.mark.prometheus
def test_a_window_without_gpu_series_is_no_data_not_zero(prom, config, fleet, fleet_end, capsys):
    before = fleet.start - timedelta(days=2)  # no series of any kind before the simulated week
    got = fleet_figures(compute_costs(prom, config, before, before + timedelta(days=1)))
    assert (got.gpus, got.gpu_hours, got.gpu_utilization, got.idle_cost_usd) == (0, None, None, None)
    signals = {s.name: s.value for s in cost_signals(prom, config, before)}
    assert signals["fleet_gpu_utilization"] is None and signals["fleet_gpu_hours"] is None
    collector = SignalCollector()
    collector.update(cost_signals(prom, config, before))
    registry = CollectorRegistry()
    registry.register(collector)
    assert b"monitor_fleet_gpu_utilization_ratio " not in generate_latest(registry)


def test_a_shared_gpu_counts_once_and_utilisation_is_weighted_by_gpu_hours():
    at = datetime(2026, 11, 23)
    a, b = GpuKey("n1", "0", "U0", "A100"), GpuKey("n1", "1", "U1", "A100")
    usages = [ModelUsage("x", {"": 10.0}, (GpuUsage(a, 60.0, 60 * 50.0),)),
              ModelUsage("y", {"": 30.0}, (GpuUsage(a, 60.0, 60 * 50.0), GpuUsage(b, 120.0, 120 * 20.0)))]
    got = fleet_figures(allocate(at - timedelta(hours=2), at, usages, Pricing(GPU=2.0), {}))
    assert got.gpus == 2 and got.gpu_hours == pytest.approx(3.0)
    assert got.gpu_utilization == pytest.approx((1 * 0.5 + 2 * 0.2) / 3)
    assert got.idle_cost_usd == pytest.approx(1 * 2.0 * 0.5 + 2 * 2.0 * 0.8)
