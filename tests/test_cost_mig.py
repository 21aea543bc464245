"""MIG slice sizes, per-profile prices, time-slicing and placement in the pure allocation.

Expected fractions are NVIDIA's ("Supported MIG Profiles" in the MIG user guide, column
"Fraction of SMs"), written out here rather than read from monitor.cost.mig.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor.config import Pricing
from monitor.cost.allocation import GpuKey, GpuUsage, ModelUsage, PodTime, PriceSource, allocate
from monitor.cost.fleet import fleet_figures
from monitor.cost.mig import slice_size

END = datetime(2026, 11, 23, tzinfo=timezone.utc)
START = END - timedelta(days=1)
A100_80 = "NVIDIA A100-SXM4-80GB"
PRICING = Pricing(GPU=2.8)


@pytest.mark.parametrize("model_name, profile, fraction", [
    pytest.param(A100_80, "1g.10gb", 1 / 7, id="1g.10gb is a seventh of an A100 80GB"),
    pytest.param(A100_80, "1g.20gb", 1 / 7, id="1g.20gb has twice the memory but the same seventh of the SMs"),
    pytest.param(A100_80, "3g.40gb", 3 / 7, id="3g.40gb is three sevenths of an A100 80GB"),
    pytest.param("NVIDIA A100-SXM4-40GB", "3g.20gb", 3 / 7, id="3g.20gb on an A100 40GB"),
    pytest.param("NVIDIA H100 80GB HBM3", "2g.20gb", 2 / 7, id="2g.20gb on an H100 80GB"),
    pytest.param("NVIDIA H100 NVL", "4g.47gb", 4 / 7, id="4g.47gb on an H100 94GB"),
    pytest.param("NVIDIA H200", "1g.18gb+me", 1 / 7, id="a media-extension profile holds its base profile's SMs"),
    pytest.param("NVIDIA A30", "2g.12gb", 2 / 4, id="an A30 has four slices, not seven"),
    pytest.param(A100_80, "7g.80gb", 1.0, id="7g.80gb is the whole GPU"),
])
def test_slice_sizes_follow_nvidias_table(model_name, profile, fraction):
    size = slice_size(model_name, profile)
    assert size.fraction == pytest.approx(fraction)
    assert "NVIDIA MIG user guide" in size.basis


def test_an_unknown_profile_is_assumed_in_sevenths_and_says_so():
    size = slice_size("NVIDIA B200", "2g.45gb")
    assert size.fraction == pytest.approx(2 / 7) and "assumed 2/7" in size.basis


def mig(instance: str, profile: str) -> GpuKey:
    return GpuKey("n1", "0", "GPU-0", A100_80, profile, instance)


def unit(key: GpuKey, hours: float, utilization: float, *pods: PodTime) -> GpuUsage:
    return GpuUsage(key, hours * 60, utilization * 100 * hours * 60, tuple(pods))


def test_each_mig_slice_costs_its_share_of_the_gpu_or_its_configured_price():
    usages = [ModelUsage("a", {"": 1000.0}, [unit(mig("2", "3g.40gb"), 24, 0.5), unit(mig("9", "1g.10gb"), 24, 0.2)]),
              ModelUsage("b", {"": 1000.0}, [unit(mig("3", "2g.20gb"), 24, 0.5), unit(mig("10", "1g.10gb"), 24, 0.2)])]
    report = allocate(START, END, usages, Pricing(GPU=2.8, mig_profiles={"1g.10gb": 0.40}), {})
    a, b = report.entry("a"), report.entry("b")
    assert a.cost_usd == pytest.approx(24 * 2.8 * 3 / 7 + 24 * 0.40)
    assert b.cost_usd == pytest.approx(24 * 2.8 * 2 / 7 + 24 * 0.40)
    assert a.gpu_hours + b.gpu_hours == pytest.approx(24.0)  # four slices filling one GPU for a day
    assert {g.gpu.mig_profile: g.price_source for g in a.gpus} == {"3g.40gb": PriceSource.CONFIG,
                                                                  "1g.10gb": PriceSource.MIG_PROFILE}
    fleet = fleet_figures(report)
    assert fleet.gpus == 1 and fleet.gpu_hours == pytest.approx(24.0)


def test_pods_one_after_another_each_pay_their_own_minutes():
    key = GpuKey("n1", "0", "GPU-0", A100_80)
    report = allocate(START, END, [ModelUsage("m", {"v1": 100.0, "v2": 100.0}, [
        unit(key, 24, 0.5, PodTime("ns", "m-v1-a", 16 * 60, "v1"), PodTime("ns", "m-v2-a", 8 * 60 + 5, "v2"))],
        placement=True)], PRICING, {})
    g = report.entry("m").gpus[0]
    assert g.sharing.value == "exclusive"  # 5 minutes of overlap is a handover, not time-slicing
    assert g.version_shares["v1"] == pytest.approx(960 / 1445)
    assert report.entry("m", "v2").gpu_hours == pytest.approx(24 * 485 / 1445)


@pytest.mark.parametrize("sm, sharing, share_a", [
    pytest.param((0.45 * 1440, 0.15 * 1440), "time_slicing_utilization", 0.75,
                 id="pods at once with per-process SM use split by it"),
    pytest.param((None, 0.15 * 1440), "time_slicing_even", 0.5,
                 id="pods at once without SM use for every pod split evenly"),
])
def test_time_sliced_pods_of_two_models(sm, sharing, share_a):
    key = GpuKey("n1", "0", "GPU-0", A100_80)
    usages = [ModelUsage("a", {"": 100.0}, [unit(key, 24, 0.6, PodTime("pool", "a-1", 1440, None, sm[0]))]),
              ModelUsage("b", {"": 900.0}, [unit(key, 24, 0.6, PodTime("pool", "b-1", 1440, None, sm[1]))])]
    report = allocate(START, END, usages, PRICING, {})
    a, b = report.entry("a"), report.entry("b")
    assert a.gpus[0].sharing.value == sharing and a.sharing.value == sharing
    assert a.gpus[0].share == pytest.approx(share_a) and b.gpus[0].share == pytest.approx(1 - share_a)
    assert a.cost_usd + b.cost_usd == pytest.approx(24 * 2.8)
    assert a.allocation.value == "placement"  # by pods, not by inferences (b served 9 times more)
    assert fleet_figures(report).gpu_hours == pytest.approx(24.0)


def test_placement_charges_each_version_its_own_gpus_and_the_rest_by_inferences():
    own = [GpuKey("n1", str(i), f"GPU-{i}", A100_80) for i in range(4)]
    usages = [ModelUsage("chat", {"v1": 900.0, "v2": 100.0}, [
        unit(own[0], 24, 0.5, PodTime("chat", "chat-v1-a", 1440, "v1")),
        unit(own[1], 24, 0.5, PodTime("chat", "chat-v1-b", 1440, "v1")),
        unit(own[2], 24, 0.5, PodTime("chat", "chat-v2-a", 1440, "v2")),
        unit(own[3], 24, 0.5, PodTime("chat", "chat-x", 1440, None))], placement=True)]
    report = allocate(START, END, usages, PRICING, {})
    v1, v2 = report.entry("chat", "v1"), report.entry("chat", "v2")
    assert v1.gpu_hours == pytest.approx(48 + 24 * 0.9) and v2.gpu_hours == pytest.approx(24 + 24 * 0.1)
    assert v1.cost_usd + v2.cost_usd == pytest.approx(report.entry("chat").cost_usd)
    assert v1.allocation.value == v2.allocation.value == "placement"
    assert "pods of no known version" in v2.allocation_detail
    assert v2.cost_per_1k / v1.cost_per_1k == pytest.approx((26.4 / 100) / (69.6 / 900))


def test_pod_versions_the_counter_does_not_know_are_warned_about():
    key = GpuKey("n1", "0", "GPU-0", A100_80)
    report = allocate(START, END, [ModelUsage("m", {"v1": 10.0}, [unit(key, 1, 0.5, PodTime("ns", "p", 60, "2.0"))],
                                              placement=True)], PRICING, {})
    assert any("version(s) 2.0" in w and "no inferences" in w for w in report.warnings)
    assert report.entry("m", "2.0").cost_per_1k is None  # GPUs held, nothing served: no data, not 0
