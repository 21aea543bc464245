"""Cost figures against the real Prometheus, checked against the raw simulated series.

The independent computation reads the in-memory fleet (one value per minute) and
applies what Prometheus was given: every minute in the last 48h, every 5th minute
before (`writers.FINE_TAIL`, `COARSE_STEP_MINUTES`), a value held for up to 5 minutes
(the lookback), seen on a one-minute grid over (start, end]. Against that view GPU
hours, utilisation, cost and idle cost must match to 1e-9 relative. Against the raw
minute series (what a perfect scraper would have seen) utilisation is within 0.005
absolute over the coarse part and exact in the fine tail.

Inference counts match v(end) - v(start) exactly for windows aligned to written
samples; a series that starts inside the window (ranker v2) is within 1e-3 relative,
Prometheus's increase() extrapolating half a sample interval at its start.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import numpy as np
import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.cost import compute_costs, cost_signals, daily_costs
from monitor.cost.collect import period_over_period
from monitor.cost.signals import inference_rates, recent_utilization
from monitor.signals import CATALOGUE
from monitor.simulate.fleet import CONFIG_GPU_PRICE, FLEET, NODE_GPU_HOURLY_COST
from monitor.simulate.writers import COARSE_STEP_MINUTES, FINE_TAIL, fleet_config

pytestmark = pytest.mark.prometheus
LOOKBACK_MINUTES = 5
REL = 1e-9


def _written(fleet) -> np.ndarray:
    index = np.arange(len(fleet.timestamps))
    return (fleet.timestamps >= (fleet.end - FINE_TAIL).timestamp()) | (index % COARSE_STEP_MINUTES == 0)


def _grid_values(fleet, values: np.ndarray, start: datetime, end: datetime) -> np.ndarray:
    """Values Prometheus sees at each grid minute in (start, end]: the latest written sample within 5m."""
    index = np.arange(len(values))
    written = _written(fleet) & ~np.isnan(values)
    latest = np.maximum.accumulate(np.where(written, index, -1))
    grid = (fleet.timestamps > start.timestamp()) & (fleet.timestamps <= end.timestamp())
    held = latest[grid]
    ok = (held >= 0) & (index[grid] - held <= LOOKBACK_MINUTES)
    return values[held[ok]]


def _raw_minutes(fleet, values: np.ndarray, start: datetime, end: datetime) -> np.ndarray:
    grid = (fleet.timestamps > start.timestamp()) & (fleet.timestamps <= end.timestamp())
    return values[grid & ~np.isnan(values)]


def _spec(name: str):
    return next(m for m in FLEET if m.name == name)


def _inferences(fleet, model: str, start: datetime, end: datetime, version: str | None = None) -> float:
    total = 0.0
    for series in fleet.find("nv_inference_count", model=model, **({"version": version} if version else {})):
        at_start = fleet.value_at(series, start) if start >= fleet.start else float("nan")
        total += fleet.value_at(series, end) - (0.0 if np.isnan(at_start) else at_start)
    return total


def _workload_gpus(fleet, namespace: str) -> list[tuple[dict, np.ndarray]]:
    """(labels, utilisation in percent) per physical GPU (by UUID) whose workload runs in `namespace`,
    whether its labels were stored plain or as `exported_*` (scraped with `honorLabels: false`).
    A MIG instance has no GPU_UTIL: its engine activity ratio, in percent, stands in."""
    by_uuid = {}
    for name, scale in (("DCGM_FI_DEV_GPU_UTIL", 1.0), ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 100.0)):
        for series in fleet.find(name):
            workload = series.labels.get("exported_namespace", series.labels.get("namespace"))
            if workload == namespace:
                by_uuid.setdefault(series.labels["UUID"], (series.labels, series.values * scale))
    return list(by_uuid.values())


def _gpu_truth(fleet, model: str, start: datetime, end: datetime) -> dict:
    """Independent GPU-hours, utilisation, cost and idle cost of a model's GPUs (before sharing)."""
    spec = _spec(model)
    hours = cost = idle = util_weighted = 0.0
    raw_util = []
    for labels, values in _workload_gpus(fleet, spec.gpu_namespace):
        seen = _grid_values(fleet, values, start, end)
        node = labels.get("Hostname") or labels.get("hostname")
        price = NODE_GPU_HOURLY_COST.get(node, CONFIG_GPU_PRICE)
        h, u = len(seen) / 60.0, seen.mean() / 100.0
        hours += h
        cost += h * price
        idle += h * price * (1 - u)
        util_weighted += h * u
        raw_util.append(_raw_minutes(fleet, values, start, end))
    return {"gpu_hours": hours, "cost_usd": cost, "idle_cost_usd": idle, "gpu_utilization": util_weighted / hours,
            "raw_utilization": float(np.concatenate(raw_util).mean() / 100.0)}


def _expected(fleet, model: str, start: datetime, end: datetime) -> dict:
    """The model's expected entry, with the shared GPU split by inference share."""
    truth = _gpu_truth(fleet, model, start, end)
    inferences = _inferences(fleet, model, start, end)
    sharing = [m.name for m in FLEET if m.gpu_namespace == _spec(model).gpu_namespace]
    served = {m: _inferences(fleet, m, start, end) for m in sharing}
    share = served[model] / sum(served.values()) if sum(served.values()) else 1 / len(sharing)
    cost = truth["cost_usd"] * share
    return {"inferences": inferences, "gpu_hours": truth["gpu_hours"] * share,
            "gpu_utilization": truth["gpu_utilization"], "raw_utilization": truth["raw_utilization"],
            "cost_usd": cost, "idle_cost_usd": truth["idle_cost_usd"] * share,
            "cost_per_1k": cost / inferences * 1000 if inferences else None, "share": share}


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


WINDOWS = [
    pytest.param(timedelta(days=7), timedelta(0), id="the whole week, mostly 5-minute history"),
    pytest.param(timedelta(hours=40), timedelta(hours=10), id="a window inside the 1-minute tail"),
    pytest.param(timedelta(days=3), timedelta(hours=24), id="a window across the coarse and fine history"),
]


@pytest.mark.parametrize("ago, to_ago", WINDOWS)
@pytest.mark.parametrize("model", [m.name for m in FLEET])
def test_model_figures_match_the_raw_series(prom, config, fleet, fleet_end, model, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    got = compute_costs(prom, config, start, end).entry(model)
    want = _expected(fleet, model, start, end)
    assert got.inferences == pytest.approx(want["inferences"], rel=1e-3 if model == "ranker" else REL)
    for key in ("gpu_hours", "gpu_utilization", "cost_usd", "idle_cost_usd", "cost_per_1k"):
        tolerance = 1e-3 if model == "ranker" and key == "cost_per_1k" else REL
        assert getattr(got, key) == pytest.approx(want[key], rel=tolerance), key
    # What a perfect scraper would have seen: exact in the fine tail, close over 5-minute history.
    raw_tolerance = 1e-12 if start >= fleet_end - FINE_TAIL else 0.005
    assert got.gpu_utilization == pytest.approx(want["raw_utilization"], abs=raw_tolerance)
    assert got.idle_cost_usd == pytest.approx(got.cost_usd * (1 - got.gpu_utilization), rel=REL)


def test_gpu_hours_count_the_time_a_gpu_series_exists_not_its_samples(prom, config, fleet, fleet_end):
    # 8 days asked, 7 days of history: each GPU counts only while its series exists,
    # and 5-minute history counts as much GPU time per hour as 1-minute history.
    start = fleet_end - timedelta(days=8)
    got = compute_costs(prom, config, start, fleet_end).entry("ranker")
    want = _gpu_truth(fleet, "ranker", start, fleet_end)
    assert got.gpu_hours == pytest.approx(want["gpu_hours"], rel=REL)
    assert 2 * 7 * 24 <= got.gpu_hours <= 2 * 7 * 24 + 2 / 60  # two GPUs, the first grid minute inclusive
    days = daily_costs(prom, config, fleet_end - timedelta(days=7), fleet_end)
    assert [d.entry("ranker").gpu_hours for d in days] == pytest.approx([48.0] * 7, rel=REL)


def test_node_gpu_hourly_cost_wins_over_the_config_price(prom, config, fleet_end):
    report = compute_costs(prom, config, fleet_end - timedelta(days=1), fleet_end)
    recommender, ranker = report.entry("recommender"), report.entry("ranker")
    assert recommender.price_source.value == "node_gpu_hourly_cost"
    assert recommender.cost_usd == pytest.approx(recommender.gpu_hours * NODE_GPU_HOURLY_COST["gpu-node-2"])
    assert ranker.price_source.value == "config"
    assert ranker.cost_usd == pytest.approx(ranker.gpu_hours * CONFIG_GPU_PRICE)


def test_a_model_without_traffic_has_null_cost_per_1k_and_its_shared_gpu_goes_to_the_other(
        prom, config, fleet, fleet_end):
    start, end = fleet_end - timedelta(hours=4), fleet_end  # legacy-tagger stopped 5h before the end
    report = compute_costs(prom, config, start, end)
    legacy, fraud = report.entry("legacy-tagger"), report.entry("fraud-detector")
    assert legacy.inferences == 0
    assert legacy.cost_per_1k is None
    assert legacy.gpu_hours == 0 and legacy.cost_usd == 0
    assert fraud.gpu_hours == pytest.approx(4.0, rel=REL)
    assert "legacy-tagger" in fraud.allocation_detail and "100.0%" in fraud.allocation_detail
    assert legacy.as_dict()["cost_per_1k"] is None


def test_a_shared_gpu_is_split_by_inference_share_and_the_split_is_stated(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=7)
    report = compute_costs(prom, config, start, fleet_end)
    fraud, legacy = report.entry("fraud-detector"), report.entry("legacy-tagger")
    want = _expected(fleet, "fraud-detector", start, fleet_end)["share"]
    assert fraud.gpus[0].share == pytest.approx(want, rel=REL)
    assert legacy.gpus[0].share == pytest.approx(1 - want, rel=REL)
    assert fraud.gpu_hours + legacy.gpu_hours == pytest.approx(168.0, rel=REL)
    assert f"{want:.1%}" in fraud.allocation_detail and "share of inferences" in fraud.allocation_detail


def test_versions_split_the_models_cost_by_inference_share(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(hours=24)  # ranker v2 has served 30% since 30h before the end
    report = compute_costs(prom, config, start, fleet_end)
    whole, v1, v2 = (report.entry("ranker", v) for v in (None, "v1", "v2"))
    assert v1.inferences == pytest.approx(_inferences(fleet, "ranker", start, fleet_end, "v1"), rel=REL)
    assert v2.inferences == pytest.approx(_inferences(fleet, "ranker", start, fleet_end, "v2"), rel=REL)
    assert v2.inference_share == pytest.approx(0.3, abs=0.01)
    assert v1.cost_usd + v2.cost_usd == pytest.approx(whole.cost_usd, rel=REL)
    assert v2.cost_usd == pytest.approx(whole.cost_usd * v2.inferences / whole.inferences, rel=REL)
    assert v1.cost_per_1k == pytest.approx(whole.cost_per_1k) == pytest.approx(v2.cost_per_1k)
    assert "split by share of inferences" in v2.allocation_detail
    assert v1.allocation.value == v2.allocation.value == "inference_share"  # no placement configured: labelled


def test_the_daily_breakdown_shows_churn_scorers_idle_gpu(prom, config, fleet, fleet_end):
    start = fleet_end - timedelta(days=7)
    days = daily_costs(prom, config, start, fleet_end)
    assert [d.start for d in days] == [start + timedelta(days=i) for i in range(7)]
    for day in days:
        want = _expected(fleet, "churn-scorer", day.start, day.end)
        assert day.entry("churn-scorer").gpu_utilization == pytest.approx(want["gpu_utilization"], rel=REL)
        assert day.entry("churn-scorer").idle_cost_usd == pytest.approx(want["idle_cost_usd"], rel=REL)
    # The idle 8 hours (16h to 8h before the end) fall on the last day.
    assert days[-1].entry("churn-scorer").gpu_utilization < 0.75 * days[-2].entry("churn-scorer").gpu_utilization
    week = compute_costs(prom, config, start, fleet_end)
    assert sum(d.entry("search-embedder").inferences for d in days) == pytest.approx(
        week.entry("search-embedder").inferences, rel=REL)


def test_period_over_period_change_of_cost_per_1k(prom, config, fleet, fleet_end):
    comparison = period_over_period(prom, config, fleet_end, timedelta(days=1))
    for model in ("churn-scorer", "search-embedder"):
        now = _expected(fleet, model, fleet_end - timedelta(days=1), fleet_end)["cost_per_1k"]
        before = _expected(fleet, model, fleet_end - timedelta(days=2), fleet_end - timedelta(days=1))["cost_per_1k"]
        assert comparison.cost_per_1k_change[(model, None)] == pytest.approx((now - before) / before, rel=1e-6)
    # ranker v2 did not exist for most of the day before: no week-over-week for a version with no history.
    assert comparison.cost_per_1k_change[("ranker", "v2")] is not None  # deployed 30h before the end


def test_cost_json_has_the_documented_shape(prom, fleet_config_path, fleet, fleet_end, capsys):
    code = main(["cost", "--config", str(fleet_config_path), "--from", "2026-11-16T00:00:00Z",
                 "--to", "2026-11-23T00:00:00Z", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["from"] == "2026-11-16T00:00:00Z" and out["to"] == "2026-11-23T00:00:00Z"
    documented = ["model", "version", "inferences", "gpu_hours", "gpu_utilization", "cost_usd", "idle_cost_usd",
                  "cost_per_1k", "price_source"]
    for entry in out["models"]:
        assert list(entry)[:len(documented)] == documented
        # The GPUs' price source; a CPU-only model has no GPU price.
        assert (entry["price_source"] in ("config", "node_gpu_hourly_cost", "mig_profiles")
                or entry["gpu_hours"] is None)
        assert entry["allocation"] in ("placement", "inference_share")
    whole = [(e["model"], e["version"]) for e in out["models"] if e["version"] is None]
    assert [m for m, _ in whole] == [m["name"] for m in fleet_config("x")["models"]]
    assert ("ranker", "v2") in [(e["model"], e["version"]) for e in out["models"]]
    ranker = next(e for e in out["models"] if e["model"] == "ranker" and e["version"] is None)
    assert ranker["gpu_hours"] == pytest.approx(336.0) and ranker["cost_usd"] == pytest.approx(840.0)


def test_cost_cli_table_and_errors(prom, fleet_config_path, capsys):
    assert main(["cost", "--config", str(fleet_config_path), "--from", "2026-11-22T00:00Z",
                 "--to", "2026-11-23T00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "legacy-tagger" in out and "shared with" in out
    assert main(["cost", "--config", str(fleet_config_path), "--from", "2026-11-23T00:00Z",
                 "--to", "2026-11-22T00:00Z"]) == 1
    assert "must be after" in capsys.readouterr().err
    assert main(["cost", "--config", str(fleet_config_path), "--prometheus", "http://127.0.0.1:9",
                 "--from", "2026-11-22T00:00Z", "--to", "2026-11-23T00:00Z"]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_cost_signals_use_the_catalogue_and_match_the_series(prom, config, fleet, fleet_end):
    signals = cost_signals(prom, config, fleet_end)
    for s in signals:
        assert s.name in CATALOGUE and tuple(s.labels) == CATALOGUE[s.name][0], s
    by_key = {(s.name, s.labels.get("model"), s.labels.get("version")): s.value for s in signals}
    week = _expected(fleet, "search-embedder", fleet_end - timedelta(days=7), fleet_end)
    assert by_key[("cost_per_1k", "search-embedder", "")] == pytest.approx(week["cost_per_1k"], rel=REL)
    assert by_key[("gpu_hours", "ranker", "v2")] is not None
    # No history before the simulated week: week-over-week is "no data", never 0.
    assert by_key[("cost_per_1k_wow_change", "ranker", "")] is None
    rates = inference_rates(prom, config, fleet_end)
    for model, version in (("ranker", "v2"), ("legacy-tagger", None), ("churn-scorer", None)):
        want = (_inferences(fleet, model, fleet_end - timedelta(minutes=5), fleet_end, version)) / 300.0
        assert rates[(model, version)] == pytest.approx(want, rel=REL)
    assert rates[("legacy-tagger", None)] == 0.0  # no traffic is a real 0, not "no data"
    utilization = recent_utilization(prom, config, fleet_end)
    want = _gpu_truth(fleet, "churn-scorer", fleet_end - timedelta(minutes=15), fleet_end)["gpu_utilization"]
    assert utilization["churn-scorer"] == pytest.approx(want, rel=REL)
    assert by_key[("gpu_utilization", "churn-scorer", None)] == pytest.approx(want, rel=REL)


def test_churn_scorers_idle_gpu_period_is_found_with_its_cost(prom, config, fleet, fleet_end):
    from monitor.cost.collect import gpu_idle_periods

    periods = gpu_idle_periods(prom, config, fleet_end - timedelta(days=7), fleet_end)
    assert [(p.model, p.gpu) for p in periods] == [("churn-scorer", "gpu-node-4/gpu0")]
    idle = fleet.incident("gpu_idle")
    period = periods[0]
    assert period.start == datetime.fromisoformat(idle["start"].replace("Z", "+00:00"))
    assert period.end == datetime.fromisoformat(idle["end"].replace("Z", "+00:00"))
    series = fleet.find("DCGM_FI_DEV_GPU_UTIL", namespace="churn-scorer")[0]
    inside = (fleet.timestamps >= period.start.timestamp()) & (fleet.timestamps < period.end.timestamp())
    # 5-minute samples of 1-3% utilisation: the mean of the raw minutes within 0.005.
    assert period.mean_utilization == pytest.approx(series.values[inside].mean() / 100, abs=0.005)
    assert period.gpu_hours == 8.0
    assert period.idle_cost_usd == pytest.approx(8.0 * CONFIG_GPU_PRICE * (1 - period.mean_utilization))


def test_a_namespace_selector_finds_gpus_whose_labels_arrived_as_exported(prom, config, fleet, fleet_end):
    # recommender's GPUs were scraped with honorLabels: false (namespace="gpu-operator",
    # exported_namespace="recommender"); churn-scorer's GPU was scraped both ways.
    start = fleet_end - timedelta(days=7)
    report = compute_costs(prom, config, start, fleet_end)
    recommender, churn = report.entry("recommender"), report.entry("churn-scorer")
    exported = [s for s in fleet.find("DCGM_FI_DEV_GPU_UTIL") if s.labels.get("exported_namespace") == "recommender"]
    assert len(exported) == 2 and not fleet.find("DCGM_FI_DEV_GPU_UTIL", namespace="recommender")
    want = _expected(fleet, "recommender", start, fleet_end)
    assert recommender.gpu_hours == pytest.approx(want["gpu_hours"], rel=REL)
    assert 2 * 7 * 24 <= recommender.gpu_hours <= 2 * 7 * 24 + 2 / 60
    assert recommender.cost_per_1k == pytest.approx(want["cost_per_1k"], rel=REL)
    # Two series of one GPU (one per scrape style) count as one GPU.
    assert len(fleet.find("DCGM_FI_DEV_GPU_UTIL", hostname="gpu-node-4")) == 2
    assert 7 * 24 <= churn.gpu_hours <= 7 * 24 + 1 / 60
    assert churn.gpu_hours == pytest.approx(_expected(fleet, "churn-scorer", start, fleet_end)["gpu_hours"], rel=REL)


def test_a_gpu_selector_that_matches_nothing_while_serving_is_a_warning_not_a_zero_cost(
        prom, fleet_config_path, fleet, fleet_end, capsys):
    import yaml

    from monitor.report.cost_section import build_cost_section
    from monitor.report.period import ReportPeriod

    # A typo in the namespace: ranker serves all week, but its selector finds no GPU.
    raw = yaml.safe_load(fleet_config_path.read_text())
    next(m for m in raw["models"] if m["name"] == "ranker")["gpus"] = '{namespace="rankers"}'
    path = fleet_config_path.with_name("monitor-typo.yaml")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    start = fleet_end - timedelta(days=7)
    assert main(["cost", "--config", str(path), "--from", start.isoformat(), "--to", fleet_end.isoformat(),
                 "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    [warning] = out["warnings"]
    assert "'ranker'" in warning and '{namespace="rankers"}' in warning and "matched no" in warning
    # Within increase()'s extrapolation at v2's first sample (see the module doc).
    served = float(re.search(r"served ([\d,]+) inferences", warning).group(1).replace(",", ""))
    assert served == pytest.approx(_inferences(fleet, "ranker", start, fleet_end), rel=1e-3)
    assert f"monitor: warning: {warning}" in captured.err.splitlines()
    ranker = next(e for e in out["models"] if e["model"] == "ranker" and e["version"] is None)
    assert ranker["cost_usd"] is None and ranker["cost_per_1k"] is None and ranker["gpu_hours"] is None
    # The table says it too, on stderr, and the weekly report's cost section carries it as a note.
    assert main(["cost", "--config", str(path), "--from", start.isoformat(), "--to", fleet_end.isoformat()]) == 0
    assert "matched no dcgm-exporter GPU series" in capsys.readouterr().err
    config = load_config(path)
    section = build_cost_section(prom, config, ReportPeriod(start, fleet_end, "test", "the week"))
    assert warning in section.status.note
    # The fleet's own config warns about nothing: every selector finds its GPUs.
    good = load_config(fleet_config_path)
    assert not compute_costs(prom, good, start, fleet_end).warnings


def test_a_mig_instance_without_gpu_util_is_read_from_its_engine_activity(prom, config, fleet, fleet_end):
    # ranker's second GPU is a full-size MIG instance: no DCGM_FI_DEV_GPU_UTIL, only GR_ENGINE_ACTIVE.
    [mig] = fleet.find("DCGM_FI_PROF_GR_ENGINE_ACTIVE", Hostname="gpu-node-1")
    assert mig.labels["GPU_I_PROFILE"] == "7g.80gb" and not fleet.find("DCGM_FI_DEV_GPU_UTIL", UUID=mig.labels["UUID"])
    start = fleet_end - timedelta(hours=40)
    got = compute_costs(prom, config, start, fleet_end).entry("ranker")
    assert 2 * 40 <= got.gpu_hours <= 2 * 40 + 2 / 60
    seen = [_grid_values(fleet, values, start, fleet_end) for _, values in _workload_gpus(fleet, "ranker")]
    want = float(np.concatenate(seen).mean()) / 100  # both GPUs present every minute: equal weights
    assert got.gpu_utilization == pytest.approx(want, rel=REL)
