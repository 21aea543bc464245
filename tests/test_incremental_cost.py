"""The daemon's weekly cost figures from closed hours equal the direct computation.

`cost_signals(..., store)` builds the two weeks ending at the latest closed hour from
hourly aggregates kept in the state store (monitor.cost.hourly); `week_over_week`
at that hour measures the same weeks directly. They must agree within the bound
monitor.cost.hourly states: GPU-hours, utilisation and idle cost exactly (1e-9),
inferences and cost within 0.5% relative. Held across a restart (a new store object
on the same file), a gap of several hours, a counter reset and a model that appears
mid-week (a small Prometheus of its own), and against the raw series there.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.config import load_config
from monitor.cost import cost_signals, week_over_week
from monitor.cost.allocation import CostReport
from monitor.cost.collect import CostWindows
from monitor.cost.signals import UTILIZATION_WINDOW, _inference_rate_queries
from monitor.cost.hourly import BOUND_MIN_INFERENCES, BOUND_RELATIVE, trailing_weeks
from monitor.incremental import PeriodRepository, closed_boundary
from monitor.simulate.local_prometheus import LocalPrometheus, backfill
from monitor.sources.prometheus import PrometheusSource
from monitor.store import StateStore
from monitor.timeutil import utc

pytestmark = pytest.mark.prometheus
EXACT = 1e-9


def _close(a: float | None, b: float | None, rel: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def assert_reports_agree(incremental: CostReport, direct: CostReport) -> float:
    """Every model and version agrees within the stated bounds; returns the largest inference error."""
    assert (incremental.start, incremental.end) == (direct.start, direct.end)
    assert [(m.model, m.version) for m in incremental.models] == [(m.model, m.version) for m in direct.models]
    worst = 0.0
    for got, want in zip(incremental.models, direct.models):
        where = f"{got.model} {got.version}"
        assert _close(got.gpu_utilization, want.gpu_utilization, EXACT), where
        # A version's share of the GPUs, and a model's share of a GPU it shares, follow
        # shares of inferences: within their bound. A model's own GPUs: exact.
        exact = want.version is None and not any(g.shared_with for g in want.gpus)
        for figure in ("gpu_hours", "idle_cost_usd", "gpu_cost_usd"):
            assert _close(getattr(got, figure), getattr(want, figure), EXACT if exact else BOUND_RELATIVE), \
                (where, figure)
        # CPU and RAM (monitor.cost.compute): per node and hour, priced that hour. RAM and
        # requests are grid sums: a model's own exact. CPU usage is a counter's increase():
        # within the inferences' bound (extrapolation where a series starts inside an hour).
        # A version's share follows its share of inferences.
        for figure in ("ram_gib_hours", "ram_cost_usd"):
            assert _close(getattr(got, figure), getattr(want, figure),
                          EXACT if want.version is None else BOUND_RELATIVE), (where, figure)
        for figure in ("cpu_core_hours", "cpu_cost_usd"):
            assert _close(getattr(got, figure), getattr(want, figure), BOUND_RELATIVE), (where, figure)
        # Tokens are counters like inferences: within their bound.
        for figure in ("prompt_tokens", "generation_tokens"):
            assert _close(getattr(got, figure), getattr(want, figure), BOUND_RELATIVE), (where, figure)
        assert _close(got.cost_per_1m_tokens, want.cost_per_1m_tokens, 2 * BOUND_RELATIVE), where
        if want.inferences is not None and want.inferences >= BOUND_MIN_INFERENCES:
            assert _close(got.inferences, want.inferences, BOUND_RELATIVE), where
            worst = max(worst, abs(got.inferences / want.inferences - 1))
            assert _close(got.cost_usd, want.cost_usd, BOUND_RELATIVE), where
            assert _close(got.cost_per_1k, want.cost_per_1k, 2 * BOUND_RELATIVE), where
        else:
            assert (got.inferences is None) == (want.inferences is None), where
    return worst


def _week_signals(signals) -> dict[tuple[str, str, str], float | None]:
    return {(s.name, s.labels.get("model", ""), s.labels.get("version", "")): s.value for s in signals
            if s.name in ("cost_per_1k", "cost_usd", "gpu_hours", "idle_cost_usd", "cost_per_1k_wow_change",
                          "cost_per_1m_tokens", "cost_per_1m_tokens_wow_change", "prompt_tokens")}


def test_weekly_cost_from_closed_hours_equals_the_direct_weeks(prom, fleet_config_path, fleet_end, tmp_path):
    config = load_config(fleet_config_path)
    now = fleet_end - timedelta(hours=10) + timedelta(minutes=7)
    boundary = closed_boundary(now)
    assert boundary == fleet_end - timedelta(hours=10)
    with StateStore(tmp_path / "state.db") as store:
        weeks = trailing_weeks(prom, config, PeriodRepository(store), now)
    direct = week_over_week(prom, config, boundary)
    assert weeks.end == boundary
    worst = max(assert_reports_agree(weeks.current, direct.current),
                assert_reports_agree(weeks.previous, direct.previous))
    assert worst < BOUND_RELATIVE


def test_cycles_within_the_hour_reuse_the_weekly_figures_and_a_restart_keeps_them(prom, fleet_config_path,
                                                                                fleet_end, tmp_path):
    config = load_config(fleet_config_path)
    path = tmp_path / "state.db"
    now = fleet_end - timedelta(hours=10) + timedelta(minutes=7)
    with StateStore(path) as store:
        first = cost_signals(prom, config, now, store)
    recent_only = prom.stats.queries
    with StateStore(path) as store:  # a restart: a new store object on the same file
        made = prom.stats.queries
        later = cost_signals(prom, config, now + timedelta(minutes=30), store)
        reused_queries = prom.stats.queries - made
    # The weekly part asks nothing: only the per-cycle rates and recent utilisation.
    direct_recent = cost_signals(prom, config, now + timedelta(minutes=30))
    assert _week_signals(later) == _week_signals(first)
    ages = [s for s in later if s.name == "figures_age_seconds"]
    assert [(a.labels, a.value) for a in ages] == [({"figure": "cost_weekly"}, 37 * 60.0)]
    recent_names = {"model_inference_rate", "gpu_utilization"}
    assert ({(s.name, tuple(s.labels.items())): s.value for s in later if s.name in recent_names}
            == {(s.name, tuple(s.labels.items())): s.value for s in direct_recent if s.name in recent_names})
    at = now + timedelta(minutes=30)
    made = prom.stats.queries
    prom.run([*CostWindows.plan(config, at, 1, UTILIZATION_WINDOW).range_queries(),
              *_inference_rate_queries(config, at).values()])
    assert reused_queries == prom.stats.queries - made
    assert recent_only > 0


def test_after_a_gap_of_hours_only_the_missing_hours_are_measured(prom, fleet_config_path, fleet_end, tmp_path):
    config = load_config(fleet_config_path)
    first_now = fleet_end - timedelta(hours=10) + timedelta(minutes=7)
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        trailing_weeks(prom, config, PeriodRepository(store), first_now)
    later_now = first_now + timedelta(hours=5)
    with StateStore(path) as store:
        repository = PeriodRepository(store)
        made = prom.stats.queries
        weeks = trailing_weeks(prom, config, repository, later_now)
        backfill_queries = prom.stats.queries - made
        # Five new hours per model: one run, one query per figure (and one for the prices).
        assert backfill_queries <= len(config.models) * 3 + 1
        closed = repository.closed(["cost/node_gpu_hourly_cost"], weeks.end - timedelta(days=14, hours=-1), weeks.end)
        assert len(closed["cost/node_gpu_hourly_cost"]) == 14 * 24
    direct = week_over_week(prom, config, weeks.end)
    assert weeks.end == fleet_end - timedelta(hours=5)
    assert_reports_agree(weeks.current, direct.current)
    assert_reports_agree(weeks.previous, direct.previous)


def test_an_edited_model_is_measured_afresh_not_mixed_with_its_old_hours(prom, fleet_config_path, fleet_end,
                                                                        tmp_path):
    config = load_config(fleet_config_path)
    now = fleet_end - timedelta(hours=2) + timedelta(minutes=3)
    with StateStore(tmp_path / "state.db") as store:
        trailing_weeks(prom, config, PeriodRepository(store), now)
        ranker = next(m for m in config.models if m.name == "ranker")
        narrowed = replace(ranker, inferences='nv_inference_count{model="ranker",version="v1"}')
        edited = replace(config, models=[narrowed if m is ranker else m for m in config.models])
        weeks = trailing_weeks(prom, edited, PeriodRepository(store), now)
    direct = week_over_week(prom, edited, weeks.end)
    assert_reports_agree(weeks.current, direct.current)
    assert weeks.current.entry("ranker").inferences == pytest.approx(
        weeks.current.entry("ranker", "v1").inferences)


# -- a counter reset and a model that appears mid-week, in a Prometheus of their own -------

END = datetime(2026, 11, 23, tzinfo=utc(datetime(2026, 1, 1)).tzinfo)
DAYS = 9
STEP_S = 60
RESET_AT = END - timedelta(days=3, hours=4, minutes=27, seconds=30)   # between two scrapes
LATE_FROM = END - timedelta(days=2, hours=7, minutes=13)


def _edge_series() -> dict[str, tuple[dict[str, str], np.ndarray, np.ndarray]]:
    """Per series: labels, unix timestamps, values (1-minute scrapes; NaN = absent)."""
    t = np.arange((END - timedelta(days=DAYS)).timestamp(), END.timestamp() + 1, STEP_S)
    hours = (t - t[0]) / 3600.0
    rate = 40.0 + 25.0 * np.sin(2 * np.pi * hours / 24.0)             # inferences per second, diurnal
    served = np.concatenate([[0.0], np.cumsum(rate[1:] * STEP_S)])
    reset = served - np.where(t > RESET_AT.timestamp(), served[np.searchsorted(t, RESET_AT.timestamp())], 0.0)
    reset = np.where(t > RESET_AT.timestamp(), reset + 0.0, served)   # restarts from 0 after the reset
    late = np.where(t >= LATE_FROM.timestamp(), served - served[np.searchsorted(t, LATE_FROM.timestamp())] + 7.0,
                    np.nan)
    util = 50.0 + 30.0 * np.cos(2 * np.pi * hours / 24.0)
    gpu = {"Hostname": "edge-1", "gpu": "0", "UUID": "GPU-e1", "modelName": "NVIDIA L4"}
    return {
        "reset": ({"__name__": "nv_inference_count", "model": "resetter", "version": "v1"}, t, reset),
        "late": ({"__name__": "nv_inference_count", "model": "latecomer", "version": "v1"}, t, late),
        "gpu_reset": ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "namespace": "resetter", **gpu}, t, util),
        "gpu_late": ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "namespace": "latecomer", **gpu, "gpu": "1",
                      "UUID": "GPU-e2"}, t, np.where(np.isnan(late), np.nan, util)),
    }


@pytest.fixture(scope="module")
def edge_prometheus(tmp_path_factory):
    """A small Prometheus holding a counter that resets and a model that appears mid-week."""
    tmp = tmp_path_factory.mktemp("edge")
    lines = []
    for labels, t, values in _edge_series().values():
        name = labels["__name__"]
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        lines += [f"{name}{{{text}}} {v!r} {int(ts)}\n" for ts, v in zip(t.tolist(), values.tolist()) if v == v]
    (tmp / "edge.om").write_text("".join(lines) + "# EOF\n")
    backfill(tmp / "edge.om", tmp / "data")
    server = LocalPrometheus(tmp / "data", log_path=tmp / "prometheus.log").start()
    yield server
    server.stop()


def _edge_config(tmp: Path, url: str):
    doc = {"prometheus": {"url": url}, "state": {"path": "state.db"},
           "models": [{"name": name, "inferences": f'nv_inference_count{{model="{name}"}}', "version_label": "version",
                       "gpus": f'{{namespace="{name}"}}'} for name in ("resetter", "latecomer")],
           "cost": {"pricing": {"GPU": 0.8}}}
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(doc))
    return load_config(tmp / "monitor.yaml")


@pytest.mark.parametrize("hours_before_end", [0, 30], ids=[
    "at the end of the history: the reset and the late model are inside the current week",
    "a day earlier: the late model appeared hours ago"])
def test_a_counter_reset_and_a_model_appearing_mid_week_match_direct_and_the_raw_series(
        edge_prometheus, tmp_path, hours_before_end):
    config = _edge_config(tmp_path, edge_prometheus.url)
    now = END - timedelta(hours=hours_before_end) + timedelta(minutes=4)
    with PrometheusSource(edge_prometheus.url, timeout=10) as source, StateStore(tmp_path / "state.db") as store:
        weeks = trailing_weeks(source, config, PeriodRepository(store), now)
        direct = week_over_week(source, config, weeks.end)
    assert_reports_agree(weeks.current, direct.current)
    assert_reports_agree(weeks.previous, direct.previous)
    # Independently, from the raw series: the counter's real increase over the week.
    series = _edge_series()
    start, end = (weeks.end - timedelta(days=7)).timestamp(), weeks.end.timestamp()
    for model, key in (("resetter", "reset"), ("latecomer", "late")):
        _, t, values = series[key]
        inside = (t > start) & (t <= end) & ~np.isnan(values)
        before = (t <= start) & ~np.isnan(values)
        v = np.concatenate([values[before][-1:], values[inside]])
        steps = np.diff(v)
        truth = float(np.where(steps < 0, v[1:], steps).sum())   # after a reset the counter counts from 0
        if not before.any():
            truth += float(v[0]) if model == "latecomer" and t[inside][0] > start else 0.0
        got = weeks.current.entry(model, "v1").inferences
        assert got == pytest.approx(truth, rel=BOUND_RELATIVE), model
