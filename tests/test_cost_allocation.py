"""The pure cost math: prices, shared GPUs, versions, idle cost, cost per 1k, period change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor.config import Pricing
from monitor.cost.allocation import (CostReport, GpuKey, GpuUsage, ModelUsage, PriceSource, allocate,
                                     cost_per_1k, cost_per_1k_change, gpu_price)

END = datetime(2026, 11, 23, tzinfo=timezone.utc)
START = END - timedelta(days=1)
A100 = "NVIDIA A100-SXM4-80GB"
L4 = "NVIDIA L4"


def gpu(node: str, index: str = "0", model_name: str = A100) -> GpuKey:
    return GpuKey(node, index, f"GPU-{node}-{index}", model_name)


def usage(key: GpuKey, hours: float, utilization: float) -> GpuUsage:
    minutes = hours * 60
    return GpuUsage(key, minutes, utilization * 100 * minutes)


PRICING = Pricing(GPU=2.5, CPU=0.03, RAM=0.004, gpu_models={L4: 0.8})


@pytest.mark.parametrize("key, node_prices, want", [
    pytest.param(gpu("n1"), {"n1": 3.1}, (3.1, PriceSource.NODE_GPU_HOURLY_COST),
                 id="OpenCost's node price wins over the config"),
    pytest.param(gpu("n1", model_name=L4), {}, (0.8, PriceSource.CONFIG),
                 id="a per-GPU-model price applies to that modelName"),
    pytest.param(gpu("n1", model_name=L4), {"n1": 3.1}, (3.1, PriceSource.NODE_GPU_HOURLY_COST),
                 id="the node price wins over the per-GPU-model price"),
    pytest.param(gpu("n1"), {"other": 3.1}, (2.5, PriceSource.CONFIG),
                 id="another node's price does not apply"),
])
def test_gpu_price(key, node_prices, want):
    assert gpu_price(key, PRICING, node_prices) == want


def test_a_sole_model_pays_hours_times_price_and_idle_is_the_unused_part():
    report = allocate(START, END, [ModelUsage("m", {"": 2_000_000.0}, [usage(gpu("n1"), 24, 0.25)])], PRICING, {})
    m = report.entry("m")
    assert (m.gpu_hours, m.gpu_utilization, m.cost_usd) == (24, 0.25, 60.0)
    assert m.idle_cost_usd == pytest.approx(45.0)
    assert m.cost_per_1k == pytest.approx(60.0 / 2_000_000 * 1000)
    assert m.price_source is PriceSource.CONFIG
    assert [c.version for c in report.models] == [None]  # no version label: one entry


def test_a_shared_gpu_is_split_by_inference_share():
    shared = gpu("n3", model_name=L4)
    report = allocate(START, END, [ModelUsage("a", {"": 300.0}, [usage(shared, 24, 0.5)]),
                                   ModelUsage("b", {"": 100.0}, [usage(shared, 24, 0.5)])], PRICING, {})
    a, b = report.entry("a"), report.entry("b")
    assert (a.gpu_hours, b.gpu_hours) == (18.0, 6.0)
    assert a.cost_usd + b.cost_usd == pytest.approx(24 * 0.8)
    assert a.gpu_utilization == b.gpu_utilization == 0.5  # the GPU's utilisation, not split
    assert "shared with b: 75.0%" in a.allocation_detail and "share of inferences" in a.allocation_detail
    assert a.cost_per_1k == pytest.approx(b.cost_per_1k)


def test_a_shared_gpu_nobody_used_is_split_equally_and_says_so():
    shared = gpu("n3")
    report = allocate(START, END, [ModelUsage("a", {"": 0.0}, [usage(shared, 24, 0.01)]),
                                   ModelUsage("b", None, [usage(shared, 24, 0.01)])], PRICING, {})
    assert report.entry("a").cost_usd == report.entry("b").cost_usd == pytest.approx(30.0)
    assert "split equally" in report.entry("a").allocation_detail
    assert report.entry("a").cost_per_1k is None and report.entry("b").cost_per_1k is None
    assert report.entry("b").inferences is None  # a missing counter is no data, not 0


def test_versions_share_the_models_gpus_by_inference_share():
    report = allocate(START, END, [ModelUsage("r", {"v1": 700.0, "v2": 300.0}, [usage(gpu("n1"), 24, 0.4)])],
                      PRICING, {})
    whole, v1, v2 = report.entry("r"), report.entry("r", "v1"), report.entry("r", "v2")
    assert whole.inferences == 1000
    assert (v1.cost_usd, v2.cost_usd) == (pytest.approx(42.0), pytest.approx(18.0))
    assert v2.gpu_hours == pytest.approx(7.2) and v2.idle_cost_usd == pytest.approx(18.0 * 0.6)
    assert v2.inference_share == pytest.approx(0.3)
    assert v1.cost_per_1k == pytest.approx(whole.cost_per_1k) == pytest.approx(v2.cost_per_1k)
    assert "30.0% of r's cost" in v2.allocation_detail and v2.allocation.value == "inference_share"


def test_a_version_with_no_inferences_has_null_cost_per_1k():
    report = allocate(START, END, [ModelUsage("r", {"v1": 500.0, "v2": 0.0}, [usage(gpu("n1"), 1, 0.4)])],
                      PRICING, {})
    assert report.entry("r", "v2").cost_usd == 0.0
    assert report.entry("r", "v2").cost_per_1k is None


def test_idle_cost_is_per_gpu_when_prices_differ():
    report = allocate(START, END, [ModelUsage("m", {"": 1.0}, [usage(gpu("n1"), 10, 0.9),
                                                                  usage(gpu("n2"), 10, 0.1)])],
                      PRICING, {"n2": 4.0})
    m = report.entry("m")
    assert m.cost_usd == pytest.approx(10 * 2.5 + 10 * 4.0)
    assert m.idle_cost_usd == pytest.approx(10 * 2.5 * 0.1 + 10 * 4.0 * 0.9)
    assert m.gpu_utilization == pytest.approx(0.5)
    # Half the GPU-hours are priced by each source; the documented field names one, the detail both.
    assert dict(m.gpu_hours_by_price_source) == {"config": 10.0, "node_gpu_hourly_cost": 10.0}


def test_cpu_and_ram_are_added_to_the_cost_but_not_to_idle_cost():
    report = allocate(START, END, [ModelUsage("m", {"": 1000.0}, [usage(gpu("n1"), 1, 0.5)],
                                              cpu_core_hours=100.0, ram_gib_hours=1000.0)], PRICING, {})
    m = report.entry("m")
    assert m.cost_usd == pytest.approx(2.5 + 3.0 + 4.0)
    assert (m.cpu_cost_usd, m.ram_cost_usd) == (pytest.approx(3.0), pytest.approx(4.0))
    assert m.idle_cost_usd == pytest.approx(1.25)


def test_a_model_with_no_gpu_series_has_no_cost_rather_than_zero():
    m = allocate(START, END, [ModelUsage("m", {"": 10.0}, [])], PRICING, {}).entry("m")
    assert (m.gpu_hours, m.gpu_utilization, m.cost_usd, m.idle_cost_usd, m.cost_per_1k) == (None,) * 5


@pytest.mark.parametrize("cost, inferences, want", [
    pytest.param(10.0, 1000.0, 10.0, id="dollars per thousand"),
    pytest.param(10.0, 0.0, None, id="no inferences is no data"),
    pytest.param(None, 1000.0, None, id="no cost is no data"),
    pytest.param(10.0, None, None, id="a missing counter is no data"),
])
def test_cost_per_1k(cost, inferences, want):
    assert cost_per_1k(cost, inferences) == want


def test_period_change_of_cost_per_1k():
    def report(cost: float, inferences: float) -> CostReport:
        return allocate(START, END, [ModelUsage("m", {"": inferences}, [usage(gpu("n1"), cost / 2.5, 0.5)])],
                        PRICING, {})
    change = cost_per_1k_change(report(12.0, 1000.0), report(10.0, 1000.0))
    assert change[("m", None)] == pytest.approx(0.2)
    assert cost_per_1k_change(report(12.0, 1000.0), report(10.0, 0.0))[("m", None)] is None


def test_report_json_keeps_the_documented_keys_first():
    report = allocate(START, END, [ModelUsage("m", {"v1": 1.0}, [usage(gpu("n1"), 1, 0.5)])], PRICING, {})
    d = report.as_dict()
    assert (d["from"], d["to"]) == ("2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z")
    assert list(d["models"][0])[:9] == ["model", "version", "inferences", "gpu_hours", "gpu_utilization",
                                        "cost_usd", "idle_cost_usd", "cost_per_1k", "price_source"]
    assert [(e["model"], e["version"]) for e in d["models"]] == [("m", None), ("m", "v1")]


@pytest.mark.parametrize("inferences, gpus, selector, warned", [
    pytest.param({"": 10.0}, [], '{namespace="x"}', True, id="a selector that finds no GPU while serving warns"),
    pytest.param({"": 0.0}, [], '{namespace="x"}', False, id="a model that served nothing is not warned about"),
    pytest.param(None, [], '{namespace="x"}', False, id="a model without an inference series is not warned about"),
    pytest.param({"": 10.0}, [], None, False, id="a model without a gpus selector is CPU-only, not a miss"),
    pytest.param({"": 10.0}, [usage(gpu("n1"), 1, 0.5)], '{namespace="x"}', False,
                 id="a selector that finds its GPU is not warned about"),
])
def test_a_gpu_selector_that_finds_nothing_while_serving_is_warned_about(inferences, gpus, selector, warned):
    report = allocate(START, END, [ModelUsage("m", inferences, gpus, gpu_selector=selector)], PRICING, {},
                      ["server warning"])
    assert report.warnings[0] == "server warning"
    assert any("model 'm': gpus selector" in w for w in report.warnings) == warned
    if warned:
        assert report.entry("m").cost_usd is None and report.entry("m").cost_per_1k is None
