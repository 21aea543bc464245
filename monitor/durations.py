"""Prometheus-style durations ("30s", "5m", "1h30m", "28d", "1w") as timedelta.

Parsed by the rules of Prometheus' `model.ParseDuration`, so a duration that
promtool accepts reads the same here and one it refuses is refused here: units
y, w, d, h, m, s, ms, each at most once and from the biggest to the smallest
(`1h1h` and `5m1h` are mistakes, not 2h and 65m); a bare `0` is zero.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

# Unit -> (position in the required order, seconds). A year is 365 days, as in Prometheus.
_UNITS = {"y": (1, 365 * 86400), "w": (2, 7 * 86400), "d": (3, 86400), "h": (4, 3600), "m": (5, 60),
          "s": (6, 1), "ms": (7, 0.001)}
_PART = re.compile(r"(\d+)([a-zA-Z]+)")
# Nothing we schedule or look back over is longer; a longer value is a typo (or an
# attack on timedelta's range), and refusing it here keeps every caller's arithmetic in range.
MAX_DURATION = timedelta(days=10 * 365)


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raise ValueError naming the bad text."""
    text = str(text).strip()
    if not text:
        raise ValueError("empty duration")
    if text == "0":
        return timedelta(0)
    pos = 0
    seconds = 0.0
    last_position = 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        digits, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r} (units: y, w, d, h, m, s, ms)")
        position, unit_seconds = _UNITS[unit]
        if position <= last_position:
            raise ValueError(f"invalid duration {text!r}: each unit at most once, from the biggest to the "
                             f"smallest (e.g. 1h30m)")
        last_position = position
        # Bounded before int(): a thousand-digit count is out of range, not a slow parse.
        if len(digits.lstrip("0")) > 12:
            raise _too_long(text)
        seconds += int(digits) * unit_seconds
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 1h30m, 28d)")
    if seconds > MAX_DURATION.total_seconds():
        raise _too_long(text)
    return timedelta(seconds=seconds)


def _too_long(text: str) -> ValueError:
    return ValueError(f"duration {text!r} is longer than the maximum, {format_duration(MAX_DURATION)} (10 years)")


@lru_cache(maxsize=1024)  # a cycle formats the same few windows thousands of times (SLO period keys)
def format_duration(value: timedelta) -> str:
    """The shortest Prometheus duration for a timedelta: 30d, 1h30m, 5m, 90s."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, unit_ms in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
