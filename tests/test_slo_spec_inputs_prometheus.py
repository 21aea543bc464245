"""The new spec inputs evaluated against the real Prometheus, checked against pandas over raw counters.

Counters without `{{.window}}` (OpenSLO, Pyrra), a histogram threshold (OpenSLO
`thresholdMetric`) and a preset model's default SLOs, each over the simulated fleet:
every window inside the history must equal the ratio counted from the simulator's own
cumulative series (windows start on a sample, so `rate()` does not extrapolate: rel 1e-9,
as tests/test_slo_prometheus.py explains).
"""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pandas as pd
import pytest
import yaml

from monitor.config import load_config
from monitor.slo import evaluate_slos, load_slo_specs, load_spec_files
from monitor.slo.burn_rate import WINDOWS
from monitor.slo.histogram_threshold import ThresholdError, bucket_boundaries_query, check_threshold_is_boundary
from tests.hostile import run_in_process

pytestmark = pytest.mark.prometheus

INSIDE_HISTORY_REL = 1e-9
MIN_EVENTS = 10  # monitor.slo.evaluate's default: fewer events in a window is no data


def _minute_series(fleet, name, **labels) -> pd.Series:
    found = fleet.find(name, **labels)
    assert found, (name, labels)
    index = pd.to_datetime(fleet.timestamps, unit="s", utc=True)
    # A series not yet exported (NaN) has counted nothing.
    return pd.Series(sum(pd.Series(s.values).fillna(0).to_numpy() for s in found), index=index)


def _expected_ratios(bad: pd.Series, total: pd.Series, at) -> dict[str, float | None]:
    at_ts = pd.Timestamp(at)
    out = {}
    for key, window in WINDOWS.items():
        n_total = total.loc[at_ts] - total.loc[at_ts - window]
        n_bad = bad.loc[at_ts] - bad.loc[at_ts - window]
        out[key] = None if n_total < MIN_EVENTS else n_bad / n_total
    return out


def _assert_ratios(result, expected):
    for key in WINDOWS:
        if expected[key] is None:
            assert result.error_ratio[key] is None, key
        else:
            assert result.error_ratio[key] == pytest.approx(expected[key], rel=INSIDE_HISTORY_REL, abs=1e-12), key
    assert not result.problems


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_openslo_counters_without_window_are_rated_by_monitor(fleet, fleet_end, prom, tmp_path):
    path = _write(tmp_path, "counters.yaml", """
        - apiVersion: openslo/v1
          kind: SLO
          metadata: {name: availability}
          spec:
            service: recommender
            budgetingMethod: Occurrences
            objectives: [{target: 0.999}]
            indicator:
              metadata: {name: recommender-availability}
              spec:
                ratioMetric:
                  counter: true
                  good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="recommender",code!~"5.."})'}}}
                  total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="recommender"})'}}}
        """)
    [spec] = load_spec_files([path])
    at = fleet_end - timedelta(hours=19, minutes=30)  # half an hour into the 6% error spike
    [result] = evaluate_slos(prom, [spec], at)
    bad = _minute_series(fleet, "http_requests_total", service="recommender", code="500")
    expected = _expected_ratios(bad, _minute_series(fleet, "http_requests_total", service="recommender"), at)
    assert expected["5m"] > 0.03  # the spike is in the window
    _assert_ratios(result, expected)


def test_pyrra_ratio_indicator_over_the_fleets_counters(fleet, fleet_end, prom, tmp_path):
    path = _write(tmp_path, "pyrra.yaml", """
        apiVersion: pyrra.dev/v1alpha1
        kind: ServiceLevelObjective
        metadata: {name: recommender-errors, namespace: shop}
        spec:
          target: "99.9"
          window: 7d
          indicator:
            ratio:
              errors: {metric: 'http_requests_total{service="recommender",code="500"}'}
              total: {metric: 'http_requests_total{service="recommender"}'}
        """)
    [spec] = load_spec_files([path])
    at = fleet_end - timedelta(hours=19, minutes=30)
    [result] = evaluate_slos(prom, [spec], at)
    bad = _minute_series(fleet, "http_requests_total", service="recommender", code="500")
    _assert_ratios(result, _expected_ratios(bad, _minute_series(fleet, "http_requests_total",
                                                                service="recommender"), at))


@pytest.mark.parametrize("threshold, le", [pytest.param(0.25, "0.25", id="a fractional boundary"),
                                           pytest.param(1, "1.0", id="a whole-number boundary")])
def test_openslo_threshold_metric_reads_the_histogram_bucket(fleet, fleet_end, prom, tmp_path, threshold, le):
    query = 'http_request_duration_seconds_bucket{service="search-embedder"}'
    path = _write(tmp_path, "latency.yaml", f"""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {{name: latency}}
        spec:
          service: search-embedder
          budgetingMethod: Occurrences
          objectives: [{{target: 0.99, op: lte, value: {threshold}}}]
          indicator:
            metadata: {{name: search-latency}}
            spec:
              thresholdMetric: {{metricSource: {{type: Prometheus, spec: {{query: '{query}'}}}}}}
        """)
    [spec] = load_spec_files([path])
    at = fleet_end - timedelta(hours=9)  # inside the latency regression
    [result] = evaluate_slos(prom, [spec], at)
    total = _minute_series(fleet, "http_request_duration_seconds_count", service="search-embedder")
    fast = _minute_series(fleet, "http_request_duration_seconds_bucket", service="search-embedder", le=le)
    expected = _expected_ratios(total - fast, total, at)
    assert expected["1h"] > 0.01
    _assert_ratios(result, expected)

    # With Prometheus reachable, the threshold is checked against the real bucket boundaries.
    boundaries = [s.labels["le"] for s in prom.instant(bucket_boundaries_query(query), at).samples]
    check_threshold_is_boundary(threshold, boundaries, query)
    with pytest.raises(ThresholdError, match=r"threshold 0.3 is not a bucket boundary of "
                                             r"http_request_duration_seconds \(boundaries: 0.025, 0.05, 0.1, "
                                             r"0.25, 0.5, 1, 2.5\)"):
        check_threshold_is_boundary(0.3, boundaries, query)
    with pytest.raises(ThresholdError, match="no histogram series match"):
        check_threshold_is_boundary(0.25, [], 'nope_bucket{service="x"}')


def test_a_preset_models_default_availability_slo_matches_pandas(fleet, fleet_end, fleet_config_path, prom,
                                                                 capsys):
    config = yaml.safe_load(fleet_config_path.read_text())
    [fraud] = [m for m in config["models"] if m["name"] == "fraud-detector"]
    assert fraud["preset"] == "triton"
    fraud["default_slos"] = {"availability": 0.995}
    # Beside the fleet's own config, so its relative paths (slos/, predictions/) resolve.
    path = fleet_config_path.parent / "monitor-preset-slos.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    specs = {spec.id: spec for spec in load_slo_specs(load_config(path))}
    spec = specs["fraud-detector-availability"]
    assert spec.objective == 0.995 and spec.period == timedelta(days=30)
    assert "fraud-detector-latency" not in specs  # Triton exports no latency histogram

    at = fleet_end - timedelta(hours=10)  # inside the 0.4% slow burn
    [result] = evaluate_slos(prom, [spec], at)
    failed = _minute_series(fleet, "nv_inference_request_failure", model="fraud-detector")
    succeeded = _minute_series(fleet, "nv_inference_request_success", model="fraud-detector")
    expected = _expected_ratios(failed, failed + succeeded, at)
    assert expected["6h"] > 0.002
    _assert_ratios(result, expected)

    outcome = run_in_process(["check", "--config", path], capsys)
    assert outcome.code == 0, outcome.stderr
    assert f"{len(specs)} SLOs, 1 of them preset defaults" in outcome.stdout


THRESHOLD = 45


def test_openslo_gauge_threshold_counts_samples_on_a_minute_grid(fleet, fleet_end, prom, tmp_path):
    namespace = fleet.find("DCGM_FI_DEV_GPU_UTIL")[0].labels["namespace"]
    path = _write(tmp_path, "gauge.yaml", f"""
        apiVersion: openslo/v1alpha
        kind: SLO
        metadata: {{name: gpu-busy}}
        spec:
          service: gpus
          indicator:
            thresholdMetric: {{source: Prometheus, queryType: query, query: 'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}'}}
          objectives:
            - {{displayName: busy, op: gte, value: {THRESHOLD}, target: 0.9}}
        """)
    [spec] = load_spec_files([path])
    at = fleet_end - timedelta(hours=3)  # inside the last 48h, written one sample a minute
    [result] = evaluate_slos(prom, [spec], at)
    index = pd.to_datetime(fleet.timestamps, unit="s", utc=True)
    samples = pd.DataFrame({i: s.values for i, s in enumerate(fleet.find("DCGM_FI_DEV_GPU_UTIL", namespace=namespace))},
                           index=index)
    at_ts = pd.Timestamp(at)
    for key, window in WINDOWS.items():
        if window > timedelta(hours=24):
            continue  # older history is written every 5 minutes: the 1m grid repeats samples there
        # The subquery's steps are the minutes in [at - window, at] (Prometheus 2, the test server,
        # closes ranges on the left; Prometheus 3 opens them); each GPU's sample there is an occurrence.
        inside = samples[(samples.index >= at_ts - window) & (samples.index <= at_ts)]
        expected = 1 - (inside >= THRESHOLD).to_numpy().sum() / inside.size
        assert result.error_ratio[key] == pytest.approx(expected, rel=INSIDE_HISTORY_REL, abs=1e-12), key
    assert 0 < result.error_ratio["1h"] < 1 and 0 < result.error_ratio["1d"] < 1


def test_openslo_time_slices_count_the_share_of_bad_slices(fleet, fleet_end, prom, tmp_path):
    path = _write(tmp_path, "slices.yaml", """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: slices}
        spec:
          service: recommender
          budgetingMethod: Timeslices
          objectives: [{target: 0.99, timeSliceTarget: 0.97, timeSliceWindow: 5m}]
          indicator:
            metadata: {name: recommender-slices}
            spec:
              ratioMetric:
                counter: true
                good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="recommender",code!="500"})'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{service="recommender"})'}}}
        """)
    [spec] = load_spec_files([path])
    at = fleet_end - timedelta(hours=19, minutes=30)  # half an hour into the 6% error spike
    [result] = evaluate_slos(prom, [spec], at)
    bad = _minute_series(fleet, "http_requests_total", service="recommender", code="500")
    total = _minute_series(fleet, "http_requests_total", service="recommender")
    slice_ = pd.Timedelta(minutes=5)
    at_ts = pd.Timestamp(at)
    for key, window in WINDOWS.items():
        if window > timedelta(days=1):
            continue  # older history is written every 5 minutes; 1m-exact slices need the fine tail
        # Subquery steps are the multiples of 5m in [at - window, at] (Prometheus 2 closes the left end);
        # each slice is the 5m up to its step, good when its good ratio is at least 0.97.
        steps = [t for t in pd.date_range(at_ts - window, at_ts, freq="1min") if t.value % slice_.value == 0]
        good = []
        for t in steps:
            n_total, n_bad = total[t] - total[t - slice_], bad[t] - bad[t - slice_]
            if n_total > 0:
                good.append(1 - n_bad / n_total >= 0.97)
        expected = 1 - sum(good) / len(good)
        assert result.error_ratio[key] == pytest.approx(expected, rel=INSIDE_HISTORY_REL, abs=1e-12), key
    assert result.error_ratio["30m"] > 0.5 and 0 < result.error_ratio["1d"] < 0.5


@pytest.mark.parametrize("threshold, code", [pytest.param(0.25, 0, id="a bucket boundary is accepted"),
                                             pytest.param(0.3, 1, id="a threshold between buckets is refused")])
def test_monitor_slo_checks_a_threshold_against_the_servers_buckets(prometheus, fleet_end, tmp_path, capsys,
                                                                     threshold, code):
    path = _write(tmp_path, "latency.yaml", f"""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {{name: latency}}
        spec:
          service: search-embedder
          objectives:
            - {{target: 0.99, op: lt, value: {threshold}}}
          indicator:
            metadata: {{name: search-latency}}
            spec:
              thresholdMetric:
                metricSource: {{type: Prometheus, spec: {{query: 'http_request_duration_seconds_bucket{{service="search-embedder"}}'}}}}
        """)
    outcome = run_in_process(["slo", "--spec", path, "--prometheus", prometheus.url,
                              "--at", fleet_end.isoformat()], capsys)
    assert outcome.code == code, outcome.stderr
    assert "search-embedder-latency" in outcome.stdout  # the figures are printed either way
    if code:
        assert outcome.stderr == (f"{path}:7: SLO 'search-embedder-latency': threshold 0.3 is not a bucket boundary of "
                                  f"http_request_duration_seconds (boundaries: 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)\n")
    else:
        assert outcome.stderr == ""
