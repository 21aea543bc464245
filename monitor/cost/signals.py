"""Cost reports -> `monitor.signals.Signal`s for the rules engine (and /metrics).

Whole-model signals carry `version=""`; per-version signals carry the version.
`gpu_utilization` is per model only (GPUs belong to models, not versions).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from monitor.config import Config
from monitor.cost import queries
from monitor.cost.allocation import CostReport, ModelCost, cost_per_1k_change
from monitor.cost.collect import WEEK, Answers, CostWindows, compute_cost_windows
from monitor.cost.presets import resolve_model_metrics
from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.signals import Signal
from monitor.sources.prometheus import InstantQuery, InstantResult, PrometheusSource, QueryError, RangeResult
from monitor.timeutil import utc, utc_now

RATE_WINDOW = timedelta(minutes=5)
UTILIZATION_WINDOW = timedelta(minutes=15)


def _labels(model: str, version: str | None) -> dict[str, str]:
    return {"model": model, "version": version if version is not None else ""}


def report_signals(current: CostReport, cost_per_1k_change: Mapping[tuple[str, str | None], float | None],
                   inference_rates: Mapping[tuple[str, str | None], float | None],
                   utilization: Mapping[str, float | None]) -> list[Signal]:
    """The catalogue's cost signals from a trailing-week report, its week-over-week change,
    the current inference rates and the recent GPU utilisation (pure)."""
    signals: list[Signal] = []
    for cost in current.models:
        labels = _labels(cost.model, cost.version)
        evidence = _evidence(cost)
        signals += [
            Signal("cost_per_1k", labels, cost.cost_per_1k, evidence),
            Signal("cost_per_1k_wow_change", labels, cost_per_1k_change.get((cost.model, cost.version)), evidence),
            Signal("cost_usd", labels, cost.cost_usd, evidence),
            Signal("idle_cost_usd", labels, cost.idle_cost_usd, evidence),
            Signal("gpu_hours", labels, cost.gpu_hours, evidence),
        ]
    for (model, version), rate in inference_rates.items():
        signals.append(Signal("model_inference_rate", _labels(model, version), rate))
    for model, value in utilization.items():
        signals.append(Signal("gpu_utilization", {"model": model}, value))
    return signals


def _evidence(cost: ModelCost) -> dict[str, float | None]:
    return {"inferences": cost.inferences, "gpu_hours": cost.gpu_hours, "gpu_utilization": cost.gpu_utilization,
            "cost_usd": cost.cost_usd, "idle_cost_usd": cost.idle_cost_usd}


def inference_rates(source: PrometheusSource, config: Config, at: datetime
                    ) -> dict[tuple[str, str | None], float | None]:
    """Inferences per second over the last 5 minutes, per model (version None) and per version.

    A model whose counter has no series gets None (no data), not 0.
    """
    wanted = _inference_rate_queries(config, at)
    return _inference_rates_from(config, wanted, source.run(wanted.values()))


def _inference_rate_queries(config: Config, at: datetime) -> dict[str, InstantQuery]:
    """Each model's rate query: one family across the models sharing a counter."""
    return {m.name: InstantQuery.member(queries.inference_rate_family(resolve_model_metrics(m), RATE_WINDOW), at)
            for m in config.models}


def _inference_rates_from(config: Config, wanted: Mapping[str, InstantQuery], answers: Answers
                          ) -> dict[tuple[str, str | None], float | None]:
    labels = {m.name: resolve_model_metrics(m).version_label for m in config.models}
    rates: dict[tuple[str, str | None], float | None] = {}
    for name, query in wanted.items():
        answer = answers[query]
        if isinstance(answer, QueryError):
            raise answer
        assert isinstance(answer, InstantResult)
        label = labels[name]
        values = [(s.labels.get(label, "") if label else "", s.value) for s in answer.samples if s.value is not None]
        rates[(name, None)] = sum(v for _, v in values) if values else None
        if any(version for version, _ in values):
            for version, value in values:
                rates[(name, version)] = value
    return rates


def recent_utilization(source: PrometheusSource, config: Config, at: datetime) -> dict[str, float | None]:
    """Mean GPU utilisation (0..1) per model over the last 15 minutes."""
    return _utilization_of(compute_cost_windows(source, config, first_end=at, count=1, window=UTILIZATION_WINDOW)[0])


def _utilization_of(report: CostReport) -> dict[str, float | None]:
    return {c.model: c.gpu_utilization for c in report.models if c.version is None}


def cost_signals(source: PrometheusSource, config: Config, now: datetime | None = None) -> list[Signal]:
    """Every cost signal for the daemon's cycle at `now` (trailing 7 days, week over week)."""
    now = utc(now or utc_now()).replace(second=0, microsecond=0)
    # The two weeks, the inference rates and the last 15 minutes go out as one batch,
    # so the slow week queries overlap the rest; failures are raised in that order.
    weeks = CostWindows.plan(config, now - WEEK, 2, WEEK)
    recent = CostWindows.plan(config, now, 1, UTILIZATION_WINDOW)
    rate_queries = _inference_rate_queries(config, now)
    answers = source.run([*weeks.range_queries(), *recent.range_queries(), *rate_queries.values()])
    broken = _rejected_models((weeks, recent), rate_queries, answers)
    if broken:
        gpus_unknown = _gpu_queries_rejected(broken, (weeks, recent), answers)
        answers = _as_no_data(answers)
    previous, current = weeks.reports(answers)
    rates = _inference_rates_from(config, rate_queries, answers)
    utilization = _utilization_of(recent.reports(answers)[0])
    signals = report_signals(current, cost_per_1k_change(current, previous), rates, utilization)
    if not broken:
        return signals
    cotenants = _gpu_cotenants(current, broken, gpus_unknown)
    kept = [s for s in signals if s.labels.get("model") not in broken
            and not (s.name in _SPLIT_BY_INFERENCES and s.labels.get("model") in cotenants)]
    return [*kept, *(DefinitionError.of(DefinitionKind.MODEL, name, error).signal() for name, error in broken.items())]


# -- a model whose own query the server rejects --------------------------------------
# Only that model is in error (monitor.definition_errors). Its figures are unknown, and
# so are the costs of models sharing a GPU with it (shared GPUs are split by
# inferences): those signals are withheld, which reads as no data, never as a number.
_SPLIT_BY_INFERENCES = frozenset({"cost_per_1k", "cost_per_1k_wow_change", "cost_usd", "idle_cost_usd",
                                  "gpu_hours"})


def _rejected_models(plans: tuple[CostWindows, ...], rate_queries: Mapping[str, InstantQuery],
                     answers: Answers) -> dict[str, QueryError]:
    """Model name -> its first query the server rejected as wrong; raises a rejection no model owns."""
    owned: dict[object, str] = {query: name for name, query in rate_queries.items()}
    for windows in plans:
        for plan in windows.plans:
            owned.update({windows.range_query(figure): plan.model for figure in plan.all_queries()})
    broken: dict[str, QueryError] = {}
    for key, answer in answers.items():
        if isinstance(answer, QueryError) and not answer.server_fault:
            if key not in owned:
                raise answer  # a shared query (the GPU price): not one model's fault
            broken.setdefault(owned[key], answer)
    return broken


def _as_no_data(answers: Answers) -> Answers:
    """Rejected queries as empty answers (no series: no data), so the rest can be computed."""
    out: dict = {}
    for key, answer in answers.items():
        if isinstance(answer, QueryError) and not answer.server_fault:
            answer = (InstantResult(key.query, key.at, []) if isinstance(key, InstantQuery)
                      else RangeResult(key.query, key.start, key.end, key.step, []))
        out[key] = answer
    return out


def _gpu_queries_rejected(broken: Mapping[str, QueryError], plans: tuple[CostWindows, ...],
                          answers: Answers) -> bool:
    """Whether a broken model's own GPU queries were rejected: then nobody knows which GPUs it shares."""
    gpu_queries = {windows.range_query(figure) for windows in plans for plan in windows.plans
                   if plan.model in broken for figure in (plan.gpu_minutes, plan.gpu_util_sum) if figure}
    return any(isinstance(answers.get(query), QueryError) for query in gpu_queries)


def _gpu_cotenants(report: CostReport, broken: Mapping[str, QueryError], gpus_unknown: bool) -> set[str]:
    """The models whose GPU share depends on a broken one (every model with GPUs when its GPUs are unknown)."""
    return {cost.model for cost in report.models
            if cost.version is None and cost.model not in broken and cost.gpus
            and (gpus_unknown or any(set(g.shared_with) & set(broken) for g in cost.gpus))}
