"""Cost reports -> `monitor.signals.Signal`s for the rules engine (and /metrics).

Whole-model signals carry `version=""`; per-version signals carry the version.
`gpu_utilization` is per model only (GPUs belong to models, not versions).

In the daemon (`cost_signals` with a state store) the trailing-week figures are
built from closed hours (`monitor.cost.hourly`) once per hour and reused by the
cycles in between, also across restarts (they are kept in the state store); their
age is the `figures_age_seconds{figure="cost_weekly"}` signal. Inference rates and
GPU utilisation over the last minutes are measured every cycle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Mapping

from monitor.config import Config
from monitor.cost import queries
from monitor.cost.allocation import CostReport, ModelCost, cost_per_1k_change
from monitor.cost.collect import WEEK, Answers, CostWindows, compute_cost_windows
from monitor.cost.fleet import fleet_figures
from monitor.cost.hourly import model_series_set, trailing_weeks
from monitor.cost.presets import resolve_model_metrics
from monitor.cost.tokens import cost_per_1m_tokens_change
from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.incremental import PeriodRepository, closed_boundary
from monitor.signals import Signal
from monitor.sources.prometheus import InstantQuery, InstantResult, PrometheusSource, QueryError, RangeResult
from monitor.store import StateStore
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
    return [*weekly_signals(current, cost_per_1k_change), *recent_signals(inference_rates, utilization)]


def weekly_signals(current: CostReport, cost_per_1k_change: Mapping[tuple[str, str | None], float | None],
                   tokens_change: Mapping[tuple[str, str | None], float | None] | None = None) -> list[Signal]:
    """Cost per 1k, its week-over-week change, cost, idle cost and GPU-hours per model and version,
    tokens and cost per 1M tokens (and its change, `tokens_change`) where the model counts
    tokens, and the fleet's GPU-hours, utilisation and idle cost (pure)."""
    fleet = fleet_figures(current)
    evidence = {"gpus": float(fleet.gpus), "gpu_cost_usd": fleet.gpu_cost_usd}
    signals: list[Signal] = [Signal("fleet_gpu_hours", {}, fleet.gpu_hours, evidence),
                             Signal("fleet_gpu_utilization", {}, fleet.gpu_utilization, evidence),
                             Signal("fleet_idle_cost_usd", {}, fleet.idle_cost_usd, evidence)]
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
        if cost.gpus or cost.version is not None:
            signals.append(Signal("cost_allocation_info", {**labels, "allocation": cost.allocation.value,
                                                           "sharing": cost.sharing.value if cost.sharing else ""}, 1.0))
        if cost.prompt_tokens is not None or cost.generation_tokens is not None:
            token_evidence = {**evidence, "prompt_tokens": cost.prompt_tokens,
                              "generation_tokens": cost.generation_tokens}
            signals += [
                Signal("prompt_tokens", labels, cost.prompt_tokens, token_evidence),
                Signal("generation_tokens", labels, cost.generation_tokens, token_evidence),
                Signal("cost_per_1m_tokens", labels, cost.cost_per_1m_tokens, token_evidence),
                Signal("cost_per_1m_tokens_wow_change", labels,
                       (tokens_change or {}).get((cost.model, cost.version)), token_evidence),
            ]
    return signals


def recent_signals(inference_rates: Mapping[tuple[str, str | None], float | None],
                   utilization: Mapping[str, float | None]) -> list[Signal]:
    """Inference rates per model and version, and recent GPU utilisation per model (pure)."""
    signals: list[Signal] = []
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
    return _utilization_of(compute_cost_windows(source, config, first_end=at, count=1, window=UTILIZATION_WINDOW)[0],
                           config)


def _utilization_of(report: CostReport, config: Config) -> dict[str, float | None]:
    """Per model with a `gpus` selector: a CPU-only model has no GPU utilisation, not an unknown one."""
    with_gpus = {m.name for m in config.models if m.gpus}
    return {c.model: c.gpu_utilization for c in report.models if c.version is None and c.model in with_gpus}


def cost_signals(source: PrometheusSource, config: Config, now: datetime | None = None,
                 store: StateStore | None = None) -> list[Signal]:
    """Every cost signal for the daemon's cycle at `now`.

    Without a store: the trailing 7 days ending at `now` and week over week, measured
    directly. With one: the same figures for the two weeks ending at the latest closed
    hour, from stored hours, recomputed once per hour (see the module doc).
    """
    now = utc(now or utc_now()).replace(second=0, microsecond=0)
    recent = CostWindows.plan(config, now, 1, UTILIZATION_WINDOW)
    rate_queries = _inference_rate_queries(config, now)
    if store is None:
        # The two weeks, the inference rates and the last 15 minutes go out as one batch,
        # so the slow week queries overlap the rest; failures are raised in that order.
        weeks = CostWindows.plan(config, now - WEEK, 2, WEEK)
        answers = source.run([*weeks.range_queries(), *recent.range_queries(), *rate_queries.values()])
        broken, answers, gpus_unknown = _isolate_rejected((weeks, recent), rate_queries, answers)
        previous, current = weeks.reports(answers)
        weekly = weekly_signals(current, cost_per_1k_change(current, previous),
                                cost_per_1m_tokens_change(current, previous))
        sharing: CostReport | None = current
    else:
        answers = source.run([*recent.range_queries(), *rate_queries.values()])
        broken, answers, gpus_unknown = _isolate_rejected((recent,), rate_queries, answers)
        # A broken model's selectors are as wrong over closed hours as over the last
        # minutes: the weekly figures are built without it (and its co-tenants' split
        # withheld below, judged by who shares a GPU now).
        healthy = replace(config, models=[m for m in config.models if m.name not in broken])
        weekly = _weekly_from_hours(source, healthy, store, now)
        sharing = None  # the last minutes' report, below
    rates = _inference_rates_from(config, rate_queries, answers)
    recent_report = recent.reports(answers)[0]
    utilization = _utilization_of(recent_report, config)
    signals = [*weekly, *recent_signals(rates, utilization)]
    if not broken:
        return signals
    cotenants = _gpu_cotenants(sharing or recent_report, broken, gpus_unknown)
    # The fleet's figures leave out a broken model's GPUs: withheld (no data), never low.
    kept = [s for s in signals if s.labels.get("model") not in broken and s.name not in _FLEET
            and not (s.name in _SPLIT_BY_INFERENCES and s.labels.get("model") in cotenants)]
    return [*kept, *(DefinitionError.of(DefinitionKind.MODEL, name, error).signal() for name, error in broken.items())]


WEEKLY_NAMESPACE = "cost_weekly"
WEEKLY_FIGURE = "cost_weekly"


def _weekly_from_hours(source: PrometheusSource, config: Config, store: StateStore, now: datetime
                       ) -> list[Signal]:
    """The weekly signals as of the latest closed hour, reused from the store while that hour is current."""
    boundary = closed_boundary(now)
    # What the figures depend on besides time: each model's queries and the prices.
    key = hashlib.sha256(json.dumps([[model_series_set(m) for m in config.models],
                                     asdict(config.cost.pricing)], sort_keys=True).encode()).hexdigest()[:32]
    cached = store.get_blob(WEEKLY_NAMESPACE, key)
    signals: list[Signal] | None = None
    if cached is not None:
        saved = json.loads(cached)
        if saved["end"] == boundary.timestamp():
            signals = [Signal(s["name"], s["labels"], s["value"], s["evidence"]) for s in saved["signals"]]
    if signals is None:
        weeks = trailing_weeks(source, config, PeriodRepository(store), now)
        signals = weekly_signals(weeks.current, cost_per_1k_change(weeks.current, weeks.previous),
                                 cost_per_1m_tokens_change(weeks.current, weeks.previous))
        store.delete_blobs(WEEKLY_NAMESPACE)
        store.put_blob(WEEKLY_NAMESPACE, key, json.dumps({
            "end": boundary.timestamp(),
            "signals": [{"name": s.name, "labels": dict(s.labels), "value": s.value, "evidence": dict(s.evidence)}
                        for s in signals]}).encode(), now.timestamp())
    age = (now - boundary).total_seconds()
    return [*signals, Signal("figures_age_seconds", {"figure": WEEKLY_FIGURE}, age,
                             {"as_of": boundary.timestamp()})]


# -- a model whose own query the server rejects --------------------------------------
# Only that model is in error (monitor.definition_errors). Its figures are unknown, and
# so are the costs of models sharing a GPU with it (shared GPUs are split by
# inferences): those signals are withheld, which reads as no data, never as a number.
# How they were split (cost_allocation_info) is unknown too: without the broken model a
# shared GPU would read as theirs alone.
_FLEET = frozenset({"fleet_gpu_hours", "fleet_gpu_utilization", "fleet_idle_cost_usd"})
_SPLIT_BY_INFERENCES = frozenset({"cost_per_1k", "cost_per_1k_wow_change", "cost_usd", "idle_cost_usd",
                                  "gpu_hours", "cost_allocation_info", "cost_per_1m_tokens",
                                  "cost_per_1m_tokens_wow_change"})


def _isolate_rejected(plans: tuple[CostWindows, ...], rate_queries: Mapping[str, InstantQuery], answers: Answers
                      ) -> tuple[dict[str, QueryError], Answers, bool]:
    """(broken models, the answers with their rejected queries as no data, whether a broken
    model's GPUs are unknown); raises a rejection no model owns."""
    broken = _rejected_models(plans, rate_queries, answers)
    if not broken:
        return broken, answers, False
    return broken, _as_no_data(answers), _gpu_queries_rejected(broken, plans, answers)


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
                   if plan.model in broken for figure in (plan.unit_minutes, *plan.pod_figures.values()) if figure}
    return any(isinstance(answers.get(query), QueryError) for query in gpu_queries)


def _gpu_cotenants(report: CostReport, broken: Mapping[str, QueryError], gpus_unknown: bool) -> set[str]:
    """The models whose GPU share depends on a broken one (every model with GPUs when its GPUs are unknown)."""
    return {cost.model for cost in report.models
            if cost.version is None and cost.model not in broken and cost.gpus
            and (gpus_unknown or any(set(g.shared_with) & set(broken) for g in cost.gpus))}
