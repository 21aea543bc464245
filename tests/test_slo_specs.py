"""Loading Sloth and OpenSLO spec files: real-world examples load unchanged, bad files name FILE:LINE."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.slo import load_slo_specs, load_spec_files
from monitor.slo.spec import CalendarPeriod, EventsSli, RawSli, render_window
from monitor.promql_syntax import promql_problem
from monitor.validation import validate

FIXTURES = Path(__file__).parent / "fixtures" / "sloth"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_sloth_getting_started_example_loads_unchanged():
    [spec] = load_spec_files([FIXTURES / "getting-started.yml"])
    assert spec.id == "myservice-requests-availability"
    assert spec.objective == 0.999  # Sloth's percentage 99.9 as a ratio
    assert spec.period == timedelta(days=30)
    assert isinstance(spec.sli, EventsSli)
    assert render_window(spec.sli.error_query, "5m") == \
        'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[5m]))'
    assert spec.labels == {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"}
    assert spec.alert_name == "MyServiceHighErrorRate"
    assert spec.page_alert.for_ == "5m" and spec.page_alert.labels["severity"] == "pageteam"


def test_sloth_openslo_example_loads_unchanged_with_sloths_naming():
    [spec] = load_spec_files([FIXTURES / "openslo-getting-started.yml"])
    # Sloth names each OpenSLO objective <name>-<index>.
    assert spec.id == "my-service-sloth-slo-my-service-0"
    assert spec.objective == 0.999  # OpenSLO's target is already a ratio
    assert spec.period == timedelta(days=30)
    # Good events become bad = total - good, keeping event counts.
    assert render_window(spec.sli.error_query, "1h") == (
        'sum(rate(http_request_duration_seconds_count{job="myservice"}[1h])) - '
        'sum(rate(http_request_duration_seconds_count{job="myservice",code!~"(5..|429)"}[1h]))')


def test_sloth_raw_example_loads_as_a_raw_ratio():
    [spec] = load_spec_files([FIXTURES / "raw-home-wifi.yml"])
    assert spec.objective == 0.95
    assert isinstance(spec.sli, RawSli) and "{{.window}}" in spec.sli.error_ratio_query


def test_the_simulated_fleets_specs_load_with_their_periods(sim_dir):
    config = load_config(sim_dir / "monitor.yaml")
    specs = {s.id: s for s in load_slo_specs(config)}
    assert set(specs) == {f"{svc}-requests-availability" for svc in
                          ("ranker", "recommender", "fraud-detector", "search-embedder", "churn-scorer",
                           "legacy-tagger")} | {"search-embedder-requests-latency"}
    assert specs["churn-scorer-requests-availability"].period == timedelta(days=28)  # the spec's own window
    assert specs["ranker-requests-availability"].period == timedelta(days=30)        # the config's slo_period
    assert specs["search-embedder-requests-latency"].objective == 0.99


def test_period_comes_from_the_config_when_the_spec_has_none(tmp_path):
    path = _write(tmp_path, "a.yaml", """
        version: prometheus/v1
        service: svc-a
        slos:
          - name: requests-availability
            objective: 99.5
            sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
        """)
    [spec] = load_spec_files([path], default_period=timedelta(days=7))
    assert spec.period == timedelta(days=7) and spec.period_key == "7d"


def test_latency_slo_from_a_histogram_in_openslo_v1(tmp_path):
    path = _write(tmp_path, "lat.yaml", """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: requests-latency}
        spec:
          service: svc-b
          budgetingMethod: Occurrences
          indicator:
            metadata: {name: latency}
            spec:
              ratioMetric:
                counter: true
                good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(h_bucket{le="0.25"}[{{.window}}]))'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(h_count[{{.window}}]))'}}}
          timeWindow: [{duration: 4w, isRolling: true}]
          objectives: [{target: 0.99}]
        """)
    [spec] = load_spec_files([path])
    assert spec.period == timedelta(days=28) and spec.period_key == "28d"
    assert render_window(spec.sli.error_query, "5m") == \
        'sum(rate(h_count[5m])) - sum(rate(h_bucket{le="0.25"}[5m]))'


def test_openslo_v1_indicator_ref_and_calendar_month(tmp_path):
    path = _write(tmp_path, "cal.yaml", """
        apiVersion: openslo/v1
        kind: SLI
        metadata: {name: errors}
        spec:
          ratioMetric:
            bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(e[{{.window}}]))'}}}
            total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(t[{{.window}}]))'}}}
        ---
        apiVersion: openslo/v1
        kind: Service
        metadata: {name: svc-c}
        spec: {description: ignored}
        ---
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: availability}
        spec:
          service: svc-c
          indicatorRef: errors
          timeWindow:
            - duration: 1M
              isRolling: false
              calendar: {startTime: "2026-01-01 00:00:00", timeZone: UTC}
          budgetingMethod: Occurrences
          objectives: [{targetPercent: 99.5}]
        """)
    [spec] = load_spec_files([path])
    assert spec.objective == pytest.approx(0.995)
    assert isinstance(spec.period, CalendarPeriod) and spec.period_key == "1M"
    at = datetime(2026, 2, 10, 12, tzinfo=timezone.utc)
    assert spec.period_window(at) == timedelta(days=9, hours=12)   # February so far
    assert spec.period_length(at) == timedelta(days=28)            # February's own length


OPENSLO_V1 = """
    apiVersion: openslo/v1
    kind: SLO
    metadata: {{name: a}}
    spec:
      service: svc
      objectives: [{{target: 0.99}}]
      indicator:
        metadata: {{name: a}}
        spec:
          ratioMetric:
            {extra}
            good: {{metricSource: {{type: Prometheus, spec: {{query: '{good}'}}}}}}
            total: {{metricSource: {{type: Prometheus, spec: {{query: '{total}'}}}}}}
    """

OPENSLO_THRESHOLD = """
    apiVersion: openslo/v1
    kind: SLO
    metadata: {{name: a}}
    spec:
      service: svc
      objectives:
        - {objective}
      indicator:
        metadata: {{name: a}}
        spec:
          thresholdMetric: {{metricSource: {{type: Prometheus, spec: {{query: '{query}'}}}}}}
    """

PYRRA = """
    apiVersion: pyrra.dev/v1alpha1
    kind: ServiceLevelObjective
    metadata: {{name: a}}
    spec:
      target: {target}
      window: 28d
      indicator:
        {indicator}
    """


@pytest.mark.parametrize("body, line, message", [
    pytest.param("""
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: 0.999
            sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
        """, 5, "objective: must be a percentage", id="a Sloth objective given as a ratio is caught"),
    pytest.param("""
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: 99.9
            sli:
              events:
                error_query: 'sum(rate(e[5m]))'
                total_query: 'sum(rate(t[{{.window}}]))'
        """, 8, "{{.window}}", id="a query without the window variable names its line"),
    pytest.param("""
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: 99.9
            sli: {plugin: {id: sloth-common/availability}}
        """, 6, "SLI plugins", id="an SLI plugin is refused with a reason"),
    pytest.param("""
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: 99.9
            slee: {}
        """, 6, "unknown field 'slos[0].slee'", id="an unknown key is an error at its line"),
    pytest.param("""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: a}
        spec:
          service: svc
          budgetingMethod: RatioTimeslices
          indicatorRef: x
          objectives: [{target: 0.99}]
        """, 6, "RatioTimeslices budgeting not supported", id="ratio time-slice budgets are refused by name"),
    pytest.param("""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: a}
        spec:
          service: svc
          indicatorRef: nowhere
          objectives: [{target: 0.99}]
        """, 7, "indicatorRef 'nowhere'", id="an indicatorRef to an unknown SLI names it"),
    pytest.param("""
        kind: Thing
        """, 1, "not an SLO spec", id="a document of another format says what was expected"),
    pytest.param("""
        - apiVersion: openslo/v1
          kind: Service
          metadata: {name: svc}
          spec: {}
        - just text
        """, 5, "expected a mapping", id="a list item that is no object is refused at its line"),
    # Reported at the objective: the indicator may be another document's (indicatorRef).
    pytest.param(OPENSLO_V1.format(good="sum(rate(ok[5m])) / 2", total="sum(all)", extra=""), 6,
                 "monitor applies the rate window only to a counter selector",
                 id="an OpenSLO query without the window that is no counter selector is refused"),
    pytest.param(OPENSLO_V1.format(good="sum(ok)", total="sum(all)", extra="counter: false"), 6,
                 "not a counter (counter: false)", id="an OpenSLO gauge without the window is refused"),
    pytest.param(OPENSLO_V1.format(good="sum(ok)", total="sum(all offset 1h)", extra=""), 6,
                 "ratioMetric.total: the query uses offset or @, which cannot take the rate window",
                 id="an OpenSLO counter with offset cannot take the window"),
    pytest.param("""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: a}
        spec:
          service: svc
          budgetingMethod: Timeslices
          objectives: [{target: 0.99}]
          indicator:
            metadata: {name: a}
            spec:
              ratioMetric:
                good: {metricSource: {type: Prometheus, spec: {query: 'sum(ok)'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'sum(all)'}}}
        """, 7, "Timeslices budgeting needs timeSliceTarget and timeSliceWindow",
                 id="time slices without a slice window are refused"),
    pytest.param(OPENSLO_THRESHOLD.format(query='lat_bucket{le="0.5"}',
                                          objective="{target: 0.99, op: lte, value: 0.5}"),
                 7, "must not match le", id="a histogram threshold selector that picks the bucket itself is refused"),
    pytest.param(OPENSLO_THRESHOLD.format(query="lat_bucket", objective="{target: 0.99}"), 7,
                 "a threshold metric needs op", id="a threshold metric without op and value is refused"),
    pytest.param(OPENSLO_THRESHOLD.format(query="sum(rate(lat_bucket[{{.window}}]))",
                                          objective="{target: 0.99, op: lt, value: 1}"), 7,
                 "must not use {{.window}}", id="a threshold query with the window variable is refused"),
    pytest.param("""
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: a}
        spec:
          service: svc
          objectives: [{target: 0.99}]
          indicator:
            metadata: {name: a}
            spec:
              ratioMetric:
                good: {metricSource: {type: Datadog, spec: {query: 'sum:ok{*}'}}}
                total: {metricSource: {type: Datadog, spec: {query: 'sum:all{*}'}}}
        """, 11, "ratioMetric: Datadog metric source not supported", id="a Datadog source is refused by name"),
    pytest.param(PYRRA.format(target='"99"', indicator="{ratio: {errors: {metric: e}, total: {metric: t}}, "
                                                       "bool_gauge: {metric: up}}"),
                 8, "needs exactly one indicator: ratio, latency, latencyNative, bool_gauge (got ratio, bool_gauge)",
                 id="a Pyrra SLO with two indicators is refused"),
    pytest.param(PYRRA.format(target='"99"', indicator="histogram: {metric: x}"), 8,
                 "unknown field 'spec.indicator.histogram'", id="an unknown Pyrra indicator kind is refused by name"),
    pytest.param(PYRRA.format(target="0.99", indicator="ratio: {errors: {metric: e}, total: {metric: t}}"), 5,
                 "a ratio? Pyrra targets are percentages", id="a Pyrra target given as a ratio is caught"),
    pytest.param(PYRRA.format(target='"99"', indicator="latency: {success: {metric: 'x_bucket{a=\"1\"}'}, "
                                                       "total: {metric: x_count}}"), 8,
                 "must have an le label matcher", id="a Pyrra latency success without le is refused"),
    pytest.param(PYRRA.format(target='"99"', indicator="ratio: {errors: {metric: 'rate(e[5m])'}, total: {metric: t}}"),
                 8, "must be a series selector", id="a Pyrra metric that is no selector is refused"),
    pytest.param("""
        apiVersion: sloth.slok.dev/v1
        kind: PrometheusServiceLevel
        metadata: {name: a}
        spec:
          service: svc
          slos:
            - name: a
              objective: 99.9
              sli: {events: {errorQuery: 'sum(rate(e[5m]))', totalQuery: 'sum(rate(t[{{.window}}]))'}}
        """, 9, "errorQuery: must use the {{.window}} template variable",
                 id="a Sloth CRD error names the field as the CRD spells it"),
    pytest.param("""
        apiVersion: sloth.slok.dev/v1
        kind: PrometheusServiceLevel
        spec:
          service: svc
          slos: [{name: a, objective: 0.999, sli: {raw: {errorRatioQuery: 'e[{{.window}}]'}}}]
        """, 5, "objective: must be a percentage", id="a Sloth CRD objective given as a ratio is caught"),
    pytest.param("""
        apiVersion: sloth.slok.dev/v1
        kind: AlertWindows
        spec: {sloPeriod: 30d}
        """, 1, "Sloth's AlertWindows (custom page/ticket alert windows) are not supported",
                 id="Sloth's custom alert windows get their own message"),
])
def test_invalid_specs_name_file_line_and_field(tmp_path, body, line, message):
    path = _write(tmp_path, "bad.yaml", body)
    with pytest.raises(ConfigError) as caught:
        load_spec_files([path])
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{path}:{line}:") and message in p for p in problems), problems


def test_duplicate_slo_ids_across_files_are_an_error(tmp_path):
    body = """
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: 99.9
            sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}
        """
    first, second = _write(tmp_path, "one.yaml", body), _write(tmp_path, "two.yaml", body)
    with pytest.raises(ConfigError, match=r"two.yaml:4: duplicate SLO id 'svc-a' \(first defined at .*one.yaml:4\)"):
        load_spec_files([first, second])


def test_monitor_check_counts_slos_and_reports_spec_problems(sim_dir, tmp_path):
    report = validate(str(sim_dir / "monitor.yaml"))
    assert report.counts["SLOs"] == 7
    bad = _write(tmp_path, "slos/bad.yaml", "version: prometheus/v1\nservice: svc\nslos: [{name: a}]\n") \
        if (tmp_path / "slos").mkdir() is None else None
    config = _write(tmp_path, "monitor.yaml", "slos: [slos/*.yaml]\n")
    report = validate(str(config))
    assert any(p.file == str(bad) and p.line == 3 and "missing required field" in p.message for p in report.problems)


# -- YAML scalars where text is wanted, as Go's decoding gives them ------------------

def test_string_fields_take_yaml_scalars_as_the_text_written(tmp_path):
    path = _write(tmp_path, "a.yaml", """
        version: prometheus/v1
        service: 2024
        labels: {generated: true, since: 2022-12-30T00:00:00Z, le: 0.250, on: yes, big: 1e3}
        slos:
          - name: 404
            objective: 99.9
            sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}
        """)
    [spec] = load_spec_files([path])
    assert spec.id == "2024-404"
    assert spec.labels == {"generated": "true", "since": "2022-12-30T00:00:00Z", "le": "0.250", "on": "yes",
                           "big": "1e3"}


def test_fields_that_are_not_text_still_refuse_text(tmp_path):
    path = _write(tmp_path, "a.yaml", """
        version: prometheus/v1
        service: svc
        slos:
          - name: a
            objective: "99.9"
            sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}
        """)
    with pytest.raises(ConfigError, match=r"a.yaml:5: slos\[0\].objective: expected a number, got '99.9'"):
        load_spec_files([path])


def test_an_unquoted_openslo_start_time_is_read_as_written(tmp_path):
    path = _write(tmp_path, "a.yaml", """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: a}
        spec:
          service: svc
          timeWindow: [{duration: 1M, isRolling: false, calendar: {startTime: 2022-12-30T00:00:00Z}}]
          objectives: [{target: 0.99}]
          indicator:
            metadata: {name: a}
            spec:
              ratioMetric:
                good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok[{{.window}}]))'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all[{{.window}}]))'}}}
        """)
    [spec] = load_spec_files([path])
    assert spec.period == CalendarPeriod(1, "M", datetime(2022, 12, 30, tzinfo=timezone.utc))


# -- counters without {{.window}} ----------------------------------------------------

@pytest.mark.parametrize("query, windowed", [
    pytest.param('http_requests_total{code="500"}', 'rate(http_requests_total{code="500"}[{{.window}}])',
                 id="a bare counter selector gets its rate"),
    pytest.param("sum(http_requests_total)", "sum(rate(http_requests_total{}[{{.window}}]))",
                 id="the rate goes inside one sum"),
    pytest.param("sum by (route) (x)", "sum by (route) (rate(x{}[{{.window}}]))",
                 id="a sum by keeps its grouping"),
])
def test_a_counter_query_without_the_window_gets_its_rate(query, windowed):
    from monitor.slo.counter_query import windowed_rate
    assert windowed_rate(query) == windowed
    assert promql_problem(render_window(windowed, "5m")) is None


@pytest.mark.parametrize("query, message", [
    pytest.param("sum(a) / sum(b)", "has no {{.window}}", id="a ratio has no single place for the window"),
    pytest.param("max(x)", "has no {{.window}}", id="an aggregation other than sum is no counter total"),
    pytest.param("x[5m]", "has no {{.window}}", id="a range already chose its own window"),
    pytest.param("x @ 100", "uses offset or @", id="a pinned selector cannot move with the window"),
    pytest.param("sum(", "is not valid PromQL", id="broken PromQL says so"),
])
def test_a_query_that_is_no_counter_selector_is_refused(query, message):
    from monitor.slo.counter_query import NotACounterSelector, windowed_rate
    with pytest.raises(NotACounterSelector, match=re.escape(message)):
        windowed_rate(query)


# -- histogram thresholds ------------------------------------------------------------

def test_a_latency_threshold_becomes_the_bucket_at_that_boundary():
    from monitor.slo.histogram_threshold import BucketThresholdSli, Comparison, threshold_sli
    sli = threshold_sli('rpc_seconds_bucket{job="api"}', Comparison.LT, 0.25)
    assert sli == BucketThresholdSli('sum(rate(rpc_seconds_count{job="api"}[{{.window}}])) - '
                                     'sum(rate(rpc_seconds_bucket{job="api",le="0.25"}[{{.window}}]))',
                                     'rate(rpc_seconds_count{job="api"}[{{.window}}])',
                                     histogram='rpc_seconds_bucket{job="api"}', threshold=0.25)
    assert isinstance(sli, EventsSli)  # evaluated, recorded and alerted on as any events SLI
    # "Slower than" counts the bucket as the bad events; a whole number matches both spellings of `le`.
    slow = threshold_sli("rpc_seconds_bucket", Comparison.GT, 2)
    assert slow.error_query == 'rate(rpc_seconds_bucket{le=~"2|2\\\\.0"}[{{.window}}])'
    for query in (slow.error_query, slow.total_query):
        assert promql_problem(render_window(query, "5m")) is None


@pytest.mark.parametrize("query, threshold, message", [
    pytest.param("rpc_seconds_count", 0.25, "needs a <name>_bucket selector", id="not a bucket series"),
    pytest.param("rate(rpc_seconds_bucket[5m])", 0.25, "needs a <name>_bucket selector", id="not a selector"),
    pytest.param("rpc_seconds_bucket", float("nan"), "not a finite bucket boundary", id="a NaN threshold"),
])
def test_a_threshold_that_cannot_be_a_bucket_is_refused(query, threshold, message):
    from monitor.slo.histogram_threshold import Comparison, ThresholdError, threshold_sli
    with pytest.raises(ThresholdError, match=re.escape(message)):
        threshold_sli(query, Comparison.LTE, threshold)


# -- preset models' default SLOs -------------------------------------------------------

def test_preset_models_get_default_slos_unless_they_opt_out(tmp_path):
    config = _write(tmp_path, "monitor.yaml", """
        models:
          - name: fraud
            preset: triton
          - name: llama
            preset: vllm
            default_slos:
              latency: {threshold: 500ms}
          - name: iris
            preset: seldon
            default_slos: {availability: 0.995, latency: {threshold: 1s, objective: 0.95}}
          - name: quiet
            preset: kserve
            default_slos: {enabled: false, latency: {threshold: 1s}}
          - name: plain
            inferences: 'x_total{model="plain"}'
        """)
    specs = {spec.id: spec for spec in load_slo_specs(load_config(config))}
    assert set(specs) == {"fraud-availability", "llama-availability", "llama-latency", "iris-availability",
                          "iris-latency"}
    assert (specs["fraud-availability"].objective, specs["fraud-availability"].period) == (0.999, timedelta(days=30))
    assert specs["fraud-availability"].source == f"{config}:2"
    assert (specs["iris-availability"].objective, specs["iris-latency"].objective) == (0.995, 0.95)
    assert specs["iris-latency"].source == f"{config}:10"  # its default_slos line
    latency = specs["llama-latency"].sli
    assert latency.error_query == ('sum(rate(vllm:e2e_request_latency_seconds_count{model_name="llama"}[{{.window}}]))'
                                   ' - sum(rate(vllm:e2e_request_latency_seconds_bucket{model_name="llama",le="0.5"}'
                                   '[{{.window}}]))')
    # Seldon's failures are prediction calls whose code is neither 2xx (REST) nor OK (gRPC).
    availability = specs["iris-availability"].sli
    assert 'code!~"2..|OK"' in availability.error_query and 'code=~"2..|OK"' in availability.total_query
    # vLLM's are requests that finished in abort or error.
    availability = specs["llama-availability"].sli
    assert 'finished_reason=~"abort|error"' in availability.error_query
    assert 'finished_reason!~"abort|error"' in availability.total_query
    report = validate(str(config))
    assert report.ok, report.problems
    assert (report.counts["SLOs"], report.counts["of them preset defaults"]) == (5, 5)
    assert report.counts["SLO queries syntax-checked"] == 10


@pytest.mark.parametrize("model, line, message", [
    pytest.param("{name: m, preset: kserve, default_slos: {availability: 0.99}}", 2,
                 "the kserve preset counts no failed requests, so there is no availability SLO",
                 id="availability where the server counts no failures is refused"),
    pytest.param("{name: m, preset: triton, default_slos: {latency: {threshold: 250ms}}}", 2,
                 "the triton preset exports no latency histogram",
                 id="latency where the server exports no histogram is refused"),
    pytest.param("{name: m, inferences: 'x{a=\"1\"}', default_slos: {availability: 0.99}}", 2,
                 "default SLOs come from a preset's series", id="default SLOs without a preset are refused"),
    pytest.param("{name: m, preset: triton, default_slos: {availability: 99.9}}", 2,
                 "a percentage? objectives here are ratios", id="an objective given as a percentage is caught"),
    pytest.param("{name: m, preset: kserve, default_slos: {latency: {threshold: 0s}}}", 2,
                 "threshold: must be positive", id="a zero latency threshold is refused"),
])
def test_default_slo_settings_that_cannot_hold_name_the_model_line(tmp_path, model, line, message):
    config = _write(tmp_path, "monitor.yaml", f"models:\n  - {model}\n")
    report = validate(str(config))
    assert any(p.file == str(config) and p.line == line and message in p.message for p in report.problems), \
        report.problems


def test_a_default_slo_whose_id_a_spec_file_already_uses_is_an_error(tmp_path):
    (tmp_path / "slos").mkdir()
    _write(tmp_path, "slos/a.yaml", """
        version: prometheus/v1
        service: fraud
        slos: [{name: availability, objective: 99.9, sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}}]
        """)
    config = _write(tmp_path, "monitor.yaml", "slos: [slos/*.yaml]\nmodels:\n  - {name: fraud, preset: triton}\n")
    with pytest.raises(ConfigError, match=r"monitor.yaml:3: default SLO id 'fraud-availability' is also defined at "
                                          r".*a.yaml:3: rename one, or set default_slos: \{enabled: false\}"):
        load_slo_specs(load_config(config))


def test_a_kubernetes_list_of_slo_resources_loads_each_item(tmp_path):
    # What `kubectl get servicelevelobjectives,prometheusservicelevels -o yaml` prints.
    path = _write(tmp_path, "export.yaml", """
        apiVersion: v1
        kind: List
        metadata: {resourceVersion: ""}
        items:
          - apiVersion: pyrra.dev/v1alpha1
            kind: ServiceLevelObjective
            metadata: {name: api-errors, namespace: shop, uid: 6f1c, resourceVersion: "42", generation: 1,
                       creationTimestamp: 2026-11-01T10:00:00Z, labels: {pyrra.dev/team: checkout}}
            spec:
              target: "99.5"
              window: 2w
              indicator: {ratio: {errors: {metric: 'http_requests_total{code=~"5.."}'}, total: {metric: http_requests_total}}}
            status: {type: PrometheusRule}
          - apiVersion: sloth.slok.dev/v1
            kind: PrometheusServiceLevel
            metadata: {name: search, namespace: shop}
            spec:
              service: search
              slos: [{name: availability, objective: 99.9, sli: {raw: {errorRatioQuery: 'e[{{.window}}]'}}}]
            status: {processedSLOs: 1, promOpRulesGenerated: true}
        """)
    pyrra, sloth = load_spec_files([path])
    assert (pyrra.id, pyrra.objective, pyrra.period) == ("shop-api-errors", 0.995, timedelta(weeks=2))
    assert pyrra.labels == {"namespace": "shop", "team": "checkout"}
    assert (sloth.id, sloth.objective, sloth.source) == ("search-availability", 0.999, f"{path}:19")


def test_time_slices_of_a_latency_threshold_compare_slices_as_at_least_the_target(tmp_path):
    path = _write(tmp_path, "a.yaml", """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: latency}
        spec:
          service: svc
          budgetingMethod: Timeslices
          objectives: [{target: 0.99, op: lte, value: 0.25, timeSliceTarget: 0.95, timeSliceWindow: 5m}]
          indicator:
            metadata: {name: latency}
            spec:
              thresholdMetric: {metricSource: {type: Prometheus, spec: {query: 'rpc_seconds_bucket'}}}
        """)
    [spec] = load_spec_files([path])
    # `op: lte` picks the fast bucket; a slice is good when at least 95% of its requests were fast.
    total, fast = "sum(rate(rpc_seconds_count{}[5m]))", 'sum(rate(rpc_seconds_bucket{le="0.25"}[5m]))'
    assert spec.sli == RawSli(f"1 - avg_over_time(((1 - sum({total} - {fast}) / ({total} > 0)) >= bool 0.95)"
                              f"[{{{{.window}}}}:5m])")
    assert promql_problem(render_window(spec.sli.error_ratio_query, "1d")) is None


def test_openslo_v1_indicator_group_by_makes_a_grouped_slo(tmp_path):
    """OpenSLO has no grouping of its own: monitor's `groupBy` on the indicator, as `group_by` in Sloth files."""
    path = _write(tmp_path, "grouped.yaml", """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: availability}
        spec:
          service: gateway
          budgetingMethod: Occurrences
          indicator:
            metadata: {name: errors}
            spec:
              groupBy: [endpoint]
              maxGroups: 20
              ratioMetric:
                counter: true
                bad: {metricSource: {type: Prometheus, spec: {query: 'rate(req_total{code=~"5.."}[{{.window}}])'}}}
                total: {metricSource: {type: Prometheus, spec: {query: 'rate(req_total[{{.window}}])'}}}
          timeWindow: [{duration: 28d, isRolling: true}]
          objectives: [{target: 0.999}]
        """)
    [spec] = load_spec_files([path])
    assert spec.group_by == ("endpoint",) and spec.max_groups == 20
    bad = _write(tmp_path, "bad-group.yaml", (tmp_path / "grouped.yaml").read_text()
                 .replace("groupBy: [endpoint]", "groupBy: [slo_id]"))
    with pytest.raises(ConfigError) as error:
        load_spec_files([bad])
    assert "bad-group.yaml:" in str(error.value) and "groupBy" in str(error.value)
