"""`monitor deliveries`: what the outbox holds, so an expired or disabled delivery is never invisible."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from, load_config
from monitor.outputs.outbox import Outbox
from monitor.store import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deliveries", help="list notification deliveries (Slack, webhooks, Alertmanager) and their status",
        description="List the outbox's deliveries, oldest first: destination, event, status, attempts and "
                    "the last error. --failed keeps expired, disabled and still-failing ones.")
    add_config_argument(parser)
    parser.add_argument("--failed", action="store_true", help="only expired, disabled or failing deliveries")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    with StateStore(config.resolve_path(config.state.path)) as store:
        deliveries = Outbox(store).deliveries(failed_only=args.failed)
    if args.json:
        print(json.dumps({"deliveries": [d.as_json() for d in deliveries]}, indent=2))
        return 0
    if not deliveries:
        print("no failed deliveries" if args.failed else "no deliveries")
        return 0
    header = ("ID", "CREATED", "DESTINATION", "EVENT", "STATUS", "ATTEMPTS", "LAST ERROR")
    rows = [(str(d.id), _time(d.created_at), d.destination, d.event_type, d.status.value, str(d.attempts),
             d.last_error or "") for d in deliveries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def _time(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
