"""One cycle: sources -> compute -> alerting -> queued outputs, nothing else.

The producers (SLOs, drift, cost) read Prometheus and compute signals, side by
side; the rules turn signals (and their own PromQL) into alert states; the policy
decides which notifications to queue. Delivery is the outbox's job, from the
notifications table. The web UI's snapshot of the cycle is saved after it
(`save_ui_snapshot`), off the path from a query's answer to a queued notification.

A cycle in which any query fails for the server's reason (Prometheus down, a
timeout, a 5xx: `QueryError.server_fault`) changes no alert state: it is recorded
as a failed cycle and nothing else. A half-answered cycle would otherwise read as
"no data" or "resolved" everywhere. A query the server rejects as wrong (a 4xx)
is one SLO's, rule's or model's fault: that definition is in error (a
`definition_error` signal, see monitor.definition_errors), its alerts keep their
state, and every other definition is evaluated as usual. A rejected query that no
definition owns fails the cycle, as a server fault does.

One writer at a time: a cycle reads the alert state, then writes its outcome in
one transaction. The daemon runs cycles one after another; two `run --once`
processes on one state file at once would each step from the same old state.
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping, Sequence

from monitor.alerting.definition_error_repository import DefinitionErrorRepository
from monitor.alerting.evaluate import evaluate_rules, promql_queries, rule_errors, signals_read
from monitor.alerting.lifecycle import Alert, Transition, advance, rule_key
from monitor.alerting.policy import apply_inhibition, apply_silences, plan_group_notifications, plan_rollbacks
from monitor.alerting.repository import AlertRepository, QueuedNotification
from monitor.alerting.routes import route_tree
from monitor.alerting.rule_spec import Rule, load_rules
from monitor.alerting.versions import observe_serving
from monitor.config import Config
from monitor.cost import cost_signals
from monitor.definition_errors import DefinitionError, definition_errors_in
from monitor.drift.prediction_drift import compute_config_drift
from monitor.drift.signals import drift_signals
from monitor.retention import prune_history
from monitor.signals import Signal
from monitor.slo import EvaluationMode, SloSpec, evaluate_slos, load_slo_specs, slo_signals
from monitor.sources.prometheus import InstantResult, PrometheusSource, QueryError
from monitor.store import StateStore
from monitor.timeutil import utc, utc_now
from monitor.ui import snapshot as ui_snapshot

log = logging.getLogger(__name__)

SignalProducer = Callable[[PrometheusSource, Config, datetime, StateStore], list[Signal]]


def evaluate_slo_signals(source: PrometheusSource, config: Config, specs: Sequence[SloSpec],
                         at: datetime, store: StateStore | None = None) -> list[Signal]:
    """The SLO signals for `specs`, in the config's evaluation mode and with its minimum events.

    With a store, windows over 6 hours come from closed hours kept there (direct mode)."""
    if not specs:
        return []
    results = evaluate_slos(source, list(specs), at, mode=EvaluationMode(config.slo_evaluation),
                            min_events=config.slo_min_events, store=store)
    return slo_signals(results)


def drift_producer(source: PrometheusSource, config: Config, at: datetime, store: StateStore) -> list[Signal]:
    """Prediction (and logged feature) drift per model version and column, and drift share."""
    return drift_signals(compute_config_drift(source, config, at, store))


def cost_producer(source: PrometheusSource, config: Config, at: datetime, store: StateStore) -> list[Signal]:
    """Cost per 1k, week-over-week change, inference rates and GPU utilisation.

    The weekly figures come from closed hours kept in `store`, recomputed hourly
    (monitor.cost.signals); rates and utilisation are measured every cycle."""
    return cost_signals(source, config, at, store)


@dataclass(frozen=True)
class Definitions:
    """What the config's files define, read once per (re)load rather than every cycle:
    a rule file being edited mid-cycle must not change half a cycle, and re-parsing
    a thousand SLOs every minute costs seconds."""

    rules: tuple[Rule, ...]
    slo_specs: tuple[SloSpec, ...]


def load_definitions(config: Config) -> Definitions:
    """The rules and SLO specs of `config`; raises ConfigError with FILE:LINE problems."""
    return Definitions(tuple(load_rules(config)), tuple(load_slo_specs(config)))


def default_producers(definitions: Definitions) -> tuple[SignalProducer, ...]:
    """SLO (from the loaded specs), drift and cost producers."""

    def loaded_slo_producer(source: PrometheusSource, config: Config, at: datetime,
                            store: StateStore) -> list[Signal]:
        return evaluate_slo_signals(source, config, definitions.slo_specs, at, store)

    return (loaded_slo_producer, drift_producer, cost_producer)


class CycleQueriesFailed(QueryError):
    """Some query of the cycle failed even though its producer carried on."""


@dataclass(frozen=True)
class CycleReport:
    cycle_id: int
    evaluated_at: datetime
    ok: bool
    error: str | None = None
    signals: list[Signal] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[QueuedNotification] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)
    queries: int = 0
    # SLOs, rules and models whose own query the server rejected this cycle.
    definition_errors: list[DefinitionError] = field(default_factory=list)
    # The wall clock when the cycle started and when its outcome was written (a successful cycle's).
    started_at: datetime | None = None
    finished_at: datetime | None = None


def save_ui_snapshot(store: StateStore, report: CycleReport) -> None:
    """Keep a successful cycle's signals for the web UI (a standby replica's too), until the next one.

    Not part of `run_cycle`: the cycle's outcome is committed (and the outbox can deliver
    it) before this encodes ~20,000 signals at a thousand SLOs, a few hundred milliseconds
    that no alert should wait for. Whoever runs a cycle calls it next; a failed cycle
    keeps the last successful one's snapshot."""
    if report.ok and report.started_at is not None and report.finished_at is not None:
        ui_snapshot.save(store, report.cycle_id, report.evaluated_at, report.started_at, report.finished_at,
                         report.signals)


def run_cycle(config: Config, store: StateStore, source: PrometheusSource, at: datetime, *,
              definitions: Definitions | None = None, rules: Sequence[Rule] | None = None,
              producers: Sequence[SignalProducer] | None = None,
              clock: Callable[[], datetime] = utc_now) -> CycleReport:
    """Run one full cycle evaluated at `at`, persisting its outcome in `store`.

    `definitions` are the config's loaded rules and SLO specs (loaded here when not
    given); `rules` and `producers` override them, for tests and benchmarks.
    """
    at = utc(at)
    started_at = clock()
    if definitions is None and (rules is None or producers is None):
        definitions = load_definitions(config)
    rules = list(definitions.rules if rules is None else rules)
    producers = default_producers(definitions) if producers is None else producers
    repository = AlertRepository(store)
    stats = source.stats
    queries_before, errors_before, faults_before = stats.queries, stats.errors, stats.query_faults

    try:
        # Once Prometheus is found down or too slow, the cycle's remaining queries
        # fail at once: the cycle fails either way, and should not take N timeouts.
        with source.fail_fast():
            signals, answers = produce_side_by_side(producers, promql_queries(rules), source, config, at, store)
        for answer in answers.values():
            if isinstance(answer, QueryError) and answer.server_fault:
                raise answer
        query_faults = stats.query_faults - faults_before
        server_errors = stats.errors - errors_before - query_faults
        if server_errors > 0:
            raise CycleQueriesFailed("(producers)", f"{server_errors} queries failed during the cycle")
        signals += [error.signal() for error in rule_errors(rules, answers)]
        definition_errors = definition_errors_in(signals)
        if query_faults and not definition_errors:
            raise CycleQueriesFailed("(producers)", f"{query_faults} queries were rejected and no SLO, rule "
                                                    f"or model owns them")
    except QueryError as exc:
        # DEBUG: the caller reports the failed cycle once (the daemon with its duration,
        # `run --once` in its output); one event, one line.
        log.debug("cycle at %s failed, alert states unchanged: %s", at.isoformat(), exc)
        cycle_id = repository.record_failed_cycle(at, started_at, clock(), str(exc))
        prune_history(store, evaluated_at=at, wall_now=clock(), retention=config.state.retention)
        return CycleReport(cycle_id, at, ok=False, error=str(exc), alerts=repository.alerts(),
                           queries=source.stats.queries - queries_before)

    previous = repository.alerts()
    versions = observe_serving(repository.versions(), signals, at)
    outcomes = evaluate_rules(rules, signals, answers)
    alerts, transitions = advance(previous, rules, outcomes.instances, at, outcomes.absent_means)
    alerts, transitions = freeze_broken(previous, alerts, transitions, rules, definition_errors)
    alerts = apply_silences(alerts, repository.silences(), at)
    alerts = apply_inhibition(alerts, config.alerting.inhibit)
    rollbacks = plan_rollbacks(alerts, {r.alert: r for r in rules}, versions, config.alerting, at)
    group_notifications, groups = plan_group_notifications(rollbacks.alerts, repository.groups(),
                                                           config.alerting, at,
                                                           route_tree(config.outputs, config.alerting))
    finished_at = clock()
    cycle_id, queued = repository.save_cycle(
        evaluated_at=at, started_at=started_at, finished_at=finished_at, signal_count=len(signals),
        previous=previous, alerts=rollbacks.alerts, transitions=transitions, groups=groups,
        versions=rollbacks.versions, notifications=[*group_notifications, *rollbacks.notifications])
    DefinitionErrorRepository(store).save(cycle_id, at, definition_errors)
    if definition_errors:
        log.warning("cycle at %s: %d definitions in error (their alerts keep their state): %s", at.isoformat(),
                    len(definition_errors), "; ".join(f"{e.kind.value} {e.name}: {e.message}"
                                                      for e in definition_errors))
    prune_history(store, evaluated_at=at, wall_now=clock(), retention=config.state.retention)
    return CycleReport(cycle_id, at, ok=True, signals=signals, transitions=transitions, notifications=queued,
                       alerts=rollbacks.alerts, queries=source.stats.queries - queries_before,
                       definition_errors=definition_errors, started_at=started_at, finished_at=finished_at)


def produce_side_by_side(producers: Sequence[SignalProducer], rule_queries: Sequence[str], source: PrometheusSource,
                         config: Config, at: datetime, store: StateStore
                         ) -> tuple[list[Signal], dict[str, InstantResult | QueryError]]:
    """Every producer's signals (in the producers' order) and the rules' own query answers.

    They run side by side, one thread each: a producer spends most of its time waiting for
    Prometheus (or reading a prediction log), so the cycle takes about as long as its
    slowest producer rather than their sum. The source bounds the requests in flight, and
    the store serialises its transactions. A producer's exception is raised once all have
    finished (under `fail_fast` the others skip their queries after a server fault)."""
    with ThreadPoolExecutor(max_workers=len(producers) + 1, thread_name_prefix="producer") as pool:
        # Each in a copy of this context: the cycle id its log lines carry, and HA's `unfenced`.
        produced = [pool.submit(contextvars.copy_context().run, produce, source, config, at, store)
                    for produce in producers]
        rule_answers = pool.submit(contextvars.copy_context().run, source.instant_many, rule_queries, at)
    # Leaving the pool waited for every one of them.
    signals = [signal for future in produced for signal in future.result()]
    return signals, rule_answers.result()


def freeze_broken(previous: Mapping[str, Alert], alerts: Mapping[str, Alert], transitions: Sequence[Transition],
                  rules: Sequence[Rule], errors: Sequence[DefinitionError]
                  ) -> tuple[dict[str, Alert], list[Transition]]:
    """Undo this cycle's step for the alerts a broken definition owns: they keep their state.

    A broken SLO gives no numbers; stepping its alerts would read that as no data at
    best, and an `and` with a healthy signal could even resolve them.
    """
    if not errors:
        return dict(alerts), list(transitions)
    by_key = {rule_key(rule): rule for rule in rules}
    frozen = set()
    for fp in {*previous, *alerts}:
        alert = alerts.get(fp) or previous[fp]
        rule = by_key.get(alert.rule)
        if rule is not None and any(error.owns(alert.rule, signals_read(rule), alert.labels)
                                    for error in errors):
            frozen.add(fp)
    kept = {fp: alert for fp, alert in alerts.items() if fp not in frozen}
    kept.update({fp: previous[fp] for fp in frozen if fp in previous})
    return kept, [t for t in transitions if t.fingerprint not in frozen]
