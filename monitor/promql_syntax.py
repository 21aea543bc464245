"""PromQL syntax, checked offline: the queries of SLO specs, rules and model selectors.

The parser is `promql-parser` (Python bindings of the Rust promql-parser, which
follows Prometheus' own grammar and type checks: `rate(sum(x))` is an error there
as in Prometheus). It is the authority for `monitor check`, the daemon's start and
its SIGHUP reload (all three go through `monitor.validation`): a server that is
down or slow never lets a syntax error through, and a typo is found before it ever
reaches a cycle. What only the server can know (a function it does not enable, a
many-to-many match at run time) is caught per definition by the cycle instead
(monitor.definition_errors).
"""

from __future__ import annotations

from datetime import timedelta

import promql_parser

from monitor.config import Config, model_key_lines
from monitor.cost import queries as cost_queries
from monitor.cost.compute import Resource, compute_figures
from monitor.cost.tokens import token_increase
from monitor.cost.presets import ModelMetricsError, resolve_model_metrics
from monitor.errors import ConfigError, Problem
from monitor.promql_selectors import is_label_name
from monitor.slo.loading import load_slo_specs
from monitor.slo.groups import by_clause
from monitor.slo.spec import EventsSli, render_window, summed

# Functions Prometheus 2.x has that the parser (Prometheus 3's grammar) does not:
# accepted so that a rule written for a 2.x server is not refused here.
_PROMETHEUS_2_FUNCTIONS = [
    promql_parser.Function("holt_winters", [promql_parser.ValueType.Matrix, promql_parser.ValueType.Scalar,
                                            promql_parser.ValueType.Scalar], promql_parser.ValueType.Vector),
]
try:
    promql_parser.register_extra_functions(_PROMETHEUS_2_FUNCTIONS)
except ValueError:
    pass  # a parser version that knows them already

# Any valid duration does: the check is of syntax, not of the window.
_CHECK_WINDOW = "5m"
_CHECK_WINDOW_TD = timedelta(minutes=5)


def promql_problem(expr: str) -> str | None:
    """Why `expr` is not valid PromQL, or None when it parses (and type-checks)."""
    if not expr.strip():
        return "empty query"
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        return str(exc) or "invalid PromQL"
    except Exception as exc:  # noqa: BLE001 - a parser panic must read as a problem, not a traceback
        return f"invalid PromQL ({type(exc).__name__}: {exc})"
    return None


def slo_promql_check(config: Config) -> dict[str, int]:
    """`monitor check` hook: every SLO's SLI queries parse, as they will run (window filled in, summed)."""
    try:
        specs = load_slo_specs(config)
    except ConfigError:
        return {}  # the spec check reports those problems
    problems: list[Problem] = []
    checked = 0
    for spec in specs:
        if isinstance(spec.sli, EventsSli):
            wanted = {"error query": spec.sli.error_query, "total query": spec.sli.total_query}
        else:
            wanted = {"error ratio query": spec.sli.error_ratio_query}
        for role, query in wanted.items():
            rendered = render_window(query, _CHECK_WINDOW)
            checked += 1
            if isinstance(spec.sli, EventsSli):
                # As evaluated: summed, or summed by a grouped spec's labels.
                rendered = by_clause(rendered, spec.group_by) if spec.group_by else summed(rendered)
            problem = promql_problem(rendered)
            if problem:
                file, _, line = spec.source.rpartition(":")
                problems.append(Problem(file or spec.source, int(line) if line.isdigit() else None,
                                        f"SLO {spec.id!r}: {role}: invalid PromQL: {problem}: {query}"))
    if problems:
        raise ConfigError(problems)
    return {"SLO queries syntax-checked": checked} if checked else {}


def model_promql_queries(config: Config) -> list[tuple[int, str, str]]:
    """(model index, config key, PromQL) for each query a model's selectors are built into."""
    out: list[tuple[int, str, str]] = []
    for index, model in enumerate(config.models):
        try:
            metrics = resolve_model_metrics(model)
        except ModelMetricsError:
            metrics = None  # reported by the model metrics check
        if metrics is not None:
            out.append((index, "inferences", cost_queries.inference_rate(metrics, _CHECK_WINDOW_TD)))
        if model.predictions and is_label_name(model.version_label or "_"):
            # As the drift stage builds it: the version label and `le` kept, per window.
            out.append((index, "predictions", f"sum by ({model.version_label}, le) "
                                              f"(increase({model.predictions}[{_CHECK_WINDOW}]))"))
        for figure in compute_figures(model, _CHECK_WINDOW_TD):
            out.append((index, "cpu" if figure.resource is Resource.CPU else "memory", figure.query))
        if metrics is not None:
            for selector in (metrics.prompt_tokens, metrics.generation_tokens):
                if selector:
                    out.append((index, "tokens", token_increase(selector, metrics.version_label, _CHECK_WINDOW_TD)))
    return out


def model_promql_check(config: Config) -> dict[str, int]:
    """`monitor check` hook: each model's selectors make valid PromQL as they are built into queries.

    (The version label's and selectors' own syntax is refused earlier, at config load:
    monitor.promql_selectors.)"""
    lines = model_key_lines(config, ("inferences", "predictions", "cpu", "memory", "tokens"))
    problems = []
    built = model_promql_queries(config)
    for index, key, query in built:
        problem = promql_problem(query)
        if problem:
            model = config.models[index]
            value = getattr(model, key, None)
            problems.append(Problem(config.source_path, lines.get((index, key)) or lines.get((index, None)),
                                    f"models[{model.name}].{key}: {value!r} does not make valid PromQL "
                                    f"({problem}): {query}"))
    if problems:
        raise ConfigError(problems)
    return {}
