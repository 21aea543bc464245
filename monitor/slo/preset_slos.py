"""Default availability and latency SLOs for models served by a known inference server.

A model with a `preset` (Triton, vLLM, KServe, Seldon; monitor.cost.presets) already
names the series its server exports: request success and failure counters, and a
latency histogram. Those give SLOs without a spec file:

- `<model>-availability`: failed requests over all requests, where the preset counts
  failures (Triton's `nv_inference_request_failure`, Seldon's non-2xx `code`). vLLM and
  KServe export no failure counter, so they get none. Objective: `availability`, 0.999
  unless set.
- `<model>-latency`: requests slower than `threshold` over all requests, read from the
  preset's histogram bucket at that threshold (monitor.slo.histogram_threshold), where
  the preset exports a histogram (vLLM, KServe, Seldon). Triton exports only a cumulative
  duration, whose mean is no SLO, so it gets none. Only when `latency.threshold` is set:
  no threshold suits every model.

They are on for every preset model; `default_slos: {enabled: false}` turns them off for
one. Asking for one the preset cannot give is an error at the model's line.
"""

from __future__ import annotations

from datetime import timedelta

from monitor.config import Config, ModelConfig, model_key_lines
from monitor.cost.presets import LatencyKind, ModelMetrics, ModelMetricsError, resolve_model_metrics
from monitor.errors import Problem
from monitor.slo.counter_query import WINDOW
from monitor.slo.histogram_threshold import Comparison, ThresholdError, threshold_sli
from monitor.slo.spec import EventsSli, SloSpec

DEFAULT_AVAILABILITY = 0.999


def preset_slo_specs(config: Config, period: timedelta) -> tuple[list[SloSpec], list[Problem]]:
    """The default SLOs of every preset model that keeps them, and the problems found (FILE:LINE)."""
    lines = model_key_lines(config, ("default_slos",))
    specs: list[SloSpec] = []
    problems: list[Problem] = []
    for index, model in enumerate(config.models):
        line = lines.get((index, "default_slos"), lines.get((index, None)))

        def problem(message: str) -> None:
            problems.append(Problem(config.source_path, line, f"model {model.name!r}: default_slos: {message}"))

        wanted = model.default_slos
        if model.preset is None:
            if wanted.availability is not None or wanted.latency is not None:
                problem("default SLOs come from a preset's series: set 'preset' or remove them")
            continue
        if not wanted.enabled:
            continue
        try:
            metrics = resolve_model_metrics(model)
        except ModelMetricsError:
            continue  # reported by the model metrics check
        source = f"{config.source_path}:{line}"
        availability = _availability_sli(metrics)
        if availability is not None:
            specs.append(SloSpec(service=model.name, name="availability", sli=availability, period=period,
                                 objective=wanted.availability or DEFAULT_AVAILABILITY, source=source,
                                 description=f"{model.name}: requests that succeed ({model.preset} preset)"))
        elif wanted.availability is not None:
            problem(f"the {model.preset} preset counts no failed requests, so there is no availability SLO")
        if wanted.latency is not None:
            latency = _latency_sli(model, metrics, wanted.latency.threshold, problem)
            if latency is not None:
                specs.append(SloSpec(
                    service=model.name, name="latency", sli=latency, period=period,
                    objective=wanted.latency.objective, source=source,
                    description=f"{model.name}: requests faster than {wanted.latency.threshold.total_seconds():g}s "
                                f"({model.preset} preset)"))
    return specs, problems


def _availability_sli(metrics: ModelMetrics) -> EventsSli | None:
    if metrics.success is None or metrics.failure is None:
        return None
    success, failure = (f"sum(rate({selector}[{WINDOW}]))" for selector in (metrics.success, metrics.failure))
    # A counter never incremented may not be exported yet (Seldon's failures exist once a request
    # fails): it counts as 0 while the other has data; with neither, the window is no data.
    failed = f"({failure} or 0 * {success})"
    succeeded = f"({success} or 0 * {failure})"
    return EventsSli(error_query=failed, total_query=f"{succeeded} + {failed}")


def _latency_sli(model: ModelConfig, metrics: ModelMetrics, threshold: timedelta, problem) -> EventsSli | None:
    latency = metrics.latency
    if latency is None or latency.kind is not LatencyKind.HISTOGRAM or latency.bucket is None:
        problem(f"the {model.preset} preset exports no latency histogram (only a cumulative duration), "
                f"so there is no latency SLO")
        return None
    try:
        return threshold_sli(latency.bucket, Comparison.LTE, threshold.total_seconds() / latency.seconds_per_unit)
    except ThresholdError as exc:
        problem(f"latency: {exc}")
        return None
