"""Evaluate every rule for one cycle: signal conditions in-process, PromQL on Prometheus.

Pure: takes the cycle's signals and the answers to the rules' PromQL (asked by
the pipeline), returns each rule's instances. A PromQL rule follows Prometheus:
every sample its `expr` returns is a TRUE instance (the comparison in the
expression already filtered), a NaN sample is UNKNOWN, and a series that no
longer comes back is FALSE. A signal rule's instance that stops being produced
is UNKNOWN (no data), never FALSE, except for signals that exist only while
something is wrong (`ABSENCE_MEANS_FALSE`).

A PromQL rule whose query the server rejects as wrong is not evaluated: its
alerts keep their state, and it is reported as a broken definition. A server
fault is the pipeline's business (the whole cycle fails) and never reaches here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from monitor.alerting.condition import Instance, Truth, comparisons, evaluate_condition, signals_by_name
from monitor.alerting.lifecycle import rule_key
from monitor.alerting.rule_spec import Rule
from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.signals import ABSENCE_MEANS_FALSE, Signal
from monitor.sources.prometheus import InstantResult, QueryError


@dataclass(frozen=True)
class RuleOutcomes:
    instances: dict[str, list[Instance]]   # by alert name
    absent_means: dict[str, Truth]         # what a tracked alert missing this cycle means
    # PromQL rules whose query was rejected (not evaluated this cycle).
    errors: list[DefinitionError] = field(default_factory=list)


def promql_queries(rules: Sequence[Rule]) -> list[str]:
    """The distinct PromQL expressions the rules need this cycle."""
    return list(dict.fromkeys(rule.expr for rule in rules if rule.expr is not None))


def rule_errors(rules: Sequence[Rule], promql_answers: Mapping[str, InstantResult | QueryError]
                ) -> list[DefinitionError]:
    """The PromQL rules whose query the server rejected as wrong (a 4xx), one error each."""
    return [DefinitionError.of(DefinitionKind.RULE, rule_key(rule), answer)
            for rule in rules if rule.expr is not None
            for answer in [promql_answers.get(rule.expr)]
            if isinstance(answer, QueryError) and not answer.server_fault]


def signals_read(rule: Rule) -> tuple[str, ...]:
    """The signal names a signal rule's condition reads (none for a PromQL rule)."""
    return tuple(c.signal for c in comparisons(rule.condition)) if rule.condition is not None else ()


def evaluate_rules(rules: Sequence[Rule], signals: Sequence[Signal],
                   promql_answers: Mapping[str, InstantResult | QueryError]) -> RuleOutcomes:
    """Each rule's instances with their truth values; rules with a rejected query are left out."""
    instances: dict[str, list[Instance]] = {}
    absent_means: dict[str, Truth] = {}
    by_name = signals_by_name(signals)
    for rule in rules:
        if rule.condition is not None:
            instances[rule.alert] = evaluate_condition(rule.condition, by_name)
            absent_means[rule.alert] = (Truth.FALSE if set(signals_read(rule)) <= ABSENCE_MEANS_FALSE
                                        else Truth.UNKNOWN)
        elif rule.expr is not None and isinstance(promql_answers.get(rule.expr), InstantResult):
            answer = promql_answers[rule.expr]
            instances[rule.alert] = [
                Instance({k: v for k, v in sample.labels.items() if k != "__name__"},
                         Truth.TRUE if sample.value is not None else Truth.UNKNOWN, sample.value,
                         {"value": sample.value})
                for sample in answer.samples]
            absent_means[rule.alert] = Truth.FALSE
    return RuleOutcomes(instances, absent_means, rule_errors(rules, promql_answers))
