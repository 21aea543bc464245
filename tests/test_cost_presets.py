"""Inference-server presets resolve a model's name into each server's real series."""

from __future__ import annotations

import pytest

from monitor.config import ModelConfig
from monitor.cost.presets import LatencyKind, ModelMetricsError, gpu_matchers, resolve_model_metrics
from monitor.validation import validate


SELDON = 'service=~"predictions|.+/Predict|.+/ModelInfer"'


@pytest.mark.parametrize("preset, inferences, success, failure, latency_kind, latency_sum", [
    pytest.param("triton", 'nv_inference_count{model="m"}', 'nv_inference_request_success{model="m"}',
                 'nv_inference_request_failure{model="m"}', LatencyKind.CUMULATIVE_SUM,
                 'nv_inference_request_duration_us{model="m"}', id="Triton counts inferences and times requests in us"),
    pytest.param("vllm", 'vllm:request_success_total{model_name="m",finished_reason!~"abort|error"}',
                 'vllm:request_success_total{model_name="m",finished_reason!~"abort|error"}',
                 'vllm:request_success_total{model_name="m",finished_reason=~"abort|error"}',
                 LatencyKind.HISTOGRAM, 'vllm:e2e_request_latency_seconds_sum{model_name="m"}',
                 id="vLLM tells finished requests from aborted and errored ones by finished_reason"),
    pytest.param("kserve", 'request_predict_seconds_count{model_name="m"}', None, None, LatencyKind.HISTOGRAM,
                 'request_predict_seconds_sum{model_name="m"}', id="KServe counts predict calls"),
    pytest.param("seldon", f'seldon_api_executor_server_requests_seconds_count{{deployment_name="m",{SELDON}}}',
                 f'seldon_api_executor_server_requests_seconds_count{{deployment_name="m",{SELDON},code=~"2..|OK"}}',
                 f'seldon_api_executor_server_requests_seconds_count{{deployment_name="m",{SELDON},code!~"2..|OK"}}',
                 LatencyKind.HISTOGRAM,
                 f'seldon_api_executor_server_requests_seconds_sum{{deployment_name="m",{SELDON}}}',
                 id="Seldon counts prediction calls and tells outcomes apart by the code label"),
])
def test_presets_name_each_servers_series(preset, inferences, success, failure, latency_kind, latency_sum):
    metrics = resolve_model_metrics(ModelConfig(name="m", preset=preset))
    assert (metrics.inferences, metrics.success, metrics.failure) == (inferences, success, failure)
    assert metrics.latency.kind is latency_kind and metrics.latency.sum == latency_sum


def test_triton_latency_is_microseconds_over_all_requests():
    latency = resolve_model_metrics(ModelConfig(name="m", preset="triton")).latency
    assert latency.seconds_per_unit == 1e-6
    assert latency.count == '{__name__=~"nv_inference_request_success|nv_inference_request_failure",model="m"}'


def test_model_names_are_escaped_in_selectors():
    metrics = resolve_model_metrics(ModelConfig(name='we"ird\\name', preset="triton"))
    assert metrics.inferences == 'nv_inference_count{model="we\\"ird\\\\name"}'


def test_an_explicit_inference_counter_wins_over_the_preset():
    metrics = resolve_model_metrics(ModelConfig(name="m", preset="triton", inferences='my_counter{job="x"}'))
    assert metrics.inferences == 'my_counter{job="x"}'
    assert metrics.success == 'nv_inference_request_success{model="m"}'


@pytest.mark.parametrize("model, message", [
    pytest.param(ModelConfig(name="m", inferences="rate(x[5m])"), "not a PromQL series selector",
                 id="an expression is not a counter selector"),
    pytest.param(ModelConfig(name="m", preset="triton", gpus='namespace="x"'), "not a PromQL series selector",
                 id="gpus needs braces"),
    pytest.param(ModelConfig(name="m", preset="triton", gpus="{}"), "selects every GPU",
                 id="gpus must narrow the GPUs down"),
    pytest.param(ModelConfig(name="m", preset="triton", gpus='node_cpu{x="y"}'), "names metric",
                 id="gpus applies to dcgm-exporter's series"),
])
def test_bad_selectors_are_clear_errors(model, message):
    with pytest.raises(ModelMetricsError, match=message):
        resolve_model_metrics(model)
        gpu_matchers(model)


def test_gpu_matchers_accept_a_dcgm_selector_or_bare_matchers():
    assert gpu_matchers(ModelConfig(name="m", preset="triton", gpus='{namespace="a"}')) == 'namespace="a"'
    assert gpu_matchers(ModelConfig(name="m", preset="triton",
                                    gpus='DCGM_FI_DEV_GPU_UTIL{Hostname="n"}')) == 'Hostname="n"'
    assert gpu_matchers(ModelConfig(name="m", preset="triton")) is None


def test_monitor_check_reports_a_bad_selector_at_its_line(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("models:\n  - name: ok\n    preset: triton\n  - name: bad\n    preset: triton\n"
                    "    gpus: '{}'\n", encoding="utf-8")
    report = validate(str(path))
    assert [(p.line, "selects every GPU" in p.message) for p in report.problems] == [(6, True)]


@pytest.mark.parametrize("selector, metric, want", [
    pytest.param('M{namespace="llm"}', "", 'M{namespace="llm"} or label_replace(M{exported_namespace="llm",'
                 'exported_namespace!=""}, "namespace", "$1", "exported_namespace", "(.*)")',
                 id="a namespace matcher also reads exported_namespace"),
    pytest.param('M{namespace!="llm",Hostname="h"}', "", 'M{namespace!="llm",Hostname="h"} or label_replace('
                 'M{exported_namespace!="llm",Hostname="h",exported_namespace!=""}, "namespace", "$1", '
                 '"exported_namespace", "(.*)")',
                 id="a negative matcher reads only series that carry the exported label"),
    pytest.param('M{Hostname="h"}', "N", 'N{Hostname="h"}',
                 id="a selector on the GPU's own labels needs no second reading, on any metric"),
])
def test_gpu_selectors_also_read_exported_workload_labels(selector, metric, want):
    from monitor.sources.folding import either_form

    assert either_form(selector, metric, {"namespace": "exported_namespace", "pod": "exported_pod"}) == want


# Series as each server exports them (label sets from their sources; see monitor/cost/presets.py),
# with each series' value at the evaluation time.
VLLM_SERIES = [({"model_name": "llm", "engine": engine, "finished_reason": reason}, value)
               for engine, per_engine in (("0", 1), ("1", 10))
               for reason, value in (("stop", 700 * per_engine), ("length", 200 * per_engine),
                                     ("abort", 60 * per_engine), ("error", 3 * per_engine),
                                     ("repetition", 5 * per_engine))]
SELDON_SERIES = [({"deployment_name": "m", "predictor_name": "default", "predictor_version": version,
                   "service": service, "method": method, "code": code}, value)
                 for version, scale in (("v1", 1), ("v2", 100))
                 for service, method, code, value in (
                     ("predictions", "POST", "200", 900 * scale), ("predictions", "POST", "500", 7 * scale),
                     ("predictions", "POST", "400", 2 * scale), ("status", "GET", "200", 5000 * scale),
                     ("feedback", "POST", "200", 40 * scale),
                     ("/seldon.protos.Seldon/Predict", "unary", "OK", 300 * scale),
                     ("/seldon.protos.Seldon/Predict", "unary", "Unavailable", 11 * scale),
                     ("/seldon.protos.Seldon/SendFeedback", "unary", "OK", 50 * scale))]


def _promtool_sums(tmp_path, metric: str, series: list, queries: dict[str, str], expected: dict[str, float]) -> str:
    """Run promtool's PromQL engine over `series` and check each query's value; its output on failure."""
    import subprocess

    import yaml

    from monitor.sources.prometheus import escape_label_value

    def selector(labels):
        return metric + "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "}"

    test = {"evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": selector(labels), "values": f"{value}x2"} for labels, value in series],
        "promql_expr_test": [{"expr": query, "eval_time": "1m",
                              "exp_samples": [{"labels": "{}", "value": expected[name]}]}
                             for name, query in queries.items()]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_vllm_counts_requests_that_ended_in_abort_or_error_as_failures_not_inferences(tmp_path):
    metrics = resolve_model_metrics(ModelConfig(name="llm", preset="vllm"))
    failed = {"abort", "error"}
    want = {"inferences": sum(v for labels, v in VLLM_SERIES if labels["finished_reason"] not in failed),
            "failure": sum(v for labels, v in VLLM_SERIES if labels["finished_reason"] in failed)}
    want["success"] = want["inferences"]
    queries = {"inferences": f"sum({metrics.inferences})", "success": f"sum({metrics.success})",
               "failure": f"sum({metrics.failure})"}
    assert want == {"inferences": 9955, "success": 9955, "failure": 693}  # both engines, every end but two
    assert not _promtool_sums(tmp_path, "vllm:request_success_total", VLLM_SERIES, queries, want)


def test_seldon_counts_prediction_calls_only_and_grpc_ok_as_success(tmp_path):
    metrics = resolve_model_metrics(ModelConfig(name="m", preset="seldon"))
    assert metrics.version_label == "predictor_version"

    def predictions(labels):
        return labels["service"] == "predictions" or labels["service"].endswith("/Predict")

    def ok(labels):
        return labels["code"] == "OK" or labels["code"].startswith("2")

    want = {"inferences": sum(v for labels, v in SELDON_SERIES if predictions(labels)),
            "success": sum(v for labels, v in SELDON_SERIES if predictions(labels) and ok(labels)),
            "failure": sum(v for labels, v in SELDON_SERIES if predictions(labels) and not ok(labels)),
            "v2": sum(v for labels, v in SELDON_SERIES if predictions(labels) and labels["predictor_version"] == "v2")}
    queries = {"inferences": f"sum({metrics.inferences})", "success": f"sum({metrics.success})",
               "failure": f"sum({metrics.failure})",
               # The version label the cost split groups by tells the predictor's versions apart.
               "v2": f'sum({metrics.inferences[:-1]},{metrics.version_label}="v2"}})'}
    assert want == {"inferences": 123220, "success": 121200, "failure": 2020, "v2": 122000}
    problem = _promtool_sums(tmp_path, "seldon_api_executor_server_requests_seconds_count", SELDON_SERIES, queries,
                             want)
    assert not problem, problem


# Seldon Core v2's agent counter, as its docs' examples show it (scheduler/pkg/metrics/agent.go labels).
SELDON_V2_SERIES = [({"server": "mlserver", "server_replica": replica, "model": "iris", "model_internal": internal,
                      "method_type": method_type, "code": code}, value)
                    for replica, scale in (("0", 1), ("1", 10))
                    for internal, version_scale in (("iris_1", 1), ("iris_2", 1000))
                    for method_type, code, value in (("rest", "200", 50 * scale * version_scale),
                                                     ("rest", "500", 3 * scale * version_scale),
                                                     ("grpc", "OK", 100 * scale * version_scale),
                                                     ("grpc", "Unavailable", 7 * scale * version_scale))] + [
    ({"server": "mlserver", "server_replica": "0", "model": "iris2", "model_internal": "iris2_1",
      "method_type": "rest", "code": "200"}, 123456)]


def test_seldon_v2_counts_successful_infer_calls_per_model_internal_version(tmp_path):
    metrics = resolve_model_metrics(ModelConfig(name="iris", preset="seldon-v2"))
    assert metrics.version_label == "model_internal"
    assert metrics.latency.kind is LatencyKind.CUMULATIVE_SUM
    assert metrics.latency.sum == 'seldon_model_infer_seconds_total{model="iris"}'

    def ok(labels):
        return labels["code"] == "OK" or labels["code"].startswith("2")

    iris = [(labels, v) for labels, v in SELDON_V2_SERIES if labels["model"] == "iris"]
    want = {"inferences": sum(v for labels, v in iris if ok(labels)),
            "success": sum(v for labels, v in iris if ok(labels)),
            "failure": sum(v for labels, v in iris if not ok(labels)),
            "requests": sum(v for _, v in iris),
            "iris_2": sum(v for labels, v in iris if ok(labels) and labels["model_internal"] == "iris_2")}
    queries = {"inferences": f"sum({metrics.inferences})", "success": f"sum({metrics.success})",
               "failure": f"sum({metrics.failure})", "requests": f"sum({metrics.latency.count})",
               "iris_2": f'sum({metrics.inferences[:-1]},{metrics.version_label}="iris_2"}})'}
    assert want == {"inferences": 1651650, "success": 1651650, "failure": 110110, "requests": 1761760,
                    "iris_2": 1650000}
    problem = _promtool_sums(tmp_path, "seldon_model_infer_total", SELDON_V2_SERIES, queries, want)
    assert not problem, problem
