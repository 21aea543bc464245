"""CPU and RAM cost of CPU-only models, against the real Prometheus.

Two CPU-only models of the simulated fleet:
- `iris` (Seldon Core v2) is priced from cAdvisor's usage: its two pods run on two
  nodes, OpenCost prices one of them (`node_cpu_hourly_cost`, `node_ram_hourly_cost`),
  the config's `CPU`/`RAM` price the other;
- `income-classifier` (Seldon Core v1, a v1 predictor and a 10% v2 canary) is priced from
  kube-state-metrics' resource requests.

The truth reads the simulator's raw series: CPU-hours are each container counter's
v(end) - v(start) / 3600 (windows start and end on written samples), memory and
requests are gauges as Prometheus sees them on the one-minute grid
(tests/test_cost_prometheus.py), bytes / 2^30 for GiB. The pod-level cgroup
(`container=""`) and the pause container (`POD`) are cAdvisor series too, and are not
the model's: counting them would double the figures. Inferences are each preset's own
definition, read from the raw counters.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.cost import compute_costs, cost_signals
from monitor.simulate.fleet import (NODE_CPU_HOURLY_COST, NODE_RAM_HOURLY_COST, SELDON_V1_MODEL, SELDON_V1_NAMESPACE,
                                    SELDON_V2_MODEL, SELDON_V2_NAMESPACE)
from test_cost_prometheus import _grid_values

REL = 1e-9
GIB = 2.0 ** 30


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


def _increase(fleet, series, start, end) -> float:
    return fleet.value_at(series, end) - fleet.value_at(series, start)


def _cadvisor_truth(fleet, pricing, namespace: str, start, end) -> dict:
    """CPU and RAM cost of a namespace's containers, priced per node (OpenCost's price where it has one)."""
    node_of = {s.labels["pod"]: s.labels["node"] for s in fleet.find("kube_pod_info", namespace=namespace)}
    cpu_hours: dict[str, float] = {}
    ram_gib_hours: dict[str, float] = {}
    for series in fleet.find("container_cpu_usage_seconds_total", namespace=namespace):
        if series.labels["container"] not in ("", "POD"):
            node = node_of[series.labels["pod"]]
            cpu_hours[node] = cpu_hours.get(node, 0.0) + _increase(fleet, series, start, end) / 3600.0
    for series in fleet.find("container_memory_working_set_bytes", namespace=namespace):
        if series.labels["container"] not in ("", "POD"):
            node = node_of[series.labels["pod"]]
            seen = _grid_values(fleet, series.values, start, end)
            ram_gib_hours[node] = ram_gib_hours.get(node, 0.0) + seen.sum() / 60.0 / GIB
    assert len(cpu_hours) == 2 and set(NODE_CPU_HOURLY_COST) < set(cpu_hours)  # one node priced by OpenCost
    cpu = sum(h * NODE_CPU_HOURLY_COST.get(node, pricing.CPU) for node, h in cpu_hours.items())
    ram = sum(h * NODE_RAM_HOURLY_COST.get(node, pricing.RAM) for node, h in ram_gib_hours.items())
    return {"cpu_core_hours": sum(cpu_hours.values()), "ram_gib_hours": sum(ram_gib_hours.values()),
            "cpu_cost_usd": cpu, "ram_cost_usd": ram, "cost_usd": cpu + ram}


def _requests_truth(fleet, pricing, namespace: str, start, end) -> dict:
    """CPU and RAM requests of a namespace's containers over the window, at the config's prices."""
    core_hours = gib_hours = 0.0
    for series in fleet.find("kube_pod_container_resource_requests", namespace=namespace):
        hours = _grid_values(fleet, series.values, start, end).sum() / 60.0
        if series.labels["resource"] == "cpu":
            core_hours += hours
        else:
            gib_hours += hours / GIB
    assert not {s.labels["node"] for s in fleet.find("kube_pod_container_resource_requests")} & set(
        NODE_CPU_HOURLY_COST)  # no OpenCost price on its node
    return {"cpu_core_hours": core_hours, "ram_gib_hours": gib_hours, "cpu_cost_usd": core_hours * pricing.CPU,
            "ram_cost_usd": gib_hours * pricing.RAM, "cost_usd": core_hours * pricing.CPU + gib_hours * pricing.RAM}


def _seldon_v2_inferences(fleet, start, end) -> float:
    """Calls that succeeded: HTTP 2xx over REST, OK over gRPC (a failed call served nothing)."""
    return sum(_increase(fleet, s, start, end) for s in fleet.find("seldon_model_infer_total", model=SELDON_V2_MODEL)
               if s.labels["code"] == "OK" or s.labels["code"].startswith("2"))


def _seldon_v1_inferences(fleet, start, end) -> dict[str, float]:
    """Prediction calls (REST `predictions`, gRPC `.../Predict`) per predictor_version; health and feedback are not."""
    out: dict[str, float] = {}
    for s in fleet.find("seldon_api_executor_server_requests_seconds_count", deployment_name=SELDON_V1_MODEL):
        if s.labels["service"] == "predictions" or s.labels["service"].endswith("/Predict"):
            version = s.labels["predictor_version"]
            out[version] = out.get(version, 0.0) + _increase(fleet, s, start, end)
    return out


WINDOWS = [
    pytest.param(timedelta(days=7), timedelta(0), id="the whole week, mostly 5-minute history"),
    pytest.param(timedelta(hours=40), timedelta(hours=10), id="a window inside the 1-minute tail"),
    pytest.param(timedelta(days=3), timedelta(hours=24), id="a window across the coarse and fine history"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize("ago, to_ago", WINDOWS)
def test_a_cpu_only_models_cost_is_cadvisor_usage_times_each_nodes_price(prom, config, fleet, fleet_end, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    want = _cadvisor_truth(fleet, config.cost.pricing, SELDON_V2_NAMESPACE, start, end)
    inferences = _seldon_v2_inferences(fleet, start, end)
    report = compute_costs(prom, config, start, end)
    got = report.entry(SELDON_V2_MODEL)
    for key in ("cpu_core_hours", "ram_gib_hours", "cpu_cost_usd", "ram_cost_usd", "cost_usd"):
        assert getattr(got, key) == pytest.approx(want[key], rel=REL), key
    assert got.gpu_hours is None and got.gpu_cost_usd is None  # no GPUs: none, not 0
    assert got.inferences == pytest.approx(inferences, rel=REL)
    assert got.cost_per_1k == pytest.approx(want["cost_usd"] / inferences * 1000, rel=REL)
    # Seldon Core v2's version is in model_internal: one version here, the whole model's figures.
    version = report.entry(SELDON_V2_MODEL, f"{SELDON_V2_MODEL}_1")
    assert version.cost_per_1k == pytest.approx(got.cost_per_1k, rel=REL)
    assert not [w for w in report.warnings if SELDON_V2_MODEL in w]


@pytest.mark.prometheus
@pytest.mark.parametrize("ago, to_ago", WINDOWS)
def test_a_cpu_only_model_priced_from_requests_splits_by_version(prom, config, fleet, fleet_end, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    want = _requests_truth(fleet, config.cost.pricing, SELDON_V1_NAMESPACE, start, end)
    served = _seldon_v1_inferences(fleet, start, end)
    assert set(served) == {"v1", "v2"}
    report = compute_costs(prom, config, start, end)
    got = report.entry(SELDON_V1_MODEL)
    for key in ("cpu_core_hours", "ram_gib_hours", "cpu_cost_usd", "ram_cost_usd", "cost_usd"):
        assert getattr(got, key) == pytest.approx(want[key], rel=REL), key
    total = sum(served.values())
    assert got.inferences == pytest.approx(total, rel=REL)
    assert got.cost_per_1k == pytest.approx(want["cost_usd"] / total * 1000, rel=REL)
    for version, count in served.items():
        entry = report.entry(SELDON_V1_MODEL, version)
        assert entry.inferences == pytest.approx(count, rel=REL)
        assert entry.cost_usd == pytest.approx(want["cost_usd"] * count / total, rel=REL)


@pytest.mark.prometheus
def test_cost_json_shows_cpu_and_ram_of_cpu_only_models(prom, fleet_config_path, fleet, fleet_end, config, capsys):
    start = fleet_end - timedelta(days=7)
    want = _cadvisor_truth(fleet, config.cost.pricing, SELDON_V2_NAMESPACE, start, fleet_end)
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat(), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    entry = next(e for e in out["models"] if e["model"] == SELDON_V2_MODEL and e["version"] is None)
    assert entry["cost_usd"] == pytest.approx(want["cost_usd"], rel=REL)
    assert entry["cpu_cost_usd"] == pytest.approx(want["cpu_cost_usd"], rel=REL)
    assert entry["gpu_hours"] is None and entry["cost_per_1k"] > 0
    # Its rule signals: a cost per 1k, and no GPU utilisation at all (not an unknown one).
    signals = cost_signals(prom, config, fleet_end)
    assert [s.value for s in signals if s.name == "cost_per_1k" and s.labels == {
        "model": SELDON_V2_MODEL, "version": ""}] == [pytest.approx(want["cost_usd"] / _seldon_v2_inferences(
            fleet, start, fleet_end) * 1000, rel=REL)]
    assert not [s for s in signals if s.name == "gpu_utilization" and s.labels["model"] == SELDON_V2_MODEL]
    assert [s for s in signals if s.name == "gpu_utilization" and s.labels["model"] == "ranker"]


def test_cadvisor_usage_is_joined_to_nodes_and_leaves_out_pod_cgroups_and_pause_containers(tmp_path):
    """promtool's engine over cAdvisor's label sets: per node core-seconds of real containers only;
    a pod kube_pod_info does not list still counts, without a node (priced at the config's price)."""
    import subprocess

    import yaml

    from monitor.config import ModelConfig
    from monitor.cost.compute import Resource, compute_figures

    def cadvisor(pod: str, container: str, cores: float) -> dict:
        labels = (f'namespace="ml",pod="{pod}",container="{container}",image="img",name="{pod}{container}",'
                  f'id="/kubepods/pod{pod}/{container}"')
        return {"series": f"container_cpu_usage_seconds_total{{{labels}}}", "values": f"0+{cores * 60:g}x20"}

    series = [cadvisor("a", "server", 1.0), cadvisor("a", "sidecar", 0.5), cadvisor("a", "", 1.6),
              cadvisor("a", "POD", 0.01), cadvisor("b", "server", 2.0), cadvisor("b", "", 2.1),
              {"series": 'kube_pod_info{namespace="ml",pod="a",node="n1",uid="u"}', "values": "1x20"},
              {"series": 'kube_pod_info{namespace="other",pod="b",node="n2",uid="v"}', "values": "1x20"}]
    figure = next(f for f in compute_figures(ModelConfig(name="m", inferences="x_total", cpu='{namespace="ml"}'),
                                             timedelta(minutes=10)) if f.resource is Resource.CPU)
    test = {"evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": figure.query, "eval_time": "15m",
                              # 10 minutes of 1.5 cores on n1; pod b's 2 cores with no node.
                              "exp_samples": [{"labels": '{node="n1"}', "value": 900},
                                              {"labels": "{}", "value": 1200}]}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
