"""`monitor simulate`: write the synthetic fleet (metrics, truth, config, SLO specs, logs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands.arguments import parse_instant
from monitor.errors import MonitorError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="write a simulated ML fleet's metrics and config",
                                   description="Write a synthetic but realistic fleet: DIR/metrics.om "
                                               "(OpenMetrics for promtool backfill), DIR/truth.json, "
                                               "DIR/monitor.yaml, DIR/slos/, DIR/rules/ and "
                                               "DIR/predictions/*.parquet. Existing files are not overwritten "
                                               "unless --force is given.")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--days", type=int, default=7, help="days of history (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--end", type=parse_instant, default=None,
                        help="end of the history, ISO 8601 (default: now)")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090",
                        help="Prometheus URL written into DIR/monitor.yaml")
    parser.add_argument("--force", action="store_true", help="overwrite files a previous run wrote in DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monitor.simulate.fleet import generate_fleet
    from monitor.simulate.writers import fleet_paths, write_fleet

    if args.days < 1:
        raise MonitorError(f"--days must be at least 1, got {args.days}")
    if args.out.exists() and not args.out.is_dir():
        raise MonitorError(f"--out {args.out}: exists and is not a directory")
    existing = [path for path in fleet_paths(args.out).values() if path.exists()]
    if existing and not args.force:
        # Checked before the (slow) generation: a user's edited monitor.yaml is not lost to a rerun.
        raise MonitorError(f"{existing[0]} already exists (and {len(existing) - 1} more of the fleet's files in "
                           f"{args.out}); pass --force to overwrite them")
    fleet = generate_fleet(days=args.days, seed=args.seed, end=args.end)
    try:
        paths = write_fleet(fleet, args.out, prometheus_url=args.prometheus)
    except OSError as exc:
        raise MonitorError(f"--out {args.out}: cannot write {exc.filename or args.out}: "
                           f"{exc.strerror or exc}") from None
    print(f"simulated {args.days} days ({fleet.start:%Y-%m-%d %H:%M} to {fleet.end:%Y-%m-%d %H:%M} UTC), "
          f"{len(fleet.series)} series, {len(fleet.incidents)} incidents")
    for role, path in paths.items():
        print(f"  {role:12s} {path}")
    return 0
