"""SLO evaluation against the real Prometheus, checked against pandas over the raw simulated counters.

Tolerances: a window that lies inside the history starts exactly on a sample
(windows are minute-aligned, and 5-minute aligned where history is written every
5 minutes), so Prometheus' `rate()` does not extrapolate and the ratio equals the
counted one to floating-point precision (rel 1e-9). The 30d and 28d periods are
longer than the 7 days of history: Prometheus extrapolates the first sample back by
at most half the average sample interval (about a minute of 7 days), so period
figures are compared at rel 1e-3.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta

import pandas as pd
import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.slo import EvaluationMode, evaluate_slos, load_slo_specs, load_spec_files, slo_signals
from monitor.durations import format_duration
from monitor.slo.burn_rate import WINDOWS
from monitor.slo.evaluate import sli_queries, slo_windows
from monitor.sources.prometheus import QueryStats

pytestmark = pytest.mark.prometheus

INSIDE_HISTORY_REL = 1e-9
PERIOD_REL = 1e-3
# The SRE workbook's thresholds, written out independently of monitor.slo.burn_rate.
PAGE = {timedelta(days=30): (14.4, 6.0), timedelta(days=28): (13.44, 5.6)}
TICKET = {timedelta(days=30): (3.0, 1.0), timedelta(days=28): (2.8, 28 / 30)}


def _minute_series(fleet, name, **labels) -> pd.Series:
    """Sum of the matching simulated counters, one value per minute, indexed by UTC time."""
    found = fleet.find(name, **labels)
    assert found, (name, labels)
    index = pd.to_datetime(fleet.timestamps, unit="s", utc=True)
    return pd.Series(sum(s.values for s in found), index=index)


def _counters(fleet, slo_id: str) -> tuple[pd.Series, pd.Series]:
    """(bad, total) cumulative counts for one of the fleet's SLOs, from the raw series."""
    if slo_id == "search-embedder-requests-latency":
        total = _minute_series(fleet, "http_request_duration_seconds_count", service="search-embedder")
        fast = _minute_series(fleet, "http_request_duration_seconds_bucket", service="search-embedder", le="0.25")
        return total - fast, total
    service = slo_id.removesuffix("-requests-availability")
    bad = _minute_series(fleet, "http_requests_total", service=service, code="500")
    return bad, _minute_series(fleet, "http_requests_total", service=service)


def _expected(fleet, slo_id: str, at: datetime, objective: float, period: timedelta, min_events: float = 10):
    bad, total = _counters(fleet, slo_id)
    at_ts = pd.Timestamp(at)
    start_of_history = total.index[0]
    ratios, events = {}, {}
    for key, window in {**WINDOWS, f"{period.days}d": period}.items():
        first = max(at_ts - window, start_of_history)
        n_total = total.loc[at_ts] - total.loc[first]
        n_bad = bad.loc[at_ts] - bad.loc[first]
        events[key] = (n_bad, n_total)
        ratios[key] = None if n_total <= 0 or n_total < min_events else n_bad / n_total
    burns = {k: None if r is None else r / (1 - objective) for k, r in ratios.items()}

    def both(long, short, threshold):
        pair = [burns[long], burns[short]]
        if any(b is not None and b <= threshold for b in pair):
            return False
        return None if any(b is None for b in pair) else True

    def either(a, b):
        return True if True in (a, b) else None if None in (a, b) else False

    page = either(both("1h", "5m", PAGE[period][0]), both("6h", "30m", PAGE[period][1]))
    ticket = either(both("1d", "2h", TICKET[period][0]), both("3d", "6h", TICKET[period][1]))
    period_ratio = ratios[f"{period.days}d"]
    budget = None if period_ratio is None else 1 - period_ratio / (1 - objective)
    return ratios, burns, events, budget, page, ticket


def _assert_window(got, expected, rel):
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=rel, abs=1e-12)


SCENARIOS = [
    pytest.param("recommender-requests-availability", timedelta(hours=19, minutes=30), True, False,
                 id="a 6% error spike half an hour old pages"),
    pytest.param("fraud-detector-requests-availability", timedelta(hours=10), False, True,
                 id="a 0.4% slow burn for 34 hours tickets without paging"),
    pytest.param("ranker-requests-availability", timedelta(0), False, False,
                 id="a healthy service neither pages nor tickets"),
    pytest.param("churn-scorer-requests-availability", timedelta(0), False, False,
                 id="the 28d OpenSLO spec uses its own period and thresholds"),
    pytest.param("legacy-tagger-requests-availability", timedelta(0), None, False,
                 id="a service whose traffic stopped has no data for the short windows, not zero"),
    pytest.param("search-embedder-requests-latency", timedelta(hours=9), True, True,
                 id="a latency regression over the histogram threshold pages"),
]


@pytest.mark.parametrize("slo_id, before_end, page, ticket", SCENARIOS)
def test_every_window_matches_pandas_over_the_raw_counters(fleet, fleet_end, sim_dir, prom,
                                                           slo_id, before_end, page, ticket):
    config = load_config(sim_dir / "monitor.yaml")
    specs = load_slo_specs(config)
    at = fleet_end - before_end
    [result] = [r for r in evaluate_slos(prom, specs, at) if r.spec.id == slo_id]
    spec = result.spec
    ratios, burns, events, budget, want_page, want_ticket = _expected(fleet, slo_id, at, spec.objective, spec.period)

    assert list(result.error_ratio) == [*WINDOWS, spec.period_key]
    for key in WINDOWS:
        _assert_window(result.error_ratio[key], ratios[key], INSIDE_HISTORY_REL)
        _assert_window(result.burn_rate[key], burns[key], INSIDE_HISTORY_REL)
    _assert_window(result.error_ratio[spec.period_key], ratios[spec.period_key], PERIOD_REL)
    _assert_window(result.burn_rate[spec.period_key], burns[spec.period_key], PERIOD_REL)
    bad, total = events[spec.period_key]
    assert result.events_total[spec.period_key] == pytest.approx(total, rel=PERIOD_REL)
    assert result.events_bad[spec.period_key] == pytest.approx(bad, rel=PERIOD_REL)
    assert result.error_budget_remaining == pytest.approx(budget, abs=PERIOD_REL * burns[spec.period_key])
    # The decisions match the independent computation, and the scenario is the one the incident causes.
    assert (result.page, result.ticket) == (want_page, want_ticket) == (page, ticket)
    assert not result.problems


def test_traffic_stopped_reads_as_null_in_json_and_signals(fleet_end, fleet_config_path, capsys):
    at = fleet_end.isoformat().replace("+00:00", "Z")
    assert main(["slo", "--config", str(fleet_config_path), "--at", at, "--json"]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert doc["at"] == "2026-11-23T00:00:00Z"
    by_id = {s["id"]: s for s in doc["slos"]}
    tagger = by_id["legacy-tagger-requests-availability"]
    assert set(tagger) >= {"id", "service", "name", "objective", "period", "error_budget_remaining", "events",
                           "error_ratio", "burn_rate", "alerts"}
    assert (tagger["service"], tagger["name"], tagger["objective"], tagger["period"]) == \
        ("legacy-tagger", "requests-availability", 0.999, "30d")
    assert list(tagger["error_ratio"]) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert [tagger["error_ratio"][k] for k in ("5m", "30m", "1h", "2h")] == [None] * 4
    assert [tagger["burn_rate"][k] for k in ("5m", "30m", "1h", "2h")] == [None] * 4
    assert tagger["error_ratio"]["6h"] > 0
    assert tagger["alerts"] == {"page": None, "ticket": False}
    assert '"5m": null' in text
    assert by_id["churn-scorer-requests-availability"]["period"] == "28d"
    assert "28d" in by_id["churn-scorer-requests-availability"]["burn_rate"]

    specs = load_slo_specs(load_config(fleet_config_path))
    from monitor.sources.prometheus import PrometheusSource
    with PrometheusSource(load_config(fleet_config_path).prometheus.url) as source:
        signals = slo_signals(evaluate_slos(source, specs, fleet_end))
    page = next(s for s in signals if s.name == "slo_page" and s.labels["slo_id"] == tagger["id"])
    assert page.value is None and page.labels == {"slo_id": tagger["id"], "service": "legacy-tagger",
                                                  "slo": "requests-availability"}
    five_minutes = next(s for s in signals if s.name == "slo_burn_rate" and s.labels["slo_id"] == tagger["id"]
                        and s.labels["window"] == "5m")
    assert five_minutes.value is None
    assert {s.name for s in signals} == {"slo_error_ratio", "slo_burn_rate", "slo_error_budget_remaining",
                                         "slo_page", "slo_ticket"}


def test_table_output_shows_no_data_as_a_dash(fleet_end, fleet_config_path, capsys):
    assert main(["slo", "--config", str(fleet_config_path), "--at", "2026-11-23T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    tagger = next(line for line in out.splitlines() if line.startswith("legacy-tagger-requests-availability"))
    assert tagger.split()[2:6] == ["-", "-", "-", "-"] and "no data" in tagger


def test_one_cycle_folds_every_windows_sub_queries_into_few_queries_under_the_sample_budget(
        fleet_end, sim_dir, prom):
    specs = load_slo_specs(load_config(sim_dir / "monitor.yaml"))
    distinct = {query for spec in specs for window in slo_windows(spec, fleet_end).values()
                for query in sli_queries(spec, format_duration(window)).values()}
    # The first cycle plans on assumed samples per query and folds each query shape apart,
    # which tells the engine what each shape reads; the next folds on the server's figures.
    for most_queries in (len(distinct) / 2, len(distinct) / 10):
        prom.stats = QueryStats()
        evaluate_slos(prom, specs, fleet_end)
        assert 1 <= prom.stats.queries < most_queries
        assert 0 < prom.stats.max_query_samples <= prom.sample_budget


def test_small_chunks_and_a_broken_query_give_the_same_numbers(fleet_end, sim_dir, prom, tmp_path):
    specs = load_slo_specs(load_config(sim_dir / "monitor.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(textwrap.dedent("""
        version: prometheus/v1
        service: broken
        slos:
          - name: typo
            objective: 99.9
            sli:
              events:
                error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}])
                total_query: sum(rate(http_requests_total[{{.window}}]))
        """).lstrip())
    baseline = {r.spec.id: r for r in evaluate_slos(prom, specs, fleet_end)}
    chunked = evaluate_slos(prom, specs + load_spec_files([broken]), fleet_end, subqueries_per_query=3)
    for result in chunked[:-1]:
        for key, expected in baseline[result.spec.id].error_ratio.items():
            _assert_window(result.error_ratio[key], expected, rel=1e-12)
        assert result.page == baseline[result.spec.id].page
    typo = chunked[-1]
    assert set(typo.error_ratio.values()) == {None} and typo.page is None
    assert typo.problems and "parse error" in typo.problems[0]


def test_calendar_week_so_far(fleet, fleet_end, prom, tmp_path):
    spec_file = tmp_path / "weekly.yaml"
    spec_file.write_text(textwrap.dedent("""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: weekly-availability}
        spec:
          service: ranker
          indicator:
            metadata: {name: ranker-errors}
            spec:
              ratioMetric:
                bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(http_requests_total{service="ranker",code=~"5.."}[{{.window}}]))'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(http_requests_total{service="ranker"}[{{.window}}]))'}}}
          timeWindow:
            - duration: 1w
              isRolling: false
              calendar: {startTime: "2026-01-05 00:00:00", timeZone: UTC}
          budgetingMethod: Occurrences
          objectives: [{target: 0.999}]
        """).lstrip())
    [spec] = load_spec_files([spec_file])
    at = fleet_end - timedelta(hours=1)   # Sunday 23:00 of ISO week 2026-W47
    [result] = evaluate_slos(prom, [spec], at)
    bad, total = _counters(fleet, "ranker-requests-availability")
    monday = pd.Timestamp("2026-11-16T00:00:00Z")
    expected = (bad.loc[pd.Timestamp(at)] - bad.loc[monday]) / (total.loc[pd.Timestamp(at)] - total.loc[monday])
    assert result.period_key == "1w"
    # The week so far starts exactly on the history's first sample: no extrapolation.
    assert result.error_ratio["1w"] == pytest.approx(expected, rel=INSIDE_HISTORY_REL)
    assert result.error_budget_remaining == pytest.approx(1 - expected / 0.001, rel=1e-9)


def test_recorded_mode_without_rules_says_so(fleet_end, sim_dir, prom):
    specs = load_slo_specs(load_config(sim_dir / "monitor.yaml"))
    [result, *_] = evaluate_slos(prom, specs, fleet_end, mode=EvaluationMode.RECORDED)
    assert set(result.error_ratio.values()) == {None} and result.page is None
    assert any("monitor slo rules" in p for p in result.problems)
