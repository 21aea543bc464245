"""`monitor deliver`: route queued notifications into the outbox and send them, as a process."""

from __future__ import annotations

import argparse
import signal
import threading

from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from, load_config
from monitor.outputs.assembly import build_delivery
from monitor.store import open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deliver", help="send queued notifications (Slack, webhooks, Alertmanager) from the outbox",
        description="Route the notifications the alerting stage queued into the outbox, then send them in "
                    "order per destination, retrying on the configured schedule. Runs until SIGTERM/SIGINT, "
                    "or with --once makes one pass over what is due now and exits.")
    add_config_argument(parser)
    parser.add_argument("--once", action="store_true", help="one pass over what is due now, then exit")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks for new notifications")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    with open_store(config) as store:
        delivery = build_delivery(config, store)
        if args.once:
            delivery.drain_once()
        else:
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            delivery.worker.run_forever(stop, args.poll, before_pass=delivery.route_pending)
        counts = delivery.outbox.counts()
    pending = sum(counts.pending.values())
    failed = sum(counts.expired.values()) + sum(counts.disabled.values())
    print(f"pending: {pending}, failed: {failed}")
    return 0
