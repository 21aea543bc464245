"""`monitor slo`: evaluate SLO burn rates and error budgets; `monitor slo rules`: print a Prometheus rule file."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

from monitor.commands.arguments import add_config_argument, instant_range_problem
from monitor.config import Config, config_path_from, load_config
from monitor.errors import MonitorError
from monitor.secrets import redact
from monitor.slo import EvaluationMode, evaluate_slos, load_slo_specs, load_spec_files
from monitor.slo.groups import GroupingError
from monitor.slo.evaluate import SloResult, slo_windows
from monitor.report.files import write_atomic
from monitor.slo.rule_file import (MODE_PROMETHEUS_RULE, MODE_RULES, RESERVED_LABELS, RuleOptions,
                                   prometheus_rule_text, rule_file_text)
from monitor.slo.histogram_threshold import threshold_problems
from monitor.sources.prometheus import PrometheusSource
from monitor.timeutil import iso_z, utc, utc_now


class SloCommandError(MonitorError):
    """Bad arguments to `monitor slo`."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "slo", help="SLO burn rates, error budgets and page/ticket decisions",
        description="Evaluate every SLO (Sloth prometheus/v1 or OpenSLO specs) over the 5m, 30m, 1h, 2h, 6h, "
                    "1d, 3d and period windows, with multi-window multi-burn-rate page/ticket decisions. "
                    "'monitor slo rules' prints the equivalent Prometheus rule file.")
    _common(parser)
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus URL (overrides the config's)")
    parser.add_argument("--at", metavar="ISO8601", help="evaluate at this instant (default: now, to the minute)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--mode", choices=[m.value for m in EvaluationMode], default=None,
                        help="direct: query the SLIs; recorded: read the series 'monitor slo rules' records "
                             "(default: the config's slo_evaluation)")
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(dest="slo_command", metavar="SUBCOMMAND")
    rules = sub.add_parser("rules", help="print a Prometheus rule file (recording rules and burn-rate alerts)",
                           description="Print recording rules for each SLO's error ratio per window and the "
                                       "multi-window multi-burn-rate page/ticket alerts, for promtool and "
                                       "Prometheus' rule_files.")
    _common(rules)
    rules.add_argument("-o", "--output", metavar="FILE",
                       help="write the rules to FILE (atomically: readers see the old file or the new one) "
                            "instead of standard output")
    rules.add_argument("--format", choices=["rules", "prometheusrule"], default="rules",
                       help="rules: a Prometheus rule file (default); prometheusrule: a Kubernetes "
                            "monitoring.coreos.com/v1 PrometheusRule for prometheus-operator")
    rules.add_argument("--extra-labels", action="append", default=[], metavar="KEY=VALUE",
                       help="a label to add to every rule (repeatable), as Sloth's --extra-labels")
    rules.add_argument("--disable-recordings", action="store_true",
                       help="leave out the recording rules (SLI ratios and Sloth's metadata series)")
    rules.add_argument("--disable-alerts", action="store_true", help="leave out the burn-rate alerts")
    rules.add_argument("--name", default="monitor-slos", metavar="NAME",
                       help="the PrometheusRule's metadata.name (default: monitor-slos)")
    rules.add_argument("--namespace", metavar="NAMESPACE", help="the PrometheusRule's metadata.namespace")
    rules.add_argument("--metadata-label", action="append", default=[], metavar="KEY=VALUE",
                       help="a label on the PrometheusRule object itself (repeatable), e.g. for the "
                            "operator's ruleSelector")
    rules.set_defaults(func=run_rules)


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--spec", action="extend", nargs="+", metavar="FILE",
                        help="SLO spec files to use instead of the config's 'slos' (repeatable)")


def _config(args: argparse.Namespace) -> Config:
    path = config_path_from(args.config)
    # With --spec (and --prometheus) a config file is optional: defaults fill in.
    if args.spec and not args.config and not Path(path).exists():
        return Config()
    return load_config(path)


def _specs(args: argparse.Namespace, config: Config):
    if args.spec:
        return load_spec_files(args.spec, default_period=config.slo_period)
    return load_slo_specs(config)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        # Whole minutes, so windows line up with scrape-aligned samples and reruns agree.
        return utc_now().replace(second=0, microsecond=0)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SloCommandError(f"--at: not an ISO 8601 instant: {text!r}") from None
    at = utc(at)
    if problem := instant_range_problem(at):
        raise SloCommandError(f"--at: {problem}")
    return at


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    at = _parse_at(args.at)
    specs = _specs(args, config)
    mode = EvaluationMode(args.mode or config.slo_evaluation)
    with PrometheusSource.from_config(config.prometheus, url=args.prometheus) as source:
        results = evaluate_slos(source, specs, at, mode=mode, min_events=config.slo_min_events)
        failed = source.stats.errors
        # A histogram threshold that is no bucket boundary matches no series: say so, not just "no data".
        thresholds = threshold_problems(source, specs, at)
    # Problems quote query errors, which may quote the server's URL: scrubbed like log lines.
    if args.json:
        doc = {"at": iso_z(at), "slos": [r.to_json() for r in results]}
        sys.stdout.write(redact(json.dumps(doc, indent=2, allow_nan=False)) + "\n")
    else:
        sys.stdout.write(redact(format_table(results, at)))
    grouping = {r.spec.id: r.query_error for r in results if isinstance(r.query_error, GroupingError)}
    for spec_id, error in grouping.items():
        print(f"monitor: error: SLO {spec_id}: {error.message}", file=sys.stderr)  # type: ignore[union-attr]
    for line in thresholds:
        print(redact(line), file=sys.stderr)
    if failed:
        # The figures are printed (the failed ones as no data) but a script must not read them as complete.
        print(f"monitor: error: {failed} of {source.stats.queries + source.stats.skipped} Prometheus queries "
              f"failed; their windows show as no data", file=sys.stderr)
        return 1
    return 1 if grouping or thresholds else 0


def run_rules(args: argparse.Namespace) -> int:
    extra = _label_pairs("--extra-labels", args.extra_labels, prometheus=True)
    if reserved := sorted(set(extra) & RESERVED_LABELS):
        raise SloCommandError(f"--extra-labels: {reserved[0]} is set by the generator itself")
    object_labels = _label_pairs("--metadata-label", args.metadata_label, prometheus=False)
    if args.format != "prometheusrule":
        given = [flag for flag, value in (("--namespace", args.namespace), ("--metadata-label", object_labels),
                                          ("--name", args.name != "monitor-slos")) if value]
        if given:
            raise SloCommandError(f"{given[0]}: only applies with --format prometheusrule")
    for flag, value in (("--name", args.name), ("--namespace", args.namespace)):
        if value is not None and not _K8S_NAME.fullmatch(value):
            raise SloCommandError(f"{flag}: {value!r} is not a Kubernetes name (lower-case letters, digits, "
                                  f"'-' and '.', at most 253 characters)")
    config = _config(args)
    specs = _specs(args, config)
    mode = MODE_PROMETHEUS_RULE if args.format == "prometheusrule" else MODE_RULES
    options = RuleOptions(min_events=config.slo_min_events, extra_labels=extra,
                          recordings=not args.disable_recordings, alerts=not args.disable_alerts, mode=mode)
    if args.format == "prometheusrule":
        text = prometheus_rule_text(specs, options, name=args.name, namespace=args.namespace, labels=object_labels)
    else:
        text = rule_file_text(specs, options)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(Path(args.output), text)
    except OSError as exc:
        raise SloCommandError(f"-o {args.output}: cannot write: {exc.strerror or exc}") from None
    return 0


# Prometheus label names; Kubernetes object names (DNS-1123 subdomains).
_PROMETHEUS_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_K8S_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_K8S_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_K8S_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def _label_pairs(flag: str, items: list[str], *, prometheus: bool) -> dict[str, str]:
    """KEY=VALUE arguments as a dict; a malformed one is an error naming the flag."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SloCommandError(f"{flag}: expected KEY=VALUE, got {item!r}")
        if prometheus and (not _PROMETHEUS_LABEL.fullmatch(key) or key.startswith("__")):
            raise SloCommandError(f"{flag}: {key!r} is not a Prometheus label name")
        if not prometheus and not (_K8S_LABEL_KEY.fullmatch(key) and _K8S_LABEL_VALUE.fullmatch(value)):
            raise SloCommandError(f"{flag}: {item!r} is not a Kubernetes label")
        labels[key] = value
    return labels


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _flag(value: bool | None) -> str:
    return "no data" if value is None else ("YES" if value else "no")


def format_table(results: list[SloResult], at: datetime) -> str:
    """A readable table: burn rate per window, budget left, page/ticket ("-" is no data)."""
    if not results:
        return f"no SLOs (at {at:%Y-%m-%d %H:%M}Z)\n"
    window_keys = list(dict.fromkeys(k for r in results for k in list(slo_windows(r.spec, at))[:-1]))
    header = ["SLO", "objective", *[f"burn {k}" for k in window_keys], "burn period", "budget left", "page", "ticket"]
    rows = []
    for r in results:
        rows.append([r.id, f"{r.spec.objective * 100:g}%",
                     *[_number(r.burn_rate.get(k)) for k in window_keys],
                     f"{_number(r.burn_rate[r.period_key])} ({r.period_key})",
                     "-" if r.error_budget_remaining is None else f"{r.error_budget_remaining * 100:.1f}%",
                     _flag(r.page), _flag(r.ticket)])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"SLOs at {utc(at):%Y-%m-%d %H:%M}Z (burn rate 1 spends the budget "
             f"exactly over the period; '-' is no data)"]
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    for r in results:
        for problem in r.problems:
            lines.append(f"{r.id}: {problem}")
    return "\n".join(lines) + "\n"
