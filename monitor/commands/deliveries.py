"""`monitor deliveries`: what the outbox holds, so an expired or disabled delivery is never invisible;
`monitor deliveries retry ID` queues a failed one again."""

from __future__ import annotations

import argparse
import json
import time

from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from, load_config
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.outbox import Outbox
from monitor.outputs.routing import Router
from monitor.store import open_store
from monitor.timeutil import from_unix, iso_z


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deliveries", help="list notification deliveries (Slack, webhooks, Alertmanager) and their status",
        description="List the outbox's deliveries, oldest first: destination, event, status, attempts and "
                    "the last error. --failed keeps expired, disabled and still-failing ones. "
                    "`monitor deliveries retry ID` queues a failed or expired delivery again.")
    add_config_argument(parser)
    parser.add_argument("--failed", action="store_true", help="only expired, disabled or failing deliveries")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    retry = actions.add_parser(
        "retry", help="queue a failed or expired delivery again",
        description="Queue a failed (expired or disabled) delivery again with a fresh retry schedule, due now; "
                    "a pending one is made due now. The daemon's outbox worker (or `monitor deliver`) sends "
                    "it, with the same message id, so the receiver can dedup. A delivered one is refused, and so "
                    "is one a newer message of its alert group has already overtaken.")
    retry.add_argument("id", type=int, help="the delivery's ID, as `monitor deliveries` lists it")
    # SUPPRESS: given before `retry`, --config must not be reset by this parser's default.
    retry.add_argument("--config", default=argparse.SUPPRESS,
                       help="config file (default: $MONITOR_CONFIG or ./monitor.yaml)")
    retry.set_defaults(func=run_retry)


def run(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    with open_store(config) as store:
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


def run_retry(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    outputs = config.outputs
    schedule = RetrySchedule(tuple(outputs.retry_schedule)) if outputs.retry_schedule else RetrySchedule()
    expire_after_s = outputs.expire_after.total_seconds() if outputs.expire_after else None
    with open_store(config) as store:
        delivery = Outbox(store, schedule, expire_after_s).retry(args.id, time.time(),
                                                                  configured=Router(outputs).destinations())
    print(f"delivery {delivery.id} ({delivery.event_type}) to {delivery.destination} queued again, due now; "
          f"the daemon's outbox worker (or `monitor deliver`) sends it")
    return 0


def _time(unix_s: float) -> str:
    return iso_z(from_unix(unix_s).replace(microsecond=0))
