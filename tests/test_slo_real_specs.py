"""The Sloth, OpenSLO and Pyrra repositories' own example specs, unchanged, through monitor.

Every file under tests/fixtures/{sloth/examples,openslo,pyrra} (see each README for
its source, commit and licence) is listed here once: the SLO ids it loads as, or the
FILE:LINE problems it is refused with, each naming the unsupported feature. A new
fixture that is in neither table fails the first test.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from monitor.errors import ConfigError
from monitor.simulate.local_prometheus import find_binary
from monitor.slo import load_spec_files
from monitor.slo.spec import CalendarPeriod, EventsSli, RawSli, render_window
from tests.hostile import run_in_process

FIXTURES = Path(__file__).parent / "fixtures"
SLOTH = "sloth/examples/"

LOADS: dict[str, list[str]] = {
    SLOTH + "contrib-denominator-corrected.yaml": ["svc01-slo1"],
    SLOTH + "contrib-slo-plugins.yml": ["myservice-requests-availability-contrib-plugin-info-labels-v1",
                                        "myservice-requests-availability-contrib-plugin-rule-intervals-v1"],
    SLOTH + "getting-started.yml": ["myservice-requests-availability"],
    SLOTH + "home-wifi.yml": ["home-wifi-good-wifi-client-satisfaction", "home-wifi-risk-wifi-client-satisfaction"],
    SLOTH + "k8s-getting-started.yml": ["myservice-requests-availability"],
    SLOTH + "k8s-home-wifi.yml": ["home-wifi-good-wifi-client-satisfaction",
                                  "home-wifi-risk-wifi-client-satisfaction"],
    SLOTH + "k8s-multifile.yml": ["myservice-requests-availability", "myservice2-requests-availability"],
    SLOTH + "kubernetes-apiserver.yml": ["k8s-apiserver-requests-availability", "k8s-apiserver-requests-latency"],
    SLOTH + "multifile.yml": ["myservice-requests-availability", "myservice2-requests-availability"],
    SLOTH + "no-alerts.yml": ["myapp-http-availability"],
    SLOTH + "openslo-getting-started.yml": ["my-service-sloth-slo-my-service-0"],
    SLOTH + "openslo-kubernetes-apiserver.yml": ["k8s-apiserver-requests-availability-openslo-0",
                                                 "k8s-apiserver-requests-latency-openslo-0",
                                                 "k8s-apiserver-requests-latency-openslo-1"],
    SLOTH + "raw-home-wifi.yml": ["home-wifi-wifi-client-satisfaction"],
    SLOTH + "slo-plugin-getting-started.yml": ["myservice-requests-availability"],
    SLOTH + "slo-plugin-k8s-getting-started.yml": ["myservice-requests-availability"],
    "openslo/v1-slos.yaml": ["web-web-availability"],
    "pyrra/caddy-response-latency.yaml": ["default-caddy-response-latency"],
    "pyrra/docker-compose-pyrra-prometheus-http.yaml": ["monitoring-prometheus-api-query"],
    "pyrra/mimir-example-slo.yaml": ["default-apiserver-read-cluster-latency"],
    "pyrra/nginx.yaml": ["monitoring-nginx-api-errors", "monitoring-nginx-api-latency"],
    "pyrra/parca-grpc-queryrange-errors.yaml": ["parca-parca-grpc-queryrange-errors"],
    "pyrra/prometheus-http.yaml": ["default-prometheus-api-query"],
    "pyrra/prometheus-operator.yaml": ["monitoring-prometheus-operator-http"],
    "pyrra/prometheus-probe-success.yaml": ["default-prometheus-blackbox-probe-success"],
    "pyrra/pyrra-connect-errors.yaml": ["monitoring-pyrra-connect-errors"],
    "pyrra/pyrra-connect-latency.yaml": ["monitoring-pyrra-connect-latency"],
    "pyrra/pyrra-filesystem-errors.yaml": ["monitoring-pyrra-filesystem-errors"],
    "pyrra/pyrra-kubernetes-errors.yaml": ["monitoring-pyrra-kubernetes-errors"],
    "pyrra/thanos-grpc.yaml": ["monitoring-thanos-store"],
    "pyrra/thanos-http.yaml": ["monitoring-thanos-query"],
    **{f"pyrra/kubernetes-slo-{name}.yaml": [f"monitoring-{name}"] for name in (
        "apiserver-read-cluster-latency", "apiserver-read-namespace-latency", "apiserver-read-resource-latency",
        "apiserver-read-response-errors", "apiserver-write-response-errors", "coredns-response-errors",
        "kubelet-request-errors", "kubelet-runtime-errors", "prometheus-notification-errors",
        "prometheus-operator-http-errors", "prometheus-operator-reconcile-errors", "prometheus-query-errors",
        "prometheus-rule-evaluation-failures", "prometheus-sd-kubernetes-errors")},
}

_ANY_SOURCE = "Any metric source not supported"
_ALERT_WINDOWS = "Sloth's AlertWindows (custom page/ticket alert windows) are not supported"
# file -> every (line, text) problem `monitor check` reports, in order.
REFUSED: dict[str, list[tuple[int, str]]] = {
    SLOTH + "plugin-getting-started.yml": [(13, "slos[0].sli.plugin: SLI plugins are Go code run by Sloth")],
    SLOTH + "plugin-k8s-getting-started.yml": [
        (27, "spec.slos[0].sli.plugin: SLI plugins are Go code run by Sloth"),
        # Sloth's Kubernetes decoder ignores these snake_case keys (the CRD spells them pageAlert,
        # ticketAlert), so Sloth drops their labels silently; we name them.
        (39, "unknown field 'spec.slos[0].alerting.page_alert'"),
        (43, "unknown field 'spec.slos[0].alerting.ticket_alert'")],
    # VictoriaMetrics' MetricsQL (histogram_share, a range over vector(1)) loads as a Sloth spec,
    # and is refused as PromQL.
    SLOTH + "victoria-metrics.yml": [
        (17, "error query: invalid PromQL: unknown function with name 'histogram_share'"),
        (17, "total query: invalid PromQL: ranges only allowed for vector selectors"),
        (34, "error query: invalid PromQL: unknown function with name 'histogram_share'"),
        (34, "total query: invalid PromQL: ranges only allowed for vector selectors")],
    SLOTH + "windows-7d.yaml": [(1, _ALERT_WINDOWS)],
    SLOTH + "windows-custom-30d.yaml": [(1, _ALERT_WINDOWS)],
    "openslo/budgeting-method-occurences-slo.yaml": [(15, _ANY_SOURCE)],
    "openslo/budgeting-method-ratio-timeslices.yaml": [(16, _ANY_SOURCE)],
    "openslo/budgeting-method-timeslices-slo.yaml": [(16, _ANY_SOURCE)],
    "openslo/treat-low-traffic-as-equally-important-timeslices-slo.yaml": [(14, _ANY_SOURCE)],
    "openslo/v1-slis.yaml": [(15, "Datadog metric source not supported"),
                             (41, "AppDynamics metric source not supported")],
    "openslo/v1alpha-slos.yaml": [(49, "datadog metric source not supported")],
}


def _fixture_files() -> set[str]:
    found = set()
    for folder in ("sloth/examples", "openslo", "pyrra"):
        found |= {f"{folder}/{p.name}" for p in (FIXTURES / folder).iterdir() if p.suffix in (".yml", ".yaml")}
    return found


def _check(tmp_path: Path, spec: Path, capsys):
    config = tmp_path / "monitor.yaml"
    config.write_text(f"slos: [{spec}]\n", encoding="utf-8")
    return run_in_process(["check", "--config", config], capsys)


def test_every_copied_example_is_listed_once():
    assert not set(LOADS) & set(REFUSED)
    assert _fixture_files() == set(LOADS) | set(REFUSED)
    for folder in ("sloth/examples", "openslo", "pyrra"):
        assert "Apache" in (FIXTURES / folder / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(set(LOADS) - {SLOTH + "victoria-metrics.yml"}))
def test_the_example_loads_unchanged_and_passes_monitor_check(name, tmp_path, capsys):
    specs = load_spec_files([FIXTURES / name])
    assert [spec.id for spec in specs] == LOADS[name]
    outcome = _check(tmp_path, FIXTURES / name, capsys)
    assert outcome.code == 0, outcome.stderr
    assert f"{len(LOADS[name])} SLOs" in outcome.stdout


@pytest.mark.parametrize("name", sorted(set(LOADS) - {SLOTH + "victoria-metrics.yml"}))
def test_the_examples_rules_pass_promtool(name, tmp_path, capsys):
    outcome = run_in_process(["slo", "rules", "--spec", FIXTURES / name], capsys)
    assert outcome.code == 0, outcome.stderr
    rules = tmp_path / "rules.yaml"
    rules.write_text(outcome.stdout, encoding="utf-8")
    checked = subprocess.run([find_binary("promtool"), "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    if name == SLOTH + "contrib-slo-plugins.yml":
        # Its two SLOs give their alerts one name and the same static labels, so promtool's lint
        # warns of duplicates (exit 0), as it does on Sloth's own output: the firing series differ
        # by the sloth_id their expressions carry.
        assert (checked.stdout + checked.stderr).count("Metric: MyServiceHighErrorRate") == 2, checked.stderr
    else:
        assert "SUCCESS" in checked.stdout, checked.stdout


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_example_is_refused_naming_the_unsupported_feature_at_its_line(name, tmp_path, capsys):
    outcome = _check(tmp_path, FIXTURES / name, capsys)
    assert outcome.code == 1 and "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert lines[-1] == f"{len(REFUSED[name])} problem(s) found"
    problems = lines[:-1]
    assert len(problems) == len(REFUSED[name]), outcome.stderr
    for problem, (line, text) in zip(problems, REFUSED[name]):
        assert problem.startswith(f"{FIXTURES / name}:{line}: ") and text in problem, problem


def test_victoria_metrics_example_loads_with_its_boolean_label_as_text():
    # `generated: true` and `actual_le: 0.2` are YAML scalars; Sloth (Go) reads them as their text.
    specs = load_spec_files([FIXTURES / SLOTH / "victoria-metrics.yml"])
    assert [spec.id for spec in specs] == ["foo-bar-grpc-latency-percentile-90", "foo-bar-grpc-latency-percentile-99"]
    assert specs[0].labels["generated"] == "true"
    assert specs[0].labels["actual_le"] == "0.2" and specs[1].labels["actual_le"] == "0.4"


def _objects(name: str) -> list[tuple[int, int]]:
    """(first line, last line) of each object of a YAML list file, 1-based."""
    node = yaml.compose((FIXTURES / name).read_text())
    assert isinstance(node, yaml.SequenceNode)
    items = node.value
    ends = [item.start_mark.line for item in items[1:]] + [len((FIXTURES / name).read_text().splitlines())]
    return [(item.start_mark.line + 1, end) for item, end in zip(items, ends)]


@pytest.mark.parametrize("name, loads", [
    pytest.param("openslo/v1alpha-slos.yaml", [["web-web-latency-threshold-0"], None],
                 id="v1alpha: the Prometheus threshold SLO loads, the Datadog ratio SLO is refused"),
    pytest.param("openslo/v1-slis.yaml", [None, None, [], []],
                 id="v1 SLIs: the Prometheus raw and threshold SLIs load, Datadog and AppDynamics are refused"),
    pytest.param("openslo/v1-slos.yaml", [["web-web-availability"]], id="v1: the Prometheus SLO loads"),
])
def test_each_object_of_openslos_list_examples_loads_where_its_source_is_prometheus(name, loads, tmp_path):
    """Each object of the upstream list, cut out as it is written (lines unchanged), alone in a file."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    objects = _objects(name)
    assert len(objects) == len(loads)
    for (first, last), want in zip(objects, loads):
        part = tmp_path / f"{first}.yaml"
        part.write_text("".join(lines[first - 1:last]))
        if want is None:
            with pytest.raises(ConfigError) as refused:
                load_spec_files([part])
            [problem] = refused.value.problems
            assert "metric source not supported" in problem.message
        else:
            assert [spec.id for spec in load_spec_files([part])] == want


def test_sloths_kubernetes_crd_means_the_same_slos_as_its_prometheus_v1_form():
    for crd, plain in (("k8s-getting-started.yml", "getting-started.yml"), ("k8s-home-wifi.yml", "home-wifi.yml"),
                       ("k8s-multifile.yml", "multifile.yml")):
        got = load_spec_files([FIXTURES / SLOTH / crd])
        want = load_spec_files([FIXTURES / SLOTH / plain])
        assert [spec.__class__(**{**vars(spec), "source": ""}) for spec in got] == \
            [spec.__class__(**{**vars(spec), "source": ""}) for spec in want]


def test_openslos_v1_example_reads_counters_time_slices_a_calendar_week_and_list_labels():
    [spec] = load_spec_files([FIXTURES / "openslo" / "v1-slos.yaml"])
    assert spec.objective == 0.995 and spec.labels == {"env": "prod", "team": "team-a,team-b"}
    # `startTime: 2022-01-01 12:00:00` is unquoted (a YAML timestamp): read as written, in New York time.
    assert spec.period == CalendarPeriod(1, "w", datetime(2022, 1, 1, 12, tzinfo=spec.period.anchor.tzinfo))
    assert str(spec.period.anchor.tzinfo) == "America/New_York"
    # Budgeting `Timeslices`: the share of 1m slices whose good ratio is not above 0.95 (op: gt),
    # each counter (no {{.window}}; counter: true) read as its rate over the slice.
    assert isinstance(spec.sli, RawSli)
    total = 'sum(rate(http_requests{k8s_cluster="prod",component="web"}[1m]))'
    good = 'sum(rate(http_requests{k8s_cluster="prod",component="web",code=~"2xx|4xx"}[1m]))'
    assert render_window(spec.sli.error_ratio_query, "1d") == (
        f"1 - avg_over_time(((1 - sum({total} - {good}) / ({total} > 0)) > bool 0.95)[1d:1m])")


def test_pyrras_indicators_become_the_queries_pyrras_burn_rates_use():
    [ratio] = load_spec_files([FIXTURES / "pyrra" / "docker-compose-pyrra-prometheus-http.yaml"])
    assert (ratio.objective, ratio.period, ratio.group_by) == (0.99, timedelta(days=7), ())
    assert ratio.sli == EventsSli(
        'rate(prometheus_http_requests_total{handler="/api/v1/query",code=~"5.."}[{{.window}}])',
        'rate(prometheus_http_requests_total{handler="/api/v1/query"}[{{.window}}])')
    assert (ratio.service, ratio.name, ratio.labels) == ("monitoring", "prometheus-api-query",
                                                         {"namespace": "monitoring"})
    # `grouping` is one SLO instance per handler (SloSpec.group_by); the rates stay unaggregated.
    [grouped] = load_spec_files([FIXTURES / "pyrra" / "prometheus-http.yaml"])
    assert grouped.group_by == ("handler",) and grouped.service == "default" and grouped.labels == {}
    assert grouped.sli.total_query == 'rate(prometheus_http_requests_total{handler=~"/api.*"}[{{.window}}])'
    [latency] = load_spec_files([FIXTURES / "pyrra" / "caddy-response-latency.yaml"])
    total = 'rate(caddy_http_response_duration_seconds_count{job="caddy",handler="subroute",code!~"5.."}[{{.window}}])'
    fast = ('rate(caddy_http_response_duration_seconds_bucket{job="caddy",handler="subroute",code!~"5..",le="0.05"}'
            '[{{.window}}])')
    assert (latency.objective, latency.period) == (0.9, timedelta(weeks=4))
    assert latency.sli == EventsSli(f"sum({total}) - sum({fast})", total)
    [gauge] = load_spec_files([FIXTURES / "pyrra" / "prometheus-probe-success.yaml"])
    assert gauge.group_by == ("target",) and gauge.objective == 0.99
    count = "sum by (target) (count_over_time(probe_success[{{.window}}]))"
    assert gauge.sli == RawSli(f"({count} - sum by (target) (sum_over_time(probe_success[{{{{.window}}}}]))) / {count}")
    [native] = load_spec_files([FIXTURES / "pyrra" / "pyrra-connect-latency.yaml"])
    assert native.group_by == ("service", "method") and native.labels == {"namespace": "monitoring"}
    assert "histogram_fraction(0, 0.2, sum by (service, method) (rate(" in native.sli.error_query
