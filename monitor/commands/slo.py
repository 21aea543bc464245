"""`monitor slo`: evaluate SLO burn rates and error budgets; `monitor slo rules`: print a Prometheus rule file."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from monitor.commands.arguments import add_config_argument, instant_range_problem
from monitor.config import Config, config_path_from, load_config
from monitor.errors import MonitorError
from monitor.secrets import redact
from monitor.slo import EvaluationMode, evaluate_slos, load_slo_specs, load_spec_files
from monitor.slo.evaluate import SloResult, slo_windows
from monitor.slo.histogram_threshold import threshold_problems
from monitor.slo.rule_file import write_rule_file
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
    for line in thresholds:
        print(redact(line), file=sys.stderr)
    if failed:
        # The figures are printed (the failed ones as no data) but a script must not read them as complete.
        print(f"monitor: error: {failed} of {source.stats.queries + source.stats.skipped} Prometheus queries "
              f"failed; their windows show as no data", file=sys.stderr)
    return 1 if failed or thresholds else 0


def run_rules(args: argparse.Namespace) -> int:
    config = _config(args)
    write_rule_file(_specs(args, config), sys.stdout, min_events=config.slo_min_events)
    return 0


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
        rows.append([r.spec.id, f"{r.spec.objective * 100:g}%",
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
            lines.append(f"{r.spec.id}: {problem}")
    return "\n".join(lines) + "\n"
