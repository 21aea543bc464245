"""The Prometheus source against the real server: known values, no data, errors, timeouts, warnings."""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from monitor.simulate.fleet import SCORE_BUCKETS
from monitor.sources.prometheus import (
    PrometheusSource,
    PrometheusUnavailable,
    QueryError,
    QueryTimeout,
    escape_label_value,
    label_matcher,
)


def raw_increase(fleet, series, start, end) -> float:
    """The counter's true increase between two minutes of the simulated timeline."""
    return fleet.value_at(series, end) - fleet.value_at(series, start)


def test_a_counter_increase_over_an_hour_matches_the_simulated_counts(prom, fleet, fleet_end):
    at = fleet_end - timedelta(hours=3)
    series = fleet.find("http_requests_total", service="recommender", code="200")[0]
    got = prom.instant('increase(http_requests_total{service="recommender",code="200"}[1h])', at).scalar()
    true_hourly_count = raw_increase(fleet, series, at - timedelta(hours=1), at)
    # Prometheus 2.x selects samples in [at-1h, at], both ends included: with one
    # sample a minute aligned to the window, the increase is exact. Prometheus 3
    # opens the left end, sees at-59m..at and extrapolates that delta by 60/59.
    left_open = raw_increase(fleet, series, at - timedelta(minutes=59), at) * 60 / 59
    assert got == pytest.approx(true_hourly_count, rel=1e-12) or got == pytest.approx(left_open, rel=1e-9)
    assert true_hourly_count > 10_000


def test_a_counter_value_is_read_back_exactly(prom, fleet, fleet_end):
    at = fleet_end - timedelta(hours=6)
    series = fleet.find("nv_inference_count", model="ranker", version="v2")[0]
    got = prom.instant('nv_inference_count{model="ranker",version="v2"}', at).scalar()
    assert got == fleet.value_at(series, at)


def test_histogram_buckets_are_read_back_cumulative_and_exact(prom, fleet, fleet_end):
    at = fleet_end - timedelta(hours=1)
    result = prom.instant('model_prediction_score_bucket{model="ranker",version="v1"}', at)
    by_le = {s.labels["le"]: s.value for s in result.samples}
    assert set(by_le) == {*(f"{b:g}" for b in SCORE_BUCKETS), "+Inf"}
    for le, value in by_le.items():
        series = fleet.find("model_prediction_score_bucket", model="ranker", version="v1", le=le)[0]
        assert value == fleet.value_at(series, at)
    ordered = [by_le[f"{b:g}"] for b in SCORE_BUCKETS] + [by_le["+Inf"]]
    assert ordered == sorted(ordered), "cumulative buckets must be monotonic in le"


def test_a_range_query_returns_the_gauge_series(prom, fleet, fleet_end):
    start, end = fleet_end - timedelta(hours=2), fleet_end - timedelta(hours=1)
    result = prom.range('DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-1",gpu="0"}', start, end, timedelta(minutes=5))
    assert len(result.series) == 1
    series = fleet.find("DCGM_FI_DEV_GPU_UTIL", Hostname="gpu-node-1", gpu="0")[0]
    expected = [series.values[int((t - fleet.timestamps[0]) // 60)] for t in result.series[0].timestamps]
    np.testing.assert_array_equal(result.series[0].values, expected)
    assert len(result.series[0].timestamps) == 13


def test_a_missing_series_is_no_data_not_zero(prom, fleet_end):
    result = prom.instant('sum(rate(http_requests_total{service="no-such-service"}[5m]))', fleet_end)
    assert result.is_empty and result.scalar() is None and result.samples == []


def test_nan_is_no_data_not_zero(prom, fleet_end):
    # legacy-tagger has no traffic in the last 5h: its error ratio is 0/0 = NaN.
    query = ('sum(rate(http_requests_total{service="legacy-tagger",code=~"5.."}[30m]))'
             ' / sum(rate(http_requests_total{service="legacy-tagger"}[30m]))')
    result = prom.instant(query, fleet_end - timedelta(hours=1))
    assert len(result.samples) == 1 and result.samples[0].value is None
    assert result.is_empty and result.scalar() is None


def test_a_syntax_error_is_a_typed_error_with_the_servers_message(prom, fleet_end):
    with pytest.raises(QueryError) as raised:
        prom.instant("sum(rate(http_requests_total[5m])", fleet_end)
    assert raised.value.error_type == "bad_data"
    assert "parse error" in raised.value.message
    assert raised.value.query == "sum(rate(http_requests_total[5m])"
    assert prom.check_syntax("sum(rate(http_requests_total[5m])") is not None
    assert prom.check_syntax("sum(rate(http_requests_total[5m]))") is None


def test_a_stopped_server_is_unavailable_not_empty(prometheus, fleet_end):
    source = PrometheusSource(prometheus.url, timeout=5)
    prometheus.stop()
    try:
        with pytest.raises(PrometheusUnavailable) as raised:
            source.instant("up", fleet_end)
        assert "connection refused" in str(raised.value)
        results = source.instant_many(["up", "vector(1)"], fleet_end)
        assert all(isinstance(r, PrometheusUnavailable) for r in results.values())
    finally:
        prometheus.start()
    assert source.instant("vector(1)", fleet_end).scalar() == 1.0


def test_instant_many_folds_the_distinct_queries_into_one(prom, fleet_end):
    before = prom.stats.queries
    queries = ["vector(1)", "vector(2)", "vector(1)", "sum(up)", "vector(2)"]
    results = prom.instant_many(queries, fleet_end)
    assert prom.stats.queries - before == 1
    assert set(results) == {"vector(1)", "vector(2)", "sum(up)"}
    assert results["vector(1)"].scalar() == 1.0 and results["vector(2)"].scalar() == 2.0
    assert results["sum(up)"].samples == prom.instant("sum(up)", fleet_end).samples


def test_instant_many_without_folding_sends_each_distinct_query_once(prom, fleet_end):
    before = prom.stats.queries
    results = prom.instant_many(["vector(1)", "vector(2)", "vector(1)"], fleet_end, fold=1)
    assert prom.stats.queries - before == 2
    assert results["vector(2)"].scalar() == 2.0


@pytest.mark.parametrize("value", ['plain', 'quote"d', 'back\\slash', 'new\nline', 'tab\there', '}{,=~"'])
def test_escaped_label_values_round_trip_through_promql(prom, fleet_end, value):
    result = prom.instant(f'label_replace(vector(1), "x", "{escape_label_value(value)}", "", "")', fleet_end)
    assert result.samples[0].labels["x"] == value
    assert label_matcher("x", value) == f'x="{escape_label_value(value)}"'


class _StandIn(BaseHTTPRequestHandler):
    """A Prometheus-compatible API stand-in: slow, or answering with warnings."""

    delay_s = 0.0
    warnings: list[str] = []
    in_flight: list[int] = []  # [now, most at once, received in all], per stand-in
    lock: threading.Lock

    def do_POST(self):  # noqa: N802 (http.server API)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            self.in_flight[0] += 1
            self.in_flight[1] = max(self.in_flight[:2])
            self.in_flight[2] += 1
        time.sleep(self.delay_s)
        with self.lock:
            self.in_flight[0] -= 1
        body = {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"job": "x"}, "value": [0, "1"]}, {"metric": {"job": "y"}, "value": [0, "NaN"]}]}}
        if self.warnings:
            body["warnings"] = self.warnings
        payload = json.dumps(body).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    servers = []

    def start(delay_s=0.0, warnings=()):
        handler = type("Handler", (_StandIn,), {"delay_s": delay_s, "warnings": list(warnings),
                                                 "in_flight": [0, 0, 0], "lock": threading.Lock()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        start.in_flight = handler.in_flight
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_server_slower_than_the_timeout_raises_query_timeout(stand_in):
    source = PrometheusSource(stand_in(delay_s=3.0), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        source.instant("up")
    assert time.monotonic() - started < 2.9  # gave up before the server answered


def test_warnings_are_surfaced_so_partial_data_never_passes_as_complete(stand_in):
    source = PrometheusSource(stand_in(warnings=["partial response: store gateway unavailable"]), timeout=5)
    result = source.instant("up")
    assert not result.complete
    assert result.warnings == ("partial response: store gateway unavailable",)
    assert [s.value for s in result.samples] == [1.0, None]
    assert math.isclose(result.by_labels("job")[("x",)], 1.0)


def test_within_a_cycle_a_slow_server_fails_the_remaining_queries_at_once(stand_in):
    source = PrometheusSource(stand_in(delay_s=2.0), timeout=0.5)
    started = time.monotonic()
    with source.fail_fast():
        with pytest.raises(QueryTimeout):
            source.instant("up")
        results = source.instant_many([f"vector({i})" for i in range(20)], fold=1)
    # 20 more queries would have cost 20 timeouts; they were not sent.
    assert time.monotonic() - started < 5
    assert all(isinstance(r, QueryTimeout) and "not sent" in r.message for r in results.values())
    assert source.stats.skipped == 20 and source.stats.errors == 21
    # Outside the block each query is tried again.
    with pytest.raises(QueryTimeout) as raised:
        source.instant("up")
    assert "not sent" not in raised.value.message


def test_requests_in_flight_stay_within_max_concurrency_whichever_threads_send_them(stand_in):
    # The cycle's producers send their batches side by side, each with its own threads.
    source = PrometheusSource(stand_in(delay_s=0.15), timeout=5, max_concurrency=2)

    def batch(n: int) -> dict:
        return source.instant_many([f"vector({n}{i})" for i in range(4)], fold=1)

    with ThreadPoolExecutor(3) as producers:
        answers = list(producers.map(batch, range(3)))
    assert all(not isinstance(a, Exception) for batch_answers in answers for a in batch_answers.values())
    assert source.stats.queries == 12
    assert stand_in.in_flight[1] == 2


def test_a_request_waiting_for_a_free_slot_is_not_timed_out_by_the_wait(stand_in):
    # One at a time, 4 answers of 0.3 s take 1.2 s: more than the 0.5 s timeout of each.
    source = PrometheusSource(stand_in(delay_s=0.3), timeout=0.5, max_concurrency=1)
    with ThreadPoolExecutor(4) as senders:
        results = list(senders.map(lambda n: source.instant(f"vector({n})"), range(4)))
    assert len(results) == 4 and stand_in.in_flight[1] == 1


def test_queries_queued_for_a_slot_behind_one_that_timed_out_are_not_sent(stand_in):
    # Producers side by side: the first query holds the only slot and times out; the three
    # queued behind it (from other threads) are skipped, not each sent to wait out the timeout.
    source = PrometheusSource(stand_in(delay_s=2.0), timeout=0.5, max_concurrency=1)
    started = time.monotonic()
    with source.fail_fast(), ThreadPoolExecutor(4) as senders:
        outcomes = list(senders.map(lambda n: source.instant_many([f"vector({n})"])[f"vector({n})"], range(4)))
    assert all(isinstance(o, QueryTimeout) for o in outcomes), outcomes
    assert sum("not sent" in o.message for o in outcomes) == 3
    assert stand_in.in_flight[2] == 1 and source.stats.skipped == 3
    assert time.monotonic() - started < 1.5
