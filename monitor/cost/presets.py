"""Inference-server presets: a model's name -> the real series its server exports.

A model needs only `preset: triton` (or vllm, kserve, seldon) and its name; the preset
knows which counter counts inferences, which count successes and failures, and how
latency is exported. `resolve_model_metrics` is the one place that turns a
`ModelConfig` into concrete selectors, reused by cost, SLO defaults and rules.

Metric names and labels are each server's own, checked against their sources:
- Triton (server docs/user_guide/metrics.md; core src/metric_model_reporter.cc):
  `nv_inference_count{model,version}` counts inferences (a batch of 4 is 4),
  `nv_inference_request_success` / `_failure` count requests, failures split by
  `reason` (REJECTED, CANCELED, BACKEND, OTHER) in current releases, and
  `nv_inference_request_duration_us` is cumulative request time in microseconds. Series
  may also carry `gpu_uuid` (per GPU instance) and the scrape's `namespace`; every
  selector here sums over those labels.
- vLLM (vllm/v1/metrics/loggers.py; vllm/v1/engine/__init__.py FINISH_REASON_STRINGS):
  `vllm:request_success_total{model_name,engine,finished_reason}` counts *finished*
  requests, whatever their end: stop, length, abort, error (and repetition in recent
  releases). A request that ended in abort or error is a failure, not an inference;
  every other end produced output. `vllm:e2e_request_latency_seconds{model_name,engine}`
  is a histogram. `engine` tells data-parallel engines apart; selectors sum over it.
- KServe model servers: `request_predict_seconds{model_name}` is a histogram; its
  `_count` is the number of predict calls.
- Seldon Core v1 executor (executor/api/metric/constants.go, server.go):
  `seldon_api_executor_server_requests_seconds{deployment_name,predictor_name,
  predictor_version,service,method,code}` is a histogram of every call, including
  status, metadata and feedback ones. Predictions are `service="predictions"` over
  REST and the gRPC full method `/<package>.<Service>/Predict` (or `/ModelInfer` for
  the v2 protocol). `code` is the HTTP status over REST but the gRPC code name
  ("OK", "Unavailable", ...) over gRPC. `predictor_version` is the predictor's
  `version` annotation.
- Seldon Core v2 agent (scheduler/pkg/metrics/agent.go): `seldon_model_infer_total{server,
  server_replica,model,model_internal,method_type,code}` counts inference calls, `code`
  again the HTTP status over REST (`method_type="rest"`) and the gRPC code name over gRPC;
  `seldon_model_infer_seconds_total` (same labels) is their cumulative latency in
  seconds. `model_internal` is the model's name with its version (`iris_1`), so it is
  the version label. A failed call is a failure, not an inference.

Token counters, for cost per 1M tokens (monitor.cost.tokens): vLLM's
`vllm:prompt_tokens_total` and `vllm:generation_tokens_total{model_name,engine}`
(vllm/v1/metrics/loggers.py: prefill tokens processed, tokens generated); other
servers' come from `models[].tokens`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from monitor.config import Config, ModelConfig, model_key_lines
from monitor.errors import ConfigError, MonitorError, Problem
from monitor.sources.prometheus import label_matcher

_DEFAULT_VERSION_LABEL = ModelConfig.version_label
# A PromQL series selector: a metric name with optional matchers, or matchers alone.
_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?P<matchers>\{.*\})?\s*$", re.S)


class ModelMetricsError(MonitorError):
    """A model's metric selectors cannot be resolved (bad selector, unknown preset)."""


class LatencyKind(Enum):
    HISTOGRAM = "histogram"          # <base>_bucket / _sum / _count, in seconds
    CUMULATIVE_SUM = "cumulative_sum"  # a counter of total time, divided by a request counter


@dataclass(frozen=True)
class LatencySeries:
    """How to read a model's latency: a histogram, or a cumulative time counter over a request count."""

    kind: LatencyKind
    # For HISTOGRAM: the _bucket, _sum and _count selectors. For CUMULATIVE_SUM: `sum` is
    # the total-time counter, `count` the request counter and `bucket` is None.
    sum: str
    count: str
    bucket: str | None
    # Multiply `sum` by this to get seconds (Triton counts microseconds).
    seconds_per_unit: float = 1.0


@dataclass(frozen=True)
class ModelMetrics:
    """A model's concrete series: where its inferences, outcomes and latency live."""

    model: str
    preset: str | None
    inferences: str             # counter selector; increase() over a window = inferences served
    version_label: str | None   # label carrying the model version on the inference counter
    success: str | None         # request success counter selector, None when the server has none
    failure: str | None         # request failure counter selector, None when the server has none
    latency: LatencySeries | None
    # Token counter selectors (LLMs): prompt (input) and generated (output) tokens.
    prompt_tokens: str | None = None
    generation_tokens: str | None = None


@dataclass(frozen=True)
class _Preset:
    model_label: str
    inferences: str
    success: str | None
    failure: str | None
    # (kind, base or sum metric, count metric for CUMULATIVE_SUM, seconds per unit)
    latency: tuple[LatencyKind, str, str | None, float]
    # Matchers on every series the preset reads (Seldon: prediction calls only).
    request_matcher: str = ""
    # Extra matchers that tell inferences, successes and failures apart on one series
    # (vLLM's `finished_reason`, Seldon's `code`).
    inference_matcher: str = ""
    success_matcher: str = ""
    failure_matcher: str = ""
    # The label carrying the model version, when the server has one of its own.
    version_label: str | None = None
    # (prompt, generation) token counters, for servers that count tokens.
    tokens: tuple[str, str] | None = None


# vLLM: a request that ended this way produced no output for its caller.
_VLLM_FAILED = 'finished_reason=~"abort|error"'
_VLLM_FINISHED = 'finished_reason!~"abort|error"'
# Seldon: success is a 2xx over REST or gRPC's OK.
_SELDON_OK = 'code=~"2..|OK"'
_SELDON_NOT_OK = 'code!~"2..|OK"'

PRESETS: dict[str, _Preset] = {
    "triton": _Preset("model", "nv_inference_count", "nv_inference_request_success",
                      "nv_inference_request_failure",
                      (LatencyKind.CUMULATIVE_SUM, "nv_inference_request_duration_us", None, 1e-6)),
    "vllm": _Preset("model_name", "vllm:request_success_total", "vllm:request_success_total",
                    "vllm:request_success_total",
                    (LatencyKind.HISTOGRAM, "vllm:e2e_request_latency_seconds", None, 1.0),
                    inference_matcher=_VLLM_FINISHED, success_matcher=_VLLM_FINISHED,
                    failure_matcher=_VLLM_FAILED,
                    tokens=("vllm:prompt_tokens_total", "vllm:generation_tokens_total")),
    "kserve": _Preset("model_name", "request_predict_seconds_count", None, None,
                      (LatencyKind.HISTOGRAM, "request_predict_seconds", None, 1.0)),
    "seldon": _Preset("deployment_name", "seldon_api_executor_server_requests_seconds_count",
                      "seldon_api_executor_server_requests_seconds_count",
                      "seldon_api_executor_server_requests_seconds_count",
                      (LatencyKind.HISTOGRAM, "seldon_api_executor_server_requests_seconds", None, 1.0),
                      request_matcher='service=~"predictions|.+/Predict|.+/ModelInfer"',
                      success_matcher=_SELDON_OK, failure_matcher=_SELDON_NOT_OK,
                      version_label="predictor_version"),
    "seldon-v2": _Preset("model", "seldon_model_infer_total", "seldon_model_infer_total", "seldon_model_infer_total",
                         (LatencyKind.CUMULATIVE_SUM, "seldon_model_infer_seconds_total", "seldon_model_infer_total",
                          1.0),
                         inference_matcher=_SELDON_OK, success_matcher=_SELDON_OK, failure_matcher=_SELDON_NOT_OK,
                         version_label="model_internal"),
}


def parse_selector(selector: str, what: str) -> tuple[str | None, str]:
    """Split a series selector into (metric name or None, matchers without braces)."""
    match = _SELECTOR.match(selector or "")
    if not match or not (match.group("name") or match.group("matchers")):
        raise ModelMetricsError(f"{what}: {selector!r} is not a PromQL series selector "
                                f"(metric{{label=\"value\"}} or {{label=\"value\"}})")
    matchers = match.group("matchers") or "{}"
    return match.group("name"), matchers[1:-1].strip()


def with_matchers(metric: str, *matchers: str) -> str:
    """`metric{a,b}` from matcher strings, skipping empty ones."""
    joined = ",".join(m for m in matchers if m)
    return f"{metric}{{{joined}}}"


def gpu_matchers(model: ModelConfig) -> str | None:
    """The label matchers of `models[].gpus`, applied to dcgm-exporter's series; None when unset."""
    if model.gpus is None:
        return None
    name, matchers = parse_selector(model.gpus, f"model {model.name!r}: gpus")
    if name is not None and not name.startswith("DCGM_"):
        raise ModelMetricsError(f"model {model.name!r}: gpus: {model.gpus!r} names metric {name!r}; give "
                                f"label matchers for dcgm-exporter's series, e.g. {{namespace=\"...\"}}")
    if not matchers:
        raise ModelMetricsError(f"model {model.name!r}: gpus: {model.gpus!r} selects every GPU; "
                                f"give at least one label matcher")
    return matchers


def resolve_model_metrics(model: ModelConfig) -> ModelMetrics:
    """The model's inference counter, success/failure counters and latency series, preset-resolved.

    An explicit `inferences` selector wins over the preset's counter; the preset still
    supplies outcome and latency series.
    """
    preset = PRESETS.get(model.preset) if model.preset else None
    if model.preset and preset is None:
        raise ModelMetricsError(f"model {model.name!r}: unknown preset {model.preset!r} "
                                f"(known: {', '.join(sorted(PRESETS))})")
    if model.inferences is not None:
        parse_selector(model.inferences, f"model {model.name!r}: inferences")
        inferences = model.inferences
    elif preset is not None:
        inferences = with_matchers(preset.inferences, label_matcher(preset.model_label, model.name),
                                   preset.request_matcher, preset.inference_matcher)
    else:
        raise ModelMetricsError(f"model {model.name!r}: needs 'inferences' or a 'preset'")
    prompt_tokens, generation_tokens = _token_counters(model, preset)
    if preset is None:
        return ModelMetrics(model.name, None, inferences, model.version_label or None, None, None, None,
                            prompt_tokens, generation_tokens)
    version_label = model.version_label or None
    # The config's default (`version`, Triton's label) gives way to a preset's own label
    # (Seldon's `predictor_version`), on the preset's own counter only.
    if (preset.version_label and model.inferences is None
            and model.version_label == _DEFAULT_VERSION_LABEL):
        version_label = preset.version_label
    by_model = label_matcher(preset.model_label, model.name)
    success = (with_matchers(preset.success, by_model, preset.request_matcher, preset.success_matcher)
               if preset.success else None)
    failure = (with_matchers(preset.failure, by_model, preset.request_matcher, preset.failure_matcher)
               if preset.failure else None)
    kind, base, count_metric, seconds_per_unit = preset.latency
    if kind is LatencyKind.HISTOGRAM:
        latency = LatencySeries(kind, sum=with_matchers(f"{base}_sum", by_model, preset.request_matcher),
                                count=with_matchers(f"{base}_count", by_model, preset.request_matcher),
                                bucket=with_matchers(f"{base}_bucket", by_model, preset.request_matcher),
                                seconds_per_unit=seconds_per_unit)
    else:
        # Triton's duration counter covers every request, successful or not.
        count = (_request_total(preset, by_model) if count_metric is None
                 else with_matchers(count_metric, by_model))
        latency = LatencySeries(kind, sum=with_matchers(base, by_model), count=count, bucket=None,
                                seconds_per_unit=seconds_per_unit)
    return ModelMetrics(model.name, model.preset, inferences, version_label, success, failure, latency,
                        prompt_tokens, generation_tokens)


def _token_counters(model: ModelConfig, preset: _Preset | None) -> tuple[str | None, str | None]:
    """(prompt, generation) token counter selectors: `models[].tokens` replaces the preset's."""
    if model.tokens is not None:
        for key in ("prompt", "generation"):
            selector = getattr(model.tokens, key)
            if selector is not None:
                parse_selector(selector, f"model {model.name!r}: tokens.{key}")
        return model.tokens.prompt, model.tokens.generation
    if preset is None or preset.tokens is None:
        return None, None
    by_model = label_matcher(preset.model_label, model.name)
    return tuple(with_matchers(metric, by_model) for metric in preset.tokens)  # type: ignore[return-value]


def _request_total(preset: _Preset, by_model: str) -> str:
    # A `{__name__=~"a|b"}` selector sums both counters under increase()/rate() per series,
    # so callers can wrap it like any counter selector.
    names = "|".join(re.escape(n) for n in (preset.success, preset.failure) if n)
    return f'{{__name__=~"{names}",{by_model}}}'


def check_model_metrics(config: Config) -> dict[str, int] | None:
    """`monitor check`: every model's preset and selectors resolve; problems at the model's line."""
    problems = []
    lines = model_key_lines(config, ("inferences", "gpus", "preset"))
    for index, model in enumerate(config.models):
        for key, resolve in (("inferences", resolve_model_metrics), ("gpus", gpu_matchers)):
            try:
                resolve(model)
            except ModelMetricsError as exc:
                problems.append(Problem(config.source_path, lines.get((index, key)) or lines.get((index, None)),
                                        str(exc)))
    if problems:
        raise ConfigError(problems)
    return None
