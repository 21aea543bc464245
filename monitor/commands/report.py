"""`monitor report`: write the weekly service-review report (HTML + JSON) and refresh the archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from, load_config
from monitor.report.files import check_writable
from monitor.report.period import (ReportPeriod, ReportPeriodError, custom_period, iso_week_period,
                                   last_complete_week, parse_instant)
from monitor.timeutil import utc_now


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write the weekly HTML service-review report",
        description="Write DIR/<period>/index.html (one self-contained page) and DIR/<period>/report.json "
                    "(the same numbers), and update DIR/index.html, the archive of past reports. Weeks are "
                    "ISO weeks in UTC: --week 2026-W47 is Monday 2026-11-16T00:00Z to Monday "
                    "2026-11-23T00:00Z, so a past week's report can be rebuilt identically. Without --week "
                    "or --from/--to, the last complete week.")
    add_config_argument(parser)
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus URL (overrides the config's)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--week", metavar="YYYY-Www", help="ISO week, e.g. 2026-W47 (UTC boundaries)")
    when.add_argument("--from", dest="start", metavar="ISO8601", help="period start, e.g. 2026-11-16T00:00:00Z")
    parser.add_argument("--to", dest="end", metavar="ISO8601", help="period end (exclusive), with --from")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="output directory (default: the config's reports.dir)")
    parser.add_argument("--state", type=Path, help="state file for alert history (default: the config's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.start is None) != (args.end is None):
        raise ReportPeriodError("give both --from and --to (or --week)")
    if args.week:
        period = _period_from("--week", lambda: iso_week_period(args.week))
    elif args.start:
        period = _period_from("--from/--to", lambda: custom_period(parse_instant(args.start), parse_instant(args.end)))
    else:
        period = last_complete_week(utc_now())
    config = load_config(config_path_from(args.config))
    out_dir = args.out if args.out is not None else config.resolve_path(config.reports.dir)
    check_writable(out_dir)  # before the build: a typo in --out costs a second, not a build
    from monitor.outputs.report import open_state_file, write_period_report

    store = open_state_file(args.state) if args.state is not None else None
    try:
        written = write_period_report(config, period, out_dir=args.out, prometheus_url=args.prometheus,
                                      store=store)
    finally:
        if store is not None:
            store.close()
    print(f"wrote {written.html} and {written.json.name}; archive {written.archive_index}")
    return 0


def _period_from(flags: str, build) -> ReportPeriod:
    """The period the flags give; a bad one is one error line naming the flags."""
    try:
        return build()
    except ReportPeriodError as exc:
        raise ReportPeriodError(f"{flags}: {exc}") from None
