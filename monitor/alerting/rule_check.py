"""`monitor check` for rule files: structure, signals and PromQL syntax, as FILE:LINE problems.

PromQL syntax is checked by the configured server's parser when it answers (it
is the dialect that will run the query: Prometheus, Thanos or VictoriaMetrics),
else by `promtool check rules` offline, else not at all. An unreachable server
never fails `monitor check`: the summary says the syntax check was skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import yaml

from monitor.alerting.rule_spec import Rule, load_rules
from monitor.config import Config
from monitor.errors import ConfigError, MonitorError, Problem
from monitor.sources.prometheus import PrometheusSource, PrometheusUnavailable, QueryError, QueryTimeout

# Bound on how long `monitor check` waits for the server before falling back.
CHECK_TIMEOUT = timedelta(seconds=5)
_PROMTOOL_PROBLEM = re.compile(r'group "r(\d+)", rule \d+, "[^"]*": (?:could not parse expression: )?(.*)$')


def rule_check(config: Config) -> dict[str, int]:
    """Validate the config's rule files; raise ConfigError listing every problem."""
    rules = load_rules(config)
    problems: list[Problem] = []
    exprs = [r for r in rules if r.expr is not None]
    counts = {"alert rules": len(rules)}
    if exprs:
        checked_by, found = check_promql(config, exprs)
        problems += found
        if checked_by is None:
            counts["PromQL expressions not syntax-checked (Prometheus unreachable and promtool not found)"] = \
                len(exprs)
        else:
            counts[f"PromQL expressions syntax-checked by {checked_by}"] = len(exprs)
    if problems:
        raise ConfigError(problems)
    return counts


def check_promql(config: Config, rules: Sequence[Rule]) -> tuple[str | None, list[Problem]]:
    """Syntax problems in the rules' PromQL, and what checked them (None: nothing could)."""
    try:
        timeout = min(config.prometheus.timeout, CHECK_TIMEOUT).total_seconds()
        source = PrometheusSource.from_config(config.prometheus)
        source.timeout = timeout
    except MonitorError:
        source = None  # e.g. a bearer token that is not set here: fall back to promtool
    if source is not None:
        try:
            with source:
                problems = []
                for rule in rules:
                    message = source.check_syntax(rule.expr or "")
                    if message:
                        problems.append(_problem(rule, message))
                return "Prometheus", problems
        except (PrometheusUnavailable, QueryTimeout):
            pass
        except QueryError:
            pass  # an answer that is not a parse verdict (e.g. a proxy error): try promtool
    promtool = shutil.which("promtool")
    if promtool is None:
        return None, []
    return "promtool", _promtool_problems(promtool, rules)


def _problem(rule: Rule, message: str) -> Problem:
    return Problem(rule.file, rule.expr_line or rule.line,
                   f"groups[{rule.group}].rules[{rule.alert}].expr: invalid PromQL: {message}")


def _promtool_problems(promtool: str, rules: Sequence[Rule]) -> list[Problem]:
    # One group per rule, named by its index, so promtool's messages map back.
    document = {"groups": [{"name": f"r{i}", "rules": [{"record": "monitor_rule_check", "expr": rule.expr}]}
                           for i, rule in enumerate(rules)]}
    with tempfile.TemporaryDirectory(prefix="monitor-rule-check-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                                timeout=60)
    if result.returncode == 0:
        return []
    problems = []
    for line in (result.stdout + result.stderr).splitlines():
        match = _PROMTOOL_PROBLEM.search(line)
        if match:
            problems.append(_problem(rules[int(match.group(1))], match.group(2)))
    if not problems:
        raise ConfigError([Problem(rules[0].file, None, f"promtool check rules failed: "
                                                        f"{(result.stderr or result.stdout).strip()[-500:]}")])
    return problems
