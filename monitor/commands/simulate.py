"""`monitor simulate`: write the synthetic fleet (metrics, truth, config, SLO specs, logs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands.arguments import parse_instant
from monitor.simulate.fleet import generate_fleet
from monitor.simulate.writers import write_fleet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="write a simulated ML fleet's metrics and config",
                                   description="Write a synthetic but realistic fleet: DIR/metrics.om "
                                               "(OpenMetrics for promtool backfill), DIR/truth.json, "
                                               "DIR/monitor.yaml, DIR/slos/ and DIR/predictions/*.parquet.")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--days", type=int, default=7, help="days of history (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--end", type=parse_instant, default=None,
                        help="end of the history, ISO 8601 (default: now)")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090",
                        help="Prometheus URL written into DIR/monitor.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise SystemExit("monitor: error: --days must be at least 1")
    fleet = generate_fleet(days=args.days, seed=args.seed, end=args.end)
    paths = write_fleet(fleet, args.out, prometheus_url=args.prometheus)
    print(f"simulated {args.days} days ({fleet.start:%Y-%m-%d %H:%M} to {fleet.end:%Y-%m-%d %H:%M} UTC), "
          f"{len(fleet.series)} series, {len(fleet.incidents)} incidents")
    for role, path in paths.items():
        print(f"  {role:12s} {path}")
    return 0
