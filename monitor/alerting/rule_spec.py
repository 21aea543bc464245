"""Alert rule files (`rules/*.yaml`, `version: monitor/v1`) and their internal model.

The format stays close to Prometheus alerting rules so an SRE reads it at sight:

    version: monitor/v1
    groups:
      - name: slo
        rules:
          - alert: SLOPage
            condition: slo_page == 1          # over the daemon's signals, or
            # expr: time() - x > 3600         # raw PromQL evaluated on Prometheus
            for: 0m
            keep_firing_for: 5m
            labels: {severity: page}
            annotations: {summary: "{{ $labels.service }} burns its budget"}
            actions: [rollback]               # publish a rollback request to webhooks
            no_data: alert                    # or ok, keep (see NoDataPolicy)
            no_data_for: 30m

The YAML models (`*Spec`) are parsed strictly by `typed_yaml`; `load_rules`
compiles them into `Rule`, the frozen model the engine runs, so nothing
downstream re-validates. PromQL syntax is checked by `rule_check` (it needs a
server or promtool), not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Literal, Mapping

import yaml

from monitor.alerting.condition import (Condition, ConditionSyntaxError, check_against_catalogue,
                                        parse_condition, result_labels)
from monitor.alerting.templates import template_problem
from monitor.config import Config
from monitor.errors import ConfigError, Problem
from monitor.typed_yaml import INVALID, YamlFile, mapping_get, node_line

RULE_FILE_VERSION = "monitor/v1"
_ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels the engine sets itself; a rule may not override them.
RESERVED_LABELS = ("alertname",)


class Action(Enum):
    ROLLBACK = "rollback"


class NoDataPolicy(Enum):
    """What an alert whose condition has no data (NaN, empty, a vanished series) becomes
    once that has lasted `no_data_for` (Grafana's "no data" handling)."""

    ALERT = "alert"   # a no-data alert fires (the rule's labels plus alertstate="nodata")
    OK = "ok"         # no data counts as the condition not holding: a firing alert resolves
    KEEP = "keep"     # the alert keeps its state until data returns


DEFAULT_NO_DATA_FOR = timedelta(minutes=30)


# -- the file format ------------------------------------------------------------

@dataclass(frozen=True)
class RuleSpec:
    alert: str
    condition: str | None = None
    expr: str | None = None
    for_: timedelta = field(default=timedelta(0), metadata={"key": "for"})
    keep_firing_for: timedelta = timedelta(0)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    actions: list[Literal["rollback"]] = field(default_factory=list)
    no_data: Literal["alert", "ok", "keep"] = "alert"
    no_data_for: timedelta = DEFAULT_NO_DATA_FOR

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if (self.condition is None) == (self.expr is None):
            problems.append((None, "needs exactly one of 'condition' (over signals) or 'expr' (PromQL)"))
        if not _ALERT_NAME.match(self.alert):
            problems.append(("alert", f"{self.alert!r} is not a valid alert name ([a-zA-Z_][a-zA-Z0-9_]*)"))
        if "severity" not in self.labels:
            problems.append(("labels", "needs a 'severity' label (e.g. page or ticket)"))
        for name in self.labels:
            if not _LABEL_NAME.match(name):
                problems.append(("labels", f"{name!r} is not a valid label name"))
            if name in RESERVED_LABELS:
                problems.append(("labels", f"{name!r} is set by the engine"))
        for key in ("for_", "keep_firing_for", "no_data_for"):
            if getattr(self, key) < timedelta(0):
                problems.append((key.rstrip("_"), "must not be negative"))
        return problems


@dataclass(frozen=True)
class RuleGroupSpec:
    name: str
    # Each rule is built into a RuleSpec on its own, so one broken rule does not
    # hide the problems of the others.
    rules: list[yaml.Node]


@dataclass(frozen=True)
class RuleFileSpec:
    version: Literal["monitor/v1"]
    groups: list[RuleGroupSpec]


# -- the internal model ---------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One compiled alert rule; exactly one of `condition` and `expr` is set."""

    alert: str
    group: str
    file: str
    line: int
    for_duration: timedelta
    keep_firing_for: timedelta
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    actions: frozenset[Action]
    condition: Condition | None = None
    condition_text: str | None = None
    expr: str | None = None
    expr_line: int | None = None
    no_data: NoDataPolicy = NoDataPolicy.ALERT
    no_data_for: timedelta = DEFAULT_NO_DATA_FOR

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def requests_rollback(self) -> bool:
        return Action.ROLLBACK in self.actions


def load_rule_file(path: str | Path) -> list[Rule]:
    """Load and compile one rule file; raise ConfigError with every FILE:LINE problem."""
    doc = YamlFile(path)
    rules = _compile_file(doc)
    doc.raise_if_problems()
    return rules


def load_rules(config: Config) -> list[Rule]:
    """Every rule in the config's rule files; alert names must be unique across them."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    for path in config.rule_files:
        try:
            doc = YamlFile(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        rules.extend(_compile_file(doc))
        problems.extend(doc.problems)
    first_by_name: dict[str, Rule] = {}
    for rule in rules:
        first = first_by_name.setdefault(rule.alert, rule)
        if first is not rule:
            problems.append(Problem(rule.file, rule.line,
                                    f"duplicate alert name {rule.alert!r} (first defined at {first.where})"))
    if problems:
        raise ConfigError(problems)
    return rules


def _compile_file(doc: YamlFile) -> list[Rule]:
    if not doc.documents:
        doc.problems.append(Problem(doc.path, 1, "rule file is empty"))
        return []
    root = doc.documents[0]
    spec = doc.build(RuleFileSpec, root, "")
    if spec is INVALID:
        return []
    rules: list[Rule] = []
    for index, group in enumerate(spec.groups):
        for position, rule_node in enumerate(group.rules):
            rule_spec = doc.build(RuleSpec, rule_node, f"groups[{index}].rules[{position}]")
            if rule_spec is not INVALID:
                rule = _compile_rule(doc, group.name, rule_spec, rule_node)
                if rule is not None:
                    rules.append(rule)
    return rules


def _compile_rule(doc: YamlFile, group: str, spec: RuleSpec, node) -> Rule | None:
    where = f"groups[{group}].rules[{spec.alert}]"
    ok = True
    condition = None
    if spec.condition is not None:
        condition_node = mapping_get(node, "condition")
        try:
            condition = parse_condition(spec.condition)
        except ConditionSyntaxError as exc:
            doc.error(condition_node, f"{where}.condition: {exc}")
            ok = False
        else:
            for message in check_against_catalogue(condition):
                doc.error(condition_node, f"{where}.condition: {message}")
                ok = False
    if spec.expr is not None and not spec.expr.strip():
        doc.error(mapping_get(node, "expr"), f"{where}.expr: must not be empty")
        ok = False
    annotations_node = mapping_get(node, "annotations")
    for key, template in spec.annotations.items():
        problem = template_problem(template, spec.labels)  # compiled, and rendered once with sample labels
        if problem:
            doc.error(mapping_get(annotations_node, key) if annotations_node else node,
                      f"{where}.annotations.{key}: {problem}")
            ok = False
    if spec.actions and "rollback" in spec.actions and condition is not None:
        carried = result_labels(condition)
        missing = [label for label in ("model", "version") if label not in carried]
        if missing:
            doc.error(mapping_get(node, "actions"),
                      f"{where}.actions: rollback needs alerts labelled with model and version; "
                      f"this condition's alerts lack {', '.join(missing)}")
            ok = False
    if not ok:
        return None
    expr_node = mapping_get(node, "expr")
    return Rule(
        alert=spec.alert, group=group, file=doc.path, line=node_line(node),
        for_duration=spec.for_, keep_firing_for=spec.keep_firing_for,
        labels=dict(spec.labels), annotations=dict(spec.annotations),
        actions=frozenset(Action(a) for a in spec.actions),
        condition=condition, condition_text=spec.condition,
        expr=spec.expr.strip() if spec.expr is not None else None,
        expr_line=node_line(expr_node) if expr_node is not None else None,
        no_data=NoDataPolicy(spec.no_data), no_data_for=spec.no_data_for,
    )
