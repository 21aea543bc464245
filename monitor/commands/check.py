"""`monitor check`: validate the config and every file it names."""

from __future__ import annotations

import argparse
import sys

from monitor.alerting.rule_check import delivery_warnings
from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from
from monitor.validation import validate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="validate the config, SLO specs and rule files",
                                   description="Load and validate the config and every file it names, "
                                               "PromQL syntax included (offline: Prometheus is not asked). "
                                               "Prints a one-line summary and exits 0, or each problem as "
                                               "FILE:LINE: message and exits 1 (2: bad arguments). Warns on "
                                               "stderr, still exiting 0, when alerts have nowhere to go.")
    add_config_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = config_path_from(args.config)
    report = validate(path)
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        print(f"{len(report.problems)} problem(s) found", file=sys.stderr)
        return 1
    assert report.config is not None
    for warning in delivery_warnings(report.config):
        print(warning, file=sys.stderr)
    summary = ", ".join(f"{n} {what}" for what, n in report.counts.items())
    print(f"ok: {path}: {summary}")
    return 0
