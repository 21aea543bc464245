"""Arguments several commands share, parsed the same way everywhere."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant for argparse; a trailing Z or no offset at all means UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $MONITOR_CONFIG or ./monitor.yaml)")
