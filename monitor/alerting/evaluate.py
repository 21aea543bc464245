"""Evaluate every rule for one cycle: signal conditions in-process, PromQL on Prometheus.

Pure: takes the cycle's signals and the answers to the rules' PromQL (asked by
the pipeline), returns each rule's instances. A PromQL rule follows Prometheus:
every sample its `expr` returns is a TRUE instance (the comparison in the
expression already filtered), a NaN sample is UNKNOWN, and a series that no
longer comes back is FALSE. A signal rule's instance that stops being produced
is UNKNOWN (no data), never FALSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from monitor.alerting.condition import Instance, Truth, evaluate_condition
from monitor.alerting.rule_spec import Rule
from monitor.signals import Signal
from monitor.sources.prometheus import InstantResult


@dataclass(frozen=True)
class RuleOutcomes:
    instances: dict[str, list[Instance]]   # by alert name
    absent_means: dict[str, Truth]         # what a tracked alert missing this cycle means


def promql_queries(rules: Sequence[Rule]) -> list[str]:
    """The distinct PromQL expressions the rules need this cycle."""
    return list(dict.fromkeys(rule.expr for rule in rules if rule.expr is not None))


def evaluate_rules(rules: Sequence[Rule], signals: Sequence[Signal],
                   promql_answers: Mapping[str, InstantResult]) -> RuleOutcomes:
    """Each rule's instances with their truth values."""
    instances: dict[str, list[Instance]] = {}
    absent_means: dict[str, Truth] = {}
    for rule in rules:
        if rule.condition is not None:
            instances[rule.alert] = evaluate_condition(rule.condition, signals)
            absent_means[rule.alert] = Truth.UNKNOWN
        elif rule.expr is not None and rule.expr in promql_answers:
            answer = promql_answers[rule.expr]
            instances[rule.alert] = [
                Instance({k: v for k, v in sample.labels.items() if k != "__name__"},
                         Truth.TRUE if sample.value is not None else Truth.UNKNOWN, sample.value,
                         {"value": sample.value})
                for sample in answer.samples]
            absent_means[rule.alert] = Truth.FALSE
    return RuleOutcomes(instances, absent_means)
