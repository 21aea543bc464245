"""Direct-mode SLO windows over 6 hours from closed hours equal the direct queries.

With a state store, `evaluate_slos` (direct mode) takes each events SLI's 1d, 3d and
period windows from hourly events kept in the store plus the open part and the part
of the first hour (monitor.slo.closed_hours); windows of 6 hours or less are still
queried directly. Against `evaluate_slos` without a store: windows of 6h or less
identical, longer ones within the stated 0.5% of events (windows with at least 1,000),
error ratios within twice that; across cycles in the same hour, a restart (a new
store object on the same file) and a gap of several hours. Independently, against
pandas over the raw simulated counters for the 1d window.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest

from monitor.config import load_config
from monitor.slo import evaluate_slos, load_slo_specs
from monitor.incremental import PeriodRepository
from monitor.slo.closed_hours import BOUND_MIN_EVENTS, BOUND_RELATIVE, LONGEST_DIRECT, series_set
from monitor.slo.evaluate import slo_windows
from monitor.slo.spec import EventsSli
from monitor.store import StateStore

pytestmark = pytest.mark.prometheus


def _close(a, b, rel):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def assert_results_agree(incremental, direct) -> int:
    """Returns how many long windows were compared within the bound."""
    compared = 0
    for got, want in zip(incremental, direct):
        assert got.spec.id == want.spec.id
        assert list(got.events_total) == list(want.events_total)
        for key, window in slo_windows(want.spec, want.at).items():
            where = (want.spec.id, key)
            if window <= LONGEST_DIRECT:
                assert got.events_total[key] == want.events_total[key], where
                assert got.events_bad[key] == want.events_bad[key], where
                assert got.error_ratio[key] == want.error_ratio[key], where
                continue
            total = want.events_total[key]
            if total is None or total < BOUND_MIN_EVENTS:
                assert (got.events_total[key] is None) == (total is None), where
                continue
            assert _close(got.events_total[key], total, BOUND_RELATIVE), where
            assert abs(got.events_bad[key] - want.events_bad[key]) <= BOUND_RELATIVE * total, where
            if want.events_bad[key] >= BOUND_MIN_EVENTS:
                assert _close(got.error_ratio[key], want.error_ratio[key], 2 * BOUND_RELATIVE), where
            compared += 1
        assert got.problems == want.problems
    return compared


@pytest.fixture
def specs(fleet_config_path):
    return load_slo_specs(load_config(fleet_config_path))


def test_long_windows_from_closed_hours_equal_the_direct_queries_across_cycles_a_restart_and_a_gap(
        prom, specs, fleet_end, tmp_path):
    path = tmp_path / "state.db"
    first = fleet_end - timedelta(hours=7, minutes=23)
    compared = 0
    for cycle, at in enumerate((first, first + timedelta(minutes=1), first + timedelta(minutes=40),
                                first + timedelta(hours=5))):
        with StateStore(path) as store:  # a new store object each time: a restart
            read = prom.stats.samples
            incremental = evaluate_slos(prom, specs, at, store=store)
            incremental_samples = prom.stats.samples - read
            events_specs = [s for s in specs if isinstance(s.sli, EventsSli)]
            closed = PeriodRepository(store).closed([series_set(s) for s in events_specs], at - timedelta(days=3), at)
            assert all(len(hours) >= 3 * 24 - 1 for hours in closed.values())
        read = prom.stats.samples
        direct = evaluate_slos(prom, specs, at)
        if cycle in (1, 2):  # hours already stored: the long windows read only their partial hours
            assert incremental_samples < (prom.stats.samples - read) / 3
        compared += assert_results_agree(incremental, direct)
    assert compared >= len(specs) * 3


def test_the_one_day_window_matches_the_raw_counters(prom, specs, fleet, fleet_end, tmp_path):
    at = fleet_end - timedelta(hours=2, minutes=47)
    with StateStore(tmp_path / "state.db") as store:
        results = {r.spec.id: r for r in evaluate_slos(prom, specs, at, store=store)}
    index = pd.to_datetime(fleet.timestamps, unit="s", utc=True)
    for service in ("ranker", "recommender"):
        total = pd.Series(sum(s.values for s in fleet.find("http_requests_total", service=service)), index=index)
        bad = pd.Series(sum(s.values for s in fleet.find("http_requests_total", service=service, code="500")),
                        index=index)
        start, end = pd.Timestamp(at - timedelta(days=1)), pd.Timestamp(at)
        result = results[f"{service}-requests-availability"]
        assert result.events_total["1d"] == pytest.approx(total[end] - total[start], rel=BOUND_RELATIVE)
        assert result.events_bad["1d"] == pytest.approx(bad[end] - bad[start], rel=BOUND_RELATIVE, abs=50)
