"""`monitor webhooks test NAME`: send a signed ping to one subscription and say what it answered."""

from __future__ import annotations

import argparse

from monitor.commands.arguments import add_config_argument
from monitor.config import config_path_from, load_config
from monitor.errors import MonitorError
from monitor.outputs.results import SendOutcome
from monitor.outputs.webhooks import WebhookDestination
from monitor.timeutil import utc_now


class UnknownWebhookError(MonitorError):
    """No subscription of that name in outputs.webhooks."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("webhooks", help="webhook subscriptions: send a test ping",
                                   description="Work with the subscriptions in outputs.webhooks.")
    actions = parser.add_subparsers(dest="webhooks_action", metavar="ACTION", required=True)
    test = actions.add_parser("test", help="send a signed 'ping' event to one subscription",
                              description="Send a Standard Webhooks-signed {\"type\": \"ping\"} event to the "
                                          "subscription NAME now (not through the outbox) and print its answer. "
                                          "Exits 1 unless it answered 2xx.")
    test.add_argument("name", metavar="NAME", help="the subscription's name in outputs.webhooks")
    add_config_argument(test)
    test.set_defaults(func=run_test)


def run_test(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    subscription = next((w for w in config.outputs.webhooks if w.name == args.name), None)
    if subscription is None:
        known = ", ".join(w.name for w in config.outputs.webhooks) or "none configured"
        raise UnknownWebhookError(f"no webhook subscription named {args.name!r} (known: {known})")
    message_id, result = WebhookDestination(subscription).ping(utc_now())
    if result.outcome is SendOutcome.DELIVERED:
        print(f"ok: {args.name} answered HTTP {result.status_code} to ping {message_id}")
        return 0
    raise MonitorError(result.error or f"webhook {args.name}: {result.outcome.value}")
