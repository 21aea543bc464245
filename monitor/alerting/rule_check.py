"""`monitor check` for rule files: structure, signals and PromQL syntax, as FILE:LINE problems.

PromQL syntax is checked offline by the PromQL parser (monitor.promql_syntax), never
by asking the server: a server that is down, slow or behind a proxy must not let a
typo through to the daemon. What only the server knows (a function it does not
enable) puts just that rule in error at run time (monitor.definition_errors).
"""

from __future__ import annotations

from monitor.alerting.condition import result_labels
from monitor.alerting.route_check import routing_warnings
from monitor.alerting.rule_spec import Rule, load_rules
from monitor.config import Config
from monitor.errors import ConfigError, Problem
from monitor.promql_syntax import promql_problem


def rule_check(config: Config) -> dict[str, int]:
    """Validate the config's rule files; raise ConfigError listing every problem."""
    rules = load_rules(config)
    exprs = [r for r in rules if r.expr is not None]
    problems = [_problem(rule, message) for rule in exprs for message in [promql_problem(rule.expr or "")]
                if message]
    if problems:
        raise ConfigError(problems)
    counts = {"alert rules": len(rules)}
    if exprs:
        counts["rule PromQL expressions syntax-checked"] = len(exprs)
    return counts


def _problem(rule: Rule, message: str) -> Problem:
    return Problem(rule.file, rule.expr_line or rule.line,
                   f"groups[{rule.group}].rules[{rule.alert}].expr: invalid PromQL: {message}")


def delivery_warnings(config: Config) -> list[str]:
    """Why some alerts would reach no one, as `monitor check` warnings (the config is valid either way).

    Alert notifications (firing, repeat, resolved) go to the receivers their route
    reaches (the legacy config: Slack) and to Alertmanager; webhooks receive only rollback events, for alerts their `match` labels accept.
    """
    rules = load_rules(config)
    outputs = config.outputs
    warnings = []
    if rules and outputs.route is None and outputs.slack is None and outputs.alertmanager is None:
        webhooks = " (webhooks receive only rollback events)" if outputs.webhooks else ""
        warnings.append(f"{config.source_path}: warning: alerts have nowhere to go: no outputs.slack or "
                        f"outputs.alertmanager is configured{webhooks}, so {len(rules)} alert rules only show "
                        f"in `monitor alerts`")
    warnings += routing_warnings(config, rules)
    subscribers = [w for w in outputs.webhooks if "rollback.requested" in w.events]
    for rule in rules:
        if rule.requests_rollback and not any(_may_match(rule, w.match) for w in subscribers):
            reason = ("no webhook subscribes to rollback.requested" if not subscribers else
                      "no webhook subscribed to rollback.requested has a `match` its labels can satisfy")
            warnings.append(f"{rule.where}: warning: rule {rule.alert} requests rollbacks but {reason}")
    return warnings


def _may_match(rule: Rule, match: dict[str, str]) -> bool:
    """Whether some alert of `rule` can carry every label of `match` (instance labels are unknown here)."""
    instance_labels = set(result_labels(rule.condition)) if rule.condition is not None else None
    for key, value in match.items():
        if key == "alertname":
            if value != rule.alert:
                return False
        elif key in rule.labels:  # a rule's labels win over its instances'
            if rule.labels[key] != value:
                return False
        elif instance_labels is not None and key not in instance_labels:
            return False
    return True
