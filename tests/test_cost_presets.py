"""Inference-server presets resolve a model's name into each server's real series."""

from __future__ import annotations

import pytest

from monitor.config import ModelConfig
from monitor.cost.presets import LatencyKind, ModelMetricsError, gpu_matchers, resolve_model_metrics
from monitor.validation import validate


@pytest.mark.parametrize("preset, inferences, success, failure, latency_kind, latency_sum", [
    pytest.param("triton", 'nv_inference_count{model="m"}', 'nv_inference_request_success{model="m"}',
                 'nv_inference_request_failure{model="m"}', LatencyKind.CUMULATIVE_SUM,
                 'nv_inference_request_duration_us{model="m"}', id="Triton counts inferences and times requests in us"),
    pytest.param("vllm", 'vllm:request_success_total{model_name="m"}', 'vllm:request_success_total{model_name="m"}',
                 None, LatencyKind.HISTOGRAM, 'vllm:e2e_request_latency_seconds_sum{model_name="m"}',
                 id="vLLM counts finished requests and has no failure counter"),
    pytest.param("kserve", 'request_predict_seconds_count{model_name="m"}', None, None, LatencyKind.HISTOGRAM,
                 'request_predict_seconds_sum{model_name="m"}', id="KServe counts predict calls"),
    pytest.param("seldon", 'seldon_api_executor_server_requests_seconds_count{deployment_name="m"}',
                 'seldon_api_executor_server_requests_seconds_count{deployment_name="m",code=~"2.."}',
                 'seldon_api_executor_server_requests_seconds_count{deployment_name="m",code!~"2.."}',
                 LatencyKind.HISTOGRAM, 'seldon_api_executor_server_requests_seconds_sum{deployment_name="m"}',
                 id="Seldon tells outcomes apart by the code label"),
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


@pytest.mark.parametrize("selector, want", [
    pytest.param('M{namespace="llm"}',
                 'label_replace(M{exported_namespace="llm",exported_namespace!=""}, "namespace", "$1", '
                 '"exported_namespace", "(.*)")', id="a namespace matcher also reads exported_namespace"),
    pytest.param('M{namespace!="llm",Hostname="h"}',
                 'label_replace(M{exported_namespace!="llm",Hostname="h",exported_namespace!=""}, "namespace", "$1", '
                 '"exported_namespace", "(.*)")',
                 id="a negative matcher reads only series that carry the exported label"),
    pytest.param('M{Hostname="h"}', None, id="a selector on the GPU's own labels needs no second reading"),
])
def test_gpu_selectors_also_read_exported_workload_labels(selector, want):
    from monitor.sources.folding import renamed_selector

    assert renamed_selector(selector, {"namespace": "exported_namespace", "pod": "exported_pod"}) == want
