"""Arguments several commands share, parsed the same way everywhere."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from monitor.timeutil import iso_z, utc

# Instants a command may be asked about. Outside these, a time is a typo (a year
# 20266, a Unix time in ms read as seconds) and would overflow the arithmetic
# behind windows and weeks (datetime ends at year 9999).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def instant_range_problem(at: datetime) -> str | None:
    """Why `at` is outside the instants we accept (1970-2200), or None."""
    if not EARLIEST <= utc(at) < LATEST:
        return f"{iso_z(at)} is outside the years 1970 to 2199"
    return None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant for argparse; a trailing Z or no offset at all means UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    try:
        problem = instant_range_problem(at)
    except OverflowError:  # an offset that pushes year 1 or 9999 out of datetime's range
        problem = f"{text.strip()!r} is outside the years 1970 to 2199"
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return at


def port_number(text: str) -> int:
    """A TCP port (0-65535) for argparse."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be a number from 0 to 65535, got {text!r}")
    return int(text)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $MONITOR_CONFIG or ./monitor.yaml)")
